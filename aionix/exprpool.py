"""The expression worker processes (`aionix.exprworker`) that `aionix.expr` evaluates in when
an expression outlives the event loop's inline slice: each one its own address-space limit,
its resident memory watched while a thread waits for it, and killed when it outlives its time
limit. One pool per process, started on first use; `shutdown` stops its workers."""

from __future__ import annotations

import os
import select
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any

from aionix import jsonutil
from aionix.expr import UNDEFINED, Expression, ExpressionError, _engine_error, _limits, _options

_HEADER = struct.Struct(">I")
_PAGE = os.sysconf("SC_PAGE_SIZE")
_WATCH_SECONDS = 0.05  # how often a waiting thread checks its worker's memory


class _OverMemory(Exception):
    """The worker's resident memory went past its budget (it is killed)."""


class _Worker:
    """One `aionix.exprworker` process (used by one thread at a time)."""

    def __init__(self) -> None:
        from aionix import frozen

        if frozen.is_frozen():
            argv = [sys.executable, "--expr-worker"]
        else:
            argv = [sys.executable, "-m", "aionix", "--expr-worker"]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **frozen.worker_env()}
        if os.environ.get("PYTHONPATH"):
            env["PYTHONPATH"] = os.environ["PYTHONPATH"]
        env["AIONIX_EXPR_MEMORY_MB"] = str(int(_limits["memory_mb"]))
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, close_fds=True, start_new_session=True
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.wfd = self.proc.stdin.fileno()
        self.rfd = self.proc.stdout.fileno()
        self.rss_limit = 0
        try:
            self.receive(time.monotonic() + 30.0)  # {"ready": true}: started, limits set
            # what an evaluation may add to the worker's resident memory (the engine reserves
            # its address space up front, so RLIMIT_AS alone would not bound it): watched
            # while the server waits, the worker killed beyond it
            self.rss_limit = self.rss() + int(_limits["memory_mb"]) * 1024 * 1024
        except (TimeoutError, EOFError, OSError):
            self.kill()
            raise ExpressionError(
                "the expression worker process did not start", expression="", jsonata_code=None, position=None
            ) from None

    def kill(self) -> None:
        try:
            self.proc.kill()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()  # type: ignore[union-attr]
            except OSError:
                pass

    def rss(self) -> int:
        try:
            with open(f"/proc/{self.proc.pid}/statm") as f:
                return int(f.read().split()[1]) * _PAGE
        except (OSError, ValueError, IndexError):
            return 0

    def send(self, message: Any) -> None:
        body = jsonutil.dumps(message)
        os.write(self.wfd, _HEADER.pack(len(body)) + body)

    def receive(self, deadline: float) -> Any:
        """The next frame; TimeoutError past `deadline` (monotonic); EOFError if the process died."""
        head = self._read(_HEADER.size, deadline)
        (size,) = _HEADER.unpack(head)
        return jsonutil.loads(self._read(size, deadline))

    def _read(self, n: int, deadline: float) -> bytes:
        chunks = []
        while n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            ready, _, _ = select.select([self.rfd], [], [], min(left, _WATCH_SECONDS))
            if not ready:
                if self.rss_limit and self.rss() > self.rss_limit:
                    raise _OverMemory
                continue
            chunk = os.read(self.rfd, n)
            if not chunk:
                raise EOFError
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)


class _Pool:
    """Worker processes shared by the offload threads; at most `[limits] expression_workers`."""

    def __init__(self, size: int) -> None:
        self.slots = threading.BoundedSemaphore(size)
        self.idle: list[_Worker] = []
        self.lock = threading.Lock()

    def evaluate(self, expression: Expression, data: Any, bindings: Mapping[str, Any] | None) -> Any:
        try:
            text = None if data is None else jsonutil.dumps(data).decode()  # None: no input at all
            values = {k: v for k, v in (bindings or {}).items() if not callable(v)}
            jsonutil.dumps(values)
        except TypeError:
            # not JSON-representable (a huge int…): inline, with the full limits
            return expression._evaluate_here(data, bindings, _limits["timeout"])
        fns = {k: v for k, v in (bindings or {}).items() if callable(v)}
        limit = float(_limits["timeout"])
        request = {"src": expression.source, "data": text, "b": values, "fns": sorted(fns), "lim": _options(limit)}
        # waiting for a worker is not evaluating: a queue behind slow expressions (another
        # tenant's, say) gets a wait of its own, longer than the time limit
        queue = max(5.0, 10 * limit)
        if not self.slots.acquire(timeout=queue):
            raise ExpressionError(
                f"every expression worker stayed busy for {queue:g} s (limits.expression_workers) "
                f"in expression {expression.source!r}",
                expression=expression.source,
                jsonata_code="D1012",
                position=None,
            )
        try:
            with self.lock:
                worker = self.idle.pop() if self.idle else None
            if worker is None or worker.proc.poll() is not None:
                worker = _Worker()
            healthy = False
            try:
                outcome, healthy = self._run(worker, expression, request, fns, limit), True
            finally:
                if healthy:
                    with self.lock:
                        self.idle.append(worker)
                else:
                    worker.kill()
        finally:
            self.slots.release()
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def _run(self, worker: _Worker, expression: Expression, request: Any, fns: Mapping[str, Any], limit: float) -> Any:
        """The result, or the exception to raise (the worker stays usable); raises when the
        worker must go (time limit, memory limit)."""
        source = expression.source
        # the engine stops at `limit` itself; the kill is the backstop, within 2× the limit
        # (1 s: killed at 1.5 s; 100 ms: at 200 ms)
        deadline = time.monotonic() + limit * 1.25 + min(0.25, limit * 0.75)
        failure: BaseException | None = None
        try:
            worker.send(request)
            while True:
                message = worker.receive(deadline)
                if "call" not in message:
                    break
                try:
                    ret = fns[message["call"]](*message.get("args") or ())
                    worker.send({"ret": ret})
                except Exception as exc:  # re-raised below, as the caller raised it
                    failure = exc
                    worker.send({"err": f"{type(exc).__name__}: {exc}"})
        except TimeoutError:
            raise _timeout_error(source, limit, "the expression worker was stopped") from None
        except (EOFError, OSError, _OverMemory):
            raise ExpressionError(
                f"U1001: the evaluation exceeded its memory limit of {_limits['memory_mb']} MB "
                f"(limits.expression_memory_mb) in expression {source!r}",
                expression=source,
                jsonata_code="U1001",
                position=None,
            ) from None
        if failure is not None:
            return failure
        if "out" in message:
            out = message["out"]
            return UNDEFINED if out is None else jsonutil.loads(out)
        if "jerr" in message:
            err = message["jerr"]
            return _engine_error(err.get("code"), str(err.get("msg")), err.get("position"), source)
        return ExpressionError(
            f"{message.get('herr')} in expression {source!r}", expression=source, jsonata_code=None, position=None
        )


def _timeout_error(source: str, limit: float, why: str) -> ExpressionError:
    return ExpressionError(
        f"D1012: Evaluation timeout after {limit * 1000:g} milliseconds ({why}; limits.expression_timeout_ms) "
        f"in expression {source!r}",
        expression=source,
        jsonata_code="D1012",
        position=None,
    )


_the_pool: _Pool | None = None
_pool_lock = threading.Lock()


def pool() -> _Pool:
    global _the_pool
    if _the_pool is None:
        with _pool_lock:
            if _the_pool is None:
                _the_pool = _Pool(max(1, int(_limits["workers"])))
    return _the_pool


def shutdown() -> None:
    """Stop the worker processes (the server's shutdown)."""
    pool = _the_pool
    if pool is None:
        return
    with pool.lock:
        workers, pool.idle = pool.idle, []
    for worker in workers:
        worker.kill()
