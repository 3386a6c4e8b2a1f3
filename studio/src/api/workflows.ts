/** The StepFlow routes the Studio calls (DESIGN.md §6), in one place. */
import { api, ApiError, enc, type Page } from "./client";
import type { Workflow } from "../dsl/types";
import type { Problem } from "../dsl/validate";

export interface WorkflowSummary {
  name: string;
  version?: number;
  latest_version?: number;
  description?: string | null;
  updated_at?: number;
  created_at?: number;
  [key: string]: unknown;
}

export interface WorkflowRecord extends WorkflowSummary {
  definition: Workflow;
}

export interface VersionInfo {
  version: number;
  created_at?: number;
  definition?: Workflow;
  [key: string]: unknown;
}

export interface Execution {
  execution_id: string;
  workflow: string;
  version?: number;
  status: string;
  input?: unknown;
  output?: unknown;
  error?: { error: string; cause?: string } | null;
  started_at?: number;
  stopped_at?: number | null;
  duration_ms?: number | null;
  [key: string]: unknown;
}

export function definitionOf(record: Record<string, unknown>): Workflow {
  const d = (record.definition ?? record.template ?? record.document) as Workflow | undefined;
  if (d && typeof d === "object") return d;
  return record as unknown as Workflow;
}

export function versionOf(record: Record<string, unknown>): number | null {
  const v = record.version ?? record.latest_version;
  return typeof v === "number" ? v : null;
}

export const workflows = {
  list: () => api.get<Page<WorkflowSummary>>("/api/v1/workflows", { limit: 200 }),
  get: (name: string, version?: number) => api.get<WorkflowRecord>(`/api/v1/workflows/${enc(name)}`, { version }),
  create: (name: string, definition: Workflow) => api.post<WorkflowRecord>("/api/v1/workflows", { name, definition }),
  update: (name: string, definition: Workflow) => api.put<WorkflowRecord>(`/api/v1/workflows/${enc(name)}`, { definition }),
  remove: (name: string) => api.del<WorkflowRecord>(`/api/v1/workflows/${enc(name)}`),
  versions: (name: string) => api.get<Page<VersionInfo>>(`/api/v1/workflows/${enc(name)}/versions`, { limit: 200 }),
  validate: (definition: Workflow) => api.post<unknown>("/api/v1/workflows/validate", { definition }),
  start: (name: string, input: unknown) => api.post<Execution>(`/api/v1/workflows/${enc(name)}/executions`, { input, mode: "async" }),
};

/** Server validation problems (from a validation response or a 422 error) with JSON pointers. */
export function serverProblems(source: unknown): Problem[] {
  let list: unknown[] = [];
  if (source instanceof ApiError) list = source.detailList;
  else if (source && typeof source === "object") {
    const s = source as Record<string, unknown>;
    list = [...((s.errors as unknown[]) ?? []), ...((s.warnings as unknown[]) ?? []).map((w) => ({ ...(w as object), severity: "warning" }))];
  }
  return list.map((raw) => {
    const d = raw as Record<string, unknown>;
    let pointer = typeof d.pointer === "string" ? d.pointer : "";
    if (!pointer && typeof d.field === "string") {
      pointer = d.field.startsWith("/") ? d.field : "/" + d.field.replace(/^(body\.)?(definition\.)?/, "").split(".").join("/");
    }
    pointer = pointer.replace(/^\/definition(?=\/|$)/, "");
    return {
      pointer,
      message: String(d.message ?? d.msg ?? "invalid"),
      severity: d.severity === "warning" || d.level === "warning" ? "warning" : "error",
      source: "server",
    } satisfies Problem;
  });
}
