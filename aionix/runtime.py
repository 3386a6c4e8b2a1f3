"""The running instance: configuration, store, bus, metrics, authentication, the services.

`Runtime.start()` prepares everything that can fail (data dir, lock, migrations, master key)
once the server has bound its port; the first admin key is made by `create_first_key()` when
the server is serving; `stop()` stops the services (which
checkpoint their work) and closes the store.
"""

from __future__ import annotations

import asyncio
import fcntl
import importlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aionix import __version__, expr, jsonutil, telemetry
from aionix.api.auth import KeyAuthenticator, Principal, key_row, new_key
from aionix.api.limits import FailureCounter, TokenBuckets
from aionix.bus import Bus
from aionix.config import Config
from aionix.errors import ConfigError
from aionix.loops import running_loop
from aionix.metrics import Metrics
from aionix.store import Store, open_store

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.routing import BaseRoute

    from aionix.api.endpoint import Api

log = logging.getLogger("aionix")

#: Service packages, started in this order; each has a `plugin.create(runtime)`.
SERVICE_PACKAGES = (
    "vault",
    "iam",
    "params",
    "connectors",
    "functions",
    "stepflow",
    "triggers",
    "ai",
    "agents",
    "modules",
)
#: Started before the server answers (`Runtime.start_core`); the others load while it serves.
CORE_SERVICES = ("vault",)

Resolver = Callable[[Any], Awaitable[dict[str, Any] | None]]


@dataclass
class ServicePlugin:
    """What a service package contributes to the runtime."""

    name: str
    service: Any
    api: Api | None = None
    routes: list[BaseRoute] = field(default_factory=list)
    start: Callable[[], Awaitable[None]] | None = None
    stop: Callable[[], Awaitable[None]] | None = None


class Runtime:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.started_at = time.time()
        self.metrics = Metrics()
        self.bus = Bus(self.metrics.registry, default_timeout=config.limits.bus_timeout_seconds)
        self.store: Store = open_store(config)
        self.metrics.attach(self)  # commit latency from the store; levels read at each scrape
        telemetry.register_metrics(self.metrics.registry)  # spans exported and dropped (tracing)
        self.authenticator = KeyAuthenticator(self.store)
        sec = config.security
        self.key_buckets = TokenBuckets(sec.rate_limit_per_key, sec.rate_limit_per_key_burst)
        self.ip_buckets = TokenBuckets(sec.rate_limit_per_ip, sec.rate_limit_per_ip_burst)
        self.auth_failures = FailureCounter(sec.auth_failures_per_minute)
        from aionix.iam.tenants import TenantControl

        self.tenants = TenantControl(self)  # suspensions and quotas (aionix/iam/tenants.py)
        self.quotas = self.tenants.quotas
        from aionix.iam.policy_engine import PolicyEngine

        self.policies = PolicyEngine(self)  # policies on every call (aionix/iam/policy_engine.py)
        self.bus.authorize = self.policies.authorize_bus  # bus calls made on behalf of a principal
        from aionix.iam import audit as audit_chain

        audit_chain.configure(audit_chain.audit_config(self))  # PII masks, before anything is written
        self.plugins: list[ServicePlugin] = []
        self.services: dict[str, Any] = {}
        self.resolvers: dict[tuple[str, str], Resolver] = {}
        self.health: dict[str, Any] = {}
        self.base_url = ""
        self.listen_port: int | None = None  # the bound API port, once known
        self.initial_admin_key: str | None = None
        self.event_sinks: list[Callable[[str, str, str, Any], Awaitable[None]]] = []
        self._lock_fd: int | None = None
        #: background tasks owned by the runtime, each with what to call once it is done
        #: (`spawn`; a dict: O(1) removal of each finished one)
        self._tasks: dict[asyncio.Task[Any], Callable[[], Any] | None] = {}
        from aionix.cluster import Cluster

        self.cluster = Cluster(self)  # this node: its id, heartbeat, leases and messages (cluster.py)

    # ------------------------------------------------------------------ lifecycle
    def prepare_data_dir(self) -> Path:
        data = self.config.data_dir
        try:
            data.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"config error: database.data_path: cannot create {data}: {exc.strerror}") from None
        if not os.access(data, os.W_OK | os.X_OK):
            raise ConfigError(f"config error: database.data_path: {data} is not writable")
        probe = data / ".write-test"
        try:
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise ConfigError(f"config error: database.data_path: {data} is not writable: {exc.strerror}") from None
        fd = os.open(data / "aionix.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise ConfigError(f"config error: database.data_path: {data} is in use by another aionix process") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock_fd = fd
        return data

    async def start(self, base_url: str = "") -> None:
        await self.start_core(base_url)
        await self.start_services()

    async def start_core(self, base_url: str = "") -> None:
        """What must work before the server answers anything: the data dir, the store and the
        core services (the vault: a bad master key fails the start). `/healthz` needs no more."""
        self.base_url = base_url
        self.prepare_data_dir()
        limits = self.config.limits
        expr.configure(
            timeout_ms=limits.expression_timeout_ms,
            max_depth=limits.expression_max_depth,
            max_array_items=limits.expression_max_array_items,
            max_string_bytes=limits.expression_max_string_bytes,
            max_result_bytes=limits.expression_max_result_bytes,
            memory_mb=limits.expression_memory_mb,
            workers=limits.expression_workers,
        )
        telemetry.configure(self.config.telemetry)  # off unless an endpoint is set (imports nothing then)
        await self.store.start()
        await self.cluster.start()
        await self.tenants.start()
        # Until every service is up, a call to one not loaded yet waits for it (`Bus.loading`)
        # and platform events are held, then delivered in order.
        self.bus.loading = asyncio.Event()
        self._held_events: list[tuple[str, str, str, Any]] | None = []
        await self._load_services(CORE_SERVICES)

    async def start_services(self) -> None:
        """The other services, which the server loads while it already answers `/healthz`: StepFlow
        and the services before it first (executions resume, back to work within a second of a
        restart), then the later ones. Every module is imported off the loop, which meanwhile
        serves requests and runs the resumed executions."""
        rest = tuple(name for name in SERVICE_PACKAGES if name not in CORE_SERVICES)
        try:
            split = rest.index("stepflow") + 1
            await self._load_services(rest[:split], off_loop=True)
            await self._load_services(rest[split:], off_loop=True)
        finally:
            self.bus.loading.set()
            held, self._held_events = self._held_events, None
        for event in held or ():
            await self.publish_event(*event)
        self._tasks[asyncio.create_task(self._prune_loop(), name="aionix-core-pruner")] = None
        from aionix.iam.audit import maintain as audit_maintenance

        self._tasks[asyncio.create_task(audit_maintenance(self), name="aionix-audit-chain")] = None

    async def _load_services(self, names: tuple[str, ...], off_loop: bool = False) -> None:
        """Import and create the plugins of `names` (in order), then start them (in order)."""
        loaded: list[ServicePlugin] = []
        for name in names:
            try:
                if off_loop:
                    module = await asyncio.to_thread(importlib.import_module, f"aionix.{name}.plugin")
                else:
                    module = importlib.import_module(f"aionix.{name}.plugin")
            except ModuleNotFoundError as exc:
                if exc.name in (f"aionix.{name}", f"aionix.{name}.plugin"):
                    continue
                raise
            plugin: ServicePlugin = module.create(self)
            self.plugins.append(plugin)
            loaded.append(plugin)
            self.services[plugin.name] = plugin.service
        for plugin in loaded:
            if plugin.start is not None:
                await plugin.start()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for plugin in reversed(self.plugins):
            if plugin.stop is not None:
                try:
                    await plugin.stop()
                except Exception:
                    log.exception("stopping %s failed", plugin.name)
        await self.tenants.stop()
        await self.cluster.stop()
        await self.store.close()
        from aionix import exprpool

        exprpool.shutdown()  # the expression worker processes
        await asyncio.to_thread(telemetry.shutdown)  # the spans still queued are exported
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def spawn(self, coro: Awaitable[Any], name: str, *, then: Callable[[], Any] | None = None) -> asyncio.Task[Any]:
        """A background task owned by the runtime (cancelled on stop). `then` is called once it
        is done, however it ended (even cancelled before its first step), in the same done
        callback (each callback costs the task a copy of the context)."""
        if asyncio.iscoroutine(coro):
            task = running_loop().create_task(coro, name=name)
        else:  # another awaitable (a future)
            task = asyncio.ensure_future(coro)
            task.set_name(name)
        self._tasks[task] = then
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        then = self._tasks.pop(task, None)
        if then is not None:
            then()

    async def create_first_key(self, deliver: Callable[[str], Awaitable[bool]]) -> str | None:
        """On a database without keys: a cross-tenant admin key, stored only once `deliver(key)`
        has handed it to the user (a profile, the terminal): a start that fails before then
        leaves no key behind, so the next start makes and shows one again. None otherwise."""
        row = await self.store.fetch_one("core.count_keys")
        if row and row["n"]:
            return None
        key = new_key()
        if not await deliver(key):
            return None
        record = key_row(key, tenant="default", name="initial-admin", role="admin", cross_tenant=True, created_by=None)
        await self.store.execute("core.insert_key", record)
        self.initial_admin_key = key
        return key

    async def _prune_loop(self) -> None:
        sec = self.config.security
        while True:
            await asyncio.sleep(3600)
            now = time.time()
            try:
                await self.store.execute(
                    "core.prune_idempotency", {"before": now - sec.idempotency_retention_hours * 3600}
                )
                await self.store.execute("core.prune_audit", {"before": now - sec.audit_retention_days * 86400})
            except Exception:
                log.exception("pruning failed")

    # ------------------------------------------------------------------ helpers
    async def audit(
        self,
        request: Request | None,
        principal: Principal | None,
        action: str,
        *,
        status: int | None = None,
        resource: str | None = None,
        details: Any = None,
    ) -> None:
        await self.store.execute(
            "core.insert_audit",
            self.audit_row(request, principal, action, status=status, resource=resource, details=details),
        )

    def audit_row(
        self,
        request: Request | None,
        principal: Principal | None,
        action: str,
        *,
        status: int | None = None,
        resource: str | None = None,
        details: Any = None,
    ) -> dict[str, Any]:
        """An audit row, for services that write it inside their own transaction (S5)."""
        return {
            "ts": time.time(),
            "tenant": principal.tenant if principal else None,
            "key_id": principal.key_id if principal else None,
            "ip": request.client.host if request is not None and request.client else None,
            "method": request.method if request is not None else None,
            "path": request.url.path if request is not None else None,
            "action": action,
            "resource": resource,
            "status": status,
            "details": jsonutil.dumps(details).decode() if details is not None else None,
        }

    async def publish_event(self, tenant: str, source: str, type: str, detail: Any) -> None:
        """Publish a platform event (`{source, type, detail}`) to every subscriber (the triggers
        service). Delivery problems are logged, never raised into the publisher."""
        held = getattr(self, "_held_events", None)
        if held is not None:  # the services are still loading: delivered once they are all up
            held.append((tenant, source, type, detail))
            return
        for sink in list(self.event_sinks):
            try:
                await sink(tenant, source, type, detail)
            except Exception:
                log.exception("event sink failed for %s %s", source, type)

    def endpoints(self) -> list[Any]:
        from aionix.api.admin import api as core_api
        from aionix.iam.tenants import api as tenants_api

        out = list(core_api.endpoints) + list(tenants_api.endpoints)
        from aionix.iam.audit_routes import api as audit_api
        from aionix.iam.policy_routes import api as policy_api

        out += policy_api.endpoints + audit_api.endpoints
        from aionix.api.cluster_routes import api as cluster_api

        out += cluster_api.endpoints
        for plugin in self.plugins:
            if plugin.api is not None:
                out.extend(plugin.api.endpoints)
        return out

    def describe(self) -> dict[str, Any]:
        return {
            "version": __version__,
            "uptime_seconds": round(time.time() - self.started_at, 3),
            "node": self.cluster.describe(),
            **self.health,
        }
