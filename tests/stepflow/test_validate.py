"""The validator: each error kind, with its JSON pointer; the plan compiler; retry timing."""

from __future__ import annotations

import pytest

from aionix.stepflow.compile import RetryPlan, compile_workflow
from aionix.stepflow.models import dsl_schema
from aionix.stepflow.validate import validate

OK = {"type": "succeed"}


def problems(doc):
    return {(p.pointer, p.message) for p in validate(doc).errors}


def pointers(doc):
    return {p.pointer for p in validate(doc).errors}


@pytest.mark.parametrize(
    ("doc", "pointer", "fragment"),
    [
        ({"states": {"A": OK}}, "/entry", "missing entry"),
        ({"entry": "B", "states": {"A": OK}}, "/entry", "unknown state 'B'"),
        ({"entry": "A", "states": {"A": {"type": "set", "next": "Z"}}}, "/states/A/next", "unknown state 'Z'"),
        (
            {
                "entry": "A",
                "states": {
                    "A": {"type": "router", "routes": [{"condition": "{% true %}", "next": "B"}], "default": "Q"},
                    "B": OK,
                },
            },
            "/states/A/default",
            "unknown state 'Q'",
        ),
        ({"entry": "A", "states": {"A": OK, "B": OK}}, "/states/B", "unreachable"),
        ({"entry": "A", "states": {"A": {"type": "set"}}}, "/states/A", "neither next nor end"),
        (
            {"entry": "A", "states": {"A": {"type": "set", "next": "B"}, "B": {"type": "set", "next": "A"}}},
            "/states/A",
            "ever reaches an end",
        ),
        (
            {"entry": "A", "states": {"A": {"type": "set", "value": "{% $sum( %}", "end": True}}},
            "/states/A/value",
            "JSONata syntax error",
        ),
        (
            {
                "entry": "A",
                "states": {
                    "A": {"type": "task", "action": "x", "retry": [{"errors": ["E"], "backoff_rate": 0.2}], "end": True}
                },
            },
            "/states/A/retry/0/backoff_rate",
            "greater than or equal to 1",
        ),
        (
            {"entry": "A", "states": {"A": {"type": "task", "action": "x", "retry": [{"errors": []}], "end": True}}},
            "/states/A/retry/0/errors",
            "at least 1",
        ),
        (
            {
                "entry": "A",
                "states": {
                    "A": {"type": "task", "action": "x", "retry": [{"errors": ["E"], "jitter": "some"}], "end": True}
                },
            },
            "/states/A/retry/0/jitter",
            "'none' or 'full'",
        ),
        (
            {
                "entry": "A",
                "states": {
                    "A": {"type": "task", "action": "x", "retry": [{"errors": ["States.ALL", "E"]}], "end": True}
                },
            },
            "/states/A/retry/0/errors",
            "States.ALL must appear alone",
        ),
        ({"entry": "A", "states": {"A": {"type": "map", "end": True}}}, "/states/A/processor", "processor"),
        (
            {"entry": "A", "states": {"A": {"type": "parallel", "branches": [], "end": True}}},
            "/states/A/branches",
            "at least one branch",
        ),
        (
            {
                "entry": "A",
                "states": {"A": {"type": "parallel", "branches": [{"entry": "A", "states": {"A": OK}}], "end": True}},
            },
            "/states/A/branches/0/states/A",
            "duplicate state name",
        ),
        (
            {"entry": "A", "states": {"A": {"type": "wait", "end": True}}},
            "/states/A",
            "exactly one of seconds or timestamp",
        ),
        # the pointer names the offending field, the state's type
        ({"entry": "A", "states": {"A": {"type": "teleport", "end": True}}}, "/states/A/type", "not 'teleport'"),
        ({"entry": "A", "states": {"A": {"end": True}}}, "/states/A/type", "type must be one of"),
        (
            {"entry": "A", "states": {"A": {"type": "set", "end": True, "colour": "red"}}},
            "/states/A/colour",
            "unknown field",
        ),
        ({"entry": "A", "states": {"A": {"type": "succeed", "next": "A"}}}, "/states/A/next", "takes no next"),
    ],
)
def test_each_error_kind_has_a_pointer(doc, pointer, fragment):
    found = [m for p, m in problems(doc) if p == pointer]
    assert any(fragment in m for m in found), (pointer, problems(doc))


def test_all_problems_are_reported_at_once():
    doc = {
        "entry": "A",
        "states": {
            "A": {"type": "set", "value": "{% ( %}", "next": "Gone"},
            "B": {"type": "map", "end": True},
            "C": {"type": "set"},
        },
    }
    assert {"/states/A/value", "/states/A/next", "/states/B/processor", "/states/C"} <= pointers(doc)


def test_syntax_error_carries_expression_and_position():
    report = validate(
        {
            "entry": "A",
            "states": {
                "A": {"type": "router", "routes": [{"condition": "{% input.x = %}", "next": "B"}], "default": "B"},
                "B": OK,
            },
        }
    )
    (problem,) = report.errors
    assert problem.pointer == "/states/A/routes/0/condition"
    assert problem.expression == "input.x =" and problem.position is not None


def test_nested_branch_graphs_are_checked():
    doc = {
        "entry": "P",
        "states": {
            "P": {
                "type": "parallel",
                "branches": [{"entry": "X", "states": {"X": {"type": "set", "next": "Nope"}}}],
                "end": True,
            }
        },
    }
    assert "/states/P/branches/0/states/X/next" in pointers(doc)


def test_unknown_action_is_a_warning_not_an_error():
    report = validate(
        {"entry": "T", "states": {"T": {"type": "task", "action": "nothing-here", "end": True}}},
        known_target=lambda a: False,
    )
    assert report.valid and report.warnings[0].pointer == "/states/T/action"


def test_schema_covers_every_state_type():
    schema = dsl_schema()
    text = str(schema)
    for name in (
        "TaskState",
        "ParallelState",
        "MapState",
        "RouterState",
        "WaitState",
        "SetState",
        "SucceedState",
        "FailState",
    ):
        assert name in text


def test_expressions_are_compiled_once_per_version():
    doc = {"entry": "A", "states": {"A": {"type": "set", "value": {"x": "{% input.a %}"}, "end": True}}}
    plan = compile_workflow(doc)
    template = plan.root.states["A"].value
    assert template is not None and len(template.expressions) == 1
    assert template.evaluate({"input": {"a": 5}}) == {"x": 5}


@pytest.mark.parametrize(
    ("retrier", "random_value", "expected"),
    [
        (dict(interval_seconds=1, backoff_rate=2), 0.5, [1, 2, 4, 8]),
        (dict(interval_seconds=0.5, backoff_rate=1), 0.5, [0.5, 0.5, 0.5, 0.5]),
        (dict(interval_seconds=1, backoff_rate=3, max_delay_seconds=5), 0.5, [1, 3, 5, 5]),
        (dict(interval_seconds=2, backoff_rate=2, jitter="full"), 0.25, [0.5, 1, 2, 4]),
        (dict(interval_seconds=2, backoff_rate=2, max_delay_seconds=3, jitter="full"), 0.5, [1, 1.5, 1.5, 1.5]),
    ],
)
def test_retry_delay_table(retrier, random_value, expected):
    plan = RetryPlan(errors=("E",), **retrier)
    assert [plan.delay(n, lambda: random_value) for n in range(1, 5)] == expected


async def test_engine_uses_the_injected_clock_for_backoff(flow):
    from aionix.stepflow.engine import Engine

    now = [1_000_000.0]
    flow.svc.engine = Engine(flow.svc, clock=lambda: now[0], rand=lambda: 0.5)
    flow.svc.timers.clock = lambda: now[0]
    name = await flow.define(
        {
            "entry": "T",
            "states": {
                "T": {
                    "type": "task",
                    "action": "flaky",
                    "parameters": {"succeed_on": 3},
                    "retry": [{"errors": ["States.ALL"], "interval_seconds": 10, "backoff_rate": 3, "jitter": "full"}],
                    "end": True,
                }
            },
        }
    )
    import asyncio
    import time

    envelope, _ = await flow.svc.start("default", name, None)
    env_task = envelope["execution_id"]
    run = flow.svc.runs[env_task]
    deadline = time.monotonic() + 30
    while not run.done.is_set():
        assert time.monotonic() < deadline
        if len(flow.svc.timers):
            # a backoff is armed: only the injected clock can end it
            now[0] += 1000
            flow.svc.timers._wake.set()
        await asyncio.sleep(0.01)
    env = await flow.wait(env_task, 10)
    assert env["output"] == {"attempt": 3}
    delays = [e["detail"]["delay_seconds"] for e in await flow.history(env_task) if e["type"] == "RetryScheduled"]
    assert delays == [5.0, 15.0]
