/** The workflow editor's state: one transaction log over the document and node positions,
 * the code view's text (kept even while it is not valid JSON), selection, clipboard and problems. */
import { create } from "zustand";
import * as edits from "../dsl/edits";
import { TransactionLog, type Position, type Snapshot } from "../dsl/history";
import { getScope, getState, parseNodeId, type ScopePath } from "../dsl/scope";
import { checkWorkflow, type Problem } from "../dsl/validate";
import { clone, isObject, type State, type StateType, type Workflow } from "../dsl/types";

export function pretty(doc: unknown): string {
  return JSON.stringify(doc, null, 2);
}

interface EditorState {
  name: string | null;
  version: number | null;
  snapshot: Snapshot;
  code: string;
  codeError: string | null;
  selected: string[];
  selectedEdges: string[];
  serverProblems: Problem[];
  problems: Problem[];
  notice: string | null;
  dirty: boolean;
  canUndo: boolean;
  canRedo: boolean;
  lastLabel: string | null;
  load: (name: string | null, doc: Workflow, version?: number | null) => void;
  apply: (label: string, edit: (doc: Workflow) => Workflow, positions?: (p: Record<string, Position>) => Record<string, Position>) => boolean;
  addState: (path: ScopePath, type: StateType, at?: Position) => string | null;
  deleteSelected: () => void;
  move: (moves: Record<string, Position>) => void;
  connect: (source: string, target: string) => void;
  setField: (id: string, key: string, value: unknown) => void;
  rename: (id: string, name: string) => void;
  replaceType: (id: string, type: StateType) => void;
  setCode: (text: string) => void;
  undo: () => void;
  redo: () => void;
  select: (ids: string[]) => void;
  selectEdges: (ids: string[]) => void;
  selectAll: () => void;
  copy: () => void;
  paste: () => void;
  autoLayout: () => void;
  setServerProblems: (p: Problem[]) => void;
  setNotice: (n: string | null) => void;
  markSaved: (name: string, version: number | null) => void;
}

let log = new TransactionLog({ doc: { entry: "", states: {} }, positions: {} });
let clipboard: { path: ScopePath; states: Record<string, State> } | null = null;

function derived(snapshot: Snapshot) {
  return {
    snapshot,
    code: pretty(snapshot.doc),
    codeError: null,
    problems: checkWorkflow(snapshot.doc),
    canUndo: log.canUndo,
    canRedo: log.canRedo,
  };
}

export const useEditor = create<EditorState>((set, get) => {
  const commit = (label: string, edit: (s: Snapshot) => Snapshot): boolean => {
    try {
      const before = log.present;
      const after = log.commit(label, edit);
      if (after === before) return false;
      set({ ...derived(after), dirty: true, lastLabel: label, notice: null });
      return true;
    } catch (e) {
      set({ notice: (e as Error).message });
      return false;
    }
  };
  return {
    name: null,
    version: null,
    snapshot: log.present,
    code: pretty(log.present.doc),
    codeError: null,
    selected: [],
    selectedEdges: [],
    serverProblems: [],
    problems: checkWorkflow(log.present.doc),
    notice: null,
    dirty: false,
    canUndo: false,
    canRedo: false,
    lastLabel: null,
    load(name, doc, version = null) {
      log = new TransactionLog({ doc: clone(doc), positions: {} });
      set({ ...derived(log.present), name, version, selected: [], selectedEdges: [], serverProblems: [], dirty: false, notice: null, lastLabel: null });
    },
    apply(label, edit, positions) {
      return commit(label, (s) => ({ doc: edit(s.doc), positions: positions ? positions(s.positions) : s.positions }));
    },
    addState(path, type, at) {
      let created: string | null = null;
      commit(`add ${type}`, (s) => {
        const { doc, name } = edits.addState(s.doc, path, type);
        created = path.length ? `${path.map((p) => (typeof p === "number" ? `#${p}` : p)).join("/")}/${name}` : name;
        return { doc, positions: at ? { ...s.positions, [created]: at } : s.positions };
      });
      if (created) set({ selected: [created] });
      return created;
    },
    deleteSelected() {
      const ids = get().selected.filter((id) => getState(log.present.doc, id));
      const edges = get()
        .selectedEdges.map(edits.parseEdgeId)
        .filter((e) => e !== null)
        .sort((a, b) => b.index - a.index);
      if (!ids.length && edges.length) {
        commit(edges.length === 1 ? `delete ${edges[0].kind} transition` : `delete ${edges.length} transitions`, (s) => ({
          doc: edges.reduce((d, e) => edits.deleteTransition(d, e.source, e.kind, e.index), s.doc),
          positions: s.positions,
        }));
        set({ selectedEdges: [] });
        return;
      }
      if (!ids.length) return;
      commit(ids.length === 1 ? `delete ${parseNodeId(ids[0]).name}` : `delete ${ids.length} states`, (s) => {
        const positions = { ...s.positions };
        for (const id of ids) for (const k of Object.keys(positions)) if (k === id || k.startsWith(id + "/")) delete positions[k];
        return { doc: edits.deleteStates(s.doc, ids), positions };
      });
      set({ selected: [] });
    },
    move(moves) {
      commit("move", (s) => {
        const same = Object.entries(moves).every(([id, p]) => s.positions[id]?.x === p.x && s.positions[id]?.y === p.y);
        return same ? s : { doc: s.doc, positions: { ...s.positions, ...moves } };
      });
    },
    connect(source, target) {
      commit("connect", (s) => ({ doc: edits.connect(s.doc, source, target), positions: s.positions }));
    },
    setField(id, key, value) {
      commit(`set ${key}`, (s) => ({ doc: edits.setStateField(s.doc, id, key, value), positions: s.positions }));
    },
    rename(id, name) {
      const { path } = parseNodeId(id);
      const newId = path.length ? id.slice(0, id.lastIndexOf("/") + 1) + name : name;
      const ok = commit("rename", (s) => {
        const positions: Record<string, Position> = {};
        for (const [k, v] of Object.entries(s.positions)) {
          positions[k === id ? newId : k.startsWith(id + "/") ? newId + k.slice(id.length) : k] = v;
        }
        return { doc: edits.renameState(s.doc, id, name), positions };
      });
      if (ok) set({ selected: [newId] });
    },
    replaceType(id, type) {
      commit(`change type to ${type}`, (s) => ({ doc: edits.replaceType(s.doc, id, type), positions: s.positions }));
    },
    setCode(text) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch (e) {
        set({ code: text, codeError: (e as Error).message });
        return;
      }
      if (!isObject(parsed)) {
        set({ code: text, codeError: "the workflow must be a JSON object" });
        return;
      }
      if (JSON.stringify(parsed) === JSON.stringify(log.present.doc)) {
        set({ code: text, codeError: null });
        return;
      }
      commit("edit code", (s) => ({ doc: parsed as Workflow, positions: s.positions }));
      set({ code: text, codeError: null });
    },
    undo() {
      if (log.undo()) set({ ...derived(log.present), dirty: true, lastLabel: null });
    },
    redo() {
      if (log.redo()) set({ ...derived(log.present), dirty: true, lastLabel: null });
    },
    select(ids) {
      set({ selected: ids, selectedEdges: ids.length ? [] : get().selectedEdges });
    },
    selectEdges(ids) {
      set({ selectedEdges: ids });
    },
    selectAll() {
      const ids: string[] = [];
      const walk = (path: ScopePath) => {
        const scope = getScope(log.present.doc, path);
        for (const [name, st] of Object.entries(scope?.states ?? {})) {
          ids.push(path.length ? `${path.map((p) => (typeof p === "number" ? `#${p}` : p)).join("/")}/${name}` : name);
          void st;
        }
      };
      walk([]);
      set({ selected: ids });
    },
    copy() {
      const ids = get().selected;
      if (!ids.length) return;
      const { path } = parseNodeId(ids[0]);
      const states: Record<string, State> = {};
      for (const id of ids) {
        const p = parseNodeId(id);
        const st = getState(log.present.doc, id);
        if (st && p.path.join("/") === path.join("/")) states[p.name] = clone(st);
      }
      clipboard = { path, states };
      const n = Object.keys(states).length;
      set({ notice: `copied ${n} state${n === 1 ? "" : "s"}` });
    },
    paste() {
      if (!clipboard) return;
      const cb = clipboard;
      const path = getScope(log.present.doc, cb.path) ? cb.path : [];
      let names: string[] = [];
      commit("paste", (s) => {
        const r = edits.pasteStates(s.doc, path, cb.states);
        names = r.names;
        return { doc: r.doc, positions: s.positions };
      });
      const prefix = path.length ? `${path.map((p) => (typeof p === "number" ? `#${p}` : p)).join("/")}/` : "";
      set({ selected: names.map((n) => prefix + n) });
    },
    autoLayout() {
      commit("auto layout", (s) => (Object.keys(s.positions).length ? { doc: s.doc, positions: {} } : s));
    },
    setServerProblems(p) {
      set({ serverProblems: p });
    },
    setNotice(n) {
      set({ notice: n });
    },
    markSaved(name, version) {
      set({ name, version, dirty: false });
    },
  };
});

/** Problems (studio and server) that belong to one node, by pointer. */
export function problemsFor(problems: Problem[], pointerPrefix: string): Problem[] {
  return problems.filter((p) => p.pointer === pointerPrefix || p.pointer.startsWith(pointerPrefix + "/"));
}
