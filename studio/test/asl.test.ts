import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { aslDisplay, aslPointerToDisplay, aslStateAt, choiceLabel, countStates, drawable, isAsl, resourceShortName } from "../src/dsl/asl";
import { dslToGraph } from "../src/dsl/graph";
import { layoutGraph } from "../src/dsl/layout";
import { checkWorkflow } from "../src/dsl/validate";
import { actionShortName, detailOf, expressionText, toFlow } from "../src/editor/Canvas";
import type { Workflow } from "../src/dsl/types";
import { buildCondition, conditionMode, parseCondition } from "../src/editor/condition";

const example = JSON.parse(readFileSync(join(import.meta.dirname, "..", "..", "examples", "workflows", "order-fulfilment.asl.json"), "utf8")) as Workflow;

describe("ASL definitions", () => {
  it("are recognized by StartAt and States", () => {
    expect(isAsl(example)).toBe(true);
    expect(isAsl({ entry: "A", states: {} })).toBe(false);
    expect(isAsl({ StartAt: "A" })).toBe(false);
  });

  it("are drawn: every state, nested ones included, never an empty canvas", () => {
    const g = dslToGraph(drawable(example));
    const states = g.nodes.filter((n) => n.kind === "state").map((n) => n.id).sort();
    expect(states).toEqual(
      [
        "CheckOrder", "RememberOrder", "PriceLines", "PriceLines/PriceLine", "Fulfil", "Fulfil/#0/ReserveStock",
        "Fulfil/#1/WaitForCourier", "Fulfil/#1/PrepareParcel", "NeedsReview", "ManualReview", "Charge", "Done",
        "RejectOrder", "FulfilmentFailed", "PaymentFailed",
      ].sort(),
    );
    expect(g.nodes.filter((n) => n.kind === "branch")).toHaveLength(2);
    expect(countStates(example)).toBe(15);
    // every node has a box: the layout knows each of them
    const boxes = layoutGraph(g);
    for (const n of g.nodes) expect(boxes[n.id]).toBeDefined();
  });

  it("draws Choice rules, Default, Next, Catch and (in the canvas) Retry loops", () => {
    const g = dslToGraph(drawable(example));
    const edges = g.edges.map((e) => `${e.source} ${e.kind} ${e.target}`);
    expect(edges).toEqual(
      expect.arrayContaining([
        "CheckOrder route RememberOrder",
        "CheckOrder default RejectOrder",
        "Fulfil catch FulfilmentFailed",
        "Fulfil next NeedsReview",
        "Charge catch PaymentFailed",
        "Charge next Done",
        "Fulfil/#1/WaitForCourier next Fulfil/#1/PrepareParcel",
      ]),
    );
    expect(g.edges.find((e) => e.source === "NeedsReview" && e.kind === "route")!.label).toBe("$total >= 1000");
    const flow = toFlow(drawable(example), {}, []);
    const loops = flow.edges.filter((e) => e.type === "loop").map((e) => `${e.source} ${e.label}`);
    expect(loops.sort()).toEqual(["Charge retry States.Timeout", "PriceLines/PriceLine retry States.TaskFailed"]);
    const charge = flow.nodes.find((n) => n.id === "Charge")!;
    expect(charge.data.aslType).toBe("Task");
    expect(charge.data.detail).toBe("transform");
    expect(flow.nodes.find((n) => n.id === "Fulfil/#1/WaitForCourier")!.data.detail).toBe("1 s");
  });

  it("labels JSONPath choice rules readably", () => {
    expect(choiceLabel({ Variable: "$.amount", NumericGreaterThan: 100, Next: "X" })).toBe("$.amount > 100");
    expect(choiceLabel({ And: [{ Variable: "$.a", StringEquals: "x" }, { Variable: "$.b", IsPresent: true }], Next: "X" })).toBe('$.a == "x" and $.b IsPresent');
    expect(choiceLabel({ Not: { Variable: "$.ok", BooleanEquals: true }, Next: "X" })).toBe("not ($.ok == true)");
  });

  it("draws the legacy Iterator and Lambda ARNs by their short name", () => {
    const doc = {
      StartAt: "M",
      States: {
        M: { Type: "Map", ItemsPath: "$.items", Iterator: { StartAt: "Call", States: { Call: { Type: "Task", Resource: "arn:aws:lambda:eu-west-1:1:function:charge", End: true } } }, End: true },
      },
    };
    expect(resourceShortName("arn:aws:lambda:eu-west-1:1:function:charge")).toBe("charge");
    const g = dslToGraph(aslDisplay(doc));
    expect(g.nodes.map((n) => n.id)).toEqual(["M", "M/Call"]);
    expect(aslStateAt(doc, "M/Call")).toEqual(doc.States.M.Iterator.States.Call);
  });

  it("finds the stored ASL state of a drawn node, and maps ASL pointers onto the drawing", () => {
    expect(aslStateAt(example, "Fulfil/#1/PrepareParcel")?.Type).toBe("Pass");
    expect(aslStateAt(example, "PriceLines/PriceLine")?.Resource).toBe("transform");
    expect(aslStateAt(example, "Nope")).toBeUndefined();
    expect(aslPointerToDisplay("/States/Fulfil/Branches/1/States/WaitForCourier/Next")).toBe("/states/Fulfil/branches/1/states/WaitForCourier/next");
    expect(aslPointerToDisplay("/States/PriceLines/ItemProcessor/States/PriceLine")).toBe("/states/PriceLines/processor/states/PriceLine");
    expect(aslPointerToDisplay("/StartAt")).toBe("/entry");
  });

  it("are left to the server's validation (no DSL problems for ASL)", () => {
    expect(checkWorkflow(example)).toEqual([]);
  });
});

describe("state subtitles", () => {
  it("show a function's short name and a wait's expression, not JSON-quoted text", () => {
    expect(actionShortName("trn:aionixfn:prod:function/pay:live")).toBe("pay:live");
    expect(detailOf({ action: "trn:aionixfn:default:function/charge" }, "task")).toBe("charge");
    expect(detailOf({ action: "http" }, "task")).toBe("http");
    expect(detailOf({ seconds: "{% input.delay_seconds %}" }, "wait")).toBe("input.delay_seconds s");
    expect(detailOf({ seconds: 5 }, "wait")).toBe("5 s");
    expect(detailOf({ timestamp: "{% input.at %}" }, "wait")).toBe("until input.at");
    expect(expressionText("{% items %}")).toBe("items");
  });

  it("the footer count includes nested states", () => {
    const doc: Workflow = {
      entry: "M",
      states: { M: { type: "map", items: "{% input %}", processor: { entry: "A", states: { A: { type: "succeed" }, B: { type: "succeed" } } }, end: true } },
    };
    expect(countStates(doc)).toBe(3);
  });
});

describe("the condition builder", () => {
  it("opens for one comparison, an empty condition and a new edge's {% true %}; says why not otherwise", () => {
    expect(conditionMode("{% input.amount > 100 %}")).toBe("builder");
    expect(conditionMode("{% true %}")).toBe("blank");
    expect(conditionMode("")).toBe("blank");
    expect(conditionMode(undefined)).toBe("blank");
    expect(conditionMode("{% input.a > 1 and input.b %}")).toBe("expression");
    expect(parseCondition(buildCondition("input.x", ">=", "3"))).toEqual({ left: "input.x", op: ">=", right: "3" });
  });
});

describe("JSON fields", () => {
  it("take a bare {% … %} expression as it is", async () => {
    const { isExpression } = await import("../src/editor/fields");
    expect(isExpression("{% input %}")).toBe(true);
    expect(isExpression("{% $merge([input, {'a': 1}]) %}")).toBe(true);
    expect(isExpression("{% a %} and {% b %}")).toBe(false);
    expect(isExpression('{"a": 1}')).toBe(false);
    expect(isExpression(3)).toBe(false);
  });
});
