/** Auto layout with dagre, one scope at a time from the inside out: a parallel or map group
 * is laid out first so that its size is known when its own scope is laid out. */
import dagre from "@dagrejs/dagre";
import type { Graph, GraphNode } from "./graph";
import type { Position } from "./history";

export const NODE_W = 200;
export const NODE_H = 52;
const PAD = 24;
const HEADER = 34;

export interface Box extends Position {
  width: number;
  height: number;
}

/** Position (relative to the parent group) and size of every node. */
export function layoutGraph(graph: Graph, fixed: Record<string, Position> = {}): Record<string, Box> {
  const boxes: Record<string, Box> = {};
  const children = new Map<string | undefined, GraphNode[]>();
  for (const n of graph.nodes) {
    const list = children.get(n.parentId) ?? [];
    list.push(n);
    children.set(n.parentId, list);
  }

  const sizeOf = (n: GraphNode): { width: number; height: number } => {
    const kids = children.get(n.id);
    if (!kids?.length) return n.kind === "branch" ? { width: NODE_W + 2 * PAD, height: NODE_H + HEADER + PAD } : { width: NODE_W, height: NODE_H };
    const inner = layoutScope(n.id, kids);
    return { width: Math.max(NODE_W, inner.width + 2 * PAD), height: inner.height + HEADER + PAD };
  };

  const layoutScope = (parentId: string | undefined, nodes: GraphNode[]): { width: number; height: number } => {
    const sizes = new Map(nodes.map((n) => [n.id, sizeOf(n)]));
    const branchRow = nodes.every((n) => n.kind === "branch");
    if (branchRow) {
      // branches of a parallel state sit side by side
      let x = PAD;
      let h = 0;
      for (const n of nodes) {
        const s = sizes.get(n.id)!;
        boxes[n.id] = { x, y: HEADER, ...s };
        x += s.width + PAD;
        h = Math.max(h, s.height);
      }
      return { width: x - 2 * PAD, height: h };
    }
    const g = new dagre.graphlib.Graph();
    g.setGraph({ rankdir: "TB", nodesep: 40, ranksep: 50, marginx: 0, marginy: 0 });
    g.setDefaultEdgeLabel(() => ({}));
    for (const n of nodes) g.setNode(n.id, { ...sizes.get(n.id)! });
    const ids = new Set(nodes.map((n) => n.id));
    for (const e of graph.edges) if (ids.has(e.source) && ids.has(e.target) && e.source !== e.target) g.setEdge(e.source, e.target);
    dagre.layout(g);
    let width = 0;
    let height = 0;
    const offset = parentId === undefined ? { x: 0, y: 0 } : { x: PAD, y: HEADER };
    for (const n of nodes) {
      const d = g.node(n.id);
      const s = sizes.get(n.id)!;
      const auto = { x: d.x - s.width / 2 + offset.x, y: d.y - s.height / 2 + offset.y };
      const pos = fixed[n.id] ?? auto;
      boxes[n.id] = { ...pos, ...s };
      width = Math.max(width, pos.x - offset.x + s.width);
      height = Math.max(height, pos.y - offset.y + s.height);
    }
    return { width, height };
  };

  layoutScope(undefined, children.get(undefined) ?? []);
  return boxes;
}

/** Where a new node of `size` goes near `at` without overlapping any of `taken` (its siblings
 * in the same scope): moved down below whatever it would cover, `gap` apart. */
export function freeSpot(at: Position, taken: Box[], size = { width: NODE_W, height: NODE_H }, gap = 16): Position {
  let p = { ...at };
  for (let i = 0; i <= taken.length; i++) {
    const hit = taken.find((b) => p.x < b.x + b.width + gap && p.x + size.width + gap > b.x && p.y < b.y + b.height + gap && p.y + size.height + gap > b.y);
    if (!hit) return p;
    p = { x: p.x, y: hit.y + hit.height + gap };
  }
  return p;
}
