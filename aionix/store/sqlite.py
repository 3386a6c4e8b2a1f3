"""The embedded store: one SQLite file in WAL mode.

One writer thread owns the only write connection. `transaction(fn)` queues `fn`; the writer
takes everything queued (up to `group_commit_max`), opens `BEGIN IMMEDIATE`, runs each function
inside its own SAVEPOINT, commits once — one fsync under `synchronous=FULL` for the whole group —
and then wakes every caller with its own result or exception. The writer is a plain thread
rather than an aiosqlite connection because aiosqlite costs one thread hop (~180 µs) per
statement; here a whole group costs one.

Reads use `aiosqlite` connections of their own (`query_only`), which WAL lets run beside the
writer.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import queue
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from aionix.errors import AionixError, Conflict, StoreError
from aionix.loops import running_loop
from aionix.store.base import STOP, Params, Row, next_batch
from aionix.store.queries import UnknownQuery, load_migrations, load_queries

log = logging.getLogger("aionix.store")
T = TypeVar("T")


class UniqueViolation(Conflict):
    """A write broke a UNIQUE or PRIMARY KEY constraint."""

    code = "already_exists"


def _translate(exc: sqlite3.Error) -> AionixError:
    text = str(exc)
    if isinstance(exc, sqlite3.IntegrityError) and ("UNIQUE" in text or "PRIMARY KEY" in text):
        return UniqueViolation("a resource with this identity already exists", details={"reason": text})
    return StoreError(f"store error: {text}", details={"reason": text})


@dataclass(slots=True)
class _Job:
    fn: Callable[[Any], Any]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    replayable: bool = False
    enqueued: float = field(default_factory=time.perf_counter)


#: a plain positional INSERT (`... VALUES (?, ?, ?)` and nothing after): `_Tx.executemany` writes
#: many rows of it as one statement
_PLAIN_INSERT = re.compile(r"\s*INSERT\s+INTO\s+[^;]*?\bVALUES\s*(\(\s*\?(?:\s*,\s*\?)*\s*\))\s*", re.I | re.S)
#: rows per multi-row statement (at most 64 statements to prepare per query, each cached)
_ROWS_PER_STATEMENT = 64


class _Tx:
    """The `Tx` handed to transaction functions; runs in the writer thread."""

    __slots__ = ("_conn", "_many", "_queries")

    def __init__(self, conn: sqlite3.Connection, queries: dict[str, str]) -> None:
        self._conn = conn
        self._queries = queries
        #: query name -> its multi-row statements by row count (None: not a plain INSERT)
        self._many: dict[str, dict[int, str] | None] = {}

    def _sql(self, name: str) -> str:
        try:
            return self._queries[name]
        except KeyError:
            raise UnknownQuery(name) from None

    def execute(self, query: str, params: Params = None) -> int:
        return self._conn.execute(self._sql(query), params or ()).rowcount

    def insert(self, query: str, params: Params = None) -> int:
        return int(self._conn.execute(self._sql(query), params or ()).lastrowid or 0)

    def executemany(self, query: str, rows: Iterable[Params]) -> None:
        """Many rows. A plain INSERT's rows go in as multi-row statements: sqlite3's
        `executemany` steps (and gives up and takes back the GIL) once per row, at about twice
        the cost. A failing row fails its statement, and the caller's savepoint undoes the rest
        either way."""
        forms = self._many.get(query, False)
        if forms is False:
            m = _PLAIN_INSERT.fullmatch(self._sql(query))
            forms = self._many[query] = {} if m is not None else None
        if forms is None or not isinstance(rows, (list, tuple)) or len(rows) < 2:
            self._conn.executemany(self._sql(query), rows)
            return
        for start in range(0, len(rows), _ROWS_PER_STATEMENT):
            chunk = rows[start : start + _ROWS_PER_STATEMENT]
            n = len(chunk)
            sql = forms.get(n)
            if sql is None:
                base = self._sql(query)
                values = _PLAIN_INSERT.fullmatch(base).group(1)  # type: ignore[union-attr]
                sql = forms[n] = base.rstrip().rstrip(";") + (", " + values) * (n - 1)
            flat = list(itertools.chain.from_iterable(chunk))
            if len(flat) != n * len(chunk[0]):
                raise sqlite3.ProgrammingError(f"{query}: the rows have different numbers of values")
            self._conn.execute(sql, flat)

    def execute_then_insert(self, query: str, params: Params, insert: str, rows: Sequence[Params]) -> int:
        changed = self.execute(query, params)
        if changed and rows:
            self.executemany(insert, rows)
        return changed

    def fetch_one(self, query: str, params: Params = None) -> Row | None:
        row = self._conn.execute(self._sql(query), params or ()).fetchone()
        return dict(row) if row is not None else None

    def fetch_all(self, query: str, params: Params = None) -> list[Row]:
        return [dict(r) for r in self._conn.execute(self._sql(query), params or ()).fetchall()]


_STOP = STOP


class SQLiteStore:
    """`Store` on one SQLite file. See the module docstring for the write path."""

    dialect = "sqlite"

    def __init__(
        self,
        path: Path,
        *,
        synchronous: str = "FULL",
        busy_timeout_ms: int = 5000,
        readers: int = 2,
        group_commit_max: int = 512,
    ) -> None:
        self.path = Path(path)
        self.synchronous = synchronous
        self.busy_timeout_ms = busy_timeout_ms
        self.reader_count = readers
        self.group_commit_max = group_commit_max
        self.queries: dict[str, str] = {}
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._writer: sqlite3.Connection | None = None
        self._thread: threading.Thread | None = None
        self._readers: list[aiosqlite.Connection] = []
        self._reader_cycle: Iterable[aiosqlite.Connection] = iter(())
        self.stats = {"transactions": 0, "commits": 0, "replays": 0}
        #: Test hook: called before each group commit; may raise sqlite3.Error.
        self.fault_hook: Callable[[], None] | None = None
        #: Metrics hook: (seconds the COMMIT took, transactions in the group), in the writer thread.
        self.observe_commit: Callable[[float, int], None] | None = None

    # ------------------------------------------------------------------ lifecycle
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=self.busy_timeout_ms / 1000
        )
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_ms)}")
        conn.execute("PRAGMA foreign_keys=ON")
        from aionix.iam.audit import register_sql_functions  # the audit chain's hash and PII mask

        register_sql_functions(conn)
        return conn

    async def start(self) -> None:
        self.queries = load_queries(self.dialect)
        await asyncio.to_thread(self._open_writer)
        self._thread = threading.Thread(target=self._writer_loop, name="aionix-store-writer", daemon=True)
        self._thread.start()
        for _ in range(self.reader_count):
            conn = await aiosqlite.connect(self.path, isolation_level=None)
            conn.row_factory = aiosqlite.Row
            await conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_ms)}")
            await conn.execute("PRAGMA query_only=1")
            self._readers.append(conn)
        self._reader_cycle = itertools.cycle(self._readers)

    def _open_writer(self) -> None:
        conn = self._connect()
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"cannot switch {self.path} to WAL mode (got {mode})")
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        self._migrate(conn)
        self._writer = conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
        )
        applied = {r[0] for r in conn.execute("SELECT version FROM schema_version")}
        for migration in load_migrations(self.dialect):
            if migration.version in applied:
                continue
            log.info("applying migration %04d_%s", migration.version, migration.name)
            script = (
                "BEGIN IMMEDIATE;\n"
                f"{migration.sql}\n;"
                f"INSERT INTO schema_version(version, name, applied_at) "
                f"VALUES ({migration.version}, '{migration.name}', {time.time()});\n"
                "COMMIT;"
            )
            try:
                conn.executescript(script)
            except sqlite3.Error:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    async def close(self) -> None:
        if self._thread is not None:
            self._queue.put(_STOP)
            await asyncio.to_thread(self._thread.join)
            self._thread = None
        for conn in self._readers:
            await conn.close()
        self._readers = []
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    # ------------------------------------------------------------------ writes
    async def transaction(self, fn: Callable[[Any], T], *, replayable: bool = False) -> T:
        return await self.submit(fn, replayable=replayable)

    def submit(self, fn: Callable[[Any], T], *, replayable: bool = False) -> asyncio.Future[T]:
        """`transaction`, queued now (before any transaction submitted after this call returns),
        its outcome a future (`replayable`: see `_run_batch`)."""
        if self._thread is None:
            raise StoreError("the store is closed")
        loop = running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Job(fn, future, loop, replayable))
        return future

    async def execute(self, query: str, params: Params = None) -> int:
        # one statement, nothing else: it may be played again
        return await self.submit(lambda tx: tx.execute(query, params), replayable=True)

    def _writer_loop(self) -> None:
        conn = self._writer
        assert conn is not None
        tx = _Tx(conn, self.queries)
        stopping = False
        while not stopping:
            batch, stopping = next_batch(self._queue, self.group_commit_max)
            if batch:
                self._run_batch(conn, tx, batch)

    def _run_batch(self, conn: sqlite3.Connection, tx: _Tx, batch: list[_Job]) -> None:
        """One transaction for the group, each job in a savepoint of its own, except that
        consecutive replayable jobs (`transaction(replayable=True)`) share one: the savepoint
        statements were a third of a checkpoint's statements, each a step that gives up and
        takes back the GIL. When one of them raises, their run is rolled back to its savepoint
        and played again one savepoint a job, so every caller still gets its own outcome."""
        outcomes: list[tuple[bool, Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            self._deliver(batch, [(False, _translate(exc))] * len(batch))
            return
        broken: sqlite3.Error | None = None
        solo_until = 0  # the jobs before this index run one savepoint each (their run was rolled back)
        i, n = 0, len(batch)
        while i < n:
            if broken is not None:
                outcomes.append((False, _translate(broken)))
                i += 1
                continue
            if i >= solo_until and batch[i].replayable:
                end = i + 1
                while end < n and batch[end].replayable:
                    end += 1
                if end - i > 1:
                    conn.execute("SAVEPOINT run")
                    played = _play(tx, batch[i:end])
                    try:
                        if played is not None:
                            conn.execute("RELEASE run")
                            outcomes += played
                            i = end
                            continue
                        conn.execute("ROLLBACK TO run")
                        conn.execute("RELEASE run")
                    except sqlite3.Error as fatal:
                        broken = fatal
                        continue
                    self.stats["replays"] += 1
                    solo_until = end
            job = batch[i]
            i += 1
            conn.execute("SAVEPOINT job")
            try:
                result = job.fn(tx)
            except BaseException as exc:
                try:
                    conn.execute("ROLLBACK TO job")
                    conn.execute("RELEASE job")
                except sqlite3.Error as fatal:
                    broken = fatal
                outcomes.append((False, _translate(exc) if isinstance(exc, sqlite3.Error) else exc))
                continue
            conn.execute("RELEASE job")
            outcomes.append((True, result))
        try:
            if broken is not None:
                raise broken
            if self.fault_hook is not None:
                self.fault_hook()
            committing = time.perf_counter()
            conn.execute("COMMIT")
            if self.observe_commit is not None:
                self.observe_commit(time.perf_counter() - committing, len(batch))
        except sqlite3.Error as exc:
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    log.exception("rollback failed")
            self._deliver(batch, [(False, _translate(exc))] * len(batch))
            return
        self.stats["transactions"] += len(batch)
        self.stats["commits"] += 1
        self._deliver(batch, outcomes)

    @staticmethod
    def _deliver(batch: list[_Job], outcomes: list[tuple[bool, Any]]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Job, tuple[bool, Any]]]] = {}
        for job, outcome in zip(batch, outcomes, strict=True):
            by_loop.setdefault(job.loop, []).append((job, outcome))
        for loop, items in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, items)
            except RuntimeError:
                pass  # the loop is gone (shutdown); nobody is waiting

    # ------------------------------------------------------------------ reads
    async def fetch_one(self, query: str, params: Params = None) -> Row | None:
        sql = self._sql(query)
        try:
            # One thread call per read (execute + fetch to the end): a statement left open
            # between awaits would pin its connection's WAL snapshot, and another coroutine's
            # read on that connection would miss writes it had already awaited.
            rows = await next(self._reader_cycle).execute_fetchall(sql, params or ())  # type: ignore[arg-type]
        except sqlite3.Error as exc:
            raise _translate(exc) from None
        row = next(iter(rows), None)
        return dict(row) if row is not None else None

    async def fetch_all(self, query: str, params: Params = None) -> list[Row]:
        sql = self._sql(query)
        try:
            rows = await next(self._reader_cycle).execute_fetchall(sql, params or ())  # type: ignore[arg-type]
        except sqlite3.Error as exc:
            raise _translate(exc) from None
        return [dict(r) for r in rows]

    def _sql(self, name: str) -> str:
        try:
            return self.queries[name]
        except KeyError:
            raise UnknownQuery(name) from None

    # ------------------------------------------------------------------ maintenance
    async def backup(self, target: Path) -> None:
        def run() -> None:
            tmp = Path(str(target) + ".partial")
            src = sqlite3.connect(self.path)
            try:
                dst = sqlite3.connect(tmp)
                try:
                    src.backup(dst)
                finally:
                    dst.close()
            finally:
                src.close()
            tmp.replace(target)

        await asyncio.to_thread(run)

    async def healthy(self) -> bool:
        try:
            return (await self.fetch_one("core.ping")) is not None
        except AionixError:
            return False


def _play(tx: _Tx, jobs: list[_Job]) -> list[tuple[bool, Any]] | None:
    """Run replayable jobs one after another under one savepoint: their outcomes, or None when
    one raised (the caller rolls them back and plays them again one by one)."""
    outcomes: list[tuple[bool, Any]] = []
    try:
        for job in jobs:
            outcomes.append((True, job.fn(tx)))
    except BaseException:
        return None
    return outcomes


def _settle(items: list[tuple[_Job, tuple[bool, Any]]]) -> None:
    for job, (ok, value) in items:
        if job.future.done():
            continue
        if ok:
            job.future.set_result(value)
        else:
            job.future.set_exception(value)
