"""Per-tenant quotas: what a tenant may consume, enforced where it is consumed.

Six quotas, each with a default in `[quotas]` (config.toml; 0 = unlimited, the default, so an
instance without quotas behaves as before) and a per-tenant override
(`PUT /api/v1/tenants/{t}/quotas`; null = take the default):

=============================  ==========  =====================================================
quota                          period      charged
=============================  ==========  =====================================================
executions_per_day             UTC day     each execution start, in the transaction that inserts it
                                           (while unlimited: counted in memory, written each second)
concurrent_executions          (none)      the tenant's RUNNING executions, counted in that transaction
stored_bytes                   (none)      measured from the tables every `measure_interval_seconds`,
                                           plus what parameter and secret writes add meanwhile
function_gb_seconds_per_day    UTC day     memory (GB) x timeout reserved at invoke, settled to
                                           memory x duration when it ends
webhooks_per_minute            minute      each accepted webhook delivery, with its fire record
ai_usd_per_day                 UTC day     the router's estimate reserved at submit, settled to
                                           the cost charged when the task ends
=============================  ==========  =====================================================

Counters live in the store (`quota_usage`) and are charged with one statement,
`… SET used = used + n WHERE used + n <= limit`, inside the write transaction of what consumes
them (or as a reservation of its own), so concurrent requests on any number of nodes never
overshoot a limit: the single writer serialises them. Settlements (actual minus reserved) and
charges of unlimited quotas are batched in memory and written every second, off the hot path.
Over quota: 429 `quota_exceeded` naming the quota, its limit, what is used and when it resets
(with `Retry-After` for the quotas that reset).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from aionix.errors import RateLimited

if TYPE_CHECKING:
    from aionix.runtime import Runtime

log = logging.getLogger("aionix.quotas")


@dataclass(frozen=True)
class QuotaSpec:
    period: int  # seconds of its window; 0: no window (a level)
    unit: str
    description: str


QUOTAS: dict[str, QuotaSpec] = {
    "executions_per_day": QuotaSpec(86400, "executions", "workflow executions started per UTC day"),
    "concurrent_executions": QuotaSpec(0, "executions", "workflow executions RUNNING at once"),
    "stored_bytes": QuotaSpec(0, "bytes", "bytes stored: execution records and histories, logs, params, secrets"),
    "function_gb_seconds_per_day": QuotaSpec(86400, "GB-seconds", "function memory (GB) x duration per UTC day"),
    "webhooks_per_minute": QuotaSpec(60, "requests", "webhook deliveries accepted per minute"),
    "ai_usd_per_day": QuotaSpec(86400, "USD", "AI spend per UTC day"),
}


class QuotasConfig(BaseModel):
    """`[quotas]`: the defaults of every tenant; 0 = unlimited."""

    model_config = ConfigDict(extra="forbid")

    executions_per_day: int = Field(0, ge=0)
    concurrent_executions: int = Field(0, ge=0)
    stored_bytes: int = Field(0, ge=0)
    function_gb_seconds_per_day: float = Field(0.0, ge=0)
    webhooks_per_minute: int = Field(0, ge=0)
    ai_usd_per_day: float = Field(0.0, ge=0)
    measure_interval_seconds: float = Field(60.0, ge=1, le=86400)


class QuotaExceeded(RateLimited):
    """429 `quota_exceeded`: `details` names the quota, its limit, the use and the reset."""

    code = "quota_exceeded"

    def __init__(self, tenant: str, quota: str, limit: float, used: float, resets_at: float | None) -> None:
        spec = QUOTAS[quota]
        when = _iso(resets_at) if resets_at is not None else None
        tail = f"; it resets at {when}" if when else ""
        if quota == "concurrent_executions":
            tail = "; it frees up as RUNNING executions end"
        elif quota == "stored_bytes":
            tail = "; delete data (executions, logs, parameter or secret versions) to free it"
        super().__init__(
            f"tenant {tenant!r} is over its {quota} quota ({_num(used)} of {_num(limit)} {spec.unit} used){tail}",
            retry_after=max(1.0, resets_at - time.time()) if resets_at is not None else None,  # type: ignore[arg-type]
            details={
                "quota": quota,
                "tenant": tenant,
                "limit": limit,
                "used": round(used, 6),
                "unit": spec.unit,
                "resets_at": when,
            },
        )


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def _num(v: float) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def period_of(quota: str, now: float) -> int:
    size = QUOTAS[quota].period
    return int(now // size * size) if size else 0


def resets_at(quota: str, period: int) -> float | None:
    size = QUOTAS[quota].period
    return float(period + size) if size else None


class Quotas:
    """The limits in force (defaults and overrides) and the counters' operations."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.config: QuotasConfig = rt.config.service_section("quotas", QuotasConfig)
        self.defaults: dict[str, float] = {q: getattr(self.config, q) for q in QUOTAS}
        #: tenant -> {quota: limit} (0: unlimited), refreshed from the store every few seconds
        self.overrides: dict[str, dict[str, float]] = {}
        #: batched adjustments not written yet: (tenant, quota, period) -> amount
        self.pending: dict[tuple[str, str, int], float] = {}
        self._pending_lock = threading.Lock()  # settled from the store's writer thread too
        self._flushing: asyncio.Lock | None = None
        self.exceeded: Any = None  # a Counter by quota, made by `metrics()`

    # ------------------------------------------------------------------ limits
    def limit(self, tenant: str, quota: str) -> float | None:
        """The limit in force; None = unlimited."""
        found = self.overrides.get(tenant)
        value = found[quota] if found is not None and quota in found else self.defaults[quota]
        return value or None

    def source(self, tenant: str, quota: str) -> str:
        found = self.overrides.get(tenant)
        return "tenant" if found is not None and quota in found else "default"

    def _refuse(self, tenant: str, quota: str, limit: float, used: float, period: int) -> QuotaExceeded:
        if self.exceeded is not None:
            self.exceeded.labels(quota).inc()
        return QuotaExceeded(tenant, quota, limit, used, resets_at(quota, period))

    # ------------------------------------------------------------------ inside a transaction
    def charge_tx(self, tx: Any, tenant: str, quota: str, n: float, now: float | None = None) -> int:
        """Add `n` to the counter within the limit, atomically, in the caller's transaction;
        QuotaExceeded (and nothing added) when it would pass the limit. Returns the period."""
        period = period_of(quota, time.time() if now is None else now)
        limit = self.limit(tenant, quota)
        args = {"tenant": tenant, "quota": quota, "period": period, "n": n, "limit": limit}
        if not tx.execute("tenants.charge", args):
            row = tx.fetch_one("tenants.get_used", args)
            raise self._refuse(tenant, quota, limit or 0, row["used"] if row else 0.0, period)
        return period

    def check_level_tx(self, tx: Any, tenant: str, quota: str, used: float) -> None:
        limit = self.limit(tenant, quota)
        if limit is not None and used >= limit:
            raise self._refuse(tenant, quota, limit, used, 0)

    def check_running_tx(self, tx: Any, tenant: str) -> None:
        """The concurrent_executions level, when limited (a start or a redrive, in its transaction)."""
        if self.limit(tenant, "concurrent_executions") is not None:
            row = tx.fetch_one("tenants.running_of", {"tenant": tenant})
            self.check_level_tx(tx, tenant, "concurrent_executions", row["n"] if row else 0)

    def on_start_tx(self, tx: Any, tenant: str, now: float) -> bool:
        """An execution start, in the transaction that inserts it: the concurrent and stored
        levels (only when limited: a count of the tenant's RUNNING executions by index), then
        the day's counter when it is limited. True: it is not, and the start is to be counted
        (`started`) once it committed. Only `tx` is written, so the transaction may be played
        again (`Store.transaction(replayable=True)`)."""
        self.check_running_tx(tx, tenant)
        if self.limit(tenant, "stored_bytes") is not None:
            row = tx.fetch_one("tenants.get_used", {"tenant": tenant, "quota": "stored_bytes", "period": 0})
            self.check_level_tx(tx, tenant, "stored_bytes", row["used"] if row else 0.0)
        if self.limit(tenant, "executions_per_day") is not None:
            self.charge_tx(tx, tenant, "executions_per_day", 1, now)
            return False
        return True

    def started(self, tenant: str, now: float) -> None:
        """A committed start under an unlimited day's quota: counted by the next flush."""
        self.settle(tenant, "executions_per_day", period_of("executions_per_day", now), 1)

    # ------------------------------------------------------------------ reservations
    async def reserve(self, tenant: str, quota: str, n: float) -> tuple[int, float]:
        """Reserve `n` (a transaction of its own) when the quota is limited; (period, reserved).
        Unlimited: nothing is written now, (period, 0); settle the actual use later."""
        now = time.time()
        if self.limit(tenant, quota) is None or n <= 0:
            return period_of(quota, now), 0.0
        period = await self.rt.store.transaction(lambda tx: self.charge_tx(tx, tenant, quota, n, now))
        return period, n

    def settle(self, tenant: str, quota: str, period: int, delta: float) -> None:
        """Adjust a counter by `delta` (actual minus reserved), written by the next flush."""
        if delta:
            key = (tenant, quota, period)
            with self._pending_lock:
                self.pending[key] = self.pending.get(key, 0.0) + delta

    async def flush(self) -> None:
        if not self.pending:
            return
        if self._flushing is None:
            self._flushing = asyncio.Lock()
        async with self._flushing:
            with self._pending_lock:
                batch, self.pending = self.pending, {}
            rows = [{"tenant": t, "quota": q, "period": p, "n": n} for (t, q, p), n in batch.items()]
            if not rows:
                return
            try:
                await self.rt.store.transaction(lambda tx: tx.executemany("tenants.adjust", rows))
            except Exception:
                for (t, q, p), n in batch.items():  # kept for the next flush
                    self.settle(t, q, p, n)
                raise

    # ------------------------------------------------------------------ levels and reading
    async def measure_stored(self) -> None:
        """Set each tenant's stored_bytes to what its rows hold (a read, then one write)."""
        rows = await self.rt.store.fetch_all("tenants.stored_bytes")
        measured = {r["tenant"]: float(r["bytes"] or 0) for r in rows}
        known = await self.rt.store.fetch_all("tenants.current_usage", {"since": 2**62})
        for r in known:
            if r["quota"] == "stored_bytes" and r["tenant"] not in measured:
                measured[r["tenant"]] = 0.0
        items = [{"tenant": t, "quota": "stored_bytes", "period": 0, "n": n} for t, n in measured.items()]
        if items:
            await self.rt.store.transaction(lambda tx: tx.executemany("tenants.set_used", items))

    async def usage(self, tenant: str) -> list[dict[str, Any]]:
        """Every quota of `tenant`: its limit, source, use and reset."""
        await self.flush()
        now = time.time()
        rows = await self.rt.store.fetch_all("tenants.usage_of", {"tenant": tenant})
        counters = {(r["quota"], r["period"]): r["used"] for r in rows}
        running = await self.rt.store.fetch_one("tenants.running_of", {"tenant": tenant})
        out = []
        for quota, spec in QUOTAS.items():
            period = period_of(quota, now)
            if quota == "concurrent_executions":
                used = float(running["n"] if running else 0)
            else:
                used = float(counters.get((quota, period), 0.0))
            reset = resets_at(quota, period)
            out.append(
                {
                    "quota": quota,
                    "limit": self.limit(tenant, quota),
                    "source": self.source(tenant, quota),
                    "used": round(used, 6),
                    "unit": spec.unit,
                    "resets_at": _iso(reset) if reset is not None else None,
                }
            )
        return out

    # ------------------------------------------------------------------ metrics
    def metrics(self, registry: Any) -> None:
        from prometheus_client import Counter, Gauge

        self.g_used = Gauge(
            "aionix_tenant_quota_used",
            "Use of each quota by tenant, in its current period (scraped)",
            ["tenant", "quota"],
            registry=registry,
        )
        self.g_limit = Gauge(
            "aionix_tenant_quota_limit",
            "The limit of each limited quota by tenant (scraped; unlimited quotas have none)",
            ["tenant", "quota"],
            registry=registry,
        )
        self.exceeded = Counter(
            "aionix_quota_exceeded_total",
            "Requests refused with 429 quota_exceeded, by quota",
            ["quota"],
            registry=registry,
        )

    async def refresh_metrics(self) -> None:
        if getattr(self, "g_used", None) is None:
            return
        await self.flush()
        now = time.time()
        rows = await self.rt.store.fetch_all("tenants.current_usage", {"since": int(now // 86400 * 86400)})
        running = await self.rt.store.fetch_all("tenants.running_by_tenant")
        self.g_used.clear()
        self.g_limit.clear()
        tenants: set[str] = set(self.overrides)
        for r in rows:
            if r["period"] == period_of(r["quota"], now):
                self.g_used.labels(r["tenant"], r["quota"]).set(r["used"])
                tenants.add(r["tenant"])
        for r in running:
            self.g_used.labels(r["tenant"], "concurrent_executions").set(r["n"])
            tenants.add(r["tenant"])
        for tenant in tenants:
            for quota in QUOTAS:
                limit = self.limit(tenant, quota)
                if limit is not None:
                    self.g_limit.labels(tenant, quota).set(limit)
