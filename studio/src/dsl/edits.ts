/** Pure edits of a workflow document. Each returns a new document and leaves its input as it was,
 * so the transaction log can keep earlier documents as they are. */
import { getScope, parseNodeId, type ScopePath } from "./scope";
import { clone, isObject, newState, TERMINAL_TYPES, type Scope, type State, type StateType, type Workflow } from "./types";

export class EditError extends Error {}

function scopeOf(doc: Workflow, path: ScopePath): Scope {
  const scope = getScope(doc, path);
  if (!scope) throw new EditError(`no scope ${path.join("/") || "(root)"}`);
  if (!isObject(scope.states)) scope.states = {};
  return scope;
}

function located(doc: Workflow, id: string): { scope: Scope; name: string; state: State; path: ScopePath } {
  const { path, name } = parseNodeId(id);
  const scope = scopeOf(doc, path);
  const state = scope.states[name];
  if (!state) throw new EditError(`no state ${id}`);
  return { scope, name, state, path };
}

export function uniqueName(scope: Scope, base: string): string {
  const taken = new Set(Object.keys(scope.states ?? {}));
  if (!taken.has(base)) return base;
  for (let i = 2; ; i++) if (!taken.has(`${base}${i}`)) return `${base}${i}`;
}

export function defaultName(type: StateType): string {
  return { task: "Task", parallel: "Parallel", map: "Map", router: "Router", wait: "Wait", set: "Set", succeed: "Succeed", fail: "Fail" }[type];
}

/** Add a new state of `type` to a scope; the first state of a scope becomes its entry. */
export function addState(input: Workflow, path: ScopePath, type: StateType, name?: string): { doc: Workflow; name: string } {
  const doc = clone(input);
  const scope = scopeOf(doc, path);
  const chosen = uniqueName(scope, name || defaultName(type));
  scope.states[chosen] = newState(type);
  if (!scope.entry || !(scope.entry in scope.states)) scope.entry = chosen;
  return { doc, name: chosen };
}

/** Delete states and repair the edges that pointed at them: a predecessor's `next` follows the
 * deleted state's own `next` when it has one, or the predecessor becomes an end; routes and
 * catchers that pointed at it are redirected the same way or removed. */
export function deleteStates(input: Workflow, ids: string[]): Workflow {
  let doc = clone(input);
  for (const id of ids) {
    const { path, name } = parseNodeId(id);
    const scope = getScope(doc, path);
    if (!scope || !scope.states?.[name]) continue;
    doc = deleteOne(doc, path, name);
  }
  return doc;
}

function deleteOne(doc: Workflow, path: ScopePath, name: string): Workflow {
  const scope = scopeOf(doc, path);
  const gone = scope.states[name];
  const follow = typeof gone.next === "string" && gone.next !== name && gone.next in scope.states ? gone.next : undefined;
  delete scope.states[name];
  for (const state of Object.values(scope.states)) {
    if (state.next === name) {
      if (follow) state.next = follow;
      else {
        delete state.next;
        if (!TERMINAL_TYPES.includes(state.type) && state.type !== "router") state.end = true;
      }
    }
    if (Array.isArray(state.routes)) {
      state.routes = state.routes.flatMap((r) => (r.next === name ? (follow ? [{ ...r, next: follow }] : []) : [r]));
    }
    if (state.default === name) {
      if (follow) state.default = follow;
      else delete state.default;
    }
    if (Array.isArray(state.catch)) {
      state.catch = state.catch.flatMap((c) => (c.next === name ? (follow ? [{ ...c, next: follow }] : []) : [c]));
      if (state.catch.length === 0) delete state.catch;
    }
  }
  if (scope.entry === name) scope.entry = follow ?? Object.keys(scope.states)[0] ?? "";
  return doc;
}

/** Rename a state, keeping its place in the document and every reference to it. */
export const STATE_NAME_RULE = 'letters, digits, "_", "." and "-", starting with a letter or digit, at most 128';

/** Why `name` cannot name a state (null when it can): the characters allowed are said. */
export function stateNameProblem(name: string): string | null {
  if (/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(name)) return null;
  return `"${name}" is not a valid state name: use ${STATE_NAME_RULE}`;
}

export function renameState(input: Workflow, id: string, newName: string): Workflow {
  const problem = stateNameProblem(newName);
  if (problem) throw new EditError(problem);
  const doc = clone(input);
  const { scope, name } = located(doc, id);
  if (newName === name) return doc;
  if (newName in scope.states) throw new EditError(`a state named ${newName} already exists`);
  const renamed: Record<string, State> = {};
  for (const [k, v] of Object.entries(scope.states)) renamed[k === name ? newName : k] = v;
  scope.states = renamed;
  for (const state of Object.values(scope.states)) {
    if (state.next === name) state.next = newName;
    if (state.default === name) state.default = newName;
    state.routes?.forEach((r) => r.next === name && (r.next = newName));
    state.catch?.forEach((c) => c.next === name && (c.next = newName));
  }
  if (scope.entry === name) scope.entry = newName;
  return doc;
}

/** Connect `source` to `target` (same scope): a router gains its default first, then routes;
 * other states get `next` (and lose `end`). */
export function connect(input: Workflow, sourceId: string, targetId: string): Workflow {
  const doc = clone(input);
  const src = located(doc, sourceId);
  const dst = parseNodeId(targetId);
  if (dst.path.join("/") !== src.path.join("/")) throw new EditError("states can only be connected within the same scope");
  if (!(dst.name in src.scope.states)) throw new EditError(`no state ${targetId}`);
  const state = src.state;
  if (TERMINAL_TYPES.includes(state.type)) throw new EditError(`a ${state.type} state ends the workflow and has no next state`);
  if (state.type === "router") {
    if ((state.routes ?? []).length && !state.default) state.default = dst.name;
    else state.routes = [...(state.routes ?? []), { condition: "{% true %}", next: dst.name }];
  } else {
    state.next = dst.name;
    delete state.end;
  }
  return doc;
}

/** Set (or with `undefined`, remove) one field of a state. `next` and `end` exclude each other. */
export function setStateField(input: Workflow, id: string, key: string, value: unknown): Workflow {
  const doc = clone(input);
  const { state } = located(doc, id);
  const record = state as Record<string, unknown>;
  if (key === "type") throw new EditError("use replaceType to change a state's type");
  if (value === undefined) delete record[key];
  else record[key] = clone(value);
  if (key === "next" && typeof value === "string" && value) delete state.end;
  if (key === "end" && value === true) delete state.next;
  return doc;
}

/** Set a field of the workflow itself (`entry`, `timeout_seconds`, `comment`). */
export function setWorkflowField(input: Workflow, key: string, value: unknown): Workflow {
  const doc = clone(input);
  const record = doc as Record<string, unknown>;
  if (value === undefined) delete record[key];
  else record[key] = clone(value);
  return doc;
}

/** Set a field of a nested scope (a branch's or processor's `entry`). */
export function setScopeField(input: Workflow, path: ScopePath, key: string, value: unknown): Workflow {
  const doc = clone(input);
  const scope = scopeOf(doc, path) as Record<string, unknown>;
  if (value === undefined) delete scope[key];
  else scope[key] = clone(value);
  return doc;
}

/** Change a state's type: its name, comment and transition survive; type-specific fields reset. */
export function replaceType(input: Workflow, id: string, type: StateType): Workflow {
  const doc = clone(input);
  const { scope, name, state } = located(doc, id);
  if (state.type === type) return doc;
  const fresh = newState(type);
  if (state.comment !== undefined) fresh.comment = state.comment;
  if (!TERMINAL_TYPES.includes(type) && type !== "router") {
    if (state.next) {
      fresh.next = state.next;
      delete fresh.end;
    } else fresh.end = true;
  }
  if (type === "router" && state.next) fresh.default = state.next;
  scope.states[name] = fresh;
  return doc;
}

/** Add a branch to a parallel state, or remove branch `index` when `remove` is set. */
export function editBranches(input: Workflow, id: string, remove?: number): Workflow {
  const doc = clone(input);
  const { state } = located(doc, id);
  if (state.type !== "parallel") throw new EditError("only parallel states have branches");
  const branches = state.branches ?? [];
  if (remove !== undefined) branches.splice(remove, 1);
  else branches.push({ entry: `Branch${branches.length + 1}Pass`, states: { [`Branch${branches.length + 1}Pass`]: { type: "succeed" } } });
  state.branches = branches;
  return doc;
}

/** Paste states (as copied, with their names) into a scope; clashing names get a number and
 * references between the pasted states follow the new names. Returns the new ids' names. */
export function pasteStates(input: Workflow, path: ScopePath, states: Record<string, State>): { doc: Workflow; names: string[] } {
  const doc = clone(input);
  const scope = scopeOf(doc, path);
  const renames: Record<string, string> = {};
  const reserved = new Set(Object.keys(scope.states));
  for (const name of Object.keys(states)) {
    let chosen = name;
    for (let i = 2; reserved.has(chosen); i++) chosen = `${name.replace(/\d+$/, "")}${i}`;
    reserved.add(chosen);
    renames[name] = chosen;
  }
  const follow = (target: string | undefined) => (target !== undefined && target in renames ? renames[target] : undefined);
  for (const [name, original] of Object.entries(states)) {
    const state = clone(original);
    const next = follow(state.next);
    if (state.next !== undefined) {
      if (next) state.next = next;
      else {
        delete state.next;
        state.end = true;
      }
    }
    if (state.default !== undefined) {
      const d = follow(state.default);
      if (d) state.default = d;
      else delete state.default;
    }
    if (state.routes) state.routes = state.routes.flatMap((r) => (follow(r.next) ? [{ ...r, next: follow(r.next)! }] : []));
    if (state.catch) {
      state.catch = state.catch.flatMap((c) => (follow(c.next) ? [{ ...c, next: follow(c.next)! }] : []));
      if (!state.catch.length) delete state.catch;
    }
    scope.states[renames[name]] = state;
  }
  if (!scope.entry) scope.entry = Object.values(renames)[0] ?? "";
  return { doc, names: Object.values(renames) };
}

/** Remove one transition (an edge): `next` makes the state an end, a route or catcher goes,
 * a default goes. `kind` and `index` are those of the graph's edge. */
export function deleteTransition(input: Workflow, sourceId: string, kind: "next" | "route" | "default" | "catch", index: number): Workflow {
  const doc = clone(input);
  const { state } = located(doc, sourceId);
  if (kind === "next") {
    delete state.next;
    if (!TERMINAL_TYPES.includes(state.type) && state.type !== "router") state.end = true;
  } else if (kind === "route") {
    if (!state.routes?.[index]) throw new EditError(`no route ${index} on ${sourceId}`);
    state.routes.splice(index, 1);
  } else if (kind === "default") {
    delete state.default;
  } else {
    if (!state.catch?.[index]) throw new EditError(`no catcher ${index} on ${sourceId}`);
    state.catch.splice(index, 1);
    if (!state.catch.length) delete state.catch;
  }
  return doc;
}

/** The source, kind and index a graph edge id (`source->kindN->target`) stands for. */
export function parseEdgeId(id: string): { source: string; kind: "next" | "route" | "default" | "catch"; index: number; target: string } | null {
  const m = /^(.+)->(next|route|default|catch)(\d+)->(.+)$/.exec(id);
  return m ? { source: m[1], kind: m[2] as "next" | "route" | "default" | "catch", index: Number(m[3]), target: m[4] } : null;
}
