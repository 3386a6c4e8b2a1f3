import { describe, expect, it } from "vitest";
import { sideEffects, testOutcome, testWorkflow } from "../src/dsl/testState";
import type { State } from "../src/dsl/types";

describe("testing one state", () => {
  it("runs the state with every way out captured: next, routes, default and catchers", () => {
    const router: State = { type: "router", routes: [{ condition: "{% input.amount > 100 %}", next: "Review" }, { condition: "{% true %}", next: "Price" }], default: "Price" };
    const run = testWorkflow("Check", router);
    expect(run.workflow.entry).toBe("Check");
    expect(Object.values(run.exits).sort()).toEqual(["Price", "Review"]);
    const check = run.workflow.states.Check;
    expect(check.routes!.map((r) => run.exits[r.next])).toEqual(["Review", "Price"]);
    expect(run.exits[check.default!]).toBe("Price");
    // every capture records where it went, the output and the variables in force
    const cap = run.workflow.states[check.default!];
    expect(cap).toEqual({ type: "set", value: { next: "Price", output: "{% input %}", variables: "{% vars %}" }, end: true });
  });

  it("an end state goes to a capture of (end); a catcher to a capture of its target", () => {
    const task: State = { type: "task", action: "http", end: true, catch: [{ errors: ["States.ALL"], next: "Oops" }] };
    const run = testWorkflow("Call", task);
    const call = run.workflow.states.Call;
    expect(call.end).toBeUndefined();
    expect(run.exits[call.next!]).toBe("(end)");
    expect(run.exits[call.catch![0].next]).toBe("Oops (caught)");
    expect(task.end).toBe(true); // the editor's state is not changed
  });

  it("knows which states would act for real (tasks, nested ones too)", () => {
    expect(sideEffects({ type: "set", value: 1, end: true })).toEqual([]);
    expect(sideEffects({ type: "task", action: "http", end: true })).toEqual(["(this state)"]);
    const map: State = { type: "map", items: "{% input %}", processor: { entry: "A", states: { A: { type: "task", action: "x", next: "B" }, B: { type: "succeed" } } }, end: true };
    expect(sideEffects(map)).toEqual(["A"]);
  });

  it("reads the outcome: output, variables and the way out; or the error", () => {
    const run = testWorkflow("S", { type: "set", value: {}, next: "T" });
    expect(testOutcome({ status: "SUCCEEDED", output: { next: "T", output: { x: 2 }, variables: { seen: 1 } } }, run)).toEqual({
      status: "SUCCEEDED",
      next: "T",
      output: { x: 2 },
      variables: { seen: 1 },
    });
    expect(testOutcome({ status: "FAILED", error: { error: "States.Runtime", cause: "x" } }, run)).toEqual({ status: "FAILED", error: { error: "States.Runtime", cause: "x" } });
    const succeed = testWorkflow("Done", { type: "succeed" });
    expect(testOutcome({ status: "SUCCEEDED", output: { a: 1 } }, succeed)).toEqual({ status: "SUCCEEDED", next: "(end)", output: { a: 1 } });
  });
});
