"""`$secret.NAME` and `$param('/path')` resolved late through CredVault and ParamStore; secret
values never recorded (real server, real vault and params services)."""

from __future__ import annotations

import time
import uuid

import pgstore


def test_secret_and_param_are_resolved_and_secret_is_redacted(server, admin):
    secret_name = f"canary-{uuid.uuid4().hex[:8]}"
    canary = f"CANARY-{uuid.uuid4().hex}"
    admin.post("/api/v1/secrets", json={"name": secret_name, "type": "password", "value": canary}).raise_for_status()
    param_path = f"app/{uuid.uuid4().hex[:8]}/timeout"
    admin.put(f"/api/v1/params/{param_path}", json={"type": "number", "value": 30}).raise_for_status()
    wf = f"sec-{uuid.uuid4().hex[:8]}"
    # a secret name with '-' is not a JSONata identifier: the backtick form reads it
    secret = "$secret.`" + secret_name + "`"
    value = {
        "auth": "{% 'Bearer ' & " + secret + " %}",
        "timeout": "{% $param('/" + param_path + "') %}",
        "length": "{% $length(" + secret + ") %}",
    }
    definition = {"entry": "Use", "states": {"Use": {"type": "set", "value": value, "end": True}}}
    admin.post("/api/v1/workflows", json={"name": wf, "definition": definition}).raise_for_status()
    env = admin.post(f"/api/v1/workflows/{wf}/executions", json={"mode": "sync"}).json()
    assert env["status"] == "SUCCEEDED", env
    assert env["output"] == {"auth": "Bearer ***", "timeout": 30, "length": len(canary)}
    history = admin.get(f"/api/v1/executions/{env['execution_id']}/history").text
    assert canary not in history and canary not in str(env)
    time.sleep(0.2)
    raw = b"".join(p.read_bytes() for p in pgstore.database_files(server.data_dir))
    assert canary.encode() not in raw


def test_missing_param_fails_with_states_runtime_naming_it(admin):
    wf = f"nop-{uuid.uuid4().hex[:8]}"
    definition = {
        "entry": "S",
        "states": {"S": {"type": "set", "value": "{% $param('/no/such/param') %}", "end": True}},
    }
    admin.post("/api/v1/workflows", json={"name": wf, "definition": definition}).raise_for_status()
    env = admin.post(f"/api/v1/workflows/{wf}/executions", json={"mode": "sync"}).json()
    assert env["status"] == "FAILED"
    assert env["error"]["error"] == "States.Runtime" and "/no/such/param" in env["error"]["cause"]
