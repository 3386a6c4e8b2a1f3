"""The executor bus: the one way one service invokes another.

Executors register under a TRN `(service, type)` — `("aionixfn", "function")` — or under a
connector action kind — `"http"`. `invoke(target, payload, ctx)` finds the executor for a TRN
string or an action kind, runs it with a per-call timeout, and records count, errors and a
latency histogram per target kind. `ctx` carries the caller's tenant and `trace_id` so every
hop can be correlated.

    bus.register_trn("aionixfn", "function", run_function)
    result = await bus.invoke("trn:aionixfn:prod:function/hello:live", {"name": "x"}, ctx)
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from aionix import telemetry
from aionix import trn as trnlib
from aionix.errors import AionixError, BadRequest, NotFound


@dataclass(frozen=True, slots=True)
class CallContext:
    """Who is calling and why: tenant, `trace_id`, and an idempotency key for at-least-once
    task calls (`execution_id:state:attempt`).

    `caller` is the TRN of the resource the call is made for, set by the platform, never taken
    from a payload: the workflow template (`trn:stepflow:{tenant}:template/{name}`) for its
    tasks, `$secret` and `$param`, the function (`trn:aionixfn:{tenant}:function/{name}`) for
    its granted secrets, the connection for its credentials, the trigger for its deliveries.
    CredVault checks it against each secret's `readers`. `secrets` is the redaction set
    (`aionix.redact.SecretSet`) of the execution or invocation the call serves: every value
    CredVault resolves for the call joins it."""

    tenant: str
    trace_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    principal: str | None = None
    idempotency_key: str | None = None
    timeout: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    caller: str | None = None
    secrets: Any = None
    #: the `Principal` the call is made on behalf of (an API request's caller; None for the
    #: platform's own calls): the bus checks its policies before running the target
    on_behalf_of: Any = None

    def child(self, **changes: Any) -> CallContext:
        return replace(self, **changes)


class BusError(AionixError):
    """A failure of the invoked target, carrying a Step Functions style error name
    (`error`, e.g. `Http.Timeout`) and `cause`, so that workflows can retry or catch it."""

    status = 502
    code = "target_failed"

    def __init__(self, error: str, cause: str, *, details: Any = None) -> None:
        super().__init__(f"{error}: {cause}", details=details)
        self.error = error
        self.cause = cause


class TargetTimeout(BusError):
    status = 504
    code = "target_timeout"

    def __init__(self, cause: str) -> None:
        super().__init__("States.Timeout", cause)


Executor = Callable[[Any, Any, CallContext], Awaitable[Any]]
"""`async def executor(target, payload, ctx)`: `target` is a parsed `TRN` or an action kind."""


class Bus:
    """Registry and dispatcher. One per runtime."""

    def __init__(self, registry: CollectorRegistry | None = None, default_timeout: float = 300.0) -> None:
        self._by_trn: dict[tuple[str, str], Executor] = {}
        self._by_kind: dict[str, Executor] = {}
        self.default_timeout = default_timeout
        #: set once every service is loaded; until then a call to a target whose service is not
        #: registered yet waits for it (executions resume before the later services load)
        self.loading: asyncio.Event | None = None
        #: `async fn(ctx, target, parsed, payload)` raising when the principal of
        #: `ctx.on_behalf_of` may not make this call (the runtime's policy engine)
        self.authorize: Callable[[CallContext, str, Any, Any], Awaitable[None]] | None = None
        self._calls = Counter(
            "aionix_bus_calls_total", "Bus invocations", ["target_kind", "outcome"], registry=registry
        )
        self._latency = Histogram(
            "aionix_bus_call_seconds",
            "Bus invocation latency",
            ["target_kind"],
            registry=registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )
        #: labelled metric children by (kind, outcome) and kind (a label lookup takes a lock)
        self._call_children: dict[tuple[str, str], Any] = {}
        self._latency_children: dict[str, Any] = {}

    def register_trn(self, service: str, type: str, executor: Executor) -> None:
        if type not in trnlib.SERVICES.get(service, ()):
            raise ValueError(f"unknown TRN type {service}:{type}")
        self._by_trn[(service, type)] = executor

    def register_kind(self, kind: str, executor: Executor) -> None:
        self._by_kind[kind] = executor

    def kinds(self) -> list[str]:
        return sorted(self._by_kind)

    def has_target(self, target: str) -> bool:
        if trnlib.is_trn(target):
            try:
                t = trnlib.parse(target)
            except AionixError:
                return False
            return (t.service, t.type) in self._by_trn
        return target in self._by_kind

    def _route(self, target: str, ctx: CallContext) -> tuple[Executor, Any, str]:
        if trnlib.is_trn(target):
            parsed = trnlib.parse(target)
            if parsed.tenant != ctx.tenant:
                raise NotFound(f"{target} not found")
            executor = self._by_trn.get((parsed.service, parsed.type))
            if executor is None:
                raise NotFound(f"no executor for {parsed.service} {parsed.type} targets")
            return executor, parsed, f"{parsed.service}:{parsed.type}"
        executor = self._by_kind.get(target)
        if executor is None:
            raise BadRequest(
                f"unknown action kind {target!r}",
                details={"target": target, "known_kinds": self.kinds()},
            )
        return executor, target, f"kind:{target}"

    async def invoke(self, target: str, payload: Any, ctx: CallContext, *, timeout: float | None = None) -> Any:
        """Run the executor for `target`; raise `TargetTimeout` after `timeout` seconds (the
        call is cancelled), or whatever error the executor raised."""
        try:
            executor, parsed, kind = self._route(target, ctx)
        except (NotFound, BadRequest):
            if self.loading is None or self.loading.is_set():
                raise
            await self.loading.wait()  # its service is still loading (start-up)
            executor, parsed, kind = self._route(target, ctx)
        if ctx.on_behalf_of is not None and self.authorize is not None:
            await self.authorize(ctx, target, parsed, payload)
        limit = timeout or ctx.timeout or self.default_timeout
        tracing = telemetry.tracer
        span = None
        if tracing is not None:
            span = tracing.start(
                f"bus {kind}", trace_id=ctx.trace_id, attrs={"aionix.bus.target": target, "aionix.tenant": ctx.tenant}
            ).activate()
        started = time.perf_counter()
        outcome = "error"
        deadline = asyncio.timeout(limit)
        try:
            async with deadline:
                result = await executor(parsed, payload, ctx)
            outcome = "ok"
            return result
        except TimeoutError:
            if not deadline.expired():
                raise
            outcome = "timeout"
            raise TargetTimeout(f"{target} did not answer within {limit:g} s") from None
        finally:
            calls = self._call_children.get((kind, outcome))
            if calls is None:
                calls = self._call_children[(kind, outcome)] = self._calls.labels(kind, outcome)
            calls.inc()
            latency = self._latency_children.get(kind)
            if latency is None:
                latency = self._latency_children[kind] = self._latency.labels(kind)
            latency.observe(time.perf_counter() - started)
            if span is not None:
                span.close(None if outcome == "ok" else _failure(outcome))


def _failure(outcome: str) -> str:
    """A bus span's error status: the exception being handled, if any."""
    import sys

    exc = sys.exc_info()[1]
    if exc is None:
        return outcome
    return getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"[:500]
