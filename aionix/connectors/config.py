"""The `[connectors]` configuration section (documented in config.toml)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


def _as_list(value: Any) -> Any:
    """Environment values without a comma arrive as one string: treat it as a one-item list."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class ConnectorsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    allow_hosts: list[str] = Field(
        default_factory=list, description="hosts/addresses/networks the SSRF guard lets through"
    )
    timeout_seconds: float = Field(30.0, gt=0, le=3600)
    max_result_bytes: int = Field(1_048_576, ge=1024)
    max_rows: int = Field(10_000, ge=1)
    max_redirects: int = Field(5, ge=0, le=30)
    fs_roots: list[str] = Field(default_factory=list, description="directories the fs kind may read and write")
    sql_roots: list[str] = Field(default_factory=list, description="directories where SQLite connection files may live")
    secret_cache_seconds: float = Field(60.0, ge=0)
    pool_size: int = Field(10, ge=1, le=1000)

    _split = field_validator("allow_hosts", "fs_roots", "sql_roots", mode="before")(_as_list)
