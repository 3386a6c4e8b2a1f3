"""The one place that evaluates JSONata (engine: jlens).

Expressions are compiled once and cached by source; every evaluation is bounded in time and
depth, so a runaway expression fails with `ExpressionError` (code `D1012`…) instead of hanging
the event loop. *undefined* and *null* stay distinct: `evaluate` returns `UNDEFINED` for an
undefined result and `None` for `null` (the source is evaluated inside `{"v": (…)}`, whose key
JSONata omits exactly when the value is undefined).

`Template` compiles a JSON structure in which any string of the form `{% … %}` is an
expression and everything else is literal (DESIGN.md §4). `reads()` tells which `$secret.NAME`
and `$param('/path')` references a template makes, so they can be checked at save time,
resolved late and redacted.

The engine is reached only through this module, so it can be swapped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import jlens

from aionix import jsonutil
from aionix.errors import AionixError


class _Undefined:
    __slots__ = ()

    def __repr__(self) -> str:
        return "UNDEFINED"

    def __bool__(self) -> bool:
        return False


UNDEFINED: Any = _Undefined()

_WRAP_PREFIX = '{"v": ('
_WRAP_SUFFIX = "\n)}"
_TEMPLATE_RE = re.compile(r"^\{%(.*)%\}$", re.DOTALL)
_PARAM_REF_RE = re.compile(r"""\$param\(\s*(?:"([^"]*)"|'([^']*)')\s*\)""")

_limits = {"timeout": 1.0, "max_depth": 500}


def configure(*, timeout_ms: int, max_depth: int) -> None:
    """Set the per-evaluation bounds (from `[limits]`)."""
    _limits["timeout"] = timeout_ms / 1000.0
    _limits["max_depth"] = max_depth


class ExpressionError(AionixError):
    """A JSONata syntax or evaluation error, with the engine's code and the position."""

    status = 422
    code = "expression_error"

    def __init__(self, message: str, *, expression: str, jsonata_code: str | None, position: int | None):
        super().__init__(
            message,
            details={"expression": expression, "jsonata_code": jsonata_code, "position": position},
        )
        self.expression = expression
        self.jsonata_code = jsonata_code
        self.position = position

    @property
    def is_timeout(self) -> bool:
        return self.jsonata_code in {"D1012", "U1001"}


def _error(exc: jlens.JlensError, source: str, shift: int = 0) -> ExpressionError:
    position = getattr(exc, "position", None)
    if isinstance(position, int) and shift:
        position = max(0, min(len(source), position - shift))
    code = getattr(exc, "code", None)
    text = str(exc)
    where = f" at position {position}" if position is not None else ""
    return ExpressionError(
        f"{code + ': ' if code else ''}{text}{where} in expression {source!r}",
        expression=source,
        jsonata_code=code,
        position=position,
    )


@dataclass(frozen=True, slots=True)
class References:
    """Secrets and parameters an expression reads. `dynamic_params`: a `$param` call whose
    argument is not a literal (it can only be checked at run time)."""

    secrets: frozenset[str] = frozenset()
    params: frozenset[str] = frozenset()
    dynamic_params: bool = False
    reads_all_secrets: bool = False

    def __or__(self, other: References) -> References:
        return References(
            self.secrets | other.secrets,
            self.params | other.params,
            self.dynamic_params or other.dynamic_params,
            self.reads_all_secrets or other.reads_all_secrets,
        )


class Expression:
    """A compiled JSONata expression. Build with `compile_expression` (cached)."""

    __slots__ = ("_plain", "_wrapped", "reads_map", "references", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        try:
            self._plain = jlens.Expression(source)
        except jlens.JlensError as exc:
            raise _error(exc, source) from None
        try:
            self._wrapped: jlens.Expression | None = jlens.Expression(_WRAP_PREFIX + source + _WRAP_SUFFIX)
        except jlens.JlensError:  # e.g. a regex that the wrapper's context lexes differently
            self._wrapped = None  # evaluated on JSON text instead (see `evaluate`)
        self.reads_map = self._plain.reads()
        self.references = _references(source, self.reads_map)

    def evaluate(self, data: Any = None, bindings: Mapping[str, Any] | None = None) -> Any:
        """Evaluate; `UNDEFINED` for an undefined result, `None` for null."""
        if isinstance(data, list) or self._wrapped is None:
            # the {"v": (…)} wrapper would map its object constructor over an array input
            # (`phone[0]`, `($^(age)).name` went wrong): evaluate the plain expression on JSON
            # text, where undefined is None and null is "null"
            try:
                text = jsonutil.dumps(data).decode()
            except TypeError:
                text = None  # not JSON-representable (e.g. a huge int): the wrapper below
            if text is not None or self._wrapped is None:
                try:
                    out = self._plain.evaluate_json(
                        text if text is not None else "null",
                        dict(bindings) if bindings else None,
                        timeout=_limits["timeout"],
                        max_depth=_limits["max_depth"],
                    )
                except jlens.JlensError as exc:
                    raise _error(exc, self.source) from None
                return UNDEFINED if out is None else jsonutil.loads(out)
        try:
            out = self._wrapped.evaluate(
                data,
                dict(bindings) if bindings else None,
                timeout=_limits["timeout"],
                max_depth=_limits["max_depth"],
            )
        except jlens.JlensError as exc:
            raise _error(exc, self.source, shift=len(_WRAP_PREFIX)) from None
        if not isinstance(out, dict) or "v" not in out:
            return UNDEFINED
        return out["v"]

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"


def _references(source: str, reads: Mapping[str, Any]) -> References:
    bindings = reads.get("bindings") or {}
    secret = bindings.get("secret")
    secrets: frozenset[str] = frozenset()
    reads_all = False
    if isinstance(secret, dict):
        secrets = frozenset(secret)
    elif secret:
        reads_all = True
    params: set[str] = set()
    dynamic = False
    if bindings.get("param"):
        literal_calls = _PARAM_REF_RE.findall(source)
        params = {a or b for a, b in literal_calls}
        dynamic = source.count("$param(") > len(literal_calls)
    return References(secrets, frozenset(params), dynamic, reads_all)


@lru_cache(maxsize=4096)
def compile_expression(source: str) -> Expression:
    """Compile (once per distinct source) or raise `ExpressionError` with the position."""
    return Expression(source)


def is_expression(value: Any) -> bool:
    return isinstance(value, str) and _TEMPLATE_RE.match(value.strip()) is not None


def expression_source(value: str) -> str:
    m = _TEMPLATE_RE.match(value.strip())
    if m is None:
        raise ValueError("not a {% %} expression")
    return m.group(1).strip()


@dataclass(slots=True)
class _Node:
    kind: str  # "lit" | "expr" | "obj" | "arr"
    value: Any = None
    children: Any = None


@dataclass(slots=True)
class Template:
    """A JSON structure with `{% … %}` expressions inside, compiled once."""

    root: _Node
    references: References = field(default_factory=References)
    expressions: list[tuple[str, Expression]] = field(default_factory=list)

    @property
    def is_static(self) -> bool:
        return not self.expressions

    def evaluate(self, data: Any = None, bindings: Mapping[str, Any] | None = None) -> Any:
        """The structure with every expression replaced by its value. An object member whose
        expression is undefined is left out; an undefined array element is left out; an
        undefined top-level expression gives `UNDEFINED`."""
        return _eval(self.root, data, bindings)


def _eval(node: _Node, data: Any, bindings: Mapping[str, Any] | None) -> Any:
    kind = node.kind
    if kind == "lit":
        return node.value
    if kind == "expr":
        return node.value.evaluate(data, bindings)
    if kind == "obj":
        out = {}
        for key, child in node.children:
            value = _eval(child, data, bindings)
            if value is not UNDEFINED:
                out[key] = value
        return out
    values = (_eval(child, data, bindings) for child in node.children)
    return [v for v in values if v is not UNDEFINED]


def compile_template(value: Any, *, pointer: str = "") -> Template:
    """Compile a structure; a syntax error raises `ExpressionError` whose details carry the
    JSON `pointer` of the offending string."""
    template = Template(_Node("lit"))
    template.root = _compile(value, pointer, template)
    return template


def _compile(value: Any, pointer: str, template: Template) -> _Node:
    if isinstance(value, str):
        if is_expression(value):
            source = expression_source(value)
            try:
                expr = compile_expression(source)
            except ExpressionError as exc:
                exc.details["pointer"] = pointer or "/"
                raise
            template.references = template.references | expr.references
            template.expressions.append((pointer or "/", expr))
            return _Node("expr", expr)
        return _Node("lit", value)
    if isinstance(value, dict):
        children = [(k, _compile(v, f"{pointer}/{_escape(k)}", template)) for k, v in value.items()]
        if all(c.kind == "lit" for _, c in children):
            return _Node("lit", value)
        return _Node("obj", children=children)
    if isinstance(value, list):
        children = [_compile(v, f"{pointer}/{i}", template) for i, v in enumerate(value)]
        if all(c.kind == "lit" for c in children):
            return _Node("lit", value)
        return _Node("arr", children=children)
    return _Node("lit", value)


def _escape(key: str) -> str:
    return str(key).replace("~", "~0").replace("/", "~1")


def evaluate_source(source: str, data: Any = None, bindings: Mapping[str, Any] | None = None) -> Any:
    """Compile (cached) and evaluate in one call."""
    return compile_expression(source).evaluate(data, bindings)


Binding = Callable[..., Any]
