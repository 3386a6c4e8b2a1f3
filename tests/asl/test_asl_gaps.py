"""The last ASL gaps: Map limits read from the execution (…Path fields on the input or a
variable, JSONata expressions), AWS's cause text for JSONata function errors, a Fail state with
only a Cause, and validation pointers that name the offending field."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from aionix.stepflow.asl.local import Outcome, run_definition

PREFIX = "An error occurred while executing the state 'S' (entered at the event id #2). "


def run(definition: dict[str, Any], input: Any = None) -> Outcome:
    return asyncio.run(run_definition(definition, input))


def waiting_processor(ql: str) -> dict[str, Any]:
    """Each item waits a while, so overlapping iterations show in the history."""
    wait = {"Type": "Wait", "Seconds": 100, "End": True}  # 0.1 s on the 1,000× clock
    return {"StartAt": "W", "States": {"W": wait}, **({"QueryLanguage": ql} if ql == "JSONata" else {})}


def failing_processor(ql: str) -> dict[str, Any]:
    """An item fails when it is the string "bad"."""
    if ql == "JSONata":
        rule = {"Condition": "{% $states.input = 'bad' %}", "Next": "Bad"}
    else:
        rule = {"Variable": "$", "StringEquals": "bad", "Next": "Bad"}
    return {
        "StartAt": "C",
        "States": {
            "C": {"Type": "Choice", "Choices": [rule], "Default": "Good"},
            "Bad": {"Type": "Fail", "Error": "Item.Bad"},
            "Good": {"Type": "Succeed"},
        },
    }


def most_at_once(out: Outcome) -> int:
    """The largest number of map iterations that were running at the same time."""
    running, most = set(), 0
    for event in out.events:
        frame = event.get("frame") or ""
        if frame.count(".") != 2:
            continue
        if event["type"] == "StateEntered":
            running.add(frame)
        elif event["type"] == "StateExited":
            running.discard(frame)
        most = max(most, len(running))
    return most


def jsonpath_map(**fields: Any) -> dict[str, Any]:
    return {
        "StartAt": "Vars",
        "States": {
            "Vars": {"Type": "Pass", "Assign": {"limits": {"max.$": "$.max", "tol.$": "$.tol"}}, "Next": "S"},
            "S": {"Type": "Map", "ItemsPath": "$.items", "End": True, **fields},
        },
    }


def test_max_concurrency_path_reads_the_input_or_a_variable_and_is_applied():
    items = {"items": [1, 2, 3, 4], "max": 1, "tol": 0}
    for path in ("$.max", "$limits.max"):
        definition = jsonpath_map(MaxConcurrencyPath=path, ItemProcessor=waiting_processor("JSONPath"))
        out = run(definition, items)
        assert out.status == "SUCCEEDED", out
        assert out.output == [1, 2, 3, 4] and most_at_once(out) == 1, path
        wide = run(definition, {**items, "max": 0})  # 0: no limit
        assert wide.status == "SUCCEEDED" and most_at_once(wide) == 4
    bad = run(
        jsonpath_map(MaxConcurrencyPath="$limits.max", ItemProcessor=waiting_processor("JSONPath")),
        {**items, "max": "NoNumber"},
    )
    assert bad.status == "FAILED" and bad.error == "States.Runtime"
    assert bad.cause.endswith(
        'The MaxConcurrencyPath field refers to value "NoNumber" which is not a valid integer: $limits.max'
    )


@pytest.mark.parametrize("field", ["ToleratedFailureCountPath", "ToleratedFailurePercentagePath"])
def test_tolerated_failure_paths_read_the_input_or_a_variable(field):
    processor = failing_processor("JSONPath")
    # one bad item of four: tolerated with a count of 1 or 25 %, not with 0
    enough = 1 if field == "ToleratedFailureCountPath" else 25
    for path in ("$.tol", "$limits.tol"):
        definition = jsonpath_map(**{field: path}, ItemProcessor=processor)
        ok = run(definition, {"items": ["a", "bad", "c", "d"], "max": 0, "tol": enough})
        assert ok.status == "SUCCEEDED", ok
        assert ok.output[0] == "a" and ok.output[2:] == ["c", "d"]
        over = run(definition, {"items": ["a", "bad", "c", "d"], "max": 0, "tol": 0})
        assert over.status == "FAILED" and over.error == "States.ExceedToleratedFailureThreshold", over
    bad = run(jsonpath_map(**{field: "$.tol"}, ItemProcessor=processor), {"items": [], "max": 0, "tol": "x"})
    assert bad.status == "FAILED" and bad.error == "States.Runtime"
    assert f'The {field} field refers to value "x"' in bad.cause


def jsonata_map(**fields: Any) -> dict[str, Any]:
    return {
        "QueryLanguage": "JSONata",
        "StartAt": "Vars",
        "States": {
            "Vars": {"Type": "Pass", "Assign": {"pct": "{% $states.input.pct %}"}, "Next": "S"},
            "S": {"Type": "Map", "Items": "{% $states.input.items %}", "End": True, **fields},
        },
    }


def test_jsonata_map_limits_that_read_the_execution():
    limited = jsonata_map(MaxConcurrency="{% $states.input.max %}", ItemProcessor=waiting_processor("JSONata"))
    out = run(limited, {"items": [1, 2, 3], "max": 1, "pct": 0})
    assert out.status == "SUCCEEDED" and most_at_once(out) == 1, out
    assert most_at_once(run(limited, {"items": [1, 2, 3], "max": 2, "pct": 0})) == 2
    processor = failing_processor("JSONata")
    by_count = jsonata_map(ToleratedFailureCount="{% $states.input.max %}", ItemProcessor=processor)
    assert run(by_count, {"items": ["bad", "a"], "max": 1, "pct": 0}).status == "SUCCEEDED"
    assert run(by_count, {"items": ["bad", "a"], "max": 0, "pct": 0}).error == "States.ExceedToleratedFailureThreshold"
    by_pct = jsonata_map(ToleratedFailurePercentage="{% $pct %}", ItemProcessor=processor)
    assert run(by_pct, {"items": ["bad", "a"], "max": 0, "pct": 50}).status == "SUCCEEDED"
    assert run(by_pct, {"items": ["bad", "a"], "max": 0, "pct": 49}).status == "FAILED"
    bad = run(limited, {"items": [1], "max": "two", "pct": 0})
    assert bad.status == "FAILED" and bad.error == "States.QueryEvaluationError"
    assert bad.cause.endswith(
        "The JSONata expression '$states.input.max' specified for the field 'MaxConcurrency' returned an "
        "unexpected result type. Expected 'integer', but was 'string' for value: \"two\""
    )


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("$states.input.x()", "T1006: Attempted to invoke a non-function"),
        ("$nothing(1)", "T1006: Attempted to invoke a non-function"),
        ("$length(1)", 'T0410: Argument 1 of function "length" does not match function signature'),
        ("$abs('x')", 'T0410: Argument 1 of function "abs" does not match function signature'),
        # the Step Functions extras check their arguments as AWS does (recorded causes)
        ("$range('0', 4, 1)", 'T0410: Argument 1 of function "range" does not match function signature'),
        ("$range(0, 4, 1, 2)", 'T0410: Argument 4 of function "range" does not match function signature'),
        ("$partition('abc', 1)", 'T0410: Argument 1 of function "partition" does not match function signature'),
        ("$parse(5)", 'T0410: Argument 1 of function "parse" does not match function signature'),
        ("$hash(5, 'SHA-256')", 'T0410: Argument 1 of function "hash" does not match function signature'),
    ],
)
def test_jsonata_function_errors_have_aws_cause_text(expression, message):
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "S",
        "States": {"S": {"Type": "Pass", "Output": {"v": "{% " + expression + " %}"}, "End": True}},
    }
    out = run(definition, {"x": 1})
    assert out.status == "FAILED" and out.error == "States.QueryEvaluationError"
    assert out.cause == (
        f"{PREFIX}The JSONata expression '{expression}' specified for the field 'Output/v' threw an error during "
        f"evaluation. {message}"
    )


# ------------------------------------------------------------------ through the real server
def create(admin, definition: dict[str, Any]) -> str:
    name = f"gap-{uuid.uuid4().hex[:10]}"
    r = admin.post("/api/v1/workflows", json={"name": name, "definition": definition})
    assert r.status_code == 201, r.text
    return name


@pytest.mark.parametrize("ql", ["JSONPath", "JSONata"])
def test_fail_with_only_a_cause_in_both_query_languages(admin, ql):
    name = create(
        admin, {"QueryLanguage": ql, "StartAt": "F", "States": {"F": {"Type": "Fail", "Cause": "only a cause"}}}
    )
    r = admin.post(f"/api/v1/workflows/{name}/executions", json={"mode": "sync", "input": {}})
    assert r.status_code == 200, r.text
    env = r.json()
    assert env["status"] == "FAILED" and env["error"]["cause"] == "only a cause"
    assert env["error"].get("error") is None
    got = admin.get(f"/api/v1/executions/{env['execution_id']}")
    assert got.status_code == 200 and got.json()["error"]["cause"] == "only a cause"
    history = admin.get(f"/api/v1/executions/{env['execution_id']}/history", params={"format": "asl"})
    assert history.status_code == 200, history.text
    failed = [e for e in history.json()["events"] if e["type"] == "ExecutionFailed"]
    assert failed and failed[0]["executionFailedEventDetails"] == {"cause": "only a cause"}
    listed = admin.get("/api/v1/executions", params={"workflow": name})
    assert listed.status_code == 200, listed.text


@pytest.mark.parametrize(
    ("definition", "pointer"),
    [
        ({"entry": "A", "states": {"A": {"type": "teleport", "end": True}}}, "/states/A/type"),
        ({"entry": "A", "states": {"A": {"end": True}}}, "/states/A/type"),
        ({"StartAt": "A", "States": {"A": {"Type": "Teleport", "End": True}}}, "/States/A/Type"),
        ({"StartAt": "A", "States": {"A": {"End": True}}}, "/States/A/Type"),
        (
            {
                "QueryLanguage": "JSONata",
                "StartAt": "C",
                "States": {"C": {"Type": "Choice", "Choices": [{"Condition": "{% true %}", "Next": "C", "Bogus": 1}]}},
            },
            "/States/C/Choices/0/Bogus",
        ),
        (
            {
                "StartAt": "M",
                "States": {
                    "M": {
                        "Type": "Map",
                        "MaxConcurrency": 1,
                        "MaxConcurrencyPath": "$.n",
                        "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}},
                        "End": True,
                    }
                },
            },
            "/States/M/MaxConcurrencyPath",
        ),
    ],
)
def test_validation_pointers_name_the_offending_field(admin, definition, pointer):
    report = admin.post("/api/v1/workflows/validate", json={"definition": definition}).json()
    assert not report["valid"]
    assert pointer in [p["pointer"] for p in report["errors"]], report
    r = admin.post("/api/v1/workflows", json={"name": f"gap-{uuid.uuid4().hex[:8]}", "definition": definition})
    assert r.status_code == 422, r.text
    assert any(d["pointer"] == pointer for d in r.json()["error"]["details"]), r.text


def test_an_asl_variable_named_secret_or_param_wins_over_the_late_bound_names():
    """No vault and no parameter store here: the variables are read, nothing is resolved."""
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "Vars",
        "States": {
            "Vars": {"Type": "Pass", "Assign": {"secret": {"x": 1}, "param": 2}, "Next": "Use"},
            "Use": {"Type": "Pass", "Output": {"s": "{% $secret.x %}", "p": "{% $param %}"}, "End": True},
        },
    }
    out = run(definition, {})
    assert out.status == "SUCCEEDED", out
    assert out.output == {"s": 1, "p": 2}
    # a Comment is not an expression: nothing to resolve
    commented = {
        "QueryLanguage": "JSONata",
        "StartAt": "P",
        "States": {"P": {"Type": "Pass", "Comment": "{% $secret.nothing %}", "End": True}},
    }
    assert run(commented, {"a": 1}).output == {"a": 1}
