"""Evaluating ASL fields at run time: paths, payload templates, intrinsics and JSONata.

A `Scope` is what one state sees while the engine evaluates it: the raw state input, the
variables, the engine's context (turned into the Step Functions context object) and, after a
task or in a catcher, the result or the error output. Failures are raised as the engine's
`Failure` with Step Functions' error names and cause texts, so they retry, catch and report
exactly as on AWS.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from aionix import expr, jsonutil
from aionix.expr import UNDEFINED
from aionix.stepflow.asl import intrinsics, jsonpath
from aionix.stepflow.compile import QUERY_EVALUATION, RUNTIME
from aionix.stepflow.engine import Failure

MISSING: Any = UNDEFINED
PARTITION = "aws"
REGION = "local"
ACCOUNT = "000000000000"


def dumps(value: Any) -> str:
    return jsonutil.dumps(value).decode()


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(slots=True)
class Scope:
    state: str
    input: Any
    vars: dict[str, Any]
    engine_context: dict[str, Any]
    result: Any = MISSING
    error: Any = MISSING
    map_item: tuple[int, Any] | None = None
    _context: dict[str, Any] | None = field(default=None)
    #: `$secret`/`$param` as the engine resolved them for this state (JSONata only)
    late: dict[str, Any] | None = None

    @classmethod
    def of(cls, state: str, data: dict[str, Any]) -> Scope:
        return cls(state, data.get("input"), data.get("vars") or {}, data.get("context") or {}, late=data.get("late"))

    # ------------------------------------------------------------ context object ($$)
    @property
    def context(self) -> dict[str, Any]:
        if self._context is None:
            c = self.engine_context
            workflow = c.get("workflow", "")
            execution = c.get("execution_id", "")
            ctx: dict[str, Any] = {
                "Execution": {
                    "Id": f"arn:{PARTITION}:states:{REGION}:{ACCOUNT}:execution:{workflow}:{execution}",
                    "Input": c.get("execution_input"),
                    "Name": execution,
                    "RoleArn": f"arn:{PARTITION}:iam::{ACCOUNT}:role/aionix",
                    "StartTime": iso(c.get("start_time")),
                    "RedriveCount": 0,
                },
                "StateMachine": {
                    "Id": f"arn:{PARTITION}:states:{REGION}:{ACCOUNT}:stateMachine:{workflow}",
                    "Name": workflow,
                },
                "State": {
                    "Name": self.state,
                    "EnteredTime": iso(c.get("entered_time") or c.get("start_time")),
                    "RetryCount": max(0, int(c.get("attempt", 1)) - 1),
                },
            }
            if c.get("task_token"):
                ctx["Task"] = {"Token": c["task_token"]}
            if self.map_item is not None:
                ctx["Map"] = {"Item": {"Index": self.map_item[0], "Value": self.map_item[1]}}
            self._context = ctx
        return self._context

    def with_item(self, index: int, value: Any, input: Any) -> Scope:
        return Scope(
            self.state, input, self.vars, self.engine_context, self.result, self.error, (index, value), late=self.late
        )

    # ------------------------------------------------------------ errors
    def prefix(self) -> str:
        seq = self.engine_context.get("event_seq")
        entered = f" (entered at the event id #{seq - 1})" if isinstance(seq, int) else ""
        return f"An error occurred while executing the state '{self.state}'{entered}. "

    def runtime(self, message: str) -> Failure:
        return Failure(RUNTIME, self.prefix() + message)

    def query_error(self, message: str) -> Failure:
        return Failure(QUERY_EVALUATION, self.prefix() + message)


# ---------------------------------------------------------------- JSONPath mode
def read_path(scope: Scope, source: str, data: Any) -> Any:
    """A path (`$…` on `data`, `$$…` on the context object, `$var…` on a variable)."""
    try:
        path = jsonpath.parse(source)
    except jsonpath.PathError as exc:
        raise scope.runtime(exc.message) from None
    if path.root == "$":
        target = data
    elif path.root == "$$":
        target = scope.context
    else:
        if path.root not in scope.vars:
            raise scope.runtime(f"Invalid path '{source}': The variable '{path.root}' is not defined")
        target = scope.vars[path.root]
    try:
        return jsonpath.evaluate(path, target)
    except jsonpath.PathError as exc:
        raise scope.runtime(f"Invalid path '{source}' : {exc.message}") from None


def input_path(scope: Scope, path: Any, data: Any) -> Any:
    if path is None:
        return {}
    if path == "$":
        return data
    return read_path(scope, path, data)


def output_path(scope: Scope, path: Any, data: Any) -> Any:
    return input_path(scope, path, data)


def result_path(scope: Scope, path: Any, raw: Any, result: Any, *, present: bool = True) -> Any:
    """ResultPath: `$` (default) gives the result, null keeps the raw input."""
    if path is None:
        return raw
    if path == "$":
        return result
    try:
        return jsonpath.assign(path, raw, result)
    except jsonpath.PathError as exc:
        raise scope.runtime(exc.message) from None


def payload(scope: Scope, template: Any, data: Any, field_name: str = "") -> Any:
    """Parameters/ResultSelector/ItemSelector/Assign: `key.$` values are paths or intrinsics."""
    if isinstance(template, dict):
        out = {}
        for key, value in template.items():
            if key.endswith(".$") and isinstance(value, str):
                out[key[:-2]] = _dynamic(scope, value, data, key)
            else:
                out[key] = payload(scope, value, data, key)
        return out
    if isinstance(template, list):
        return [payload(scope, v, data, field_name) for v in template]
    return template


def _dynamic(scope: Scope, source: str, data: Any, key: str) -> Any:
    text = source.strip()
    if intrinsics.is_intrinsic(text):
        try:
            call = intrinsics.parse(text)
            return intrinsics.evaluate(call, lambda p: _resolve_arg(scope, p, data, key))
        except intrinsics.IntrinsicError as exc:
            raise scope.runtime(exc.message) from None
    if not text.startswith("$"):
        raise scope.runtime(
            f"The value for the field '{key}' must be a valid JSONPath or a valid intrinsic function call"
        )
    try:
        path = jsonpath.parse(text)
    except jsonpath.PathError as exc:
        raise scope.runtime(exc.message) from None
    try:
        return _resolve(scope, path, data)
    except jsonpath.PathError:
        where = scope.vars if path.root not in ("$", "$$") else scope.context if path.root == "$$" else data
        raise scope.runtime(
            f"The JSONPath '{text}' specified for the field '{key}' could not be found in the input '{dumps(where)}'"
        ) from None


def _resolve(scope: Scope, path: jsonpath.Path, data: Any) -> Any:
    if path.root == "$":
        return jsonpath.evaluate(path, data)
    if path.root == "$$":
        return jsonpath.evaluate(path, scope.context)
    if path.root not in scope.vars:
        raise jsonpath.PathError(f"The variable '{path.root}' is not defined")
    return jsonpath.evaluate(path, scope.vars[path.root])


def _resolve_arg(scope: Scope, path: jsonpath.Path, data: Any, key: str) -> Any:
    try:
        return _resolve(scope, path, data)
    except jsonpath.PathError:
        raise intrinsics.IntrinsicError(
            f"The JsonPath '{path.source}' specified in the intrinsic function for the field '{key}' "
            "could not be resolved"
        ) from None


# ---------------------------------------------------------------- JSONata mode
_TEMPLATE = re.compile(r"^\{%(.*)%\}$", re.DOTALL)


def jsonata_bindings(scope: Scope) -> dict[str, Any]:
    states: dict[str, Any] = {"input": scope.input, "context": scope.context}
    if scope.result is not MISSING:
        states["result"] = scope.result
    if scope.error is not MISSING:
        states["errorOutput"] = scope.error
    bindings: dict[str, Any] = dict(scope.vars)
    if scope.late:
        bindings.update(scope.late)
    bindings["states"] = states
    return bindings


@lru_cache(maxsize=4096)
def _extras_for(source: str) -> tuple[str, ...]:
    # a Python callable costs jlens ~0.6 ms per evaluation to bind, so bind only those used
    return tuple(name for name in EXTRAS if f"${name}" in source)


def jsonata(scope: Scope, template: Any, field_path: str, bindings: dict[str, Any] | None = None) -> Any:
    """A JSONata field value: `{% … %}` strings evaluated (undefined is an error), the rest literal."""
    if bindings is None and _has_expression(template):
        bindings = jsonata_bindings(scope)
    if isinstance(template, str):
        m = _TEMPLATE.match(template)
        if m is None:
            return template
        source = m.group(1).strip()
        extras = _extras_for(source)
        if extras:
            bindings = {**(bindings or {}), **{name: EXTRAS[name] for name in extras}}
        try:
            value = expr.compile_expression(source).evaluate(scope.input, bindings)
        except Failure:
            raise
        except expr.ExpressionError as exc:
            message = exc.message
            message = re.sub(r" at position \d+ in expression .*$", "", message, flags=re.DOTALL)
            message = re.sub(r" in expression .*$", "", message, flags=re.DOTALL)
            raise scope.query_error(
                f"The JSONata expression '{source}' specified for the field '{field_path}' threw an error "
                f"during evaluation. {message}"
            ) from None
        except Exception as exc:  # a Step Functions extra ($partition, $parse, …) rejected its arguments
            raise scope.query_error(
                f"The JSONata expression '{source}' specified for the field '{field_path}' threw an error "
                f"during evaluation. {exc}"
            ) from None
        if value is UNDEFINED:
            raise scope.query_error(
                f"The JSONata expression '{source}' specified for the field '{field_path}' returned nothing (undefined)."
            )
        return value
    if isinstance(template, dict):
        return {k: jsonata(scope, v, f"{field_path}/{k}", bindings) for k, v in template.items()}
    if isinstance(template, list):
        return [jsonata(scope, v, f"{field_path}/{i}", bindings) for i, v in enumerate(template)]
    return template


def constant(value: Any) -> Any:
    """A field whose JSONata expression reads nothing from the execution (`{% 10 %}`,
    `{% $n := 2 %}`) as its value; a literal as is; None when it depends on the execution."""
    if not isinstance(value, str):
        return value
    m = _TEMPLATE.match(value)
    if m is None:
        return value
    try:
        # folded only when quick: a slow or range-building one is evaluated at run time, off
        # the event loop (saving a definition must not hold the server)
        done, out = expr.try_inline(lambda: expr.compile_expression(m.group(1).strip()).evaluate(None, dict(EXTRAS)))
    except Exception:
        return None
    return None if not done or out is UNDEFINED else out


def _has_expression(template: Any) -> bool:
    if isinstance(template, str):
        return _TEMPLATE.match(template) is not None
    if isinstance(template, dict):
        return any(_has_expression(v) for v in template.values())
    if isinstance(template, list):
        return any(_has_expression(v) for v in template)
    return False


def compile_jsonata(template: Any, pointer: str) -> list[tuple[str, str]]:
    """Every expression in a JSONata field, compiled now; `ExpressionError` carries the pointer."""
    found: list[tuple[str, str]] = []

    def walk(value: Any, where: str) -> None:
        if isinstance(value, str):
            m = _TEMPLATE.match(value)
            if m is not None:
                source = m.group(1).strip()
                try:
                    expr.compile_expression(source)
                except expr.ExpressionError as exc:
                    exc.details["pointer"] = where
                    raise
                found.append((where, source))
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{where}/{k}")
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, f"{where}/{i}")

    walk(template, pointer)
    return found


# ---------------------------------------------------------------- Step Functions JSONata extras
def _partition(array: Any, size: Any) -> Any:
    if not isinstance(array, list):
        raise ValueError("$partition expects an array")
    n = int(size)
    if n <= 0:
        raise ValueError("$partition expects a chunk size > 0")
    return [array[i : i + n] for i in range(0, len(array), n)]


def _range(start: Any, end: Any, step: Any = 1) -> Any:
    a, b, s = int(start), int(end), int(step)
    if s == 0:
        raise ValueError("$range expects a step other than 0")
    out = list(range(a, b + (1 if s > 0 else -1), s))
    if len(out) > 1000:
        raise ValueError("$range would produce more than 1000 items")
    # a JSONata sequence of one is its single value (Step Functions returns 1 for $range(1, 9, 9))
    return out[0] if len(out) == 1 else out


def _hash(data: Any, algorithm: Any = "SHA-256") -> Any:
    names = {"MD5": "md5", "SHA-1": "sha1", "SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512"}
    if algorithm not in names:
        raise ValueError(f"$hash: unsupported algorithm {algorithm!r}")
    text = data if isinstance(data, str) else dumps(data)
    return hashlib.new(names[algorithm], text.encode()).hexdigest()


def _random(seed: Any = None) -> float:
    return random.Random(seed).random() if seed is not None else random.random()


def _uuid() -> str:
    return str(uuid.uuid4())


def _parse(text: Any) -> Any:
    if not isinstance(text, str):
        raise ValueError("$parse expects a string")
    value = jsonutil.loads(text)
    if isinstance(value, float) and math.isfinite(value) and value.is_integer() and "." not in text:
        return int(value)
    return value


class SignatureError(Exception):
    """An extra called with arguments its signature does not accept: JSONata's T0410, with
    the text Step Functions reports."""


def _is(value: Any, kinds: str) -> bool:
    for kind in kinds:
        if kind == "n" and isinstance(value, (int, float)) and not isinstance(value, bool):
            return True
        if (kind == "s" and isinstance(value, str)) or (kind == "a" and isinstance(value, list)):
            return True
        if kind == "j":
            return True
    return False


def _signed(name: str, params: tuple[tuple[str, bool], ...], fn: Any) -> Any:
    """`fn` behind a JSONata-style signature check: `params` is (types, optional) per argument
    (as `<an:a>`, `<s s?:s>`); too many, missing or mistyped arguments raise T0410 naming the
    first offending argument, as JSONata's signature validation does."""

    def call(*args: Any) -> Any:
        for i, arg in enumerate(args):
            if i >= len(params) or not _is(arg, params[i][0]):
                raise SignatureError(f'T0410: Argument {i + 1} of function "{name}" does not match function signature')
        for i in range(len(args), len(params)):
            if not params[i][1]:
                raise SignatureError(f'T0410: Argument {i + 1} of function "{name}" does not match function signature')
        return fn(*args)

    return call


_N, _S, _A = ("n", False), ("s", False), ("a", False)
EXTRAS: dict[str, Any] = {
    "partition": _signed("partition", (_A, _N), _partition),
    "range": _signed("range", (_N, _N, _N), _range),
    "hash": _signed("hash", (_S, ("s", True)), _hash),
    "random": _signed("random", (("n", True),), _random),
    "uuid": _signed("uuid", (), _uuid),
    "parse": _signed("parse", (_S,), _parse),
}
