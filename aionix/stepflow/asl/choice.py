"""Choice rules in JSONPath mode: every comparison operator, its `…Path` variant, And/Or/Not
and the type tests, with Step Functions' semantics (a value of the wrong type never matches)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from typing import Any

from aionix.stepflow.asl import jsonpath
from aionix.stepflow.asl.evaluate import Scope, read_path

_BASE = ("StringEquals", "StringLessThan", "StringGreaterThan", "StringLessThanEquals", "StringGreaterThanEquals")
_NUM = ("NumericEquals", "NumericLessThan", "NumericGreaterThan", "NumericLessThanEquals", "NumericGreaterThanEquals")
_TS = (
    "TimestampEquals",
    "TimestampLessThan",
    "TimestampGreaterThan",
    "TimestampLessThanEquals",
    "TimestampGreaterThanEquals",
)
COMPARISONS = frozenset(
    [*_BASE, *_NUM, *_TS, "BooleanEquals", "StringMatches"]
    + [f"{op}Path" for op in (*_BASE, *_NUM, *_TS, "BooleanEquals")]
)
TYPE_TESTS = frozenset({"IsNull", "IsPresent", "IsNumeric", "IsString", "IsBoolean", "IsTimestamp"})
RULE_KEYS = frozenset({"Variable", "Next", "And", "Or", "Not", "Comment", "Assign", "Output", "Condition"})

Rule = Callable[[Scope, Any], bool]


def operator_of(rule: dict[str, Any]) -> str | None:
    for key in rule:
        if key in COMPARISONS or key in TYPE_TESTS:
            return key
    return None


def compile_rule(rule: dict[str, Any]) -> Rule:
    """A function (scope, effective input) → bool for one (possibly nested) rule."""
    if "And" in rule:
        parts = [compile_rule(r) for r in rule["And"]]
        return lambda scope, data: all(p(scope, data) for p in parts)
    if "Or" in rule:
        parts = [compile_rule(r) for r in rule["Or"]]
        return lambda scope, data: any(p(scope, data) for p in parts)
    if "Not" in rule:
        inner = compile_rule(rule["Not"])
        return lambda scope, data: not inner(scope, data)
    op = operator_of(rule)
    variable = rule.get("Variable")
    if op is None or not isinstance(variable, str):
        raise ValueError("a choice rule needs a Variable and one comparison operator")
    operand = rule[op]
    if op in TYPE_TESTS:
        return _type_test(op, variable, operand)
    if op.endswith("Path"):
        base = op[:-4]
        compare = _comparator(base)

        def by_path(scope: Scope, data: Any) -> bool:
            value = _variable(scope, variable, data)
            other = read_path(scope, operand, data)
            return compare(value, other)

        return by_path
    compare = _comparator(op)
    return lambda scope, data: compare(_variable(scope, variable, data), operand)


def _variable(scope: Scope, variable: str, data: Any) -> Any:
    try:
        path = jsonpath.parse(variable)
    except jsonpath.PathError as exc:
        raise scope.runtime(exc.message) from None
    try:
        if path.root == "$":
            return jsonpath.evaluate(path, data)
        if path.root == "$$":
            return jsonpath.evaluate(path, scope.context)
        if path.root not in scope.vars:
            raise jsonpath.PathError("undefined variable")
        return jsonpath.evaluate(path, scope.vars[path.root])
    except jsonpath.PathError:
        raise scope.runtime(
            f"Invalid path '{variable}': The choice state's condition path references an invalid value."
        ) from None


def _present(scope: Scope, variable: str, data: Any) -> tuple[bool, Any]:
    try:
        return True, _variable(scope, variable, data)
    except Exception:
        return False, None


def _type_test(op: str, variable: str, expected: Any) -> Rule:
    def test(scope: Scope, data: Any) -> bool:
        present, value = _present(scope, variable, data)
        if op == "IsPresent":
            return present is bool(expected)
        if not present:
            return False
        if op == "IsNull":
            outcome = value is None
        elif op == "IsNumeric":
            outcome = _is_number(value)
        elif op == "IsString":
            outcome = isinstance(value, str)
        elif op == "IsBoolean":
            outcome = isinstance(value, bool)
        else:
            outcome = isinstance(value, str) and parse_timestamp(value) is not None
        return outcome is bool(expected)

    return test


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _comparator(op: str) -> Callable[[Any, Any], bool]:
    if op == "BooleanEquals":
        return lambda a, b: isinstance(a, bool) and isinstance(b, bool) and a is b
    if op == "StringMatches":
        return lambda a, b: isinstance(a, str) and isinstance(b, str) and _glob(b).fullmatch(a) is not None
    kind, rel = (
        (op[:6], op[6:])
        if op.startswith("String")
        else (op[:7], op[7:])
        if op.startswith("Numeric")
        else (
            op[:9],
            op[9:],
        )
    )
    check = _RELATIONS[rel]
    if kind == "String":
        return lambda a, b: isinstance(a, str) and isinstance(b, str) and check(a, b)
    if kind == "Numeric":
        return lambda a, b: _is_number(a) and _is_number(b) and check(a, b)

    def timestamps(a: Any, b: Any) -> bool:
        if not isinstance(a, str) or not isinstance(b, str):
            return False
        ta, tb = parse_timestamp(a), parse_timestamp(b)
        return ta is not None and tb is not None and check(ta, tb)

    return timestamps


_RELATIONS: dict[str, Callable[[Any, Any], bool]] = {
    "Equals": lambda a, b: a == b,
    "LessThan": lambda a, b: a < b,
    "GreaterThan": lambda a, b: a > b,
    "LessThanEquals": lambda a, b: a <= b,
    "GreaterThanEquals": lambda a, b: a >= b,
}

_TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def parse_timestamp(text: str) -> datetime | None:
    """RFC 3339 with an uppercase T and a zone, as Step Functions requires."""
    if not _TS_RE.match(text):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


@lru_cache(maxsize=512)
def _glob(pattern: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out += re.escape(pattern[i + 1])
            i += 2
            continue
        out += ".*" if c == "*" else re.escape(c)
        i += 1
    return re.compile(out, re.DOTALL)
