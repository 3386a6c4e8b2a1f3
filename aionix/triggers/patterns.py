"""EventBridge-style event patterns over `{source, type, detail}`.

A pattern is an object whose keys name event fields (`source`, `type`, `detail` and, inside
`detail`, any nested key); each leaf is a list of matchers, any one of which may match:

    {"source": ["orders"], "detail": {"status": ["FAILED", {"prefix": "ERR_"}],
                                      "amount": [{"numeric": [">", 100, "<=", 1000]}],
                                      "coupon": [{"exists": false}]}}

Matchers: a literal (string, number, boolean, null: exact equality, numbers numerically),
`{"prefix": s}`, `{"suffix": s}`, `{"equals-ignore-case": s}`, `{"anything-but": literal |
[literals] | {"prefix": s}}`, `{"numeric": [op, n, (op, n)]}` with `= < <= > >=`, and
`{"exists": bool}`. When the event's value is a list, the leaf matches if any element does.
A missing field matches only `{"exists": false}`. All keys of the pattern must match.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from aionix.errors import field_error

TOP_LEVEL = ("source", "type", "detail")
_NUMERIC_OPS: dict[str, Callable[[float, float], bool]] = {
    "=": operator.eq,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_MISSING = object()
Matcher = Callable[[Any], bool]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _literal(expected: Any) -> Matcher:
    if _is_number(expected):
        return lambda v: _is_number(v) and float(v) == float(expected)
    return lambda v: type(v) is type(expected) and v == expected


def _compile_matcher(spec: Any, where: str) -> tuple[Matcher, bool]:
    """A matcher for one list item; the flag tells whether it is an `exists` test (which also
    sees missing values)."""
    if spec is None or isinstance(spec, str | bool) or _is_number(spec):
        return _literal(spec), False
    if not isinstance(spec, dict) or len(spec) != 1:
        raise field_error(
            where,
            "a matcher is a literal or an object with one key (prefix, suffix, anything-but, numeric, exists, equals-ignore-case)",
        )
    ((op, arg),) = spec.items()
    if op in ("prefix", "suffix", "equals-ignore-case"):
        if not isinstance(arg, str):
            raise field_error(f"{where}.{op}", "must be a string")
        if op == "prefix":
            return lambda v: isinstance(v, str) and v.startswith(arg), False
        if op == "suffix":
            return lambda v: isinstance(v, str) and v.endswith(arg), False
        folded = arg.casefold()
        return lambda v: isinstance(v, str) and v.casefold() == folded, False
    if op == "exists":
        if not isinstance(arg, bool):
            raise field_error(f"{where}.exists", "must be true or false")
        return (lambda v: v is not _MISSING) if arg else (lambda v: v is _MISSING), True
    if op == "anything-but":
        return _anything_but(arg, f"{where}.anything-but"), False
    if op == "numeric":
        return _numeric(arg, f"{where}.numeric"), False
    raise field_error(where, f"unknown matcher {op!r}")


def _anything_but(arg: Any, where: str) -> Matcher:
    if isinstance(arg, dict):
        if set(arg) != {"prefix"} or not isinstance(arg["prefix"], str):
            raise field_error(where, 'an object here must be {"prefix": string}')
        prefix = arg["prefix"]
        return lambda v: isinstance(v, str) and not v.startswith(prefix)
    values = arg if isinstance(arg, list) else [arg]
    if not values:
        raise field_error(where, "needs at least one value")
    literals = []
    for i, value in enumerate(values):
        if not (value is None or isinstance(value, str | bool) or _is_number(value)):
            raise field_error(f"{where}[{i}]" if isinstance(arg, list) else where, "must be a literal")
        literals.append(_literal(value))
    return lambda v: not any(m(v) for m in literals)


def _numeric(arg: Any, where: str) -> Matcher:
    if not isinstance(arg, list) or len(arg) not in (2, 4):
        raise field_error(where, "expected [op, number] or [op, number, op, number]")
    checks: list[tuple[Callable[[float, float], bool], float]] = []
    for i in range(0, len(arg), 2):
        op, bound = arg[i], arg[i + 1]
        if op not in _NUMERIC_OPS:
            raise field_error(f"{where}[{i}]", f"unknown operator {op!r} (one of = < <= > >=)")
        if not _is_number(bound):
            raise field_error(f"{where}[{i + 1}]", "must be a number")
        checks.append((_NUMERIC_OPS[op], float(bound)))
    return lambda v: _is_number(v) and all(fn(float(v), b) for fn, b in checks)


class Pattern:
    """A compiled pattern; `matches(event)` where `event` has `source`, `type`, `detail`."""

    def __init__(self, spec: dict[str, Any], *, field: str = "pattern") -> None:
        if not isinstance(spec, dict) or not spec:
            raise field_error(field, "must be a non-empty object")
        for key in spec:
            if key not in TOP_LEVEL:
                raise field_error(f"{field}.{key}", "unknown event field (source, type or detail)")
        self.spec = spec
        self._root = self._compile(spec, field)

    def _compile(self, node: dict[str, Any], where: str) -> list[tuple[str, bool, Any]]:
        """(key, is_leaf, matchers or nested entries) for each key of `node`."""
        compiled: list[tuple[str, bool, Any]] = []
        for key, value in node.items():
            path = f"{where}.{key}"
            if isinstance(value, dict):
                if not value:
                    raise field_error(path, "must not be empty")
                compiled.append((key, False, self._compile(value, path)))
            elif isinstance(value, list):
                if not value:
                    raise field_error(path, "needs at least one matcher")
                matchers = [_compile_matcher(item, f"{path}[{i}]") for i, item in enumerate(value)]
                compiled.append((key, True, matchers))
            else:
                raise field_error(path, "must be a list of matchers or a nested object")
        return compiled

    def matches(self, event: dict[str, Any]) -> bool:
        return _match_node(self._root, event)


def _match_node(node: list[tuple[str, bool, Any]], data: Any) -> bool:
    for key, is_leaf, sub in node:
        value = data.get(key, _MISSING) if isinstance(data, dict) else _MISSING
        if not (_match_leaf(sub, value) if is_leaf else _match_node(sub, value)):
            return False
    return True


def _match_leaf(matchers: list[tuple[Matcher, bool]], value: Any) -> bool:
    if value is _MISSING:
        return any(is_exists and m(value) for m, is_exists in matchers)
    values = value if isinstance(value, list) else [value]
    for m, is_exists in matchers:
        if is_exists:
            if m(value):
                return True
            continue
        if any(m(v) for v in values):
            return True
    return False
