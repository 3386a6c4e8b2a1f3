/** The API client: the key lives in session storage and travels in the Authorization header,
 * never in a URL. Errors keep the server's envelope `{error: {code, message, details}}`. */

const KEY = "aionix.key";

export function storedKey(): string | null {
  return sessionStorage.getItem(KEY);
}

export function storeKey(key: string | null): void {
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.removeItem(KEY);
}

export interface ErrorDetail {
  field?: string;
  pointer?: string;
  message?: string;
  [key: string]: unknown;
}

export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
    public details: unknown,
  ) {
    super(message);
  }

  /** A route that no service answers yet: 404 with the router's own message. */
  get unavailable(): boolean {
    return this.status === 404 && this.code === "not_found" && this.message.startsWith("no route for");
  }

  get detailList(): ErrorDetail[] {
    return Array.isArray(this.details) ? (this.details as ErrorDetail[]) : [];
  }
}

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

type Query = Record<string, string | number | boolean | undefined | null>;

function url(path: string, query?: Query): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined && v !== null && v !== "") params.set(k, String(v));
  const qs = params.toString();
  return qs ? `${path}?${qs}` : path;
}

export async function request<T = unknown>(method: string, path: string, body?: unknown, query?: Query, key = storedKey()): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (key) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response: Response;
  try {
    response = await fetch(url(path, query), { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError(0, "network", `the server did not answer (${(e as Error).message})`, null);
  }
  const text = await response.text();
  let data: unknown = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  if (!response.ok) {
    const env = (data as { error?: { code?: string; message?: string; details?: unknown } })?.error;
    throw new ApiError(response.status, env?.code ?? `http_${response.status}`, env?.message ?? `${response.status} ${response.statusText}`, env?.details ?? null);
  }
  if (response.status === 401) throw new ApiError(401, "unauthorized", "sign in again", null);
  return data as T;
}

export const api = {
  get: <T = unknown>(path: string, query?: Query) => request<T>("GET", path, undefined, query),
  post: <T = unknown>(path: string, body?: unknown, query?: Query) => request<T>("POST", path, body ?? {}, query),
  put: <T = unknown>(path: string, body?: unknown) => request<T>("PUT", path, body ?? {}),
  del: <T = unknown>(path: string) => request<T>("DELETE", path),
};

export function enc(name: string): string {
  return encodeURIComponent(name);
}

export interface SseEvent {
  event: string;
  data: unknown;
  id?: string;
}

/** Read a Server-Sent Events stream with fetch (EventSource cannot send the Authorization
 * header). Calls `onEvent` per event until the stream ends or `signal` aborts. `lastEventId`
 * resumes a dropped stream: sent as `Last-Event-ID`, the server replays only the later events. */
export async function streamEvents(path: string, onEvent: (e: SseEvent) => void, signal: AbortSignal, lastEventId?: string | null): Promise<void> {
  const key = storedKey();
  const headers: Record<string, string> = { Accept: "text/event-stream" };
  if (key) headers.Authorization = `Bearer ${key}`;
  if (lastEventId) headers["Last-Event-ID"] = lastEventId;
  const response = await fetch(path, { headers, signal });
  if (!response.ok || !response.body) {
    let env: { error?: { code?: string; message?: string } } = {};
    try {
      env = await response.json();
    } catch {
      /* not JSON */
    }
    throw new ApiError(response.status, env.error?.code ?? "stream", env.error?.message ?? `stream failed (${response.status})`, null);
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value.replace(/\r\n/g, "\n");
    let cut: number;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const ev: SseEvent = { event: "message", data: null };
      const data: string[] = [];
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) continue;
        const i = line.indexOf(":");
        const field = i < 0 ? line : line.slice(0, i);
        const val = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
        if (field === "event") ev.event = val;
        else if (field === "data") data.push(val);
        else if (field === "id") ev.id = val;
      }
      if (!data.length) continue;
      const raw = data.join("\n");
      try {
        ev.data = JSON.parse(raw);
      } catch {
        ev.data = raw;
      }
      onEvent(ev);
    }
  }
}
