"""One JSON codec for every service: orjson's speed, integers of any size kept exact.

JSON has no integer limit, and a value a user stores (a parameter, a secret, a workflow input)
comes back as it went in. orjson encodes integers up to 64 bits and decodes integers beyond
64 bits as floats (losing digits), so both functions here take a slower exact path only when a
value needs it: `dumps` when orjson refuses an integer, `loads` when the text holds a run of 19
or more digits (the shortest integer orjson could round). Integers that a service stores in
SQLite columns (versions, cursors, sizes) are a different matter: those are bounded to the
store's 64-bit range where the API validates its inputs (`aionix.api.endpoint.check_store_ints`).
"""

from __future__ import annotations

import datetime
import enum
import json
import re
import uuid
from collections.abc import Callable
from typing import Any

import orjson
import pydantic_core

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

_LONG_DIGITS = re.compile(r"\d{19}")
_LONG_DIGITS_BYTES = re.compile(rb"\d{19}")


def _fallback_default(default: Callable[[Any], Any] | None) -> Callable[[Any], Any]:
    """What orjson encodes natively and the standard library does not."""

    def convert(value: Any) -> Any:
        if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
            return value.isoformat()
        if isinstance(value, uuid.UUID):
            return str(value)
        if isinstance(value, enum.Enum):
            return value.value
        if default is not None:
            return default(value)
        raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")

    return convert


def dumps(value: Any, *, sort_keys: bool = False, default: Callable[[Any], Any] | None = None) -> bytes:
    """`value` as compact UTF-8 JSON; integers beyond 64 bits are written exactly."""
    try:
        return orjson.dumps(value, default=default, option=orjson.OPT_SORT_KEYS if sort_keys else None)
    except orjson.JSONEncodeError as exc:
        if "64-bit" not in str(exc):
            raise
    return json.dumps(
        value, separators=(",", ":"), ensure_ascii=False, sort_keys=sort_keys, default=_fallback_default(default)
    ).encode()


def dumps_text(value: Any, *, sort_keys: bool = False, default: Callable[[Any], Any] | None = None) -> str:
    """`dumps` as a `str` (for TEXT columns and messages)."""
    return dumps(value, sort_keys=sort_keys, default=default).decode()


def loads(data: str | bytes | bytearray | memoryview) -> Any:
    """Parse JSON; integers of any size come back exact (orjson would make floats of them).

    Raises `orjson.JSONDecodeError` (a `ValueError`) on malformed input, as `orjson.loads` does."""
    if isinstance(data, str):
        long_number = _LONG_DIGITS.search(data) is not None
    else:
        data = bytes(data) if isinstance(data, memoryview) else data
        long_number = _LONG_DIGITS_BYTES.search(data) is not None
    if not long_number:
        return orjson.loads(data)
    try:
        return pydantic_core.from_json(data, allow_inf_nan=False)
    except ValueError:
        return orjson.loads(data)  # raises with orjson's line/column message


def out_of_store_range(value: Any) -> bool:
    """True for an integer (not a bool) that a 64-bit SQLite column cannot hold."""
    return isinstance(value, int) and not isinstance(value, bool) and not INT64_MIN <= value <= INT64_MAX
