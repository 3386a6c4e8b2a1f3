"""Resource names: `trn:{service}:{tenant}:{type}/{path}[:{qualifier}]` (DESIGN.md §3).

`parse` and `format` are exact inverses for every valid TRN; every fault raises `TRNError`
with the 0-based `position` of the first bad character in `details`. `resolve` accepts a full
TRN or a short name and returns the TRN in the caller's tenant.

    >>> t = parse("trn:aionixfn:prod:function/process-payment:live")
    >>> (t.service, t.tenant, t.type, t.path, t.qualifier)
    ('aionixfn', 'prod', 'function', 'process-payment', 'live')
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from aionix.errors import TRNError

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
TENANT_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
QUALIFIER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")

#: service -> the resource types it owns.
SERVICES: dict[str, frozenset[str]] = {
    "stepflow": frozenset({"template", "execution"}),
    "aionixfn": frozenset({"function"}),
    "openact": frozenset({"connection", "action"}),
    "igniter": frozenset({"trigger"}),
    "credvault": frozenset({"credential"}),
    "paramstore": frozenset({"param"}),
    "ai": frozenset({"intent", "task"}),
    "modules": frozenset({"module"}),
}
#: types whose path has several `/`-separated segments (connections: kind/name, params: a/b/c).
MULTI_SEGMENT = frozenset({"connection", "action", "param"})
#: types that take a `:qualifier`.
QUALIFIED = frozenset({"function", "template", "module"})


@dataclass(frozen=True, slots=True)
class TRN:
    service: str
    tenant: str
    type: str
    path: str
    qualifier: str | None = None

    def __str__(self) -> str:
        return format_trn(self)

    @property
    def name(self) -> str:
        """The last path segment (the short name)."""
        return self.path.rsplit("/", 1)[-1]

    def unqualified(self) -> TRN:
        return TRN(self.service, self.tenant, self.type, self.path)

    def with_qualifier(self, qualifier: str | None) -> TRN:
        return TRN(self.service, self.tenant, self.type, self.path, qualifier)


def _fail(message: str, text: str, position: int) -> TRNError:
    return TRNError(
        f"invalid TRN {text!r} at position {position}: {message}",
        details={"trn": text, "position": position, "reason": message},
    )


_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_NAME_REST = _ALNUM | frozenset("_.-")
_TENANT_FIRST = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_TENANT_REST = _TENANT_FIRST | frozenset("-")
#: what -> (allowed first characters, allowed other characters, maximum length)
_ALPHABETS = {
    "tenant": (_TENANT_FIRST, _TENANT_REST, 63),
    "name": (_ALNUM, _NAME_REST, 128),
    "qualifier": (_ALNUM, _NAME_REST, 64),
}


def _check(alphabet: str, value: str, what: str, text: str, offset: int) -> None:
    first, rest, limit = _ALPHABETS[alphabet]
    if not value:
        raise _fail(f"{what} is empty", text, offset)
    for i, ch in enumerate(value):
        if ch not in (first if i == 0 else rest):
            raise _fail(f"bad character {ch!r} in {what}", text, offset + i)
    if len(value) > limit:
        raise _fail(f"{what} is longer than {limit} characters", text, offset + limit)


def parse(text: str) -> TRN:
    """Parse a full TRN; raise `TRNError` naming the position of the first fault."""
    if not isinstance(text, str):
        raise TRNError("a TRN must be a string", details={"position": 0})
    if not text.startswith("trn:"):
        raise _fail("must start with 'trn:'", text, 0)
    pos = 4
    service, sep, rest = text[pos:].partition(":")
    if not sep:
        raise _fail("expected ':' after the service", text, len(text))
    if service not in SERVICES:
        raise _fail(f"unknown service {service!r} (one of {', '.join(sorted(SERVICES))})", text, pos)
    pos += len(service) + 1
    tenant, sep, rest = rest.partition(":")
    _check("tenant", tenant if sep else tenant.split("/")[0], "tenant", text, pos)
    if not sep:
        raise _fail("expected ':' after the tenant", text, len(text))
    pos += len(tenant) + 1
    rtype, sep, rest = rest.partition("/")
    if rtype not in SERVICES[service] or not sep:
        kinds = ", ".join(sorted(SERVICES[service]))
        if rtype in SERVICES[service]:
            raise _fail("expected '{type}/{path}'", text, len(text))
        raise _fail(f"unknown type {rtype!r} for service {service!r} (one of {kinds})", text, pos)
    pos += len(rtype) + 1
    path, sep, qualifier = rest.partition(":")
    if sep and rtype not in QUALIFIED:
        raise _fail(f"a {rtype} takes no qualifier", text, pos + len(path))
    segments = path.split("/")
    if len(segments) > 1 and rtype not in MULTI_SEGMENT:
        raise _fail(f"a {rtype} name has no '/'", text, pos + len(segments[0]))
    offset = pos
    for segment in segments:
        _check("name", segment, f"{rtype} name", text, offset)
        offset += len(segment) + 1
    if sep:
        _check("qualifier", qualifier, "qualifier", text, pos + len(path) + 1)
    return TRN(service, tenant, rtype, path, qualifier if sep else None)


def format_trn(trn: TRN) -> str:
    base = f"trn:{trn.service}:{trn.tenant}:{trn.type}/{trn.path}"
    return f"{base}:{trn.qualifier}" if trn.qualifier is not None else base


def is_trn(text: str) -> bool:
    return isinstance(text, str) and text.startswith("trn:")


def resolve(ref: str, *, tenant: str, service: str, type: str) -> TRN:
    """A full TRN or a short name (`name` or `name:qualifier`) as a TRN in `tenant`.

    A full TRN of another service or type, or of another tenant, is refused: callers are never
    allowed to address another tenant's resources.
    """
    if is_trn(ref):
        trn = parse(ref)
        if trn.service != service or trn.type != type:
            raise TRNError(
                f"expected a trn:{service}:…:{type}/… TRN, got a {trn.service} {trn.type}",
                details={"trn": ref, "expected": f"trn:{service}:{tenant}:{type}/"},
            )
        if trn.tenant != tenant:
            raise TRNError(
                f"TRN {ref!r} is in tenant {trn.tenant!r}, not yours ({tenant!r})",
                details={"trn": ref, "position": 5 + len(trn.service)},
            )
        return trn
    path, sep, qualifier = ref.partition(":")
    text = f"trn:{service}:{tenant}:{type}/{path.lstrip('/') if type == 'param' else path}"
    if sep:
        text += f":{qualifier}"
    return parse(text)


def validate_name(name: str, field: str = "name") -> str:
    """Check a short resource name; raises a 422 naming `field`."""
    from aionix.errors import field_error

    if not isinstance(name, str) or NAME_RE.fullmatch(name) is None:
        raise field_error(field, "must match [A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
    return name


def validate_tenant(tenant: str, field: str = "tenant") -> str:
    from aionix.errors import field_error

    if not isinstance(tenant, str) or TENANT_RE.fullmatch(tenant) is None:
        raise field_error(field, "must match [a-z0-9][a-z0-9-]{0,62}")
    return tenant
