"""`aio admin migrate-store`: copy a whole store, offline, from SQLite to an empty PostgreSQL
database or back.

Both sides are first brought to the latest schema by their own store (the same numbered
migrations), then every table is copied row for row in one target transaction, in foreign-key
order; values are copied as stored — sealed secrets, wrapped data keys and webhook secrets stay
ciphertext under the same master key (which lives outside the store: the data dir's key file or
AIONIX_MASTER_KEY). A target that holds any row is refused. PostgreSQL identity sequences are
moved past the copied ids."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aionix.errors import AionixError, ConfigError

SKIP = {"schema_version", "sqlite_sequence", "sqlite_stat1", "sqlite_stat4", "nodes"}  # nodes: this side's processes
CHUNK = 2000


class MigrateError(AionixError):
    code = "migrate_failed"


@dataclass
class Endpoint:
    """One side: `sqlite` (a data dir holding aionix.db) or `postgres` (a URL)."""

    kind: str
    path: Path | None = None
    url: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, spec: str, password: str | None) -> Endpoint:
        if spec.startswith(("postgresql://", "postgres://")):
            return cls("postgres", url=spec, password=password)
        if spec.startswith("sqlite:"):
            spec = spec[len("sqlite:") :]
        if not spec:
            raise ConfigError("a store is a data dir (sqlite:PATH or PATH) or postgresql://USER@HOST:PORT/DATABASE")
        return cls("sqlite", path=Path(spec).expanduser())

    @property
    def db_file(self) -> Path:
        assert self.path is not None
        return self.path / "aionix.db" if self.path.suffix != ".db" else self.path

    def describe(self) -> str:
        return self.url or "" if self.kind == "postgres" else f"sqlite:{self.db_file}"

    def store(self) -> Any:
        if self.kind == "postgres":
            from aionix.store.postgres import PostgresStore

            return PostgresStore(self.url or "", password=self.password, readers=1)
        from aionix.store.sqlite import SQLiteStore

        self.db_file.parent.mkdir(parents=True, exist_ok=True)
        return SQLiteStore(self.db_file, readers=1)


# ---------------------------------------------------------------------------- raw access
class _SQLite:
    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA foreign_keys=OFF")

    async def tables(self) -> dict[str, list[str]]:
        names = [
            r[0]
            for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            if r[0] not in SKIP
        ]
        return {n: [c[1] for c in self.conn.execute(f'PRAGMA table_info("{n}")')] for n in names}

    async def parents(self, table: str) -> set[str]:
        return {r[2] for r in self.conn.execute(f'PRAGMA foreign_key_list("{table}")')}

    async def count(self, table: str) -> int:
        return int(self.conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0])

    async def rows(self, table: str, cols: list[str]):  # type: ignore[no-untyped-def]
        sel = ", ".join(f'"{c}"' for c in cols)
        cur = self.conn.execute(f'SELECT {sel} FROM "{table}"')
        while batch := cur.fetchmany(CHUNK):
            yield [tuple(r) for r in batch]

    async def begin(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    async def clear(self, table: str) -> None:
        self.conn.execute(f'DELETE FROM "{table}"')

    async def write(self, table: str, cols: list[str], rows: list[tuple[Any, ...]]) -> None:
        marks = ", ".join("?" for _ in cols)
        names = ", ".join(f'"{c}"' for c in cols)
        self.conn.executemany(f'INSERT INTO "{table}" ({names}) VALUES ({marks})', rows)

    async def commit(self) -> None:
        self.conn.execute("COMMIT")
        if self.conn.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            raise MigrateError("the SQLite target failed its integrity check")

    async def rollback(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    async def close(self) -> None:
        self.conn.close()


class _Postgres:
    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.tx: Any = None
        self._types: dict[str, dict[str, str]] = {}

    @classmethod
    async def open(cls, ep: Endpoint) -> _Postgres:
        import asyncpg

        from aionix.store.postgres import parse_url

        args = {k: v for k, v in parse_url(ep.url or "", ep.password).items() if v is not None}
        return cls(await asyncpg.connect(**args, timeout=30))

    async def tables(self) -> dict[str, list[str]]:
        rows = await self.conn.fetch(
            "SELECT table_name, column_name, udt_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position"
        )
        out: dict[str, list[str]] = {}
        for r in rows:
            if r["table_name"] in SKIP:
                continue
            out.setdefault(r["table_name"], []).append(r["column_name"])
            self._types.setdefault(r["table_name"], {})[r["column_name"]] = r["udt_name"]
        return out

    async def parents(self, table: str) -> set[str]:
        rows = await self.conn.fetch(
            "SELECT c.confrelid::regclass::text AS parent FROM pg_constraint c "
            "WHERE c.contype = 'f' AND c.conrelid = $1::regclass",
            table,
        )
        return {r["parent"].strip('"') for r in rows}

    async def count(self, table: str) -> int:
        return int(await self.conn.fetchval(f'SELECT count(*) FROM "{table}"'))

    async def rows(self, table: str, cols: list[str]):  # type: ignore[no-untyped-def]
        sel = ", ".join(f'"{c}"' for c in cols)
        async with self.conn.transaction(isolation="repeatable_read", readonly=True):
            batch: list[tuple[Any, ...]] = []
            async for r in self.conn.cursor(f'SELECT {sel} FROM "{table}"', prefetch=CHUNK):
                batch.append(tuple(r.values()))
                if len(batch) >= CHUNK:
                    yield batch
                    batch = []
            if batch:
                yield batch

    async def begin(self) -> None:
        self.tx = self.conn.transaction()
        await self.tx.start()

    async def clear(self, table: str) -> None:
        await self.conn.execute(f'DELETE FROM "{table}"')

    async def write(self, table: str, cols: list[str], rows: list[tuple[Any, ...]]) -> None:
        from aionix.store.postgres import _COERCE

        types = self._types.get(table, {})
        fns = [_COERCE.get(types.get(c, ""), None) for c in cols]
        fixed = [tuple(v if f is None or v is None else f(v) for v, f in zip(r, fns, strict=True)) for r in rows]
        await self.conn.copy_records_to_table(table, records=fixed, columns=cols)

    async def commit(self) -> None:
        rows = await self.conn.fetch(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND is_identity = 'YES'"
        )
        for r in rows:
            t, c = r["table_name"], r["column_name"]
            await self.conn.execute(
                f"SELECT setval(pg_get_serial_sequence('\"{t}\"', '{c}'), "
                f'coalesce((SELECT max("{c}") FROM "{t}"), 0) + 1, false)'
            )
        await self.tx.commit()

    async def rollback(self) -> None:
        if self.tx is not None:
            try:
                await self.tx.rollback()
            except Exception:
                pass

    async def close(self) -> None:
        await self.conn.close()


async def _open(ep: Endpoint) -> Any:
    if ep.kind == "postgres":
        return await _Postgres.open(ep)
    return _SQLite(ep.db_file)


def _order(tables: list[str], parents: dict[str, set[str]]) -> list[str]:
    done: list[str] = []
    seen: set[str] = set()

    def visit(t: str) -> None:
        if t in seen:
            return
        seen.add(t)
        for p in sorted(parents.get(t, ())):
            if p in tables and p != t:
                visit(p)
        done.append(t)

    for t in sorted(tables):
        visit(t)
    return done


async def migrate(source: Endpoint, target: Endpoint) -> dict[str, int]:
    """Copy every row of `source` into the empty `target`; rows copied per table."""
    if source.kind == target.kind == "sqlite" and source.db_file.resolve() == target.db_file.resolve():
        raise ConfigError("--from and --to are the same store")
    if source.kind == "sqlite" and not source.db_file.is_file():
        raise ConfigError(f"--from: {source.db_file}: no such database")
    for ep in (source, target):  # both at the latest schema (the same numbered migrations)
        st = ep.store()
        await st.start()
        await st.close()
    src, dst = await _open(source), await _open(target)
    try:
        s_tables, d_tables = await src.tables(), await dst.tables()
        busy = [t for t in d_tables if await dst.count(t)]
        if busy:
            raise MigrateError(
                f"the target {target.describe()} is not empty (rows in {', '.join(sorted(busy)[:5])}): "
                "migrate-store only copies into an empty store"
            )
        missing = sorted(set(s_tables) - set(d_tables))
        if missing:
            raise MigrateError(f"the target lacks tables {missing}: is it from an older aionix?")
        parents = {t: await dst.parents(t) for t in d_tables}
        copied: dict[str, int] = {}
        await dst.begin()
        try:
            for table in _order([t for t in s_tables if t in d_tables], parents):
                cols = [c for c in s_tables[table] if c in set(d_tables[table])]
                if await dst.count(table):  # rows a trigger made while copying (audit_heads)
                    await dst.clear(table)
                n = 0
                async for chunk in src.rows(table, cols):
                    await dst.write(table, cols, chunk)
                    n += len(chunk)
                copied[table] = n
            await dst.commit()
        except BaseException:
            await dst.rollback()
            raise
        return copied
    finally:
        await src.close()
        await dst.close()


def run(source: Endpoint, target: Endpoint) -> dict[str, int]:
    return asyncio.run(migrate(source, target))
