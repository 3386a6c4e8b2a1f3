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


def run_sql(data_dir: object, sql: str, params: tuple = (), *, write: bool = False, dicts: bool = False) -> list:
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
            return [dict(r.items()) if dicts else tuple(r.values()) for r in await conn.fetch(q.sql, *params)]
        finally:
            await conn.close()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(go())
    # called from a coroutine (an in-process runtime's test): on a loop of its own, in a thread
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, go()).result()


def query(data_dir: object, sql: str, params: tuple = (), *, dicts: bool = False) -> list:
    """Rows of raw SQL (`?` placeholders) on the store of a server or runtime with this data dir:
    its SQLite file, or its PostgreSQL database under AIONIX_TEST_STORE=postgres; tuples, or
    dicts by column name with `dicts=True`."""
    if database_of(data_dir):
        return run_sql(data_dir, sql, params, dicts=dicts)
    import sqlite3
    from pathlib import Path

    conn = sqlite3.connect(Path(str(data_dir)) / "aionix.db")
    if dicts:
        conn.row_factory = sqlite3.Row
    try:
        rows = conn.execute(sql, params).fetchall()
        return [dict(r) for r in rows] if dicts else rows
    finally:
        conn.close()


def execute(data_dir: object, sql: str, params: tuple = ()) -> None:
    """Run (and commit) a raw SQL write on the store of this data dir, as `query` reads it."""
    if database_of(data_dir):
        run_sql(data_dir, sql, params, write=True)
        return
    import sqlite3
    from pathlib import Path

    conn = sqlite3.connect(Path(str(data_dir)) / "aionix.db")
    try:
        conn.execute(sql, params)
        conn.commit()
    finally:
        conn.close()


def database_files(data_dir: object) -> list[Any]:
    """The files on disk that hold this data dir's store: the SQLite file and its WAL, or on
    PostgreSQL the database's own files (after a CHECKPOINT writes them) and the server's WAL."""
    from pathlib import Path

    if not database_of(data_dir):
        return sorted(p for p in Path(str(data_dir)).iterdir() if p.name.startswith("aionix.db"))
    name = database_of(data_dir)["AIONIX_DATABASE_URL"].rsplit("/", 1)[1]  # type: ignore[index]
    ((oid,),) = run_sql(data_dir, "SELECT oid FROM pg_database WHERE datname = ?", (name,))
    run_sql(data_dir, "CHECKPOINT", write=True)
    pgdata = Path(server().root) / "data"
    return sorted(p for d in (pgdata / "base" / str(oid), pgdata / "pg_wal") for p in d.iterdir() if p.is_file())


def integrity_ok(data_dir: object) -> bool:
    """The store of this data dir is consistent: SQLite's `PRAGMA integrity_check`, or on
    PostgreSQL amcheck's `bt_index_check` of every index against its table."""
    if not database_of(data_dir):
        return query(data_dir, "PRAGMA integrity_check")[0][0] == "ok"
    run_sql(data_dir, "CREATE EXTENSION IF NOT EXISTS amcheck", write=True)
    indexes = run_sql(
        data_dir,
        "SELECT c.oid FROM pg_class c JOIN pg_am am ON am.oid = c.relam "
        "WHERE c.relkind = 'i' AND am.amname = 'btree' AND c.relnamespace = 'public'::regnamespace",
    )
    assert indexes, "no index to check"
    try:
        for (oid,) in indexes:
            run_sql(data_dir, "SELECT bt_index_check(?::oid, true)", (oid,))
    except Exception as exc:  # amcheck raises on a corrupt index or a heap row it lacks
        print(f"amcheck: {exc}")
        return False
    return True


def database_size(data_dir: object) -> int:
    """Bytes the store of this data dir takes: the SQLite file and its WAL, or the PostgreSQL
    database (`pg_database_size`)."""
    if database_of(data_dir):
        return run_sql(data_dir, "SELECT pg_database_size(current_database())")[0][0]
    from pathlib import Path

    root = Path(str(data_dir))
    return sum((root / n).stat().st_size for n in ("aionix.db", "aionix.db-wal") if (root / n).exists())
