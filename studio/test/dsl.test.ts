import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { dslToGraph, graphToDsl } from "../src/dsl/graph";
import { locatePointer, statePointer, getState } from "../src/dsl/scope";
import { checkWorkflow } from "../src/dsl/validate";
import { workflowFiles } from "./workflows";

describe("graph ⇄ DSL", () => {
  const files = workflowFiles();
  it("has the Studio's own fixtures and every example workflow", () => {
    expect(files.map((f) => f.name)).toEqual(expect.arrayContaining(["every-type.json", "nested.json", "order-processing.json"]));
    const examples = join(import.meta.dirname, "..", "..", "examples", "workflows");
    const expected = existsSync(examples) ? readdirSync(examples).filter((f) => /\.(json|ya?ml)$/.test(f) && !f.endsWith(".input.json") && !f.endsWith(".asl.json")) : [];
    expect(files.map((f) => f.name)).toEqual(expect.arrayContaining(expected));
  });

  for (const { name, doc } of files) {
    it(`round-trips ${name} losslessly, key order included`, () => {
      const graph = dslToGraph(doc);
      const back = graphToDsl(JSON.parse(JSON.stringify(graph)));
      expect(back).toEqual(doc);
      expect(JSON.stringify(back)).toBe(JSON.stringify(doc));
    });
  }

  it("draws next, route, default and catch edges", () => {
    const doc = files.find((f) => f.name === "order-processing.json")!.doc;
    const g = dslToGraph(doc);
    const edges = g.edges.map((e) => `${e.source} ${e.kind} ${e.target}`).sort();
    expect(edges).toEqual(
      [
        "CheckAmount default NotifyCustomer",
        "CheckAmount route ManualReview",
        "ManualReview next NotifyCustomer",
        "ProcessOrder catch Failed",
        "ProcessOrder next CheckAmount",
      ].sort(),
    );
    expect(g.edges.find((e) => e.kind === "route")!.label).toBe("input.amount > 100");
  });

  it("nests parallel branches and map processors as groups", () => {
    const doc = files.find((f) => f.name === "nested.json")!.doc;
    const g = dslToGraph(doc);
    const parent = Object.fromEntries(g.nodes.map((n) => [n.id, n.parentId ?? null]));
    expect(parent["Fanout/#0"]).toBe("Fanout");
    expect(parent["Fanout/#0/A1"]).toBe("Fanout/#0");
    expect(parent["Fanout/#1/B1"]).toBe("Fanout/#1");
    expect(parent["Each/Inner"]).toBe("Each");
    expect(parent["Each/Inner/#0/Deep"]).toBe("Each/Inner/#0");
    // parents come before children (React Flow needs that)
    const order = g.nodes.map((n) => n.id);
    for (const n of g.nodes) if (n.parentId) expect(order.indexOf(n.parentId)).toBeLessThan(order.indexOf(n.id));
    expect(g.edges.map((e) => `${e.source}->${e.target}`)).toContain("Fanout/#0/A1->Fanout/#0/A2");
  });
});

describe("JSON pointers", () => {
  it("map pointers to nodes and fields, nested scopes included", () => {
    expect(locatePointer("/states/A/routes/0/next")).toEqual({ id: "A", field: "/routes/0/next" });
    expect(locatePointer("/states/P/branches/1/states/B1/seconds")).toEqual({ id: "P/#1/B1", field: "/seconds" });
    expect(locatePointer("/states/M/processor/states/X")).toEqual({ id: "M/X", field: "" });
    expect(locatePointer("/entry")).toEqual({ id: null, field: "/entry" });
    expect(locatePointer("/states/a~1b/next")).toEqual({ id: "a/b", field: "/next" });
    expect(statePointer("P/#1/B1")).toBe("/states/P/branches/1/states/B1");
    expect(statePointer("M/X")).toBe("/states/M/processor/states/X");
  });

  it("finds states by node id", () => {
    const doc = workflowFiles().find((f) => f.name === "nested.json")!.doc;
    expect(getState(doc, "Each/Inner/#0/Deep")?.action).toBe("transform");
    expect(getState(doc, "Each/Nope")).toBeUndefined();
  });
});

describe("studio checks", () => {
  it("accept every fixture and example workflow", () => {
    for (const { name, doc } of workflowFiles()) expect(checkWorkflow(doc), name).toEqual([]);
  });

  it("report states the entry cannot reach, in nested scopes too", () => {
    const problems = checkWorkflow({
      entry: "A",
      states: {
        A: { type: "succeed" },
        B: { type: "succeed" },
        M: { type: "map", processor: { entry: "X", states: { X: { type: "succeed" }, Y: { type: "succeed" } } }, end: true },
      },
    });
    expect(problems.map((p) => `${p.pointer} ${p.message}`).sort()).toEqual(
      ["/states/B unreachable from A", "/states/M unreachable from A", "/states/M/processor/states/Y unreachable from X"].sort(),
    );
  });

  it("report broken references with pointers", () => {
    const problems = checkWorkflow({ entry: "Nope", states: { A: { type: "router", routes: [{ condition: "", next: "Z" }] }, B: { type: "task", action: "" } } });
    const pointers = problems.map((p) => p.pointer).sort();
    expect(pointers).toEqual(["/entry", "/states/A/routes/0/condition", "/states/A/routes/0/next", "/states/B/action", "/states/B/next"].sort());
  });
});
