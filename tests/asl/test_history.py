"""`GET /api/v1/executions/{id}/history?format=asl`: events shaped like GetExecutionHistory."""

from __future__ import annotations

import json
import uuid


def test_history_in_aws_shape_for_pass_map_and_choice(admin):
    definition = {
        "StartAt": "Start",
        "States": {
            "Start": {"Type": "Pass", "Result": [1, 2], "Next": "Each"},
            "Each": {
                "Type": "Map",
                "ItemProcessor": {"StartAt": "Inner", "States": {"Inner": {"Type": "Pass", "End": True}}},
                "Next": "Check",
            },
            "Check": {
                "Type": "Choice",
                "Choices": [{"Variable": "$[0]", "NumericEquals": 1, "Next": "Done"}],
                "Default": "Done",
            },
            "Done": {"Type": "Succeed"},
        },
    }
    name = f"asl-{uuid.uuid4().hex[:10]}"
    assert admin.post("/api/v1/workflows", json={"name": name, "definition": definition}).status_code == 201
    env = admin.post(f"/api/v1/workflows/{name}/executions", json={"input": {"a": 1}, "mode": "sync"}).json()
    assert env["status"] == "SUCCEEDED", env
    r = admin.get(f"/api/v1/executions/{env['execution_id']}/history", params={"format": "asl"})
    assert r.status_code == 200, r.text
    events = r.json()["events"]
    types = [e["type"] for e in events]
    assert types == [
        "ExecutionStarted",
        "PassStateEntered",
        "PassStateExited",
        "MapStateEntered",
        "MapStateStarted",
        "MapIterationStarted",
        "PassStateEntered",
        "PassStateExited",
        "MapIterationSucceeded",
        "MapIterationStarted",
        "PassStateEntered",
        "PassStateExited",
        "MapIterationSucceeded",
        "MapStateSucceeded",
        "MapStateExited",
        "ChoiceStateEntered",
        "ChoiceStateExited",
        "SucceedStateEntered",
        "SucceedStateExited",
        "ExecutionSucceeded",
    ]
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    assert json.loads(events[0]["executionStartedEventDetails"]["input"]) == {"a": 1}
    assert events[1]["stateEnteredEventDetails"]["name"] == "Start"
    assert events[4]["mapStateStartedEventDetails"] == {"length": 2}
    assert events[9]["mapIterationStartedEventDetails"] == {"name": "Each", "index": 1}
    assert json.loads(events[-1]["executionSucceededEventDetails"]["output"]) == [1, 2]
    native = admin.get(f"/api/v1/executions/{env['execution_id']}/history").json()
    assert native["items"][0]["type"] == "ExecutionStarted"


def test_failed_execution_history_ends_with_execution_failed(admin):
    definition = {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "Boom", "Cause": "because"}}}
    name = f"asl-{uuid.uuid4().hex[:10]}"
    assert admin.post("/api/v1/workflows", json={"name": name, "definition": definition}).status_code == 201
    env = admin.post(f"/api/v1/workflows/{name}/executions", json={"mode": "sync"}).json()
    events = admin.get(f"/api/v1/executions/{env['execution_id']}/history", params={"format": "asl"}).json()["events"]
    assert [e["type"] for e in events] == ["ExecutionStarted", "FailStateEntered", "ExecutionFailed"]
    assert events[-1]["executionFailedEventDetails"] == {"error": "Boom", "cause": "because"}
    bad = admin.get(f"/api/v1/executions/{env['execution_id']}/history", params={"format": "xml"})
    assert bad.status_code == 422
