/** Testing one state with sample data while editing.
 *
 * The server has no single-state endpoint, so a state is tested by running a temporary
 * workflow on the real engine: the state itself, whose every way out (next, end, each route,
 * the default, each catcher) goes to a capture state that records which way it went, the
 * state's output and the variables its `assign` set. The engine evaluates the expressions
 * exactly as a real run would. Pure states (set, router, wait, succeed, fail, and map/parallel
 * groups made only of them) have no side effects; a task calls its action for real, so the
 * Studio asks before running one.
 */
import { clone, isObject, type Scope, type State, type Workflow } from "./types";

export const CAPTURE_PREFIX = "StudioTestExit";

export interface TestRun {
  /** the temporary workflow to run */
  workflow: Workflow;
  /** capture state name → where the tested state went (`(end)` when it ended the workflow) */
  exits: Record<string, string>;
}

/** The task states inside `state` (itself included): what a test would call for real. */
export function sideEffects(state: State): string[] {
  const out: string[] = [];
  const visit = (name: string, st: State) => {
    if (!isObject(st)) return;
    if (st.type === "task") out.push(name);
    const scopes: Scope[] = [];
    if (st.type === "map" && isObject(st.processor)) scopes.push(st.processor);
    if (st.type === "parallel" && Array.isArray(st.branches)) scopes.push(...st.branches.filter(isObject));
    for (const sc of scopes) for (const [n, s] of Object.entries(isObject(sc.states) ? sc.states : {})) visit(n, s);
  };
  visit("(this state)", state);
  return out;
}

function capture(next: string): State {
  return {
    type: "set",
    value: { next, output: "{% input %}", variables: "{% vars %}" },
    end: true,
  };
}

/** Point every way out of `st` (next or end, each route, the default, each catcher) where
 * `to(target, caught)` says; `(end)` stands for ending the workflow; `caught` marks a catcher's target. */
function rewire(st: State, to: (target: string, caught?: boolean) => string): void {
  if (st.type !== "succeed" && st.type !== "fail" && st.type !== "router") {
    const target = st.end || typeof st.next !== "string" ? "(end)" : st.next;
    delete st.end;
    st.next = to(target);
  }
  if (st.type === "router") {
    if (Array.isArray(st.routes)) for (const r of st.routes) if (isObject(r)) r.next = to(typeof r.next === "string" ? r.next : "(none)");
    if (typeof st.default === "string") st.default = to(st.default);
  }
  if (Array.isArray(st.catch)) for (const c of st.catch) if (isObject(c)) c.next = to(typeof c.next === "string" ? c.next : "(none)", true);
}

/** The names a state leads to (next, routes, default, catchers). */
export function successors(st: State): string[] {
  const out: string[] = [];
  if (!isObject(st)) return out;
  if (typeof st.next === "string") out.push(st.next);
  if (Array.isArray(st.routes)) for (const r of st.routes) if (isObject(r) && typeof r.next === "string") out.push(r.next);
  if (typeof st.default === "string") out.push(st.default);
  if (Array.isArray(st.catch)) for (const c of st.catch) if (isObject(c) && typeof c.next === "string") out.push(c.next);
  return out;
}

/** `scope`'s state names in flow order: breadth-first from its entry, then the unreachable ones as written. */
export function flowOrder(scope: Scope): string[] {
  const states = isObject(scope.states) ? scope.states : {};
  const order: string[] = [];
  const seen = new Set<string>();
  // breadth-first from the entry; names not reached keep their written order at the end
  const bfs = typeof scope.entry === "string" && scope.entry in states ? [scope.entry] : [];
  while (bfs.length) {
    const n = bfs.shift() as string;
    if (seen.has(n) || !(n in states)) continue;
    seen.add(n);
    order.push(n);
    bfs.push(...successors(states[n]));
  }
  for (const n of Object.keys(states)) if (!seen.has(n)) order.push(n);
  return order;
}

export interface SelectionRun extends TestRun {
  /** the selected states, in flow order */
  names: string[];
  /** the selected states no other selected state leads to (the possible entries), in flow order */
  starts: string[];
}

/** The temporary workflow that runs the selected states `names` of `scope` together: it starts
 * at `entry` (by default the first, in flow order, of the states no other selected state leads
 * to), keeps the transitions between selected states, and sends every way out of the selection
 * to a capture state, so the run stops at the selection's boundary. */
export function selectionWorkflow(scope: Scope, names: string[], entry?: string): SelectionRun {
  const all = isObject(scope.states) ? scope.states : {};
  const picked = new Set(names.filter((n) => n in all));
  const ordered = flowOrder(scope).filter((n) => picked.has(n));
  const led = new Set(ordered.flatMap((n) => successors(all[n]).filter((t) => t !== n && picked.has(t))));
  const starts = ordered.filter((n) => !led.has(n));
  const first = entry && picked.has(entry) ? entry : (starts[0] ?? ordered[0]);
  const exits: Record<string, string> = {};
  const captures: Record<string, State> = {};
  const exitTo = (to: string, caught = false): string => {
    if (picked.has(to)) return to;
    const target = caught ? `${to} (caught)` : to;
    const existing = Object.keys(exits).find((k) => exits[k] === target);
    if (existing) return existing;
    let cap = `${CAPTURE_PREFIX}${Object.keys(exits).length + 1}`;
    while (cap in all) cap += "_";
    exits[cap] = target;
    captures[cap] = capture(target);
    return cap;
  };
  const states: Record<string, State> = {};
  for (const n of ordered) {
    const st = clone(all[n]);
    rewire(st, exitTo);
    states[n] = st;
  }
  return { workflow: { entry: first, states: { ...states, ...captures } }, exits, names: ordered, starts };
}

/** The selected states a test run entered, in order: the StateEntered events of the selection in
 * the run's top frame (the frame of the first state entered, the entry; the engine calls it "r"). */
export function pathTaken(events: { type: string; state?: string | null; frame?: string | null }[], run: SelectionRun): string[] {
  const picked = new Set(run.names);
  const entered = events.filter((e) => e.type === "StateEntered");
  const top = entered[0]?.frame ?? "";
  return entered.filter((e) => (e.frame ?? "") === top && typeof e.state === "string" && picked.has(e.state)).map((e) => e.state as string);
}

/** The temporary workflow that runs `state` (named `name`) once and records how it ended. */
export function testWorkflow(name: string, state: State): TestRun {
  const st = clone(state);
  const exits: Record<string, string> = {};
  const states: Record<string, State> = {};
  const exitTo = (to: string, caught = false): string => {
    const target = caught ? `${to} (caught)` : to;
    const existing = Object.keys(exits).find((k) => exits[k] === target);
    if (existing) return existing;
    const cap = `${CAPTURE_PREFIX}${Object.keys(exits).length + 1}`;
    exits[cap] = target;
    states[cap] = capture(target);
    return cap;
  };
  rewire(st, exitTo);
  return { workflow: { entry: name, states: { [name]: st, ...states } }, exits };
}

export interface TestOutcome {
  status: string;
  next?: string;
  output?: unknown;
  variables?: unknown;
  error?: unknown;
}

/** What a finished test execution says about the tested state. */
export function testOutcome(envelope: { status: string; output?: unknown; error?: unknown }, run: TestRun): TestOutcome {
  if (envelope.status !== "SUCCEEDED") return { status: envelope.status, error: envelope.error ?? null };
  const out = envelope.output;
  if (isObject(out) && typeof out.next === "string" && Object.values(run.exits).includes(out.next) && "output" in out) {
    return { status: "SUCCEEDED", next: out.next, output: out.output, variables: isObject(out.variables) ? out.variables : {} };
  }
  // a succeed state ends the run itself: its output is the state's
  return { status: "SUCCEEDED", next: "(end)", output: out };
}
