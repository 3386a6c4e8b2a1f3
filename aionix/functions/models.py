"""Pydantic types of the functions API and of the `[functions]` configuration section."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
Runtime = Literal["python", "deno", "wasm"]


class FunctionsConfig(BaseModel):
    """`[functions]` in config.toml."""

    model_config = ConfigDict(extra="forbid")

    pool_size: int = Field(4, ge=1, le=256)
    max_workers: int = Field(32, ge=1, le=120)
    idle_seconds: float = Field(300.0, gt=0)
    start_timeout_seconds: float = Field(30.0, gt=0)
    deno_path: str = ""
    sandbox_dir: str = ""
    uid_base: int = Field(61000, ge=1000)
    uid_count: int = Field(4096, ge=256)
    cgroups: Literal["auto", "v1", "v2", "off"] = "auto"
    network_namespace: bool = True
    private_tmp: bool = True
    log_max_bytes: int = Field(65536, ge=1024)
    log_retention_days: float = Field(7.0, gt=0)
    max_code_bytes: int = Field(50 * 1024 * 1024, ge=1024)
    wasm_threads: int = Field(4, ge=1, le=64)
    gpu_concurrency: int = Field(1, ge=1, le=64)
    read_roots: list[str] = Field(
        default_factory=list,
        description="directories under which an admin may grant functions permissions.read (none: no grant)",
    )
    allow_unconfined_net: bool = Field(
        False, description="run functions granted permissions.net with the host's whole network where no netns exists"
    )
    allow_hosts: list[str] = Field(
        default_factory=list, description="SSRF guard exceptions for function egress (names, addresses, networks)"
    )
    egress_max_connections: int = Field(256, ge=1, le=65536)
    egress_max_bytes: int = Field(1 << 30, ge=1024, description="bytes per proxied connection, both ways")
    tmp_max_mb: int = Field(128, ge=1, le=1 << 20, description="size of a worker's private /tmp (tmpfs)")
    seccomp: bool = True
    #: an async invocation is started at most this many times: once, then again each time the
    #: node running it died or restarted (a clean stop gives its attempt back); after the last
    #: it fails with Function.AttemptsExhausted (a poison event that kills its node stops there)
    async_max_attempts: int = Field(3, ge=1, le=100)

    @field_validator("allow_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("read_roots", mode="before")
    @classmethod
    def _split_roots(cls, value: Any) -> Any:
        """An environment value without a comma arrives as one string: a one-item list."""
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("read_roots")
    @classmethod
    def _absolute_roots(cls, value: list[str]) -> list[str]:
        for root in value:
            if not root.startswith("/"):
                raise ValueError(f"{root!r} is not an absolute path")
        return value


class Limits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    timeout_seconds: float = Field(3.0, gt=0, le=900)
    #: the cold start (worker start, module import) has its own limit: Function.InitTimeout
    init_timeout_seconds: float = Field(10.0, gt=0, le=900)
    memory_mb: int = Field(256, ge=32, le=16384)
    cpu_seconds: float | None = Field(None, gt=0, le=3600)
    max_processes: int = Field(32, ge=1, le=4096)
    max_open_files: int = Field(64, ge=16, le=65536)
    max_file_bytes: int = Field(64 * 1024 * 1024, ge=0)


class Permissions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    net: list[str] = Field(
        default_factory=list,
        max_length=64,
        description="hosts (host, host:port or [v6]:port), reached through the egress proxy; admin only",
    )
    read: list[str] = Field(
        default_factory=list,
        max_length=64,
        description="absolute paths the code may read, under [functions] read_roots; admin only",
    )
    env: list[str] = Field(default_factory=list, max_length=64, description="Deno: extra environment names it may read")


class GpuRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    required: bool = True
    vendor: Literal["nvidia", "amd", "intel", "none"] = "nvidia"
    count: int = Field(1, ge=0, le=16)


class Resources(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gpu: GpuRequest | None = None


class Code(BaseModel):
    """Exactly one of: `source` (with `filename`), `zip_base64`, `tar_base64`, `wasm_base64`."""

    model_config = ConfigDict(
        extra="forbid",
        # the schema says what `_exactly_one` checks: one (non-null) of the four
        json_schema_extra={
            "oneOf": [
                {"required": [key], "properties": {key: {"type": "string"}}}
                for key in ("source", "zip_base64", "tar_base64", "wasm_base64")
            ]
        },
    )

    source: str | None = Field(None, description="one source file (a .wat text for wasm)")
    filename: str | None = Field(None, max_length=255, description="name of the source file (default by runtime)")
    zip_base64: str | None = None
    tar_base64: str | None = Field(None, description="a tar or tar.gz archive")
    wasm_base64: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Code:
        given = [k for k in ("source", "zip_base64", "tar_base64", "wasm_base64") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of source, zip_base64, tar_base64, wasm_base64")
        return self


class FunctionConfig(BaseModel):
    """The configuration part of a function (snapshotted into each version)."""

    model_config = ConfigDict(extra="forbid")

    handler: str | None = Field(
        None,
        max_length=256,
        description="python: module.function (main.handler); deno: entry file (main.ts); wasm: ignored",
    )
    description: str = Field("", max_length=1024)
    env: dict[str, str] = Field(default_factory=dict)
    limits: Limits = Field(default_factory=Limits)
    permissions: Permissions = Field(default_factory=Permissions)
    secrets: list[str] = Field(default_factory=list, max_length=64)
    resources: Resources = Field(default_factory=Resources)


class CreateFunction(FunctionConfig):
    name: str = Field(..., pattern=NAME)
    runtime: Runtime
    code: Code
    publish: bool = Field(True, description="publish version 1 at once")


class UpdateFunction(BaseModel):
    """Replace $LATEST's code and/or configuration (publish a version to make it immutable)."""

    model_config = ConfigDict(extra="forbid")

    code: Code | None = None
    config: FunctionConfig | None = None


class PublishVersion(BaseModel):
    """Publish a version; `code` and `config` (optional) replace $LATEST's first."""

    model_config = ConfigDict(extra="forbid")

    code: Code | None = None
    config: FunctionConfig | None = None
    description: str | None = Field(None, max_length=1024)


class VersionInfo(BaseModel):
    function: str
    version: str
    trn: str
    runtime: str
    handler: str
    code_sha256: str
    sha256: str
    code_size: int
    config: dict[str, Any]
    description: str
    created_at: float


class AliasRouting(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str = Field(..., pattern=r"^[0-9]+$")
    weight: float = Field(..., ge=0, le=1)


class PutAlias(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str = Field(..., pattern=r"^([0-9]+|\$LATEST)$")
    description: str = Field("", max_length=1024)
    routing: AliasRouting | None = Field(None, description="send `weight` of the traffic to another version (canary)")


class Traffic(BaseModel):
    """Set the weighted routing of an alias; `weight: 0` or `version: null` removes it."""

    model_config = ConfigDict(extra="forbid")

    version: str | None = Field(None, pattern=r"^[0-9]+$")
    weight: float = Field(0, ge=0, le=1)


class AliasInfo(BaseModel):
    function: str
    alias: str
    trn: str
    version: str
    routing: AliasRouting | None = None
    description: str
    updated_at: float


class FunctionInfo(BaseModel):
    name: str
    trn: str
    runtime: str
    handler: str
    description: str
    config: dict[str, Any]
    code_sha256: str
    code_size: int
    latest_version: str | None
    created_at: float
    updated_at: float
    versions: list[str] = Field(default_factory=list)
    aliases: list[AliasInfo] = Field(default_factory=list)


class FunctionSummary(BaseModel):
    name: str
    trn: str
    runtime: str
    description: str
    latest_version: str | None
    updated_at: float


class InvokeQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    qualifier: str | None = Field(None, max_length=64, pattern=r"^(\$LATEST|[A-Za-z0-9][A-Za-z0-9_.-]*)$")
    mode: Literal["sync", "async"] = "sync"


class Invocation(BaseModel):
    invocation_id: str
    function: str
    trn: str
    version: str
    qualifier: str | None
    mode: str
    status: Literal["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT"]
    result: Any = None
    error: dict[str, Any] | None = None
    cold_start: bool | None = None
    duration_ms: float | None = None
    #: the cold start (worker start and module import); null for a warm worker
    init_duration_ms: float | None = None
    #: the handler's run, which `limits.timeout_seconds` bounds
    run_duration_ms: float | None = None
    billed_memory_mb: int | None = None
    max_memory_used_mb: float | None = None
    idempotency_key: str | None = None
    trace_id: str | None = None
    started_at: float
    stopped_at: float | None = None
    #: async: how many times it was started (a node that died running it, or a restart, runs it
    #: again under the same invocation id and idempotency key); null for sync
    attempts: int | None = None


class LogQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    invocation_id: str | None = Field(None, max_length=64)
    after: int | None = Field(None, ge=0, description="only lines with a larger id (for --follow)")
    since: float | None = Field(None, ge=0)
    limit: int | None = Field(None, ge=1, le=10000)


class LogLine(BaseModel):
    id: int
    invocation_id: str
    version: str
    ts: float
    stream: str
    message: str


class LogPage(BaseModel):
    items: list[LogLine]
    last_id: int | None


class InvocationQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int | None = Field(None, ge=1, le=10000)
    cursor: str | None = Field(None, max_length=64)
