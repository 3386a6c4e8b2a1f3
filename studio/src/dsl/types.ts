/** The StepFlow DSL (DESIGN.md §4) as the Studio edits it. Unknown fields are kept as-is. */

export const STATE_TYPES = ["task", "parallel", "map", "router", "wait", "set", "succeed", "fail"] as const;
export type StateType = (typeof STATE_TYPES)[number];

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export interface Retrier {
  errors: string[];
  interval_seconds?: number;
  max_attempts?: number;
  backoff_rate?: number;
  max_delay_seconds?: number;
  jitter?: "none" | "full";
}

export interface Catcher {
  errors: string[];
  next: string;
  [key: string]: Json | undefined;
}

export interface Route {
  condition: string;
  next: string;
  [key: string]: Json | undefined;
}

export interface Scope {
  entry: string;
  states: Record<string, State>;
  [key: string]: Json | Record<string, State> | undefined;
}

export interface State {
  type: StateType;
  comment?: string;
  next?: string;
  end?: boolean;
  action?: string;
  parameters?: Json;
  retry?: Retrier[];
  catch?: Catcher[];
  routes?: Route[];
  default?: string;
  branches?: Scope[];
  processor?: Scope;
  items?: Json;
  seconds?: Json;
  timestamp?: string;
  [key: string]: unknown;
}

export interface Workflow extends Scope {
  timeout_seconds?: number;
  comment?: string;
}

/** States that may not carry `next`/`end`: they stop or branch on their own. */
export const TERMINAL_TYPES: StateType[] = ["succeed", "fail"];

export function emptyWorkflow(): Workflow {
  return { entry: "", states: {} };
}

/** A new state of `type` with the fields it needs to be valid on its own. */
export function newState(type: StateType): State {
  switch (type) {
    case "task":
      return { type, action: "transform", parameters: {}, end: true };
    case "parallel":
      return { type, branches: [{ entry: "Branch1Pass", states: { Branch1Pass: { type: "succeed" } } }], end: true };
    case "map":
      return {
        type,
        items: "{% input.items %}",
        processor: { entry: "ProcessItem", states: { ProcessItem: { type: "succeed" } } },
        end: true,
      };
    case "router":
      return { type, routes: [] };
    case "wait":
      return { type, seconds: 1, end: true };
    case "set":
      return { type, value: {}, end: true };
    case "succeed":
      return { type };
    case "fail":
      return { type, error: "Failed", cause: "" };
  }
}

export function clone<T>(value: T): T {
  return value === undefined ? value : (JSON.parse(JSON.stringify(value)) as T);
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
