/** The DSL as a graph (nodes and edges for the canvas) and back again, without loss.
 *
 * Parallel states become a group node holding one branch group per branch; map states
 * become a group node holding their processor's states. Every field the Studio does not
 * draw (comments, unknown keys, key order) travels on the node so that
 * `graphToDsl(dslToGraph(doc))` is the identical document.
 */
import { nodeId, scopeKey, type ScopePath } from "./scope";
import { isObject, type Json, type Scope, type State, type StateType, type Workflow } from "./types";

export type EdgeKind = "next" | "route" | "default" | "catch";

export interface StateNode {
  kind: "state";
  id: string;
  name: string;
  scope: ScopePath;
  parentId?: string;
  stateType: StateType;
  /** the state without its nested scopes */
  fields: Record<string, unknown>;
  keys: string[];
  entry: boolean;
  /** map: the processor's own fields other than `states` */
  processor?: { fields: Record<string, unknown>; keys: string[] };
}

export interface BranchNode {
  kind: "branch";
  id: string;
  index: number;
  scope: ScopePath;
  parentId: string;
  fields: Record<string, unknown>;
  keys: string[];
}

export type GraphNode = StateNode | BranchNode;

export interface GraphEdge {
  id: string;
  source: string;
  target: string;
  kind: EdgeKind;
  index: number;
  label: string;
}

export interface Graph {
  nodes: GraphNode[];
  edges: GraphEdge[];
  meta: { fields: Record<string, unknown>; keys: string[] };
}

const NESTED = new Set(["branches", "processor"]);

function split(obj: Record<string, unknown>, drop: Set<string>) {
  const fields: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) if (!drop.has(k)) fields[k] = v;
  return { fields, keys: Object.keys(obj) };
}

export function dslToGraph(doc: Workflow): Graph {
  const nodes: GraphNode[] = [];
  const edges: GraphEdge[] = [];
  const meta = split(doc as Record<string, unknown>, new Set(["states"]));
  walk(doc, [], undefined, nodes, edges);
  return { nodes, edges, meta };
}

function walk(scope: Scope, path: ScopePath, parentId: string | undefined, nodes: GraphNode[], edges: GraphEdge[]) {
  const states = isObject(scope.states) ? scope.states : {};
  for (const [name, state] of Object.entries(states)) {
    const id = nodeId(path, name);
    const { fields, keys } = split(state as Record<string, unknown>, NESTED);
    const node: StateNode = {
      kind: "state",
      id,
      name,
      scope: path,
      parentId,
      stateType: state.type,
      fields,
      keys,
      entry: scope.entry === name,
    };
    nodes.push(node);
    if (state.type === "map" && isObject(state.processor)) {
      const proc = split(state.processor as Record<string, unknown>, new Set(["states"]));
      node.processor = proc;
      walk(state.processor, [...path, name], id, nodes, edges);
    }
    if (state.type === "parallel" && Array.isArray(state.branches)) {
      state.branches.forEach((branch, index) => {
        const bpath = [...path, name, index];
        const bid = scopeKey(bpath);
        const b = split(branch as Record<string, unknown>, new Set(["states"]));
        nodes.push({ kind: "branch", id: bid, index, scope: bpath, parentId: id, fields: b.fields, keys: b.keys });
        walk(branch, bpath, bid, nodes, edges);
      });
    }
    for (const e of stateEdges(state)) {
      if (typeof e.target !== "string" || !(e.target in states)) continue;
      const target = nodeId(path, e.target);
      edges.push({ id: `${id}->${e.kind}${e.index}->${target}`, source: id, target, kind: e.kind, index: e.index, label: e.label });
    }
  }
}

/** The outgoing transitions of one state, in drawing order. */
export function stateEdges(state: State): { kind: EdgeKind; index: number; target: string; label: string }[] {
  const out: { kind: EdgeKind; index: number; target: string; label: string }[] = [];
  if (typeof state.next === "string" && state.next) out.push({ kind: "next", index: 0, target: state.next, label: "" });
  if (Array.isArray(state.routes)) {
    state.routes.forEach((r, i) => {
      if (isObject(r) && typeof r.next === "string") out.push({ kind: "route", index: i, target: r.next, label: conditionLabel(r.condition) });
    });
  }
  if (typeof state.default === "string" && state.default) out.push({ kind: "default", index: 0, target: state.default, label: "default" });
  if (Array.isArray(state.catch)) {
    state.catch.forEach((c, i) => {
      if (isObject(c) && typeof c.next === "string")
        out.push({ kind: "catch", index: i, target: c.next, label: `catch ${(Array.isArray(c.errors) ? c.errors : []).join(", ")}` });
    });
  }
  return out;
}

export function conditionLabel(condition: unknown): string {
  const text = typeof condition === "string" ? condition.replace(/^\{%\s*|\s*%\}$/g, "") : JSON.stringify(condition ?? "");
  return text.length > 28 ? text.slice(0, 27) + "…" : text;
}

function join(fields: Record<string, unknown>, keys: string[], extra: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of keys) {
    if (k in extra) out[k] = extra[k];
    else if (k in fields) out[k] = fields[k];
  }
  for (const [k, v] of Object.entries(fields)) if (!(k in out)) out[k] = v;
  for (const [k, v] of Object.entries(extra)) if (!(k in out)) out[k] = v;
  return out;
}

export function graphToDsl(graph: Graph): Workflow {
  const children = new Map<string | undefined, GraphNode[]>();
  for (const n of graph.nodes) {
    const list = children.get(n.parentId) ?? [];
    list.push(n);
    children.set(n.parentId, list);
  }
  const statesOf = (parentId: string | undefined): Record<string, Json> => {
    const states: Record<string, Json> = {};
    for (const n of children.get(parentId) ?? []) {
      if (n.kind !== "state") continue;
      const extra: Record<string, unknown> = {};
      if (n.stateType === "map" && n.processor) {
        extra.processor = join(n.processor.fields, n.processor.keys, { states: statesOf(n.id) });
      }
      if (n.stateType === "parallel" && n.keys.includes("branches")) {
        const branches = (children.get(n.id) ?? []).filter((b): b is BranchNode => b.kind === "branch");
        branches.sort((a, b) => a.index - b.index);
        extra.branches = branches.map((b) => join(b.fields, b.keys, { states: statesOf(b.id) }));
      }
      states[n.name] = join(n.fields, n.keys, extra) as Json;
    }
    return states;
  };
  return join(graph.meta.fields, graph.meta.keys, { states: statesOf(undefined) }) as unknown as Workflow;
}
