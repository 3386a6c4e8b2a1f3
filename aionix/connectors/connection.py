"""A saved connection as the kinds use it (`ConnectionHandle`): its validated config, its pooled
client, and late, briefly cached resolution of its CredVault references; plus the helpers that
validate connection configs."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from aionix.bus import BusError
from aionix.connectors.kind import ConnectorKind
from aionix.errors import ValidationFailed
from aionix.redact import SecretSet

if TYPE_CHECKING:
    from aionix.connectors.service import ConnectorsService

log = logging.getLogger("aionix.connectors")


def validation_failed(exc: ValidationError, prefix: str) -> ValidationFailed:
    """A pydantic error as the 422 every route gives, each field named under `prefix`."""
    items = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if p != "__root__")
        name = f"{prefix}.{loc}" if loc else prefix
        message = "unknown field" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
        items.append({"field": name, "message": message})
    first = items[0]
    return ValidationFailed(f"{first['field']}: {first['message']}", details=items)


def secret_refs(value: Any, path: str = "config") -> list[tuple[str, str]]:
    """Every `*_secret` reference inside a connection config, with its field path."""
    out: list[tuple[str, str]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}"
            if key.endswith("_secret") and item is not None:
                out.append((where, item))
            else:
                out.extend(secret_refs(item, where))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out.extend(secret_refs(item, f"{path}.{i}"))
    return out


@dataclass
class ConnectionHandle:
    """A saved connection as the kinds use it: validated config, its pooled resource, and late
    secret resolution."""

    service: ConnectorsService
    tenant: str
    name: str
    kind: ConnectorKind
    config: Any
    raw_config: dict[str, Any]
    updated_at: float
    resource: Any = None
    _secrets: dict[str, tuple[Any, float]] = field(default_factory=dict)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    #: the credentials this connection resolved: masked in every execution that uses it
    redaction: SecretSet = field(default_factory=SecretSet)

    @property
    def trn(self) -> str:
        return f"trn:openact:{self.tenant}:connection/{self.kind.name}/{self.name}"

    async def secret(self, ref: str | None) -> Any:
        """The value of a CredVault reference, read through the bus (cached for
        `secret_cache_seconds`)."""
        if ref is None:
            raise BusError("Connection.SecretError", f"connection {self.name} has no secret configured")
        cached = self._secrets.get(ref)
        now = time.monotonic()
        if cached is not None and cached[1] > now:
            return cached[0]
        value = await self.service.resolve_secret(self.tenant, ref, reader=self.trn, connection=self.name)
        self.redaction.add(value)
        ttl = self.service.settings.secret_cache_seconds
        if ttl > 0:
            self._secrets[ref] = (value, now + ttl)
        return value

    def forget_secrets(self) -> None:
        self._secrets.clear()

    async def ensure_resource(self) -> Any:
        if self.resource is None and self.kind.open is not None:
            async with self._lock:
                if self.resource is None:
                    self.resource = await self.kind.open(self)
        return self.resource

    async def close(self) -> None:
        resource, self.resource = self.resource, None
        if resource is not None and self.kind.close is not None:
            try:
                await self.kind.close(resource)
            except Exception:
                log.exception("closing connection %s failed", self.name)
