"""ASL through the real engine in-process: Lambda ARNs mapped to Aionix functions over the bus,
Parallel inputs, waits on the scaled clock, machine timeouts and validation paths."""

from __future__ import annotations

import asyncio
import time

import pytest

from aionix.bus import Bus, BusError
from aionix.errors import ValidationFailed
from aionix.stepflow.asl.local import run_definition
from aionix.stepflow.asl.validate import validate


def function_bus(calls: list) -> Bus:
    bus = Bus()

    async def fn(target, payload, ctx):
        calls.append((str(target), payload, ctx.idempotency_key))
        if payload == "fail":
            raise BusError("Function.Error.ValueError", "bad value")
        return {"echo": payload, "fn": target.path}

    bus.register_trn("aionixfn", "function", fn)
    return bus


def test_lambda_invoke_and_function_arns_call_aionix_functions():
    calls: list = []
    definition = {
        "StartAt": "Invoke",
        "States": {
            "Invoke": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {
                    "FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:greet:live",
                    "Payload.$": "$.x",
                },
                "ResultSelector": {"body.$": "$.Payload", "code.$": "$.StatusCode"},
                "ResultPath": "$.first",
                "Next": "Direct",
            },
            "Direct": {
                "Type": "Task",
                "Resource": "arn:aws:lambda:us-east-1:123456789012:function:other",
                "InputPath": "$.first.body",
                "End": True,
            },
        },
    }
    out = asyncio.run(run_definition(definition, {"x": 5}, bus=function_bus(calls)))
    assert out.status == "SUCCEEDED", out
    assert calls[0][0] == "trn:aionixfn:local:function/greet:live" and calls[0][1] == 5
    assert calls[1][0] == "trn:aionixfn:local:function/other" and calls[1][1] == {"echo": 5, "fn": "greet"}
    assert calls[0][2].endswith(":Invoke:1")
    assert out.output == {"echo": {"echo": 5, "fn": "greet"}, "fn": "other"}


def test_function_errors_retry_and_catch_by_name():
    calls: list = []
    definition = {
        "StartAt": "Call",
        "States": {
            "Call": {
                "Type": "Task",
                "Resource": "trn:aionixfn:local:function/f",
                "Retry": [{"ErrorEquals": ["Function.Error.ValueError"], "IntervalSeconds": 5, "MaxAttempts": 2}],
                "Catch": [{"ErrorEquals": ["States.TaskFailed", "Function.Error.ValueError"], "Next": "Handle"}],
                "End": True,
            },
            "Handle": {"Type": "Pass", "End": True},
        },
    }
    started = time.monotonic()
    out = asyncio.run(run_definition(definition, "fail", bus=function_bus(calls)))
    assert out.status == "SUCCEEDED"
    assert out.output == {"Error": "Function.Error.ValueError", "Cause": "bad value"}
    assert len(calls) == 3
    assert time.monotonic() - started < 5  # 5 s + 10 s of backoff on the scaled clock


def test_parallel_parameters_shape_every_branch_input_and_result_path_keeps_raw_input():
    branch = {"StartAt": "B", "States": {"B": {"Type": "Pass", "End": True}}}
    definition = {
        "StartAt": "P",
        "States": {
            "P": {
                "Type": "Parallel",
                "InputPath": "$.in",
                "Parameters": {"v.$": "$.v"},
                "Branches": [branch, branch],
                "ResultSelector": {"first.$": "$[0].v"},
                "ResultPath": "$.out",
                "End": True,
            }
        },
    }
    out = asyncio.run(run_definition(definition, {"in": {"v": 3, "w": 4}}))
    assert out.output == {"in": {"v": 3, "w": 4}, "out": {"first": 3}}


def test_waits_and_machine_timeout_run_on_the_scaled_clock():
    waits = {
        "TimeoutSeconds": 30,
        "StartAt": "W",
        "States": {"W": {"Type": "Wait", "Seconds": 60, "End": True}},
    }
    started = time.monotonic()
    assert asyncio.run(run_definition(waits, {})).status == "TIMED_OUT"
    short = {**waits, "TimeoutSeconds": 3600}  # a wide margin: the box may be loaded
    assert asyncio.run(run_definition(short, {"a": 1})).output == {"a": 1}
    assert time.monotonic() - started < 5


def test_invalid_definitions_name_asl_field_paths():
    report = validate(
        {
            "StartAt": "A",
            "States": {
                "A": {"Type": "Pass", "InputPath": "x", "End": True, "Next": "A"},
                "W": {"Type": "Wait", "End": True},
                "M": {"Type": "Map", "End": True, "ItemProcessor": {"StartAt": "Z", "States": {}}},
                "R": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::dynamodb:getItem",
                    "Retry": [{"ErrorEquals": []}],
                    "End": True,
                },
            },
        }
    )
    pointers = {p.pointer for p in report.errors}
    assert {
        "/States/A/InputPath",
        "/States/A",
        "/States/W",
        "/States/M/ItemProcessor/States",
        "/States/R/Resource",
        "/States/R/Retry/0/ErrorEquals",
    } <= pointers
    with pytest.raises(ValidationFailed):
        asyncio.run(run_definition({"StartAt": "X", "States": {}}, None))


def test_lambda_error_types_retry_and_catch_by_their_lambda_names():
    calls: list = []
    definition = {
        "StartAt": "Call",
        "States": {
            "Call": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": "f", "Payload": "fail"},
                "Retry": [{"ErrorEquals": ["ValueError"], "IntervalSeconds": 1, "MaxAttempts": 1}],
                "Catch": [{"ErrorEquals": ["ValueError"], "ResultPath": "$.err", "Next": "Handle"}],
                "End": True,
            },
            "Handle": {"Type": "Pass", "End": True},
        },
    }
    out = asyncio.run(run_definition(definition, {"k": 1}, bus=function_bus(calls)))
    assert out.status == "SUCCEEDED", out
    assert len(calls) == 2
    assert out.output == {"k": 1, "err": {"Error": "ValueError", "Cause": "bad value"}}


def test_map_tolerance_from_a_constant_jsonata_expression_and_from_the_execution():
    processor = {
        "StartAt": "Check",
        "States": {
            "Check": {
                "Type": "Choice",
                "Choices": [{"Condition": "{% $states.input > 1 %}", "Next": "Bad"}],
                "Default": "Good",
            },
            "Bad": {"Type": "Fail", "Error": "TooBig"},
            "Good": {"Type": "Succeed"},
        },
    }
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "M",
        "States": {
            "M": {
                "Type": "Map",
                "Items": "{% $states.input %}",
                "ItemProcessor": processor,
                "ToleratedFailurePercentage": "{% 25 + 25 %}",
                "End": True,
            }
        },
    }
    ok = asyncio.run(run_definition(definition, [0, 1, 2, 1]))
    assert ok.status == "SUCCEEDED", ok
    assert ok.output[:2] == [0, 1] and ok.output[3] == 1
    too_many = asyncio.run(run_definition(definition, [2, 2, 2, 0]))
    assert too_many.status == "FAILED" and too_many.error == "States.ExceedToleratedFailureThreshold"
    # an expression that reads the execution is evaluated when the Map starts
    dynamic = {**definition, "States": {"M": {**definition["States"]["M"], "MaxConcurrency": "{% $states.input[0] %}"}}}
    assert validate(dynamic).valid
    assert asyncio.run(run_definition(dynamic, [1, 1, 0])).status == "SUCCEEDED"
    bad = asyncio.run(run_definition(dynamic, [-1, 1, 0]))
    assert bad.status == "FAILED" and bad.error == "States.QueryEvaluationError", bad
    assert "specified for the field 'MaxConcurrency' returned an unexpected result type" in bad.cause
    jsonpath_string = {"StartAt": "M", "States": {"M": {**definition["States"]["M"], "QueryLanguage": None}}}
    jsonpath_string["States"]["M"].pop("QueryLanguage")
    jsonpath_string["States"]["M"].pop("Items")
    jsonpath_string["States"]["M"]["ItemProcessor"] = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
    assert "/States/M/ToleratedFailurePercentage" in {p.pointer for p in validate(jsonpath_string).errors}


def _callback_bus() -> Bus:
    bus = Bus()

    async def notify(target, payload, ctx):
        return None  # nobody ever answers the task token

    bus.register_kind("notify", notify)
    return bus


@pytest.mark.parametrize(
    ("fields", "ql", "error"),
    [
        ({"TimeoutSecondsPath": "$.limits.t"}, "JSONPath", "States.Timeout"),
        ({"TimeoutSeconds": "{% $states.input.limits.t %}"}, "JSONata", "States.Timeout"),
        ({"TimeoutSeconds": 30, "HeartbeatSecondsPath": "$.limits.t"}, "JSONPath", "States.HeartbeatTimeout"),
        (
            {"TimeoutSeconds": 30, "HeartbeatSeconds": "{% $states.input.limits.t %}"},
            "JSONata",
            "States.HeartbeatTimeout",
        ),
        ({"TimeoutSecondsPath": "$.limits.bad"}, "JSONPath", "States.Runtime"),
    ],
)
def test_dynamic_task_timeouts_and_heartbeats(fields, ql, error):
    definition = {
        "QueryLanguage": ql,
        "StartAt": "Ask",
        "States": {"Ask": {"Type": "Task", "Resource": "notify.waitForTaskToken", **fields, "End": True}},
    }
    assert validate(definition).valid, validate(definition).errors
    started = time.monotonic()
    out = asyncio.run(run_definition(definition, {"limits": {"t": 1, "bad": -1}}, bus=_callback_bus()))
    assert out.status == "FAILED" and out.error == error, out
    assert time.monotonic() - started < 10
