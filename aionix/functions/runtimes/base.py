"""The interface every function runtime implements, and the types passed across it."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson

#: error names a workflow can retry or catch (bus contract in docs/DEVELOPING.md)
TIMEOUT = "Function.Timeout"
#: the worker start and the module import (a cold start) took longer than limits.init_timeout_seconds
INIT_TIMEOUT = "Function.InitTimeout"
MEMORY = "Function.MemoryLimitExceeded"


@dataclass
class RunSpec:
    """Everything a runtime needs to run one published version (or $LATEST)."""

    tenant: str
    name: str
    version: str
    runtime: str
    handler: str
    code_sha256: str
    code_dir: Path
    env: dict[str, str]
    timeout_seconds: float
    memory_mb: int
    cpu_seconds: float | None
    max_processes: int
    max_open_files: int
    max_file_bytes: int
    permissions: dict[str, list[str]] = field(default_factory=dict)
    devices_env: dict[str, str] = field(default_factory=dict)
    #: the limit of a cold start (worker start and module import), apart from `timeout_seconds`
    init_timeout_seconds: float = 10.0
    #: CPU cores as the worker cgroup's quota (modules' runtime.resources.cpu); None: no quota
    cpu_quota: float | None = None

    def pool_key(self) -> str:
        """Workers are shared only between invocations with identical code, config and env."""
        material = orjson.dumps(
            [
                self.tenant,
                self.name,
                self.version,
                self.code_sha256,
                self.handler,
                self.env,
                self.memory_mb,
                self.cpu_seconds,
                self.max_processes,
                self.max_open_files,
                self.max_file_bytes,
                self.permissions,
                self.devices_env,
                self.cpu_quota,
            ],
            option=orjson.OPT_SORT_KEYS,
        )
        return hashlib.sha256(material).hexdigest()


@dataclass
class Outcome:
    """The result of one invocation: a value, or an error as data."""

    ok: bool
    result: Any = None
    error: dict[str, Any] | None = None
    #: the bus error name for failures (`Function.Timeout`, `Function.Error.ValueError`, …)
    error_name: str | None = None
    stdout: str = ""
    stderr: str = ""
    duration_ms: float = 0.0
    max_memory_mb: float | None = None
    cold: bool = False
    #: the cold start (worker start and module import), when this invocation had one
    init_ms: float | None = None
    #: from the handler's call to its answer
    run_ms: float | None = None

    @classmethod
    def failure(
        cls, error_type: str, message: str, *, name: str | None = None, trace: list[str] | None = None, **kw: Any
    ) -> Outcome:
        return cls(
            ok=False,
            error={"errorType": error_type, "errorMessage": message, "trace": trace or []},
            error_name=name or f"Function.Error.{error_type}",
            **kw,
        )


class Timing:
    """The two phases of one invocation, measured by the runtime: the cold start (while the
    init limit applies) and the handler's run (while the invocation timeout applies)."""

    __slots__ = ("_run_started", "init_ms", "run_ms")

    def __init__(self) -> None:
        self.init_ms: float | None = None
        self._run_started: float | None = None
        self.run_ms: float | None = None

    def running(self) -> None:
        """The handler is being called now."""
        self._run_started = time.perf_counter()

    def stamp(self, outcome: Outcome) -> Outcome:
        if self._run_started is not None and self.run_ms is None:
            self.run_ms = (time.perf_counter() - self._run_started) * 1000
        outcome.init_ms = None if self.init_ms is None else round(self.init_ms, 3)
        outcome.run_ms = None if self.run_ms is None else round(self.run_ms, 3)
        return outcome


def deadline_context(context: dict[str, Any], timeout_seconds: float) -> dict[str, Any]:
    """The handler's `deadline_ms` counts from its call, not from the invocation's start."""
    return {**context, "deadline_ms": int((time.time() + timeout_seconds) * 1000)}


class FunctionRuntime(Protocol):
    name: str

    def available(self) -> bool:
        """Whether this host can run the runtime at all."""

    def validate(self, files: dict[str, bytes], handler: str) -> None:
        """Deploy-time checks; raise `ValidationFailed` naming file, line and reason."""

    async def invoke(self, spec: RunSpec, event: Any, context: dict[str, Any]) -> Outcome:
        """Run the handler once, confined; never raises for user-code failures."""

    async def stop(self) -> None:
        """Kill every worker."""

    def describe(self) -> dict[str, Any]:
        """Confinement facts for `/healthz`."""
