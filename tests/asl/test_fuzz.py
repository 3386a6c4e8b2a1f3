"""Hostile definitions: the validator never raises, and whatever it accepts compiles and runs to
a status (a mistake in a definition is a 4xx or a failed execution, never a crash)."""

from __future__ import annotations

import asyncio
import copy
import json
import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aionix.stepflow.asl.local import run_definition
from aionix.stepflow.asl.validate import validate

CASES = Path(__file__).resolve().parents[2] / "conformance" / "cases" / "asl_cases.jsonl"
CORPUS = [json.loads(line) for line in CASES.read_text().splitlines()[::7]]
JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.floats(allow_nan=False, allow_infinity=False, width=16),
    st.sampled_from(
        [
            "$",
            "$.x",
            "$$.Map",
            "$v",
            "{% 1 + %}",
            "{% $states.input %}",
            "States.Array(",
            "States.Format('{}', $.a)",
            "",
            "Nope",
        ]
    ),
    st.lists(st.integers(0, 2), max_size=2),
    st.dictionaries(st.sampled_from(["a", "a.$", "Next", "Type"]), st.sampled_from(["$.a", 1, "x"]), max_size=2),
)


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*prefix, i))


@st.composite
def mutated(draw):
    case = draw(st.sampled_from(CORPUS))
    doc = copy.deepcopy(case["definition"])
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(doc) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        if draw(st.booleans()) and isinstance(parent, dict):
            parent.pop(path[-1], None)
        else:
            parent[path[-1]] = draw(JUNK)
    return doc, case.get("input")


@settings(
    max_examples=int(os.environ.get("ASL_FUZZ_EXAMPLES", "150")),
    derandomize=not os.environ.get("ASL_FUZZ_EXAMPLES"),  # CI: the same examples every run; set it to explore
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(mutated())
def test_mutated_corpus_definitions_validate_or_run_cleanly(sample):
    doc, data = sample
    report = validate(doc)
    if not report.valid:
        assert all(p.pointer.startswith("/") and p.message for p in report.errors)
        return
    outcome = asyncio.run(run_definition(doc, data, timeout=30))
    assert outcome.status in ("SUCCEEDED", "FAILED", "TIMED_OUT"), outcome
