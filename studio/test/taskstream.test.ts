import { afterEach, describe, expect, it, vi } from "vitest";
import { ApiError, streamEvents, type SseEvent } from "../src/api/client";
import { emptyStream, followTask, foldStream, retryable, shouldPoll } from "../src/api/tasks";
import { mergeFirstPage } from "../src/components/common";

const noSleep = async () => undefined;

/** A stand-in SSE reader: each call plays one scripted connection (events, then a drop or an end). */
function script(connections: { events: SseEvent[]; then?: "drop" | "end" | Error }[]) {
  const seen: (string | null | undefined)[] = [];
  let n = 0;
  const stream = async (_path: string, onEvent: (e: SseEvent) => void, _signal: AbortSignal, last?: string | null) => {
    seen.push(last);
    const c = connections[n++];
    if (!c) throw new TypeError("network error");
    // the server replays only the events after Last-Event-ID
    for (const ev of c.events) if (!last || Number(ev.id ?? Infinity) > Number(last)) onEvent(ev);
    if (c.then === "drop") throw new TypeError("network error");
    if (c.then instanceof Error) throw c.then;
  };
  return { stream, seen };
}

const tok = (id: number, text: string): SseEvent => ({ id: String(id), event: "token", data: { text } });
const done: SseEvent = { id: "9", event: "done", data: { task_id: "t1", intent: "x", status: "OK" } };

describe("following a task's stream", () => {
  it("resumes a dropped stream with the last event id: no token lost or repeated", async () => {
    const { stream, seen } = script([
      { events: [tok(1, "Hel"), tok(2, "lo")], then: "drop" },
      { events: [tok(1, "Hel"), tok(2, "lo"), tok(3, " world"), done] },
    ]);
    let s = emptyStream;
    const retries: (string | null)[] = [];
    const ended = await followTask("t1", (ev) => (s = foldStream(s, ev)), new AbortController().signal, {
      stream,
      sleep: noSleep,
      onRetry: (_n, last) => retries.push(last),
    });
    expect(ended).toBe(true);
    expect(seen).toEqual([null, "2"]);
    expect(retries).toEqual(["2"]);
    expect(s.text).toBe("Hello world");
    expect(s.envelope?.status).toBe("OK");
  });

  it("a stream that ends before done is resumed too (the server then sends the final envelope)", async () => {
    const { stream, seen } = script([{ events: [tok(1, "a")], then: "end" }, { events: [{ event: "done", data: { status: "OK" } }] }]);
    expect(await followTask("t1", () => undefined, new AbortController().signal, { stream, sleep: noSleep })).toBe(true);
    expect(seen).toEqual([null, "1"]);
  });

  it("gives up after the retries when reconnecting brings nothing new; a 404 or 401 is not retried", async () => {
    const { stream, seen } = script([]);
    await expect(followTask("t1", () => undefined, new AbortController().signal, { stream, sleep: noSleep, retries: 3 })).rejects.toThrow("network error");
    expect(seen).toHaveLength(4);
    const gone = script([{ events: [], then: new ApiError(404, "not_found", "task not found", null) }]);
    await expect(followTask("t1", () => undefined, new AbortController().signal, { stream: gone.stream, sleep: noSleep })).rejects.toThrow("task not found");
    expect(gone.seen).toHaveLength(1);
    expect(retryable(new ApiError(401, "unauthorized", "x", null))).toBe(false);
    expect(retryable(new ApiError(503, "unavailable", "x", null))).toBe(true);
    expect(retryable(new ApiError(0, "network", "x", null))).toBe(true);
  });

  it("stops without reconnecting once aborted (the page moved on)", async () => {
    const ctrl = new AbortController();
    const { stream, seen } = script([{ events: [tok(1, "a")], then: "drop" }]);
    const follow = followTask("t1", () => ctrl.abort(), ctrl.signal, { stream, sleep: noSleep });
    expect(await follow).toBe(false);
    expect(seen).toHaveLength(1);
  });
});

describe("the SSE reader", () => {
  afterEach(() => vi.unstubAllGlobals());

  it("sends Last-Event-ID and the key in headers, never in the URL, and parses ids", async () => {
    const store = new Map([["aionix.key", "aio_secret"]]);
    vi.stubGlobal("sessionStorage", { getItem: (k: string) => store.get(k) ?? null });
    const calls: { url: string; headers: Record<string, string> }[] = [];
    vi.stubGlobal("fetch", async (url: string, init: { headers: Record<string, string> }) => {
      calls.push({ url, headers: init.headers });
      return new Response('id: 4\nevent: token\ndata: {"text":"x"}\n\n: keep-alive\n\nid: 5\nevent: done\ndata: {"status":"OK"}\n\n', {
        headers: { "Content-Type": "text/event-stream" },
      });
    });
    const got: SseEvent[] = [];
    await streamEvents("/api/v1/tasks/t1/stream", (e) => got.push(e), new AbortController().signal, "3");
    expect(calls[0].url).toBe("/api/v1/tasks/t1/stream");
    expect(calls[0].headers["Last-Event-ID"]).toBe("3");
    expect(calls[0].headers.Authorization).toBe("Bearer aio_secret");
    expect(got.map((e) => [e.id, e.event])).toEqual([
      ["4", "token"],
      ["5", "done"],
    ]);
    await streamEvents("/s", () => undefined, new AbortController().signal);
    expect(calls[1].headers["Last-Event-ID"]).toBeUndefined();
  });
});

describe("the tasks list", () => {
  it("is polled only while a task runs and the page is visible", () => {
    expect(shouldPoll([{ status: "OK" }, { status: "RUNNING" }], true)).toBe(true);
    expect(shouldPoll([{ status: "RUNNING" }], false)).toBe(false);
    expect(shouldPoll([{ status: "OK" }, { status: "CANCELED" }], true)).toBe(false);
    expect(shouldPoll([], true)).toBe(false);
  });

  it("a refreshed first page keeps the further pages loaded, without duplicates", () => {
    const key = (r: { id: string }) => r.id;
    const prev = ["c", "b", "a"].map((id) => ({ id, v: 1 }));
    const first = [
      { id: "d", v: 2 },
      { id: "c", v: 2 },
    ];
    expect(mergeFirstPage(prev, first, key)).toEqual([
      { id: "d", v: 2 },
      { id: "c", v: 2 },
      { id: "b", v: 1 },
      { id: "a", v: 1 },
    ]);
  });
});
