"""The store: `Store`/`Tx` interface (`base`), the SQLite implementation (`sqlite`), named
queries and numbered migrations (`queries`). `open_store(config)` picks the implementation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aionix.store.base import Params, Row, Store, Tx

if TYPE_CHECKING:
    from aionix.config import Config

__all__ = ["Params", "Row", "Store", "Tx", "open_store"]


def database_password(config: Config) -> str | None:
    """The PostgreSQL password: AIONIX_DATABASE_PASSWORD, else `[database] password_file`."""
    from pathlib import Path

    from aionix.errors import ConfigError

    db = config.database
    if db.password.get_secret_value():
        return db.password.get_secret_value()
    if db.password_file:
        path = Path(db.password_file).expanduser()
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"config error: database.password_file: cannot read {path}: {exc.strerror}") from None
    return None


def open_store(config: Config) -> Store:
    """The store for a configuration: PostgreSQL when `[database] url` names one, else SQLite
    in the data dir."""
    db = config.database
    if db.url and not db.url.startswith("sqlite:"):
        from aionix.cluster import ClusterConfig
        from aionix.store.postgres import PostgresStore

        lease = config.service_section("cluster", ClusterConfig).lease_seconds
        return PostgresStore(
            db.url,
            password=database_password(config),
            readers=db.pool_size,
            group_commit_max=db.group_commit_max,
            connect_timeout=db.connect_timeout_seconds,
            # a node stalled mid-transaction for a whole lease has lost its leases anyway; its
            # open transaction must not keep the rows it locked from the node that takes over
            idle_in_transaction_timeout_ms=int(lease * 1000),
        )
    from aionix.store.sqlite import SQLiteStore

    return SQLiteStore(
        config.data_dir / "aionix.db",
        synchronous=db.synchronous,
        busy_timeout_ms=db.busy_timeout_ms,
        readers=db.reader_connections,
        group_commit_max=db.group_commit_max,
    )
