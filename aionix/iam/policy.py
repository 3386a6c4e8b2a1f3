"""Policies on TRNs: IAM-style JSON documents, compiled once, evaluated on every call.

A document is `{"version": "1", "statements": [...]}`; each statement

    {"sid": "start-billing", "effect": "allow" | "deny",
     "actions": ["stepflow:StartExecution", "*:Get*"],
     "resources": ["trn:stepflow:*:template/billing-*"],
     "conditions": {"tenant": ["prod"], "source_ip": ["10.0.0.0/8"],
                    "time": {"after": "08:00", "before": "18:00", "days": ["mon", "fri"]},
                    "intent": ["summarize*"], "route": ["POST /api/v1/workflows/*"],
                    "provider": ["openai"], "via": ["api", "mcp", "bus"],
                    "tags": {"team": "billing"}}}

`not_actions` / `not_resources` (instead of `actions` / `resources`) match everything but the
listed ones: `{"effect": "deny", "actions": ["*"], "not_resources": ["trn:stepflow:*:template/billing-*"]}`
keeps a key with a role away from everything outside the billing workflows.

Actions are `service:Operation` (one per API operation, listed in the OpenAPI document as
`x-aionix-action`; bus calls use `aionixfn:Invoke`, `credvault:Resolve`, …). Patterns take `*`
(any run of characters) and `?`; actions match case-insensitively, resources exactly. Every
condition of a statement must hold (a list means any of its values); a condition on a key the
request does not carry does not hold.

Decision: an explicit deny wins over any allow; without a matching allow the answer is an
implicit deny. The three roles are built-in policies (`aionix-viewer`, `aionix-operator`,
`aionix-admin`) generated from each endpoint's declared role, so a key's role is exactly its
built-in policy; attached policies add allows and denies on top.
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from aionix.errors import Forbidden

ROLE_ORDER = ("viewer", "operator", "admin")
BUILTIN_PREFIX = "aionix-"
BUILTIN_NAMES = tuple(f"{BUILTIN_PREFIX}{r}" for r in ROLE_ORDER)
ACTION_PATTERN = r"^(\*|[A-Za-z0-9*?]+:[A-Za-z0-9*?]+)$"
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
CONDITION_KEYS = ("tenant", "source_ip", "time", "intent", "route", "provider", "via", "tags")

#: the TRN service of each endpoint tag (an action is `service:Operation`)
TAG_SERVICE = {
    "admin": "aionix",
    "secrets": "credvault",
    "params": "paramstore",
    "connectors": "openact",
    "functions": "aionixfn",
    "workflows": "stepflow",
    "triggers": "igniter",
    "ai": "ai",
    "runtime": "agents",
    "modules": "modules",
    "policies": "iam",
    "audit": "aionix",
}
#: the resource a path's first `{param}` names: collection segment -> (service, type)
PATH_RESOURCES = {
    "workflows": ("stepflow", "template"),
    "executions": ("stepflow", "execution"),
    "functions": ("aionixfn", "function"),
    "secrets": ("credvault", "credential"),
    "params": ("paramstore", "param"),
    "connections": ("openact", "connection"),
    "actions": ("openact", "action"),
    "triggers": ("igniter", "trigger"),
    "tasks": ("ai", "task"),
    "modules": ("modules", "module"),
    "module-keys": ("modules", "key"),
    "keys": ("aionix", "key"),
    "policies": ("iam", "policy"),
    "users": ("iam", "user"),
    "groups": ("iam", "group"),
    "tenants": ("aionix", "tenant"),
    "copilot": ("agents", "session"),
}


# ---------------------------------------------------------------------------- documents
class TimeWindow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    after: str | None = Field(None, pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", description="HH:MM UTC, inclusive")
    before: str | None = Field(None, pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", description="HH:MM UTC, exclusive")
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] | None = None
    not_before: float | None = Field(None, ge=0, le=1e11, description="Unix time")
    not_after: float | None = Field(None, ge=0, le=1e11, description="Unix time")


class Conditions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant: list[str] | None = Field(None, max_length=100)
    source_ip: list[str] | None = Field(None, max_length=100, description="addresses or CIDR blocks")
    time: TimeWindow | None = None
    intent: list[str] | None = Field(None, max_length=100)
    route: list[str] | None = Field(None, max_length=100, description="'METHOD /path' patterns")
    provider: list[str] | None = Field(None, max_length=100)
    via: list[Literal["api", "mcp", "bus"]] | None = None
    tags: dict[str, str] | None = Field(None, description="resource tags that must all be present (values take *)")

    @field_validator("source_ip")
    @classmethod
    def _cidrs(cls, value: list[str] | None) -> list[str] | None:
        for item in value or ():
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or CIDR block") from None
        return value


class Statement(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sid: str | None = Field(None, max_length=128)
    effect: Literal["allow", "deny"]
    actions: list[str] | None = Field(None, min_length=1, max_length=500)
    not_actions: list[str] | None = Field(
        None, min_length=1, max_length=500, description="every action but these (instead of actions)"
    )
    resources: list[str] | None = Field(None, min_length=1, max_length=500, description="default: every resource")
    not_resources: list[str] | None = Field(
        None, min_length=1, max_length=500, description="every resource but these (instead of resources)"
    )
    conditions: Conditions | None = None

    @model_validator(mode="after")
    def _one_of_each(self) -> Statement:
        if (self.actions is None) == (self.not_actions is None):
            raise ValueError("a statement names exactly one of actions and not_actions")
        if self.resources is not None and self.not_resources is not None:
            raise ValueError("a statement names at most one of resources and not_resources")
        return self

    @field_validator("actions", "not_actions")
    @classmethod
    def _actions(cls, value: list[str] | None) -> list[str] | None:
        for item in value or ():
            if not re.match(ACTION_PATTERN, item):
                raise ValueError(f"{item!r} is not an action ('service:Operation', '*' wildcards)")
        return value

    @field_validator("resources", "not_resources")
    @classmethod
    def _resources(cls, value: list[str] | None) -> list[str] | None:
        for item in value or ():
            if item != "*" and not item.startswith("trn:"):
                raise ValueError(f"{item!r} is not a TRN pattern ('trn:…' or '*')")
            if len(item) > 1024:
                raise ValueError("a resource pattern is at most 1024 characters")
        return value


class PolicyDocument(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal["1"] = "1"
    statements: list[Statement] = Field(..., min_length=1, max_length=200)


# ---------------------------------------------------------------------------- compiling
_QUALIFIER = r"(?::[A-Za-z0-9][A-Za-z0-9_.-]{0,63})?"


_QUALIFIER_RE = re.compile(r":[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")


def _glob_match(p: str, s: str) -> bool:
    """`*`/`?` glob matching without backtracking blow-up: O(len(p) * len(s)) at worst."""
    i = j = 0
    star, mark = -1, 0
    while j < len(s):
        if i < len(p) and (p[i] == "?" or p[i] == s[j]):
            i += 1
            j += 1
        elif i < len(p) and p[i] == "*":
            star, mark = i, j
            i += 1
        elif star != -1:
            i = star + 1
            mark += 1
            j = mark
        else:
            return False
    while i < len(p) and p[i] == "*":
        i += 1
    return i == len(p)


class _Glob:
    """Patterns with at most one `*` in one regex (a single `.*` cannot backtrack badly); those
    with several matched by `_glob_match`, so no pattern a tenant writes can make a check slow."""

    __slots__ = ("fold", "qualified", "rx", "slow")

    def __init__(self, rx: re.Pattern[str] | None, slow: tuple[str, ...], fold: bool, qualified: bool) -> None:
        self.rx, self.slow, self.fold, self.qualified = rx, slow, fold, qualified

    def match(self, value: str) -> bool | None:
        if self.rx is not None and self.rx.match(value) is not None:
            return True
        if self.slow:
            text = value.lower() if self.fold else value
            bare = None
            if self.qualified and (q := _QUALIFIER_RE.search(text)) is not None:
                bare = text[: q.start()]
            for p in self.slow:
                if _glob_match(p, text) or (bare is not None and not p.endswith("*") and _glob_match(p, bare)):
                    return True
        return None


def _glob(patterns: Iterable[str], *, ignore_case: bool, qualified: bool = False) -> _Glob | None:
    """A matcher for a list of `*`/`?` patterns; None when one of them is a bare `*`. With
    `qualified` (resources), a pattern that does not end in `*` also matches the resource with
    any `:qualifier` (a function's alias or version)."""
    parts = []
    slow = []
    for p in patterns:
        if p == "*":
            return None
        if p.count("*") > 1:
            slow.append(p.lower() if ignore_case else p)
            continue
        rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in p)
        if qualified and not p.endswith("*"):
            rx += _QUALIFIER
        parts.append(rx)
    compiled = re.compile("(?:" + "|".join(parts) + r")\Z", re.IGNORECASE if ignore_case else 0) if parts else None
    return _Glob(compiled, tuple(slow), ignore_case, qualified)


class _Actions:
    """Action patterns: the literal ones in a set (one lookup), the wildcard ones in a regex."""

    __slots__ = ("literal", "rx")

    def __init__(self, patterns: list[str]) -> None:
        self.literal = frozenset(p.lower() for p in patterns if "*" not in p and "?" not in p)
        wild = [p for p in patterns if "*" in p or "?" in p]
        self.rx = _glob(wild, ignore_case=True) if wild else False

    def match(self, action: str) -> bool:
        if self.rx is None:
            return True
        if action.lower() in self.literal:
            return True
        return self.rx is not False and self.rx.match(action) is not None  # type: ignore[union-attr]


def _minutes(hhmm: str | None) -> int | None:
    if hhmm is None:
        return None
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


@dataclass(frozen=True, slots=True)
class Request:
    """What a decision is about: the action, the resource and the request's context."""

    action: str
    resource: str
    tenant: str = ""
    source_ip: str | None = None
    now: float | None = None
    intent: str | None = None
    route: str | None = None
    provider: str | None = None
    via: str = "api"
    tags: dict[str, str] | None = None


class _Compiled:
    __slots__ = (
        "actions",
        "conds",
        "effect",
        "index",
        "needs",
        "not_action",
        "not_resource",
        "policy",
        "resources",
        "sid",
    )

    def __init__(self, policy: str, index: int, st: Statement) -> None:
        self.policy = policy
        self.index = index
        self.sid = st.sid
        self.effect = st.effect
        self.actions = _Actions(st.actions if st.actions is not None else st.not_actions or [])
        self.not_action = st.actions is None
        patterns = st.resources if st.resources is not None else st.not_resources or ["*"]
        self.resources = _glob(patterns, ignore_case=False, qualified=True)
        self.not_resource = st.not_resources is not None
        checks: list[Any] = []
        needs: set[str] = set()
        c = st.conditions
        if c is not None:
            if c.tenant is not None:
                rx = _glob(c.tenant, ignore_case=False)
                checks.append(lambda r, rx=rx: rx is None or rx.match(r.tenant) is not None)
            if c.source_ip is not None:
                nets = tuple(ipaddress.ip_network(n, strict=False) for n in c.source_ip)
                checks.append(lambda r, nets=nets: _ip_in(r.source_ip, nets))
            if c.time is not None:
                w = c.time
                after, before = _minutes(w.after), _minutes(w.before)
                days = frozenset(_DAYS.index(d) for d in w.days) if w.days else None
                checks.append(lambda r, a=after, b=before, d=days, w=w: _in_window(r.now, a, b, d, w))
            for key in ("intent", "route", "provider", "via"):
                values = getattr(c, key)
                if values is not None:
                    needs.add(key)
                    rx = _glob(values, ignore_case=key == "route")
                    checks.append(
                        lambda r, rx=rx, key=key: (
                            (v := getattr(r, key)) is not None and (rx is None or rx.match(v) is not None)
                        )
                    )
            if c.tags is not None:
                needs.add("tags")
                wanted = tuple((k, _glob([v], ignore_case=False)) for k, v in c.tags.items())
                checks.append(lambda r, wanted=wanted: _tags_match(r.tags, wanted))
        self.conds = tuple(checks)
        self.needs = frozenset(needs)

    def matches(self, r: Request) -> bool:
        if self.actions.match(r.action) == self.not_action:
            return False
        if self.resources is None:
            if self.not_resource:
                return False
        elif (self.resources.match(r.resource) is None) != self.not_resource:
            return False
        for check in self.conds:  # noqa: SIM110 (a loop is faster than all() on the hot path)
            if not check(r):
                return False
        return True

    def describe(self) -> dict[str, Any]:
        return {"policy": self.policy, "sid": self.sid, "index": self.index, "effect": self.effect}


def _ip_in(ip: str | None, nets: tuple[Any, ...]) -> bool:
    if not ip:
        return False
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(addr.version == n.version and addr in n for n in nets)


def _in_window(now: float | None, after: int | None, before: int | None, days: Any, w: TimeWindow) -> bool:
    t = time.time() if now is None else now
    if w.not_before is not None and t < w.not_before:
        return False
    if w.not_after is not None and t >= w.not_after:
        return False
    tm = time.gmtime(t)
    if days is not None and tm.tm_wday not in days:
        return False
    minute = tm.tm_hour * 60 + tm.tm_min
    if after is not None and before is not None and after > before:  # a window over midnight
        return minute >= after or minute < before
    if after is not None and minute < after:
        return False
    return not (before is not None and minute >= before)


def _tags_match(tags: dict[str, str] | None, wanted: tuple[tuple[str, Any], ...]) -> bool:
    if not tags:
        return False
    for key, rx in wanted:
        value = tags.get(key)
        if value is None or (rx is not None and rx.match(value) is None):
            return False
    return True


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: Literal["allow", "explicit_deny", "implicit_deny"]
    action: str
    resource: str
    statement: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision": "allow" if self.allowed else "deny",
            "reason": self.reason,
            "action": self.action,
            "resource": self.resource,
            "statement": self.statement,
        }


#: decisions a condition-free policy set keeps (then it starts over)
MEMO_SIZE = 2048


class PolicySet:
    """The compiled statements of one principal: denies first, then allows."""

    __slots__ = ("_memo", "allows", "builtin_only", "denies", "names", "needs")

    def __init__(self, policies: list[tuple[str, PolicyDocument]], *, builtin_only: bool = False) -> None:
        denies: list[_Compiled] = []
        allows: list[_Compiled] = []
        for name, doc in policies:
            for i, st in enumerate(doc.statements):
                (denies if st.effect == "deny" else allows).append(_Compiled(name, i, st))
        self.denies = tuple(denies)
        self.allows = tuple(allows)
        self.names = tuple(name for name, _ in policies)
        self.needs = frozenset().union(*(s.needs for s in denies + allows)) if denies or allows else frozenset()
        self.builtin_only = builtin_only
        #: without any condition a decision depends on the action and the resource alone: kept
        #: (every API call and task call of a key asks the same few questions again)
        self._memo: dict[tuple[str, str], Decision] | None = {} if not any(st.conds for st in denies + allows) else None

    def decide(self, r: Request) -> Decision:
        memo = self._memo
        if memo is not None:
            known = memo.get((r.action, r.resource))
            if known is not None:
                return known
        decision = self._decide(r)
        if memo is not None:
            if len(memo) >= MEMO_SIZE:
                memo.clear()
            memo[(r.action, r.resource)] = decision
        return decision

    def _decide(self, r: Request) -> Decision:
        for st in self.denies:
            if st.matches(r):
                return Decision(False, "explicit_deny", r.action, r.resource, st.describe())
        for st in self.allows:
            if st.matches(r):
                return Decision(True, "allow", r.action, r.resource, st.describe())
        return Decision(False, "implicit_deny", r.action, r.resource, None)


class PolicyDenied(Forbidden):
    """403 naming the action, the resource and the statement that decided."""

    code = "forbidden"

    def __init__(self, decision: Decision, message: str | None = None, *, audit: bool = True) -> None:
        if message is None:
            message = f"not allowed: {decision.action} on {decision.resource}"
            st = decision.statement
            if st is not None:
                label = st["sid"] or f"statement {st['index']}"
                message += f" (denied by policy {st['policy']}, {label})"
            else:
                message += " (no policy allows it)"
        super().__init__(message, details=decision.to_dict())
        self.decision = decision
        #: whether the denial is worth an audit row of its own (a role-only refusal is not: it
        #: is what keys always got, and mutating calls are audited anyway)
        self.audit = audit


# ---------------------------------------------------------------------------- actions
def _camel(name: str) -> str:
    for suffix in ("_short", "_v1"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return "".join(part[:1].upper() + part[1:] for part in name.split("_") if part)


def endpoint_action(ep: Any) -> str:
    """The action of an endpoint: `service:Operation` from its tag and handler name (an
    endpoint may declare its own with `action=` in its options)."""
    explicit = getattr(ep, "action", None)
    if explicit:
        return explicit
    service = TAG_SERVICE.get(ep.tag, ep.tag or "aionix")
    return f"{service}:{_camel(ep.operation_id)}"


_PARAM = re.compile(r"\{([^}:]+)(?::[^}]+)?\}")


def resource_template(ep: Any) -> tuple[str, str, str | None, str | None]:
    """(service, type, the path parameter naming the resource, the one qualifying it)."""
    service = TAG_SERVICE.get(ep.tag, ep.tag or "aionix")
    parts = [p for p in ep.path.split("/") if p]
    for i, part in enumerate(parts):
        m = _PARAM.fullmatch(part)
        if m is None or i == 0:
            continue
        collection = parts[i - 1]
        if collection in PATH_RESOURCES:
            svc, typ = PATH_RESOURCES[collection]
            qualifier = None
            for later in parts[i + 1 :]:
                q = _PARAM.fullmatch(later)
                if q is not None and q.group(1) in ("alias", "version"):
                    qualifier = q.group(1)
            return svc, typ, m.group(1), qualifier
        if m.group(1) == "tenant":
            continue
        return service, collection.rstrip("s") or collection, m.group(1), None
    return service, "service", None, None


def service_trn(service: str, tenant: str) -> str:
    return f"trn:{service}:{tenant}:service"


def resource_for(template: tuple[str, str, str | None, str | None], tenant: str, path: dict[str, Any]) -> str:
    service, typ, param, qualifier = template
    if param is None or path.get(param) in (None, ""):
        return service_trn(service, tenant)
    out = f"trn:{service}:{tenant}:{typ}/{path[param]}"
    if qualifier and path.get(qualifier):
        out += f":{path[qualifier]}"
    return out


def builtin_documents(endpoints: Iterable[Any]) -> dict[str, PolicyDocument]:
    """The role policies: each allows the actions of every endpoint whose declared role the role
    reaches, on any resource; plus every bus call (which the roles never restricted) and the
    MCP protocol's own operations (its tools call the REST API, checked there)."""
    by_role: dict[str, set[str]] = {r: set() for r in ROLE_ORDER}
    for ep in endpoints:
        if ep.role is None:
            continue
        action = endpoint_action(ep)
        for role in ROLE_ORDER[ROLE_ORDER.index(ep.role) :]:
            by_role[role].add(action)
    out: dict[str, PolicyDocument] = {}
    for role in ROLE_ORDER:
        statements = [
            Statement(sid=f"role-{role}", effect="allow", actions=sorted(by_role[role]) or ["none:None"]),
            Statement(sid="bus-calls", effect="allow", actions=["*"], conditions=Conditions(via=["bus"])),
            Statement(sid="mcp-protocol", effect="allow", actions=["mcp:*"], conditions=Conditions(via=["mcp"])),
        ]
        out[f"{BUILTIN_PREFIX}{role}"] = PolicyDocument(statements=statements)
    return out


# ---------------------------------------------------------------------------- tables
@dataclass
class ActionInfo:
    action: str
    method: str
    path: str
    role: str | None
    resource: str = field(default="")
