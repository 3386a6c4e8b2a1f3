"""Configuration: defaults < `config.toml` < `AIONIX_<SECTION>_<KEY>` environment < command-line flags.

Every key is documented in the repository's `config.toml`. A bad value raises `ConfigError` whose
one-line message names the key, where the value came from and why it was refused, before the
server binds a port.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, ValidationError

from aionix.errors import ConfigError


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ServerConfig(Section):
    host: str = "127.0.0.1"
    port: int = Field(53000, ge=0, le=65535)
    public_url: str = ""
    shutdown_grace_seconds: float = Field(10.0, ge=0, le=600)


class DatabaseConfig(Section):
    data_path: str = "./data"
    synchronous: Literal["FULL", "NORMAL"] = "FULL"
    busy_timeout_ms: int = Field(5000, ge=0, le=600_000)
    reader_connections: int = Field(2, ge=1, le=32)
    group_commit_max: int = Field(512, ge=1, le=100_000)
    url: str = ""
    password: SecretStr = SecretStr("")
    password_file: str = ""
    pool_size: int = Field(4, ge=1, le=256)
    connect_timeout_seconds: float = Field(10.0, gt=0, le=600)


class LoggingConfig(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"
    access_log: bool = True


class SecurityConfig(Section):
    credentials_file: str = "~/.config/aionix/credentials"
    cors_origins: list[str] = []
    rate_limit_per_key: float = Field(200.0, gt=0, description="sustained requests/s per API key")
    rate_limit_per_key_burst: int = Field(400, ge=1)
    rate_limit_per_ip: float = Field(400.0, gt=0, description="sustained requests/s per client IP without a valid key")
    rate_limit_per_ip_burst: int = Field(800, ge=1)
    auth_failures_per_minute: int = Field(30, ge=1, description="bad keys per IP before 429")
    idempotency_retention_hours: float = Field(24.0, ge=1)
    audit_retention_days: float = Field(90.0, ge=1)


class LimitsConfig(Section):
    max_body_bytes: int = Field(1_048_576, ge=1024)
    max_json_depth: int = Field(64, ge=4, le=10_000)
    max_page_size: int = Field(500, ge=1, le=10_000)
    default_page_size: int = Field(50, ge=1, le=10_000)
    expression_timeout_ms: int = Field(1000, ge=1, le=600_000)
    expression_max_depth: int = Field(500, ge=10, le=100_000)
    # sizes that make builtins slow, checked by the engine as it builds values
    expression_max_array_items: int = Field(1_000_000, ge=1000, le=10_000_000)
    expression_max_string_bytes: int = Field(4_194_304, ge=65_536, le=1_073_741_824)
    expression_max_result_bytes: int = Field(1_048_576, ge=65_536, le=1_073_741_824)
    # slow expressions run in worker processes: how many, and the memory each may use
    expression_workers: int = Field(2, ge=1, le=64)
    expression_memory_mb: int = Field(256, ge=32, le=65_536)
    payload_max_bytes: int = Field(262_144, ge=1024)
    bus_timeout_seconds: float = Field(300.0, gt=0)


class TelemetryConfig(Section):
    otlp_endpoint: str = ""
    service_name: str = "aionix"
    headers: dict[str, str] = {}
    queue_size: int = Field(2048, ge=1, le=1_000_000)
    batch_size: int = Field(512, ge=1, le=100_000)
    export_interval_seconds: float = Field(2.0, gt=0, le=3600)
    export_timeout_seconds: float = Field(10.0, gt=0, le=600)


class Config(Section):
    server: ServerConfig = ServerConfig()
    database: DatabaseConfig = DatabaseConfig()
    logging: LoggingConfig = LoggingConfig()
    security: SecurityConfig = SecurityConfig()
    limits: LimitsConfig = LimitsConfig()
    telemetry: TelemetryConfig = TelemetryConfig()
    # Sections owned by the services: free-form here, validated by each service's own model.
    stepflow: dict[str, Any] = {}
    functions: dict[str, Any] = {}
    triggers: dict[str, Any] = {}
    connectors: dict[str, Any] = {}
    vault: dict[str, Any] = {}
    params: dict[str, Any] = {}
    ai: dict[str, Any] = {}
    agents: dict[str, Any] = {}
    modules: dict[str, Any] = {}
    quotas: dict[str, Any] = {}  # aionix/iam/quotas.py
    audit: dict[str, Any] = {}  # aionix/iam/audit.py
    auth: dict[str, Any] = {}  # aionix/iam/tokens.py (AuthConfig): tokens, local users, [auth.oidc]
    cluster: dict[str, Any] = {}  # aionix/cluster.py (ClusterConfig): leases and heartbeats of many nodes
    #: the config file this was loaded from (None: defaults and environment only)
    _config_file: Path | None = PrivateAttr(None)

    @property
    def config_file(self) -> Path | None:
        return self._config_file

    @property
    def data_dir(self) -> Path:
        return Path(self.database.data_path).expanduser().resolve()

    @property
    def credentials_path(self) -> Path:
        return Path(self.security.credentials_file).expanduser()

    def service_section(self, name: str, model: type[BaseModel]) -> Any:
        """Validate a service's own section (e.g. `[functions]`) against its model."""
        try:
            return model.model_validate(getattr(self, name))
        except ValidationError as exc:
            raise ConfigError(_describe(exc, prefix=name, sources={})) from None


CORE_SECTIONS = ("server", "database", "logging", "security", "limits", "telemetry")
SERVICE_SECTIONS = (
    *("stepflow", "functions", "triggers", "connectors", "vault", "params", "ai", "agents", "modules"),
    "quotas",
    "audit",
    "auth",
    "cluster",
)


def _describe(exc: ValidationError, *, prefix: str = "", sources: dict[str, str]) -> str:
    err = exc.errors()[0]
    key = ".".join(str(p) for p in err["loc"])
    if prefix:
        key = f"{prefix}.{key}"
    reason = err["msg"]
    if err["type"] == "extra_forbidden":
        reason = "unknown key"
    origin = sources.get(key)
    got = err.get("input")
    if origin and err["type"] != "extra_forbidden":
        return f"config error: {key}: {reason} (got {got!r} from {origin})"
    if origin:
        return f"config error: {key}: {reason} (from {origin})"
    return f"config error: {key}: {reason}"


def _set(tree: dict[str, Any], dotted: str, value: Any) -> None:
    section, key = dotted.split(".", 1)
    tree.setdefault(section, {})[key] = value


def _env_value(raw: str) -> Any:
    """Environment values are strings; lists are comma-separated."""
    if "," in raw:
        return [part.strip() for part in raw.split(",") if part.strip()]
    return raw


def load(
    config_file: str | os.PathLike[str] | None = None,
    *,
    env: dict[str, str] | None = None,
    overrides: dict[str, Any] | None = None,
    flag_names: dict[str, str] | None = None,
) -> Config:
    """Build the configuration. `overrides` are dotted keys from flags (`server.port`);
    `flag_names` maps them to the flag a user typed, for error messages."""
    env = dict(os.environ if env is None else env)
    tree: dict[str, Any] = {}
    sources: dict[str, str] = {}
    path = config_file or env.get("AIONIX_CONFIG")
    if path:
        file = Path(path).expanduser()
        try:
            raw = file.read_bytes()
        except OSError as exc:
            raise ConfigError(f"config error: cannot read config file {file}: {exc.strerror}") from None
        try:
            data = tomllib.loads(raw.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config error: {file}: not valid TOML: {exc}") from None
        for section, values in data.items():
            if not isinstance(values, dict):
                raise ConfigError(f"config error: {section}: must be a [table], not a value")
            for key, value in values.items():
                _set(tree, f"{section}.{key}", value)
                sources[f"{section}.{key}"] = str(file)
    known = {s.upper(): s for s in CORE_SECTIONS + SERVICE_SECTIONS}
    for name, raw in env.items():
        if not name.startswith("AIONIX_"):
            continue
        rest = name[len("AIONIX_") :]
        section, _, key = rest.partition("_")
        if section in known and key:
            dotted = f"{known[section]}.{key.lower()}"
            _set(tree, dotted, _env_value(raw))
            sources[dotted] = name
    for dotted, value in (overrides or {}).items():
        if value is not None:
            _set(tree, dotted, value)
            sources[dotted] = (flag_names or {}).get(dotted, dotted)
    try:
        config = Config.model_validate(tree)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, sources=sources)) from None
    if sources.get("database.password", "AIONIX_DATABASE_PASSWORD") != "AIONIX_DATABASE_PASSWORD" and (
        config.database.password.get_secret_value()
    ):
        raise ConfigError(
            f"config error: database.password: refused from {sources['database.password']}; give it in "
            "AIONIX_DATABASE_PASSWORD or [database] password_file (never in clear in the config)"
        )
    if path:
        config._config_file = Path(path).expanduser().resolve()
    return config
