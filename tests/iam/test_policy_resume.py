"""An execution resumed after a restart keeps calling on behalf of the principal that started
it: the starter's identifiers (key, user, tenant, groups; never a secret) are kept with the
execution's checkpoint, so a policy denying a bus action still applies after the server is
killed mid-execution and started again (the real server, SIGKILL, same data directory)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pgstore
import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))
from serverproc import ServerProcess

WF = {
    "entry": "Pause",
    "states": {
        "Pause": {"type": "wait", "seconds": 3, "next": "Calc"},
        "Calc": {"type": "task", "action": "transform", "parameters": {"expression": "a + 1", "data": {"a": 41}}, "end": True},
    },
}  # fmt: skip
DENY = {
    "statements": [
        {
            "sid": "no-transform-after-restart",
            "effect": "deny",
            "actions": ["openact:Call"],
            "resources": ["trn:openact:default:kind/transform"],
            "conditions": {"via": ["bus"]},
        }
    ]
}


@pytest.fixture
def srv(tmp_path):
    proc = ServerProcess(tmp_path / "srv").start()
    yield proc
    proc.stop()


def _wait(c, eid: str, timeout: float = 60.0) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        env = c.get(f"/api/v1/executions/{eid}").json()
        if env["status"] != "RUNNING":
            return env
        time.sleep(0.2)
    raise AssertionError(f"execution {eid} still running")


def test_a_resumed_execution_calls_as_its_starter(srv):
    with srv.client() as admin:
        assert admin.post("/api/v1/workflows", json={"name": "resume-calc", "definition": WF}).status_code == 201
        limited = admin.post("/api/v1/keys", json={"name": "resume-limited", "role": "operator"}).json()
        assert admin.put("/api/v1/policies/no-transform", json={"document": DENY}).status_code == 200
        r = admin.post(
            "/api/v1/policies/no-transform/attach", json={"principal_kind": "key", "principal_id": limited["id"]}
        )
        assert r.status_code < 300, r.text
        # the admin's own run: started before the restart too, it succeeds after it
        mine = admin.post("/api/v1/workflows/resume-calc/executions", json={"input": {}, "mode": "async"}).json()
    with srv.client(limited["key"]) as c:
        r = c.post("/api/v1/workflows/resume-calc/executions", json={"input": {}, "mode": "async"})
        assert r.status_code in (200, 202), r.text
        eid = r.json()["execution_id"]
    # what the checkpoint keeps: identifiers, not the key
    ((snap,),) = pgstore.query(srv.data_dir, "SELECT snapshot FROM sf_executions WHERE id = ?", (eid,))
    kept = json.loads(snap)["principal"]
    assert kept["key_id"] == limited["id"] and kept["tenant"] == "default" and kept["groups"] == []
    assert limited["key"] not in snap
    srv.restart()  # SIGKILL during the wait, then start on the same data directory
    with srv.client() as admin:
        env = _wait(admin, eid)
        assert env["status"] == "FAILED", env
        text = json.dumps(env["error"])
        assert "openact:Call" in text and "no-transform-after-restart" in text
        history = admin.get(f"/api/v1/executions/{eid}/history").json()["items"]
        assert "ExecutionResumed" in [e["type"] for e in history]
        ok = _wait(admin, mine["execution_id"])
        assert ok["status"] == "SUCCEEDED" and ok["output"] == 42, ok
        rows = admin.get("/api/v1/audit", params={"action": "policy.denied", "limit": 20}).json()["items"]
        assert any(r["key_id"] == limited["id"] and r["resource"] == "trn:openact:default:kind/transform" for r in rows)
