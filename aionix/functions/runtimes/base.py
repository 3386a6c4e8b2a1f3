"""The interface every function runtime implements, and the types passed across it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson

#: error names a workflow can retry or catch (bus contract in docs/DEVELOPING.md)
TIMEOUT = "Function.Timeout"
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
