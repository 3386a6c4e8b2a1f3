"""The `wasm` runtime: WASI (preview 1) command modules, run by wasmtime inside confined worker
processes — never in the server process.

The JSON event arrives on stdin, the JSON result is read from stdout. Each worker is started
and confined like a Python worker (own uid, rlimits, cgroup, network/mount/PID namespaces where
the host allows; see `aionix.functions.worker`), compiles its version's module once and keeps
it while warm (`aionix.functions.wasm_worker`). In the worker an epoch deadline (10 ms ticks)
bounds the wall time and `Store.set_limits` the linear memory; the worker's cgroup bounds the
rest, so a module's `memory_mb` is charged to the worker, not to the server. WASI preview 1 has
no sockets; only `permissions.read` directories are preopened, read-only. The server keeps a
timer too and kills a worker that overruns the deadline.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

from aionix.errors import ValidationFailed
from aionix.functions.runtimes.base import INIT_TIMEOUT, MEMORY, TIMEOUT, Outcome, RunSpec, Timing, deadline_context
from aionix.functions.runtimes.process import (
    LaunchPlan,
    Pools,
    WorkerGone,
    WorkerStartTimeout,
    worker_gone_outcome,
)

MiB = 1024 * 1024
#: the worker's own memory (interpreter, wasmtime, compiled code) beside the module's
WORKER_OVERHEAD_MB = 160
#: threads of a WASM worker (main, epoch ticker) and the PID-namespace supervisor, with slack
WORKER_TASKS = 16
#: how long past the epoch deadline the server waits before it kills the worker
GRACE_SECONDS = 2.0


class _LazyWasmtime:
    """`wasmtime` loads a ~24 MB native library: the server imports it only to check a module
    at deploy time (the workers run it)."""

    def __getattr__(self, name: str) -> Any:
        import wasmtime as module

        globals()["wasmtime"] = module
        return getattr(module, name)


wasmtime: Any = _LazyWasmtime()


def wasm_bytes(files: dict[str, bytes]) -> tuple[str, bytes]:
    """The module of a package: a `.wasm` file, or a `.wat` text compiled here."""
    for name, data in sorted(files.items()):
        if name.endswith(".wasm"):
            return name, data
    for name, data in sorted(files.items()):
        if name.endswith(".wat"):
            try:
                return name, wasmtime.wat2wasm(data.decode("utf-8"))
            except (wasmtime.WasmtimeError, UnicodeDecodeError) as exc:
                text = str(exc).strip().splitlines()
                raise ValidationFailed(
                    f"code: {name}: {text[0] if text else exc}",
                    details=[{"field": "code", "file": name, "message": "\n".join(text)}],
                ) from None
    raise ValidationFailed(
        "code: no .wasm or .wat file in the package", details=[{"field": "code", "message": "no .wasm or .wat file"}]
    )


def _leb128(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated module")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def exported_functions(data: bytes) -> set[str]:
    """The names of the functions a (validated) binary module exports, read from its export
    section: checking `_start` needs no compilation in the server."""
    names: set[str] = set()
    pos = 8  # magic + version
    while pos < len(data):
        section, pos = data[pos], pos + 1
        size, pos = _leb128(data, pos)
        end = pos + size
        if section == 7:
            count, pos = _leb128(data, pos)
            for _ in range(count):
                length, pos = _leb128(data, pos)
                name = data[pos : pos + length].decode("utf-8", "replace")
                pos += length
                kind, pos = data[pos], pos + 1
                _, pos = _leb128(data, pos)
                if kind == 0:
                    names.add(name)
            return names
        pos = end
    return names


class WasmRuntime:
    name = "wasm"

    def __init__(self, pools: Pools, *, netns: bool, uid_drop: bool, concurrency: int) -> None:
        self.pools = pools
        self.netns = netns
        self.uid_drop = uid_drop
        self.slots = asyncio.Semaphore(concurrency)
        self._engine: Any = None

    def available(self) -> bool:
        return True

    def describe(self) -> dict[str, Any]:
        return {
            "available": True,
            "process": "confined worker (like python)",
            "warm_workers": self.pools.warm_count(),
            "network": "none (WASI preview 1" + (", netns)" if self.netns else ")"),
            "filesystem": "only permissions.read (admin-granted, under [functions] read_roots), read-only",
        }

    def validate(self, files: dict[str, bytes], handler: str) -> None:
        name, data = wasm_bytes(files)
        if self._engine is None:
            self._engine = wasmtime.Engine()
        try:
            wasmtime.Module.validate(self._engine, data)
            exports = exported_functions(data)
        except (wasmtime.WasmtimeError, ValueError, IndexError) as exc:
            raise ValidationFailed(
                f"code: {name}: not a valid WebAssembly module: {str(exc).splitlines()[0] if str(exc) else exc}",
                details=[{"field": "code", "file": name, "message": str(exc)}],
            ) from None
        if "_start" not in exports:
            raise ValidationFailed(
                f"code: {name}: a WASI command must export _start",
                details=[{"field": "code", "file": name, "message": "missing export _start"}],
            )

    def _plan(self, spec: RunSpec) -> LaunchPlan:
        rlimits = {"nofile": max(spec.max_open_files, 64), "fsize": spec.max_file_bytes, "core": 0}
        if self.uid_drop:
            rlimits["nproc"] = WORKER_TASKS
        return LaunchPlan(
            mode="wasm",
            # the declared names are passed in the environment (never on the command line, which
            # every user of the host can read); the worker gives the module only these
            env={**spec.env, **spec.devices_env},
            rlimits=rlimits,
            netns=self.netns,  # WASI preview 1 has no sockets: never any network
            memory_bytes=(spec.memory_mb + WORKER_OVERHEAD_MB) * MiB,
            pids_max=WORKER_TASKS,
            cpu_quota=spec.cpu_quota,
            extra={
                "env_names": sorted(spec.env),
                "memory_mb": spec.memory_mb,
                "timeout_seconds": spec.timeout_seconds,
                "function_name": spec.name,
                "preopens": list(spec.permissions.get("read", [])),
            },
        )

    async def invoke(self, spec: RunSpec, event: Any, context: dict[str, Any]) -> Outcome:
        timing = Timing()
        async with self.slots:
            return timing.stamp(await self._invoke(spec, event, context, timing))

    async def _invoke(self, spec: RunSpec, event: Any, context: dict[str, Any], timing: Timing) -> Outcome:
        key = spec.pool_key()
        started = time.perf_counter()
        try:
            worker, cold, ready = await self.pools.acquire(
                key, lambda: self._plan(spec), spec.code_dir, spec.init_timeout_seconds
            )
        except WorkerStartTimeout as exc:
            timing.init_ms = exc.seconds * 1000
            return Outcome.failure(INIT_TIMEOUT, str(exc), name=INIT_TIMEOUT, stderr=exc.stderr, cold=True)
        except WorkerGone as exc:
            return Outcome.failure("Runtime.WorkerStartFailed", str(exc), name="States.TaskFailed", stderr=exc.stderr)
        if ready is not None and not ready.get("ready"):
            await self.pools.discard(key, worker)
            error = ready.get("error") or {}
            return Outcome.failure(
                "Runtime.InitError",
                str(error.get("errorMessage", "")),
                name="States.TaskFailed",
                trace=list(error.get("trace") or []),
                cold=True,
                duration_ms=(time.perf_counter() - started) * 1000,
            )
        try:
            if cold:
                timing.init_ms = worker.init_ms
            timing.running()  # the invocation timeout starts when the handler is called
            context = deadline_context(context, spec.timeout_seconds)
            await worker.send({"id": uuid.uuid4().hex, "event": event, "context": context})
            answer = await asyncio.wait_for(worker.read_message(), spec.timeout_seconds + GRACE_SECONDS)
        except TimeoutError:
            await self.pools.discard(key, worker)
            return Outcome.failure(
                TIMEOUT,
                f"the function did not finish within {spec.timeout_seconds:g} s",
                name=TIMEOUT,
                cold=cold,
                duration_ms=(time.perf_counter() - started) * 1000,
            )
        except WorkerGone as exc:
            oom = worker.cgroup is not None and worker.cgroup.oom_killed()
            await self.pools.discard(key, worker)
            elapsed = (time.perf_counter() - started) * 1000
            return worker_gone_outcome(spec, exc, oom=oom, cold=cold, elapsed_ms=elapsed, process="the WASM worker")
        except BaseException:
            await self.pools.discard(key, worker)
            raise
        await self.pools.release(key, worker, reuse=not answer.get("fatal"))
        return self.outcome(spec, answer, cold)

    @staticmethod
    def outcome(spec: RunSpec, answer: dict[str, Any], cold: bool) -> Outcome:
        """The invocation's outcome from the worker's report of one module run."""
        stdout, stderr = str(answer.get("stdout", "")), str(answer.get("stderr", ""))
        pages = int(answer.get("memory_pages") or 0)
        used_mb = round(pages * 65536 / MiB, 1) or None
        limit = spec.memory_mb * MiB
        common: dict[str, Any] = {
            "stderr": stderr,
            "duration_ms": float(answer.get("duration_ms") or 0.0),
            "cold": cold,
            "max_memory_mb": used_mb,
        }
        memory_error = Outcome.failure(
            MEMORY,
            f"the function exceeded its memory limit of {spec.memory_mb} MB",
            name=MEMORY,
            stdout=stdout,
            **common,
        )
        if answer.get("memory"):
            return memory_error
        if answer.get("error"):
            error = answer["error"]
            return Outcome.failure(str(error.get("errorType")), str(error.get("errorMessage", "")), **common)
        # wasmtime's Python API has no limiter callback: a module that traps or fails while its
        # memory is within 1/8 of the cap is taken to have hit the cap (memory.grow returned -1)
        near_limit = limit - pages * 65536 < max(limit // 8, MiB)
        trap = answer.get("trap")
        if trap is not None:
            if answer.get("interrupted"):
                return Outcome.failure(
                    TIMEOUT,
                    f"the function did not finish within {spec.timeout_seconds:g} s",
                    name=TIMEOUT,
                    stdout=stdout,
                    **common,
                )
            text = str(trap)
            if near_limit or ("memory" in text.lower() and "limit" in text.lower()):
                return memory_error
            lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
            reason = next(
                (line for line in reversed(lines) if "trap" in line.lower() and "backtrace" not in line),
                lines[-1] if lines else "trap",
            )
            return Outcome.failure("Trap", reason, trace=lines, stdout=stdout, **common)
        exit_code = int(answer.get("exit_code") or 0)
        if exit_code != 0:
            if near_limit:
                return memory_error
            return Outcome.failure("ExitError", f"the module exited with code {exit_code}", stdout=stdout, **common)
        text = stdout.strip()
        if not text:
            return Outcome(ok=True, result=None, **common)
        try:
            return Outcome(ok=True, result=json.loads(text), **common)
        except json.JSONDecodeError:
            # the last line is the result; anything printed before it is log output
            head, _, last = text.rpartition("\n")
            try:
                result = json.loads(last)
            except json.JSONDecodeError:
                return Outcome.failure("Runtime.InvalidOutput", "stdout is not JSON", stdout=stdout, **common)
            return Outcome(ok=True, result=result, stdout=head, **common)

    async def stop(self) -> None:
        await self.pools.stop()
