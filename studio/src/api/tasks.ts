/** AI tasks (issue 18): the envelope, and folding the SSE stream (`token`, `partial`, `done`,
 * `error`) into the text shown live. */
import { ApiError, type SseEvent } from "./client";

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
