"""MCP over Streamable HTTP with the SDK's own client: discovery per role and tenant, every kind
of tool, resources, prompts, auth failures, list-changed notifications, the audit trail."""

from __future__ import annotations

import json

import anyio
import httpx
import pytest
from conftest import FN_SOURCE, mcp_client, unique

WF = {"entry": "Hello", "states": {"Hello": {"type": "set", "value": {"hi": "{% input.name %}"}, "end": True}}}


@pytest.fixture(scope="module")
def resources(admin_http: httpx.Client) -> dict[str, str]:
    names = {"wf": unique("mcpwf"), "fn": unique("mcpfn"), "act": unique("mcpact")}
    assert admin_http.post("/api/v1/workflows", json={"name": names["wf"], "definition": WF}).status_code == 201
    r = admin_http.post(
        "/api/v1/functions", json={"name": names["fn"], "runtime": "python", "code": {"source": FN_SOURCE}}
    )
    assert r.status_code == 201, r.text
    r = admin_http.post(
        "/api/v1/actions",
        json={"name": names["act"], "kind": "transform", "parameters": {"expression": "a + 1", "data": "{% input %}"}},
    )
    assert r.status_code == 201, r.text
    return names


@pytest.fixture(scope="module")
def admin_http(mcp_server):
    with mcp_server.client(timeout=60.0) as c:
        yield c


def tool_names(result) -> set[str]:
    return {t.name for t in result.tools}


async def test_discovery_per_role_and_tenant(mcp_server, keys, resources):
    async with mcp_client(mcp_server.url, keys["viewer"]) as viewer:
        names = tool_names(await viewer.list_tools())
        assert {
            "resources.list",
            "resource.describe",
            "execution.get",
            "runtime.capabilities",
            "runtime.simulate",
        } <= names
        # read-only tools only: nothing that starts, invokes, executes or cancels
        assert not {n for n in names if n.startswith(("workflow.", "function.", "action.")) or n == "execution.cancel"}
        assert all(t.annotations and t.annotations.read_only_hint for t in (await viewer.list_tools()).tools)
    async with mcp_client(mcp_server.url, keys["operator"]) as operator:
        names = tool_names(await operator.list_tools())
        assert {
            f"workflow.{resources['wf']}",
            f"function.{resources['fn']}",
            f"action.{resources['act']}",
            "execution.cancel",
        } <= names
    async with mcp_client(mcp_server.url, keys["other"]) as other:
        names = tool_names(await other.list_tools())
        # another tenant sees none of tenant default's workflows, functions or actions
        assert not any(resources[k] in n for n in names for k in resources)
        assert "execution.cancel" in names


async def test_calling_each_kind_of_tool(mcp_server, keys, resources, admin_http):
    async with mcp_client(mcp_server.url, keys["operator"]) as client:
        started = await client.call_tool(f"workflow.{resources['wf']}", {"input": {"name": "ada"}, "mode": "sync"})
        assert not started.is_error, started.content
        envelope = started.structured_content
        assert envelope["status"] == "SUCCEEDED" and envelope["output"] == {"hi": "ada"}
        got = await client.call_tool("execution.get", {"id": envelope["execution_id"]})
        assert got.structured_content["execution_id"] == envelope["execution_id"]
        cancel = await client.call_tool("execution.cancel", {"id": envelope["execution_id"]})
        assert cancel.is_error  # a finished execution cannot be cancelled: the REST API's 409, as a tool error
        assert json.loads(cancel.content[0].text)["error"]["code"]

        invoked = await client.call_tool(f"function.{resources['fn']}", {"event": {"x": 1}})
        assert not invoked.is_error, invoked.content
        assert invoked.structured_content["result"] == {"echo": {"x": 1}}

        executed = await client.call_tool(f"action.{resources['act']}", {"input": {"a": 41}})
        assert not executed.is_error, executed.content
        assert executed.structured_content["result"] == 42

        listed = await client.call_tool("resources.list", {"kind": "workflows"})
        assert resources["wf"] in {w["name"] for w in listed.structured_content["items"]}
        described = await client.call_tool("resource.describe", {"kind": "workflows", "name": resources["wf"]})
        assert described.structured_content["definition"] == WF
        missing = await client.call_tool("resource.describe", {"kind": "workflows", "name": "no-such-wf"})
        assert missing.is_error and json.loads(missing.content[0].text)["error"]["code"] == "not_found"
        bad = await client.call_tool("resources.list", {"kind": "planets"})
        assert bad.is_error and "kind" in bad.content[0].text
        sim = await client.call_tool("runtime.simulate", {"workflow": resources["wf"], "input": {"name": "x"}})
        assert not sim.is_error and sim.structured_content["feasible"] is True
        assert sim.structured_content["duration_source"] == "history"  # the run above is on record
        caps = await client.call_tool("runtime.capabilities", {})
        assert not caps.is_error and caps.structured_content["functions"]

    # a viewer calling an operator tool gets the REST API's 403, never a run
    async with mcp_client(mcp_server.url, keys["viewer"]) as viewer:
        refused = await viewer.call_tool(f"workflow.{resources['wf']}", {"input": {}})
        assert refused.is_error and json.loads(refused.content[0].text)["error"]["code"] == "forbidden"
    # another tenant cannot start tenant default's workflow
    async with mcp_client(mcp_server.url, keys["other"]) as other:
        refused = await other.call_tool(f"workflow.{resources['wf']}", {"input": {}})
        assert refused.is_error and json.loads(refused.content[0].text)["error"]["code"] == "not_found"

    # every MCP call is in the audit trail with its key
    audit = admin_http.get("/api/v1/audit", params={"limit": 500}).json()["items"]
    actions = {(a["action"], a["key_id"]) for a in audit}
    assert any(action == f"mcp tools/call workflow.{resources['wf']}" for action, _ in actions)
    assert any(action == "mcp tools/list" for action, _ in actions)
    assert all(key for action, key in actions if action.startswith("mcp "))


async def test_resources_and_prompts(mcp_server, keys, resources):
    async with mcp_client(mcp_server.url, keys["viewer"]) as client:
        listed = await client.list_resources()
        uris = {str(r.uri) for r in listed.resources}
        assert "aionix://schema/dsl" in uris and f"aionix://workflows/{resources['wf']}" in uris
        schema = await client.read_resource("aionix://schema/dsl")
        assert "StepFlow" in json.loads(schema.contents[0].text)["title"]
        wf = await client.read_resource(f"aionix://workflows/{resources['wf']}")
        assert json.loads(wf.contents[0].text)["definition"] == WF
        history_uris = [u for u in uris if u.endswith("/history")]
        assert history_uris
        history = json.loads((await client.read_resource(history_uris[0])).contents[0].text)
        assert history["items"]
        prompts = await client.list_prompts()
        assert [p.name for p in prompts.prompts] == ["build-workflow"]
        prompt = await client.get_prompt("build-workflow", {"goal": "emails a daily report"})
        assert "emails a daily report" in prompt.messages[0].content.text


async def test_auth_failures(mcp_server, keys):
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    r = httpx.post(mcp_server.url + "/mcp", json=body)
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    r = httpx.post(mcp_server.url + "/mcp", json=body, headers={"Authorization": "Bearer aio_nope"})
    assert r.status_code == 401
    r = httpx.post(mcp_server.url + "/mcp?api_key=" + keys["admin"], json=body)
    assert r.status_code == 401 and "URL" in r.json()["error"]["message"]
    # the SDK's client cannot connect with a bad key (the server answers 401 before the SDK)
    with pytest.raises(BaseException) as refused:  # the SDK raises an ExceptionGroup
        async with mcp_client(mcp_server.url, "aio_" + "x" * 43) as client:
            await client.list_tools()
    assert "Server returned an error response" in repr(refused.value)
    # a non-cross-tenant key asking for another tenant is refused
    r = httpx.post(
        mcp_server.url + "/mcp",
        json=body,
        headers={"Authorization": f"Bearer {keys['operator']}", "X-Aionix-Tenant": "other"},
    )
    assert r.status_code == 403


async def test_list_changed_notifications(mcp_server, keys, admin_http):
    name = unique("mcpnew")
    async with mcp_client(mcp_server.url, keys["operator"]) as client:
        assert f"workflow.{name}" not in tool_names(await client.list_tools())
        async with client.listen(tools_list_changed=True, resources_list_changed=True) as sub:
            # another tenant's change is not announced to this tenant
            with mcp_server.client(keys["other"]) as other:
                assert other.post("/api/v1/workflows", json={"name": name, "definition": WF}).status_code == 201
            assert admin_http.post("/api/v1/workflows", json={"name": name, "definition": WF}).status_code == 201
            events = []
            with anyio.fail_after(10):
                async for event in sub:
                    events.append(type(event).__name__)
                    if "ToolsListChanged" in events:
                        break
        assert f"workflow.{name}" in tool_names(await client.list_tools())
