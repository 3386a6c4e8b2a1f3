"""Invoking a function: routing a qualifier to a version, resolving secrets and GPUs, running
the runtime, recording the outcome and publishing failures. Mixed into `FunctionsService`."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aionix import jsonutil, telemetry
from aionix import trn as trnlib
from aionix.bus import BusError, CallContext
from aionix.errors import BadRequest, NotFound
from aionix.functions import code as codelib
from aionix.functions import gpu as gpulib
from aionix.functions import grants
from aionix.functions.runtimes.base import INIT_TIMEOUT, TIMEOUT, FunctionRuntime, Outcome, RunSpec
from aionix.redact import SecretSet

if TYPE_CHECKING:
    from aionix.functions.records import InvocationRecords
    from aionix.functions.sandbox import Confinement

log = logging.getLogger("aionix.functions")
LATEST = "$LATEST"
ENV_UNSAFE = re.compile(r"[^A-Za-z0-9_]")


def _json(value: Any) -> str:
    return jsonutil.dumps(value).decode()


def _trn(tenant: str, name: str, qualifier: str | None = None) -> str:
    base = f"trn:aionixfn:{tenant}:function/{name}"
    return f"{base}:{qualifier}" if qualifier else base


def new_invocation_id() -> str:
    """Sortable by time (newest last), unique."""
    return f"{time.time_ns() // 1000:016x}{uuid.uuid4().hex[:12]}"


def _redacted(outcome: Outcome, redaction: SecretSet) -> Outcome:
    return dataclasses.replace(
        outcome,
        result=redaction.value(outcome.result),
        error=redaction.value(outcome.error),
        error_name=redaction.text(outcome.error_name) if outcome.error_name else outcome.error_name,
        stdout=redaction.text(outcome.stdout),
        stderr=redaction.text(outcome.stderr),
    )


GB_SECONDS = "function_gb_seconds_per_day"  # the tenant quota (aionix/iam/quotas.py)


class SecretProblem(BadRequest):
    code = "secret_unavailable"


class GrantRevoked(BadRequest):
    code = "permission_denied"


class Invocations:
    rt: Any
    store: Any
    conf: Confinement | None
    gpu: gpulib.GpuScheduler
    records: InvocationRecords
    _versions: dict[tuple[str, str, int], dict[str, Any]]
    _async: set[asyncio.Task[Any]]

    def _runtime(self, name: str) -> FunctionRuntime:
        raise NotImplementedError

    def protected_dirs(self) -> list[Path]:
        raise NotImplementedError

    def _permissions(self, config: dict[str, Any]) -> dict[str, list[str]]:
        """The version's grants, read paths resolved and checked again: `read_roots` may have
        changed (or a symlink moved) since it was deployed."""
        permissions = dict(config.get("permissions") or {})
        roots = self.cfg.read_roots  # type: ignore[attr-defined]
        reads, problem = grants.resolved_reads(permissions.get("read") or [], roots, self.protected_dirs())
        if problem is not None:
            raise GrantRevoked(f"{problem} (grant revoked by the server's configuration)")
        permissions["read"] = reads
        return permissions

    async def ready(self) -> None:
        raise NotImplementedError

    async def _target(self, tenant: str, name: str, qualifier: str | None) -> dict[str, Any]:
        """The version row (without code) an invocation runs, after alias routing."""
        if qualifier in (None, LATEST):
            row = await self.store.fetch_one("functions.get_function_meta", {"tenant": tenant, "name": name})
            if row is None:
                raise NotFound(f"function {name!r} not found", details={"trn": _trn(tenant, name)})
            return {**row, "version": LATEST, "source": "functions.get_function"}
        assert qualifier is not None
        version = qualifier
        if not (qualifier.isascii() and qualifier.isdigit() and len(qualifier) <= 18):  # else not a version
            alias = await self.store.fetch_one(
                "functions.get_alias", {"tenant": tenant, "name": name, "alias": qualifier}
            )
            if alias is None:
                raise NotFound(
                    f"function {name!r} has no alias or version {qualifier!r}",
                    details={"trn": _trn(tenant, name, qualifier)},
                )
            version = self.pick_version(alias["version"], alias["routing_version"], alias["routing_weight"])
        key = (tenant, name, int(version))
        cached = self._versions.get(key)
        if cached is None:
            row = await self.store.fetch_one(
                "functions.get_version_meta", {"tenant": tenant, "name": name, "version": int(version)}
            )
            if row is None:
                raise NotFound(
                    f"version {version} of function {name!r} not found", details={"trn": _trn(tenant, name, version)}
                )
            cached = self._versions[key] = {**row, "version": str(row["version"]), "source": "functions.get_version"}
        return cached

    async def _code_dir(self, tenant: str, name: str, target: dict[str, Any]) -> Path:
        assert self.conf is not None
        root = self.conf.sandbox_dir / "code"
        path = root / target["code_sha256"]
        if (path / ".complete").exists():
            return path
        params = {"tenant": tenant, "name": name}
        if target["source"] == "functions.get_version":
            params["version"] = int(target["version"])
        row = await self.store.fetch_one(target["source"], params)
        if row is None:
            raise NotFound(f"function {name!r} not found")
        return await asyncio.to_thread(codelib.materialize, root, row["code_sha256"], row["code"])

    async def _secrets(
        self, tenant: str, name: str, secrets: list[str], ctx: CallContext, redaction: SecretSet | None = None
    ) -> dict[str, str]:
        """The granted secrets' values, read as the function (CredVault checks its TRN against
        each secret's `readers`); every value joins the invocation's redaction set."""
        values: dict[str, str] = {}
        ctx = ctx.child(caller=_trn(tenant, name), secrets=redaction if redaction is not None else ctx.secrets)
        for secret in secrets:
            target = f"trn:credvault:{tenant}:credential/{secret}"
            if not self.rt.bus.has_target(target):
                raise SecretProblem(f"secret {secret!r}: the secrets vault is not available on this server")
            try:
                value = await self.rt.bus.invoke(target, {"op": "resolve", "reader": _trn(tenant, name)}, ctx)
            except NotFound:
                raise SecretProblem(f"secret {secret!r} does not exist") from None
            except Exception as exc:
                raise SecretProblem(
                    f"secret {secret!r} could not be read: {getattr(exc, 'message', None) or type(exc).__name__}"
                ) from None
            values[ENV_UNSAFE.sub("_", secret)] = value if isinstance(value, str) else _json(value)
        return values

    async def run(
        self,
        tenant: str,
        name: str,
        qualifier: str | None,
        event: Any,
        ctx: CallContext,
        *,
        invocation_id: str,
        mode: str,
        reservation: tuple[int, float] | None = None,
    ) -> dict[str, Any]:
        """Invoke once and record it; function failures are data in the returned record."""
        started = time.time()
        target = await self._target(tenant, name, qualifier)
        config = jsonutil.loads(target["config"])
        limits = config.get("limits", {})
        # function_gb_seconds_per_day: memory x timeout reserved now, settled to memory x duration
        memory_gb = int(limits.get("memory_mb", 256)) / 1024
        if reservation is None:
            reservation = await self._reserve(tenant, limits)
        record: dict[str, Any] = {
            "invocation_id": invocation_id,
            "function": name,
            "trn": _trn(tenant, name, qualifier),
            "version": target["version"],
            "qualifier": qualifier,
            "mode": mode,
            "idempotency_key": ctx.idempotency_key,
            "trace_id": ctx.trace_id,
            "started_at": started,
            "billed_memory_mb": limits.get("memory_mb", 256),
        }
        context = {
            "invocation_id": invocation_id,
            "function_name": name,
            "function_version": target["version"],
            "invoked_function_trn": record["trn"],
            "tenant": tenant,
            "memory_limit_in_mb": limits.get("memory_mb", 256),
            "deadline_ms": int((started + float(limits.get("timeout_seconds", 3))) * 1000),
            "idempotency_key": ctx.idempotency_key,
            "trace_id": ctx.trace_id,
        }
        gpu = (config.get("resources") or {}).get("gpu")
        devices: list[int] = []
        # the granted secrets (and those of the workflow that invoked it) are masked in the
        # result, the error, the logs and the failure event (aionix/redact.py)
        redaction = SecretSet.within(ctx.secrets)
        try:
            secrets = await self._secrets(tenant, name, config.get("secrets", []), ctx, redaction)
            env = {**config.get("env", {}), **secrets}
            if gpu:
                devices = await self.gpu.acquire(gpu["vendor"], gpu["count"], gpu["required"])
            spec = RunSpec(
                tenant=tenant,
                name=name,
                version=target["version"],
                runtime=target["runtime"],
                handler=target["handler"],
                code_sha256=target["code_sha256"],
                code_dir=await self._code_dir(tenant, name, target),
                env=env,
                timeout_seconds=float(limits.get("timeout_seconds", 3)),
                init_timeout_seconds=float(limits.get("init_timeout_seconds", 10)),
                memory_mb=int(limits.get("memory_mb", 256)),
                cpu_seconds=limits.get("cpu_seconds"),
                max_processes=int(limits.get("max_processes", 32)),
                max_open_files=int(limits.get("max_open_files", 64)),
                max_file_bytes=int(limits.get("max_file_bytes", 64 << 20)),
                permissions=self._permissions(config),
                devices_env=gpulib.GpuScheduler.environment(gpu["vendor"], devices) if gpu else {},
            )
            outcome = await self._traced(target["runtime"], spec, event, context, record)
        except SecretProblem as exc:
            outcome = Outcome.failure("Function.SecretUnavailable", exc.message, name="Function.SecretUnavailable")
        except GrantRevoked as exc:
            outcome = Outcome.failure("Function.PermissionDenied", exc.message, name="Function.PermissionDenied")
        except gpulib.NoGpu as exc:
            outcome = Outcome.failure("Function.GpuUnavailable", exc.message, name="Function.GpuUnavailable")
        finally:
            if devices and gpu:
                await self.gpu.release(gpu["vendor"], devices)
        if redaction:
            outcome = _redacted(outcome, redaction)
        self.rt.quotas.settle(
            tenant, GB_SECONDS, reservation[0], memory_gb * (outcome.duration_ms or 0) / 1000 - reservation[1]
        )
        timed_out = outcome.error_name in (TIMEOUT, INIT_TIMEOUT)
        status = "SUCCEEDED" if outcome.ok else ("TIMED_OUT" if timed_out else "FAILED")
        record.update(
            status=status,
            result=outcome.result if outcome.ok else None,
            error=None if outcome.ok else {**(outcome.error or {}), "error": outcome.error_name},
            cold_start=outcome.cold,
            duration_ms=round(outcome.duration_ms, 3),
            init_duration_ms=outcome.init_ms,
            run_duration_ms=outcome.run_ms,
            max_memory_used_mb=outcome.max_memory_mb,
            stopped_at=time.time(),
        )
        self.records.add(tenant, record, outcome)
        if not outcome.ok:
            await self.rt.publish_event(
                tenant,
                "aionix.functions",
                "Function Invocation Failed",
                {
                    "function": name,
                    "trn": record["trn"],
                    "version": record["version"],
                    "invocation_id": invocation_id,
                    "error": outcome.error_name,
                    "errorType": (outcome.error or {}).get("errorType"),
                    "errorMessage": (outcome.error or {}).get("errorMessage"),
                },
            )
        if self.conf is not None:
            self.refresh_health()
        return record

    async def _reserve(self, tenant: str, limits: dict[str, Any]) -> tuple[int, float]:
        """Reserve memory (GB) x timeout of the tenant's GB-seconds (429 quota_exceeded when over)."""
        most = int(limits.get("memory_mb", 256)) / 1024 * float(limits.get("timeout_seconds", 3))
        return await self.rt.quotas.reserve(tenant, GB_SECONDS, most)

    async def _traced(
        self, runtime: str, spec: RunSpec, event: Any, context: dict[str, Any], record: dict[str, Any]
    ) -> Outcome:
        """Run the invocation in its runtime under a span (telemetry.py): the worker has no network,
        so its side is recorded here as child spans from the timings its runtime measured over
        the worker's channel (`init`, the cold start, and `handler`, the handler's run)."""
        trace_id = record["trace_id"]
        token = telemetry.current_trace.set(trace_id)  # the log lines of this invocation
        try:
            tracing = telemetry.tracer
            if tracing is None:
                return await self._runtime(runtime).invoke(spec, event, context)
            attrs = {
                "aionix.function": record["function"],
                "aionix.function_version": record["version"],
                "aionix.invocation_id": record["invocation_id"],
                "aionix.runtime": runtime,
            }
            with tracing.start(f"function {record['function']}", trace_id=trace_id, attrs=attrs) as span:
                outcome = await self._runtime(runtime).invoke(spec, event, context)
                end = time.time_ns()
                span.set("aionix.cold_start", outcome.cold)
                if not outcome.ok:
                    span.fail(outcome.error_name or "Function.Error")
                run_ns = int((outcome.run_ms or 0) * 1e6)
                if outcome.init_ms is not None:
                    init_end = end - run_ns
                    init = tracing.start("function init", parent=span, start_ns=init_end - int(outcome.init_ms * 1e6))
                    init.end(init_end)
                if outcome.run_ms is not None:
                    handler = tracing.start("function handler", parent=span, start_ns=end - run_ns)
                    if not outcome.ok:
                        handler.fail(outcome.error_name or "Function.Error")
                    handler.end(end)
            return outcome
        finally:
            telemetry.current_trace.reset(token)

    async def invoke(
        self, tenant: str, name: str, qualifier: str | None, event: Any, ctx: CallContext, mode: str = "sync"
    ) -> dict[str, Any]:
        trnlib.validate_name(name)
        await self.ready()
        invocation_id = new_invocation_id()
        if mode == "sync":
            return await self.run(tenant, name, qualifier, event, ctx, invocation_id=invocation_id, mode="sync")
        target = await self._target(tenant, name, qualifier)
        reservation = await self._reserve(tenant, jsonutil.loads(target["config"]).get("limits", {}))
        now = time.time()
        record = {
            "invocation_id": invocation_id,
            "function": name,
            "trn": _trn(tenant, name, qualifier),
            "version": target["version"],
            "qualifier": qualifier,
            "mode": "async",
            "status": "RUNNING",
            "idempotency_key": ctx.idempotency_key,
            "trace_id": ctx.trace_id,
            "started_at": now,
        }
        await self.records.running(
            {
                "id": invocation_id,
                "tenant": tenant,
                "name": name,
                "version": target["version"],
                "qualifier": qualifier,
                "mode": "async",
                "status": "RUNNING",
                "result": None,
                "error": None,
                "cold_start": None,
                "duration_ms": None,
                "billed_memory_mb": None,
                "max_memory_mb": None,
                "idempotency_key": ctx.idempotency_key,
                "trace_id": ctx.trace_id,
                "started_at": now,
                "stopped_at": None,
            },
        )

        async def background() -> None:
            try:
                await self.run(
                    tenant,
                    name,
                    qualifier,
                    event,
                    ctx,
                    invocation_id=invocation_id,
                    mode="async",
                    reservation=reservation,
                )
            except Exception as exc:
                log.exception("async invocation %s failed", invocation_id)
                failed = Outcome.failure(
                    "Runtime.Error", getattr(exc, "message", None) or str(exc), name="States.TaskFailed"
                )
                self.records.add(
                    tenant,
                    {
                        **record,
                        "status": "FAILED",
                        "error": {**(failed.error or {}), "error": failed.error_name},
                        "stopped_at": time.time(),
                    },
                    failed,
                )

        task = asyncio.ensure_future(background())
        self._async.add(task)
        task.add_done_callback(self._async.discard)
        return record

    async def execute(self, target: Any, payload: Any, ctx: CallContext) -> Any:
        """Bus executor for `trn:aionixfn:{tenant}:function/{name}[:{qualifier}]`."""
        record = await self.invoke(target.tenant, target.path, target.qualifier, payload, ctx)
        if record["status"] == "SUCCEEDED":
            return record["result"]
        error = record.get("error") or {}
        name = error.get("error") or "States.TaskFailed"
        raise BusError(
            name,
            f"{error.get('errorType')}: {error.get('errorMessage')}",
            details={"invocation_id": record["invocation_id"], "version": record["version"]},
        )
