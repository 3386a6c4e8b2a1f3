"""The Copilot API (issue 19): each operation's validation and JSON diff, rule-based and
model-based suggestions (an invalid model proposal rejected), apply only by an operator key that
did not edit the draft, every operation audited."""

from __future__ import annotations

import json
import textwrap
import uuid
from collections.abc import Iterator

import anyio
import httpx
import pytest
from serverproc import ServerProcess

ENV = {
    "AIONIX_SECURITY_RATE_LIMIT_PER_KEY": "100000",
    "AIONIX_SECURITY_RATE_LIMIT_PER_KEY_BURST": "100000",
    "AIONIX_SECURITY_RATE_LIMIT_PER_IP": "100000",
    "AIONIX_SECURITY_RATE_LIMIT_PER_IP_BURST": "100000",
}
#: a stand-in model: an Aionix function behind a `kind: function` provider, answering proposals
MODEL_SOURCE = textwrap.dedent(
    """\
    import json

    def handler(event, context):
        proposals = [
            {"title": "retry the call",
             "operations": [{"op": "update_node", "name": "Fetch",
                             "patch": {"retry": [{"errors": ["States.ALL"], "max_attempts": 2}]}}]},
            {"title": "jump to a state that does not exist",
             "operations": [{"op": "connect_nodes", "from": "Fetch", "to": "Nowhere"}]},
            {"title": "a dangling state",
             "operations": [{"op": "create_node", "name": "Orphan", "state": {"type": "set", "value": 1}}]},
        ]
        return {"text": json.dumps({"proposals": proposals}), "confidence": 0.9}
    """
)
WF = {
    "entry": "Fetch",
    "states": {
        "Fetch": {"type": "task", "action": "http", "parameters": {"url": "http://127.0.0.1:9/a"}, "next": "Shape"},
        "Shape": {
            "type": "task",
            "action": "transform",
            "parameters": {"expression": "1", "data": "{% input %}"},
            "next": "Tidy",
        },
        "Tidy": {
            "type": "task",
            "action": "transform",
            "parameters": {"expression": "2", "data": "{% input %}"},
            "next": "One",
        },
        "One": {
            "type": "task",
            "action": "http",
            "parameters": {"url": "{% 'http://127.0.0.1:9/' & input.x %}"},
            "retry": [{"errors": ["States.ALL"]}],
            "next": "Two",
        },
        "Two": {
            "type": "task",
            "action": "http",
            "parameters": {"url": "http://127.0.0.1:9/b"},
            "retry": [{"errors": ["States.ALL"]}],
            "end": True,
        },
    },
}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def write_policy(directory) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "models.yml").write_text(
        "providers:\n  fn:\n    kind: function\n    location: local\n"
        "    target: 'trn:aionixfn:{tenant}:function/copilot-model'\n    timeout_s: 60\n"
        "models:\n  fn-model: {provider: fn, tier: tier0}\n"
        "  pricey: {provider: fn, tier: tier1, price_in_per_1k: 0.5, price_out_per_1k: 1.5}\n"
    )
    (directory / "intents.yml").write_text(
        "intents:\n  copilot.suggest:\n    privacy: local-only\n    candidates: [fn-model]\n    prompt: '{input}'\n"
        "  summarize:\n    privacy: local-only\n    candidates: [pricey, fn-model]\n    prompt: '{input}'\n"
    )
    (directory / "policies.yml").write_text(
        "budget: {default_usd: 0.02, hard_cap_usd: 0.20}\nlatency_ms: {local: 60000, api: 2000, hybrid: 2300}\n"
        "providers: {allow: [], deny: []}\nfallback_order: [tier0, tier1, tier2]\n"
    )
    (directory / "modules.yml").write_text("modules: []\n")


@pytest.fixture(scope="module")
def cp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("copilot-server"), env=ENV).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def keys(cp_server: ServerProcess) -> dict[str, str]:
    out = {}
    with cp_server.client() as admin:
        for name, role in (
            ("copilot", "viewer"),
            ("agent-op", "operator"),
            ("human", "operator"),
            ("viewer", "viewer"),
        ):
            out[name] = admin.post("/api/v1/keys", json={"name": unique(name), "role": role}).json()["key"]
    return out


def client(server: ServerProcess, key: str) -> httpx.Client:
    return server.client(key, timeout=120.0)


def op(c: httpx.Client, sid: str, body: dict, status: int = 200) -> dict:
    r = c.post(f"/api/v1/copilot/sessions/{sid}/operations", json=body)
    assert r.status_code == status, r.text
    return r.json()


def open_session(c: httpx.Client, workflow: str) -> dict:
    r = c.post("/api/v1/copilot/sessions", json={"workflow": workflow})
    assert r.status_code == 201, r.text
    return r.json()


def test_operations_validation_and_diff(cp_server, keys):
    name = unique("cpwf")
    with cp_server.client() as admin:
        assert admin.post("/api/v1/workflows", json={"name": name, "definition": WF}).status_code == 201
    with client(cp_server, keys["copilot"]) as c:
        session = open_session(c, name)
        sid = session["session_id"]
        assert session["draft"] == WF and session["validation"]["valid"] and session["base_version"] == 1

        created = op(
            c,
            sid,
            {"op": "create_node", "name": "Log", "after": "Fetch", "state": {"type": "set", "value": {"logged": True}}},
        )
        assert created["validation"]["valid"]
        assert {"op": "replace", "path": "/states/Fetch/next", "value": "Log"} in created["diff"]
        assert {
            "op": "add",
            "path": "/states/Log",
            "value": {"type": "set", "value": {"logged": True}, "next": "Shape"},
        } in created["diff"]

        updated = op(c, sid, {"op": "update_node", "name": "Log", "patch": {"value": {"logged": 2}, "comment": "x"}})
        assert {"op": "replace", "path": "/states/Log/value/logged", "value": 2} in updated["diff"]
        assert {"op": "add", "path": "/states/Log/comment", "value": "x"} in updated["diff"]
        removed = op(c, sid, {"op": "update_node", "name": "Log", "patch": {"comment": None}})
        assert removed["diff"] == [{"op": "remove", "path": "/states/Log/comment"}]

        connected = op(c, sid, {"op": "connect_nodes", "from": "Fetch", "to": "Two", "via": "catch"})
        assert connected["diff"] == [
            {"op": "add", "path": "/states/Fetch/catch", "value": [{"errors": ["States.ALL"], "next": "Two"}]}
        ]
        deleted = op(c, sid, {"op": "delete_node", "name": "Log"})
        assert {"op": "remove", "path": "/states/Log"} in deleted["diff"]
        assert deleted["draft"]["states"]["Fetch"]["next"] == "Shape" and deleted["validation"]["valid"]

        # an operation that cannot apply: 422 naming the field, the draft unchanged
        for body, field in (
            ({"op": "create_node", "name": "Fetch", "state": {"type": "succeed"}}, "name"),
            ({"op": "delete_node", "name": "Ghost"}, "name"),
            ({"op": "connect_nodes", "from": "Fetch", "to": "Ghost"}, "to"),
            ({"op": "update_node", "name": "Fetch"}, "patch"),
            ({"op": "explode"}, "op"),
        ):
            r = c.post(f"/api/v1/copilot/sessions/{sid}/operations", json=body)
            assert r.status_code == 422 and field in r.text, (body, r.text)
        assert c.get(f"/api/v1/copilot/sessions/{sid}").json()["draft"] == deleted["draft"]

        # an edit that makes the graph invalid is kept in the draft, and validation says why
        broken = op(c, sid, {"op": "create_node", "name": "Dangling", "state": {"type": "set", "value": 1}})
        assert not broken["validation"]["valid"]
        assert any("/states/Dangling" in p["pointer"] for p in broken["validation"]["errors"])
        check = op(c, sid, {"op": "validate_graph"})
        assert check["diff"] == [] and not check["validation"]["valid"]
        fixed = op(c, sid, {"op": "delete_node", "name": "Dangling"})
        assert fixed["validation"]["valid"]

        simulated = op(c, sid, {"op": "simulate_execution", "input": {"a": 1}, "budget_usd": 1})
        assert simulated["diff"] == [] and simulated["result"]["budget_sufficient"] is True
        # the simulation is of the draft: Fetch still calls the network without a retry
        assert "network_task_without_retry" in {r["rule"] for r in simulated["result"]["risks"]}


def test_suggestions_rule_and_model(cp_server, keys):
    name = unique("cpsugg")
    with cp_server.client() as admin:
        assert admin.post("/api/v1/workflows", json={"name": name, "definition": WF}).status_code == 201
    with client(cp_server, keys["copilot"]) as c:
        sid = open_session(c, name)["session_id"]
        result = op(c, sid, {"op": "suggest_optimization"})["result"]
        by_rule = {}
        for s in result["suggestions"]:
            by_rule.setdefault(s["rule"], []).append(s)
        assert by_rule["missing_retry"][0]["state"] == "Fetch" and by_rule["missing_retry"][0]["valid"]
        assert by_rule["missing_catch"][0]["state"] == "Fetch"
        assert by_rule["merge_transforms"][0]["state"] == "Shape"
        parallel = by_rule["parallelize"]
        assert [p["state"] for p in parallel] == ["One"] and parallel[0]["valid"]
        # no intent copilot.suggest on this server: rule-based only, and it says so
        assert result["model"]["used"] is False and "copilot.suggest" in result["model"]["reason"]
        # applying a suggestion's operations step by step gives a valid draft
        for body in parallel[0]["operations"]:
            last = op(c, sid, body)
        assert last["validation"]["valid"]
        states = last["draft"]["states"]
        assert "One" not in states and states["Tidy"]["next"] == "One_Two_parallel"
        assert states["One_Two_parallel"]["type"] == "parallel"
        cost = op(c, sid, {"op": "estimate_cost", "input": {}})["result"]
        assert {"estimated_cost_usd", "step_estimates"} <= cost.keys()


def test_apply_only_by_an_operator_that_did_not_edit(cp_server, keys):
    name = unique("cpapply")
    with cp_server.client() as admin:
        assert admin.post("/api/v1/workflows", json={"name": name, "definition": WF}).status_code == 201
        audit_mark = admin.get("/api/v1/audit", params={"limit": 1}).json()["items"]
    with client(cp_server, keys["agent-op"]) as agent:
        sid = open_session(agent, name)["session_id"]
        op(agent, sid, {"op": "update_node", "name": "Fetch", "patch": {"retry": [{"errors": ["States.ALL"]}]}})
        # the Copilot's own token (it edited the draft) may not apply, although it is an operator key
        r = agent.post(f"/api/v1/copilot/sessions/{sid}/apply")
        assert r.status_code == 403 and "did not edit" in r.json()["error"]["message"]
    with client(cp_server, keys["viewer"]) as viewer:
        assert viewer.post(f"/api/v1/copilot/sessions/{sid}/apply").status_code == 403  # role
    with client(cp_server, keys["human"]) as human:
        r = human.post(f"/api/v1/copilot/sessions/{sid}/apply")
        assert r.status_code == 200, r.text
        applied = r.json()
        assert applied["status"] == "applied" and applied["applied_version"] == 2
        assert applied["published"]["version"] == 2
        live = human.get(f"/api/v1/workflows/{name}").json()
        assert live["version"] == 2 and live["definition"]["states"]["Fetch"]["retry"] == [{"errors": ["States.ALL"]}]
        assert human.get(f"/api/v1/workflows/{name}", params={"version": 1}).json()["definition"] == WF
        assert human.post(f"/api/v1/copilot/sessions/{sid}/apply").status_code == 409
        # no more operations on an applied session
        assert (
            human.post(f"/api/v1/copilot/sessions/{sid}/operations", json={"op": "validate_graph"}).status_code == 409
        )
    # an invalid draft is never published; a workflow changed since the session opened is a 409
    with client(cp_server, keys["copilot"]) as c:
        sid2 = open_session(c, name)["session_id"]
        op(c, sid2, {"op": "create_node", "name": "Dangling", "state": {"type": "set", "value": 1}})
        sid3 = open_session(c, name)["session_id"]
        op(c, sid3, {"op": "update_node", "name": "Two", "patch": {"comment": "later"}})
    with client(cp_server, keys["human"]) as human:
        r = human.post(f"/api/v1/copilot/sessions/{sid2}/apply")
        assert r.status_code == 422 and "Dangling" in r.text
        assert human.put(f"/api/v1/workflows/{name}", json={"definition": WF}).status_code == 200
        r = human.post(f"/api/v1/copilot/sessions/{sid3}/apply")
        assert r.status_code == 409 and "version" in r.json()["error"]["message"]
        assert human.get(f"/api/v1/workflows/{name}").json()["version"] == 3
    # another tenant cannot see the session
    with cp_server.client() as admin:
        other = admin.post("/api/v1/keys", json={"name": unique("o"), "role": "admin", "tenant": "other"}).json()["key"]
        with client(cp_server, other) as o:
            assert o.get(f"/api/v1/copilot/sessions/{sid}").status_code == 404
            assert o.post(f"/api/v1/copilot/sessions/{sid}/apply").status_code == 404
        # every operation is audited, with its key
        audit = admin.get("/api/v1/audit", params={"limit": 1000}).json()["items"]
        actions = [(a["action"], a["resource"], a["status"]) for a in audit]
        assert ("copilot open", sid, 201) in actions
        assert ("copilot update_node", sid, 200) in actions
        assert ("copilot apply", sid, 403) in actions and ("copilot apply", sid, 200) in actions
        assert audit_mark


def test_model_suggestions_validated_and_invalid_rejected(tmp_path):
    root = tmp_path / "copilot-model"
    write_policy(root / "policies")
    proc = ServerProcess(root, env={**ENV, "AIONIX_AI_POLICY_DIR": str(root / "policies")}).start()
    try:
        with proc.client(timeout=120.0) as admin:
            r = admin.post(
                "/api/v1/functions",
                json={"name": "copilot-model", "runtime": "python", "code": {"source": MODEL_SOURCE}},
            )
            assert r.status_code == 201, r.text
            name = unique("cpmodel")
            assert admin.post("/api/v1/workflows", json={"name": name, "definition": WF}).status_code == 201
            caps = admin.get("/api/v1/runtime/capabilities").json()
            intents = {i["skill"]: i for i in caps["intents"]}
            assert set(intents) == {"intent.copilot.suggest", "intent.summarize"}
            # priced from the first candidate model: 500 tokens in, max_tokens (256) out
            assert intents["intent.summarize"]["cost_usd"] == pytest.approx(0.5 * 0.5 + 0.256 * 1.5)
            assert intents["intent.summarize"]["cost_source"] == "model_prices:pricey"
            sid = open_session(admin, name)["session_id"]
            answer = op(admin, sid, {"op": "suggest_optimization"})
            model = answer["result"]["model"]
            assert model["used"] is True, model
            assert [a["proposal"]["title"] for a in model["accepted"]] == ["retry the call"]
            rejected = {r["proposal"]["title"]: r["reason"] for r in model["rejected"]}
            assert set(rejected) == {"jump to a state that does not exist", "a dangling state"}
            assert "Nowhere" in rejected["jump to a state that does not exist"]
            assert "Dangling" not in json.dumps(answer["draft"]) and answer["diff"] == []  # nothing applied
            # an intent whose first model has a cheaper one of an allowed tier
            ai_wf = unique("cpai")
            definition = {
                "entry": "Sum",
                "states": {
                    "Sum": {
                        "type": "task",
                        "action": "trn:ai:default:intent/summarize",
                        "retry": [{"errors": ["States.ALL"]}],
                        "end": True,
                    }
                },
            }
            assert admin.post("/api/v1/workflows", json={"name": ai_wf, "definition": definition}).status_code == 201
            sid = open_session(admin, ai_wf)["session_id"]
            result = op(admin, sid, {"op": "suggest_optimization"})["result"]
            cheaper = [s for s in result["suggestions"] if s["rule"] == "cheaper_tier"]
            assert cheaper and cheaper[0]["state"] == "Sum" and "fn-model" in cheaper[0]["message"]
            estimate = op(admin, sid, {"op": "estimate_cost", "input": {}})["result"]
            assert estimate["estimated_cost_usd"] == pytest.approx(0.5 * 0.5 + 0.256 * 1.5)
        # MCP: with intents configured an operator key gets the ai.submit tool
        anyio.run(_mcp_ai_submit, proc)
    finally:
        proc.stop()


async def _mcp_ai_submit(proc: ServerProcess) -> None:
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    http = create_mcp_http_client(headers={"Authorization": f"Bearer {proc.admin_key}"})
    async with http, Client(streamable_http_client(proc.url + "/mcp", http_client=http), cache=None) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert tools["ai.submit"].input_schema["properties"]["intent"]["enum"] == ["copilot.suggest", "summarize"]
        result = await client.call_tool("ai.submit", {"intent": "copilot.suggest", "params": {"input": "{}"}})
        assert not result.is_error, result.content
        assert (
            result.structured_content["status"] == "OK" and "proposals" in result.structured_content["result"]["text"]
        )
