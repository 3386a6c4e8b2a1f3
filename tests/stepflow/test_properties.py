"""Property tests: random valid graphs of set/router/parallel/map/succeed/fail always finish
(SUCCEEDED, or FAILED with a documented error), never hang or fail internally, and a second
run of the same version with the same input gives the same result and the same history."""

from __future__ import annotations

import asyncio
import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aionix.stepflow.validate import validate

from .harness import Harness

DOCUMENTED = {"States.NoChoiceMatched", "States.QueryEvaluationError", "States.ExceedToleratedFailureThreshold"}
VALUES = [
    "{% input %}",
    {"n": "{% $count($keys(input)) %}"},
    7,
    "{% $string(input) %}",
    {"k": "{% input.k %}", "list": [1, "{% 2 %}"]},
]
CONDITIONS = ["{% true %}", "{% false %}", "{% $type(input) = 'object' %}", "{% $exists(input.k) %}"]


@st.composite
def graph(draw, prefix: str, depth: int) -> dict:
    size = draw(st.integers(1, 5 if depth == 0 else 3))
    names = [f"{prefix}S{i}" for i in range(size)]
    states: dict = {}
    for i, name in enumerate(names):
        later = names[i + 1 :]
        kinds = ["set", "router", "succeed", "fail"] + (["parallel", "map"] if depth < 2 else [])
        kind = (
            draw(st.sampled_from(kinds))
            if later
            else draw(st.sampled_from(["set", "succeed", "fail"] + (["parallel", "map"] if depth < 2 else [])))
        )
        if kind == "router" and not later:
            kind = "set"

        def flow(state: dict, later: list = later) -> dict:
            if later and draw(st.booleans()):
                state["next"] = draw(st.sampled_from(later))
            else:
                state["end"] = True
            return state

        if kind == "set":
            states[name] = flow({"type": "set", "value": draw(st.sampled_from(VALUES))})
        elif kind == "router":
            routes = [
                {"condition": draw(st.sampled_from(CONDITIONS)), "next": draw(st.sampled_from(later))}
                for _ in range(draw(st.integers(1, 2)))
            ]
            state = {"type": "router", "routes": routes}
            if draw(st.booleans()):
                state["default"] = draw(st.sampled_from(later))
            states[name] = state
        elif kind == "succeed":
            states[name] = {"type": "succeed"}
        elif kind == "fail":
            states[name] = {"type": "fail", "error": f"User.Err{i}", "cause": "{% $string(input) %}"}
        elif kind == "parallel":
            branches = [draw(graph(f"{name}b{b}", depth + 1)) for b in range(draw(st.integers(1, 2)))]
            states[name] = flow({"type": "parallel", "branches": branches})
        else:
            state = {"type": "map", "items": "{% [1, 2] %}", "processor": draw(graph(f"{name}m", depth + 1))}
            if draw(st.booleans()):
                state["tolerated_failure_count"] = draw(st.integers(0, 1))
            states[name] = flow(state)
    reachable = {names[0]}
    todo = [names[0]]
    while todo:
        s = states[todo.pop()]
        targets = [s.get("next"), s.get("default")] + [r["next"] for r in s.get("routes", [])]
        for t in targets:
            if t and t not in reachable:
                reachable.add(t)
                todo.append(t)
    return {"entry": names[0], "states": {n: s for n, s in states.items() if n in reachable}}


_names = itertools.count()


def test_random_graphs_finish_and_replay_identically(tmp_path):
    loop = asyncio.new_event_loop()
    h = loop.run_until_complete(Harness(tmp_path / "d").start())

    async def one(doc: dict, value) -> None:
        report = validate(doc)
        assert report.valid, (doc, report.errors)
        name = await h.define(doc, f"prop{next(_names)}")
        first = await h.run(name, value, timeout=20)
        second = await h.run(name, value, timeout=20)
        assert first["status"] in ("SUCCEEDED", "FAILED"), first
        if first["status"] == "FAILED":
            error = first["error"]["error"]
            assert error in DOCUMENTED or error.startswith("User.Err"), first
        for key in ("status", "output", "error"):
            assert first[key] == second[key]
        h1 = [(e["type"], e["state"], e["frame"]) for e in await h.history(first["execution_id"])]
        h2 = [(e["type"], e["state"], e["frame"]) for e in await h.history(second["execution_id"])]
        assert sorted(h1) == sorted(h2)
        assert [e["seq"] for e in await h.history(first["execution_id"])] == list(range(1, len(h1) + 1))
        final = (await h.history(first["execution_id"]))[-1]
        if first["status"] == "SUCCEEDED":
            assert final["type"] == "ExecutionSucceeded" and final["detail"]["output"] == first["output"]

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        doc=graph("", 0),
        value=st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1), st.fixed_dictionaries({"k": st.text(max_size=5)})),
    )
    def check(doc, value) -> None:
        loop.run_until_complete(one(doc, value))

    try:
        check()
    finally:
        loop.run_until_complete(h.stop())
        loop.close()
