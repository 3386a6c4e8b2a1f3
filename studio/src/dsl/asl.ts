/** Amazon States Language definitions in the Studio.
 *
 * The Studio edits the StepFlow DSL on the canvas. An ASL definition (recognized, as the
 * server recognizes it, by `StartAt` and `States`) is drawn through a *display* document: the
 * same graph in DSL shape (Choice → router, Pass → set, Map's ItemProcessor → processor,
 * Parallel's Branches → branches, Catch → catch edges, Retry → retry loops), so the canvas,
 * layout and the execution view's colouring work unchanged. The display document is never
 * saved: the editor keeps the ASL document itself, edited in the Code view, and saves it as is.
 */
import { isObject, type Json, type Scope, type State, type StateType, type Workflow } from "./types";

export const ASL_TYPES: Record<string, StateType> = {
  Task: "task",
  Parallel: "parallel",
  Map: "map",
  Choice: "router",
  Wait: "wait",
  Pass: "set",
  Succeed: "succeed",
  Fail: "fail",
};

/** True for an ASL definition: it has `StartAt` and `States` (and no DSL `states`). */
export function isAsl(doc: unknown): boolean {
  return isObject(doc) && "StartAt" in doc && "States" in doc && !("states" in doc);
}

const OPERATORS: [RegExp, string][] = [
  [/^(String|Numeric|Timestamp)Equals(Path)?$/, "=="],
  [/^(String|Numeric|Timestamp)LessThanEquals(Path)?$/, "<="],
  [/^(String|Numeric|Timestamp)LessThan(Path)?$/, "<"],
  [/^(String|Numeric|Timestamp)GreaterThanEquals(Path)?$/, ">="],
  [/^(String|Numeric|Timestamp)GreaterThan(Path)?$/, ">"],
  [/^BooleanEquals(Path)?$/, "=="],
  [/^StringMatches$/, "matches"],
];

/** A short, readable text for one ASL choice rule (JSONata `Condition` or JSONPath rule). */
export function choiceLabel(rule: unknown): string {
  if (!isObject(rule)) return "";
  if (typeof rule.Condition === "string") return rule.Condition.replace(/^\{%\s*|\s*%\}$/g, "");
  if (Array.isArray(rule.And)) return rule.And.map(choiceLabel).join(" and ");
  if (Array.isArray(rule.Or)) return rule.Or.map(choiceLabel).join(" or ");
  if (isObject(rule.Not)) return `not (${choiceLabel(rule.Not)})`;
  const variable = typeof rule.Variable === "string" ? rule.Variable : "?";
  for (const [key, value] of Object.entries(rule)) {
    if (key === "Variable" || key === "Next" || key === "Comment" || key === "Assign" || key === "Output") continue;
    const op = OPERATORS.find(([re]) => re.test(key));
    if (op) return `${variable} ${op[1]} ${JSON.stringify(value)}`;
    return `${variable} ${key}${value === true ? "" : ` ${JSON.stringify(value)}`}`;
  }
  return variable;
}

/** The last part of a Task's Resource: `arn:…:function:charge` → `charge`. */
export function resourceShortName(resource: unknown): string {
  if (typeof resource !== "string") return "";
  const parts = resource.split(/[:/]/).filter(Boolean);
  return parts.length ? parts[parts.length - 1] : resource;
}

function errorsOf(list: unknown): string[] {
  return Array.isArray(list) ? list.filter((e): e is string => typeof e === "string") : [];
}

function displayState(asl: Record<string, unknown>): State {
  const aslType = typeof asl.Type === "string" ? asl.Type : "";
  const type: StateType = ASL_TYPES[aslType] ?? "set";
  const out: State = { type, asl_type: aslType || "(no Type)" };
  if (typeof asl.Next === "string") out.next = asl.Next;
  if (asl.End === true) out.end = true;
  if (type === "task") {
    out.action = resourceShortName(asl.Resource);
  }
  if (type === "wait") {
    for (const key of ["Seconds", "SecondsPath", "Timestamp", "TimestampPath"]) {
      if (asl[key] !== undefined) out.wait_detail = key === "Seconds" && typeof asl[key] === "number" ? `${asl[key]} s` : `${key} ${typeof asl[key] === "string" ? asl[key] : JSON.stringify(asl[key])}`;
    }
  }
  if (type === "fail" && typeof asl.Error === "string") out.error = asl.Error;
  if (type === "router") {
    out.routes = (Array.isArray(asl.Choices) ? asl.Choices : []).map((c) => ({
      condition: `{% ${choiceLabel(c)} %}`,
      next: isObject(c) && typeof c.Next === "string" ? c.Next : "",
    }));
    if (typeof asl.Default === "string") out.default = asl.Default;
  }
  if (Array.isArray(asl.Retry) && asl.Retry.length) {
    out.retry = asl.Retry.filter(isObject).map((r) => ({
      errors: errorsOf(r.ErrorEquals),
      ...(typeof r.MaxAttempts === "number" ? { max_attempts: r.MaxAttempts } : {}),
    }));
  }
  if (Array.isArray(asl.Catch) && asl.Catch.length) {
    out.catch = asl.Catch.filter(isObject).map((c) => ({ errors: errorsOf(c.ErrorEquals), next: typeof c.Next === "string" ? c.Next : "" }));
  }
  if (type === "parallel") {
    out.branches = (Array.isArray(asl.Branches) ? asl.Branches : []).map((b) => displayScope(b));
  }
  if (type === "map") {
    const proc = isObject(asl.ItemProcessor) ? asl.ItemProcessor : isObject(asl.Iterator) ? asl.Iterator : {};
    out.processor = displayScope(proc);
    const items = asl.Items ?? asl.ItemsPath ?? (isObject(asl.ItemReader) ? "ItemReader" : undefined);
    if (items !== undefined) out.items = (typeof items === "string" ? items : JSON.stringify(items)) as Json;
  }
  return out;
}

function displayScope(scope: unknown): Scope {
  const s = isObject(scope) ? scope : {};
  const states: Record<string, State> = {};
  if (isObject(s.States)) for (const [name, st] of Object.entries(s.States)) states[name] = displayState(isObject(st) ? st : {});
  return { entry: typeof s.StartAt === "string" ? s.StartAt : "", states };
}

/** The DSL-shaped document the canvas draws for an ASL definition (never saved). */
export function aslDisplay(doc: unknown): Workflow {
  return displayScope(doc) as Workflow;
}

/** The document to draw: ASL through its display document, the DSL as it is. */
export function drawable(doc: Workflow): Workflow {
  return isAsl(doc) ? aslDisplay(doc) : doc;
}

/** An ASL JSON pointer (`/States/P/Branches/0/States/A/Next`) as the display document's
 * pointer (`/states/P/branches/0/states/A/next`), so problems land on the drawn states. */
export function aslPointerToDisplay(pointer: string): string {
  const tokens = pointer.split("/").slice(1);
  const out: string[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    const prevIsStates = i > 0 && tokens[i - 1] === "States";
    if (prevIsStates) out.push(t);
    else if (t === "States") out.push("states");
    else if (t === "StartAt") out.push("entry");
    else if (t === "Branches") out.push("branches");
    else if (t === "ItemProcessor" || t === "Iterator") out.push("processor");
    else if (t === "Next") out.push("next");
    else if (t === "Default") out.push("default");
    else out.push(t);
  }
  return out.length ? "/" + out.join("/") : "";
}

/** The ASL state a display node id (`Par/#0/A`, `Map/B`) stands for, or undefined. */
export function aslStateAt(doc: unknown, id: string): Record<string, unknown> | undefined {
  const parts = id.split("/");
  let scope: unknown = doc;
  let state: Record<string, unknown> | undefined;
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    if (p.startsWith("#")) {
      const branches = state && Array.isArray(state.Branches) ? state.Branches : [];
      scope = branches[Number(p.slice(1))];
      continue;
    }
    if (state && i > 0 && !parts[i - 1].startsWith("#")) scope = isObject(state.ItemProcessor) ? state.ItemProcessor : state.Iterator;
    const states = isObject(scope) && isObject(scope.States) ? scope.States : undefined;
    const next = states?.[p];
    if (!isObject(next)) return undefined;
    state = next;
  }
  return state;
}

/** How many states a document has, nested ones included (DSL or ASL). */
export function countStates(doc: Workflow): number {
  const count = (scope: Scope | undefined): number => {
    if (!scope || !isObject(scope.states)) return 0;
    let n = 0;
    for (const st of Object.values(scope.states)) {
      n += 1;
      if (isObject(st)) {
        if (st.type === "map" && isObject(st.processor)) n += count(st.processor);
        if (st.type === "parallel" && Array.isArray(st.branches)) for (const b of st.branches) n += count(b);
      }
    }
    return n;
  };
  return count(drawable(doc));
}
