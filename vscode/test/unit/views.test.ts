import assert from "node:assert/strict";
import { test } from "node:test";
import type { Execution } from "../../src/api";
import { ago, executionHtml, executionNodes, workflowNodes } from "../../src/views";
import { templateFile, templateNameOf, validateName } from "../../src/templates";

const exec = (id: string, status: Execution["status"], started: number): Execution => ({
  execution_id: id,
  workflow: "orders",
  version: 3,
  status,
  started_at: started,
});

test("workflows sorted by name; an empty server says so", () => {
  const nodes = workflowNodes([
    { name: "b", trn: "trn:stepflow:default:template/b", version: 2 },
    { name: "a", trn: "trn:stepflow:default:template/a", version: 1, description: "first" },
  ]);
  assert.deepEqual(nodes.map((n) => [n.label, n.description, n.tooltip, n.collapsible]), [
    ["a", "v1", "first", true],
    ["b", "v2", "trn:stepflow:default:template/b", true],
  ]);
  assert.equal(workflowNodes([])[0].kind, "message");
});

test("executions newest first with their status icon", () => {
  const nodes = executionNodes([exec("e1", "FAILED", 100), exec("e2", "SUCCEEDED", 200)], 260);
  assert.deepEqual(nodes.map((n) => [n.label, n.icon, n.description]), [
    ["e2", "pass", "SUCCEEDED · v3 · 1m ago"],
    ["e1", "error", "FAILED · v3 · 2m ago"],
  ]);
  assert.equal(ago(3 * 86400), "3d ago");
});

test("the execution panel escapes everything the server sent and runs no script", () => {
  const e = { ...exec("e<1>", "SUCCEEDED", 0), input: { html: "<script>alert(1)</script>" }, output: { ok: true }, duration_ms: 12.4 };
  const html = executionHtml(e, [{ seq: 1, ts: 0, type: "ExecutionStarted", state: "<b>", detail: { x: "&" } }], "http://h/executions/e1");
  assert.ok(!html.includes("<script>alert"));
  assert.ok(html.includes("&lt;script&gt;alert(1)&lt;/script&gt;"));
  assert.ok(html.includes("&lt;b&gt;") && html.includes("&amp;"));
  assert.match(html, /default-src 'none'/);
  assert.match(html, /12 ms/);
  assert.match(html, /<h2>Output<\/h2><pre>\{\n  &quot;ok&quot;: true\n\}<\/pre>/);
  const failed = executionHtml({ ...exec("e2", "FAILED", 0), error: { error: "Http.Timeout", cause: "slow" } }, [], "u");
  assert.match(failed, /Http.Timeout: slow/);
});

test("template names from file names, and their rules", () => {
  assert.equal(templateNameOf("/w/orders.flow.yaml"), "orders");
  assert.equal(templateNameOf("C:\\w\\legacy.asl.json"), "legacy");
  assert.equal(templateNameOf("my flow.flow.json"), "my-flow");
  assert.equal(validateName("ok-name_1.2"), undefined);
  assert.ok(validateName("-bad"));
  assert.ok(validateName("a".repeat(129)));
  assert.equal(templateFile({ name: "m", trn: "t", version: 1, definition: { StartAt: "A", States: {} } }).fileName, "m.asl.json");
  assert.equal(templateFile({ name: "d", trn: "t", version: 1, definition: { entry: "A", states: {} } }).fileName, "d.flow.json");
});
