/** Structural checks the Studio can make at once, before the server's validation answers:
 * the same rules as DESIGN.md §4, each problem with the JSON pointer of its field. */
import { isAsl } from "./asl";
import { stateEdges } from "./graph";
import { scopePointer, type ScopePath } from "./scope";
import { isObject, STATE_TYPES, TERMINAL_TYPES, type Scope, type Workflow } from "./types";

export interface Problem {
  pointer: string;
  message: string;
  severity: "error" | "warning";
  source: "studio" | "server";
}

export function checkWorkflow(doc: unknown): Problem[] {
  const problems: Problem[] = [];
  if (!isObject(doc)) return [{ pointer: "", message: "the workflow must be a JSON object", severity: "error", source: "studio" }];
  // ASL is checked by the server (Validate, and on save): its rules are not the DSL's
  if (isAsl(doc)) return problems;
  checkScope(doc as Workflow, [], problems);
  return problems;
}

function checkScope(scope: Scope, path: ScopePath, problems: Problem[]): void {
  const base = scopePointer(path);
  const add = (pointer: string, message: string) => problems.push({ pointer: base + pointer, message, severity: "error", source: "studio" });
  if (!isObject(scope.states) || Object.keys(scope.states).length === 0) {
    add("/states", "add at least one state");
    return;
  }
  const names = Object.keys(scope.states);
  if (!scope.entry) add("/entry", "choose the entry state");
  else if (!names.includes(scope.entry)) add("/entry", `entry names no state: ${scope.entry}`);
  const targets = (name: string, pointer: string, target: unknown) => {
    if (typeof target !== "string" || !target) add(pointer, "choose a state");
    else if (!names.includes(target)) add(pointer, `names no state: ${target}`);
    else if (target === name && pointer.endsWith("/next")) add(pointer, "a state cannot be its own next state");
  };
  if (scope.entry && names.includes(scope.entry)) {
    const seen = new Set([scope.entry]);
    const queue = [scope.entry];
    while (queue.length) {
      const state = scope.states[queue.shift()!];
      if (!isObject(state)) continue;
      for (const e of stateEdges(state)) if (names.includes(e.target) && !seen.has(e.target)) (seen.add(e.target), queue.push(e.target));
    }
    for (const name of names) if (!seen.has(name)) add(`/states/${name.replace(/~/g, "~0").replace(/\//g, "~1")}`, `unreachable from ${scope.entry}`);
  }
  for (const [name, state] of Object.entries(scope.states)) {
    const p = `/states/${name.replace(/~/g, "~0").replace(/\//g, "~1")}`;
    if (!isObject(state) || !STATE_TYPES.includes(state.type)) {
      add(`${p}/type`, `type must be one of ${STATE_TYPES.join(", ")}`);
      continue;
    }
    if (!TERMINAL_TYPES.includes(state.type) && state.type !== "router") {
      if (state.next === undefined && state.end !== true) add(`${p}/next`, "set next or end");
      else if (state.next !== undefined) targets(name, `${p}/next`, state.next);
    }
    if (state.type === "task" && (typeof state.action !== "string" || !state.action)) add(`${p}/action`, "choose an action");
    if (state.type === "router") {
      (state.routes ?? []).forEach((r, i) => {
        if (typeof r.condition !== "string" || !r.condition.trim()) add(`${p}/routes/${i}/condition`, "write a condition");
        targets(name, `${p}/routes/${i}/next`, r.next);
      });
      if (state.default !== undefined && state.default !== "") targets(name, `${p}/default`, state.default);
      if (!(state.routes ?? []).length) add(`${p}/routes`, "add at least one route");
    }
    (state.catch ?? []).forEach((c, i) => targets(name, `${p}/catch/${i}/next`, c.next));
    if (state.type === "wait" && state.seconds === undefined && state.timestamp === undefined) add(`${p}/seconds`, "set seconds or timestamp");
    if (state.type === "parallel") {
      if (!Array.isArray(state.branches) || !state.branches.length) add(`${p}/branches`, "add a branch");
      else state.branches.forEach((b, i) => checkScope(b, [...path, name, i], problems));
    }
    if (state.type === "map") {
      if (!isObject(state.processor)) add(`${p}/processor`, "the map needs a processor");
      else checkScope(state.processor, [...path, name], problems);
    }
  }
}
