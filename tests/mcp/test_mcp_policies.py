"""`tools/list` filtered by the caller's policies, with the SDK's own client: a tool the key may
not call (`mcp:CallTool` denied on it, or the action of the REST call behind it denied on its
resource) is not listed; the others are, and a key with its role alone sees every tool."""

from __future__ import annotations

import httpx
import pytest
from conftest import FN_SOURCE, mcp_client, unique

WF = {"entry": "Hello", "states": {"Hello": {"type": "set", "value": {"hi": 1}, "end": True}}}


@pytest.fixture(scope="module")
def admin_http(mcp_server):
    with mcp_server.client(timeout=60.0) as c:
        yield c


async def test_tools_list_leaves_out_what_policies_refuse(mcp_server, admin_http: httpx.Client):
    wfs = [unique("polwf") for _ in range(3)]
    for name in wfs:
        assert admin_http.post("/api/v1/workflows", json={"name": name, "definition": WF}).status_code == 201
    fn = unique("polfn")
    r = admin_http.post("/api/v1/functions", json={"name": fn, "runtime": "python", "code": {"source": FN_SOURCE}})
    assert r.status_code == 201, r.text
    r = admin_http.post("/api/v1/keys", json={"name": unique("mcp-pol"), "role": "operator"})
    op = r.json()
    plain = admin_http.post("/api/v1/keys", json={"name": unique("mcp-plain"), "role": "operator"}).json()
    policy = unique("mcp-list")
    doc = {
        "statements": [
            # the MCP call itself
            {"sid": "no-tool", "effect": "deny", "actions": ["mcp:CallTool"],
             "resources": [f"trn:agents:default:tool/workflow.{wfs[0]}"]},
            # the REST action behind a tool, on its resource
            {"sid": "no-start", "effect": "deny", "actions": ["stepflow:StartExecution"],
             "resources": [f"trn:stepflow:default:template/{wfs[1]}"]},
            # a static tool: a statement covering every execution hides execution.cancel
            {"sid": "no-cancel", "effect": "deny", "actions": ["stepflow:CancelExecution"],
             "resources": ["trn:stepflow:default:execution/*"]},
            {"sid": "no-invoke", "effect": "deny", "actions": ["aionixfn:*"], "resources": ["*"]},
        ]
    }  # fmt: skip
    assert admin_http.put(f"/api/v1/policies/{policy}", json={"document": doc}).status_code == 200
    r = admin_http.post(f"/api/v1/policies/{policy}/attach", json={"principal_kind": "key", "principal_id": op["id"]})
    assert r.status_code < 300, r.text
    async with mcp_client(mcp_server.url, op["key"]) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert f"workflow.{wfs[2]}" in names and "execution.get" in names
        assert f"workflow.{wfs[0]}" not in names  # mcp:CallTool denied
        assert f"workflow.{wfs[1]}" not in names  # stepflow:StartExecution denied on the template
        assert "execution.cancel" not in names
        assert f"function.{fn}" not in names
        # what is listed can be called; what is not is refused when called anyway
        ok = await client.call_tool(f"workflow.{wfs[2]}", {"input": {}, "mode": "sync"})
        assert not ok.is_error, ok.content
        refused = await client.call_tool(f"workflow.{wfs[1]}", {"input": {}, "mode": "sync"})
        assert refused.is_error and "no-start" in refused.content[0].text
    async with mcp_client(mcp_server.url, plain["key"]) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert {f"workflow.{w}" for w in wfs} | {f"function.{fn}", "execution.cancel"} <= names
