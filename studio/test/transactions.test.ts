import { describe, expect, it } from "vitest";
import * as edits from "../src/dsl/edits";
import { dslToGraph } from "../src/dsl/graph";
import { TransactionLog, type Snapshot } from "../src/dsl/history";
import { getState } from "../src/dsl/scope";
import { STATE_TYPES, type Workflow } from "../src/dsl/types";
import { workflowFiles } from "./workflows";

const base = (): Workflow => JSON.parse(JSON.stringify(workflowFiles().find((f) => f.name === "order-processing.json")!.doc));
const nested = (): Workflow => JSON.parse(JSON.stringify(workflowFiles().find((f) => f.name === "nested.json")!.doc));

type Edit = [string, (s: Snapshot) => Snapshot];
const onDoc = (f: (d: Workflow) => Workflow) => (s: Snapshot) => ({ doc: f(s.doc), positions: s.positions });

const EDITS: Edit[] = [
  ["add task", onDoc((d) => edits.addState(d, [], "task").doc)],
  ["add in branch", onDoc((d) => edits.addState(d, ["Fanout", 1], "set", "B2").doc)],
  ["delete with edge repair", onDoc((d) => edits.deleteStates(d, ["CheckAmount"]))],
  ["delete nested", onDoc((d) => edits.deleteStates(d, ["Fanout/#0/A1"]))],
  ["move", (s) => ({ doc: s.doc, positions: { ...s.positions, ProcessOrder: { x: 10, y: 20 } } })],
  ["connect", onDoc((d) => edits.connect(d, "ManualReview", "Failed"))],
  ["change property", onDoc((d) => edits.setStateField(d, "ProcessOrder", "parameters", { url: "http://x" }))],
  ["remove property", onDoc((d) => edits.setStateField(d, "ProcessOrder", "retry", undefined))],
  ["replace type", onDoc((d) => edits.replaceType(d, "ManualReview", "wait"))],
  ["rename", onDoc((d) => edits.renameState(d, "NotifyCustomer", "Notify"))],
  ["paste", onDoc((d) => edits.pasteStates(d, [], { ProcessOrder: getState(d, "ProcessOrder")! }).doc)],
  ["workflow field", onDoc((d) => edits.setWorkflowField(d, "timeout_seconds", 9))],
  ["add branch", onDoc((d) => edits.editBranches(d, "Fanout"))],
  ["delete next transition", onDoc((d) => edits.deleteTransition(d, "ManualReview", "next", 0))],
  ["delete route transition", onDoc((d) => edits.deleteTransition(d, "CheckAmount", "route", 0))],
  ["delete catch transition", onDoc((d) => edits.deleteTransition(d, "ProcessOrder", "catch", 0))],
];

describe("transaction log", () => {
  for (const [label, edit] of EDITS) {
    it(`${label} undoes to the identical document and redoes to the same result`, () => {
      const doc = label.includes("nested") || label.includes("branch") ? nested() : base();
      const start: Snapshot = { doc, positions: { Failed: { x: 1, y: 2 } } };
      const frozen = JSON.stringify(start);
      const log = new TransactionLog(start);
      const after = log.commit(label, edit);
      expect(JSON.stringify(after)).not.toBe(frozen);
      expect(JSON.stringify(start)).toBe(frozen); // edits never mutate their input
      log.undo();
      expect(JSON.stringify(log.present)).toBe(frozen);
      expect(log.present).toEqual(JSON.parse(frozen));
      log.redo();
      expect(JSON.stringify(log.present)).toBe(JSON.stringify(after));
    });
  }

  it("undoes a whole sequence step by step back to the start", () => {
    const start: Snapshot = { doc: base(), positions: {} };
    const log = new TransactionLog(start);
    const seen = [JSON.stringify(start)];
    for (const [label, edit] of EDITS.filter(([l]) => !l.includes("nested") && !l.includes("branch") && !l.includes("transition"))) {
      log.commit(label, edit);
      seen.push(JSON.stringify(log.present));
    }
    for (let i = seen.length - 1; i > 0; i--) {
      expect(JSON.stringify(log.present)).toBe(seen[i]);
      log.undo();
    }
    expect(JSON.stringify(log.present)).toBe(seen[0]);
    expect(log.canUndo).toBe(false);
    while (log.canRedo) log.redo();
    expect(JSON.stringify(log.present)).toBe(seen[seen.length - 1]);
  });

  it("a new edit after undo drops the redo branch", () => {
    const log = new TransactionLog({ doc: base(), positions: {} });
    log.commit("a", EDITS[0][1]);
    log.undo();
    log.commit("b", EDITS[5][1]);
    expect(log.canRedo).toBe(false);
  });

  it("an edit that throws leaves the log untouched", () => {
    const log = new TransactionLog({ doc: base(), positions: {} });
    expect(() => log.commit("bad", onDoc((d) => edits.renameState(d, "ProcessOrder", "Failed")))).toThrow(/already exists/);
    expect(log.canUndo).toBe(false);
  });
});

describe("edits", () => {
  it("delete repairs edges: predecessors follow the deleted state's next", () => {
    const d = edits.deleteStates(base(), ["CheckAmount"]);
    expect(d.states.ProcessOrder.next).toBeUndefined();
    expect(d.states.ProcessOrder.end).toBe(true);
    const d2 = edits.deleteStates(base(), ["ManualReview"]);
    expect(d2.states.CheckAmount.routes).toEqual([{ condition: "{% input.amount > 100 %}", next: "NotifyCustomer" }]);
    const d3 = edits.deleteStates(base(), ["Failed"]);
    expect(d3.states.ProcessOrder.catch).toBeUndefined();
    const d4 = edits.deleteStates(base(), ["ProcessOrder"]);
    expect(d4.entry).toBe("CheckAmount");
  });

  it("deleting a transition leaves a valid state: next becomes end, routes and catchers go", () => {
    let d = edits.deleteTransition(base(), "ManualReview", "next", 0);
    expect(d.states.ManualReview.end).toBe(true);
    expect(d.states.ManualReview.next).toBeUndefined();
    d = edits.deleteTransition(d, "CheckAmount", "default", 0);
    expect(d.states.CheckAmount.default).toBeUndefined();
    d = edits.deleteTransition(d, "ProcessOrder", "catch", 0);
    expect(d.states.ProcessOrder.catch).toBeUndefined();
    expect(() => edits.deleteTransition(d, "ProcessOrder", "catch", 0)).toThrow(/no catcher/);
  });

  it("every graph edge id names its transition", () => {
    const g = dslToGraph(nested());
    for (const e of g.edges) expect(edits.parseEdgeId(e.id)).toEqual({ source: e.source, kind: e.kind, index: e.index, target: e.target });
  });

  it("rename keeps order and every reference", () => {
    const d = edits.renameState(base(), "NotifyCustomer", "Notify");
    expect(Object.keys(d.states)).toEqual(["ProcessOrder", "CheckAmount", "ManualReview", "Notify", "Failed"]);
    expect(d.states.CheckAmount.default).toBe("Notify");
    expect(d.states.ManualReview.next).toBe("Notify");
    expect(() => edits.renameState(base(), "Failed", "bad name")).toThrow(/not a valid/);
  });

  it("connect sets next and drops end; a router gains a route then a default", () => {
    let d = edits.connect(base(), "NotifyCustomer", "Failed");
    expect(d.states.NotifyCustomer.next).toBe("Failed");
    expect(d.states.NotifyCustomer.end).toBeUndefined();
    d = edits.addState(d, [], "router", "R").doc;
    d = edits.connect(d, "R", "Failed");
    expect(d.states.R.routes).toEqual([{ condition: "{% true %}", next: "Failed" }]);
    d = edits.connect(d, "R", "ManualReview");
    expect(d.states.R.default).toBe("ManualReview");
    expect(() => edits.connect(d, "Failed", "R")).toThrow(/ends the workflow/);
  });

  it("replace type keeps name, comment and transition", () => {
    for (const t of STATE_TYPES) {
      const d = edits.replaceType(base(), "ManualReview", t);
      const s = d.states.ManualReview;
      expect(s.type).toBe(t);
      if (t === "succeed" || t === "fail") expect(s.next).toBeUndefined();
      else if (t === "router") expect(s.default).toBe("NotifyCustomer");
      else expect(s.next).toBe("NotifyCustomer");
    }
  });

  it("paste renames clashes and keeps internal references", () => {
    const d = base();
    const { doc, names } = edits.pasteStates(d, [], { ManualReview: d.states.ManualReview, NotifyCustomer: d.states.NotifyCustomer });
    expect(names).toEqual(["ManualReview2", "NotifyCustomer2"]);
    expect(doc.states.ManualReview2.next).toBe("NotifyCustomer2");
  });

  it("first state added to an empty workflow becomes the entry", () => {
    const { doc, name } = edits.addState({ entry: "", states: {} }, [], "set");
    expect(name).toBe("Set");
    expect(doc.entry).toBe("Set");
    const again = edits.addState(doc, [], "set");
    expect(again.name).toBe("Set2");
    expect(again.doc.entry).toBe("Set");
  });
});
