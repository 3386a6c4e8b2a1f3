"""ASL definitions through the HTTP API on the real server: accepted as written, validated with
ASL field paths, run on the StepFlow engine in both query languages."""

from __future__ import annotations

import uuid

import httpx


def uname(prefix: str = "asl") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


JSONPATH = {
    "Comment": "order flow",
    "StartAt": "Shape",
    "States": {
        "Shape": {
            "Type": "Pass",
            "Parameters": {"id.$": "$.order.id", "greeting.$": "States.Format('Hello {}', $.name)"},
            "ResultPath": "$.shaped",
            "Next": "Route",
        },
        "Route": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.order.total", "NumericGreaterThan": 100, "Next": "Big"}],
            "Default": "Small",
        },
        "Big": {"Type": "Pass", "Result": "big", "ResultPath": "$.size", "OutputPath": "$", "End": True},
        "Small": {
            "Type": "Map",
            "ItemsPath": "$.order.items",
            "ItemSelector": {"item.$": "$$.Map.Item.Value", "index.$": "$$.Map.Item.Index"},
            "ItemProcessor": {"StartAt": "Each", "States": {"Each": {"Type": "Pass", "End": True}}},
            "ResultPath": "$.items",
            "End": True,
        },
    },
}

JSONATA = {
    "QueryLanguage": "JSONata",
    "StartAt": "Sum",
    "States": {
        "Sum": {
            "Type": "Pass",
            "Assign": {"total": "{% $sum($states.input.values) %}"},
            "Output": {"doubled": "{% $states.input.values.($ * 2) %}"},
            "Next": "Check",
        },
        "Check": {
            "Type": "Choice",
            "Choices": [{"Condition": "{% $total > 5 %}", "Next": "Done", "Output": {"total": "{% $total %}"}}],
            "Default": "TooSmall",
        },
        "Done": {"Type": "Succeed"},
        "TooSmall": {"Type": "Fail", "Error": "Small", "Cause": "{% 'total was ' & $string($total) %}"},
    },
}


def create(admin: httpx.Client, definition: dict) -> str:
    name = uname()
    r = admin.post("/api/v1/workflows", json={"name": name, "definition": definition})
    assert r.status_code == 201, r.text
    return name


def run(admin: httpx.Client, name: str, input: object) -> dict:
    r = admin.post(f"/api/v1/workflows/{name}/executions", json={"input": input, "mode": "sync", "wait_seconds": 60})
    assert r.status_code in (200, 201), r.text
    return r.json()


def test_asl_definition_is_stored_exactly_as_written(admin):
    name = create(admin, JSONPATH)
    got = admin.get(f"/api/v1/workflows/{name}").json()
    assert got["definition"] == JSONPATH
    assert list(got["definition"]) == list(JSONPATH)


def test_jsonpath_definition_runs_on_the_engine(admin):
    name = create(admin, JSONPATH)
    small = run(admin, name, {"name": "Ada", "order": {"id": 7, "total": 30, "items": ["a", "b"]}})
    assert small["status"] == "SUCCEEDED", small
    assert small["output"]["shaped"] == {"id": 7, "greeting": "Hello Ada"}
    assert small["output"]["items"] == [{"item": "a", "index": 0}, {"item": "b", "index": 1}]
    big = run(admin, name, {"name": "Bo", "order": {"id": 8, "total": 300, "items": []}})
    assert big["output"]["size"] == "big"


def test_jsonata_definition_runs_and_fails_with_an_evaluated_cause(admin):
    name = create(admin, JSONATA)
    ok = run(admin, name, {"values": [1, 2, 3]})
    assert ok["status"] == "SUCCEEDED", ok
    assert ok["output"] == {"total": 6}
    failed = run(admin, name, {"values": [1, 2]})
    assert failed["status"] == "FAILED"
    assert failed["error"] == {"error": "Small", "cause": "total was 3"}


def test_dialect_marker_selects_asl(admin):
    definition = {"dialect": "asl", "StartAt": "A", "States": {"A": {"Type": "Pass", "Result": 1, "End": True}}}
    name = create(admin, definition)
    assert run(admin, name, None)["output"] == 1


def test_invalid_asl_is_a_422_naming_asl_field_paths(admin):
    bad = {
        "StartAt": "Nope",
        "States": {
            "A": {"Type": "Pass", "Next": "Missing"},
            "B": {"Type": "Choice", "Choices": [{"Variable": "$.x", "Next": "A"}]},
            "C": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage", "End": True},
            "D": {"Type": "Pass", "QueryLanguage": "JSONata", "Output": "{% $states.input + %}", "End": True},
        },
    }
    r = admin.post("/api/v1/workflows", json={"name": uname(), "definition": bad})
    assert r.status_code == 422, r.text
    fields = {d["field"] for d in r.json()["error"]["details"]}
    assert {
        "definition/StartAt",
        "definition/States/A/Next",
        "definition/States/B/Choices/0",
        "definition/States/C/Resource",
        "definition/States/D/Output",
    } <= fields
    report = admin.post("/api/v1/workflows/validate", json={"definition": bad}).json()
    assert report["valid"] is False
    messages = {p["pointer"]: p["message"] for p in report["errors"]}
    assert "mock config" in messages["/States/C/Resource"]


def test_update_with_asl_makes_a_new_version(admin):
    name = create(admin, JSONATA)
    changed = {**JSONPATH, "Comment": "v2"}
    r = admin.put(f"/api/v1/workflows/{name}", json={"definition": changed})
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2
    assert admin.get(f"/api/v1/workflows/{name}").json()["definition"]["Comment"] == "v2"


def test_validate_warns_about_task_resources_with_no_executor(admin):
    definition = {
        "StartAt": "T",
        "States": {
            "T": {"Type": "Task", "Resource": "nosuchkind", "Next": "K"},
            "K": {"Type": "Task", "Resource": "transform", "Parameters": {"expression": "1"}, "End": True},
        },
    }
    report = admin.post("/api/v1/workflows/validate", json={"definition": definition}).json()
    assert report["valid"] is True
    assert [w["pointer"] for w in report["warnings"]] == ["/States/T/Resource"]
    assert "nosuchkind" in report["warnings"][0]["message"]
