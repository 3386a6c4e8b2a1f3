/** The Copilot (issue 19): sessions hold a draft of a workflow; operations change only the
 * draft; `apply` publishes it. What the editor's Copilot panel needs of those answers. */
import type { Workflow } from "../dsl/types";
import { api, enc, request } from "./client";

export interface CopilotOp {
  op: string;
  name?: string;
  state?: Record<string, unknown>;
  after?: string;
  patch?: Record<string, unknown>;
  relink_to?: string;
  from?: string;
  to?: string;
  via?: string;
  errors?: string[];
  condition?: string;
  input?: unknown;
  budget_usd?: number;
}

export interface Validation {
  valid: boolean;
  errors: { pointer?: string; message?: string }[];
  warnings?: { pointer?: string; message?: string }[];
}

export interface CopilotSession {
  session_id: string;
  workflow: string;
  base_version: number;
  status: "open" | "applied";
  draft: Workflow;
  validation: Validation;
  applied_version?: number | null;
  published?: { name: string; trn: string; version: number } | null;
}

export interface OperationResult {
  session_id: string;
  operation: string;
  draft: Workflow;
  validation: Validation;
  diff: { op: string; path: string; value?: unknown }[];
  result?: unknown;
}

export interface Suggestion {
  rule: string;
  state?: string;
  message: string;
  operations?: CopilotOp[];
  valid?: boolean;
  source?: "rules" | "model";
}

export interface ModelInfo {
  used: boolean;
  reason?: string;
  error?: string;
  accepted?: { proposal: unknown }[];
  rejected?: { proposal: unknown; reason?: string }[];
}

export interface Risk {
  rule: string;
  pointer: string;
  message: string;
}

export interface Simulation {
  feasible: boolean;
  problems: { kind: string; pointer: string; message: string }[];
  estimated_cost_usd: number;
  estimated_duration_ms: { p50: number | null; p95: number | null };
  duration_source: "history" | "model";
  step_estimates: { state: string; skill: string; cost: number; latency: { p50: number | null; p95: number | null; samples: number }; probability: number }[];
  budget_usd?: number | null;
  budget_sufficient?: boolean | null;
  budget_remaining_usd?: number | null;
  risks: Risk[];
}

export const copilot = {
  open: (workflow: string) => api.post<CopilotSession>("/api/v1/copilot/sessions", { workflow }),
  operate: (id: string, op: CopilotOp) => api.post<OperationResult>(`/api/v1/copilot/sessions/${enc(id)}/operations`, op),
  /** Published by a human operator key that did not edit the draft: the reviewer's key, sent in
   * the Authorization header of this one request (never stored, never in a URL). */
  apply: (id: string, operatorKey: string) => request<CopilotSession>("POST", `/api/v1/copilot/sessions/${enc(id)}/apply`, {}, undefined, operatorKey),
  simulate: (definition: Workflow, input: unknown, budget?: number) =>
    api.post<Simulation>("/api/v1/runtime/simulate", { definition, input: input ?? null, ...(budget !== undefined ? { budget_usd: budget } : {}) }),
};

/** One operation in words, for the step list. */
export function opLabel(op: CopilotOp): string {
  switch (op.op) {
    case "create_node":
      return `add state ${op.name}${op.state?.type ? ` (${String(op.state.type)})` : ""}${op.after ? ` after ${op.after}` : ""}`;
    case "update_node":
      return `set ${Object.keys(op.patch ?? {}).join(", ") || "fields"} on ${op.name}`;
    case "delete_node":
      return `delete ${op.name}${op.relink_to ? `, its predecessors go to ${op.relink_to}` : ""}`;
    case "connect_nodes":
      return `connect ${op.from} → ${op.to}${op.via && op.via !== "next" ? ` (${op.via})` : ""}`;
    default:
      return op.op.replace(/_/g, " ");
  }
}

/** Whether a model answers natural-language requests, in words the panel shows as they are. */
export function modelStatus(model: ModelInfo | null | undefined): { configured: boolean; text: string } {
  if (!model) return { configured: false, text: "Checking whether a model is configured…" };
  if (!model.used) return { configured: false, text: `No model is configured for the Copilot: ${model.reason ?? "rule-based suggestions only"}.` };
  if (model.error) return { configured: true, text: `A model is configured, but it failed: ${model.error}` };
  return { configured: true, text: "A model is configured: requests go to the intent copilot.suggest through the AI router." };
}

/** A model's answer (a task result: `{text}` holding JSON, or the JSON itself) as suggestions;
 * each step is still validated by the server when it is applied. */
export function proposalsOf(result: unknown): Suggestion[] {
  let value: unknown = result;
  if (value && typeof value === "object" && typeof (value as { text?: unknown }).text === "string") value = (value as { text: string }).text;
  if (typeof value === "string") {
    try {
      value = JSON.parse(value);
    } catch {
      return [];
    }
  }
  if (value && typeof value === "object" && !Array.isArray(value)) value = (value as { proposals?: unknown }).proposals ?? [value];
  if (!Array.isArray(value)) return [];
  return value
    .filter((p): p is { title?: string; message?: string; operations: CopilotOp[] } => !!p && typeof p === "object" && Array.isArray((p as { operations?: unknown }).operations))
    .map((p) => ({ rule: "model", message: p.title ?? p.message ?? "the model's proposal", operations: p.operations, source: "model" as const }));
}

/** "1.2 s", "850 ms", "—". */
export function ms(v: number | null | undefined): string {
  if (v === null || v === undefined) return "—";
  return v >= 1000 ? `${(v / 1000).toFixed(v >= 10_000 ? 0 : 1)} s` : `${Math.round(v)} ms`;
}

export function usd(v: number | null | undefined): string {
  if (v === null || v === undefined) return "—";
  return v === 0 ? "$0" : v < 0.01 ? `$${v.toPrecision(2)}` : `$${v.toFixed(2)}`;
}

/** JSON with sorted keys: the canvas and the Copilot's draft compared by value. */
export function stable(v: unknown): string {
  return JSON.stringify(v, (_k, x) => (x && typeof x === "object" && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : x));
}

/** A natural-language request as the `input` of the intent copilot.suggest: the request, then
 * the draft it is about (the model answers `{"proposals": [{"title", "operations": [...]}]}`). */
export function nlInput(request: string, draft: unknown): string {
  return `Request: ${request}\n\nWorkflow draft (StepFlow DSL JSON):\n${JSON.stringify(draft)}\n\nAnswer {"proposals": [{"title": ..., "operations": [...]}]} with Copilot operations.`;
}

/** The model-based part of suggest_optimization: proposals the server validated on a copy of the
 * draft (accepted, shown as suggestions) and those it rejected, with the reason. */
export function modelSuggestions(model: ModelInfo | null | undefined): { accepted: Suggestion[]; rejected: { title: string; reason: string }[] } {
  const accepted = (model?.accepted ?? []).flatMap((a) => proposalsOf([a.proposal]).map((s) => ({ ...s, valid: true })));
  const rejected = (model?.rejected ?? []).map((r) => {
    const p = r.proposal as { title?: unknown } | string | null;
    const title = typeof p === "string" ? p : typeof p?.title === "string" ? p.title : JSON.stringify(p);
    return { title: title.length > 120 ? `${title.slice(0, 117)}…` : title, reason: r.reason ?? "rejected" };
  });
  return { accepted, rejected };
}

/** Check a proposal the way the server checks the model's proposals in suggest_optimization: on
 * a scratch session of the same workflow (the steps applied so far replayed), every operation
 * must apply and the draft must not gain a problem. Null when it passes, else the reason. */
export async function checkProposal(
  workflow: string,
  applied: CopilotOp[],
  operations: CopilotOp[],
  api: { open: (workflow: string) => Promise<CopilotSession>; operate: (id: string, op: CopilotOp) => Promise<OperationResult> } = copilot,
): Promise<string | null> {
  const EDITS = new Set(["create_node", "update_node", "delete_node", "connect_nodes"]);
  const bad = operations.find((op) => !EDITS.has(op.op));
  if (bad) return `${bad.op} is not an edit`;
  const scratch = await api.open(workflow);
  let errors = scratch.validation.errors.length;
  for (const op of applied) errors = (await api.operate(scratch.session_id, op)).validation.errors.length;
  let last: OperationResult | null = null;
  for (const op of operations) {
    try {
      last = await api.operate(scratch.session_id, op);
    } catch (e) {
      return `${opLabel(op)}: ${(e as Error).message}`;
    }
  }
  if (last && (last.validation.errors.length > errors || (errors === 0 && !last.validation.valid))) {
    return last.validation.errors
      .slice(0, 3)
      .map((p) => `${p.pointer ?? ""}: ${p.message ?? ""}`)
      .join("; ");
  }
  return null;
}
