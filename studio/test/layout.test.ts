import { describe, expect, it } from "vitest";
import { dslToGraph } from "../src/dsl/graph";
import { layoutGraph, NODE_H, NODE_W } from "../src/dsl/layout";
import { diffLines } from "../src/dsl/diff";
import { workflowFiles } from "./workflows";

const doc = (name: string) => workflowFiles().find((f) => f.name === name)!.doc;

function overlaps(a: { x: number; y: number; width: number; height: number }, b: { x: number; y: number; width: number; height: number }) {
  return a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
}

describe("layout", () => {
  it("places every node, without overlaps among siblings", () => {
    for (const { name, doc } of workflowFiles()) {
      const g = dslToGraph(doc);
      const boxes = layoutGraph(g);
      for (const n of g.nodes) expect(boxes[n.id], `${name}: ${n.id}`).toBeDefined();
      const byParent = new Map<string | undefined, string[]>();
      for (const n of g.nodes) byParent.set(n.parentId, [...(byParent.get(n.parentId) ?? []), n.id]);
      for (const ids of byParent.values())
        for (let i = 0; i < ids.length; i++) for (let j = i + 1; j < ids.length; j++) expect(overlaps(boxes[ids[i]], boxes[ids[j]]), `${name}: ${ids[i]} / ${ids[j]}`).toBe(false);
    }
  });

  it("ranks transitions top to bottom", () => {
    const boxes = layoutGraph(dslToGraph(doc("order-processing.json")));
    expect(boxes.ProcessOrder.y).toBeLessThan(boxes.CheckAmount.y);
    expect(boxes.CheckAmount.y).toBeLessThan(boxes.ManualReview.y);
    expect(boxes.ManualReview.y).toBeLessThan(boxes.NotifyCustomer.y);
    expect(boxes.ProcessOrder.width).toBe(NODE_W);
    expect(boxes.ProcessOrder.height).toBe(NODE_H);
  });

  it("sizes groups to hold their children", () => {
    const g = dslToGraph(doc("nested.json"));
    const boxes = layoutGraph(g);
    for (const n of g.nodes) {
      if (!n.parentId) continue;
      const c = boxes[n.id];
      const p = boxes[n.parentId];
      expect(c.x, n.id).toBeGreaterThanOrEqual(0);
      expect(c.y, n.id).toBeGreaterThanOrEqual(0);
      expect(c.x + c.width, n.id).toBeLessThanOrEqual(p.width + 0.5);
      expect(c.y + c.height, n.id).toBeLessThanOrEqual(p.height + 0.5);
    }
    expect(boxes["Fanout/#0"].x + boxes["Fanout/#0"].width).toBeLessThanOrEqual(boxes["Fanout/#1"].x);
  });

  it("keeps positions the user chose", () => {
    const boxes = layoutGraph(dslToGraph(doc("order-processing.json")), { Failed: { x: 777, y: 55 } });
    expect(boxes.Failed.x).toBe(777);
    expect(boxes.Failed.y).toBe(55);
  });
});

describe("diff", () => {
  it("pairs changed lines and keeps the rest aligned", () => {
    const rows = diffLines(["a", "b", "c", "d"], ["a", "B", "c", "d", "e"]);
    expect(rows.map((r) => r.kind)).toEqual(["same", "changed", "same", "same", "added"]);
    expect(rows[1]).toEqual({ left: "b", right: "B", kind: "changed" });
  });
});

describe("a state dropped into a scope", () => {
  it("goes where it was dropped when that is free, else just below what it would cover", async () => {
    const { freeSpot, NODE_W, NODE_H } = await import("../src/dsl/layout");
    const taken = [{ x: 24, y: 34, width: NODE_W, height: NODE_H }];
    expect(freeSpot({ x: 400, y: 34 }, taken)).toEqual({ x: 400, y: 34 });
    const spot = freeSpot({ x: 40, y: 50 }, taken);
    expect(spot).toEqual({ x: 40, y: 34 + NODE_H + 16 });
    // and below a second one in the way too
    const two = [...taken, { x: 30, y: 34 + NODE_H + 10, width: NODE_W, height: NODE_H }];
    const s2 = freeSpot({ x: 40, y: 50 }, two);
    for (const b of two) expect(s2.y >= b.y + b.height || s2.x >= b.x + b.width).toBe(true);
  });
});
