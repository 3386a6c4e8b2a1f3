import { describe, expect, it } from "vitest";
import { stateRuns, type HistoryEvent } from "../src/pages/stateRuns";

let seq = 0;
const ev = (type: string, state: string | null, detail: unknown = null, frame = "root"): HistoryEvent => ({ seq: ++seq, ts: seq, type, state, frame, detail });

describe("a state's runs from the history", () => {
  it("collects input, each attempt's error and result, and the output", () => {
    const events = [
      ev("ExecutionStarted", null, { input: { a: 1 } }),
      ev("StateEntered", "Charge", { input: { a: 1 } }),
      ev("TaskScheduled", "Charge", { attempt: 1 }),
      ev("TaskFailed", "Charge", { attempt: 1, error: "Http.Status.503", cause: "busy" }),
      ev("RetryScheduled", "Charge", { error: "Http.Status.503", cause: "busy", delay_seconds: 2 }),
      ev("TaskScheduled", "Charge", { attempt: 2 }),
      ev("TaskSucceeded", "Charge", { attempt: 2, result: { ok: true } }),
      ev("StateExited", "Charge", { output: { ok: true } }),
      ev("StateEntered", "Other", { input: 1 }),
    ];
    const [visit, ...rest] = stateRuns(events, "Charge");
    expect(rest).toEqual([]);
    expect(visit.input).toEqual({ a: 1 });
    expect(visit.status).toBe("succeeded");
    expect(visit.output).toEqual({ ok: true });
    expect(visit.attempts).toEqual([
      { attempt: 1, error: { error: "Http.Status.503", cause: "busy" }, retryInSeconds: 2 },
      { attempt: 2, result: { ok: true } },
    ]);
  });

  it("keeps map items apart by frame and shows a caught failure", () => {
    const events = [
      ev("StateEntered", "Item", { input: 1 }, "m.0"),
      ev("StateEntered", "Item", { input: 2 }, "m.1"),
      ev("StateExited", "Item", { output: 10 }, "m.0"),
      ev("StateFailed", "Item", { error: "States.TaskFailed", cause: "boom" }, "m.1"),
      ev("Caught", "Item", { error: "States.TaskFailed", cause: "boom", next: "Fallback" }, "m.1"),
    ];
    const visits = stateRuns(events, "Item");
    expect(visits.map((v) => [v.frame, v.status, v.input])).toEqual([
      ["m.0", "succeeded", 1],
      ["m.1", "failed", 2],
    ]);
    expect(visits[1].error).toEqual({ error: "States.TaskFailed", cause: "boom", next: "Fallback" });
  });

  it("a state that is still running has no output yet", () => {
    const visits = stateRuns([ev("StateEntered", "Wait", { input: {} }), ev("WaitStarted", "Wait", { due_at: 99 })], "Wait");
    expect(visits).toHaveLength(1);
    expect(visits[0].status).toBe("running");
    expect(visits[0].output).toBeUndefined();
  });
});
