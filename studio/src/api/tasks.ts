/** AI tasks (issue 18): the envelope, and folding the SSE stream (`token`, `partial`, `done`,
 * `error`) into the text shown live. */
import { ApiError, streamEvents, type SseEvent } from "./client";

export interface TaskEnvelope {
  schema_version?: string;
  task_id: string;
  trn?: string;
  intent: string;
  status: "OK" | "ERROR" | "TIMEOUT" | "CANCELED" | "RUNNING" | string;
  engine?: { route?: string; provider?: string; model?: string; tier?: string; chosen_by?: string; reason?: string } | null;
  result?: unknown;
  usage?: { latency_ms?: number; tokens_in?: number; tokens_out?: number; cost_usd?: number } | null;
  error?: unknown;
  trace_id?: string;
}

export const TASK_FINAL = new Set(["OK", "ERROR", "TIMEOUT", "CANCELED"]);

export interface StreamState {
  text: string;
  tokens: number;
  envelope: TaskEnvelope | null;
  ended: boolean;
  note: string | null;
}

export const emptyStream: StreamState = { text: "", tokens: 0, envelope: null, ended: false, note: null };

/** One SSE event applied to what the page shows: tokens append, a `partial` with `reset`
 * (a hybrid task falling back to the API route) starts the text again, `done`/`error` carry the
 * final envelope. */
export function foldStream(s: StreamState, ev: SseEvent): StreamState {
  const data = (ev.data ?? {}) as Record<string, unknown>;
  switch (ev.event) {
    case "token":
      return { ...s, text: s.text + String(data.text ?? ""), tokens: s.tokens + 1 };
    case "partial":
      if (data.reset) return { ...s, text: "", note: `restarted: ${String(data.reason ?? "fallback")}` };
      return typeof data.text === "string" && data.text.length >= s.text.length ? { ...s, text: data.text } : s;
    case "done":
    case "error":
      return { ...s, envelope: data as unknown as TaskEnvelope, ended: true };
    default:
      return s;
  }
}

/** The text of a finished task's result: a string, `{text}`, or the JSON. */
export function resultText(result: unknown): string {
  if (result === null || result === undefined) return "";
  if (typeof result === "string") return result;
  if (typeof result === "object" && typeof (result as { text?: unknown }).text === "string") return (result as { text: string }).text;
  return JSON.stringify(result, null, 2);
}

/** A 409 from the tasks API: no AI policy is loaded on this server (a state of its
 * configuration that an admin fixes, not a failure). */
export function noPolicy(e: unknown): boolean {
  return e instanceof ApiError && e.status === 409 && /no AI policy/i.test(e.message);
}

/** The submit form's body: the intent, params parsed from JSON (an object), optional limits. */
export function submitBody(intent: string, paramsText: string, opts: { stream?: boolean; privacy?: string; budget?: string } = {}): Record<string, unknown> {
  const name = intent.trim();
  if (!name) throw new Error("intent: name the intent to run (for example summarize)");
  let params: unknown = {};
  if (paramsText.trim()) {
    try {
      params = JSON.parse(paramsText);
    } catch (e) {
      throw new Error(`params: ${(e as Error).message}`);
    }
  }
  if (typeof params !== "object" || params === null || Array.isArray(params)) throw new Error("params: a JSON object is expected");
  const body: Record<string, unknown> = { schema_version: "1.0", intent: name, params, stream: opts.stream ?? true };
  if (opts.privacy) body.privacy = opts.privacy;
  if (opts.budget?.trim()) {
    const b = Number(opts.budget);
    if (!(b > 0)) throw new Error("budget_usd: a positive number of US dollars");
    body.budget_usd = b;
  }
  return body;
}

type StreamFn = (path: string, onEvent: (e: SseEvent) => void, signal: AbortSignal, lastEventId?: string | null) => Promise<void>;

export interface FollowOptions {
  /** reconnections in a row without a new event before giving up */
  retries?: number;
  /** the wait before the n-th reconnection (0-based), in ms */
  backoff?: (attempt: number) => number;
  /** told each time the stream dropped and is about to be resumed */
  onRetry?: (attempt: number, lastEventId: string | null) => void;
  /** for tests: the SSE reader */
  stream?: StreamFn;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

export const retryBackoff = (attempt: number): number => Math.min(5000, 500 * 2 ** attempt);

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((done) => {
    const t = setTimeout(done, ms);
    signal.addEventListener("abort", () => (clearTimeout(t), done()), { once: true });
  });
}

/** Whether a stream failure is worth a reconnection: a dropped connection or a server error,
 * not an answer that will not change (a task not found, a key no longer accepted). */
export function retryable(e: unknown): boolean {
  if (e instanceof ApiError) return e.status === 0 || e.status === 429 || e.status >= 500;
  return !(e instanceof DOMException && e.name === "AbortError");
}

/** Follow a task's SSE stream to its end (`done` or `error`), resuming a dropped connection
 * with `Last-Event-ID` (the id of the last event seen) so no token is lost or shown twice.
 * Resolves with whether the stream reached its end; rejects with a failure that is not retryable
 * or after `retries` reconnections in a row that brought no new event. */
export async function followTask(id: string, onEvent: (e: SseEvent) => void, signal: AbortSignal, opts: FollowOptions = {}): Promise<boolean> {
  const read = opts.stream ?? streamEvents;
  const sleep = opts.sleep ?? pause;
  const retries = opts.retries ?? 5;
  const backoff = opts.backoff ?? retryBackoff;
  let last: string | null = null;
  let ended = false;
  let attempt = 0;
  for (;;) {
    let fresh = false;
    let failure: unknown = null;
    try {
      await read(
        `/api/v1/tasks/${encodeURIComponent(id)}/stream`,
        (ev) => {
          fresh = true;
          if (ev.id) last = ev.id;
          if (ev.event === "done" || ev.event === "error") ended = true;
          onEvent(ev);
        },
        signal,
        last,
      );
    } catch (e) {
      failure = e;
    }
    if (ended || signal.aborted) return ended;
    if (failure !== null && !retryable(failure)) throw failure;
    if (fresh) attempt = 0;
    if (attempt >= retries) throw failure ?? new ApiError(0, "stream", "the task's stream ended before the task did", null);
    opts.onRetry?.(attempt, last);
    await sleep(backoff(attempt), signal);
    attempt += 1;
    if (signal.aborted) return false;
  }
}

/** Whether the tasks list should be refreshed now: something in it is still running and the
 * page is being looked at (a hidden tab polls nothing). */
export function shouldPoll(rows: { status: string }[], visible: boolean): boolean {
  return visible && rows.some((r) => r.status === "RUNNING");
}

export const POLL_MS = 3000;
