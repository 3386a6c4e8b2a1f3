/** The API client against a real Aionix server: pytest (tests/lsp/test_vscode_extension.py)
 *  starts one and passes AIONIX_TEST_URL and AIONIX_TEST_KEY. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { AionixApi, ApiError } from "../../src/api";

const url = process.env.AIONIX_TEST_URL;
const apiKey = process.env.AIONIX_TEST_KEY;
if (!url || !apiKey) throw new Error("AIONIX_TEST_URL and AIONIX_TEST_KEY name the server these tests run against");
const api = new AionixApi({ url, apiKey, profile: "test" });
const name = `vscode-${Date.now().toString(36)}`;

test("save, run, list, get and read the history of an execution", async () => {
  const definition = { entry: "Double", states: { Double: { type: "set", value: "{% input.n * 2 %}", end: true } } };
  assert.equal((await api.saveWorkflow(name, definition)).version, 1);
  assert.equal((await api.saveWorkflow(name, definition)).version, 2);
  assert.ok((await api.listWorkflows()).some((t) => t.name === name));
  assert.deepEqual((await api.getWorkflow(name)).definition, definition);
  const e = await api.startExecution(name, { n: 21 });
  assert.equal(e.status, "SUCCEEDED");
  assert.equal(e.output, 42);
  const listed = await api.listExecutions(name);
  assert.deepEqual(listed.map((x) => x.execution_id), [e.execution_id]);
  assert.equal((await api.getExecution(e.execution_id)).output, 42);
  const types = (await api.history(e.execution_id)).map((h) => h.type);
  assert.equal(types[0], "ExecutionStarted");
  assert.ok(types.includes("ExecutionSucceeded"), types.join(","));
  assert.equal(api.studioUrl(`/workflows/${name}`), `${url}/workflows/${name}`);
});

test("errors carry the server's status and code", async () => {
  await assert.rejects(api.getExecution("no-such-execution"), (err: unknown) => err instanceof ApiError && err.status === 404);
  const bad = new AionixApi({ url, apiKey: "aio_not_a_key", profile: "x" });
  await assert.rejects(bad.listWorkflows(), (err: unknown) => err instanceof ApiError && err.status === 401 && /401/.test(err.message));
  await assert.rejects(api.saveWorkflow("bad name!", {}), (err: unknown) => err instanceof ApiError && err.status === 422);
  const down = new AionixApi({ url: "http://127.0.0.1:9", apiKey, profile: "x" }, fetch, 2000);
  await assert.rejects(down.listWorkflows(), (err: unknown) => err instanceof ApiError && err.code === "unreachable");
});
