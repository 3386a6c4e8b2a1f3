"""`States.*` intrinsic functions, parsed once and evaluated as Step Functions does.

Arguments are string literals in single quotes (`\\'`, `\\{`, `\\}` and `\\\\` escaped), numbers,
`true`/`false`/`null`, paths (`$.x`, `$$.x`, `$var.x`) and nested intrinsic calls. A failure raises
`IntrinsicError` with Step Functions' wording; the compiler turns it into `States.Runtime`.
"""

from __future__ import annotations

import base64
import hashlib
import math
import random
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson

from aionix import jsonutil
from aionix.stepflow.asl import jsonpath


class IntrinsicError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class Call:
    name: str
    args: tuple[Any, ...]  # literal values, `Ref` or nested `Call`


@dataclass(frozen=True, slots=True)
class Ref:
    path: jsonpath.Path


@dataclass(frozen=True, slots=True)
class Literal:
    value: Any
    marked: str | None = None  # a string with its escaped braces as _OPEN/_CLOSE (States.Format)


_OPEN, _CLOSE = "\ue000", "\ue001"


def is_intrinsic(text: str) -> bool:
    return bool(re.match(r"\s*States\.[A-Za-z0-9]+\s*\(", text))


@lru_cache(maxsize=2048)
def parse(text: str) -> Call:
    """Parse one intrinsic call; `IntrinsicError` names the problem."""
    parser = _Parser(text)
    call = parser.call()
    parser.ws()
    if parser.i != len(text):
        raise IntrinsicError(f"The intrinsic function '{text}' has unexpected text at position {parser.i}")
    return call


class _Parser:
    def __init__(self, text: str) -> None:
        self.text, self.i = text, 0

    def ws(self) -> None:
        while self.i < len(self.text) and self.text[self.i].isspace():
            self.i += 1

    def call(self) -> Call:
        self.ws()
        m = re.compile(r"States\.([A-Za-z0-9]+)\s*\(").match(self.text, self.i)
        if not m:
            raise IntrinsicError(f"The value '{self.text}' is not a valid intrinsic function")
        name = m.group(1)
        if name not in FUNCTIONS:
            raise IntrinsicError(f"The intrinsic function 'States.{name}' is not supported")
        self.i = m.end()
        args: list[Any] = []
        self.ws()
        if self.text.startswith(")", self.i):
            self.i += 1
            return Call(name, ())
        while True:
            args.append(self.arg())
            self.ws()
            if self.text.startswith(",", self.i):
                self.i += 1
                continue
            if self.text.startswith(")", self.i):
                self.i += 1
                return Call(name, tuple(args))
            raise IntrinsicError(f"The intrinsic function '{self.text}' is malformed at position {self.i}")

    def arg(self) -> Any:
        self.ws()
        t, i = self.text, self.i
        if t.startswith("'", i):
            out, marked, i = [], [], i + 1
            while i < len(t):
                c = t[i]
                if c == "\\" and i + 1 < len(t):
                    out.append(t[i + 1])
                    marked.append({"{": _OPEN, "}": _CLOSE}.get(t[i + 1], t[i + 1]))
                    i += 2
                    continue
                if c == "'":
                    self.i = i + 1
                    return Literal("".join(out), "".join(marked))
                marked.append(c)
                out.append(c)
                i += 1
            raise IntrinsicError(f"The intrinsic function '{t}' has an unterminated string")
        if t.startswith("States.", i):
            return self.call()
        if t.startswith("$", i):
            depth, j, quote = 0, i, None
            while j < len(t):
                c = t[j]
                if quote:
                    if c == quote:
                        quote = None
                elif c in "'\"" and depth:
                    quote = c
                elif c in "[(":
                    depth += 1
                elif c in "])":
                    if depth == 0:
                        break
                    depth -= 1
                elif c == "," and depth == 0:
                    break
                j += 1
            src = t[i:j].strip()
            self.i = j
            try:
                return Ref(jsonpath.parse(src))
            except jsonpath.PathError as exc:
                raise IntrinsicError(exc.message) from None
        m = re.compile(r"-?\d+(\.\d+)?([eE][+-]?\d+)?").match(t, i)
        if m:
            self.i = m.end()
            text = m.group(0)
            return Literal(float(text) if m.group(1) or m.group(2) else int(text))
        for word, value in (("true", True), ("false", False), ("null", None)):
            if t.startswith(word, i):
                self.i = i + len(word)
                return Literal(value)
        raise IntrinsicError(f"The intrinsic function '{t}' has an invalid argument at position {i}")


Resolver = Callable[[jsonpath.Path], Any]


def evaluate(call: Call, resolve: Resolver) -> Any:
    args = [_arg(a, resolve) for a in call.args]
    if call.name == "Format" and call.args and isinstance(call.args[0], Literal) and call.args[0].marked:
        args[0] = call.args[0].marked  # escaped braces are text, not placeholders
    return FUNCTIONS[call.name](args)


def _arg(a: Any, resolve: Resolver) -> Any:
    if isinstance(a, Literal):
        return a.value
    if isinstance(a, Ref):
        return resolve(a.path)
    return evaluate(a, resolve)


# ---------------------------------------------------------------- the functions
def _count(name: str, args: list[Any], *counts: int) -> None:
    if len(args) not in counts:
        want = " or ".join(str(c) for c in counts)
        raise IntrinsicError(f"Function States.{name} expects {want} argument(s), but {len(args)} were given")


def _is_int(v: Any) -> bool:
    return (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer())


def _need_int(name: str, v: Any) -> int:
    if not _is_int(v):
        raise IntrinsicError(f"Function States.{name} expects an integer argument, but got {_json(v)}")
    return int(v)


def _need_array(name: str, v: Any) -> list[Any]:
    if not isinstance(v, list):
        raise IntrinsicError(f"Function States.{name} expects an array argument, but got {_json(v)}")
    return v


def _need_str(name: str, v: Any) -> str:
    if not isinstance(v, str):
        raise IntrinsicError(f"Function States.{name} expects a string argument, but got {_json(v)}")
    return v


def _json(v: Any) -> str:
    return jsonutil.dumps(v).decode()


def _format_value(v: Any) -> str:
    if isinstance(v, str):
        return v
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(v)
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}={_format_value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(_format_value(x) for x in v) + "]"
    return str(v)


def _format(args: list[Any]) -> str:
    if not args:
        raise IntrinsicError("Function States.Format expects at least 1 argument")
    template = _need_str("Format", args[0])
    values = args[1:]
    parts = template.split("{}")
    if len(parts) - 1 != len(values):
        raise IntrinsicError(
            f"Function States.Format: the format string has {len(parts) - 1} placeholder(s) "
            f"but {len(values)} value(s) were given"
        )
    out = parts[0]
    for value, part in zip(values, parts[1:], strict=True):
        out += _format_value(value) + part
    return out.replace(_OPEN, "{").replace(_CLOSE, "}")


def _string_to_json(args: list[Any]) -> Any:
    _count("StringToJson", args, 1)
    text = _need_str("StringToJson", args[0])
    if text.strip() == "":
        return None
    try:
        return jsonutil.loads(text)
    except orjson.JSONDecodeError:
        raise IntrinsicError(f"Function States.StringToJson cannot parse {_json(text)} as JSON") from None


def _json_to_string(args: list[Any]) -> str:
    _count("JsonToString", args, 1)
    return _json(args[0])


def _array_partition(args: list[Any]) -> list[Any]:
    _count("ArrayPartition", args, 2)
    array = _need_array("ArrayPartition", args[0])
    size = _need_int("ArrayPartition", args[1])
    if size <= 0:
        raise IntrinsicError(f"Function States.ArrayPartition expects a chunk size > 0, but got {size}")
    return [array[i : i + size] for i in range(0, len(array), size)]


def _array_contains(args: list[Any]) -> bool:
    _count("ArrayContains", args, 2)
    array = _need_array("ArrayContains", args[0])
    return any(_equal(x, args[1]) for x in array)


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return a == b


def _array_range(args: list[Any]) -> list[int]:
    _count("ArrayRange", args, 3)
    start, end, step = (_need_int("ArrayRange", a) for a in args)
    if step == 0:
        raise IntrinsicError("Function States.ArrayRange expects a step other than 0")
    span = range(start, end + (1 if step > 0 else -1), step)
    # counted before anything is built: (0, 10**12, 1) must not allocate
    count = span.__len__() if abs(span.stop - span.start) < 2**62 else 2**62
    if count > 1000:
        raise IntrinsicError(f"Function States.ArrayRange would produce {count} items, over the limit of 1000")
    return list(span)


def _array_get_item(args: list[Any]) -> Any:
    _count("ArrayGetItem", args, 2)
    array = _need_array("ArrayGetItem", args[0])
    index = _need_int("ArrayGetItem", args[1])
    if not 0 <= index < len(array):
        raise IntrinsicError(f"Function States.ArrayGetItem: index {index} is out of bounds for length {len(array)}")
    return array[index]


def _array_length(args: list[Any]) -> int:
    _count("ArrayLength", args, 1)
    return len(_need_array("ArrayLength", args[0]))


def _array_unique(args: list[Any]) -> list[Any]:
    _count("ArrayUnique", args, 1)
    out: list[Any] = []
    for x in _need_array("ArrayUnique", args[0]):
        if not any(_equal(x, y) and type(x) is type(y) for y in out):
            out.append(x)
    return out


def _base64_encode(args: list[Any]) -> str:
    _count("Base64Encode", args, 1)
    text = _need_str("Base64Encode", args[0])
    if len(text) > 10_000:
        raise IntrinsicError("Function States.Base64Encode accepts at most 10000 characters")
    return base64.b64encode(text.encode()).decode()


def _base64_decode(args: list[Any]) -> str:
    _count("Base64Decode", args, 1)
    text = _need_str("Base64Decode", args[0])
    if len(text) > 10_000:
        raise IntrinsicError("Function States.Base64Decode accepts at most 10000 characters")
    try:
        return base64.b64decode(text, validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        raise IntrinsicError(f"Function States.Base64Decode cannot decode {_json(text)}") from None


_HASHES = {"MD5": "md5", "SHA-1": "sha1", "SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512"}


def _hash(args: list[Any]) -> str:
    _count("Hash", args, 2)
    data, algorithm = args
    if algorithm not in _HASHES:
        raise IntrinsicError(
            f"Function States.Hash: the hash algorithm {_json(algorithm)} is not supported; "
            "use one of MD5, SHA-1, SHA-256, SHA-384, SHA-512"
        )
    text = data if isinstance(data, str) else _json(data)
    if len(text) > 10_000:
        raise IntrinsicError("Function States.Hash accepts at most 10000 characters")
    return hashlib.new(_HASHES[algorithm], text.encode()).hexdigest()


def _json_merge(args: list[Any]) -> dict[str, Any]:
    _count("JsonMerge", args, 3)
    a, b, deep = args
    if not isinstance(a, dict) or not isinstance(b, dict):
        raise IntrinsicError("Function States.JsonMerge expects two JSON objects")
    if deep is not False:
        raise IntrinsicError("Function States.JsonMerge supports only a shallow merge (the third argument false)")
    return {**a, **b}


def _math_random(args: list[Any]) -> int:
    _count("MathRandom", args, 2, 3)
    start, end = _need_int("MathRandom", args[0]), _need_int("MathRandom", args[1])
    rng = random.Random(_need_int("MathRandom", args[2])) if len(args) == 3 else random
    if end <= start:
        raise IntrinsicError("Function States.MathRandom expects the start to be below the end")
    return rng.randrange(start, end)


def _java_round(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise IntrinsicError(f"Function States.MathAdd expects numbers, but got {_json(v)}")
    return math.floor(v + 0.5)


def _math_add(args: list[Any]) -> int:
    _count("MathAdd", args, 2)
    return _java_round(args[0]) + _java_round(args[1])


def _string_split(args: list[Any]) -> list[str]:
    _count("StringSplit", args, 2)
    text = _need_str("StringSplit", args[0])
    delimiters = _need_str("StringSplit", args[1])
    if not delimiters:
        return [text] if text else []
    return [t for t in re.split("[" + re.escape(delimiters) + "]", text) if t]


def _uuid(args: list[Any]) -> str:
    _count("UUID", args, 0)
    return str(uuid.uuid4())


def _array(args: list[Any]) -> list[Any]:
    return list(args)


FUNCTIONS: dict[str, Callable[[list[Any]], Any]] = {
    "Format": _format,
    "StringToJson": _string_to_json,
    "JsonToString": _json_to_string,
    "Array": _array,
    "ArrayPartition": _array_partition,
    "ArrayContains": _array_contains,
    "ArrayRange": _array_range,
    "ArrayGetItem": _array_get_item,
    "ArrayLength": _array_length,
    "ArrayUnique": _array_unique,
    "Base64Encode": _base64_encode,
    "Base64Decode": _base64_decode,
    "Hash": _hash,
    "JsonMerge": _json_merge,
    "MathRandom": _math_random,
    "MathAdd": _math_add,
    "StringSplit": _string_split,
    "UUID": _uuid,
}
