"""The agent package manifest (`apiVersion: aionos/v1`, `kind: AgentPackage`), the `[modules]`
config section and the API bodies.

Every bad manifest is refused with the dotted path of the field (`runtime.resources.memory`)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

NAME = r"^[a-z0-9][a-z0-9_-]{0,62}$"
VERSION = r"^[0-9]+\.[0-9]+\.[0-9]+([-+][A-Za-z0-9.-]{1,40})?$"
SECRET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}\??$")
HOST = re.compile(r"^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9*][A-Za-z0-9.-]{0,252})(:[0-9]{1,5})?$")
_CPU = re.compile(r"^(?:([0-9]{1,3}(?:\.[0-9]{1,6})?)|([0-9]{1,6})m)$")
_MEM = re.compile(r"^([0-9]{1,7})(Mi|Gi|M|G)?$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Metadata(Strict):
    name: str = Field(..., pattern=NAME, description="the module's name (lowercase, digits, _ and -)")
    version: str = Field(..., pattern=VERSION, description="semantic version, e.g. 1.3.0")
    description: str = Field("", max_length=2000)
    authors: list[str] = Field(default_factory=list, max_length=64)
    license: str = Field(..., min_length=1, max_length=200, description="an SPDX license expression")
    signatures: list[str] = Field(
        default_factory=list,
        max_length=16,
        description="fingerprints (sha256:…) of the keys the publisher signs with (informational: "
        "verification is against the tenant's trusted keys)",
    )
    sbom: str = Field(
        ..., min_length=1, max_length=256, description="the SBOM file in the package (CycloneDX or SPDX JSON)"
    )


class Gpu(Strict):
    required: bool = False
    vendor: Literal["nvidia", "amd", "intel", "none"] = "nvidia"
    count: int = Field(0, ge=0, le=16)


class Resources(Strict):
    cpu: float | str | None = Field(
        None,
        description='CPU cores: a number or a string (0.5, "0.5", "500m" = half a core), 0.01 to 64; '
        "a cgroup CPU quota where the host allows, and a CPU-time limit in any case; unset: no quota",
    )
    memory: int | str = Field(256, description="MiB, or a string like 256Mi / 1Gi")
    gpu: Gpu = Gpu()

    @field_validator("cpu", mode="before")
    @classmethod
    def _cpu(cls, value: Any) -> float | None:
        return None if value is None else cpu_cores(value)

    @field_validator("memory")
    @classmethod
    def _memory(cls, value: int | str) -> int | str:
        mb = memory_mb(value)
        if not 16 <= mb <= 65536:
            raise ValueError("memory must be between 16 MiB and 64 GiB")
        return value


def cpu_cores(value: Any) -> float:
    """Cores from 0.5, "0.5" or "500m" (millicores); ValueError naming the accepted forms."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError('cpu must be a number of cores (0.5) or a string like "0.5" or "500m"')
    if isinstance(value, str):
        m = _CPU.match(value.strip())
        if not m:
            raise ValueError('cpu must be a number of cores (0.5) or a string like "0.5" or "500m"')
        cores = int(m.group(2)) / 1000 if m.group(2) else float(m.group(1))
    else:
        cores = float(value)
    if not 0.01 <= cores <= 64:
        raise ValueError("cpu must be between 0.01 (10m) and 64 cores")
    return cores


def memory_mb(value: int | str) -> int:
    if isinstance(value, int):
        return value
    m = _MEM.match(value.strip())
    if not m:
        raise ValueError("memory must be MiB (an integer) or like 256Mi / 1Gi")
    n = int(m.group(1))
    return n * 1024 if m.group(2) in ("Gi", "G") else n


class Runtime(Strict):
    type: Literal["wasm", "subprocess"]
    wasi: bool = Field(True, description="wasm: a WASI preview 1 command module (the only kind run)")
    resources: Resources = Resources()

    @model_validator(mode="after")
    def _wasi(self) -> Runtime:
        if self.type == "wasm" and not self.wasi:
            raise ValueError("wasm modules are WASI command modules: wasi must be true")
        return self


class Permissions(Strict):
    filesystem: Literal["none", "read-only"] = Field(
        "none", description="none: no directory is opened; read-only: the package's files, never writable"
    )
    network: Literal["deny"] | list[str] = Field("deny", description="deny, or the hosts it may reach")
    secrets: list[str] = Field(
        default_factory=list, max_length=64, description='CredVault secret names; "NAME?" is optional'
    )

    @field_validator("network")
    @classmethod
    def _hosts(cls, value: Any) -> Any:
        if isinstance(value, list):
            if len(value) > 64:
                raise ValueError("at most 64 hosts")
            for host in value:
                if not HOST.match(host):
                    raise ValueError(f"{host!r} is not a host, host:port or [v6]:port")
        return value

    @field_validator("secrets")
    @classmethod
    def _secrets(cls, value: list[str]) -> list[str]:
        for name in value:
            if not SECRET.match(name):
                raise ValueError(f"{name!r} is not a secret name (letters, digits, _ . -; a trailing ? = optional)")
        return value

    def hosts(self) -> list[str]:
        return [] if self.network == "deny" else list(self.network)


class Schemas(Strict):
    input: str = Field(..., min_length=1, max_length=256, description="JSON Schema file for the input")
    output: str = Field(..., min_length=1, max_length=256, description="JSON Schema file for the output")


class Entrypoint(Strict):
    stdio: Literal["json"] = Field("json", description="one JSON document on stdin, one on stdout")
    module: str | None = Field(None, max_length=256, description="wasm: the .wasm (or .wat) file")
    command: list[str] | None = Field(
        None, min_length=1, max_length=32, description="subprocess: argv, run in the package directory"
    )
    schema_: Schemas = Field(..., alias="schema")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Policies(Strict):
    timeout_ms: int = Field(3000, ge=1, le=600_000)
    retries: int = Field(0, ge=0, le=10)
    concurrency: int = Field(4, ge=1, le=1000, description="calls running at once (more wait, then fail)")


class Manifest(Strict):
    apiVersion: Literal["aionos/v1"]
    kind: Literal["AgentPackage"]
    metadata: Metadata
    runtime: Runtime
    permissions: Permissions = Permissions()
    entrypoints: dict[str, Entrypoint] = Field(..., min_length=1, max_length=16)
    intents: list[str] = Field(default_factory=list, max_length=64)
    policies: Policies = Policies()

    @field_validator("intents")
    @classmethod
    def _intents(cls, value: list[str]) -> list[str]:
        for name in value:
            if not re.match(r"^[a-z0-9][a-z0-9_.-]{0,62}$", name):
                raise ValueError(f"{name!r} is not an intent name")
        return value

    @model_validator(mode="after")
    def _entrypoints(self) -> Manifest:
        for name, ep in self.entrypoints.items():
            if not re.match(r"^[a-z0-9][a-z0-9_-]{0,62}$", name):
                raise ValueError(f"entrypoints: {name!r} is not an entrypoint name")
            if self.runtime.type == "wasm":
                if not ep.module or ep.command:
                    raise ValueError(f"entrypoints.{name}: a wasm entrypoint names module (and no command)")
            elif not ep.command or ep.module:
                raise ValueError(f"entrypoints.{name}: a subprocess entrypoint names command (and no module)")
        return self

    def entry(self, name: str | None) -> tuple[str, Entrypoint]:
        if name is None:
            name = "main" if "main" in self.entrypoints else sorted(self.entrypoints)[0]
        return name, self.entrypoints[name]


# ---------------------------------------------------------------------- [modules] config
class ModulesConfig(Strict):
    max_package_mb: int = Field(64, ge=1, le=4096)
    breaker_failures: int = Field(5, ge=1, le=1000)
    breaker_cooldown_seconds: float = Field(30.0, gt=0, le=3600)
    queue_wait_seconds: float = Field(10.0, ge=0, le=600)
    max_timeout_ms: int = Field(600_000, ge=1, le=600_000)
    max_retries: int = Field(10, ge=0, le=10)


# ---------------------------------------------------------------------- API bodies
class TrustKey(Strict):
    name: str = Field(..., pattern=NAME)
    public_key: str = Field(
        ..., min_length=32, max_length=10_000, description="PEM public key (ECDSA P-256 or Ed25519)"
    )


class TrustRootBody(Strict):
    name: str = Field(..., pattern=NAME)
    trusted_root: dict[str, Any] = Field(
        ...,
        description="a Sigstore trusted_root.json (Fulcio CA certificates, Rekor and CT log public keys)",
    )
    identities: list[str] = Field(
        ...,
        min_length=1,
        max_length=64,
        description="the certificate identities (SAN email or URI, exact) whose keyless signatures are accepted",
    )
    issuers: list[str] = Field(
        ...,
        min_length=1,
        max_length=16,
        description="the OIDC issuers (Fulcio extension 1.3.6.1.4.1.57264.1.8 / .1.1, exact) accepted",
    )

    @field_validator("identities", "issuers")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        for item in value:
            if not 1 <= len(item) <= 512 or any(ord(c) < 33 for c in item):
                raise ValueError(f"{item[:80]!r}: 1 to 512 characters, no spaces or control characters")
        return value


class ModuleQuery(Strict):
    version: str | None = Field(None, pattern=VERSION)


class QuarantineBody(Strict):
    version: str | None = Field(None, pattern=VERSION)
    reason: str = Field("quarantined by an admin", min_length=1, max_length=500)


class RunQuery(Strict):
    version: str | None = Field(None, pattern=VERSION)
    entrypoint: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")


class ListQuery(Strict):
    state: Literal["verified", "approved", "quarantined"] | None = None
    intent: str | None = Field(None, max_length=64, description="only modules that serve this intent")
    limit: int | None = Field(None, ge=1, le=10_000)
    cursor: str | None = Field(None, max_length=300)
