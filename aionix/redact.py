"""Masking secret values: the one redactor every path that stores or returns data uses.

Secrets are kept out of histories, records and events by construction (they are references,
resolved late); this module is the second line. Every value resolved from CredVault — by
`$secret`, a `secret_ref` parameter, a credvault task or a function's granted `secrets` —
joins the `SecretSet` of the execution or invocation it was resolved for (through
`CallContext.secrets`), and everything that execution or invocation records or answers is
passed through that set: histories, envelopes, snapshots, function results, logs and errors,
and the platform events they publish.

A value is masked as `***` in these forms (what CI systems such as GitHub Actions mask):

- the value itself, and every string inside a JSON value (`json`, `oauth_token` secrets);
- JSON-escaped (once and twice: a JSON document inside a JSON string) and `\\uXXXX`-escaped;
- URL-encoded (`quote`, `quote_plus`);
- base64 and base64url, at each of the three byte alignments a value can have inside a longer
  encoded text (the characters that depend only on the value are masked).

What cannot be masked, and why: any other transformation of a value (a substring, reversed,
upper-cased, hashed, hex, split over two fields, XOR-ed, encrypted with a key the code picked)
is just another string; no redactor can tell it from ordinary data without knowing the
transformation. Code that can read a secret can therefore always leak it: that is what each
secret's `readers` policy is for (it limits which workflows, functions and connections may read
it). Values shorter than 4 characters, and numbers and booleans inside JSON secrets, are not
masked (they would mask ordinary data everywhere).

`PROCESS` holds every value resolved in this process; the server log uses it. It is never
applied to data an API caller supplied and reads back (that would tell one tenant whether a
guess is another tenant's secret).
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import quote, quote_plus

import orjson

from aionix import jsonutil

REDACTED = "***"
MIN_LENGTH = 4


def _b64_fragments(raw: bytes, encode: Any) -> Iterator[str]:
    """The characters of the encoded value that do not depend on the bytes around it, for each
    of the three alignments the value can have inside a longer base64 text."""
    n = len(raw)
    for shift in range(3):
        text = encode(b"\0" * shift + raw).decode().rstrip("=")
        start = -(-shift * 8 // 6)  # ceil(8*shift/6): the first character made only of value bits
        end = (shift + n) * 8 // 6  # floor: the last character made only of value bits
        if end - start >= MIN_LENGTH:
            yield text[start:end]


def forms(value: str) -> set[str]:
    """Every masked form of one secret string (empty when it is too short to mask)."""
    if not isinstance(value, str) or len(value) < MIN_LENGTH:
        return set()
    out = {value}
    escaped = orjson.dumps(value).decode()[1:-1]
    out.add(escaped)
    out.add(orjson.dumps(escaped).decode()[1:-1])
    out.add(json.dumps(value)[1:-1])  # ensure_ascii: \uXXXX for non-ASCII characters
    out.add(quote(value, safe=""))
    out.add(quote(value))
    out.add(quote_plus(value))
    raw = value.encode()
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        whole = encode(raw).decode()
        out.update((whole, whole.rstrip("=")))  # the value encoded on its own, padded or not
        out.update(_b64_fragments(raw, encode))
    return {f for f in out if len(f) >= MIN_LENGTH}


def leaves(value: Any) -> Iterator[str]:
    """The strings to mask for one resolved value: itself, or each string inside JSON."""
    if isinstance(value, str):
        yield value
        return
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    try:
        yield jsonutil.dumps(value).decode()  # integers beyond 64 bits included
    except TypeError:
        pass


class SecretSet:
    """The redaction set of one execution or invocation. Values added also join every parent
    set (by default `PROCESS`, and e.g. the workflow execution that invoked a function)."""

    __slots__ = ("_forms", "_parents", "_pattern")

    #: one lock for every set: adding a secret is rare, and a set per execution (most of which
    #: never resolve one) costs nothing more than its three fields
    _lock = threading.Lock()

    def __init__(self, *parents: SecretSet | None, process: bool = True) -> None:
        #: replaced, never changed in place (a reader may iterate while another thread adds)
        self._forms: frozenset[str] = _NO_FORMS
        self._pattern: re.Pattern[str] | None = None
        if not parents:
            self._parents: tuple[SecretSet, ...] = _PROCESS_ONLY if process else ()
        else:
            self._parents = tuple(p for p in parents if p is not None) + ((PROCESS,) if process else ())

    @classmethod
    def within(cls, outer: SecretSet | None) -> SecretSet:
        """The set of work done on behalf of `outer` (a function a workflow invoked): it masks
        what `outer` masks, and what it resolves joins `outer`."""
        inner = cls(outer)
        if outer is not None:
            inner._forms = outer._forms
        return inner

    def __bool__(self) -> bool:
        return bool(self._forms)

    def __len__(self) -> int:
        return len(self._forms)

    def add(self, value: Any) -> None:
        """Register a resolved secret value (a string or any JSON value)."""
        new: set[str] = set()
        for leaf in leaves(value):
            new |= forms(leaf)
        self.add_forms(new)

    def merge(self, other: SecretSet) -> None:
        """Mask everything `other` masks too (e.g. a connection's credentials in the execution
        that used the connection)."""
        self.add_forms(other._forms)

    def add_forms(self, new: Iterable[str]) -> None:
        new = set(new) - self._forms
        if new:
            with self._lock:
                self._forms = self._forms | new
                self._pattern = None
        for parent in self._parents:
            parent.add_forms(new)

    def _compiled(self) -> re.Pattern[str] | None:
        pattern = self._pattern
        if pattern is None and self._forms:
            with self._lock:
                ordered = sorted(self._forms, key=lambda f: (-len(f), f))  # longest first
                pattern = self._pattern = re.compile("|".join(re.escape(f) for f in ordered))
        return pattern

    def contains(self, text: str) -> bool:
        pattern = self._compiled()
        return pattern is not None and isinstance(text, str) and pattern.search(text) is not None

    def text(self, text: str) -> str:
        """Mask every form in free text (a log line, an error message)."""
        pattern = self._compiled()
        if pattern is None or not isinstance(text, str):
            return text
        return pattern.sub(REDACTED, text)

    def value(self, value: Any) -> Any:
        """Mask inside a JSON value: every string and every object key."""
        pattern = self._compiled()
        if pattern is None:
            return value
        return self._walk(value, pattern)

    def _walk(self, value: Any, pattern: re.Pattern[str]) -> Any:
        if isinstance(value, str):
            return pattern.sub(REDACTED, value)
        if isinstance(value, dict):
            return {
                (pattern.sub(REDACTED, k) if isinstance(k, str) else k): self._walk(v, pattern)
                for k, v in value.items()
            }
        if isinstance(value, (list, tuple)):
            return [self._walk(v, pattern) for v in value]
        return value

    def json_text(self, text: str) -> str:
        """Mask inside a JSON document given as text; the result is always valid JSON (a match
        is re-done on the parsed value, so a mask can never cut through JSON syntax)."""
        if text is None or not self.contains(text):
            return text
        try:
            parsed = jsonutil.loads(text)
        except orjson.JSONDecodeError:
            return self.text(text)
        return jsonutil.dumps(self.value(parsed)).decode()


_NO_FORMS: frozenset[str] = frozenset()
PROCESS = SecretSet(process=False)
_PROCESS_ONLY: tuple[SecretSet, ...] = (PROCESS,)
"""Every value resolved in this process: the server log's redaction set."""
