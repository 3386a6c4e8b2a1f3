"""Actions and connections as bus targets (what a workflow task's `action` TRN reaches) and as
resolvable TRNs."""

from __future__ import annotations

import time

from connectors.support import make_action, make_connection, unique


def _run_workflow(api, definition: dict, input: dict) -> dict:
    name = unique("wf")
    r = api.post("/api/v1/workflows", json={"name": name, "definition": definition})
    assert r.status_code == 201, r.text
    env = api.post(
        f"/api/v1/workflows/{name}/executions", json={"input": input, "mode": "sync", "wait_seconds": 30}
    ).json()
    deadline = time.monotonic() + 30
    while env["status"] == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.1)
        env = api.get(f"/api/v1/executions/{env['execution_id']}").json()
    return env


def test_workflow_calls_an_action_trn_and_a_connection_trn(api, http_target):
    conn = make_connection(api, "http", {"base_url": http_target.url})
    action = make_action(api, "http", {"url": "{% '/echo?who=' & input.who %}"}, connection=conn)
    tenant = api.get("/api/v1/whoami").json()["tenant"]
    definition = {
        "entry": "Saved",
        "states": {
            "Saved": {
                "type": "task",
                "action": f"trn:openact:{tenant}:action/http/{action}",
                "parameters": {"who": "{% input.who %}"},
                "output": {"expression": "{% result.body.query %}"},
                "next": "Direct",
            },
            "Direct": {
                "type": "task",
                "action": f"trn:openact:{tenant}:connection/http/{conn}",
                "parameters": {"url": "/echo", "query": {"from": "{% input.who %}"}},
                "output": {"expression": "{% result.body.query %}"},
                "end": True,
            },
        },
    }
    env = _run_workflow(api, definition, {"who": "ann"})
    assert env["status"] == "SUCCEEDED", env["error"]
    assert env["output"] == {"from": "ann"}
    assert {"who": "ann"} in [q["query"] for q in http_target.requests if q["path"] == "/echo"]


def test_workflow_catches_a_connector_error_by_name(api, http_target):
    definition = {
        "entry": "Call",
        "states": {
            "Call": {
                "type": "task",
                "action": "http",
                "parameters": {"url": f"{http_target.url}/status/404"},
                "catch": [{"errors": ["Http.Status.404"], "next": "Missing"}],
                "end": True,
            },
            "Missing": {"type": "set", "value": {"caught": "{% $exists(input) %}"}, "end": True},
        },
    }
    env = _run_workflow(api, definition, {})
    assert env["status"] == "SUCCEEDED", env["error"]
    assert env["output"] == {"caught": True}
    history = api.get(f"/api/v1/executions/{env['execution_id']}/history").json()["items"]
    assert "Http.Status.404" in str(history)


def test_resolve_connection_and_action_trns(api, http_target):
    conn = make_connection(api, "http", {"base_url": http_target.url})
    action = make_action(api, "http", {"url": "/x"}, connection=conn)
    tenant = api.get("/api/v1/whoami").json()["tenant"]
    r = api.get("/api/v1/resolve", params={"trn": f"trn:openact:{tenant}:connection/http/{conn}"}).json()
    assert r["exists"] is True and r["resource"]["kind"] == "http"
    r = api.get("/api/v1/resolve", params={"trn": f"trn:openact:{tenant}:action/http/{action}"}).json()
    assert r["exists"] is True and r["resource"]["connection"] == conn
    r = api.get("/api/v1/resolve", params={"trn": f"trn:openact:{tenant}:action/http/nope-{action}"}).json()
    assert r["exists"] is False
