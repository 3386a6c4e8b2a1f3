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

/** The temporary workflow that runs `state` (named `name`) once and records how it ended. */
export function testWorkflow(name: string, state: State): TestRun {
  const st = clone(state);
  const exits: Record<string, string> = {};
  const states: Record<string, State> = {};
  const exitTo = (target: string): string => {
    const existing = Object.keys(exits).find((k) => exits[k] === target);
    if (existing) return existing;
    const cap = `${CAPTURE_PREFIX}${Object.keys(exits).length + 1}`;
    exits[cap] = target;
    states[cap] = capture(target);
    return cap;
  };
  if (st.type !== "succeed" && st.type !== "fail" && st.type !== "router") {
    const target = st.end || typeof st.next !== "string" ? "(end)" : st.next;
    delete st.end;
    st.next = exitTo(target);
  }
  if (st.type === "router") {
    if (Array.isArray(st.routes)) for (const r of st.routes) if (isObject(r)) r.next = exitTo(typeof r.next === "string" ? r.next : "(none)");
    if (typeof st.default === "string") st.default = exitTo(st.default);
  }
  if (Array.isArray(st.catch)) for (const c of st.catch) if (isObject(c)) c.next = exitTo(`${typeof c.next === "string" ? c.next : "(none)"} (caught)`);
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
