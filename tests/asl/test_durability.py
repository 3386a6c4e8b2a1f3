"""An ASL execution is as durable as a native one: killed mid-Wait, it resumes after a restart."""

from __future__ import annotations

import time


def test_asl_wait_survives_a_kill_and_resumes(make_server):
    server = make_server().start()
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "Mark",
        "States": {
            "Mark": {"Type": "Pass", "Assign": {"before": "{% $states.input.n %}"}, "Next": "Sleep"},
            "Sleep": {"Type": "Wait", "Seconds": 2, "Next": "Done"},
            "Done": {"Type": "Pass", "Output": {"n": "{% $before + 1 %}"}, "End": True},
        },
    }
    with server.client() as c:
        assert c.post("/api/v1/workflows", json={"name": "asl-durable", "definition": definition}).status_code == 201
        eid = c.post("/api/v1/workflows/asl-durable/executions", json={"input": {"n": 41}}).json()["execution_id"]
        deadline = time.monotonic() + 20
        while not any(e["type"] == "WaitStarted" for e in c.get(f"/api/v1/executions/{eid}/history").json()["items"]):
            assert time.monotonic() < deadline
            time.sleep(0.05)
    server.restart()
    with server.client() as c:
        deadline = time.monotonic() + 30
        while (env := c.get(f"/api/v1/executions/{eid}").json())["status"] == "RUNNING":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert env["status"] == "SUCCEEDED", env
        assert env["output"] == {"n": 42}
        types = [
            e["type"] for e in c.get(f"/api/v1/executions/{eid}/history", params={"format": "asl"}).json()["events"]
        ]
        assert types.count("WaitStateEntered") == 1 and types[-1] == "ExecutionSucceeded"
