"""ASL Task states on the real server: connector kinds and TRNs through the bus, Retry/Catch
with ASL field names, state timeouts and `.waitForTaskToken` callbacks."""

from __future__ import annotations

import time
import uuid

import httpx


def uname(prefix: str = "asl") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def create(admin: httpx.Client, definition: dict) -> str:
    name = uname()
    r = admin.post("/api/v1/workflows", json={"name": name, "definition": definition})
    assert r.status_code == 201, r.text
    return name


def run(admin: httpx.Client, name: str, input: object) -> dict:
    r = admin.post(f"/api/v1/workflows/{name}/executions", json={"input": input, "mode": "sync", "wait_seconds": 60})
    assert r.status_code in (200, 201), r.text
    return r.json()


def test_task_calls_a_connector_kind_with_parameters_and_result_processing(admin):
    name = create(
        admin,
        {
            "StartAt": "Total",
            "States": {
                "Total": {
                    "Type": "Task",
                    "Resource": "transform",
                    "Parameters": {"expression": "$sum(prices)", "data": {"prices.$": "$.items[*].price"}},
                    "ResultSelector": {"sum.$": "$"},
                    "ResultPath": "$.total",
                    "OutputPath": "$.total",
                    "End": True,
                }
            },
        },
    )
    out = run(admin, name, {"items": [{"price": 2}, {"price": 3.5}]})
    assert out["status"] == "SUCCEEDED", out
    assert out["output"] == {"sum": 5.5}


def test_jsonata_task_arguments_output_and_catch(admin):
    name = create(
        admin,
        {
            "QueryLanguage": "JSONata",
            "StartAt": "Compute",
            "States": {
                "Compute": {
                    "Type": "Task",
                    "Resource": "transform",
                    "Arguments": {"expression": "{% $states.input.expr %}", "data": "{% $states.input %}"},
                    "Output": {"value": "{% $states.result %}"},
                    "Retry": [{"ErrorEquals": ["Nothing.Matches"], "MaxAttempts": 1}],
                    "Catch": [
                        {
                            "ErrorEquals": ["States.ALL"],
                            "Next": "Handled",
                            "Output": {"caught": "{% $states.errorOutput.Error %}"},
                        }
                    ],
                    "End": True,
                },
                "Handled": {"Type": "Pass", "End": True},
            },
        },
    )
    assert run(admin, name, {"expr": "n * 2", "n": 4})["output"] == {"value": 8}
    caught = run(admin, name, {"expr": "$error('boom')", "n": 1})
    assert caught["status"] == "SUCCEEDED", caught
    assert caught["output"]["caught"].startswith("Transform")


def test_retry_then_catch_with_result_path(admin):
    name = create(
        admin,
        {
            "StartAt": "Flaky",
            "States": {
                "Flaky": {
                    "Type": "Task",
                    "Resource": "transform",
                    "Parameters": {"expression": "$error('nope')"},
                    "Retry": [
                        {"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "MaxAttempts": 2, "BackoffRate": 1}
                    ],
                    "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Recover"}],
                    "End": True,
                },
                "Recover": {"Type": "Pass", "End": True},
            },
        },
    )
    out = run(admin, name, {"keep": 1})
    assert out["status"] == "SUCCEEDED", out
    assert out["output"]["keep"] == 1
    assert set(out["output"]["error"]) == {"Error", "Cause"}
    history = admin.get(f"/api/v1/executions/{out['execution_id']}/history").json()["items"]
    assert [e["type"] for e in history].count("TaskScheduled") == 3


def test_wait_for_task_token_maps_to_a_callback(admin):
    notifier = create(admin, {"StartAt": "Send", "States": {"Send": {"Type": "Succeed"}}})
    name = create(
        admin,
        {
            "StartAt": "Ask",
            "States": {
                "Ask": {
                    "Type": "Task",
                    "Resource": f"trn:stepflow:default:template/{notifier}.waitForTaskToken",
                    "Parameters": {"token.$": "$$.Task.Token"},
                    "ResultPath": "$.answer",
                    "End": True,
                }
            },
        },
    )
    eid = admin.post(f"/api/v1/workflows/{name}/executions", json={"input": {"q": 1}}).json()["execution_id"]
    deadline = time.monotonic() + 30
    while not (sent := admin.get("/api/v1/executions", params={"workflow": notifier}).json()["items"]):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    token = sent[0]["input"]["token"]
    assert admin.post(f"/api/v1/callbacks/{token}/success", json={"output": {"ok": True}}).status_code == 200
    while (env := admin.get(f"/api/v1/executions/{eid}").json())["status"] == "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert env["status"] == "SUCCEEDED", env
    assert env["output"] == {"q": 1, "answer": {"ok": True}}


def test_task_timeout_seconds_fails_with_states_timeout(admin):
    notifier = create(admin, {"StartAt": "Send", "States": {"Send": {"Type": "Succeed"}}})
    name = create(
        admin,
        {
            "StartAt": "Ask",
            "States": {
                "Ask": {
                    "Type": "Task",
                    "Resource": f"trn:stepflow:default:template/{notifier}.waitForTaskToken",
                    "TimeoutSeconds": 1,
                    "End": True,
                }
            },
        },
    )
    out = run(admin, name, {})
    assert out["status"] == "FAILED", out
    assert out["error"]["error"] == "States.Timeout"


def test_lambda_arns_run_a_real_aionix_python_function(admin):
    fn = uname("fn")
    source = (
        "def handler(event, context):\n"
        "    if event.get('fail'):\n"
        "        raise ValueError('no good')\n"
        "    return {'doubled': event['n'] * 2}\n"
    )
    r = admin.post("/api/v1/functions", json={"name": fn, "runtime": "python", "code": {"source": source}})
    assert r.status_code == 201, r.text
    name = create(
        admin,
        {
            "StartAt": "Invoke",
            "States": {
                "Invoke": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::lambda:invoke",
                    "Parameters": {"FunctionName": fn, "Payload.$": "$"},
                    "OutputPath": "$.Payload",
                    "Catch": [{"ErrorEquals": ["ValueError"], "ResultPath": "$.error", "Next": "Caught"}],
                    "Next": "Direct",
                },
                "Direct": {
                    "Type": "Task",
                    "Resource": f"arn:aws:lambda:eu-west-1:123456789012:function:{fn}",
                    "Parameters": {"n.$": "$.doubled"},
                    "End": True,
                },
                "Caught": {"Type": "Pass", "End": True},
            },
        },
    )
    out = run(admin, name, {"n": 5})
    assert out["status"] == "SUCCEEDED", out
    assert out["output"] == {"doubled": 20}
    caught = run(admin, name, {"n": 1, "fail": True})
    assert caught["status"] == "SUCCEEDED", caught
    assert caught["output"]["error"]["Error"] == "ValueError"
