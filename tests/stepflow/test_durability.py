"""Checkpoints, recovery after a stop, durable waits, callbacks, redrive (in process)."""

from __future__ import annotations

import asyncio
import time

from .harness import Harness


def task(action: str, **kw):
    return {"type": "task", "action": action, **kw}


async def _until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached in time")


async def test_wait_survives_restart_and_never_fires_early(tmp_path):
    h = await Harness(tmp_path / "d").start()
    name = await h.define(
        {
            "entry": "W",
            "states": {
                "W": {"type": "wait", "seconds": 0.6, "next": "S"},
                "S": {"type": "set", "value": "{% input %}", "end": True},
            },
        }
    )
    envelope, _ = await h.svc.start("default", name, {"k": 1})
    eid = envelope["execution_id"]
    await _until(lambda: _has_event(h, eid, "WaitStarted"))
    due = next(e for e in await h.history(eid) if e["type"] == "WaitStarted")["detail"]["due_at"]
    await h.stop()
    h2 = await Harness(tmp_path / "d").start()
    try:
        env = await h2.wait(eid)
        assert env["status"] == "SUCCEEDED" and env["output"] == {"k": 1}
        assert env["stopped_at"] >= due
        types = [e["type"] for e in await h2.history(eid)]
        assert "ExecutionResumed" in types and types.count("WaitStarted") == 1
        seqs = [e["seq"] for e in await h2.history(eid)]
        assert seqs == list(range(1, len(seqs) + 1))
    finally:
        await h2.stop()


async def _has_event(h, eid, kind):
    return any(e["type"] == kind for e in await h.history(eid))


async def test_in_flight_task_is_rerun_once_with_same_key_after_restart(tmp_path):
    h = await Harness(tmp_path / "d").start()
    name = await h.define(
        {
            "entry": "A",
            "states": {"A": task("sleep", parameters={"seconds": 30}, next="B"), "B": task("echo", end=True)},
        }
    )
    envelope, _ = await h.svc.start("default", name, None)
    eid = envelope["execution_id"]
    await _until(lambda: _has_event(h, eid, "TaskScheduled"))
    first_key = h.calls[-1][2]
    await h.stop()
    h2 = Harness(tmp_path / "d")
    await h2.start()
    try:
        await _until(lambda: asyncio.sleep(0, result=bool(h2.calls)))
        assert h2.calls[0][2] == first_key == f"{eid}:A:1"
        await h2.svc.cancel("default", eid)
    finally:
        await h2.stop()


async def test_retry_backoff_is_durable(tmp_path):
    h = await Harness(tmp_path / "d").start()
    name = await h.define(
        {
            "entry": "T",
            "states": {
                "T": task(
                    "flaky",
                    parameters={"succeed_on": 2},
                    retry=[{"errors": ["States.ALL"], "interval_seconds": 0.5}],
                    end=True,
                )
            },
        }
    )
    envelope, _ = await h.svc.start("default", name, None)
    eid = envelope["execution_id"]
    await _until(lambda: _has_event(h, eid, "RetryScheduled"))
    await h.stop()
    h2 = await Harness(tmp_path / "d").start()
    try:
        env = await h2.wait(eid)
        assert env["output"] == {"attempt": 2}
        assert [k for _, _, k in h2.calls] == [f"{eid}:T:2"]
    finally:
        await h2.stop()


async def test_callback_success_failure_and_restart(tmp_path):
    h = await Harness(tmp_path / "d").start()
    name = await h.define(
        {
            "entry": "Ask",
            "states": {
                "Ask": task("echo", mode="callback", parameters={"token": "{% context.task_token %}"}, end=True)
            },
        }
    )
    envelope, _ = await h.svc.start("default", name, None)
    eid = envelope["execution_id"]
    await _until(lambda: asyncio.sleep(0, result=bool(h.calls)))
    token = h.calls[0][1]["token"]
    await h.stop()
    h2 = await Harness(tmp_path / "d").start()
    try:
        from aionix.stepflow.models import CallbackBody

        await h2.svc.callback("default", token, "success", CallbackBody(output={"approved": True}))
        env = await h2.wait(eid)
        assert env["output"] == {"approved": True}
        # the resumed run may or may not have called its action again (at-least-once), so
        # count from here
        seen = len(h2.calls)
        envelope, _ = await h2.svc.start("default", name, None)
        await _until(lambda: asyncio.sleep(0, result=len(h2.calls) > seen))
        token2 = h2.calls[-1][1]["token"]
        await h2.svc.callback("default", token2, "failure", CallbackBody(error="Approval.Denied", cause="no"))
        env2 = await h2.wait(envelope["execution_id"])
        assert env2["error"] == {"error": "Approval.Denied", "cause": "no"}
    finally:
        await h2.stop()


async def test_callback_heartbeat_timeout(flow):
    env = await flow.run(
        {"entry": "Ask", "states": {"Ask": task("echo", mode="callback", heartbeat_seconds=0.2, end=True)}}
    )
    assert env["error"]["error"] == "States.HeartbeatTimeout"


async def test_redrive_reruns_only_failed_parallel_branches(flow):
    flag = {"fail": True}

    async def gate(target, payload, ctx):
        flow.calls.append(("gate", payload, ctx.idempotency_key))
        if flag["fail"]:
            from aionix.bus import BusError

            raise BusError("Gate.Closed", "closed")
        return "open"

    flow.rt.bus.register_kind("gate", gate)
    env = await flow.run(
        {
            "entry": "P",
            "states": {
                "P": {
                    "type": "parallel",
                    "branches": [
                        {"entry": "A", "states": {"A": task("echo", parameters="a", end=True)}},
                        {"entry": "B", "states": {"B": task("gate", end=True)}},
                    ],
                    "end": True,
                }
            },
        }
    )
    assert env["status"] == "FAILED"
    echo_calls = len([c for c in flow.calls if c[0] == "echo"])
    flag["fail"] = False
    redriven = await flow.svc.redrive("default", env["execution_id"])
    assert redriven["status"] == "RUNNING" and redriven["redrive_count"] == 1
    final = await flow.wait(env["execution_id"])
    assert final["status"] == "SUCCEEDED" and final["output"] == ["a", "open"] and final["redrive_count"] == 1
    assert len([c for c in flow.calls if c[0] == "echo"]) == echo_calls
    gate_keys = [k for n, _, k in flow.calls if n == "gate"]
    assert len(set(gate_keys)) == len(gate_keys) == 2
    types = [e["type"] for e in await flow.history(env["execution_id"])]
    assert "ExecutionRedriven" in types


async def test_redrive_reruns_only_failed_map_items(flow):
    bad = {5}

    async def pick(target, payload, ctx):
        flow.calls.append(("pick", payload, ctx.idempotency_key))
        if payload in bad:
            from aionix.bus import BusError

            raise BusError("Item.Bad", str(payload))
        return payload * 10

    flow.rt.bus.register_kind("pick", pick)
    env = await flow.run(
        {
            "entry": "M",
            "states": {
                "M": {"type": "map", "processor": {"entry": "T", "states": {"T": task("pick", end=True)}}, "end": True}
            },
        },
        [1, 2, 5, 3],
    )
    assert env["status"] == "FAILED"
    before = [p for n, p, _ in flow.calls if n == "pick"]
    bad.clear()
    await flow.svc.redrive("default", env["execution_id"])
    final = await flow.wait(env["execution_id"])
    assert final["output"] == [10, 20, 50, 30]
    after = [p for n, p, _ in flow.calls if n == "pick"][len(before) :]
    assert 5 in after and 1 not in after and 2 not in after


async def test_redrive_of_succeeded_is_conflict(flow):
    import pytest

    from aionix.errors import Conflict

    env = await flow.run({"entry": "S", "states": {"S": {"type": "succeed"}}})
    with pytest.raises(Conflict):
        await flow.svc.redrive("default", env["execution_id"])


async def test_retention_prunes_to_count(tmp_path):
    h = await Harness(tmp_path / "d", retention_max_per_workflow=5).start()
    try:
        name = await h.define({"entry": "S", "states": {"S": {"type": "succeed"}}})
        for i in range(12):
            await h.run(name, i)
        assert await h.svc.prune() == 7
        left = await h.svc.list_executions(
            "default", workflow=name, status=None, since=None, until=None, limit=100, cursor=None
        )
        assert [e["input"] for e in left["items"]] == [11, 10, 9, 8, 7]
    finally:
        await h.stop()


async def test_store_faults_never_half_apply_a_transition(tmp_path):
    """RELIABILITY store faults: 5% of group commits fail; every acknowledged start finishes
    with the right output and a contiguous history, and a failed start was never recorded."""
    import random
    import sqlite3

    h = await Harness(tmp_path / "d").start()
    try:
        name = await h.define(
            {
                "entry": "T",
                "states": {
                    "T": task("echo", parameters={"n": "{% input %}"}, next="W"),
                    "W": {"type": "wait", "seconds": 0.05, "next": "P"},
                    "P": {
                        "type": "parallel",
                        "branches": [{"entry": "A", "states": {"A": task("echo", end=True)}}],
                        "next": "S",
                    },
                    "S": {"type": "set", "value": "{% input[0].n * 2 %}", "end": True},
                },
            }
        )
        rng = random.Random(7)

        def fault() -> None:
            if rng.random() < 0.05:
                raise sqlite3.OperationalError("disk I/O error (injected)")

        h.rt.store.fault_hook = fault
        acknowledged = {}
        for i in range(60):
            try:
                envelope, _ = await h.svc.start("default", name, i)
            except Exception as exc:
                from aionix.errors import AionixError

                assert isinstance(exc, AionixError), exc
                continue
            acknowledged[envelope["execution_id"]] = i
        await asyncio.sleep(0.5)
        h.rt.store.fault_hook = None
        assert len(acknowledged) > 30
        for eid, i in acknowledged.items():
            env = await h.wait(eid, 30)
            assert env["status"] == "SUCCEEDED" and env["output"] == i * 2, env
            seqs = [e["seq"] for e in await h.history(eid)]
            assert seqs == list(range(1, len(seqs) + 1))
        listed = await h.svc.list_executions(
            "default", workflow=name, status=None, since=None, until=None, limit=500, cursor=None
        )
        assert {e["execution_id"] for e in listed["items"]} == set(acknowledged)
        resumed = [eid for eid in acknowledged if "ExecutionResumed" in [e["type"] for e in await h.history(eid)]]
        print(f"{len(acknowledged)} acknowledged, {len(resumed)} resumed after a failed checkpoint")
    finally:
        await h.stop()


async def test_redrive_after_timeout_reruns_the_timed_out_task(flow):
    async def slow_first(target, payload, ctx):
        flow.calls.append(("slow_first", payload, ctx.idempotency_key))
        if ctx.extra["attempt"] == 1:
            await asyncio.sleep(10)
        return "late but done"

    flow.rt.bus.register_kind("slow_first", slow_first)
    env = await flow.run(
        {
            "entry": "S",
            "timeout_seconds": 0.5,
            "states": {"S": {"type": "set", "value": 1, "next": "T"}, "T": task("slow_first", end=True)},
        }
    )
    assert env["status"] == "TIMED_OUT"
    await flow.svc.redrive("default", env["execution_id"])
    final = await flow.wait(env["execution_id"])
    assert final["status"] == "SUCCEEDED" and final["output"] == "late but done" and final["redrive_count"] == 1
    keys = [k for n, _, k in flow.calls if n == "slow_first"]
    assert keys == [f"{env['execution_id']}:T:1", f"{env['execution_id']}:T:2"]


class _Recorder:
    """The transaction handed to a store job, recording the name of every query it runs."""

    def __init__(self, tx, names: list[str]) -> None:
        self._tx, self._names = tx, names

    def __getattr__(self, method):
        call = getattr(self._tx, method)

        def recorded(query, *args, **kw):
            self._names.append(query)
            return call(query, *args, **kw)

        return recorded


async def test_checkpoints_write_no_statement_the_run_does_not_need(tmp_path):
    """A chain of tasks, each checkpointed before its call: the start's INSERT is its first
    checkpoint (no UPDATE of the row it just wrote), and while every transaction of the run so
    far was a checkpoint that committed, no checkpoint looks up the stored history's last event
    (`follows`: a third of such a chain's statements on PostgreSQL). A run with parallel
    branches, whose items are written by transactions of their own, still looks."""
    h = await Harness(tmp_path / "d").start()
    names: list[str] = []
    submit = h.rt.store.submit
    h.rt.store.submit = lambda fn, **kw: submit(lambda tx: fn(_Recorder(tx, names)), **kw)
    try:
        states = {f"T{i}": task("echo", next=f"T{i + 1}") for i in range(9)}
        states["T9"] = task("echo", end=True)
        chain = await h.define({"entry": "T0", "states": states})
        names.clear()
        env = await h.run(chain, {"n": 1})
        assert env["status"] == "SUCCEEDED", env
        assert names.count("stepflow.insert_execution") == 1
        # one checkpoint before each of the 10 calls but the first (the insert), and the end
        assert names.count("stepflow.checkpoint_execution") == 10, names
        assert "stepflow_items.last_seq" not in names, names
        seqs = [e["seq"] for e in await h.history(env["execution_id"])]
        assert seqs == list(range(1, len(seqs) + 1))

        branches = [{"entry": f"A{i}", "states": {f"A{i}": task("echo", end=True)}} for i in range(2)]
        parallel = await h.define(
            {
                "entry": "P",
                "states": {
                    "P": {"type": "parallel", "branches": branches, "next": "T"},
                    "T": task("echo", end=True),
                },
            }
        )
        names.clear()
        env = await h.run(parallel, {"n": 2})
        assert env["status"] == "SUCCEEDED", env
        assert "stepflow_items.last_seq" in names, names
    finally:
        await h.stop()
