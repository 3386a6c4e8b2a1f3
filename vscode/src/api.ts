/** The Aionix REST API as the extension uses it (Node's fetch; no `vscode` import). */
import type { Connection } from "./config";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface Template {
  name: string;
  trn: string;
  version: number;
  description?: string | null;
  definition?: unknown;
}

export interface Execution {
  execution_id: string;
  workflow: string;
  version: number;
  status: "RUNNING" | "SUCCEEDED" | "FAILED" | "TIMED_OUT" | "ABORTED";
  input?: unknown;
  output?: unknown;
  error?: { error?: string | null; cause?: string | null } | null;
  started_at: number;
  stopped_at?: number | null;
  duration_ms?: number | null;
}

export interface HistoryEvent {
  seq: number;
  ts: number;
  type: string;
  state?: string | null;
  detail?: unknown;
}

interface Page<T> {
  items: T[];
  next_cursor?: string | null;
}

export type Fetch = typeof fetch;

export class AionixApi {
  constructor(
    readonly connection: Connection,
    private readonly fetchImpl: Fetch = fetch,
    private readonly timeoutMs = 30_000,
  ) {}

  async request<T>(method: string, path: string, body?: unknown, query?: Record<string, string | number | undefined>): Promise<T> {
    const url = new URL(this.connection.url + path);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const headers: Record<string, string> = { "User-Agent": "aionix-vscode" };
    if (this.connection.apiKey) headers.Authorization = `Bearer ${this.connection.apiKey}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response: Response;
    try {
      response = await this.fetchImpl(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      throw new ApiError(0, "unreachable", `cannot reach the server at ${this.connection.url}: ${(err as Error).message}`);
    }
    const text = await response.text();
    const data = text ? safeJson(text) : undefined;
    if (!response.ok) {
      const e = (data as { error?: { code?: string; message?: string } } | undefined)?.error;
      throw new ApiError(response.status, e?.code ?? "error", `error ${response.status}${e?.code ? " " + e.code : ""}: ${e?.message ?? text.slice(0, 200)}`);
    }
    return data as T;
  }

  async all<T>(path: string, query: Record<string, string | number | undefined> = {}, max = 1000): Promise<T[]> {
    const out: T[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.request<Page<T>>("GET", path, undefined, { ...query, cursor, limit: Math.min(500, max - out.length) });
      out.push(...page.items);
      cursor = page.next_cursor ?? undefined;
    } while (cursor && out.length < max);
    return out;
  }

  listWorkflows(): Promise<Template[]> {
    return this.all<Template>("/api/v1/workflows");
  }

  getWorkflow(name: string): Promise<Template> {
    return this.request<Template>("GET", `/api/v1/workflows/${encodeURIComponent(name)}`);
  }

  listExecutions(workflow?: string, limit = 50): Promise<Execution[]> {
    return this.all<Execution>("/api/v1/executions", { workflow }, limit);
  }

  getExecution(id: string): Promise<Execution> {
    return this.request<Execution>("GET", `/api/v1/executions/${encodeURIComponent(id)}`);
  }

  history(id: string): Promise<HistoryEvent[]> {
    return this.all<HistoryEvent>(`/api/v1/executions/${encodeURIComponent(id)}/history`, {}, 10_000);
  }

  /** Save a definition as template `name`: a new version when it exists, else version 1. */
  async saveWorkflow(name: string, definition: unknown): Promise<Template> {
    try {
      return await this.request<Template>("PUT", `/api/v1/workflows/${encodeURIComponent(name)}`, { definition });
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        return this.request<Template>("POST", "/api/v1/workflows", { name, definition });
      }
      throw err;
    }
  }

  startExecution(name: string, input: unknown, waitSeconds = 30): Promise<Execution> {
    return this.request<Execution>("POST", `/api/v1/workflows/${encodeURIComponent(name)}/executions`, {
      input,
      mode: "sync",
      wait_seconds: waitSeconds,
    });
  }

  studioUrl(path = "/workflows"): string {
    return this.connection.url + path;
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
