"""CI gate: the whole ASL corpus (recorded on AWS) through the real engine, and the JSONata
reference suite through `aionix.expr`, must not pass fewer cases than `conformance/baseline.json`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from aionix.stepflow.asl import conformance

ROOT = Path(__file__).resolve().parents[2]
CASES = ROOT / "conformance" / "cases"
BASELINE = json.loads((ROOT / "conformance" / "baseline.json").read_text())


def test_asl_corpus_passes_at_least_the_committed_baseline(capsys):
    cases = conformance.load(CASES / "asl_cases.jsonl")
    assert len(cases) == 597
    report = asyncio.run(conformance.run_asl(cases))
    with capsys.disabled():
        print("\n" + conformance._table(report))
    assert report.total == BASELINE["asl"]["total"]
    assert report.passed >= BASELINE["asl"]["passed"], [f["id"] for f in report.failures]
    assert report.rate >= 0.95
    for tag, counts in BASELINE["asl"]["by_tag"].items():
        assert report.by_tag[tag][0] >= counts["passed"], tag


def test_jsonata_suite_passes_at_least_the_committed_baseline(capsys):
    report = conformance.run_jsonata(conformance.load(CASES / "jsonata_cases.jsonl"))
    with capsys.disabled():
        print("\n" + conformance._table(report).splitlines()[0])
    assert report.total == 1686
    assert report.passed >= BASELINE["jsonata"]["passed"], [f["id"] for f in report.failures]
    assert report.rate >= 0.95


def test_the_judge_rejects_a_wrong_output_error_or_cause():
    ok = {"status": "SUCCEEDED", "output": {"a": 1}}
    assert conformance.judge(ok, {"status": "SUCCEEDED", "output": {"a": 1.0}})
    assert not conformance.judge(ok, {"status": "SUCCEEDED", "output": {"a": True}})
    assert not conformance.judge(ok, {"status": "FAILED", "error": "X"})
    failed = {"status": "FAILED", "error": "E", "cause": '{"x": [1, 2]}'}
    assert conformance.judge(failed, {"status": "FAILED", "error": "E", "cause": '{"x":[1,2]}'})
    assert not conformance.judge(failed, {"status": "FAILED", "error": "E", "cause": '{"x":[2,1]}'})
    assert not conformance.judge(failed, {"status": "FAILED", "error": "F", "cause": '{"x": [1, 2]}'})
    assert conformance.judge({"status": "FAILED"}, {"status": "FAILED"})
    assert not conformance.judge({"status": "FAILED"}, {"status": "FAILED", "error": "States.Fail"})
