"""Across a crash and restart: the active policy version (not the files) stays in force, a task
that was running is ERROR (Ai.Interrupted), finished tasks and the ledger are kept. Providers
are the stand-ins of standin.py."""

from __future__ import annotations

import time

from conftest import write_policy
from serverproc import free_port
from standin import StandIn


def test_crash_restart_keeps_policy_version_and_fails_running_tasks(make_server, tmp_path):
    local, api = StandIn(), StandIn()
    try:
        policy_dir = tmp_path / "policies"
        write_policy(policy_dir, local.port, api.port, free_port())
        server = make_server(env={"AIONIX_AI_POLICY_DIR": str(policy_dir)}).start()
        with server.client() as c:
            assert (
                c.post(
                    "/api/v1/secrets", json={"name": "cloud-key", "type": "api_key", "value": "sk-x-123456"}
                ).status_code
                == 201
            )
            done = c.post("/api/v1/tasks", json={"intent": "local-ok", "params": {"text": "a"}}).json()
            assert done["status"] == "OK"
            hanging = c.post(
                "/api/v1/tasks", json={"intent": "api-hang", "params": {"text": "a"}, "stream": True}
            ).json()
            deadline = time.monotonic() + 5
            while not any(r["body"].get("model") == "hang" for r in api.requests) and time.monotonic() < deadline:
                time.sleep(0.02)
            version = c.get("/api/v1/router/policy/versions").json()["items"][0]["version"]
        # the files change on disk but nobody reloads: the stored active version stays in force
        (policy_dir / "intents.yml").write_text("intents: {}\n")
        server.kill()
        server.start()
        with server.client() as c:
            assert c.get(f"/api/v1/tasks/{done['task_id']}").json()["status"] == "OK"
            env = c.get(f"/api/v1/tasks/{hanging['task_id']}").json()
            assert env["status"] == "ERROR" and env["error"]["code"] == "Ai.Interrupted"
            items = c.get("/api/v1/router/policy/versions").json()["items"]
            assert [i["version"] for i in items if i["active"]] == [version]
            assert (
                c.post("/api/v1/tasks", json={"intent": "local-ok", "params": {"text": "b"}}).json()["status"] == "OK"
            )
            usage = c.get("/api/v1/usage", params={"group_by": "intent"}).json()["items"]
            assert {i["intent"] for i in usage} >= {"local-ok"}
            events = []
            with c.stream("GET", f"/api/v1/tasks/{hanging['task_id']}/stream") as r:
                events = [line for line in r.iter_lines() if line.startswith("event:")]
            assert events == ["event: error"]
    finally:
        local.close()
        api.close()
