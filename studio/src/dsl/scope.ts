/** Addressing states in nested scopes (parallel branches, map processors).
 *
 * A scope path is a list of steps from the workflow root: `["Par", 0]` is branch 0 of the
 * parallel state `Par`; `["Map"]` is the processor of the map state `Map`. A node id is the
 * scope path and the state name joined by "/", with branch indexes written `#0`.
 */
import type { Scope, State, Workflow } from "./types";

export type ScopeStep = string | number;
export type ScopePath = ScopeStep[];

export function scopeKey(path: ScopePath): string {
  return path.map((s) => (typeof s === "number" ? `#${s}` : s)).join("/");
}

export function nodeId(path: ScopePath, name: string): string {
  return path.length ? `${scopeKey(path)}/${name}` : name;
}

/** The scope path and state name of a node id. */
export function parseNodeId(id: string): { path: ScopePath; name: string } {
  const parts = id.split("/");
  const name = parts.pop() as string;
  return { path: parts.map((p) => (p.startsWith("#") ? Number(p.slice(1)) : p)), name };
}

/** The scope that `path` names inside `doc`, or undefined when it does not exist. */
export function getScope(doc: Workflow, path: ScopePath): Scope | undefined {
  let scope: Scope = doc;
  let i = 0;
  while (i < path.length) {
    const state: State | undefined = scope.states?.[path[i] as string];
    if (!state) return undefined;
    const next = path[i + 1];
    if (state.type === "parallel" && typeof next === "number") {
      const branch = state.branches?.[next];
      if (!branch) return undefined;
      scope = branch;
      i += 2;
    } else if (state.type === "map" && state.processor) {
      scope = state.processor;
      i += 1;
    } else {
      return undefined;
    }
  }
  return scope;
}

export function getState(doc: Workflow, id: string): State | undefined {
  const { path, name } = parseNodeId(id);
  return getScope(doc, path)?.states?.[name];
}

/** JSON pointer of a scope inside the document ("" for the root). */
export function scopePointer(path: ScopePath): string {
  const parts: string[] = [];
  for (let i = 0; i < path.length; i++) {
    const step = path[i];
    if (typeof step === "number") continue;
    parts.push(`/states/${escape(step)}`);
    const next = path[i + 1];
    parts.push(typeof next === "number" ? `/branches/${next}` : "/processor");
  }
  return parts.join("");
}

export function statePointer(id: string): string {
  const { path, name } = parseNodeId(id);
  return `${scopePointer(path)}/states/${escape(name)}`;
}

function escape(token: string): string {
  return token.replace(/~/g, "~0").replace(/\//g, "~1");
}

function unescape(token: string): string {
  return token.replace(/~1/g, "/").replace(/~0/g, "~");
}

/** The node id and the field (pointer below the state) that a document pointer names.
 * `/states/A/routes/0/next` → `{id: "A", field: "/routes/0/next"}`; a pointer outside any
 * state gives `id: null`. */
export function locatePointer(pointer: string): { id: string | null; field: string } {
  const tokens = pointer.split("/").slice(1).map(unescape);
  const path: ScopePath = [];
  let i = 0;
  let found: string | null = null;
  let rest: string[] = tokens;
  while (i < tokens.length && tokens[i] === "states" && i + 1 < tokens.length) {
    const name = tokens[i + 1];
    found = nodeId(path, name);
    rest = tokens.slice(i + 2);
    if (tokens[i + 2] === "branches" && i + 3 < tokens.length && tokens[i + 4] === "states") {
      path.push(name, Number(tokens[i + 3]));
      i += 4;
    } else if (tokens[i + 2] === "processor" && tokens[i + 3] === "states") {
      path.push(name);
      i += 3;
    } else {
      break;
    }
  }
  return { id: found, field: rest.length ? "/" + rest.map(escape).join("/") : "" };
}
