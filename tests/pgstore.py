"""Which store the tests run on: SQLite (default) or PostgreSQL with `AIONIX_TEST_STORE=postgres`
(`make test-postgres`). On PostgreSQL one real server from Debian's package is started per
pytest process (tests/connectors/services.py) on first use and stopped at exit; every server
process or in-process runtime gets a fresh database of its own on it, so tests stay isolated as
with their own SQLite file."""

from __future__ import annotations

import atexit
import itertools
import os
import threading
from typing import Any

_lock = threading.Lock()
_server: Any = None
_names = itertools.count()


def kind() -> str:
    return os.environ.get("AIONIX_TEST_STORE", "sqlite").strip().lower() or "sqlite"


def on_postgres() -> bool:
    return kind() in ("postgres", "postgresql", "pg")


def server() -> Any:
    """The per-process PostgreSQL server (started on first use)."""
    global _server
    with _lock:
        if _server is None:
            from connectors.services import start_postgres

            _server = start_postgres()
            atexit.register(_server.stop)
        return _server


def new_database(prefix: str = "t") -> tuple[str, str]:
    """A fresh empty database: (url without password, password)."""
    pg = server()
    name = f"{prefix}_{os.getpid()}_{next(_names)}"
    pg.psql(f'CREATE DATABASE "{name}"', database="postgres")
    return f"postgresql://{pg.user}@127.0.0.1:{pg.port}/{name}", pg.password


_by_key: dict[str, dict[str, str]] = {}


def store_env(key: str | None = None) -> dict[str, str]:
    """`AIONIX_DATABASE_*` for a server on a fresh PostgreSQL database; {} on SQLite. The same
    `key` (a data dir) gets the same database again, as a restart finds its SQLite file."""
    if not on_postgres():
        return {}
    if key is not None and key in _by_key:
        return dict(_by_key[key])
    url, password = new_database()
    env = {"AIONIX_DATABASE_URL": url, "AIONIX_DATABASE_PASSWORD": password}
    if key is not None:
        _by_key[key] = env
    return dict(env)


def database_of(data_dir: object) -> dict[str, str] | None:
    """The database a server or runtime with this data dir uses (None: it is on SQLite)."""
    return _by_key.get(str(data_dir)) if on_postgres() else None


def run_sql(data_dir: object, sql: str, params: tuple = (), *, write: bool = False) -> list[tuple]:
    """Run raw SQL (SQLite's `?` placeholders) on the PostgreSQL database of a data dir: what
    tests that inspect or tamper with the SQLite file do, on the PostgreSQL store."""
    import asyncio

    import asyncpg

    from aionix.store.postgres import compile_query, parse_url

    env = database_of(data_dir)
    assert env is not None, f"{data_dir} has no PostgreSQL database"
    args = {k: v for k, v in parse_url(env["AIONIX_DATABASE_URL"], env["AIONIX_DATABASE_PASSWORD"]).items() if v}

    async def go() -> list[tuple]:
        conn = await asyncpg.connect(**args)
        try:
            q = compile_query(sql)
            if write:
                await conn.execute(q.sql, *params)
                return []
            return [tuple(r.values()) for r in await conn.fetch(q.sql, *params)]
        finally:
            await conn.close()

    return asyncio.run(go())
