"""`$param('/x')` and `$secret.x` in EVERY expression-bearing field of every state type, native
DSL and Amazon States Language (JSONata), through the real server with a real vault and
parameter store: each field sees the resolved value, and a missing name fails the state with
`States.Runtime` naming it — never an *undefined* that lets the run succeed with keys missing.

The tables of fields are checked against the definitions' own field lists (the DSL's pydantic
models, the ASL validator's per-type field tables), so a field added later fails
`test_*_every_field_is_classified` until it is given a case here or declared not to hold
expressions."""

from __future__ import annotations

import base64
import time
import types
import typing
import uuid
from collections.abc import Callable
from typing import Any

import pgstore
import pytest
from pydantic import BaseModel

from aionix.stepflow import models
from aionix.stepflow.asl import validate as asl_validate
from aionix.stepflow.compile import compile_workflow

SECRET = f"lb{uuid.uuid4().hex[:10]}"
CANARY = f"CANARY-{uuid.uuid4().hex}"
CANARY_B64 = base64.b64encode(CANARY.encode()).decode()  # definitions never hold the value itself
PARAM = f"/lb/{uuid.uuid4().hex[:8]}/n"
MISSING_SECRET = f"lbmissing{uuid.uuid4().hex[:8]}"
MISSING_PARAM = f"/lb/{uuid.uuid4().hex[:8]}/missing"
CHILD_OK = f"lb-ok-{uuid.uuid4().hex[:8]}"
CHILD_FAIL = f"lb-fail-{uuid.uuid4().hex[:8]}"
TRN_OK = f"trn:stepflow:default:template/{CHILD_OK}"
TRN_FAIL = f"trn:stepflow:default:template/{CHILD_FAIL}"


def condition(secret: str, param: str) -> str:
    """True only when both late-bound values were read (an unresolved one is undefined/null)."""
    return f"($base64encode($secret.{secret}) = '{CANARY_B64}' and $param('{param}') = 42)"


class Late:
    """Builds `{% cond ? value : $error(...) %}`: the value only when the names resolved."""

    def __init__(self, secret: str = SECRET, param: str = PARAM) -> None:
        self.cond = condition(secret, param)

    def __call__(self, value: str) -> str:
        return "{% " + self.cond + " ? " + value + " : $error('late-bound value was not resolved') %}"


Ok = dict[str, Any]
Case = Callable[[Late], tuple[dict[str, Any], Ok]]


def succeeded(output: Any) -> Ok:
    return {"status": "SUCCEEDED", "output": output}


def failed(error: str, cause: str | None = None) -> Ok:
    return {"status": "FAILED", "error": error, **({"cause": cause} if cause is not None else {})}


# ------------------------------------------------------------------------------------ DSL
END_BRANCH = {"entry": "B", "states": {"B": {"type": "succeed"}}}
FAIL_BRANCH = {"entry": "B", "states": {"B": {"type": "fail", "error": "Branch.Boom"}}}


def dsl_base(kind: str) -> tuple[dict[str, Any], Ok]:
    """A minimal state `S` of `kind` ending the run, and what the run gives."""
    return {
        "set": ({"type": "set", "value": {"v": 1}, "end": True}, succeeded({"v": 1})),
        "wait": ({"type": "wait", "seconds": 0, "end": True}, succeeded({"in": 1})),
        "task": ({"type": "task", "action": TRN_OK, "parameters": {"v": 1}, "end": True}, succeeded({"v": 1})),
        "parallel": ({"type": "parallel", "branches": [END_BRANCH], "end": True}, succeeded([{"in": 1}])),
        "map": ({"type": "map", "items": "{% [7] %}", "processor": END_BRANCH, "end": True}, succeeded([7])),
        "router": ({"type": "router", "routes": [{"condition": "{% true %}", "next": "Done"}]}, succeeded({"in": 1})),
        "succeed": ({"type": "succeed"}, succeeded({"in": 1})),
        "fail": ({"type": "fail", "error": "Expected.Fail", "cause": "as planned"}, failed("Expected.Fail")),
    }[kind]


def dsl_doc(state: dict[str, Any], **more: Any) -> dict[str, Any]:
    states = {"S": state, "Done": {"type": "succeed"}, **more}
    reachable = {"S"} | {r["next"] for r in state.get("routes", [])} | {c["next"] for c in state.get("catch", [])}
    if "next" in state:
        reachable.add(state["next"])
    return {"entry": "S", "states": {k: v for k, v in states.items() if k in reachable}}


SHOW_OK = {"type": "set", "value": "{% vars.ok %}", "end": True}


def dsl_output(kind: str) -> Case:
    def case(g: Late) -> tuple[dict[str, Any], Ok]:
        state, expect = dsl_base(kind)
        state = {**state, "output": {"expression": {"ok": g("true")}}}
        return dsl_doc(state), expect if kind == "fail" else succeeded({"ok": True})

    return case


def dsl_assign(kind: str) -> Case:
    def case(g: Late) -> tuple[dict[str, Any], Ok]:
        state, expect = dsl_base(kind)
        state = {**state, "assign": {"ok": g("true")}}
        if kind in ("succeed", "fail"):  # a terminal state: its variables are not observable
            return dsl_doc(state), expect
        if kind == "router":
            state["routes"] = [{"condition": "{% true %}", "next": "Show"}]
        else:
            state.pop("end")
            state["next"] = "Show"
        return dsl_doc(state, Show=SHOW_OK), succeeded(True)

    return case


def dsl_catch(kind: str, part: str) -> Case:
    def case(g: Late) -> tuple[dict[str, Any], Ok]:
        state = {
            "task": {"type": "task", "action": TRN_FAIL, "end": True},
            "parallel": {"type": "parallel", "branches": [FAIL_BRANCH], "end": True},
            "map": {"type": "map", "items": "{% [1] %}", "processor": FAIL_BRANCH, "end": True},
        }[kind]
        catcher: dict[str, Any] = {"errors": ["States.ALL"], "next": "Show"}
        if part == "output":
            catcher["output"] = {"ok": g("true")}
            show: dict[str, Any] = {"type": "set", "end": True}
            expect = succeeded({"ok": True})
        else:
            catcher["assign"] = {"ok": g("true")}
            show, expect = SHOW_OK, succeeded(True)
        return dsl_doc({**state, "catch": [catcher]}, Show=show), expect

    return case


def dsl_field(kind: str, name: str, value: Callable[[Late], Any], expect: Ok, drop: str = "") -> Case:
    def case(g: Late) -> tuple[dict[str, Any], Ok]:
        state, _ = dsl_base(kind)
        state.pop(drop, None)  # a field this one replaces (a wait's seconds for its timestamp)
        return dsl_doc({**state, name: value(g)}), expect

    return case


def dsl_route(part: str) -> Case:
    def case(g: Late) -> tuple[dict[str, Any], Ok]:
        route: dict[str, Any] = {"condition": "{% true %}", "next": "Done"}
        if part == "condition":
            route["condition"] = g("true")
            return dsl_doc({"type": "router", "routes": [route]}), succeeded({"in": 1})
        if part == "output.expression":
            route["output"] = {"expression": {"ok": g("true")}}
            return dsl_doc({"type": "router", "routes": [route]}), succeeded({"ok": True})
        route["assign"] = {"ok": g("true")}
        route["next"] = "Show"
        return dsl_doc({"type": "router", "routes": [route]}, Show=SHOW_OK), succeeded(True)

    return case


DSL_KINDS = ("task", "parallel", "map", "router", "wait", "set", "succeed", "fail")
DSL_CASES: dict[str, Case] = {
    **{f"{k}.output.expression": dsl_output(k) for k in DSL_KINDS},
    **{f"{k}.assign": dsl_assign(k) for k in DSL_KINDS},
    **{f"{k}.catch[].{p}": dsl_catch(k, p) for k in ("task", "parallel", "map") for p in ("output", "assign")},
    "task.action": dsl_field("task", "action", lambda g: g(f"'{TRN_OK}'"), succeeded({"v": 1})),
    "task.parameters": dsl_field("task", "parameters", lambda g: {"ok": g("true")}, succeeded({"ok": True})),
    "map.items": dsl_field("map", "items", lambda g: g("[1, 2]"), succeeded([1, 2])),
    "map.item": dsl_field("map", "item", lambda g: {"ok": g("true")}, succeeded([{"ok": True}])),
    "router.routes[].condition": dsl_route("condition"),
    "router.routes[].output.expression": dsl_route("output.expression"),
    "router.routes[].assign": dsl_route("assign"),
    "wait.seconds": dsl_field("wait", "seconds", lambda g: g("0"), succeeded({"in": 1})),
    "wait.timestamp": dsl_field(
        "wait", "timestamp", lambda g: g("'2000-01-01T00:00:00Z'"), succeeded({"in": 1}), drop="seconds"
    ),
    "set.value": dsl_field("set", "value", lambda g: {"ok": g("true")}, succeeded({"ok": True})),
    "fail.error": dsl_field("fail", "error", lambda g: g("'Late.Error'"), failed("Late.Error")),
    "fail.cause": dsl_field("fail", "cause", lambda g: g("'late cause'"), failed("Expected.Fail", "late cause")),
}


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """(the model or type inside Optional/list, whether it was a list)."""
    is_list = False
    while True:
        origin = typing.get_origin(annotation)
        if origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = args[0] if len(args) == 1 else annotation
            if len(args) != 1:
                return annotation, is_list
        elif origin is list:
            is_list, annotation = True, typing.get_args(annotation)[0]
        else:
            return annotation, is_list


def _leaves(model: type[BaseModel], prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for name, info in model.model_fields.items():
        inner, is_list = _unwrap(info.annotation)
        path = f"{prefix}{name}{'[]' if is_list else ''}"
        if isinstance(inner, type) and issubclass(inner, BaseModel) and inner is not models.Branch:
            out.extend(_leaves(inner, path + "."))
        else:
            out.append((path, info.annotation))
    return out


#: DSL fields that hold no expression (structure, names, numbers); anything else must be in DSL_CASES
DSL_NOT_EXPRESSIONS = {"comment", "next", "end", "type", "timeout_seconds", "default", "mode", "heartbeat_seconds"}
DSL_NOT_EXPRESSIONS |= {"max_concurrency", "tolerated_failure_count", "tolerated_failure_percentage"}
DSL_NOT_EXPRESSIONS |= {"branches[]", "processor", "catch[].errors[]", "catch[].next", "routes[].next"}
DSL_NOT_EXPRESSIONS |= {path for path, _ in _leaves(models.Retrier, "retry[].")}


def dsl_fields() -> dict[str, Any]:
    """Every leaf field of every DSL state type, by introspection of the models."""
    found = {}
    for model in typing.get_args(typing.get_args(models.State)[0]):
        kind = typing.get_args(model.model_fields["type"].annotation)[0]
        for path, annotation in _leaves(model):
            found[f"{kind}.{path}"] = annotation
    return found


def test_dsl_every_field_is_classified():
    fields = dsl_fields()
    unclassified = {f for f in fields if f not in DSL_CASES and f.split(".", 1)[1] not in DSL_NOT_EXPRESSIONS}
    assert not unclassified, (
        f"give these DSL fields a late-binding case (or declare them non-expression): {unclassified}"
    )
    assert not set(DSL_CASES) - set(fields), "cases for fields the models no longer have"
    # a field typed Any (or holding Any) takes expressions: it must be exercised, never excluded
    for path, annotation in fields.items():
        if "Any" in str(annotation):
            assert path in DSL_CASES, path


@pytest.mark.parametrize("field", sorted(DSL_CASES))
def test_dsl_plan_collects_the_references_of_every_field(field):
    definition, _ = DSL_CASES[field](Late())
    state = compile_workflow(definition).root.states["S"]
    assert SECRET in state.references.secrets and PARAM in state.references.params, field


# ------------------------------------------------------------------------------------ ASL
ASL_PROCESSOR = {"StartAt": "I", "States": {"I": {"Type": "Succeed"}}}
ASL_FAILING = {"StartAt": "B", "States": {"B": {"Type": "Fail", "Error": "Branch.Boom"}}}


def asl_base(kind: str) -> tuple[dict[str, Any], Ok]:
    return {
        "Pass": ({"Type": "Pass", "End": True}, succeeded({"in": 1})),
        "Task": ({"Type": "Task", "Resource": TRN_OK, "Arguments": {"v": 1}, "End": True}, succeeded({"v": 1})),
        "Choice": ({"Type": "Choice", "Choices": [{"Condition": "{% true %}", "Next": "Done"}]}, succeeded({"in": 1})),
        "Wait": ({"Type": "Wait", "Seconds": 0, "End": True}, succeeded({"in": 1})),
        "Succeed": ({"Type": "Succeed"}, succeeded({"in": 1})),
        "Fail": ({"Type": "Fail", "Error": "Expected.Fail", "Cause": "as planned"}, failed("Expected.Fail")),
        "Parallel": (
            {"Type": "Parallel", "Branches": [{"StartAt": "B", "States": {"B": {"Type": "Succeed"}}}], "End": True},
            succeeded([{"in": 1}]),
        ),
        "Map": ({"Type": "Map", "Items": "{% [7] %}", "ItemProcessor": ASL_PROCESSOR, "End": True}, succeeded([7])),
    }[kind]


def asl_doc(state: dict[str, Any], **more: Any) -> dict[str, Any]:
    states = {"S": state, "Done": {"Type": "Succeed"}, **more}
    reachable = {"S"} | {r["Next"] for r in state.get("Choices", [])} | {c["Next"] for c in state.get("Catch", [])}
    reachable |= {state[k] for k in ("Next", "Default") if k in state}
    states = {k: v for k, v in states.items() if k in reachable}
    return {"QueryLanguage": "JSONata", "StartAt": "S", "States": states}


ASL_SHOW_OK = {"Type": "Pass", "Output": "{% $ok %}", "End": True}


def asl_output(kind: str) -> Case:
    def case(g: Late) -> tuple[dict[str, Any], Ok]:
        state, _ = asl_base(kind)
        return asl_doc({**state, "Output": {"ok": g("true")}}), succeeded({"ok": True})

    return case


def asl_assign(kind: str) -> Case:
    def case(g: Late) -> tuple[dict[str, Any], Ok]:
        state, _ = asl_base(kind)
        state = {**state, "Assign": {"ok": g("true")}}
        if kind == "Choice":
            state["Choices"] = [{"Condition": "{% true %}", "Next": "Show"}]
        else:
            state.pop("End")
            state["Next"] = "Show"
        return asl_doc(state, Show=ASL_SHOW_OK), succeeded(True)

    return case


def asl_catch(kind: str, part: str) -> Case:
    def case(g: Late) -> tuple[dict[str, Any], Ok]:
        state = {
            "Task": {"Type": "Task", "Resource": TRN_FAIL, "End": True},
            "Parallel": {"Type": "Parallel", "Branches": [ASL_FAILING], "End": True},
            "Map": {"Type": "Map", "Items": "{% [1] %}", "ItemProcessor": ASL_FAILING, "End": True},
        }[kind]
        catcher: dict[str, Any] = {"ErrorEquals": ["States.ALL"], "Next": "Show"}
        if part == "Output":
            catcher["Output"] = {"ok": g("true")}
            show: dict[str, Any] = {"Type": "Pass", "End": True}
            expect = succeeded({"ok": True})
        else:
            catcher["Assign"] = {"ok": g("true")}
            show, expect = ASL_SHOW_OK, succeeded(True)
        return asl_doc({**state, "Catch": [catcher]}, Show=show), expect

    return case


def asl_field(kind: str, name: str, value: Callable[[Late], Any], expect: Ok, drop: str = "") -> Case:
    def case(g: Late) -> tuple[dict[str, Any], Ok]:
        state, _ = asl_base(kind)
        state.pop(drop, None)  # a field this one replaces (a Wait's Seconds for its Timestamp)
        return asl_doc({**state, name: value(g)}), expect

    return case


def asl_distributed(name: str, value: Callable[[Late], Any], expect: Ok) -> Case:
    """A field of a distributed Map (ProcessorConfig.Mode DISTRIBUTED)."""

    def case(g: Late) -> tuple[dict[str, Any], Ok]:
        state, _ = asl_base("Map")
        state["ItemProcessor"] = {**ASL_PROCESSOR, "ProcessorConfig": {"Mode": "DISTRIBUTED"}}
        if name == "ItemReader":
            state.pop("Items")
        return asl_doc({**state, name: value(g)}), expect

    return case


def asl_rule(part: str) -> Case:
    def case(g: Late) -> tuple[dict[str, Any], Ok]:
        rule: dict[str, Any] = {"Condition": "{% true %}", "Next": "Done"}
        expect = succeeded({"in": 1})
        more: dict[str, Any] = {}
        if part == "Condition":
            rule["Condition"] = g("true")
        elif part == "Output":
            rule["Output"] = {"ok": g("true")}
            expect = succeeded({"ok": True})
        else:
            rule["Assign"], rule["Next"], more = {"ok": g("true")}, "Show", {"Show": ASL_SHOW_OK}
            expect = succeeded(True)
        return asl_doc({"Type": "Choice", "Choices": [rule], "Default": "Done"}, **more), expect

    return case


ASL_OUTPUT_KINDS = ("Pass", "Task", "Choice", "Wait", "Succeed", "Parallel", "Map")
ASL_ASSIGN_KINDS = ("Pass", "Task", "Choice", "Wait", "Parallel", "Map")
ASL_CASES: dict[str, Case] = {
    **{f"{k}.Output": asl_output(k) for k in ASL_OUTPUT_KINDS},
    **{f"{k}.Assign": asl_assign(k) for k in ASL_ASSIGN_KINDS},
    **{f"{k}.Catch[].{p}": asl_catch(k, p) for k in ("Task", "Parallel", "Map") for p in ("Output", "Assign")},
    **{f"Choice.Choices[].{p}": asl_rule(p) for p in ("Condition", "Output", "Assign")},
    "Task.Arguments": asl_field("Task", "Arguments", lambda g: {"ok": g("true")}, succeeded({"ok": True})),
    "Task.TimeoutSeconds": asl_field("Task", "TimeoutSeconds", lambda g: g("30"), succeeded({"v": 1})),
    "Task.HeartbeatSeconds": asl_field("Task", "HeartbeatSeconds", lambda g: g("10"), succeeded({"v": 1})),
    "Parallel.Arguments": asl_field("Parallel", "Arguments", lambda g: {"ok": g("true")}, succeeded([{"ok": True}])),
    "Wait.Seconds": asl_field("Wait", "Seconds", lambda g: g("0"), succeeded({"in": 1})),
    "Wait.Timestamp": asl_field(
        "Wait", "Timestamp", lambda g: g("'2000-01-01T00:00:00Z'"), succeeded({"in": 1}), drop="Seconds"
    ),
    "Fail.Error": asl_field("Fail", "Error", lambda g: g("'Late.Error'"), failed("Late.Error", "as planned")),
    "Fail.Cause": asl_field("Fail", "Cause", lambda g: g("'late cause'"), failed("Expected.Fail", "late cause")),
    "Map.Items": asl_field("Map", "Items", lambda g: g("[1, 2]"), succeeded([1, 2])),
    "Map.ItemSelector": asl_field("Map", "ItemSelector", lambda g: {"ok": g("true")}, succeeded([{"ok": True}])),
    "Map.MaxConcurrency": asl_field("Map", "MaxConcurrency", lambda g: g("1"), succeeded([7])),
    "Map.ToleratedFailureCount": asl_field("Map", "ToleratedFailureCount", lambda g: g("0"), succeeded([7])),
    "Map.ToleratedFailurePercentage": asl_field("Map", "ToleratedFailurePercentage", lambda g: g("0"), succeeded([7])),
    # a distributed Map: the batch size resolves (one child per batch); the reader's path and the
    # writer's prefix resolve, then reading/writing fails (this server has no fs_roots), not the
    # expression (States.QueryEvaluationError when a name is not resolved)
    "Map.ItemBatcher": asl_distributed(
        "ItemBatcher", lambda g: {"MaxItemsPerBatch": g("1")}, succeeded([{"Items": [7]}])
    ),
    "Map.ItemReader": asl_distributed(
        "ItemReader",
        lambda g: {
            "Resource": "aionix:::fs:read",
            "ReaderConfig": {"InputType": "JSONL"},
            "Arguments": {"Path": g("'in.jsonl'")},
        },
        failed("States.ItemReaderFailed"),
    ),
    "Map.ResultWriter": asl_distributed(
        "ResultWriter",
        lambda g: {"Resource": "aionix:::fs:write", "Arguments": {"Prefix": g("'out'")}},
        failed("States.ResultWriterFailed"),
    ),
}

#: ASL fields that hold no JSONata expression; the JSONPath-only and unsupported fields are
#: taken from the validator's own tables
ASL_NOT_EXPRESSIONS = {"Next", "End", "Resource", "Branches", "ItemProcessor", "Iterator", "Retry", "Default", "Label"}
ASL_NOT_EXPRESSIONS |= {"Catch[].ErrorEquals", "Catch[].Next", "Catch[].Comment", "Choices[].Next", "Choices[].Comment"}


def asl_fields() -> set[str]:
    """Every field a JSONata state of each type may have, from the validator's tables."""
    skip = asl_validate.JSONPATH_ONLY | set(asl_validate.UNSUPPORTED)
    found = set()
    for kind, names in asl_validate.FIELDS.items():
        for name in names - skip:
            if name == "Catch":
                found |= {f"{kind}.Catch[].{f}" for f in asl_validate.CATCHER_FIELDS - skip}
            elif name == "Choices":
                found |= {f"{kind}.Choices[].{f}" for f in asl_validate.JSONATA_RULE_FIELDS}
            else:
                found.add(f"{kind}.{name}")
    return found


def test_asl_every_field_is_classified():
    fields = asl_fields()
    unclassified = {f for f in fields if f not in ASL_CASES and f.split(".", 1)[1] not in ASL_NOT_EXPRESSIONS}
    assert not unclassified, (
        f"give these ASL fields a late-binding case (or declare them non-expression): {unclassified}"
    )
    assert not set(ASL_CASES) - fields, "cases for fields the ASL tables no longer have"


# ------------------------------------------------------------------------------------ runs
@pytest.fixture(scope="module")
def late(server):
    """A client, with the secret, the parameter and the two child workflows every case uses."""
    with server.client() as admin:
        _setup(admin)
        yield admin


def _setup(admin) -> None:
    admin.post("/api/v1/secrets", json={"name": SECRET, "type": "password", "value": CANARY}).raise_for_status()
    admin.put(f"/api/v1/params{PARAM}", json={"type": "number", "value": 42}).raise_for_status()
    for name, definition in {
        CHILD_OK: {"entry": "P", "states": {"P": {"type": "succeed"}}},
        CHILD_FAIL: {"entry": "F", "states": {"F": {"type": "fail", "error": "Child.Boom", "cause": "child failed"}}},
    }.items():
        admin.post("/api/v1/workflows", json={"name": name, "definition": definition}).raise_for_status()


def run(admin, definition: dict[str, Any]) -> dict[str, Any]:
    name = f"lb-{uuid.uuid4().hex[:10]}"
    r = admin.post("/api/v1/workflows", json={"name": name, "definition": definition})
    assert r.status_code == 201, r.text
    r = admin.post(f"/api/v1/workflows/{name}/executions", json={"mode": "sync", "input": {"in": 1}})
    assert r.status_code == 200, r.text
    return r.json()


def check(admin, case: Case, field: str) -> None:
    definition, expect = case(Late())
    env = run(admin, definition)
    assert env["status"] == expect["status"], (field, env["error"], definition)
    if expect["status"] == "SUCCEEDED":
        assert env["output"] == expect["output"], field
    else:
        assert env["error"]["error"] == expect["error"], (field, env["error"])
        if "cause" in expect:
            assert env["error"]["cause"] == expect["cause"], (field, env["error"])
    history = admin.get(f"/api/v1/executions/{env['execution_id']}/history").text
    assert CANARY not in history and CANARY not in str(env)
    # a name that does not exist fails the state with States.Runtime naming it
    for missing, g in ((MISSING_PARAM, Late(param=MISSING_PARAM)), (MISSING_SECRET, Late(secret=MISSING_SECRET))):
        definition, _ = case(g)
        env = run(admin, definition)
        assert env["status"] == "FAILED", (field, missing, env["output"])
        assert env["error"]["error"] == "States.Runtime", (field, env["error"])
        assert missing in env["error"]["cause"] and "'S'" in env["error"]["cause"], (field, env["error"])


@pytest.mark.parametrize("field", sorted(DSL_CASES))
def test_dsl_field_resolves_late_bound_names(late, field):
    check(late, DSL_CASES[field], field)


@pytest.mark.parametrize("field", sorted(ASL_CASES))
def test_asl_field_resolves_late_bound_names(late, field):
    check(late, ASL_CASES[field], field)


def test_secret_values_in_outputs_and_variables_are_redacted_everywhere(late, server):
    """A task's output/assign and a map's output carrying the secret itself: `***` in the
    envelope and history, and never in the database files."""
    secret = "$secret." + SECRET
    definition = {
        "entry": "T",
        "states": {
            "T": {
                "type": "task",
                "action": TRN_OK,
                "parameters": {"x": 1},
                "output": {
                    "expression": {"auth": "{% 'Bearer ' & " + secret + " %}", "n": "{% $param('" + PARAM + "') %}"}
                },
                "assign": {"token": "{% " + secret + " %}"},
                "next": "M",
            },
            "M": {
                "type": "map",
                "items": "{% [1, 2] %}",
                "processor": {"entry": "I", "states": {"I": {"type": "succeed"}}},
                "output": {
                    "expression": {
                        "items": "{% result %}",
                        "token": "{% vars.token %}",
                        "p": "{% $param('" + PARAM + "') %}",
                    }
                },
                "end": True,
            },
        },
    }
    env = run(late, definition)
    assert env["status"] == "SUCCEEDED", env["error"]
    assert env["output"] == {"items": [1, 2], "token": "***", "p": 42}
    history = late.get(f"/api/v1/executions/{env['execution_id']}/history").text
    assert CANARY not in history and "Bearer ***" in history
    raw = b"".join(p.read_bytes() for p in pgstore.database_files(server.data_dir))
    assert CANARY.encode() not in raw


def test_a_catcher_of_the_resolution_failure_cannot_read_the_missing_name(late):
    """A catcher that takes the States.Runtime of a missing parameter runs; if it reads that
    parameter itself, the state fails with States.Runtime instead of seeing undefined."""
    missing = "{% $param('" + MISSING_PARAM + "') %}"
    caught = {
        "entry": "T",
        "states": {
            "T": {
                "type": "task",
                "action": TRN_OK,
                "parameters": {"p": missing},
                "catch": [{"errors": ["States.Runtime"], "next": "Done", "output": "{% error %}"}],
                "end": True,
            },
            "Done": {"type": "succeed"},
        },
    }
    env = run(late, caught)
    assert env["status"] == "SUCCEEDED", env["error"]
    assert env["output"]["error"] == "States.Runtime" and MISSING_PARAM in env["output"]["cause"]
    caught["states"]["T"]["catch"][0]["output"] = {"p": missing}
    env = run(late, caught)
    assert env["status"] == "FAILED" and env["error"]["error"] == "States.Runtime", env["error"]
    assert MISSING_PARAM in env["error"]["cause"]
    history = late.get(f"/api/v1/executions/{env['execution_id']}/history").json()["items"]
    assert [e["type"] for e in history][-2:] == ["StateFailed", "ExecutionFailed"]


def test_a_state_resumed_after_a_restart_reads_its_names_again(make_server):
    """The resolved values live in memory only: a state in flight when the server stops (here
    a wait whose output reads both names) resolves them again when it resumes."""
    server = make_server().start()
    with server.client() as admin:
        _setup(admin)
        g = Late()
        definition = {
            "entry": "W",
            "states": {
                "W": {"type": "wait", "seconds": 2, "output": {"expression": {"ok": g("true")}}, "end": True},
            },
        }
        name = f"lb-{uuid.uuid4().hex[:10]}"
        admin.post("/api/v1/workflows", json={"name": name, "definition": definition}).raise_for_status()
        started = admin.post(f"/api/v1/workflows/{name}/executions", json={"mode": "async", "input": {}}).json()
        execution = started["execution_id"]
        deadline = time.monotonic() + 10
        while "WaitStarted" not in admin.get(f"/api/v1/executions/{execution}/history").text:
            assert time.monotonic() < deadline, "the wait never started"
            time.sleep(0.05)
    server.stop()
    server.start()
    with server.client() as admin:
        deadline = time.monotonic() + 30
        while (env := admin.get(f"/api/v1/executions/{execution}").json())["status"] == "RUNNING":
            assert time.monotonic() < deadline, env
            time.sleep(0.1)
    assert env["status"] == "SUCCEEDED", env["error"]
    assert env["output"] == {"ok": True}
