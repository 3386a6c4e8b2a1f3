"""The conformance harness: the ASL corpus recorded on AWS through the real engine, and the
JSONata reference suite through `aionix.expr`, judged as `conformance/README.md` says.

    python -m aionix.stepflow.asl.conformance [--cases DIR] [--write conformance/baseline.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aionix import expr
from aionix.stepflow.asl.local import run_definition

DEFAULT_DIR = Path(__file__).resolve().parents[3] / "conformance" / "cases"


@dataclass
class Report:
    name: str
    total: int = 0
    passed: int = 0
    nondeterministic_total: int = 0
    nondeterministic_passed: int = 0
    by_tag: dict[str, list[int]] = field(default_factory=dict)  # tag -> [passed, total]
    failures: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.passed / self.total if self.total else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "passed": self.passed,
            "rate": round(self.rate, 4),
            "nondeterministic": {"total": self.nondeterministic_total, "passed": self.nondeterministic_passed},
            "by_tag": {k: {"passed": v[0], "total": v[1]} for k, v in sorted(self.by_tag.items())},
        }


def same(a: Any, b: Any, unordered: bool = False) -> bool:
    """JSON equality: numbers by value (within 1e-9 relative), booleans are not numbers."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b or abs(a - b) <= 1e-9 * max(abs(a), abs(b))
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return False
        if unordered:
            rest = list(b)
            for x in a:
                for i, y in enumerate(rest):
                    if same(x, y, True):
                        rest.pop(i)
                        break
                else:
                    return False
            return True
        return all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k], unordered) for k in a)
    return a == b


def judge(expect: dict[str, Any], got: dict[str, Any]) -> bool:
    if got.get("status") != expect["status"]:
        return False
    if expect["status"] == "SUCCEEDED":
        return same(got.get("output"), expect.get("output"))
    if expect["status"] == "FAILED":
        if got.get("error") != expect.get("error"):
            return False
        a, b = got.get("cause"), expect.get("cause")
        if a == b:
            return True
        try:
            return a is not None and b is not None and same(json.loads(a), json.loads(b))
        except (TypeError, ValueError):
            return False
    return True


def load(path: Path) -> list[dict[str, Any]]:
    # json, not orjson: the JSONata suite holds lone surrogates
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


async def _run_case(case: dict[str, Any], scale: float) -> dict[str, Any]:
    try:
        outcome = await run_definition(case["definition"], case.get("input"), scale=scale, name="conformance")
        return outcome.as_dict()
    except Exception as exc:
        return {"status": "CRASHED", "error": type(exc).__name__, "cause": str(exc)}


async def run_asl(cases: list[dict[str, Any]], *, scale: float = 1000.0, concurrency: int = 32) -> Report:
    report = Report("asl")
    started = time.perf_counter()
    semaphore = asyncio.Semaphore(concurrency)

    async def one(case: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        async with semaphore:
            return case, await _run_case(case, scale)

    for case, got in await asyncio.gather(*(one(c) for c in cases)):
        ok = judge(case["expect"], got)
        if case.get("nondeterministic"):
            report.nondeterministic_total += 1
            report.nondeterministic_passed += ok
            continue
        report.total += 1
        report.passed += ok
        for tag in case.get("uses", []):
            counts = report.by_tag.setdefault(tag, [0, 0])
            counts[0] += ok
            counts[1] += 1
        if not ok:
            report.failures.append({"id": case["id"], "expect": case["expect"], "got": got})
    report.seconds = time.perf_counter() - started
    return report


def run_jsonata(cases: list[dict[str, Any]]) -> Report:
    report = Report("jsonata")
    started = time.perf_counter()
    for case in cases:
        ok = _jsonata_case(case)
        report.total += 1
        report.passed += ok
        group = case["id"].split("/")[0]
        counts = report.by_tag.setdefault(group, [0, 0])
        counts[0] += ok
        counts[1] += 1
        if not ok:
            report.failures.append({"id": case["id"], "expr": case["expr"]})
    report.seconds = time.perf_counter() - started
    return report


def _jsonata_case(case: dict[str, Any]) -> bool:
    saved = dict(expr._limits)
    try:
        # the suite measures the engine against JSONata, whose own size limit is a range of 1e7
        # items; the smaller `[limits] expression_max_array_items` is this server's policy
        expr._limits["max_array"] = max(expr._limits["max_array"], 10_000_000)
        if "timelimit" in case:
            expr._limits["timeout"] = case["timelimit"] / 1000.0
        if "depth" in case:
            expr._limits["max_depth"] = case["depth"]
        try:
            out = expr.compile_expression(case["expr"]).evaluate(case.get("data"), case.get("bindings"))
        except expr.ExpressionError as exc:
            return "error" in case and exc.jsonata_code == case["error"].get("code")
        except UnicodeEncodeError:
            return False  # a lone surrogate cannot cross into the engine (a Rust string)
        if "error" in case:
            return False
        if case.get("undefinedResult"):
            return out is expr.UNDEFINED
        return "result" in case and same(out, case["result"], case.get("unordered", False))
    finally:
        expr._limits.update(saved)


def _table(report: Report) -> str:
    lines = [f"{report.name}: {report.passed}/{report.total} passed ({report.rate:.1%}) in {report.seconds:.1f} s"]
    if report.nondeterministic_total:
        lines.append(
            f"  nondeterministic (not counted): {report.nondeterministic_passed}/{report.nondeterministic_total}"
        )
    width = max((len(t) for t in report.by_tag), default=4)
    for tag, (ok, total) in sorted(report.by_tag.items()):
        lines.append(f"  {tag:<{width}}  {ok:>5}/{total:<5}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=Path, default=DEFAULT_DIR, help="the folder with asl_cases.jsonl")
    parser.add_argument("--write", type=Path, help="write the pass figures to this JSON file")
    parser.add_argument("--check", type=Path, help="fail when a figure drops below this baseline")
    parser.add_argument("--failures", action="store_true", help="print every failing case")
    args = parser.parse_args(argv)
    asl = asyncio.run(run_asl(load(args.cases / "asl_cases.jsonl")))
    jsonata = run_jsonata(load(args.cases / "jsonata_cases.jsonl"))
    print(_table(asl))
    print(_table(jsonata))
    if args.failures:
        for f in asl.failures + jsonata.failures:
            print(json.dumps(f)[:600])
    figures = {"asl": asl.as_dict(), "jsonata": jsonata.as_dict()}
    if args.write:
        args.write.write_text(json.dumps(figures, indent=2) + "\n")
    if args.check:
        base = json.loads(args.check.read_text())
        drops = [k for k in ("asl", "jsonata") if figures[k]["passed"] < base[k]["passed"]]
        if drops:
            for k in drops:
                print(f"{k}: {figures[k]['passed']} passed, below the baseline of {base[k]['passed']}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
