/** An execution's timeline from its history events: one bar per state run (a state can run in
 * several frames: map iterations, parallel branches, loops), with its attempts, retry backoffs
 * and waits as segments on one time axis. Frames are `r` (the top level), `r.Map.3` (iteration 3
 * of the map state Map), `r.Par.1` (branch 2 of Par), nested as deep as the workflow is. */
import type { HistoryEvent } from "./stateRuns";

export type BarStatus = "running" | "succeeded" | "failed" | "caught";

export interface Segment {
  kind: "attempt" | "retry" | "wait";
  start: number;
  end: number | null;
  label: string;
  failed?: boolean;
}

export interface Bar {
  /** unique per run: frame, state and the sequence number it was entered at */
  key: string;
  state: string;
  frame: string;
  /** readable frame: "" for the top level, `PriceLines[1]`, `Fulfil branch 2`, nested with " › " */
  where: string;
  depth: number;
  start: number;
  end: number | null;
  status: BarStatus;
  segments: Segment[];
  input?: unknown;
  output?: unknown;
  error?: { error?: string; cause?: string };
}

export interface Timeline {
  bars: Bar[];
  start: number;
  end: number;
  /** map iterations (frame ids) by their readable name, for the picker */
  iterations: { frame: string; label: string }[];
}

type Detail = Record<string, unknown>;

/** True for the top-level frame (`r`): its id has no dot. */
export function isTop(frame: string): boolean {
  return !frame.includes(".");
}

/** `r.PriceLines.1.Inner.0` → `PriceLines[1] › Inner[0]` (or `branch N` for parallel states). */
export function frameLabel(frame: string, kinds: Record<string, "map" | "parallel">): string {
  const parts = frame.split(".");
  let scope = parts.shift() ?? "r";
  const out: string[] = [];
  for (let i = 0; i + 1 < parts.length; i += 2) {
    const state = parts[i];
    const index = Number(parts[i + 1]);
    const kind = kinds[`${scope}.${state}`];
    out.push(kind === "parallel" ? `${state} branch ${index + 1}` : `${state}[${index}]`);
    scope = `${scope}.${state}.${parts[i + 1]}`;
  }
  return out.join(" › ");
}

export function buildTimeline(events: HistoryEvent[], now: number = Date.now() / 1000): Timeline {
  const kinds: Record<string, "map" | "parallel"> = {};
  for (const e of events) {
    if (!e.state) continue;
    if (e.type === "MapStarted") kinds[`${e.frame ?? "r"}.${e.state}`] = "map";
    if (e.type === "ParallelStarted") kinds[`${e.frame ?? "r"}.${e.state}`] = "parallel";
  }
  const bars: Bar[] = [];
  const open = new Map<string, Bar>();
  const closeSegment = (bar: Bar, kind: Segment["kind"], ts: number, failed = false) => {
    for (let i = bar.segments.length - 1; i >= 0; i--) {
      const s = bar.segments[i];
      if (s.kind === kind && s.end === null) {
        s.end = ts;
        if (failed) s.failed = true;
        return;
      }
    }
  };
  for (const e of events) {
    if (!e.state) continue;
    const frame = e.frame ?? "r";
    const key = `${frame}|${e.state}`;
    const d = (e.detail && typeof e.detail === "object" ? e.detail : {}) as Detail;
    let bar = open.get(key);
    if (e.type === "StateEntered" || !bar) {
      bar = {
        key: `${frame}|${e.state}|${e.seq}`,
        state: e.state,
        frame,
        where: frameLabel(frame, kinds),
        depth: (frame.split(".").length - 1) / 2,
        start: e.ts,
        end: null,
        status: "running",
        segments: [],
      };
      bars.push(bar);
      open.set(key, bar);
      if (e.type === "StateEntered") {
        bar.input = d.input;
        continue;
      }
    }
    switch (e.type) {
      case "TaskScheduled":
        closeSegment(bar, "retry", e.ts);
        bar.segments.push({ kind: "attempt", start: e.ts, end: null, label: `attempt ${typeof d.attempt === "number" ? d.attempt : bar.segments.filter((s) => s.kind === "attempt").length + 1}` });
        break;
      case "TaskSucceeded":
        closeSegment(bar, "attempt", e.ts);
        break;
      case "TaskFailed":
        closeSegment(bar, "attempt", e.ts, true);
        break;
      case "RetryScheduled": {
        closeSegment(bar, "attempt", e.ts, true);
        const delay = typeof d.delay_seconds === "number" ? d.delay_seconds : 0;
        bar.segments.push({ kind: "retry", start: e.ts, end: null, label: `retry in ${delay} s${d.error ? ` after ${String(d.error)}` : ""}` });
        break;
      }
      case "WaitStarted":
        bar.segments.push({ kind: "wait", start: e.ts, end: null, label: "wait" });
        break;
      case "WaitEnded":
        closeSegment(bar, "wait", e.ts);
        break;
      case "StateExited":
        bar.end = e.ts;
        bar.status = "succeeded";
        bar.output = d.output;
        open.delete(key);
        break;
      case "StateFailed":
        bar.end = e.ts;
        bar.status = "failed";
        bar.error = { error: d.error as string, cause: d.cause as string };
        break;
      case "Caught":
        bar.end = bar.end ?? e.ts;
        bar.status = "caught";
        bar.error = { error: d.error as string, cause: d.cause as string };
        open.delete(key);
        break;
    }
  }
  const stamps = events.map((e) => e.ts);
  const start = stamps.length ? Math.min(...stamps) : now;
  const running = bars.some((b) => b.end === null);
  const last = stamps.length ? Math.max(...stamps) : now;
  const end = Math.max(running ? Math.max(now, last) : last, start + 0.001);
  // a segment still open ends with its bar (or now)
  for (const b of bars) for (const s of b.segments) if (s.end === null && b.end !== null) s.end = b.end;
  const seen = new Set<string>();
  const iterations: { frame: string; label: string }[] = [];
  for (const b of bars) {
    if (isTop(b.frame) || seen.has(b.frame)) continue;
    seen.add(b.frame);
    iterations.push({ frame: b.frame, label: b.where });
  }
  return { bars, start, end, iterations };
}

/** Bars of the top level plus those of one frame (and the frames inside it); all for "". */
export function barsFor(t: Timeline, frame: string): Bar[] {
  if (!frame) return t.bars;
  return t.bars.filter((b) => isTop(b.frame) || b.frame === frame || b.frame.startsWith(frame + ".") || frame.startsWith(b.frame + "."));
}

/** "+1.25 s", "+2 min 5 s" from the start of the execution. */
export function offsetLabel(seconds: number): string {
  if (seconds < 60) return `+${seconds < 10 ? seconds.toFixed(2).replace(/\.?0+$/, "") : Math.round(seconds)} s`;
  const m = Math.floor(seconds / 60);
  return `+${m} min ${Math.round(seconds - m * 60)} s`;
}
