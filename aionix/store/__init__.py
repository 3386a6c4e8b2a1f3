"""The store: `Store`/`Tx` interface (`base`), the SQLite implementation (`sqlite`), named
queries and numbered migrations (`queries`). `open_store(config)` picks the implementation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aionix.store.base import Params, Row, Store, Tx

if TYPE_CHECKING:
    from aionix.config import Config

__all__ = ["Params", "Row", "Store", "Tx", "open_store"]


def open_store(config: Config) -> Store:
    """The store for a configuration (SQLite in the data dir)."""
    from aionix.store.sqlite import SQLiteStore

    db = config.database
    return SQLiteStore(
        config.data_dir / "aionix.db",
        synchronous=db.synchronous,
        busy_timeout_ms=db.busy_timeout_ms,
        readers=db.reader_connections,
        group_commit_max=db.group_commit_max,
    )
