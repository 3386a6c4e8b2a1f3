import { describe, expect, it } from "vitest";
import { suggestAt, type DslSchema } from "../src/editor/completion";

const schema: DslSchema = {
  properties: { entry: {}, states: {}, timeout_seconds: {}, comment: {} },
  $defs: {
    TaskState: { properties: { type: { const: "task" }, action: { description: "what to call" }, next: {}, end: {}, retry: {} } },
    WaitState: { properties: { type: { const: "wait" }, seconds: {}, timestamp: {}, next: {}, end: {} } },
  },
};

function at(src: string) {
  const pos = src.indexOf("|");
  return suggestAt(src.replace("|", ""), pos, schema);
}

describe("code view completion from the DSL schema", () => {
  it("offers a task's fields that are not there yet", () => {
    const r = at('{"entry": "A", "states": {"A": {"type": "task", "action": "http", "|"}}}');
    expect(r?.options.map((o) => o.label).sort()).toEqual(["end", "next", "retry"]);
    expect(r?.options.every((o) => o.kind === "property")).toBe(true);
  });

  it("offers the workflow's own fields at the top", () => {
    const r = at('{"entry": "A", "|"}');
    expect(r?.options.map((o) => o.label).sort()).toEqual(["comment", "states", "timeout_seconds"]);
  });

  it("offers the eight state types for type", () => {
    const r = at('{"states": {"A": {"type": "w|"}}}');
    expect(r?.options.map((o) => o.label)).toContain("wait");
    expect(r?.options).toHaveLength(8);
    expect(r?.from).toBe('{"states": {"A": {"type": "'.length);
  });

  it("offers the scope's state names for next, default and entry", () => {
    expect(at('{"entry": "|", "states": {"A": {"type": "succeed"}, "B": {"type": "succeed"}}}')?.options.map((o) => o.label)).toEqual(["A", "B"]);
    expect(at('{"states": {"A": {"type": "wait", "next": "|"}, "B": {"type": "succeed"}}}')?.options.map((o) => o.label)).toEqual(["A", "B"]);
    const nested = '{"states": {"P": {"type": "parallel", "branches": [{"entry": "X", "states": {"X": {"type": "wait", "next": "|"}, "Y": {}}}]}}}';
    expect(at(nested)?.options.map((o) => o.label)).toEqual(["X", "Y"]);
  });

  it("offers nothing inside other values", () => {
    expect(at('{"states": {"A": {"type": "task", "action": "ht|"}}}')).toBeNull();
  });
});
