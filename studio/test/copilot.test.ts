import { describe, expect, it } from "vitest";
import { modelStatus, modelSuggestions, ms, nlInput, opLabel, proposalsOf, stable, usd } from "../src/api/copilot";

describe("Copilot panel helpers", () => {
  it("names each operation in words for the step list", () => {
    expect(opLabel({ op: "create_node", name: "P", state: { type: "parallel" } })).toBe("add state P (parallel)");
    expect(opLabel({ op: "update_node", name: "Fetch", patch: { retry: [] } })).toBe("set retry on Fetch");
    expect(opLabel({ op: "delete_node", name: "Two", relink_to: "P" })).toBe("delete Two, its predecessors go to P");
    expect(opLabel({ op: "connect_nodes", from: "A", to: "B", via: "catch" })).toBe("connect A → B (catch)");
    expect(opLabel({ op: "validate_graph" })).toBe("validate graph");
  });

  it("says plainly when no model is configured, from the backend's own reason", () => {
    const none = modelStatus({ used: false, reason: "no AI intent 'copilot.suggest' is configured: rule-based suggestions only" });
    expect(none.configured).toBe(false);
    expect(none.text).toContain("No model is configured");
    expect(none.text).toContain("copilot.suggest");
    expect(modelStatus({ used: true, accepted: [], rejected: [] }).configured).toBe(true);
    expect(modelStatus({ used: true, error: "timeout" }).text).toContain("failed: timeout");
    expect(modelStatus(null).configured).toBe(false);
  });

  it("reads a model's proposals from a task result ({text} holding JSON, or JSON)", () => {
    const proposals = [
      { title: "retry the call", operations: [{ op: "update_node", name: "Fetch", patch: { retry: [] } }] },
      { title: "no operations" },
    ];
    const fromText = proposalsOf({ text: JSON.stringify({ proposals }), confidence: 0.9 });
    expect(fromText).toHaveLength(1);
    expect(fromText[0]).toMatchObject({ rule: "model", message: "retry the call", source: "model" });
    expect(proposalsOf(proposals)).toHaveLength(1);
    expect(proposalsOf("not json")).toEqual([]);
    expect(proposalsOf(null)).toEqual([]);
  });

  it("shows the model proposals the server accepted, and why it rejected the others", () => {
    const out = modelSuggestions({
      used: true,
      accepted: [{ proposal: { title: "retry the call", operations: [{ op: "update_node", name: "Fetch", patch: { retry: [] } }] } }],
      rejected: [
        { proposal: { title: "jump nowhere", operations: [] }, reason: "no operations" },
        { proposal: "Hello from stand-in", reason: "not JSON" },
      ],
    });
    expect(out.accepted).toEqual([expect.objectContaining({ message: "retry the call", source: "model", valid: true })]);
    expect(out.rejected).toEqual([
      { title: "jump nowhere", reason: "no operations" },
      { title: "Hello from stand-in", reason: "not JSON" },
    ]);
    expect(modelSuggestions({ used: false, reason: "none" })).toEqual({ accepted: [], rejected: [] });
  });

  it("sends a request with the draft it is about as the intent's one input", () => {
    const text = nlInput("add a retry to Fetch", { entry: "Fetch", states: {} });
    expect(text.startsWith("Request: add a retry to Fetch\n")).toBe(true);
    expect(text).toContain('{"entry":"Fetch","states":{}}');
    expect(text).toContain('"proposals"');
  });

  it("compares drafts by value whatever the key order", () => {
    expect(stable({ b: 1, a: { d: [1, { y: 2, x: 1 }], c: null } })).toBe(stable({ a: { c: null, d: [1, { x: 1, y: 2 }] }, b: 1 }));
    expect(stable({ a: [1, 2] })).not.toBe(stable({ a: [2, 1] }));
  });

  it("formats durations and costs", () => {
    expect(ms(null)).toBe("—");
    expect(ms(850.4)).toBe("850 ms");
    expect(ms(1250)).toBe("1.3 s");
    expect(usd(0)).toBe("$0");
    expect(usd(0.0012345)).toBe("$0.0012");
    expect(usd(1.5)).toBe("$1.50");
  });
});
