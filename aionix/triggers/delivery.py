"""Delivering recorded fires to their targets through the executor bus (the outbox).

Each fire is invoked with the idempotency key `{trigger_id}:{fire_key}` (the due time, the
webhook id or the event id): a workflow target gets it as `idempotency_key` so a repeated start
returns the same execution, a function gets it as `context.idempotency_key`. A failed attempt
is retried with exponential backoff per the trigger's `retry`; after the last one the fire is
`dead` and a `Trigger Delivery Failed` event is published. A target that does not exist, or
refuses the call as bad input, is dead at once (retrying cannot help).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from aionix import expr, jsonutil, telemetry
from aionix import trn as trnlib
from aionix.bus import BusError, CallContext
from aionix.errors import AionixError, NotFound, TRNError, field_error
from aionix.redact import SecretSet
from aionix.triggers.models import RetrySpec, TriggersConfig
from aionix.triggers.records import trigger_trn

if TYPE_CHECKING:
    from aionix.runtime import Runtime

log = logging.getLogger("aionix.triggers")
EVENT_SOURCE = "aionix.triggers"


@dataclass
class Outcome:
    status: str  # delivered | pending | dead
    result: Any = None
    result_id: str | None = None
    error: str | None = None
    cause: str | None = None
    next_attempt_at: float | None = None


def idempotency_key(fire: dict[str, Any]) -> str:
    return f"{fire['trigger_id']}:{fire['fire_key']}"


def is_workflow(target: str) -> bool:
    return target.startswith("trn:stepflow:")


def transform(source: str | None, payload: Any) -> Any:
    """The target's input: the trigger's JSONata `input` over the payload, or the payload."""
    if not source:
        return payload
    value = expr.compile_expression(source).evaluate(payload)
    return None if value is expr.UNDEFINED else value


def _result_id(result: Any) -> str | None:
    if isinstance(result, dict):
        for key in ("execution_id", "invocation_id", "request_id", "id"):
            value = result.get(key)
            if isinstance(value, str | int):
                return str(value)
    return None


def backoff(retry: RetrySpec, attempts: int) -> float:
    return min(retry.interval_seconds * retry.backoff_rate ** max(attempts - 1, 0), retry.max_delay_seconds)


class TriggerMetrics:
    """Prometheus series of the triggers service (on the runtime's registry)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.attempts = Counter(
            "aionix_trigger_delivery_attempts_total",
            "Deliveries of trigger fires to their targets, by origin and outcome",
            ["origin", "outcome"],
            registry=registry,
        )
        self.rejected = Counter(
            "aionix_trigger_webhooks_rejected_total",
            "Refused webhook deliveries, by reason",
            ["reason"],
            registry=registry,
        )
        self.lateness = Histogram(
            "aionix_trigger_schedule_lateness_seconds",
            "How late schedule fires are recorded after their due time",
            registry=registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60, 600),
        )


_metrics: weakref.WeakKeyDictionary[CollectorRegistry, TriggerMetrics] = weakref.WeakKeyDictionary()


def metrics_for(registry: CollectorRegistry) -> TriggerMetrics:
    """One set of series per registry, however many service objects share it."""
    found = _metrics.get(registry)
    if found is None:
        found = _metrics[registry] = TriggerMetrics(registry)
    return found


class Delivery:
    def __init__(self, rt: Runtime, cfg: TriggersConfig, clock: Callable[[], float]) -> None:
        self.rt = rt
        self.metrics = metrics_for(rt.metrics.registry)
        self.cfg = cfg
        self.clock = clock
        self._sem = asyncio.Semaphore(cfg.max_concurrent_deliveries)
        self._inflight: set[int] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.wake = asyncio.Event()
        self.delivered = 0

    def dispatch(self, fires: list[dict[str, Any]]) -> None:
        """Deliver freshly recorded (already claimed) fires in the background."""
        for fire in fires:
            task = asyncio.create_task(self.deliver(fire), name=f"trigger-fire-{fire['id']}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def drain(self, timeout: float) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)

    async def cancel(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def deliver(
        self, fire: dict[str, Any], *, mode: str = "async", timeout: float | None = None, record_behind: bool = False
    ) -> Outcome:
        """One attempt, recorded; never raises for a target failure. With `record_behind` the
        outcome is returned at once and written in the background (the fire stays claimed
        until then; a crash before the write re-delivers it under the same key)."""
        self._inflight.add(fire["id"])
        try:
            async with self._sem:
                outcome = await self.attempt(fire, mode=mode, timeout=timeout)
        except Exception:
            log.exception("delivering fire %s of trigger %s failed", fire["id"], fire["trigger_id"])
            self._inflight.discard(fire["id"])
            return Outcome("pending")
        if record_behind:
            task = asyncio.create_task(self._finish(fire, outcome), name=f"trigger-record-{fire['id']}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            await self._finish(fire, outcome)
        return outcome

    async def _finish(self, fire: dict[str, Any], outcome: Outcome) -> None:
        try:
            await self._record(fire, outcome)
            self.metrics.attempts.labels(fire["origin"], outcome.status).inc()
        except Exception:
            log.exception("recording fire %s of trigger %s failed", fire["id"], fire["trigger_id"])
        finally:
            self._inflight.discard(fire["id"])

    async def attempt(self, fire: dict[str, Any], *, mode: str, timeout: float | None) -> Outcome:
        retry = RetrySpec.model_validate(jsonutil.loads(fire["retry"]))
        attempts = fire["attempts"] + 1
        payload = jsonutil.loads(fire["payload"]) if fire["payload"] is not None else None
        try:
            # inline when quick, else in an expression worker (never holds the event loop long)
            data = await expr.evaluate_async(lambda: transform(fire["input"], payload))
        except AionixError as exc:
            return Outcome("dead", error="Trigger.InputTransformFailed", cause=exc.message)
        target = fire["target"]
        key = idempotency_key(fire)
        # the trace the fire was made in (a webhook's traceparent, the execution that published the
        # event), else the one this runs in, else a new one
        trace_id = fire.get("trace_id") or telemetry.current_trace.get() or uuid.uuid4().hex
        ctx = CallContext(
            tenant=fire["tenant"],
            trace_id=trace_id,
            idempotency_key=key,
            extra={"trigger": trigger_trn(fire["tenant"], fire["trigger_name"]), "fire_id": fire["id"]},
            caller=trigger_trn(fire["tenant"], fire["trigger_name"]),
            secrets=SecretSet(),
        )
        body = {"input": data, "mode": mode, "idempotency_key": key} if is_workflow(target) else data
        attrs = {"aionix.trigger": fire["trigger_name"], "aionix.fire_id": fire["id"], "aionix.attempt": attempts}
        token = telemetry.current_trace.set(trace_id)
        try:
            with telemetry.span(f"trigger {fire['trigger_name']}", trace_id=trace_id, attrs=attrs) as span:
                outcome = await self._call(target, body, ctx, retry, attempts, timeout)
                span.set("aionix.fire_status", outcome.status)
                if outcome.status != "delivered":
                    span.fail(f"{outcome.error}: {outcome.cause}")
        finally:
            telemetry.current_trace.reset(token)
        if ctx.secrets:  # a value the target resolved reaches neither the fire record nor a reply
            outcome = dataclasses.replace(
                outcome, result=ctx.secrets.value(outcome.result), cause=ctx.secrets.text(outcome.cause)
            )
        return outcome

    async def _call(
        self, target: str, body: Any, ctx: CallContext, retry: RetrySpec, attempts: int, timeout: float | None
    ) -> Outcome:
        try:
            result = await self.rt.bus.invoke(target, body, ctx, timeout=timeout or self.cfg.delivery_timeout_seconds)
        except NotFound as exc:
            return Outcome("dead", error="Trigger.TargetNotFound", cause=f"{target}: {exc.message}")
        except BusError as exc:
            return self._failed(retry, attempts, exc.error, exc.cause)
        except AionixError as exc:
            if exc.status >= 500:
                return self._failed(retry, attempts, f"Trigger.{exc.code}", exc.message)
            return Outcome("dead", error="Trigger.TargetRejected", cause=f"{target}: {exc.message}")
        except Exception as exc:
            return self._failed(retry, attempts, "Trigger.DeliveryFailed", f"{type(exc).__name__}: {exc}")
        return Outcome("delivered", result=result, result_id=_result_id(result))

    def _failed(self, retry: RetrySpec, attempts: int, error: str, cause: str) -> Outcome:
        if attempts >= retry.max_attempts:
            return Outcome("dead", error=error, cause=f"{cause} (gave up after {attempts} attempts)")
        return Outcome("pending", error=error, cause=cause, next_attempt_at=self.clock() + backoff(retry, attempts))

    async def _record(self, fire: dict[str, Any], outcome: Outcome) -> None:
        recorded = await self.rt.store.execute(
            "triggers.finish_fire",
            {
                "id": fire["id"],
                "status": outcome.status,
                "next_attempt_at": outcome.next_attempt_at,
                "result_id": outcome.result_id,
                "error": outcome.error,
                "cause": outcome.cause,
                "now": self.clock(),
                "node": self.node,
            },
        )
        if not recorded:
            # another node claimed the fire meanwhile (this one lost its lease: paused, cut off)
            # and delivers it under the same idempotency key; its outcome is the one recorded
            log.warning(
                "fire %s of trigger %s: claimed by another node; outcome not recorded", fire["id"], fire["trigger_name"]
            )
            return
        if outcome.status == "delivered":
            self.delivered += 1
        elif outcome.status == "pending":
            self.wake.set()
        elif outcome.status == "dead":
            log.warning(
                "trigger %s fire %s is dead: %s: %s",
                fire["trigger_name"],
                fire["fire_key"],
                outcome.error,
                outcome.cause,
            )
            if not self._from_own_event(fire):
                await self.rt.publish_event(
                    fire["tenant"],
                    EVENT_SOURCE,
                    "Trigger Delivery Failed",
                    {
                        "trigger": trigger_trn(fire["tenant"], fire["trigger_name"]),
                        "fire_id": fire["id"],
                        "fire_key": fire["fire_key"],
                        "target": fire["target"],
                        "error": outcome.error,
                        "cause": outcome.cause,
                    },
                )

    @staticmethod
    def _from_own_event(fire: dict[str, Any]) -> bool:
        """A failure to deliver a trigger-failure event publishes nothing more (no loops)."""
        if fire["origin"] != "event" or fire["payload"] is None:
            return False
        return jsonutil.loads(fire["payload"]).get("source") == EVENT_SOURCE

    # ------------------------------------------------------------------ the outbox loop
    @property
    def node(self) -> str:
        """This node's id: the owner of the claims it makes (`trigger_fires.claimed_by`)."""
        return self.rt.cluster.node_id

    async def release_own(self) -> int:
        """Give back this node's claims (at start: none of them is being delivered any more;
        at a clean stop: those still pending go to the next sweep of any node). Never another
        node's: it may be delivering them right now."""
        return await self.rt.store.execute("triggers.release_claims", {"node": self.node})

    async def run(self) -> None:
        """Deliver pending fires whose time has come; sleep until the next one (or a wake)."""
        await self.release_own()
        while True:
            self.wake.clear()
            try:
                delay = await self._sweep()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("trigger outbox sweep failed")
                delay = 5.0
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), delay)

    async def _sweep(self) -> float:
        """Claim due fires and deliver them. The pick and the claims are one transaction: on
        PostgreSQL the picked rows are locked and rows another node is claiming are skipped
        (`FOR UPDATE SKIP LOCKED`), so no two nodes ever claim one fire. A fire another node
        claimed is taken only once that node lost its lease ([cluster] lease_seconds without a
        heartbeat, or stopped); this node's own claims once they are older than
        [triggers] claim_lease_seconds and none of its deliveries holds them."""
        now = self.clock()
        lease = self.cfg.claim_lease_seconds
        node = self.node
        params = {
            "now": now,
            "stale": now - lease,
            "limit": self.cfg.scheduler_batch,
            "node": node,
            "node_lease": self.rt.cluster.lease_seconds,
        }
        inflight = frozenset(self._inflight)

        def claim(tx: Any) -> tuple[int, list[dict[str, Any]]]:
            rows = tx.fetch_all("triggers.pending_fires", params)
            claimed = [
                r
                for r in rows
                if r["id"] not in inflight
                and tx.execute(
                    "triggers.claim_fire",
                    {
                        "id": r["id"],
                        "now": now,
                        "stale": params["stale"],
                        "node": node,
                        "node_lease": params["node_lease"],
                    },
                )
            ]
            return len(rows), claimed

        seen, claimed = await self.rt.store.transaction(claim)
        if claimed:
            self.dispatch(claimed)
        if seen >= self.cfg.scheduler_batch and claimed:
            return 0.0
        row = await self.rt.store.fetch_one(
            "triggers.next_pending",
            {"lease": lease, "node": node, "others_at": now + self.rt.cluster.config.claim_interval_seconds},
        )
        at = row["at"] if row else None
        longest = self.cfg.max_wake_interval_seconds
        if self.rt.cluster.enabled:
            # fires other nodes claim after this sweep, then die with, wake nobody here: look
            # again every [cluster] claim_interval_seconds (one cheap query)
            longest = min(longest, self.rt.cluster.config.claim_interval_seconds)
        if at is None:
            return longest
        return min(max(at - self.clock(), 0.01), longest)


#: What a trigger may start: workflow templates, functions, connector actions (and action kinds).
FIREABLE = frozenset({("stepflow", "template"), ("aionixfn", "function"), ("openact", "action")})


def fireable(target: str, tenant: str, known_kind: Callable[[str], bool]) -> str:
    """Check a target at create time: a parseable TRN of a fireable type in the caller's
    tenant, or a known action kind. Whether it exists is checked when firing."""
    if trnlib.is_trn(target):
        try:
            parsed = trnlib.parse(target)
        except TRNError as exc:
            raise field_error("target", exc.message) from None
        if parsed.tenant != tenant:
            raise field_error("target", f"is in tenant {parsed.tenant!r}, not yours ({tenant!r})")
        if (parsed.service, parsed.type) not in FIREABLE:
            raise field_error(
                "target",
                f"a {parsed.service} {parsed.type} cannot be fired (use a workflow template, function or action)",
            )
        return str(parsed)
    if not known_kind(target):
        raise field_error("target", f"not a TRN and not a known action kind: {target!r}")
    return target
