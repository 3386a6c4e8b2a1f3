"""Tenants: management for cross-tenant admins, suspension, quotas and usage.

A tenant is created explicitly (`POST /api/v1/tenants`) or exists implicitly through its keys
(listed with the defaults). Suspending a tenant stops its keys (403 `tenant_suspended`; a
cross-tenant admin key is never stopped, so an instance cannot lock its operators out) and its
triggers (schedules do not fire, webhooks are refused); nothing is deleted, and resuming
restores both. Every node learns of a suspension within `REFRESH_SECONDS` (at once on the
node that made it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from aionix import jsonutil
from aionix.api.endpoint import Api, Call, Page, PageQuery
from aionix.errors import Conflict, Forbidden, NotFound
from aionix.iam.quotas import QUOTAS, Quotas

if TYPE_CHECKING:
    from aionix.runtime import Runtime

log = logging.getLogger("aionix.tenants")

#: How often each node re-reads suspensions and quota overrides.
REFRESH_SECONDS = 2.0
#: How often batched quota settlements are written.
FLUSH_SECONDS = 1.0

TENANT_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"


class TenantControl:
    """Per runtime: the suspended tenants (read by authentication, the scheduler and webhooks)
    and the quotas, kept fresh by a background loop."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.quotas = Quotas(rt)
        #: mutated in place: the authenticator holds the same set
        self.suspended: set[str] = set()
        rt.authenticator.suspended = self.suspended
        self.quotas.metrics(rt.metrics.registry)
        self._task: asyncio.Task[Any] | None = None
        #: bumped by each local change, so that a refresh read before it does not undo it
        self.generation = 0

    async def start(self) -> None:
        await self.refresh()
        await self.quotas.measure_stored()
        self._task = asyncio.create_task(self._loop(), name="aionix-tenants")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            await self.quotas.flush()

    async def refresh(self) -> None:
        generation = self.generation
        rows = await self.rt.store.fetch_all("tenants.suspended_tenants")
        overrides = await self.rt.store.fetch_all("tenants.overrides")
        if generation != self.generation:  # changed here meanwhile: the next refresh reads it
            return
        names = {r["name"] for r in rows}
        if names != self.suspended:
            self.suspended.clear()
            self.suspended.update(names)
        self.quotas.overrides = {r["name"]: _limits(r["quotas"]) for r in overrides}

    async def _loop(self) -> None:
        last_refresh = last_measure = last_prune = time.monotonic()
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            now = time.monotonic()
            try:
                await self.quotas.flush()
                if now - last_refresh >= REFRESH_SECONDS:
                    last_refresh = now
                    await self.refresh()
                if now - last_measure >= self.quotas.config.measure_interval_seconds:
                    last_measure = now
                    await self.quotas.measure_stored()
                if now - last_prune >= 3600:
                    last_prune = now
                    await self.rt.store.execute("tenants.prune_usage", {"before": time.time() - 2 * 86400})
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("tenants: refreshing suspensions and quotas failed")

    def is_suspended(self, tenant: str) -> bool:
        return tenant in self.suspended


def _limits(text: str | None) -> dict[str, float]:
    data = jsonutil.loads(text) if text else {}
    return {k: v for k, v in data.items() if k in QUOTAS and v is not None}


# ---------------------------------------------------------------------- API
api = Api("tenants")


class QuotaLimits(BaseModel):
    """Per-tenant limits; a missing or null field takes the default of `[quotas]`; 0 = unlimited."""

    model_config = ConfigDict(extra="forbid")

    executions_per_day: int | None = Field(None, ge=0, le=2**53)
    concurrent_executions: int | None = Field(None, ge=0, le=2**53)
    stored_bytes: int | None = Field(None, ge=0, le=2**53)
    function_gb_seconds_per_day: float | None = Field(None, ge=0, le=1e15)
    webhooks_per_minute: int | None = Field(None, ge=0, le=2**53)
    ai_usd_per_day: float | None = Field(None, ge=0, le=1e15)


class CreateTenant(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., pattern=TENANT_PATTERN)
    quotas: QuotaLimits | None = None


class Tenant(BaseModel):
    name: str
    status: Literal["active", "suspended"]
    quotas: dict[str, float] = Field(..., description="the tenant's overrides (the rest take [quotas])")
    created_at: float | None = None
    created_by: str | None = None
    suspended_at: float | None = None


class QuotaUsage(BaseModel):
    quota: str
    limit: float | None = Field(..., description="null: unlimited")
    source: Literal["default", "tenant"]
    used: float
    unit: str
    resets_at: str | None = Field(..., description="ISO 8601 UTC; null for levels (concurrent, stored)")


class TenantUsage(BaseModel):
    tenant: str
    status: Literal["active", "suspended"]
    quotas: list[QuotaUsage]


def _cross(call: Call) -> None:
    if call.principal is None or not call.principal.cross_tenant:
        raise Forbidden("managing tenants needs a cross-tenant admin key")


def _tenant(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": row["name"],
        "status": row["status"],
        "quotas": _limits(row["quotas"]),
        "created_at": row["created_at"],
        "created_by": row["created_by"],
        "suspended_at": row["suspended_at"],
    }


def _control(call: Call) -> TenantControl:
    return call.rt.tenants  # type: ignore[attr-defined,no-any-return]


def _ensure(tx: Any, name: str, by: str | None) -> dict[str, Any]:
    """The tenant's row; one is made for a tenant known only from its keys; 404 otherwise."""
    row = tx.fetch_one("tenants.get_tenant", {"name": name})
    if row is not None:
        return row
    keys = tx.fetch_one("tenants.tenant_has_keys", {"name": name})
    if not keys or not keys["n"]:
        raise NotFound(f"tenant {name!r} not found")
    tx.execute("tenants.ensure_tenant", {"name": name, "now": time.time(), "by": by})
    found = tx.fetch_one("tenants.get_tenant", {"name": name})
    assert found is not None
    return found


@api.post("/api/v1/tenants", role="admin", body=CreateTenant, response=Tenant, status=201)
async def create_tenant(call: Call) -> dict[str, Any]:
    """Create a tenant (cross-tenant admins); give it keys with `POST /api/v1/keys`."""
    _cross(call)
    body: CreateTenant = call.body
    quotas = body.quotas.model_dump(exclude_none=True) if body.quotas else {}
    by = call.principal.key_id if call.principal else None

    def fn(tx: Any) -> dict[str, Any]:
        if tx.fetch_one("tenants.get_tenant", {"name": body.name}) is not None:
            raise Conflict(f"tenant {body.name!r} already exists", details={"field": "name"})
        keys = tx.fetch_one("tenants.tenant_has_keys", {"name": body.name})
        if keys and keys["n"]:
            raise Conflict(f"tenant {body.name!r} already exists (it has keys)", details={"field": "name"})
        now = time.time()
        tx.execute(
            "tenants.insert_tenant",
            {"name": body.name, "quotas": jsonutil.dumps(quotas).decode(), "now": now, "by": by},
        )
        row = tx.fetch_one("tenants.get_tenant", {"name": body.name})
        assert row is not None
        return row

    row = await call.rt.store.transaction(fn)
    await _control(call).refresh()
    return _tenant(row)


@api.get("/api/v1/tenants", role="admin", query=PageQuery, response=Page[Tenant])
async def list_tenants(call: Call) -> dict[str, Any]:
    """Every tenant, by name: created ones and those known from their keys (cross-tenant admins)."""
    _cross(call)
    limit = call.page_limit(call.query.limit)
    rows = await call.rt.store.fetch_all("tenants.list_tenants", {"cursor": call.query.cursor, "limit": limit + 1})
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": [_tenant(r) for r in rows], "next_cursor": rows[-1]["name"] if more else None}


async def _set_status(call: Call, status: str) -> dict[str, Any]:
    _cross(call)
    name = call.path["tenant"]
    by = call.principal.key_id if call.principal else None

    def fn(tx: Any) -> dict[str, Any]:
        _ensure(tx, name, by)
        now = time.time()
        tx.execute(
            "tenants.set_status",
            {"name": name, "status": status, "suspended_at": now if status == "suspended" else None, "now": now},
        )
        row = tx.fetch_one("tenants.get_tenant", {"name": name})
        assert row is not None
        return row

    row = await call.rt.store.transaction(fn)
    control = _control(call)
    control.generation += 1
    if status == "suspended":
        control.suspended.add(name)
    else:
        control.suspended.discard(name)
    call.rt.authenticator.forget()
    call.rt.cluster.changed("tenants")
    return _tenant(row)


@api.post("/api/v1/tenants/{tenant}/suspend", role="admin", response=Tenant)
async def suspend_tenant(call: Call) -> dict[str, Any]:
    """Suspend a tenant: its keys are refused and its triggers stop; nothing is deleted."""
    return await _set_status(call, "suspended")


@api.post("/api/v1/tenants/{tenant}/resume", role="admin", response=Tenant)
async def resume_tenant(call: Call) -> dict[str, Any]:
    """Resume a suspended tenant: its keys and triggers work again."""
    return await _set_status(call, "active")


@api.put("/api/v1/tenants/{tenant}/quotas", role="admin", body=QuotaLimits, response=Tenant)
async def put_tenant_quotas(call: Call) -> dict[str, Any]:
    """Set a tenant's quota overrides (replacing the previous ones; null or absent: the default)."""
    _cross(call)
    name = call.path["tenant"]
    quotas = call.body.model_dump(exclude_none=True)
    by = call.principal.key_id if call.principal else None

    def fn(tx: Any) -> dict[str, Any]:
        _ensure(tx, name, by)
        tx.execute("tenants.set_quotas", {"name": name, "quotas": jsonutil.dumps(quotas).decode(), "now": time.time()})
        row = tx.fetch_one("tenants.get_tenant", {"name": name})
        assert row is not None
        return row

    control = _control(call)
    await control.quotas.flush()  # counts kept in memory while unlimited are in the store before a limit applies
    row = await call.rt.store.transaction(fn)
    control.generation += 1
    call.rt.cluster.changed("tenants")
    if quotas:
        control.quotas.overrides[name] = _limits(row["quotas"])
    else:
        control.quotas.overrides.pop(name, None)
    return _tenant(row)


@api.get("/api/v1/tenants/{tenant}/usage", role="admin", response=TenantUsage)
async def tenant_usage(call: Call) -> dict[str, Any]:
    """A tenant's quotas: limit, use and reset of each (its own admins, or cross-tenant admins)."""
    name = call.path["tenant"]
    assert call.principal is not None
    if name != call.principal.tenant and not call.principal.cross_tenant:
        raise Forbidden("this key may only read its own tenant's usage")
    row = await call.rt.store.fetch_one("tenants.get_tenant", {"name": name})
    if row is None:
        keys = await call.rt.store.fetch_one("tenants.tenant_has_keys", {"name": name})
        if not keys or not keys["n"]:
            raise NotFound(f"tenant {name!r} not found")
    control = _control(call)
    return {
        "tenant": name,
        "status": "suspended" if control.is_suspended(name) else "active",
        "quotas": await control.quotas.usage(name),
    }
