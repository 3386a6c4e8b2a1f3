"""The interpreter: every state type, retry/catch, timeouts, variables, limits (in process)."""

from __future__ import annotations

import asyncio

import pytest

from aionix.errors import Conflict, NotFound, PayloadTooLarge
from aionix.stepflow import service as service_mod


def task(action: str, **kw):
    return {"type": "task", "action": action, **kw}


async def test_set_router_succeed_with_assign_and_output(flow):
    env = await flow.run(
        {
            "entry": "Init",
            "states": {
                "Init": {
                    "type": "set",
                    "value": {"total": "{% $sum(input.items) %}"},
                    "assign": {"count": "{% $count(input.items) %}"},
                    "next": "Route",
                },
                "Route": {
                    "type": "router",
                    "routes": [
                        {"condition": "{% input.total > 100 %}", "next": "Big"},
                        {
                            "condition": "{% input.total > 10 %}",
                            "next": "Medium",
                            "output": {"expression": {"size": "medium", "n": "{% vars.count %}"}},
                        },
                    ],
                    "default": "Small",
                },
                "Big": {"type": "succeed", "output": {"expression": "big"}},
                "Medium": {"type": "succeed"},
                "Small": {"type": "succeed"},
            },
        },
        {"items": [5, 6, 7]},
    )
    assert env["status"] == "SUCCEEDED"
    assert env["output"] == {"size": "medium", "n": 3}


async def test_router_without_match_or_default_fails_no_choice_matched(flow):
    env = await flow.run(
        {
            "entry": "R",
            "states": {
                "R": {"type": "router", "routes": [{"condition": "{% false %}", "next": "S"}]},
                "S": {"type": "succeed"},
            },
        }
    )
    assert env["status"] == "FAILED"
    assert env["error"]["error"] == "States.NoChoiceMatched"


async def test_task_output_and_context(flow):
    env = await flow.run(
        {
            "entry": "T",
            "states": {
                "T": task(
                    "echo",
                    parameters={
                        "id": "{% input.id %}",
                        "state": "{% context.state %}",
                        "attempt": "{% context.attempt %}",
                    },
                    output={
                        "expression": {
                            "got": "{% result.id %}",
                            "state": "{% result.state %}",
                            "attempt": "{% result.attempt %}",
                        }
                    },
                    end=True,
                )
            },
        },
        {"id": 42},
    )
    assert env["output"] == {"got": 42, "state": "T", "attempt": 1}
    key = flow.calls[-1][2]
    assert key == f"{env['execution_id']}:T:1"


async def test_retry_until_success_records_each_attempt(flow):
    env = await flow.run(
        {
            "entry": "T",
            "states": {
                "T": task(
                    "flaky",
                    parameters={"succeed_on": 3},
                    retry=[{"errors": ["Test.Flaky"], "interval_seconds": 0.01, "max_attempts": 5}],
                    end=True,
                )
            },
        }
    )
    assert env["status"] == "SUCCEEDED"
    assert env["output"] == {"attempt": 3}
    keys = [k for name, _, k in flow.calls if name == "flaky"]
    assert keys == [f"{env['execution_id']}:T:{n}" for n in (1, 2, 3)]
    types = [e["type"] for e in await flow.history(env["execution_id"])]
    assert types.count("RetryScheduled") == 2


async def test_retry_exhausted_then_catch_exposes_error(flow):
    env = await flow.run(
        {
            "entry": "T",
            "states": {
                "T": task(
                    "fail",
                    parameters={"error": "Http.Status.503", "cause": "down"},
                    retry=[
                        {
                            "errors": ["Http.Status.503"],
                            "interval_seconds": 0.01,
                            "max_attempts": 2,
                            "backoff_rate": 1.5,
                        }
                    ],
                    catch=[{"errors": ["States.ALL"], "next": "Handle", "assign": {"why": "{% error.cause %}"}}],
                    end=True,
                ),
                "Handle": {
                    "type": "set",
                    "value": {"caught": "{% input.error %}", "why": "{% vars.why %}"},
                    "end": True,
                },
            },
        }
    )
    assert env["status"] == "SUCCEEDED"
    assert env["output"] == {"caught": "Http.Status.503", "why": "down"}
    assert len([c for c in flow.calls if c[0] == "fail"]) == 3


async def test_uncaught_task_failure_fails_execution(flow):
    env = await flow.run(
        {"entry": "T", "states": {"T": task("fail", parameters={"error": "Test.X", "cause": "nope"}, end=True)}}
    )
    assert env["status"] == "FAILED"
    assert env["error"] == {"error": "Test.X", "cause": "nope"}


async def test_unknown_action_is_task_failed(flow):
    env = await flow.run({"entry": "T", "states": {"T": task("no-such-kind", end=True)}})
    assert env["error"]["error"] == "States.TaskFailed"
    assert "no-such-kind" in env["error"]["cause"]


async def test_task_timeout_is_states_timeout_and_catchable(flow):
    env = await flow.run(
        {
            "entry": "T",
            "states": {
                "T": task(
                    "sleep",
                    parameters={"seconds": 5},
                    timeout_seconds=0.1,
                    catch=[{"errors": ["States.Timeout"], "next": "Late"}],
                    end=True,
                ),
                "Late": {"type": "succeed"},
            },
        }
    )
    assert env["status"] == "SUCCEEDED"
    assert env["output"]["error"] == "States.Timeout"


async def test_execution_timeout_gives_timed_out(flow):
    env = await flow.run(
        {"entry": "T", "timeout_seconds": 0.2, "states": {"T": task("sleep", parameters={"seconds": 5}, end=True)}}
    )
    assert env["status"] == "TIMED_OUT"
    assert env["error"]["error"] == "States.Timeout"


async def test_fail_state_with_expressions(flow):
    env = await flow.run(
        {
            "entry": "F",
            "states": {
                "F": {"type": "fail", "error": "{% 'Order.' & input.code %}", "cause": "{% 'bad ' & input.id %}"}
            },
        },
        {"code": "Invalid", "id": 7},
    )
    assert env["error"] == {"error": "Order.Invalid", "cause": "bad 7"}


async def test_expression_error_at_run_time_names_state_and_expression(flow):
    env = await flow.run({"entry": "S", "states": {"S": {"type": "set", "value": "{% $number('abc') %}", "end": True}}})
    assert env["status"] == "FAILED"
    assert env["error"]["error"] == "States.QueryEvaluationError"
    assert "'S'" in env["error"]["cause"] and "$number('abc')" in env["error"]["cause"]


async def test_parallel_branch_failure_fails_state_with_branch_error(flow):
    env = await flow.run(
        {
            "entry": "P",
            "states": {
                "P": {
                    "type": "parallel",
                    "branches": [
                        {"entry": "A", "states": {"A": task("echo", end=True)}},
                        {"entry": "B", "states": {"B": {"type": "fail", "error": "Branch.Bad", "cause": "b"}}},
                    ],
                    "catch": [{"errors": ["Branch.Bad"], "next": "Recovered"}],
                    "end": True,
                },
                "Recovered": {"type": "set", "value": "{% input.error %}", "end": True},
            },
        }
    )
    assert env["output"] == "Branch.Bad"


async def test_variables_visible_in_branches_read_only(flow):
    env = await flow.run(
        {
            "entry": "Init",
            "states": {
                "Init": {"type": "set", "assign": {"x": 1}, "next": "P"},
                "P": {
                    "type": "parallel",
                    "branches": [
                        {
                            "entry": "A",
                            "states": {
                                "A": {"type": "set", "assign": {"x": 99}, "value": "{% vars.x %}", "next": "A2"},
                                "A2": {"type": "set", "value": "{% vars.x %}", "end": True},
                            },
                        }
                    ],
                    "next": "After",
                },
                "After": {"type": "set", "value": {"branch": "{% input %}", "outer": "{% vars.x %}"}, "end": True},
            },
        }
    )
    assert env["output"] == {"branch": [99], "outer": 1}


async def test_map_order_context_and_concurrency(flow):
    env = await flow.run(
        {
            "entry": "M",
            "states": {
                "M": {
                    "type": "map",
                    "items": "{% input.list %}",
                    "max_concurrency": 2,
                    "processor": {
                        "entry": "Work",
                        "states": {
                            "Work": task(
                                "echo",
                                parameters={"i": "{% context.index %}", "v": "{% context.item * 10 %}"},
                                end=True,
                            )
                        },
                    },
                    "end": True,
                }
            },
        },
        {"list": [3, 1, 2, 5]},
    )
    assert env["output"] == [{"i": 0, "v": 30}, {"i": 1, "v": 10}, {"i": 2, "v": 20}, {"i": 3, "v": 50}]
    keys = sorted(k for _, _, k in flow.calls)
    assert keys == sorted(f"{env['execution_id']}:M[{i}]/Work:1" for i in range(4))


async def test_map_tolerated_failures(flow):
    definition = {
        "entry": "M",
        "states": {
            "M": {
                "type": "map",
                "tolerated_failure_count": 1,
                "processor": {
                    "entry": "R",
                    "states": {
                        "R": {
                            "type": "router",
                            "routes": [{"condition": "{% input < 0 %}", "next": "Bad"}],
                            "default": "Ok",
                        },
                        "Bad": {"type": "fail", "error": "Item.Negative"},
                        "Ok": {"type": "succeed"},
                    },
                },
                "end": True,
            }
        },
    }
    name = await flow.define(definition)
    ok = await flow.run(name, [1, -1, 2])
    assert ok["status"] == "SUCCEEDED"
    assert ok["output"][0] == 1 and ok["output"][2] == 2 and ok["output"][1]["error"] == "Item.Negative"
    bad = await flow.run(name, [1, -1, -2])
    assert bad["error"]["error"] == "States.ExceedToleratedFailureThreshold"


async def test_map_items_must_be_array(flow):
    env = await flow.run(
        {
            "entry": "M",
            "states": {
                "M": {
                    "type": "map",
                    "items": "{% input.x %}",
                    "processor": {"entry": "S", "states": {"S": {"type": "succeed"}}},
                    "end": True,
                }
            },
        },
        {"x": 5},
    )
    assert env["error"]["error"] == "States.QueryEvaluationError"


async def test_wait_timestamp_and_seconds_expression(flow):
    import datetime

    soon = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=0.2)).isoformat()
    env = await flow.run(
        {
            "entry": "W",
            "states": {
                "W": {"type": "wait", "timestamp": "{% input.at %}", "next": "W2"},
                "W2": {"type": "wait", "seconds": "{% 0.05 %}", "end": True},
            },
        },
        {"at": soon},
    )
    assert env["status"] == "SUCCEEDED"
    assert env["stopped_at"] >= datetime.datetime.fromisoformat(soon).timestamp()


async def test_state_output_over_payload_limit_fails_cleanly(tmp_path):
    from .harness import Harness

    h = await Harness(tmp_path / "d", payload_max_bytes=2048).start()
    try:
        env = await h.run(
            {
                "entry": "S",
                "states": {"S": {"type": "set", "value": "{% $join([1..1000].$string(), ',') %}", "end": True}},
            }
        )
        assert env["error"]["error"] == "States.DataLimitExceeded"
        with pytest.raises(PayloadTooLarge):
            await h.svc.start(
                "default", await h.define({"entry": "S", "states": {"S": {"type": "succeed"}}}), "x" * 5000
            )
    finally:
        await h.stop()


async def test_child_workflow_runs_as_task(flow):
    child = await flow.define(
        {"entry": "Double", "states": {"Double": {"type": "set", "value": "{% input.n * 2 %}", "end": True}}}
    )
    env = await flow.run(
        {
            "entry": "C",
            "states": {"C": task(f"trn:stepflow:default:template/{child}", parameters={"n": "{% input %}"}, end=True)},
        },
        21,
    )
    assert env["output"] == 42
    children = await flow.svc.list_executions(
        "default", workflow=child, status=None, since=None, until=None, limit=10, cursor=None
    )
    assert len(children["items"]) == 1


async def test_child_workflow_failure_propagates(flow):
    child = await flow.define({"entry": "F", "states": {"F": {"type": "fail", "error": "Child.Broke", "cause": "c"}}})
    env = await flow.run({"entry": "C", "states": {"C": task(f"trn:stepflow:default:template/{child}", end=True)}})
    assert env["error"] == {"error": "Child.Broke", "cause": "c"}


async def test_status_change_events_published(flow):
    env = await flow.run({"entry": "S", "states": {"S": {"type": "succeed"}}}, 1)
    statuses = [s for _, s, d in flow.events if d["execution_id"] == env["execution_id"]]
    assert statuses == ["RUNNING", "SUCCEEDED"]


async def test_history_seq_contiguous(flow):
    env = await flow.run(
        {
            "entry": "P",
            "states": {
                "P": {
                    "type": "parallel",
                    "branches": [{"entry": f"B{i}", "states": {f"B{i}": task("echo", end=True)}} for i in range(5)],
                    "end": True,
                }
            },
        }
    )
    seqs = [e["seq"] for e in await flow.history(env["execution_id"])]
    assert seqs == list(range(1, len(seqs) + 1))


async def test_template_update_keeps_running_version(flow):
    name = await flow.define(
        {
            "entry": "W",
            "states": {
                "W": {"type": "wait", "seconds": 0.3, "next": "S"},
                "S": {"type": "set", "value": "v1", "end": True},
            },
        }
    )
    envelope, _ = await flow.svc.start("default", name, None)
    await flow.svc.update_template(
        "default", name, {"entry": "S", "states": {"S": {"type": "set", "value": "v2", "end": True}}}, None
    )
    first = await flow.wait(envelope["execution_id"])
    assert first["output"] == "v1" and first["version"] == 1
    second = await flow.run(name)
    assert second["output"] == "v2" and second["version"] == 2


async def test_cancel_aborts_running_task_and_children(flow):
    child = await flow.define(
        {"entry": "Slow", "states": {"Slow": task("sleep", parameters={"seconds": 30}, end=True)}}
    )
    name = await flow.define(
        {
            "entry": "P",
            "states": {
                "P": {
                    "type": "parallel",
                    "branches": [
                        {"entry": "A", "states": {"A": task("sleep", parameters={"seconds": 30}, end=True)}},
                        {"entry": "C", "states": {"C": task(f"trn:stepflow:default:template/{child}", end=True)}},
                    ],
                    "end": True,
                }
            },
        }
    )
    envelope, _ = await flow.svc.start("default", name, None)
    eid = envelope["execution_id"]
    for _ in range(200):
        kids = await flow.svc.list_executions(
            "default", workflow=child, status="RUNNING", since=None, until=None, limit=5, cursor=None
        )
        if kids["items"] and len([c for c in flow.calls if c[0] == "sleep"]) >= 2:
            break
        await asyncio.sleep(0.02)
    out = await flow.svc.cancel("default", eid)
    assert out["status"] == "ABORTED"
    kid = kids["items"][0]["execution_id"]
    assert (await flow.wait(kid, 5))["status"] == "ABORTED"


async def test_history_limit_fails_a_runaway_loop(tmp_path):
    from .harness import Harness

    h = await Harness(tmp_path / "d", max_history_events=200).start()
    try:
        env = await h.run(
            {
                "entry": "A",
                "states": {
                    "A": {"type": "wait", "seconds": 0, "next": "B"},
                    "B": {"type": "router", "routes": [{"condition": "{% false %}", "next": "Done"}], "default": "A"},
                    "Done": {"type": "succeed"},
                },
            },
            timeout=60,
        )
        assert env["status"] == "FAILED"
        assert env["error"]["error"] == "States.Runtime" and "history" in env["error"]["cause"]
    finally:
        await h.stop()


async def test_input_not_representable_as_json_is_a_clear_error(flow):
    from aionix.errors import ValidationFailed

    name = await flow.define({"entry": "S", "states": {"S": {"type": "succeed"}}})
    with pytest.raises(ValidationFailed, match="input"):
        await flow.svc.start("default", name, {"tags": {"a", "b"}})


async def test_big_integer_input_is_kept_exactly(flow):
    """JSON has no integer limit: a 70-bit integer goes through a run unchanged (issue 26)."""
    name = await flow.define({"entry": "S", "states": {"S": {"type": "succeed"}}})
    envelope, _ = await flow.svc.start("default", name, {"n": 2**70})
    assert (await flow.wait(envelope["execution_id"]))["output"] == {"n": 2**70}


async def test_map_max_concurrency_bounds_items_in_flight(flow):
    state = {"now": 0, "peak": 0}

    async def slow(target, payload, ctx):
        state["now"] += 1
        state["peak"] = max(state["peak"], state["now"])
        await asyncio.sleep(0.02)
        state["now"] -= 1
        return payload

    flow.rt.bus.register_kind("slow", slow)
    env = await flow.run(
        {
            "entry": "M",
            "states": {
                "M": {
                    "type": "map",
                    "max_concurrency": 2,
                    "processor": {"entry": "T", "states": {"T": task("slow", end=True)}},
                    "end": True,
                }
            },
        },
        list(range(7)),
    )
    assert env["output"] == list(range(7))
    assert state["peak"] == 2


CHAIN3 = {
    "entry": "A",
    "states": {
        "A": {"type": "set", "value": {"v": "{% input.v + 1 %}"}, "next": "B"},
        "B": {"type": "set", "value": {"v": "{% input.v + 1 %}"}, "next": "C"},
        "C": {"type": "set", "value": {"v": "{% input.v + 1 %}"}, "end": True},
    },
}


async def test_concurrent_starts_of_an_uncached_version_compile_it_once(flow, monkeypatch):
    name = await flow.define(CHAIN3)
    flow.svc._plans.clear()  # as after a restart, or once the version left the cache
    compiled = []
    real = service_mod.compile_workflow
    monkeypatch.setattr(service_mod, "compile_workflow", lambda d: compiled.append(1) or real(d))
    started = await asyncio.gather(*(flow.svc.start("default", name, {"v": i}) for i in range(50)))
    assert len(compiled) == 1
    for i, (envelope, _) in enumerate(started):
        assert (await flow.wait(envelope["execution_id"]))["output"] == {"v": i + 3}
    # a version that is not there: every waiter gets the 404, none a stale or shared plan
    missing = await asyncio.gather(*(flow.svc.plan("default", name, 99) for _ in range(5)), return_exceptions=True)
    assert all(isinstance(r, NotFound) for r in missing), missing
    assert not flow.svc._compiling


async def test_a_cancelled_plan_compile_leaves_it_to_the_next_start(flow):
    name = await flow.define(CHAIN3)
    flow.svc._plans.clear()
    tasks = [asyncio.create_task(flow.svc.plan("default", name, 1)) for _ in range(3)]
    await asyncio.sleep(0)  # the first is reading the definition, the others wait for it
    assert len(flow.svc._compiling) == 1
    tasks[0].cancel()
    first, second = await asyncio.gather(*tasks[1:])
    assert first is second and first.root.entry == "A"
    with pytest.raises(asyncio.CancelledError):
        await tasks[0]
    assert not flow.svc._compiling


async def test_deleted_and_recreated_template_keeps_running_versions(flow):
    name = await flow.define(
        {
            "entry": "W",
            "states": {
                "W": {"type": "wait", "seconds": 0.3, "next": "S"},
                "S": {"type": "set", "value": "old", "end": True},
            },
        }
    )
    envelope, _ = await flow.svc.start("default", name, None)
    # deleting a workflow while one of its executions runs is refused (409), as documented
    with pytest.raises(Conflict):
        await flow.svc.delete_template("default", name)
    assert (await flow.wait(envelope["execution_id"]))["output"] == "old"
    await flow.svc.delete_template("default", name)
    flow.svc._plans.clear()
    again = await flow.svc.create_template(
        "default", name, {"entry": "S", "states": {"S": {"type": "set", "value": "new", "end": True}}}, None
    )
    assert again["version"] == 1  # deleting a workflow deletes its versions (as Step Functions does)
    assert (await flow.run(name))["output"] == "new"
    # the finished execution of the deleted version stays readable by id
    assert (await flow.wait(envelope["execution_id"]))["output"] == "old"
