"""Finished map items and parallel branches are durable as they finish (issue 24): a stop
(in process: the tasks are cancelled, nothing more is checkpointed) in the middle of a map or
a parallel re-runs only the children that had not finished."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pgstore

from .harness import Harness


async def _until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached in time")


async def _succeeded(h: Harness, eid: str) -> int:
    return sum(1 for e in await h.history(eid) if e["type"] == "TaskSucceeded")


def _sleep_item() -> dict:
    return {
        "entry": "T",
        "states": {"T": {"type": "task", "action": "sleep", "parameters": {"seconds": "{% input %}"}, "end": True}},
    }


async def _check_history(h: Harness, eid: str) -> list[dict]:
    history = await h.history(eid)
    seqs = [e["seq"] for e in history]
    assert seqs == list(range(1, len(seqs) + 1)), seqs
    return history


async def test_stop_mid_map_reruns_only_unfinished_items(tmp_path):
    seconds = [0.05, 0.05, 0.05, 1.5, 1.5, 0.05]
    h = await Harness(tmp_path / "d").start()
    name = await h.define({"entry": "M", "states": {"M": {"type": "map", "processor": _sleep_item(), "end": True}}})
    envelope, _ = await h.svc.start("default", name, seconds)
    eid = envelope["execution_id"]
    # the four fast items' results are in the store (not only in memory) before the stop
    await _until(lambda: _has(h, eid, 4))
    await h.stop()
    before = Counter(key for _, _, key in h.calls)
    h2 = await Harness(tmp_path / "d").start()
    try:
        env = await h2.wait(eid)
        assert env["status"] == "SUCCEEDED", env
        assert env["output"] == [{"slept": s} for s in seconds]
        after = Counter(key for _, _, key in h2.calls)
        # only the two slow items (in flight at the stop) were called again, with their keys
        assert sorted(after) == [f"{eid}:M[3]/T:1", f"{eid}:M[4]/T:1"], after
        assert len(before) == 6 and set(before.values()) == {1}
        history = await _check_history(h2, eid)
        done = Counter(e["frame"] for e in history if e["type"] == "TaskSucceeded")
        assert all(n == 1 for n in done.values()) and len(done) == 6, done
    finally:
        await h2.stop()
    # an execution that ended keeps no item rows
    assert pgstore.query(tmp_path / "d", "SELECT count(*) FROM sf_item_results") == [(0,)]


async def _has(h: Harness, eid: str, n: int) -> bool:
    return await _succeeded(h, eid) >= n


async def test_stop_mid_parallel_reruns_only_unfinished_branches(tmp_path):
    def branch(state: str, seconds: float) -> dict:
        return {
            "entry": state,
            "states": {state: {"type": "task", "action": "sleep", "parameters": {"seconds": seconds}, "end": True}},
        }

    h = await Harness(tmp_path / "d").start()
    name = await h.define(
        {
            "entry": "P",
            "states": {
                "P": {
                    "type": "parallel",
                    "branches": [branch("A", 0.05), branch("B", 1.5), branch("C", 0.05)],
                    "end": True,
                }
            },
        }
    )
    envelope, _ = await h.svc.start("default", name, None)
    eid = envelope["execution_id"]
    await _until(lambda: _has(h, eid, 2))
    await h.stop()
    h2 = await Harness(tmp_path / "d").start()
    try:
        env = await h2.wait(eid)
        assert env["status"] == "SUCCEEDED", env
        assert env["output"] == [{"slept": 0.05}, {"slept": 1.5}, {"slept": 0.05}]
        assert [key for _, _, key in h2.calls] == [f"{eid}:B:1"]
        await _check_history(h2, eid)
    finally:
        await h2.stop()


async def test_a_map_entered_again_never_takes_the_previous_rounds_results(tmp_path):
    """Item rows are per generation of children: the second entry into the same map state
    (same frame ids) is not answered with the first entry's results after a restart."""
    h = await Harness(tmp_path / "d").start()
    name = await h.define(
        {
            "entry": "Init",
            "states": {
                "Init": {"type": "set", "value": {"round": 0, "plan": [[0.01, 0.01], [0.02, 1.5]]}, "next": "M"},
                "M": {
                    "type": "map",
                    "items": "{% input.round = 0 ? input.plan[0] : input.plan[1] %}",
                    "processor": _sleep_item(),
                    "output": {
                        "expression": {
                            "round": "{% input.round %}",
                            "plan": "{% input.plan %}",
                            "results": "{% result %}",
                        }
                    },
                    "next": "R",
                },
                "R": {
                    "type": "router",
                    "routes": [{"condition": "{% input.round = 0 %}", "next": "Again"}],
                    "default": "Done",
                },
                "Again": {"type": "set", "value": {"round": 1, "plan": "{% input.plan %}"}, "next": "M"},
                "Done": {"type": "set", "value": "{% input.results %}", "end": True},
            },
        }
    )
    envelope, _ = await h.svc.start("default", name, None)
    eid = envelope["execution_id"]
    await _until(lambda: _has(h, eid, 3))
    await h.stop()
    h2 = await Harness(tmp_path / "d").start()
    try:
        env = await h2.wait(eid)
        assert env["status"] == "SUCCEEDED", env
        assert env["output"] == [{"slept": 0.02}, {"slept": 1.5}]
        assert [key for _, _, key in h2.calls] == [f"{eid}:M[1]/T:1"]
        await _check_history(h2, eid)
    finally:
        await h2.stop()


async def test_many_fast_items_cost_few_commits(tmp_path):
    h = await Harness(tmp_path / "d").start()
    try:
        name = await h.define(
            {
                "entry": "M",
                "states": {
                    "M": {
                        "type": "map",
                        "max_concurrency": 50,
                        "processor": {
                            "entry": "S",
                            "states": {"S": {"type": "set", "value": "{% input * 2 %}", "end": True}},
                        },
                        "end": True,
                    }
                },
            }
        )
        commits = h.rt.store.stats["commits"]
        env = await h.run(name, list(range(2000)))
        assert env["status"] == "SUCCEEDED" and env["output"] == [i * 2 for i in range(2000)]
        items = h.svc.engine.items.stats
        # the items that finished between two checkpoints were recorded in a few commits, not one
        # per item (typically < 50; how many go by item rows rather than in a checkpoint's
        # snapshot depends on how fast the store commits)
        used = h.rt.store.stats["commits"] - commits
        assert used < 500, (used, items)
        assert items["transactions"] <= max(1, items["items"]), items
    finally:
        await h.stop()
