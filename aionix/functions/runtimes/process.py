"""Warm worker processes speaking JSON lines over pipes, and the pools that keep them.

A `Worker` is one confined child (see `aionix.functions.worker`). A `Pool` holds the workers
of one version (same code, config and environment); `Pools` caps the total, retires idle
workers after `idle_seconds` and replaces any worker that crashed, timed out or ran out of
memory. The Python and Deno runtimes differ only in the command they start and the framing
of their answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aionix import frozen
from aionix.functions.egress import EGRESS_PORT, EgressGrant, WorkerProxy, receive_listener
from aionix.functions.sandbox import Cgroup, Confinement, kill_uid

log = logging.getLogger("aionix.functions")

STREAM_LIMIT = 32 * 1024 * 1024


class WorkerGone(Exception):
    """The worker exited (or could not start); `returncode` says how."""

    def __init__(self, message: str, returncode: int | None = None, stderr: str = "") -> None:
        super().__init__(message)
        self.returncode = returncode
        self.stderr = stderr


class WorkerStartTimeout(WorkerGone):
    """The worker did not start and load the handler within its init limit."""

    def __init__(self, message: str, seconds: float, stderr: str = "") -> None:
        super().__init__(message, None, stderr)
        self.seconds = seconds


def worker_command(spec: dict[str, Any]) -> list[str]:
    payload = json.dumps(spec)
    if getattr(sys, "frozen", False):
        return [sys.executable, "--worker", payload]
    return [sys.executable, "-I", "-m", "aionix.functions.worker", payload]


@dataclass
class LaunchPlan:
    """How to start one worker: the worker spec (minus the per-worker fields) and its env."""

    mode: str
    env: dict[str, str]
    rlimits: dict[str, int]
    netns: bool
    memory_bytes: int | None
    pids_max: int | None
    extra: dict[str, Any] = field(default_factory=dict)
    command: Callable[[Path], list[str]] | None = None
    marker: bytes | None = None
    #: granted hosts, reached through the server's egress proxy from inside the netns
    egress: EgressGrant | None = None
    #: CPU cores for the worker's cgroup quota (None: no quota)
    cpu_quota: float | None = None


class Worker:
    """One warm, confined child process."""

    def __init__(
        self,
        proc: asyncio.subprocess.Process,
        uid: int | None,
        cgroup: Cgroup | None,
        work_dir: Path,
        marker: bytes | None,
    ) -> None:
        self.proc = proc
        self.uid = uid
        self.cgroup = cgroup
        self.work_dir = work_dir
        self.marker = marker
        self.last_used = time.monotonic()
        self.invocations = 0
        self.killed = False
        self.stderr = bytearray()
        self.stdout_noise: list[str] = []
        self.proxy: WorkerProxy | None = None
        #: how long its start took (process start, confinement, module import), in ms
        self.init_ms: float | None = None
        self._stderr_task = asyncio.ensure_future(self._drain_stderr())

    @property
    def alive(self) -> bool:
        return self.proc.returncode is None and not self.killed

    async def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        while True:
            chunk = await self.proc.stderr.read(65536)
            if not chunk:
                return
            if len(self.stderr) < 1_000_000:
                self.stderr.extend(chunk)

    def take_stderr(self) -> str:
        text = self.stderr.decode("utf-8", "replace")
        self.stderr.clear()
        return text

    async def read_message(self) -> dict[str, Any]:
        """The next protocol line; other stdout lines (Deno) are kept as log output."""
        assert self.proc.stdout is not None
        while True:
            try:
                line = await self.proc.stdout.readline()
            except (ValueError, asyncio.LimitOverrunError) as exc:
                raise WorkerGone(f"the worker's answer was too large: {exc}") from None
            if not line:
                code = await self._wait_exit()
                await asyncio.sleep(0)
                raise WorkerGone(f"the worker exited with {describe_exit(code)}", code, self.take_stderr())
            if self.marker is None:
                return json.loads(line)
            if line.startswith(self.marker):
                return json.loads(line[len(self.marker) :])
            if len(self.stdout_noise) < 10_000:
                self.stdout_noise.append(line.decode("utf-8", "replace").rstrip("\n"))

    async def _wait_exit(self) -> int | None:
        try:
            return await asyncio.wait_for(self.proc.wait(), 5)
        except TimeoutError:
            return None

    async def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(message).encode() + b"\n")
            await self.proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            code = await self._wait_exit()
            raise WorkerGone(f"the worker exited with {describe_exit(code)}", code, self.take_stderr()) from None

    async def kill(self) -> None:
        """Kill the worker, its process group, its cgroup and every process of its uid."""
        self.killed = True
        if self.proxy is not None:
            await self.proxy.close()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        if self.cgroup is not None:
            self.cgroup.kill()
        if self.uid is not None:
            await kill_uid(self.uid)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.proc.wait(), 5)
        self._stderr_task.cancel()
        if self.cgroup is not None:
            for _ in range(20):
                self.cgroup.remove()
                if not any(d.exists() for d in self.cgroup.dirs):
                    break
                await asyncio.sleep(0.05)
        shutil.rmtree(self.work_dir, ignore_errors=True)


def describe_exit(code: int | None) -> str:
    if code is None:
        return "an unknown status"
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"code {code}"


def worker_gone_outcome(
    spec: Any, exc: WorkerGone, *, oom: bool, cold: bool, elapsed_ms: float, process: str, stderr: str | None = None
) -> Any:
    """The outcome of an invocation whose worker died under it: out of memory, out of CPU time
    (`RLIMIT_CPU` sends SIGXCPU) or another exit; `process` names what exited, for the message."""
    from aionix.functions.runtimes.base import MEMORY, TIMEOUT, Outcome

    err = exc.stderr if stderr is None else stderr
    if oom:
        message, name = f"the function exceeded its memory limit of {spec.memory_mb} MB", MEMORY
        return Outcome.failure(name, message, name=name, stderr=err, cold=cold, duration_ms=elapsed_ms)
    if exc.returncode == -signal.SIGXCPU:
        message = f"the function exceeded its CPU time limit of {spec.cpu_seconds:g} s"
        return Outcome.failure(TIMEOUT, message, name=TIMEOUT, stderr=err, cold=cold, duration_ms=elapsed_ms)
    return Outcome.failure(
        "Runtime.ExitError",
        f"{process} exited with {describe_exit(exc.returncode)}" if exc.returncode is not None else str(exc),
        name="Function.Error.Runtime.ExitError",
        stderr=err,
        cold=cold,
        duration_ms=elapsed_ms,
    )


async def spawn_worker(
    conf: Confinement, plan: LaunchPlan, code_dir: Path, start_timeout: float
) -> tuple[Worker, dict[str, Any]]:
    """Start one confined worker and wait for its ready message."""
    try:
        uid = conf.acquire_uid()
    except OSError as exc:
        raise WorkerGone(str(exc)) from None
    cgroup = conf.create_cgroup(plan.memory_bytes, plan.pids_max, plan.cpu_quota)
    serial = f"w{time.monotonic_ns()}"
    work_dir = conf.sandbox_dir / "workers" / serial
    work_dir.mkdir(mode=0o700)
    if uid is not None:
        os.chown(work_dir, uid, uid)
    spec = {
        "mode": plan.mode,
        "uid": uid,
        "netns": plan.netns,
        "mountns": conf.mountns,
        "pidns": conf.pidns,
        "tmp_bytes": conf.tmp_bytes,
        "seccomp": conf.seccomp,
        "rlimits": plan.rlimits,
        "cgroup_procs": cgroup.procs_files() if cgroup else [],
        "work_dir": str(work_dir),
        "code_dir": str(code_dir),
        "parent_pid": os.getpid(),
        **plan.extra,
    }
    if plan.command is not None:
        spec["command"] = plan.command(work_dir)
    channel = child_end = None
    if plan.egress is not None:
        # the worker binds the proxy's listener inside its netns and hands it over this pair
        channel, child_end = socket.socketpair()
        spec["egress_fd"] = child_end.fileno()
        spec["egress_port"] = EGRESS_PORT
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "HOME": str(work_dir),
        "TMPDIR": str(work_dir),
        **plan.env,
        **frozen.worker_env(),  # the single executable: reuse the server's unpacked bundle
    }
    try:
        proc = await asyncio.create_subprocess_exec(
            *worker_command(spec),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=str(work_dir),
            start_new_session=True,
            close_fds=True,
            pass_fds=[child_end.fileno()] if child_end is not None else [],
            limit=STREAM_LIMIT,
        )
    except OSError as exc:
        if channel is not None:
            channel.close()
        conf.release_uid(uid)
        if cgroup:
            cgroup.remove()
        raise WorkerGone(f"cannot start a worker: {exc}") from None
    finally:
        if child_end is not None:
            child_end.close()
    worker = Worker(proc, uid, cgroup, work_dir, plan.marker)
    try:
        ready = await asyncio.wait_for(worker.read_message(), start_timeout)
        if channel is not None and plan.egress is not None:
            # sent before any user code ran, so it is there once the worker is ready
            listener = receive_listener(channel)
            if listener is None:
                raise WorkerGone("the worker did not hand over its egress socket", None, worker.take_stderr())
            worker.proxy = await plan.egress.attach(listener)
    except TimeoutError:
        stderr = worker.take_stderr()
        await retire(conf, worker)
        raise WorkerStartTimeout(
            f"the worker did not start and load the code within {start_timeout:g} s (limits.init_timeout_seconds)",
            start_timeout,
            stderr,
        ) from None
    except WorkerGone:
        await retire(conf, worker)
        raise
    finally:
        if channel is not None:
            channel.close()
    return worker, ready


async def retire(conf: Confinement, worker: Worker) -> None:
    await worker.kill()
    conf.release_uid(worker.uid)


class Pool:
    """The warm workers of one version."""

    def __init__(self, key: str, max_size: int) -> None:
        self.key = key
        self.max_size = max_size
        self.idle: list[Worker] = []
        self.live = 0
        self.changed = asyncio.Condition()
        self.last_used = time.monotonic()


class Pools:
    """Every pool of one runtime, with a global cap and idle retirement."""

    def __init__(
        self, conf: Confinement, *, pool_size: int, max_workers: int, idle_seconds: float, start_timeout: float
    ) -> None:
        self.conf = conf
        self.pool_size = pool_size
        self.max_workers = max_workers
        self.idle_seconds = idle_seconds
        self.start_timeout = start_timeout
        self.pools: dict[str, Pool] = {}
        self._reaper: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._reaper = asyncio.ensure_future(self._reap_loop())

    @property
    def total(self) -> int:
        return sum(p.live for p in self.pools.values())

    def warm_count(self) -> int:
        return sum(len(p.idle) for p in self.pools.values())

    async def acquire(
        self, key: str, plan: Callable[[], LaunchPlan], code_dir: Path, start_timeout: float | None = None
    ) -> tuple[Worker, bool, dict[str, Any] | None]:
        """A worker for `key`: an idle warm one, a new one, or the next one released. A new one
        must be ready within `start_timeout` (the function's init limit; else the pools' own)."""
        pool = self.pools.get(key)
        if pool is None:
            pool = self.pools[key] = Pool(key, self.pool_size)
        pool.last_used = time.monotonic()
        while True:
            while pool.idle:
                worker = pool.idle.pop()
                if worker.alive:
                    return worker, False, None
                pool.live -= 1
                await retire(self.conf, worker)
            if pool.live < pool.max_size:
                if self.total >= self.max_workers:
                    await self._evict_one()
                pool.live += 1
                begun = time.perf_counter()
                try:
                    worker, ready = await spawn_worker(
                        self.conf, plan(), code_dir, self.start_timeout if start_timeout is None else start_timeout
                    )
                    worker.init_ms = (time.perf_counter() - begun) * 1000
                except BaseException:
                    pool.live -= 1
                    async with pool.changed:
                        pool.changed.notify()
                    raise
                return worker, True, ready
            async with pool.changed:
                await pool.changed.wait()

    async def release(self, key: str, worker: Worker, reuse: bool) -> None:
        pool = self.pools.get(key)
        worker.last_used = time.monotonic()
        worker.invocations += 1
        if pool is not None and reuse and worker.alive:
            pool.idle.append(worker)
        else:
            if pool is not None:
                pool.live -= 1
            await retire(self.conf, worker)
        if pool is not None:
            async with pool.changed:
                pool.changed.notify()

    async def discard(self, key: str, worker: Worker) -> None:
        await self.release(key, worker, reuse=False)

    async def _evict_one(self) -> None:
        candidates = [(w.last_used, pool, w) for pool in self.pools.values() for w in pool.idle]
        if not candidates:
            return
        _, pool, worker = min(candidates, key=lambda c: c[0])
        pool.idle.remove(worker)
        pool.live -= 1
        await retire(self.conf, worker)

    async def _reap_loop(self) -> None:
        while True:
            await asyncio.sleep(min(5.0, max(0.2, self.idle_seconds / 4)))
            now = time.monotonic()
            for key, pool in list(self.pools.items()):
                for worker in list(pool.idle):
                    if now - worker.last_used > self.idle_seconds or not worker.alive:
                        pool.idle.remove(worker)
                        pool.live -= 1
                        await retire(self.conf, worker)
                if pool.live == 0 and not pool.idle and now - pool.last_used > self.idle_seconds:
                    self.pools.pop(key, None)

    async def stop(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        for pool in self.pools.values():
            for worker in pool.idle:
                await retire(self.conf, worker)
            pool.idle.clear()
        self.pools.clear()
