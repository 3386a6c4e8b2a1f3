import { describe, expect, it } from "vitest";
import { barsFor, buildTimeline, frameLabel, offsetLabel } from "../src/pages/timeline";
import type { HistoryEvent } from "../src/pages/stateRuns";

let seq = 0;
const ev = (ts: number, type: string, state: string | null, frame = "r", detail: unknown = null): HistoryEvent => ({ seq: ++seq, ts, type, state, frame, detail });

const history: HistoryEvent[] = [
  ev(100, "ExecutionStarted", null),
  ev(100, "StateEntered", "Charge", "r", { input: { a: 1 } }),
  ev(100.1, "TaskScheduled", "Charge", "r", { attempt: 1 }),
  ev(100.3, "TaskFailed", "Charge", "r", { attempt: 1, error: "Http.Status.503" }),
  ev(100.3, "RetryScheduled", "Charge", "r", { delay_seconds: 1, error: "Http.Status.503" }),
  ev(101.3, "TaskScheduled", "Charge", "r", { attempt: 2 }),
  ev(101.5, "TaskSucceeded", "Charge", "r", { attempt: 2, result: 1 }),
  ev(101.5, "StateExited", "Charge", "r", { output: { ok: true } }),
  ev(101.5, "StateEntered", "Items", "r", { input: [1, 2] }),
  ev(101.5, "MapStarted", "Items", "r", { count: 2 }),
  ev(101.6, "StateEntered", "Item", "r.Items.0", { input: 1 }),
  ev(101.6, "StateEntered", "Item", "r.Items.1", { input: 2 }),
  ev(101.7, "StateExited", "Item", "r.Items.0", { output: 10 }),
  ev(101.9, "StateFailed", "Item", "r.Items.1", { error: "Boom", cause: "no" }),
  ev(101.9, "Caught", "Item", "r.Items.1", { error: "Boom", cause: "no", next: "Fallback" }),
  ev(102, "StateExited", "Items", "r", { output: [10, null] }),
  ev(102, "StateEntered", "Par", "r", { input: {} }),
  ev(102, "ParallelStarted", "Par", "r", { branches: 2 }),
  ev(102, "StateEntered", "Pause", "r.Par.1", { input: {} }),
  ev(102, "WaitStarted", "Pause", "r.Par.1", { due_at: 104 }),
  ev(104, "WaitEnded", "Pause", "r.Par.1", {}),
  ev(104, "StateExited", "Pause", "r.Par.1", { output: {} }),
  ev(104, "StateExited", "Par", "r", { output: [{}] }),
];

describe("an execution's timeline", () => {
  const t = buildTimeline(history, 200);

  it("has one bar per state run on one time axis, map iterations and branches on their own rows", () => {
    expect(t.start).toBe(100);
    expect(t.end).toBe(104);
    expect(t.bars.map((b) => [b.state, b.where, b.status, b.depth])).toEqual([
      ["Charge", "", "succeeded", 0],
      ["Items", "", "succeeded", 0],
      ["Item", "Items[0]", "succeeded", 1],
      ["Item", "Items[1]", "caught", 1],
      ["Par", "", "succeeded", 0],
      ["Pause", "Par branch 2", "succeeded", 1],
    ]);
    const item1 = t.bars[3];
    expect([item1.start, item1.end]).toEqual([101.6, 101.9]);
    expect(item1.error).toEqual({ error: "Boom", cause: "no" });
  });

  it("shows attempts, the retry backoff and waits as segments", () => {
    const charge = t.bars[0];
    expect(charge.segments.map((s) => [s.kind, s.start, s.end, !!s.failed])).toEqual([
      ["attempt", 100.1, 100.3, true],
      ["retry", 100.3, 101.3, false],
      ["attempt", 101.3, 101.5, false],
    ]);
    expect(charge.segments[1].label).toBe("retry in 1 s after Http.Status.503");
    expect(t.bars[5].segments).toEqual([{ kind: "wait", start: 102, end: 104, label: "wait" }]);
    expect(charge.input).toEqual({ a: 1 });
    expect(charge.output).toEqual({ ok: true });
  });

  it("offers each iteration and branch in the picker, and shows one of them", () => {
    expect(t.iterations).toEqual([
      { frame: "r.Items.0", label: "Items[0]" },
      { frame: "r.Items.1", label: "Items[1]" },
      { frame: "r.Par.1", label: "Par branch 2" },
    ]);
    expect(barsFor(t, "r.Items.1").map((b) => `${b.state} ${b.where}`)).toEqual(["Charge ", "Items ", "Item Items[1]", "Par "]);
    expect(barsFor(t, "")).toHaveLength(6);
  });

  it("a running state reaches to now", () => {
    const live = buildTimeline([ev(10, "StateEntered", "Slow", "r", {}), ev(10, "TaskScheduled", "Slow", "r", { attempt: 1 })], 15);
    expect(live.end).toBe(15);
    expect(live.bars[0].status).toBe("running");
    expect(live.bars[0].end).toBeNull();
  });

  it("labels nested frames and offsets", () => {
    expect(frameLabel("r.A.2.B.0", { "r.A": "map", "r.A.2.B": "parallel" })).toBe("A[2] › B branch 1");
    expect(offsetLabel(1.25)).toBe("+1.25 s");
    expect(offsetLabel(0)).toBe("+0 s");
    expect(offsetLabel(125)).toBe("+2 min 5 s");
  });
});
