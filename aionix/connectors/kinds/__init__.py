"""The connector kinds, one module each; `load_kinds()` is the registry the service serves."""

from __future__ import annotations

import importlib

from aionix.connectors.kind import ConnectorKind

#: modules under aionix.connectors.kinds, each exposing `KIND` or `KINDS`.
MODULES = ("http", "transform", "fs", "sql", "redis", "email", "chat", "s3")


def load_kinds() -> dict[str, ConnectorKind]:
    kinds: dict[str, ConnectorKind] = {}
    for name in MODULES:
        module = importlib.import_module(f"aionix.connectors.kinds.{name}")
        for kind in getattr(module, "KINDS", None) or [module.KIND]:
            kinds[kind.name] = kind
    return kinds
