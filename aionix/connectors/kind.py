"""What a connector kind is: a connection config schema and named operations, each with a JSON
Schema for its parameters and its result.

A kind module under `aionix/connectors/kinds/` builds one `ConnectorKind`. The service
validates parameters against the operation's pydantic model (422 naming the field), opens a
pooled resource per connection through `open`/`close`, bounds every call with a timeout and
maps failures to the kind's error names (`Http.Timeout`, `Sql.Error`, …) as `BusError`s that
workflows can retry or catch.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from aionix.bus import BusError, CallContext

if TYPE_CHECKING:
    from aionix.connectors.config import ConnectorsConfig
    from aionix.connectors.connection import ConnectionHandle


class Params(BaseModel):
    """Base of every operation's parameters: unknown fields are refused, every call may set its
    own timeout."""

    model_config = ConfigDict(extra="forbid")

    timeout: float | None = Field(None, gt=0, le=3600, description="seconds before the call fails with <Kind>.Timeout")


class ConnectionConfig(BaseModel):
    """Base of every connection config. Secrets are never stored here: fields ending in
    `_secret` name a CredVault credential (short name or `trn:credvault:…` TRN)."""

    model_config = ConfigDict(extra="forbid")

    timeout_seconds: float | None = Field(None, gt=0, le=3600, description="default timeout of this connection's calls")


@dataclass
class Invocation:
    """One operation call as a kind sees it."""

    params: Any
    ctx: CallContext
    settings: ConnectorsConfig
    connection: ConnectionHandle | None
    timeout: float
    max_result_bytes: int
    services: Any = None  # the ConnectorsService (for kinds built on another kind)

    def resource(self) -> Any:
        assert self.connection is not None
        return self.connection.resource


RunFn = Callable[[Invocation], Awaitable[Any]]


@dataclass
class Operation:
    name: str
    description: str
    params: type[Params]
    result: dict[str, Any]
    run: RunFn


@dataclass
class ConnectorKind:
    """One kind: `name` is the bus action kind, `error_prefix` starts its error names."""

    name: str
    title: str
    error_prefix: str
    operations: dict[str, Operation]
    connection_model: type[ConnectionConfig] | None = None
    requires_connection: bool = False
    default_operation: str | None = None
    extra: str | None = None  # the pip extra holding the client library
    module: str | None = None  # the client library's import name
    open: Callable[[ConnectionHandle], Awaitable[Any]] | None = None
    close: Callable[[Any], Awaitable[None]] | None = None
    test: Callable[[ConnectionHandle, ConnectorsConfig], Awaitable[dict[str, Any]]] | None = None
    examples: list[dict[str, Any]] = field(default_factory=list)

    def error(self, suffix: str, cause: str, details: Any = None) -> BusError:
        return BusError(f"{self.error_prefix}.{suffix}", cause, details=details)

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.name,
            "title": self.title,
            "error_prefix": self.error_prefix,
            "requires_connection": self.requires_connection,
            "default_operation": self.default_operation,
            "extra": self.extra,
            "available": self.available(),
            "connection_schema": self.connection_model.model_json_schema() if self.connection_model else None,
            "operations": [
                {
                    "name": op.name,
                    "description": op.description,
                    "parameters": op.params.model_json_schema(),
                    "result": op.result,
                }
                for op in self.operations.values()
            ],
        }

    def available(self) -> bool:
        if self.module is None:
            return True
        try:
            importlib.import_module(self.module)
        except ImportError:
            return False
        return True


def require_module(kind: ConnectorKind) -> Any:
    """Import the kind's client library, or fail with a clear "install aionix[extra]" error."""
    assert kind.module is not None
    try:
        return importlib.import_module(kind.module)
    except ImportError:
        raise kind.error(
            "NotInstalled",
            f"the {kind.name} connector needs the optional package {kind.module!r}: install it with pip install 'aionix[{kind.extra}]'",
        ) from None


def truncate_text(text: str, limit: int) -> tuple[str, bool]:
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text, False
    return data[:limit].decode("utf-8", errors="ignore"), True
