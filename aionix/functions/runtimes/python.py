"""The `python` runtime: `def handler(event, context)` (sync or async) in warm, confined
worker processes of the interpreter that runs Aionix — never inside the server process."""

from __future__ import annotations

import ast
import asyncio
import os
import time
import uuid
from typing import Any

from aionix.errors import ValidationFailed
from aionix.functions.egress import NetPolicy, proxy_env
from aionix.functions.runtimes.base import (
    INIT_TIMEOUT,
    MEMORY,
    TIMEOUT,
    Outcome,
    RunSpec,
    Timing,
    deadline_context,
)
from aionix.functions.runtimes.process import (
    LaunchPlan,
    Pools,
    WorkerGone,
    WorkerStartTimeout,
    worker_gone_outcome,
)
from aionix.functions.sandbox import uid_task_count

MiB = 1024 * 1024


def _fail(file: str, line: int | None, reason: str) -> ValidationFailed:
    where = f"{file}:{line}" if line else file
    return ValidationFailed(
        f"code: {where}: {reason}", details=[{"field": "code", "file": file, "line": line, "message": reason}]
    )


def validate_python(files: dict[str, bytes], handler: str) -> None:
    """Every `.py` file compiles, and the handler module defines the handler at top level."""
    trees: dict[str, ast.Module] = {}
    for path, data in sorted(files.items()):
        if not path.endswith(".py"):
            continue
        try:
            source = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _fail(path, None, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        try:
            trees[path] = ast.parse(source, filename=path)
        except SyntaxError as exc:
            raise _fail(path, exc.lineno, f"SyntaxError: {exc.msg}") from None
    module, _, attr = handler.rpartition(".")
    if not module or not attr:
        raise ValidationFailed(
            "handler: must be 'module.function', e.g. 'main.handler'",
            details=[{"field": "handler", "message": "must be 'module.function'"}],
        )
    base = module.replace(".", "/")
    path = next((p for p in (f"{base}.py", f"{base}/__init__.py") if p in trees), None)
    if path is None:
        raise _fail(f"{base}.py", None, f"handler module {module!r} not found in the code")
    for node in trees[path].body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == attr:
            return
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == attr for t in node.targets):
            return
        if isinstance(node, (ast.ImportFrom, ast.Import)) and any((a.asname or a.name) == attr for a in node.names):
            return
    raise _fail(path, None, f"handler function {attr!r} is not defined at the top level of {path}")


class PythonRuntime:
    name = "python"

    def __init__(
        self, pools: Pools, *, netns: bool, uid_drop: bool, log_max_bytes: int, net: NetPolicy | None = None
    ) -> None:
        self.pools = pools
        self.netns = netns
        self.net = net or NetPolicy(None, False)
        self.uid_drop = uid_drop
        self.log_max_bytes = log_max_bytes

    def available(self) -> bool:
        return True

    def validate(self, files: dict[str, bytes], handler: str) -> None:
        validate_python(files, handler)

    def describe(self) -> dict[str, Any]:
        return {
            "available": True,
            "warm_workers": self.pools.warm_count(),
            "network": "denied (netns); granted hosts through the egress proxy" if self.netns else "not enforced",
        }

    def _plan(self, spec: RunSpec) -> LaunchPlan:
        rlimits = {
            "as": max(spec.memory_mb, 32) * MiB,
            "nofile": spec.max_open_files,
            "fsize": spec.max_file_bytes,
            "core": 0,
        }
        if self.uid_drop:
            rlimits["nproc"] = spec.max_processes
        else:
            # without a uid of its own RLIMIT_NPROC counts every process of the server's user:
            # allow what runs now plus the function's share
            rlimits["nproc"] = uid_task_count(os.getuid()) + spec.max_processes
        hosts = spec.permissions.get("net") or []
        egress = self.net.egress.grant(hosts, spec.max_open_files) if hosts and self.net.egress else None
        return LaunchPlan(
            mode="python",
            # glibc reserves 64 MB of address space per thread arena: keep RLIMIT_AS meaningful
            env={"MALLOC_ARENA_MAX": "2", **spec.env, **spec.devices_env, **(proxy_env() if egress else {})},
            rlimits=rlimits,
            # granted hosts are reached through the proxy from inside the namespace
            netns=self.netns and (egress is not None or not hosts),
            egress=egress,
            memory_bytes=(spec.memory_mb + 64) * MiB,
            pids_max=spec.max_processes + 3,  # the worker, its PID-namespace init and supervisor
            cpu_quota=spec.cpu_quota,
            extra={"handler": spec.handler, "log_max_bytes": self.log_max_bytes, "cpu_seconds": spec.cpu_seconds},
        )

    async def invoke(self, spec: RunSpec, event: Any, context: dict[str, Any]) -> Outcome:
        timing = Timing()
        return timing.stamp(await self._invoke(spec, event, context, timing))

    async def _invoke(self, spec: RunSpec, event: Any, context: dict[str, Any], timing: Timing) -> Outcome:
        problem = self.net.problem(spec.permissions.get("net") or [])
        if problem:
            return Outcome.failure("Runtime.NetworkUnconfined", f"permissions.net: {problem}")
        key = spec.pool_key()
        started = time.perf_counter()
        try:
            worker, cold, ready = await self.pools.acquire(
                key, lambda: self._plan(spec), spec.code_dir, spec.init_timeout_seconds
            )
        except WorkerStartTimeout as exc:
            timing.init_ms = exc.seconds * 1000
            return Outcome.failure(
                INIT_TIMEOUT,
                str(exc),
                name=INIT_TIMEOUT,
                stderr=exc.stderr,
                cold=True,
                duration_ms=(time.perf_counter() - started) * 1000,
            )
        except WorkerGone as exc:
            return Outcome.failure("Runtime.WorkerStartFailed", str(exc), name="States.TaskFailed", stderr=exc.stderr)
        if cold:
            timing.init_ms = worker.init_ms
        init_out = init_err = ""
        if ready is not None:
            init_out, init_err = ready.get("stdout", ""), ready.get("stderr", "")
            if not ready.get("ready"):
                await self.pools.discard(key, worker)
                error = ready.get("error") or {}
                return Outcome(
                    ok=False,
                    error={
                        "errorType": error.get("errorType", "Runtime.InitError"),
                        "errorMessage": error.get("errorMessage", ""),
                        "trace": error.get("trace", []),
                    },
                    error_name=f"Function.Error.{error.get('errorType', 'Runtime.InitError')}",
                    stdout=init_out,
                    stderr=init_err,
                    cold=True,
                    duration_ms=(time.perf_counter() - started) * 1000,
                )
        request_id = uuid.uuid4().hex
        try:
            # the invocation timeout starts now, when the handler is called (the cold start had its own)
            timing.running()
            context = deadline_context(context, spec.timeout_seconds)
            await worker.send({"id": request_id, "event": event, "context": context})
            answer = await asyncio.wait_for(worker.read_message(), spec.timeout_seconds)
        except TimeoutError:
            await self.pools.discard(key, worker)
            return Outcome.failure(
                TIMEOUT,
                f"the function did not finish within {spec.timeout_seconds:g} s",
                name=TIMEOUT,
                stdout=init_out,
                cold=cold,
                duration_ms=(time.perf_counter() - started) * 1000,
            )
        except WorkerGone as exc:
            oom = worker.cgroup is not None and worker.cgroup.oom_killed()
            await self.pools.discard(key, worker)
            elapsed = (time.perf_counter() - started) * 1000
            return worker_gone_outcome(
                spec, exc, oom=oom, cold=cold, elapsed_ms=elapsed, process="the function's process"
            )
        except BaseException:
            await self.pools.discard(key, worker)
            raise
        await self.pools.release(key, worker, reuse=not answer.get("fatal"))
        elapsed = (time.perf_counter() - started) * 1000
        logs = {"stdout": init_out + answer.get("stdout", ""), "stderr": init_err + answer.get("stderr", "")}
        memory = round(answer.get("max_rss_kb", 0) / 1024, 1) or None
        if answer.get("ok"):
            return Outcome(
                ok=True, result=answer.get("result"), duration_ms=elapsed, max_memory_mb=memory, cold=cold, **logs
            )
        error = answer.get("error") or {}
        if answer.get("memory"):
            return Outcome.failure(
                MEMORY,
                f"the function exceeded its memory limit of {spec.memory_mb} MB",
                name=MEMORY,
                trace=error.get("trace"),
                duration_ms=elapsed,
                max_memory_mb=memory,
                cold=cold,
                **logs,
            )
        return Outcome.failure(
            str(error.get("errorType") or "Error"),
            str(error.get("errorMessage", "")),
            trace=list(error.get("trace") or []),
            duration_ms=elapsed,
            max_memory_mb=memory,
            cold=cold,
            **logs,
        )

    async def stop(self) -> None:
        await self.pools.stop()
