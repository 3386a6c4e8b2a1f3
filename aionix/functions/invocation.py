"""Invoking a function: routing a qualifier to a version, resolving secrets and GPUs, running
the runtime, recording the outcome and publishing failures. Mixed into `FunctionsService`.

Async invocations are durable work (issue 17): the RUNNING record keeps the event (as sent; it
is erased when the invocation ends, never served by the API), the caller's identifiers and the
version picked, and is claimed by the node that accepted it (`claimed_by`, `attempts`: the
claim's epoch). A node re-runs its own at start (SQLite: all of them); on PostgreSQL every
[cluster] claim_interval_seconds a node takes, with FOR UPDATE SKIP LOCKED, those of nodes
whose lease ran out. A re-run keeps the invocation id, idempotency key and trace id, and its
record is written only under the claim that ran it. A clean stop gives its attempt back; after
[functions] async_max_attempts starts the invocation fails as Function.AttemptsExhausted.
(Workflow task calls are sync calls inside an execution: StepFlow's own claims re-run them,
with the task's idempotency key.)"""

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


def _context_record(ctx: CallContext) -> dict[str, Any]:
    """What an async invocation keeps of its caller to run again: identifiers, never a key or token."""
    from aionix.api.auth import principal_record

    return {
        "principal": ctx.principal,
        "caller": ctx.caller,
        "on_behalf_of": principal_record(ctx.on_behalf_of) if ctx.on_behalf_of is not None else None,
    }


def _context_from_record(tenant: str, row: dict[str, Any]) -> CallContext:
    from aionix.api.auth import principal_from_record

    kept = jsonutil.loads(row["context"]) if row["context"] else {}
    behalf = kept.get("on_behalf_of")
    return CallContext(
        tenant=tenant,
        trace_id=row["trace_id"] or uuid.uuid4().hex,
        principal=kept.get("principal"),
        idempotency_key=row["idempotency_key"],
        caller=kept.get("caller"),
        on_behalf_of=principal_from_record(behalf) if behalf else None,
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
    #: the async invocations running here: id -> (node, attempt), the claim their record is written under
    _claims: dict[str, tuple[str, int]]

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
        version: str | None = None,
        claim: tuple[str, int] | None = None,
    ) -> dict[str, Any]:
        """Invoke once and record it; function failures are data in the returned record.
        `version`: the version already picked for `qualifier` (an async invocation runs the
        version its RUNNING record names, again after a crash); `claim`: an async invocation's
        (node, attempt), under which alone its record is written."""
        started = time.time()
        target = await self._target(tenant, name, version or qualifier)
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
        if claim is not None:
            claim = self._claims.get(invocation_id, claim)  # claimed again while it ran here
            record["attempts"] = claim[1]
        self.records.add(tenant, record, outcome, claim)
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
        node = self.rt.cluster.node_id
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
            "started_at": time.time(),
            "attempts": 1,
        }
        # durable before it is answered: what it needs to run again (the event as sent, the
        # caller's identifiers) and this node's claim, attempt 1
        await self.records.running(
            {
                "id": invocation_id,
                "tenant": tenant,
                "name": name,
                "version": target["version"],
                "qualifier": qualifier,
                "idempotency_key": ctx.idempotency_key,
                "trace_id": ctx.trace_id,
                "started_at": record["started_at"],
                "event": _json(event),
                "context": _json(_context_record(ctx)),
                "node": node,
            },
        )
        self._launch_async(tenant, record, event, ctx, (node, 1), reservation)
        return record

    # ------------------------------------------------------------------ async invocations
    def _launch_async(
        self,
        tenant: str,
        record: dict[str, Any],
        event: Any,
        ctx: CallContext,
        claim: tuple[str, int],
        reservation: tuple[int, float] | None,
    ) -> None:
        """Run a claimed async invocation here in the background; its record is written under
        `claim`. A clean stop cancels it and gives the claim back (`release_async`)."""
        invocation_id = record["invocation_id"]
        self._claims[invocation_id] = claim

        async def background() -> None:
            try:
                await self.ready()
                await self.run(
                    tenant,
                    record["function"],
                    record["qualifier"],
                    event,
                    ctx,
                    invocation_id=invocation_id,
                    mode="async",
                    reservation=reservation,
                    version=record["version"],
                    claim=claim,
                )
            except asyncio.CancelledError:
                raise  # a stop: the claim stays in `_claims` and is given back
            except Exception as exc:
                log.exception("async invocation %s failed", invocation_id)
                await self._fail_async(
                    tenant,
                    record,
                    self._claims.get(invocation_id, claim),
                    "Runtime.Error",
                    getattr(exc, "message", None) or str(exc),
                    "States.TaskFailed",
                )
            self._claims.pop(invocation_id, None)

        task = asyncio.ensure_future(background())
        self._async.add(task)
        task.add_done_callback(self._async.discard)

    async def _fail_async(
        self,
        tenant: str,
        record: dict[str, Any],
        claim: tuple[str, int],
        error_type: str,
        message: str,
        error_name: str,
    ) -> None:
        failed = Outcome.failure(error_type, message, name=error_name)
        self.records.add(
            tenant,
            {
                **record,
                "status": "FAILED",
                "error": {**(failed.error or {}), "error": failed.error_name},
                "stopped_at": time.time(),
                "attempts": claim[1],
            },
            failed,
            claim,
        )
        await self.rt.publish_event(
            tenant,
            "aionix.functions",
            "Function Invocation Failed",
            {
                "function": record["function"],
                "trn": record["trn"],
                "version": record["version"],
                "invocation_id": record["invocation_id"],
                "error": error_name,
                "errorType": error_type,
                "errorMessage": message,
            },
        )

    async def claim_async(self, *, own: bool = False, everything: bool = False) -> int:
        """Claim RUNNING async invocations (`functions.claim_async_invocations`: their attempt
        goes up, so a run their previous owner still has going cannot write its record) and run
        them again here, under the same invocation id, idempotency key and trace. `own`: this
        node's from before its restart; `everything`: all of them (SQLite: one node); neither:
        those of nodes whose lease ran out (PostgreSQL, every [cluster] claim_interval_seconds)."""
        cluster = self.rt.cluster
        params = cluster.claim_params(own=own, everything=everything)
        rows = await self.store.transaction(lambda tx: tx.fetch_all("functions.claim_async_invocations", params))
        for row in rows:
            claim = (cluster.node_id, int(row["attempts"]))
            if row["id"] in self._claims:
                self._claims[row["id"]] = claim  # running here already: it writes under the new claim
                continue
            self._resume_async(row, claim)
        if rows and not (own or everything):
            cluster.stats["claimed"] += len(rows)
        return len(rows)

    def _resume_async(self, row: dict[str, Any], claim: tuple[str, int]) -> None:
        tenant, name, qualifier = row["tenant"], row["name"], row["qualifier"]
        record = {
            "invocation_id": row["id"],
            "function": name,
            "trn": _trn(tenant, name, qualifier),
            "version": row["version"],
            "qualifier": qualifier,
            "mode": "async",
            "status": "RUNNING",
            "idempotency_key": row["idempotency_key"],
            "trace_id": row["trace_id"],
            "started_at": row["started_at"],
            "attempts": claim[1],
        }
        limit = self.cfg.async_max_attempts  # type: ignore[attr-defined]
        failure: tuple[str, str, str] | None = None
        if row["event"] is None:  # accepted before events were kept (an older server)
            failure = (
                "Runtime.Lost",
                "the server that accepted this invocation stopped before it ended, and its event was not kept",
                "Function.Lost",
            )
        elif claim[1] > limit:
            failure = (
                "Runtime.AttemptsExhausted",
                f"the node running this invocation stopped during each of its {limit} attempts "
                "([functions] async_max_attempts)",
                "Function.AttemptsExhausted",
            )
        if failure is not None:
            log.warning("async invocation %s of %s: %s", row["id"], name, failure[1])
            self.rt.spawn(self._fail_async(tenant, record, claim, *failure), f"function-fail-{row['id']}")
            return
        log.info("async invocation %s of %s: running it again (attempt %d)", row["id"], name, claim[1])
        ctx = _context_from_record(tenant, row)
        self._launch_async(tenant, record, jsonutil.loads(row["event"]), ctx, claim, None)

    async def release_async(self) -> None:
        """At a clean stop, after the runs were cancelled: give back the claims of those that did
        not end (and their attempt: they did not fail), for any node, or this one restarted."""
        for invocation_id, (node, attempt) in list(self._claims.items()):
            try:
                await self.store.execute(
                    "functions.release_async_invocation", {"id": invocation_id, "node": node, "attempt": attempt}
                )
            except Exception as exc:  # it is re-run anyway once this node's lease is gone
                log.warning("giving back async invocation %s failed: %s", invocation_id, exc)
        self._claims.clear()

    async def claim_loop(self) -> None:
        """Many nodes: take over the async invocations of nodes whose lease ran out."""
        cluster = self.rt.cluster
        while True:
            await asyncio.sleep(cluster.config.claim_interval_seconds)
            if not cluster.holds_leases() or cluster.fenced:
                continue
            try:
                n = await self.claim_async()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("claiming async invocations failed: %s", getattr(exc, "message", None) or exc)
                continue
            if n:
                log.info("node %s took over %d async invocation(s) whose node lost its lease", cluster.node_id, n)

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
