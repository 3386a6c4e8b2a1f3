import { describe, expect, it } from "vitest";
import { ApiError } from "../src/api/client";
import { emptyStream, foldStream, noPolicy, resultText, submitBody } from "../src/api/tasks";

describe("task streams", () => {
  it("appends tokens, restarts on a reset partial and ends with the envelope", () => {
    let s = emptyStream;
    s = foldStream(s, { event: "token", data: { text: "Hello" } });
    s = foldStream(s, { event: "token", data: { text: " from" } });
    expect(s.text).toBe("Hello from");
    expect(s.tokens).toBe(2);
    s = foldStream(s, { event: "partial", data: { text: "", reset: true, reason: "local failed" } });
    expect(s.text).toBe("");
    expect(s.note).toContain("local failed");
    s = foldStream(s, { event: "token", data: { text: "Hi" } });
    s = foldStream(s, { event: "partial", data: { text: "Hi there" } });
    expect(s.text).toBe("Hi there");
    s = foldStream(s, { event: "done", data: { task_id: "t1", intent: "summarize", status: "OK" } });
    expect(s.ended).toBe(true);
    expect(s.envelope?.status).toBe("OK");
  });

  it("shows a result as text", () => {
    expect(resultText({ text: "abc", confidence: 1 })).toBe("abc");
    expect(resultText("x")).toBe("x");
    expect(resultText(null)).toBe("");
    expect(resultText({ a: 1 })).toContain('"a": 1');
  });
});

describe("submitting a task", () => {
  it("builds the body and names the field that is wrong", () => {
    expect(submitBody("summarize", '{"text": "hi"}', { privacy: "local-only", budget: "0.01" })).toEqual({
      schema_version: "1.0",
      intent: "summarize",
      params: { text: "hi" },
      stream: true,
      privacy: "local-only",
      budget_usd: 0.01,
    });
    expect(() => submitBody(" ", "{}")).toThrow(/^intent:/);
    expect(() => submitBody("x", "{nope")).toThrow(/^params:/);
    expect(() => submitBody("x", "[1]")).toThrow(/params: a JSON object/);
    expect(() => submitBody("x", "{}", { budget: "-1" })).toThrow(/^budget_usd:/);
  });

  it("recognises the 409 of a server with no AI policy loaded", () => {
    expect(noPolicy(new ApiError(409, "conflict", "no AI policy is loaded: put intents.yml … in /x", null))).toBe(true);
    expect(noPolicy(new ApiError(409, "conflict", "something else", null))).toBe(false);
    expect(noPolicy(new ApiError(404, "not_found", "no AI policy", null))).toBe(false);
  });
});
