/** The canvas: states as nodes (parallel/map as nested groups), transitions as edges,
 * drag-and-drop from the palette, moves and connections as transactions. */
import {
  Background,
  BaseEdge,
  Controls,
  Handle,
  MarkerType,
  MiniMap,
  Position as Side,
  ReactFlow,
  applyNodeChanges,
  useReactFlow,
  type Edge,
  type EdgeProps,
  type Node,
  type NodeChange,
  type NodeProps,
} from "@xyflow/react";
import { memo, useEffect, useMemo, useState, type DragEvent } from "react";
import { dslToGraph, type Graph } from "../dsl/graph";
import type { Position } from "../dsl/history";
import { freeSpot, layoutGraph, type Box } from "../dsl/layout";
import { parseNodeId, statePointer, type ScopePath } from "../dsl/scope";
import { STATE_TYPES, type StateType, type Workflow } from "../dsl/types";
import type { Problem } from "../dsl/validate";

export const DND_TYPE = "application/x-aionix-state";

export interface StateNodeData extends Record<string, unknown> {
  name: string;
  stateType: StateType;
  /** the ASL type (Choice, Pass…) when the document is ASL */
  aslType?: string;
  detail: string;
  entry: boolean;
  status?: string;
  problems: string[];
  group: boolean;
  branch?: number;
}

const ICON: Record<StateType, string> = { task: "T", parallel: "P", map: "M", router: "R", wait: "W", set: "S", succeed: "✓", fail: "✗" };

/** `trn:aionixfn:prod:function/pay:live` → `pay:live`; `trn:stepflow:t:template/x` → `x`. */
export function actionShortName(action: string): string {
  const m = /^trn:[^:]*:[^:]*:[^/]*\/(.+)$/.exec(action);
  return m ? m[1] : action;
}

/** The expression text of a field: `{% input.delay %}` → `input.delay`; other values as JSON. */
export function expressionText(value: unknown): string {
  if (typeof value === "string") return value.replace(/^\{%\s*|\s*%\}$/g, "");
  return JSON.stringify(value);
}

export function detailOf(fields: Record<string, unknown>, type: StateType): string {
  if (typeof fields.asl_type === "string") {
    if (type === "task") return String(fields.action ?? "");
    if (type === "wait") return String(fields.wait_detail ?? "");
    if (type === "fail") return String(fields.error ?? "");
    if (type === "map") return fields.items !== undefined ? String(fields.items) : "";
    return "";
  }
  if (type === "task") return actionShortName(String(fields.action ?? ""));
  if (type === "wait") {
    if (fields.seconds === undefined) return fields.timestamp === undefined ? "" : `until ${expressionText(fields.timestamp)}`;
    return typeof fields.seconds === "number" ? `${fields.seconds} s` : `${expressionText(fields.seconds)} s`;
  }
  if (type === "fail") return String(fields.error ?? "");
  if (type === "map") return fields.items === undefined ? "" : expressionText(fields.items);
  return "";
}

const StateNodeView = memo(function StateNodeView({ data, selected }: NodeProps<Node<StateNodeData>>) {
  const cls = ["state-node", `t-${data.stateType}`, data.group ? "group" : "", selected ? "selected" : "", data.status ? `s-${data.status}` : "", data.problems.length ? "invalid" : ""]
    .filter(Boolean)
    .join(" ");
  return (
    <div className={cls} data-testid={`node-${data.name}`} data-status={data.status ?? ""} title={data.problems.join("\n") || undefined}>
      <Handle type="target" position={Side.Top} />
      <div className="node-head">
        <span className="node-icon" aria-hidden>
          {ICON[data.stateType]}
        </span>
        <span className="node-name">{data.name}</span>
        {data.entry && <span className="tag">entry</span>}
        {data.problems.length > 0 && (
          <span className="badge-error" aria-label={data.problems.length === 1 ? "1 problem" : `${data.problems.length} problems`}>
            {data.problems.length}
          </span>
        )}
      </div>
      {!data.group && (
        <div className="node-sub">
          {data.aslType ?? data.stateType}
          {data.detail ? ` · ${data.detail}` : ""}
        </div>
      )}
      <Handle type="source" position={Side.Bottom} />
    </div>
  );
});

function BranchNodeView({ data }: NodeProps<Node<StateNodeData>>) {
  return <div className="branch-node">branch {(data.branch ?? 0) + 1}</div>;
}

const nodeTypes = { state: StateNodeView, branch: BranchNodeView };

/** A retry: a loop from the state's bottom round its right side back to its top. */
function LoopEdge({ id, sourceX, sourceY, targetX, targetY, label, markerEnd, style }: EdgeProps) {
  const reach = 130;
  const path = `M ${sourceX} ${sourceY} C ${sourceX + reach} ${sourceY + 40}, ${targetX + reach} ${targetY - 40}, ${targetX} ${targetY}`;
  const lx = (sourceX + targetX) / 2 + reach * 0.75;
  const ly = (sourceY + targetY) / 2;
  return <BaseEdge id={id} path={path} markerEnd={markerEnd} style={style} label={label} labelX={lx} labelY={ly} labelBgPadding={[4, 2]} />;
}

const edgeTypes = { loop: LoopEdge };

/** React Flow nodes and edges for a document, laid out. */
export function toFlow(
  doc: Workflow,
  positions: Record<string, Position>,
  problems: Problem[],
  statuses: Record<string, string> = {},
  selected: string[] = [],
  selectedEdges: string[] = [],
) {
  const graph: Graph = dslToGraph(doc);
  const boxes: Record<string, Box> = layoutGraph(graph, positions);
  const sel = new Set(selected);
  const nodes: Node<StateNodeData>[] = graph.nodes.map((n) => {
    const b = boxes[n.id];
    const group = n.kind === "branch" || (n.kind === "state" && (n.stateType === "parallel" || n.stateType === "map"));
    const pointer = n.kind === "state" ? statePointer(n.id) : "";
    const own = n.kind === "state" ? problems.filter((p) => p.pointer === pointer || p.pointer.startsWith(pointer + "/")) : [];
    const data: StateNodeData =
      n.kind === "state"
        ? {
            name: n.name,
            stateType: n.stateType,
            aslType: typeof n.fields.asl_type === "string" ? n.fields.asl_type : undefined,
            detail: detailOf(n.fields, n.stateType),
            entry: n.entry,
            status: statuses[n.id],
            problems: own.map((p) => p.message),
            group,
          }
        : { name: `branch ${n.index + 1}`, stateType: "parallel", detail: "", entry: false, problems: [], group: true, branch: n.index };
    return {
      id: n.id,
      ariaLabel:
        n.kind === "state"
          ? `${n.name}, ${typeof n.fields.asl_type === "string" ? n.fields.asl_type : n.stateType} state${n.entry ? ", entry" : ""}${data.status ? `, ${data.status}` : ""}${own.length ? `, ${own.length} problem${own.length === 1 ? "" : "s"}` : ""}`
          : `branch ${n.index + 1}`,
      type: n.kind === "branch" ? "branch" : "state",
      position: { x: b.x, y: b.y },
      parentId: n.parentId,
      extent: n.parentId ? ("parent" as const) : undefined,
      data,
      selected: sel.has(n.id),
      selectable: n.kind === "state",
      draggable: true,
      connectable: n.kind === "state",
      style: { width: b.width, height: b.height },
      // deeper scopes draw above their group, and their edges between the group and the states
      zIndex: n.kind === "branch" ? depth(n.id) * 2 + 2 : depth(n.id) * 2 + 1,
    };
  });
  const edgeSel = new Set(selectedEdges);
  const edges: Edge[] = graph.edges.map((e) => ({
    id: e.id,
    selected: edgeSel.has(e.id),
    ariaLabel: `${e.kind} from ${e.source} to ${e.target}${e.label && e.kind === "route" ? ` when ${e.label}` : ""}`,
    source: e.source,
    target: e.target,
    label: e.label || undefined,
    type: "smoothstep",
    className: `edge-${e.kind}`,
    markerEnd: { type: MarkerType.ArrowClosed },
    zIndex: depth(e.source) * 2,
  }));
  // a retrier is drawn as a loop on its state (it runs the state again); it is not a transition
  for (const n of graph.nodes) {
    if (n.kind !== "state" || !Array.isArray(n.fields.retry) || !n.fields.retry.length) continue;
    const retry = n.fields.retry as { errors?: unknown; max_attempts?: unknown }[];
    const errors = retry.flatMap((r) => (Array.isArray(r.errors) ? r.errors : [])).join(", ");
    edges.push({
      id: `${n.id}->retry->${n.id}`,
      ariaLabel: `retry ${n.name} on ${errors || "any error"}`,
      source: n.id,
      target: n.id,
      label: `retry ${errors}`.trim(),
      type: "loop",
      className: "edge-retry",
      selectable: false,
      deletable: false,
      markerEnd: { type: MarkerType.ArrowClosed },
      zIndex: depth(n.id) * 2,
    } as Edge);
  }
  return { nodes, edges, boxes };
}

/** How many groups (map processors, parallel branches) a node sits in. */
function depth(id: string): number {
  return id.split("/").filter((p) => !p.startsWith("#")).length - 1;
}

function absolute(boxes: Record<string, Box>, nodes: Node[], id: string): Position {
  let x = 0;
  let y = 0;
  let cur: string | undefined = id;
  while (cur) {
    const b: Box | undefined = boxes[cur];
    if (!b) break;
    x += b.x;
    y += b.y;
    cur = nodes.find((n) => n.id === cur)?.parentId;
  }
  return { x, y };
}

/** The scope a drop at `point` lands in: the innermost map or branch group under it. */
function dropScope(boxes: Record<string, Box>, nodes: Node<StateNodeData>[], point: Position): { path: ScopePath; origin: Position; container?: string } {
  let best: { node: Node<StateNodeData>; area: number; origin: Position } | null = null;
  for (const n of nodes) {
    const isContainer = n.type === "branch" || (n.data.stateType === "map" && n.data.group);
    if (!isContainer) continue;
    const o = absolute(boxes, nodes, n.id);
    const b = boxes[n.id];
    if (point.x >= o.x && point.y >= o.y && point.x <= o.x + b.width && point.y <= o.y + b.height) {
      const area = b.width * b.height;
      if (!best || area < best.area) best = { node: n, area, origin: o };
    }
  }
  if (!best) return { path: [], origin: { x: 0, y: 0 } };
  if (best.node.type === "branch") {
    const parts = best.node.id.split("/");
    const path = parts.map((p) => (p.startsWith("#") ? Number(p.slice(1)) : p));
    return { path, origin: best.origin, container: best.node.id };
  }
  const { path, name } = parseNodeId(best.node.id);
  return { path: [...path, name], origin: best.origin, container: best.node.id };
}

const NO_EDGES: string[] = [];

export function Canvas({
  doc,
  positions,
  problems,
  statuses,
  selected,
  selectedEdges = NO_EDGES,
  onSelectEdges,
  readOnly,
  onSelect,
  onMove,
  onConnect,
  onDropState,
}: {
  doc: Workflow;
  positions: Record<string, Position>;
  problems: Problem[];
  statuses?: Record<string, string>;
  selected: string[];
  selectedEdges?: string[];
  onSelectEdges?: (ids: string[]) => void;
  readOnly?: boolean;
  onSelect: (ids: string[]) => void;
  onMove?: (moves: Record<string, Position>) => void;
  onConnect?: (source: string, target: string) => void;
  onDropState?: (path: ScopePath, type: StateType, at: Position) => void;
}) {
  const flow = useMemo(() => toFlow(doc, positions, problems, statuses, selected, selectedEdges), [doc, positions, problems, statuses, selected, selectedEdges]);
  const [nodes, setNodes] = useState(flow.nodes);
  useEffect(() => setNodes(flow.nodes), [flow.nodes]);
  const rf = useReactFlow();
  useEffect(() => {
    const t = setTimeout(() => rf.fitView({ padding: 0.2, maxZoom: 1.2 }), 30);
    return () => clearTimeout(t);
    // refit when the set of states changes or after auto layout, not on every edit
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [flow.nodes.length, Object.keys(positions).length === 0]);

  const onNodesChange = (changes: NodeChange<Node<StateNodeData>>[]) => {
    setNodes((ns) => applyNodeChanges(changes.filter((c) => c.type !== "remove"), ns));
    // a finished drag or an arrow-key move is one "move" transaction
    const moved: Record<string, Position> = {};
    for (const c of changes) if (c.type === "position" && c.position && c.dragging === false) moved[c.id] = { x: Math.round(c.position.x), y: Math.round(c.position.y) };
    if (Object.keys(moved).length && onMove && !readOnly) onMove(moved);
    const sel = changes.filter((c) => c.type === "select");
    if (sel.length) {
      const next = new Set(selected);
      for (const c of sel) if (c.type === "select") (c.selected ? next.add(c.id) : next.delete(c.id));
      const ids = [...next];
      if (ids.join() !== selected.join()) onSelect(ids);
    }
  };

  const onDrop = (e: DragEvent) => {
    e.preventDefault();
    if (readOnly || !onDropState) return;
    const type = e.dataTransfer.getData(DND_TYPE) as StateType;
    if (!STATE_TYPES.includes(type)) return;
    const point = rf.screenToFlowPosition({ x: e.clientX, y: e.clientY });
    const { path, origin, container } = dropScope(flow.boxes, nodes, point);
    // not on top of a state already there (a map's processor state, a branch's states…)
    const siblings = nodes.filter((n) => n.parentId === container).map((n) => flow.boxes[n.id]).filter(Boolean);
    const at = freeSpot({ x: Math.round(point.x - origin.x - 100), y: Math.round(point.y - origin.y - 26) }, siblings);
    onDropState(path, type, at);
  };

  return (
    <div className="canvas" onDragOver={(e) => (e.preventDefault(), (e.dataTransfer.dropEffect = "move"))} onDrop={onDrop} data-testid="canvas">
      <ReactFlow
        nodes={nodes}
        edges={flow.edges}
        nodeTypes={nodeTypes}
        edgeTypes={edgeTypes}
        onNodesChange={onNodesChange}
        onNodeDragStop={(_, __, dragged) => {
          if (!onMove || readOnly) return;
          const moves: Record<string, Position> = {};
          for (const n of dragged) moves[n.id] = { x: Math.round(n.position.x), y: Math.round(n.position.y) };
          onMove(moves);
        }}
        onConnect={(c) => c.source && c.target && onConnect?.(c.source, c.target)}
        onEdgesChange={(changes) => {
          const sel = changes.filter((c) => c.type === "select");
          if (!sel.length || !onSelectEdges) return;
          const next = new Set(selectedEdges);
          for (const c of sel) if (c.type === "select") (c.selected ? next.add(c.id) : next.delete(c.id));
          onSelectEdges([...next]);
        }}
        onPaneClick={() => {
          if (selected.length) onSelect([]);
          if (selectedEdges.length) onSelectEdges?.([]);
        }}
        nodesDraggable={!readOnly}
        nodesConnectable={!readOnly}
        deleteKeyCode={null}
        selectionKeyCode="Shift"
        multiSelectionKeyCode={["Meta", "Control"]}
        proOptions={{ hideAttribution: true }}
        minZoom={0.2}
        fitView
      >
        <Background gap={16} />
        <Controls showInteractive={false} />
        <MiniMap pannable zoomable ariaLabel="Workflow overview" style={{ width: 120, height: 80 }} />
      </ReactFlow>
    </div>
  );
}
