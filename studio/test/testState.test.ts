import { describe, expect, it } from "vitest";
import { CAPTURE_PREFIX, flowOrder, pathTaken, selectionWorkflow, sideEffects, testOutcome, testWorkflow } from "../src/dsl/testState";
import type { State, Workflow } from "../src/dsl/types";

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

describe("testing a selection of states", () => {
  // A → B → (router C: big → D, else → E); B catches into E; E → F (end)
  const scope = {
    entry: "A",
    states: {
      E: { type: "set", value: 1, next: "F" },
      A: { type: "set", value: {}, next: "B" },
      B: { type: "task", action: "http", next: "C", catch: [{ errors: ["States.ALL"], next: "E" }] },
      C: { type: "router", routes: [{ condition: "{% input.big %}", next: "D" }], default: "E" },
      D: { type: "succeed" },
      F: { type: "set", value: 2, end: true },
    },
  } as unknown as Workflow;

  it("starts at the selected state no other selected state leads to, keeps inner transitions and ends at the boundary", () => {
    const run = selectionWorkflow(scope, ["C", "B"]);
    expect(run.names).toEqual(["B", "C"]);
    expect(run.starts).toEqual(["B"]);
    expect(run.workflow.entry).toBe("B");
    const { B, C } = run.workflow.states;
    expect(B.next).toBe("C"); // inside the selection: kept
    expect(run.exits[B.catch![0].next]).toBe("E (caught)"); // leaves it: a capture
    expect(run.exits[C.routes![0].next]).toBe("D");
    expect(run.exits[C.default!]).toBe("E");
    expect(Object.keys(run.workflow.states).filter((n) => !n.startsWith(CAPTURE_PREFIX)).sort()).toEqual(["B", "C"]);
    expect(scope.states.B.next).toBe("C"); // the editor's states are not changed
    expect(scope.states.B.catch![0].next).toBe("E");
  });

  it("an end inside the selection ends at a capture of (end); a catcher into the selection is kept", () => {
    const run = selectionWorkflow(scope, ["B", "E", "F"]);
    expect(run.workflow.entry).toBe("B");
    expect(run.workflow.states.B.catch![0].next).toBe("E");
    expect(run.workflow.states.E.next).toBe("F");
    expect(run.exits[run.workflow.states.F.next!]).toBe("(end)");
    expect(run.exits[run.workflow.states.B.next!]).toBe("C");
  });

  it("several possible starts: the first in flow order, unless one is chosen", () => {
    const run = selectionWorkflow(scope, ["F", "A"]);
    expect(run.starts).toEqual(["A", "F"]);
    expect(run.workflow.entry).toBe("A");
    expect(selectionWorkflow(scope, ["F", "A"], "F").workflow.entry).toBe("F");
    // a cycle has no start: the first in flow order
    const loop = { entry: "X", states: { X: { type: "set", value: 1, next: "Y" }, Y: { type: "set", value: 1, next: "X" } } } as unknown as Workflow;
    const cyc = selectionWorkflow(loop, ["Y", "X"]);
    expect(cyc.starts).toEqual([]);
    expect(cyc.workflow.entry).toBe("X");
    expect(cyc.exits).toEqual({});
  });

  it("flow order is breadth-first from the entry, then the unreachable states as written", () => {
    expect(flowOrder(scope)).toEqual(["A", "B", "C", "E", "D", "F"]);
  });

  it("reads the path taken from the top-level StateEntered events of the selection", () => {
    const run = selectionWorkflow(scope, ["B", "C"]);
    const events = [
      { type: "ExecutionStarted" },
      { type: "StateEntered", state: "B", frame: "r" },
      { type: "StateEntered", state: "C", frame: "r.B.0" }, // a nested state of the same name: not on the path
      { type: "StateExited", state: "B", frame: "r" },
      { type: "StateEntered", state: "C", frame: "r" },
      { type: "StateEntered", state: `${CAPTURE_PREFIX}1`, frame: "r" },
    ];
    expect(pathTaken(events, run)).toEqual(["B", "C"]);
  });
});
