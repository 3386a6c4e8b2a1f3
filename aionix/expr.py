"""The one place that evaluates JSONata (engine: jlens).

Expressions are compiled once and cached by source; every evaluation is bounded in time and
depth, so a runaway expression fails with `ExpressionError` (code `D1012`…) instead of hanging
the event loop. *undefined* and *null* stay distinct: `evaluate` returns `UNDEFINED` for an
undefined result and `None` for `null` (the engine answers `None` for both; such a result is
evaluated again inside `{"v": (…)}`, whose key JSONata omits exactly when the value is
undefined).

`Template` compiles a JSON structure in which any string of the form `{% … %}` is an
expression and everything else is literal (DESIGN.md §4). `reads()` tells which `$secret.NAME`
and `$param('/path')` references a template makes, so they can be checked at save time,
resolved late and redacted.

The engine is reached only through this module, so it can be swapped.

**The event loop is never held by a user expression for long** (README "Expression limits").
Every evaluation is bounded by `[limits]`: time (`expression_timeout_ms`), recursion depth, and
the sizes that make builtins slow (`expression_max_array_items` — a range `[1..N]` and every
other array —, `expression_max_string_bytes`, `expression_max_result_bytes`). A caller on the
event loop uses `evaluate_async(fn)`: `fn` (a template's or an expression's `evaluate`) first
runs inline with a time slice of `INLINE_SLICE_SECONDS`, which is all that typical expressions
need (tens of µs); one that outlives the slice, or that builds a range (`..`) or pads a string,
is evaluated again in an expression worker process (`aionix.exprpool`, running
`aionix.exprworker`: its own address-space limit, killed when it outlives its time limit),
waited for from a thread, so the loop keeps serving. Synchronous callers (validation, the CLI, the conformance harness) evaluate inline
with the full limits.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, TypeVar

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

log = logging.getLogger("aionix.expr")
T = TypeVar("T")

_limits: dict[str, Any] = {
    "timeout": 1.0,
    "max_depth": 500,
    "max_array": 1_000_000,
    "max_string": 4 * 1024 * 1024,
    "max_result": 1024 * 1024,
    "memory_mb": 512,
    "workers": 2,
}
#: how long an expression may run on the event loop before it is moved to a worker process
INLINE_SLICE_SECONDS = 0.01
#: how long an expression that spent its inline slice goes straight to a worker: a workflow that
#: repeats it (a map's items, a loop) then costs the loop one slice, not one per evaluation
SLOW_INLINE_SKIP_SECONDS = 60.0
# sources that can hold the engine in one builtin for tens of ms (a range is allocated before
# its size is checked; $pad allocates its result): evaluated in a worker from the start
_HEAVY_RE = re.compile(r"\.\.|\$pad\b")


def configure(
    *,
    timeout_ms: int,
    max_depth: int,
    max_array_items: int | None = None,
    max_string_bytes: int | None = None,
    max_result_bytes: int | None = None,
    memory_mb: int | None = None,
    workers: int | None = None,
) -> None:
    """Set the per-evaluation bounds (from `[limits]`)."""
    _limits["timeout"] = timeout_ms / 1000.0
    _limits["max_depth"] = max_depth
    for key, value in (
        ("max_array", max_array_items),
        ("max_string", max_string_bytes),
        ("max_result", max_result_bytes),
        ("memory_mb", memory_mb),
        ("workers", workers),
    ):
        if value is not None:
            _limits[key] = value


def _options(timeout: float) -> dict[str, Any]:
    return {
        "timeout": timeout,
        "max_depth": _limits["max_depth"],
        "max_array_length": _limits["max_array"],
        "max_string_length": _limits["max_string"],
        "max_result_size": _limits["max_result"],
    }


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
    return _engine_error(getattr(exc, "code", None), str(exc), position, source)


def _engine_error(code: str | None, text: str, position: int | None, source: str) -> ExpressionError:
    """The engine's error (here or in a worker process) as the API shows it."""
    where = f" at position {position}" if position is not None else ""
    return ExpressionError(
        f"{code + ': ' if code else ''}{_name_limit(code, text)}{where} in expression {source!r}",
        expression=source,
        jsonata_code=code,
        position=position,
    )


_LIMIT_KEYS = (
    ("An array would exceed", "limits.expression_max_array_items"),
    ("A string would exceed", "limits.expression_max_string_bytes"),
    ("The result would exceed", "limits.expression_max_result_bytes"),
    ("Evaluation timeout", "limits.expression_timeout_ms"),
)


def _name_limit(code: str | None, text: str) -> str:
    """The engine's message, with the `[limits]` key that set the bound it hit."""
    if code in ("U1001", "D1012"):
        for start, key in _LIMIT_KEYS:
            if text.startswith(start):
                return f"{text} ({key})"
    return text


@dataclass(frozen=True, slots=True)
class References:
    """Secrets and parameters an expression reads. `dynamic_params`: a `$param` call whose
    argument is not a literal (it can only be checked at run time)."""

    secrets: frozenset[str] = frozenset()
    params: frozenset[str] = frozenset()
    dynamic_params: bool = False
    reads_all_secrets: bool = False

    def __bool__(self) -> bool:
        """Whether it reads any secret or parameter."""
        return bool(self.secrets or self.params or self.dynamic_params or self.reads_all_secrets)

    def __or__(self, other: References) -> References:
        return References(
            self.secrets | other.secrets,
            self.params | other.params,
            self.dynamic_params or other.dynamic_params,
            self.reads_all_secrets or other.reads_all_secrets,
        )


class Expression:
    """A compiled JSONata expression. Build with `compile_expression` (cached)."""

    __slots__ = ("_plain", "_slow_until", "_wrapped", "heavy", "reads_map", "references", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.heavy = _HEAVY_RE.search(source) is not None
        # until when (`time.perf_counter()`) the inline attempt is skipped: this expression spent a
        # whole slice inline lately, and each retry would hold the loop for another slice
        self._slow_until = 0.0
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
        """Evaluate; `UNDEFINED` for an undefined result, `None` for null. Inside
        `evaluate_async` this is the inline attempt (or, in its thread, the worker call)."""
        mode = _mode.value
        if mode is None:
            return self._evaluate_here(data, bindings, _limits["timeout"])
        if mode is _REMOTE:
            from aionix import exprpool  # (only in `evaluate_async`'s thread)

            return exprpool.pool().evaluate(self, data, bindings)
        return self.evaluate_until(mode, data, bindings)

    def evaluate_until(self, deadline: float, data: Any, bindings: Mapping[str, Any] | None) -> Any:
        """The inline attempt, within `deadline` (`time.perf_counter()`): raises `_Offload` when
        it cannot finish by then (or is heavy, or was slow lately)."""
        if self.heavy:
            raise _Offload
        now = time.perf_counter()
        budget = deadline - now
        if budget <= 0 or self._slow_until > now:
            raise _Offload
        if budget >= _limits["timeout"]:
            return self._evaluate_here(data, bindings, _limits["timeout"])
        try:
            return self._evaluate_here(data, bindings, budget, deadline)
        except ExpressionError as exc:
            if exc.jsonata_code == "D1012":
                if budget >= INLINE_SLICE_SECONDS / 2:  # its own cost, not the slice's earlier spending
                    self._slow_until = time.perf_counter() + SLOW_INLINE_SKIP_SECONDS
                raise _Offload from None
            raise

    def _evaluate_here(
        self, data: Any, bindings: Mapping[str, Any] | None, timeout: float, deadline: float | None = None
    ) -> Any:
        """Evaluated in this thread within `timeout` seconds. A result of null or undefined
        (both `None` from the engine) is told apart by a second evaluation, wrapped: within
        `timeout` again, or, given the inline slice's `deadline`, within what is left of it (a
        timeout there offloads the expression, see `evaluate_until`)."""
        wrapped = self._wrapped
        if wrapped is not None and not isinstance(data, list):  # the usual case, without a dict of options
            args = dict(bindings) if bindings else None
            try:
                out = _bounded(self._plain, data, args, timeout)
            except jlens.JlensError as exc:
                raise _error(exc, self.source) from None
            if out is not None:
                return out
            # undefined or null (the plain result is None for both): the {"v": (…)} wrapper,
            # which leaves out an undefined member, tells them apart (evaluating every
            # expression wrapped cost twice the plain evaluation: most values are neither)
            if deadline is not None:
                timeout = max(deadline - time.perf_counter(), 0.0001)
            try:
                out = _bounded(wrapped, data, args, timeout)
            except jlens.JlensError as exc:
                raise _error(exc, self.source, shift=len(_WRAP_PREFIX)) from None
            if not isinstance(out, dict) or "v" not in out:
                return UNDEFINED
            return out["v"]
        options = _options(timeout)
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
                        text if text is not None else "null", dict(bindings) if bindings else None, **options
                    )
                except jlens.JlensError as exc:
                    raise _error(exc, self.source) from None
                return UNDEFINED if out is None else jsonutil.loads(out)
        try:
            out = self._wrapped.evaluate(data, dict(bindings) if bindings else None, **options)
        except jlens.JlensError as exc:
            raise _error(exc, self.source, shift=len(_WRAP_PREFIX)) from None
        if not isinstance(out, dict) or "v" not in out:
            return UNDEFINED
        return out["v"]

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"


def _bounded(engine: jlens.Expression, data: Any, args: dict[str, Any] | None, timeout: float) -> Any:
    """`engine.evaluate` within `timeout` and the `[limits]` bounds (read on every call: the
    conformance harness and tests change them in place), without a dict of options."""
    lim = _limits
    return engine.evaluate(
        data,
        args,
        timeout=timeout,
        max_depth=lim["max_depth"],
        max_array_length=lim["max_array"],
        max_string_length=lim["max_string"],
        max_result_size=lim["max_result"],
    )


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
    #: the top-level fields of the input document that its expressions read (`reads()`), so a
    #: caller may leave the others out of the document; None: it may read the whole document
    roots: frozenset[str] | None = frozenset()

    @property
    def is_static(self) -> bool:
        return not self.expressions

    def evaluate(self, data: Any = None, bindings: Mapping[str, Any] | None = None) -> Any:
        """The structure with every expression replaced by its value. An object member whose
        expression is undefined is left out; an undefined array element is left out; an
        undefined top-level expression gives `UNDEFINED`."""
        return _eval(self.root, data, bindings)

    def evaluate_inline(self, data: Any = None, bindings: Mapping[str, Any] | None = None) -> Any:
        """`evaluate_inline(self.evaluate, data, bindings)`, with the slice's deadline handed to
        each expression rather than set for the thread (the engine's path, once per state)."""
        try:
            return _eval(self.root, data, bindings, time.perf_counter() + INLINE_SLICE_SECONDS)
        except _Offload:
            return OFFLOAD


def _eval(node: _Node, data: Any, bindings: Mapping[str, Any] | None, deadline: float | None = None) -> Any:
    """The value of `node`; with a `deadline`, each expression is an inline attempt within it
    (`Expression.evaluate_until`), else evaluated as the thread's mode says."""
    kind = node.kind
    if kind == "lit":
        return node.value
    if kind == "expr":
        if deadline is None:
            return node.value.evaluate(data, bindings)
        return node.value.evaluate_until(deadline, data, bindings)
    if kind == "obj":
        out = {}
        for key, child in node.children:
            # (a literal or an expression member without a call of its own: most members are)
            kind = child.kind
            if kind == "lit":
                out[key] = child.value
                continue
            if kind != "expr":
                value = _eval(child, data, bindings, deadline)
            elif deadline is None:
                value = child.value.evaluate(data, bindings)
            else:
                value = child.value.evaluate_until(deadline, data, bindings)
            if value is not UNDEFINED:
                out[key] = value
        return out
    values = (_eval(child, data, bindings, deadline) for child in node.children)
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
            reads = expr.reads_map.get("input")
            if reads is not None and template.roots is not None:
                template.roots = template.roots | reads.keys() if isinstance(reads, dict) else None
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


# ---------------------------------------------------------------------- off the event loop


class _Offload(BaseException):
    """The inline attempt gives up (slice spent, or a heavy source): evaluate in a worker.
    A BaseException, so that no `except Exception` between here and `evaluate_async` eats it."""


_REMOTE: Any = object()


class _Mode(threading.local):
    """How this thread evaluates: None, inline with the full limits; a float, the inline
    attempt's deadline (`time.perf_counter()`); `_REMOTE`, in `evaluate_async`'s thread,
    through a worker process. Per thread rather than a context variable: the inline attempt
    never awaits, and setting a context variable allocates (once per expression)."""

    value: Any = None


_mode = _Mode()
_executor: ThreadPoolExecutor | None = None


#: what `evaluate_inline` gives when the inline attempt gave up
OFFLOAD: Any = object()


def evaluate_inline(fn: Callable[..., T], *args: Any) -> T:
    """`evaluate_async`'s inline attempt, without a coroutine: `fn(*args)`, or `OFFLOAD` when an
    expression in it needs more than the slice (then `evaluate_offloaded`)."""
    outer, _mode.value = _mode.value, time.perf_counter() + INLINE_SLICE_SECONDS
    try:
        return fn(*args)
    except _Offload:
        return OFFLOAD  # type: ignore[no-any-return]
    finally:
        _mode.value = outer


async def evaluate_async(fn: Callable[..., T], *args: Any) -> T:
    """Run `fn(*args)` (which evaluates expressions: `template.evaluate`, an ASL hook…) without
    holding the event loop: inline when every expression in it finishes within the slice, else
    again in a thread whose expressions are evaluated by worker processes. `fn` must be free of
    side effects (it may run twice)."""
    value = evaluate_inline(fn, *args)
    if value is not OFFLOAD:
        return value
    return await evaluate_offloaded(fn, *args)


async def evaluate_offloaded(fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` in a thread whose expressions are evaluated by worker processes."""
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=max(2, 2 * int(_limits["workers"])), thread_name_prefix="expr")
    ctx = contextvars.copy_context()
    return await asyncio.get_running_loop().run_in_executor(_executor, ctx.run, _remotely, fn, *args)


def _remotely(fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` in `evaluate_async`'s thread: its expressions go to worker processes."""
    outer, _mode.value = _mode.value, _REMOTE
    try:
        return fn(*args)
    finally:
        _mode.value = outer


def offloaded(expression: Expression, data: Any = None, bindings: Mapping[str, Any] | None = None) -> Any:
    """`expression.evaluate`, but inside `evaluate_async` straight to a worker (a big input:
    even reading it would hold the loop)."""
    if isinstance(_mode.value, float):
        raise _Offload
    return expression.evaluate(data, bindings)


def try_inline(fn: Callable[[], T], seconds: float = INLINE_SLICE_SECONDS) -> tuple[bool, T | None]:
    """Run `fn` inline for at most about `seconds` (no offload): `(False, None)` when it needs
    longer or builds a range. For best-effort work on the loop, such as folding constants."""
    outer, _mode.value = _mode.value, time.perf_counter() + seconds
    try:
        return True, fn()
    except _Offload:
        return False, None
    finally:
        _mode.value = outer
