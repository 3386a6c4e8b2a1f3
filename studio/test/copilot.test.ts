import { describe, expect, it } from "vitest";
import { checkProposal, modelStatus, modelSuggestions, ms, nlInput, opLabel, proposalsOf, stable, usd } from "../src/api/copilot";

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

  it("checks a proposal on a scratch session: replayed steps, then its operations; a new problem or a refused operation rejects it", async () => {
    const calls: string[] = [];
    const validation = (n: number) => ({ valid: n === 0, errors: Array.from({ length: n }, (_, i) => ({ pointer: `/states/X${i}`, message: "bad" })) });
    const fake = (errorsAfter: Record<string, number>, refuse?: string) => ({
      open: async (wf: string) => (calls.push(`open ${wf}`), { session_id: "s1", workflow: wf, base_version: 1, status: "open" as const, draft: { entry: "A", states: {} }, validation: validation(0) }),
      operate: async (_id: string, op: { op: string; name?: string }) => {
        calls.push(`${op.op} ${op.name}`);
        if (op.name === refuse) throw new Error("no state 'Z'");
        return { session_id: "s1", operation: op.op, draft: { entry: "A", states: {} }, validation: validation(errorsAfter[op.name ?? ""] ?? 0), diff: [] };
      },
    });
    const step = { op: "update_node", name: "A", patch: { retry: [] } };
    const proposal = [{ op: "update_node", name: "B", patch: { x: 1 } }];
    expect(await checkProposal("wf", [step], proposal, fake({}))).toBeNull();
    expect(calls).toEqual(["open wf", "update_node A", "update_node B"]);
    expect(await checkProposal("wf", [], proposal, fake({ B: 1 }))).toBe("/states/X0: bad");
    expect(await checkProposal("wf", [], proposal, fake({}, "B"))).toBe("set x on B: no state 'Z'");
    expect(await checkProposal("wf", [], [{ op: "simulate_execution" }], fake({}))).toBe("simulate_execution is not an edit");
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
