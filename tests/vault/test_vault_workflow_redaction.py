"""A secret used in a workflow task's parameters, in a task that fails and is caught: the value
appears nowhere — not in the history, the envelope, the error, the logs or the database file."""

from __future__ import annotations

import time

import pgstore
from vaultkit import create_secret, unique


def _definition(secret: str, param_path: str) -> dict:
    return {
        "entry": "Login",
        "states": {
            "Login": {
                "type": "task",
                "action": "transform",
                "parameters": {
                    "expression": "$error('login refused for password ' & pw & ' at ' & host)",
                    "data": {"pw": "{% $secret." + secret + " %}", "host": "{% $param('" + param_path + "') %}"},
                },
                "catch": [{"errors": ["States.ALL"], "next": "Failed"}],
                "end": True,
            },
            "Failed": {"type": "fail", "error": "LoginFailed", "cause": "{% input.cause %}"},
        },
    }


def test_secret_in_failing_caught_task_is_redacted_everywhere(make_server):
    proc = make_server().start()
    value = unique("wf-canary-password")
    with proc.client() as c:
        create_secret(c, "db_password", value)
        r = c.put("/api/v1/params/app/db/host", json={"type": "string", "value": "db.internal"})
        assert r.status_code == 200
        r = c.post(
            "/api/v1/workflows", json={"name": "login", "definition": _definition("db_password", "/app/db/host")}
        )
        assert r.status_code == 201, r.text
        r = c.post("/api/v1/workflows/login/executions", json={"input": {}, "mode": "sync"})
        assert r.status_code in (200, 202), r.text
        envelope = r.json()
        execution_id = envelope["execution_id"]
        deadline = time.monotonic() + 60
        while envelope["status"] == "RUNNING" and time.monotonic() < deadline:
            time.sleep(0.2)
            envelope = c.get(f"/api/v1/executions/{execution_id}").json()
        assert envelope["status"] == "FAILED", envelope
        assert envelope["error"]["error"] == "LoginFailed"
        assert "login refused for password ***" in envelope["error"]["cause"]
        assert "db.internal" in envelope["error"]["cause"], "parameters are not secrets: they stay readable"
        history = c.get(f"/api/v1/executions/{execution_id}/history", params={"limit": 500})
        assert history.status_code == 200
        texts = {
            "envelope": r.text + str(envelope),
            "history": history.text,
            "executions": c.get("/api/v1/executions").text,
            "audit": c.get("/api/v1/audit", params={"limit": 500}).text,
            "metrics": c.get("/metrics").text,
        }
        for where, text in texts.items():
            assert value not in text, f"secret found in {where}"
        reads = c.get("/api/v1/audit", params={"action": "credvault.resolve"}).json()["items"]
        # the reader is the workflow (what `readers` policies name); the execution is recorded beside it
        assert reads and reads[0]["details"]["reader"] == "trn:stepflow:default:template/login"
        assert reads[0]["details"]["on_behalf_of"].startswith("trn:stepflow:default:execution/")
    assert value not in proc.log()
    for path in pgstore.database_files(proc.data_dir):
        assert value.encode() not in path.read_bytes(), f"secret found in {path.name}"
    proc.stop()
    assert value not in proc.log()


def test_missing_secret_fails_the_state_with_a_clear_runtime_cause(make_server):
    proc = make_server().start()
    definition = {
        "entry": "Use",
        "states": {"Use": {"type": "set", "value": {"pw": "{% $secret.nope %}"}, "end": True}},
    }
    with proc.client() as c:
        assert c.post("/api/v1/workflows", json={"name": "missing", "definition": definition}).status_code == 201
        envelope = c.post("/api/v1/workflows/missing/executions", json={"input": {}, "mode": "sync"}).json()
        assert envelope["status"] == "FAILED"
        assert envelope["error"]["error"] == "States.Runtime"
        assert "nope" in envelope["error"]["cause"]
        param_definition = {
            "entry": "Use",
            "states": {"Use": {"type": "set", "value": {"p": "{% $param('/app/absent') %}"}, "end": True}},
        }
        assert c.post("/api/v1/workflows", json={"name": "noparam", "definition": param_definition}).status_code == 201
        envelope = c.post("/api/v1/workflows/noparam/executions", json={"input": {}, "mode": "sync"}).json()
        assert envelope["status"] == "FAILED" and envelope["error"]["error"] == "States.Runtime"
        assert "/app/absent" in envelope["error"]["cause"]


def test_a_workflow_as_rotation_target_makes_the_new_value(server, admin):
    workflow = unique("rotator")
    definition = {
        "entry": "Make",
        "states": {
            "Make": {
                "type": "set",
                "value": {"value": "{% 'rotated-' & input.name & '-' & $string(input.current_version + 1) %}"},
                "end": True,
            }
        },
    }
    assert admin.post("/api/v1/workflows", json={"name": workflow, "definition": definition}).status_code == 201
    name = unique("wfrot")
    create_secret(admin, name, "before-rotation", rotation={"target": f"trn:stepflow:default:template/{workflow}"})
    r = admin.post(f"/api/v1/secrets/{name}/rotate", json={})
    assert r.status_code == 200, r.text
    assert r.json()["stages"] == {"current": 2, "previous": 1, "pending": None}
    value = admin.post(f"/api/v1/secrets/{name}/reveal").json()["value"]
    assert value == f"rotated-{name}-2"
    history = admin.get("/api/v1/executions", params={"limit": 500}).text
    assert "before-rotation" not in history


def test_a_secret_reached_through_a_secret_ref_param_is_redacted_too(make_server):
    """`$param('/x')` of a `secret_ref` parameter yields the secret: it is kept out of what the
    workflow records exactly like `$secret.X`."""
    proc = make_server().start()
    value = unique("ref-canary-token")
    with proc.client() as c:
        create_secret(c, "api_token", value)
        r = c.put("/api/v1/params/app/token", json={"type": "secret_ref", "value": "api_token"})
        assert r.status_code == 200, r.text
        definition = {
            "entry": "Use",
            "states": {"Use": {"type": "set", "value": {"token": "{% $param('/app/token') %}"}, "end": True}},
        }
        assert c.post("/api/v1/workflows", json={"name": "uses-ref", "definition": definition}).status_code == 201
        r = c.post("/api/v1/workflows/uses-ref/executions", json={"input": {}, "mode": "sync"})
        envelope = r.json()
        assert envelope["status"] == "SUCCEEDED", envelope
        assert envelope["output"] == {"token": "***"}
        history = c.get(f"/api/v1/executions/{envelope['execution_id']}/history").text
        assert value not in r.text and value not in history
    proc.stop()
    blob = b"".join(p.read_bytes() for p in pgstore.database_files(proc.data_dir))
    assert value.encode() not in blob
