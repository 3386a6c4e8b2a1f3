"""The PostgreSQL store (`[database] url = "postgresql://…"`), on asyncpg.

The same interface and the same write semantics as the SQLite store (`aionix/store/sqlite.py`),
so services see no difference:

* Writes: one writer thread owns one connection (with its own event loop, driven statement by
  statement: a transaction function is synchronous). `transaction(fn)` queues `fn`; the writer
  takes everything queued (up to `group_commit_max`), opens one real transaction (READ
  COMMITTED), runs each function inside its own SAVEPOINT (none for a group of one), commits
  once — one WAL flush under `synchronous_commit=on` for the whole group — and wakes every
  caller with its own result or exception. On one node the writers are therefore serialised as
  on SQLite: a read-modify-write inside one transaction function is atomic against every other
  write of the node. Across nodes (issue 17's later parts) the queries that need it take row
  locks (`FOR UPDATE`) in their PostgreSQL text. The writer's statements cost few round trips:
  they are prepared once on the server (named statements), executemany of a plain INSERT is
  one statement over arrays (`bulk_insert_sql`), a checkpoint's UPDATE and its history rows
  are one statement (`then_insert_sql`), an audit row follows the chain head the writer wrote
  last in one statement (`_chained_insert`), and replayable jobs share one savepoint
  (`_run_batch`).
* Reads: an asyncpg pool on the server's loop; a read sees every commit awaited before it.
* Queries: the named queries of `sql/postgres/*.sql`, written with the same `:name` / `?`
  parameters as SQLite's and turned into `$n` here. Parameters are coerced to the types
  PostgreSQL inferred (an int bound where a float column is expected, a bool as 0/1), and
  results come back as SQLite gives them: `numeric` aggregates as int/float, booleans as 0/1.
* Migrations: `migrations/postgres/NNNN_*.sql`, the same numbers as SQLite's, applied under an
  advisory lock (several nodes may start at once), each in its own transaction.
"""

from __future__ import annotations

import asyncio
import decimal
import logging
import queue
import re
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from aionix.errors import AionixError, ConfigError, StoreError
from aionix.loops import running_loop
from aionix.store.base import STOP, Params, Row, next_batch
from aionix.store.queries import UnknownQuery, load_migrations, load_queries
from aionix.store.sqlite import UniqueViolation

log = logging.getLogger("aionix.store")
T = TypeVar("T")

#: the advisory lock key under which migrations run ("aionix" as an int)
MIGRATION_LOCK = 0x61696F6E6978


# ---------------------------------------------------------------------------- query text
@dataclass(frozen=True, slots=True)
class Compiled:
    """A named query as PostgreSQL takes it: `$n` placeholders and how to fill them."""

    sql: str
    names: tuple[str, ...] | None  # named parameters in $n order; None: positional (`?`)
    count: int
    returning: bool
    #: the text run inside a transaction function: with its `/*tx: …*/` clauses (row locks)
    tx_sql: str = ""


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TX_CLAUSE = re.compile(r"/\*tx:(.*?)\*/", re.S)


def compile_query(text: str) -> Compiled:
    """`:name` and `?` placeholders outside literals and comments become `$n` (one `$n` per
    distinct name); `--` comments are dropped."""
    out: list[str] = []
    names: dict[str, int] = {}
    positional = 0
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "-" and text.startswith("--", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        if c in "'\"":
            j = i + 1
            while j < n:
                if text[j] == c:
                    if j + 1 < n and text[j + 1] == c:
                        j += 2
                        continue
                    break
                j += 1
            out.append(text[i : j + 1])
            i = j + 1
            continue
        if c == ":":
            if text.startswith("::", i):
                out.append("::")
                i += 2
                continue
            m = _IDENT.match(text, i + 1)
            if m:
                name = m.group(0)
                if name not in names:
                    names[name] = len(names) + 1
                out.append(f"${names[name]}")
                i = m.end()
                continue
        if c == "?":
            positional += 1
            out.append(f"${positional}")
            i += 1
            continue
        out.append(c)
        i += 1
    if names and positional:
        raise ValueError("a query mixes :named and ? parameters")
    sql = "".join(out).strip()
    ordered = tuple(sorted(names, key=names.__getitem__)) if names else None
    returning = bool(re.search(r"\bRETURNING\b", sql, re.I))
    # `/*tx: FOR UPDATE*/`: a row lock taken only when the query runs inside a transaction
    # function (a read-modify-write, atomic across nodes); plain reads on the pool never lock
    tx_sql = _TX_CLAUSE.sub(lambda m: m.group(1).strip(), sql).strip()
    return Compiled(_TX_CLAUSE.sub("", sql).strip(), ordered, len(names) or positional, returning, tx_sql)


def _args(q: Compiled, name: str, params: Params) -> list[Any]:
    if params is None or q.count == 0:  # SQLite ignores what a query without parameters is given
        return []
    if q.names is not None:
        if not isinstance(params, Mapping):
            if len(params) != q.count:
                raise StoreError(f"query {name}: {q.count} parameters expected, {len(params)} given")
            return list(params)
        try:
            return [params[k] for k in q.names]
        except KeyError as exc:
            raise StoreError(f"query {name}: no value for parameter :{exc.args[0]}") from None
    if isinstance(params, Mapping):
        raise StoreError(f"query {name} takes positional parameters")
    if len(params) != q.count:
        raise StoreError(f"query {name}: {q.count} parameters expected, {len(params)} given")
    return list(params)


def _to_int(v: Any) -> Any:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def _to_float(v: Any) -> Any:
    if isinstance(v, int) and not isinstance(v, bool):
        return float(v)
    if isinstance(v, bool):
        return float(v)
    return v


def _to_text(v: Any) -> Any:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return str(v)
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v).decode("utf-8", "replace")
    return v


def _to_bytes(v: Any) -> Any:
    if isinstance(v, (bytearray, memoryview)):
        return bytes(v)
    if isinstance(v, str):
        return v.encode()
    return v


def _to_bool(v: Any) -> Any:
    if isinstance(v, int) and not isinstance(v, bool):
        return bool(v)
    return v


_COERCE: dict[str, Callable[[Any], Any]] = {
    "int2": _to_int,
    "int4": _to_int,
    "int8": _to_int,
    "float4": _to_float,
    "float8": _to_float,
    "numeric": _to_float,
    "text": _to_text,
    "varchar": _to_text,
    "bpchar": _to_text,
    "bytea": _to_bytes,
    "bool": _to_bool,
}


def _coercers(types: Iterable[Any]) -> tuple[Callable[[Any], Any] | None, ...]:
    return tuple(_COERCE.get(t.name) for t in types)


def _coerce(args: list[Any], coercers: tuple[Callable[[Any], Any] | None, ...]) -> list[Any]:
    return [v if f is None or v is None else f(v) for v, f in zip(args, coercers, strict=False)]


def _row(record: Any) -> Row:
    row = dict(record.items())
    for k, v in row.items():
        if isinstance(v, bool):
            row[k] = int(v)
        elif isinstance(v, decimal.Decimal):
            row[k] = int(v) if v == v.to_integral_value() else float(v)
    return row


def _status_count(status: str | None) -> int:
    if not status:
        return 0
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


def _translate(exc: BaseException) -> AionixError:
    import asyncpg

    text = str(exc)
    if isinstance(exc, asyncpg.UniqueViolationError):
        return UniqueViolation("a resource with this identity already exists", details={"reason": text})
    return StoreError(f"store error: {text}", details={"reason": text})


def _is_connection_lost(exc: BaseException) -> bool:
    import asyncpg

    return isinstance(
        exc,
        (
            asyncpg.ConnectionDoesNotExistError,
            asyncpg.InterfaceError,
            asyncpg.AdminShutdownError,
            asyncpg.CannotConnectNowError,
            ConnectionError,
            OSError,
        ),
    )


def _is_db_error(exc: BaseException) -> bool:
    import asyncpg

    # InternalClientError: a connection left mid-operation by a lost server ("cannot switch to
    # state …; another operation is in progress"): unusable now, so 503 and retry, not a 500
    return isinstance(
        exc, (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError, ConnectionError)
    )


# ---------------------------------------------------------------------------- url and password
def parse_url(url: str, password: str | None) -> dict[str, Any]:
    """asyncpg connect arguments from `[database] url`; a password inside the URL is refused
    (it belongs in AIONIX_DATABASE_PASSWORD or `[database] password_file`)."""
    from urllib.parse import parse_qs, unquote, urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ConfigError("database.url: the scheme must be postgresql://", details={"field": "database.url"})
    if parts.password is not None:
        raise ConfigError(
            "database.url: a password in the URL is refused; give it in AIONIX_DATABASE_PASSWORD or "
            "[database] password_file",
            details={"field": "database.url"},
        )
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    host = unquote(parts.hostname or "") or query.pop("host", None) or "127.0.0.1"
    out: dict[str, Any] = {
        "host": host,
        "port": parts.port or int(query.pop("port", 5432)),
        "user": unquote(parts.username or "") or None,
        "database": unquote(parts.path.lstrip("/")) or None,
        "password": password,
    }
    sslmode = query.pop("sslmode", None)
    if sslmode:
        out["ssl"] = sslmode
    return out


def redacted(url: str) -> str:
    return url  # a URL with a password is refused, so nothing to hide


@dataclass(slots=True)
class _Job:
    fn: Callable[[Any], Any]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    #: `fn` may run twice in one commit (`PostgresStore._play`)
    replayable: bool = False
    #: the row of a `core.insert_audit` job (`execute`): several go in together (`_play`)
    audit: Mapping[str, Any] | None = None
    enqueued: float = field(default_factory=time.perf_counter)


# ---------------------------------------------------------------------------- Python in SQL
# SQLite's audit insert calls two functions registered from Python (the chain hash and the PII
# mask). PostgreSQL cannot call the server's Python, so for these queries the store computes
# those values first and passes them as parameters (the PostgreSQL text takes them).
def _masked(params: Mapping[str, Any]) -> dict[str, Any]:
    from aionix.iam.audit import PII

    out = dict(params)
    details = out.get("details")
    if isinstance(details, str):
        out["details"] = PII.mask(details)
    return out


def _link(p: dict[str, Any], seq: int, prev: str) -> dict[str, Any]:
    """`p` as the row after (`seq`, `prev`) of its chain: :seq, :prev_hash, :prev_seq and :hash."""
    from aionix.iam.audit import row_hash

    p["prev_seq"], p["seq"], p["prev_hash"] = seq, seq + 1, prev
    p["hash"] = row_hash(
        prev, seq + 1, p["ts"], p.get("tenant"), p.get("key_id"), p.get("ip"), p.get("method"), p.get("path"),
        p["action"], p.get("resource"), p.get("status"), p.get("details"),
    )  # fmt: skip
    return p


def _chained_insert(tx: _Tx, params: Params) -> list[Any]:
    """Insert an audit row at the head of its chain; the rows (`id`) it returned.

    The writer remembers the head it wrote last for each chain, so the usual insert is one
    statement (`core.pg_insert_audit_after`: it locks the head row only while it is still that
    head, and inserts nothing otherwise). When the head moved (another node wrote to the chain,
    or the transaction that wrote the remembered head rolled back), the head is read and
    locked (`core.pg_audit_head`), as every insert did before."""
    assert isinstance(params, Mapping)
    st = tx._store
    p = _masked(params)
    tenant = p.get("tenant")
    chain = "" if tenant is None else str(tenant)
    known = st._audit_heads.get(chain)
    rows: list[Any] = []
    if known is not None:
        rows = tx._plain("core.pg_insert_audit_after", _link(p, *known))
    if not rows:
        head = tx.fetch_one("core.pg_audit_head", {"tenant": tenant})
        _link(p, head["seq"] if head else 0, head["hash"] if head else "")
        rows = tx._plain("core.insert_audit_returning", p)
    st._audit_heads[chain] = (p["seq"], p["hash"])
    return rows


def _chained_insert_many(tx: _Tx, rows: Sequence[Mapping[str, Any]]) -> None:
    """`_chained_insert` of several audit rows (`core.insert_audit`, in this order), one
    statement a chain: the rows go in over arrays after the head the writer wrote last, or,
    when that head moved, after the head read and locked."""
    st = tx._store
    chains: dict[str, list[dict[str, Any]]] = {}
    for params in rows:
        p = _masked(params)
        tenant = p.get("tenant")
        chains.setdefault("" if tenant is None else str(tenant), []).append(p)
    for chain, ps in chains.items():
        known = st._audit_heads.get(chain)
        done = False
        if known is not None:
            stmt = st._audit_after_stmt()
            done = len(st._wait(stmt.fetch(chain, *known, *tx._columns(_AUDIT_INSERT, _link_all(ps, *known))))) == len(
                ps
            )
        if not done:
            head = tx.fetch_one("core.pg_audit_head", {"tenant": ps[0].get("tenant")})
            columns = tx._columns(_AUDIT_INSERT, _link_all(ps, *((head["seq"], head["hash"]) if head else (0, ""))))
            st._wait(st._bulk_stmt(_AUDIT_INSERT, st._writer_stmt(_AUDIT_INSERT)).fetch(*columns))
        st._audit_heads[chain] = (ps[-1]["seq"], ps[-1]["hash"])


def _link_all(ps: list[dict[str, Any]], seq: int, prev: str) -> list[dict[str, Any]]:
    """`ps` linked one after another after (`seq`, `prev`) of their chain (`_link`)."""
    for p in ps:
        _link(p, seq, prev)
        seq, prev = p["seq"], p["hash"]
    return ps


_AUDIT_INSERT = "core.insert_audit"

_PREPARE: dict[str, Callable[[Any, Params], Params]] = {
    "core.update_audit_details": lambda tx, p: _masked(p),  # type: ignore[arg-type]
}
#: the chained audit inserts, run by `_chained_insert`
_CHAINED = frozenset({"core.insert_audit", "core.insert_audit_returning"})

# ---------------------------------------------------------------------------- bulk inserts
#: `INSERT INTO t (cols) VALUES ($1, …, $n) [ON CONFLICT … DO NOTHING]`: executemany of it runs
#: as one statement over arrays (`SELECT * FROM unnest($1::type[], …)`), one executor run on
#: the server for the whole batch instead of one per row
_INSERT_VALUES = re.compile(
    r"(INSERT\s+INTO\s+[\w.\"]+\s*\([^()]*\))\s*VALUES\s*\(([\s$\d,]*)\)"
    r"(\s+ON\s+CONFLICT\s*(?:\([^()]*\))?\s*DO\s+NOTHING)?",
    re.I,
)


def bulk_insert_sql(sql: str, types: list[Any], *, first: int = 1, when: str = "") -> str | None:
    """The array form of a single-row INSERT (see `_INSERT_VALUES`), or None when it has none:
    any value that is not exactly one parameter (each once, in order), or a parameter of a type
    outside pg_catalog's scalars. `first`: the number of its first array parameter; `when`: a
    condition on whether the rows go in at all."""
    m = _INSERT_VALUES.fullmatch(sql.strip())
    if m is None:
        return None
    values = [v.strip() for v in m.group(2).split(",")]
    if values != [f"${i}" for i in range(1, len(values) + 1)] or len(values) != len(types):
        return None
    if m.group(1).count(",") + 1 != len(values):
        return None
    if any(t.kind != "scalar" or t.schema != "pg_catalog" for t in types):
        return None
    arrays = ", ".join(f"${i}::{t.name}[]" for i, t in enumerate(types, first))
    where = f" WHERE {when}" if when else ""
    return f"{m.group(1)} SELECT * FROM unnest({arrays}){where}{m.group(3) or ''}"


def then_insert_sql(sql: str, count: int, insert_sql: str, types: list[Any]) -> str | None:
    """`execute_then_insert` as one statement: the write `sql` (an INSERT, UPDATE or DELETE of
    `count` parameters, no RETURNING) in a WITH clause, the array form of `insert_sql`
    (parameters after those) taking its rows only when the write changed one; the statement
    answers the rows changed. None when the two do not compose."""
    if not re.match(r"\s*(INSERT|UPDATE|DELETE)\b", sql, re.I) or re.search(r"\bRETURNING\b|;", sql, re.I):
        return None
    bulk = bulk_insert_sql(insert_sql, types, first=count + 1, when="EXISTS (SELECT 1 FROM w)")
    if bulk is None:
        return None
    return f"WITH w AS ({sql} RETURNING 1), i AS ({bulk}) SELECT count(*) FROM w"


class _Tx:
    """The `Tx` handed to transaction functions; runs in the writer thread, statement by
    statement on the writer's own event loop."""

    __slots__ = ("_store",)

    def __init__(self, store: PostgresStore) -> None:
        self._store = store

    def _run(self, query: str, params: Params) -> tuple[Any, list[Any]]:
        st = self._store
        hook = _PREPARE.get(query)
        if hook is not None:
            params = hook(self, params)
        stmt = st._writer_stmt(query)
        q = st._compiled(query)
        return stmt, _coerce(_args(q, query, params), st._coercer_cache[query])

    def _fetch(self, query: str, params: Params) -> list[Any]:
        if query in _CHAINED:
            return _chained_insert(self, params)
        return self._plain(query, params)

    def _plain(self, query: str, params: Params) -> list[Any]:
        stmt, args = self._run(query, params)
        return self._store._wait(stmt.fetch(*args))  # type: ignore[no-any-return]

    def execute(self, query: str, params: Params = None) -> int:
        if query in _CHAINED:
            return len(_chained_insert(self, params))
        stmt, args = self._run(query, params)
        self._store._wait(stmt.fetch(*args))
        return _status_count(stmt.get_statusmsg())

    def insert(self, query: str, params: Params = None) -> int:
        rows = self._fetch(query, params)
        if rows and len(rows[0]):
            return int(rows[0][0] or 0)
        return 0

    def _batch(self, query: str, rows: Iterable[Params]) -> list[list[Any]]:
        """The arguments of `query` for each of `rows`, coerced."""
        st = self._store
        st._writer_stmt(query)  # its coercers
        q = st._compiled(query)
        co = st._coercer_cache[query]
        return [_coerce(_args(q, query, p), co) for p in rows]

    def _columns(self, query: str, rows: Iterable[Params]) -> list[list[Any]]:
        """`_batch` as one list a parameter (the arrays of `bulk_insert_sql`)."""
        return [list(column) for column in zip(*self._batch(query, rows), strict=True)]

    def executemany(self, query: str, rows: Iterable[Params]) -> None:
        if query in _PREPARE or query in _CHAINED:  # values computed row by row (the chain, the mask)
            for params in rows:
                self.execute(query, params)
            return
        st = self._store
        stmt = st._writer_stmt(query)
        batch = self._batch(query, rows)
        if len(batch) > 1:
            bulk = st._bulk_stmt(query, stmt)
            if bulk is not None:
                st._wait(bulk.fetch(*(list(column) for column in zip(*batch, strict=True))))
                return
        if batch:
            st._wait(stmt.executemany(batch))

    def execute_then_insert(self, query: str, params: Params, insert: str, rows: Sequence[Params]) -> int:
        st = self._store
        fused = st._then_insert_stmt(query, insert) if rows else None
        if fused is None:
            changed = self.execute(query, params)
            if changed and rows:
                self.executemany(insert, rows)
            return changed
        _, args = self._run(query, params)
        found = st._wait(fused.fetch(*args, *self._columns(insert, rows)))
        return int(found[0][0])

    def fetch_one(self, query: str, params: Params = None) -> Row | None:
        rows = self._fetch(query, params)
        return _row(rows[0]) if rows else None

    def fetch_all(self, query: str, params: Params = None) -> list[Row]:
        return [_row(r) for r in self._fetch(query, params)]


_STOP = STOP


class PostgresStore:
    """`Store` on a PostgreSQL database. See the module docstring."""

    dialect = "postgres"

    def __init__(
        self,
        url: str,
        *,
        password: str | None = None,
        readers: int = 4,
        group_commit_max: int = 512,
        connect_timeout: float = 10.0,
        statement_timeout_ms: int = 0,
        idle_in_transaction_timeout_ms: int = 0,
    ) -> None:
        self.url = url
        self.connect_args = parse_url(url, password)
        self.reader_count = readers
        self.group_commit_max = group_commit_max
        self.connect_timeout = connect_timeout
        self.statement_timeout_ms = statement_timeout_ms
        #: PostgreSQL ends a session left idle inside a transaction this long (a node paused or cut
        #: off mid-transaction): its row locks go, so the other nodes can claim what it held
        self.idle_in_transaction_timeout_ms = idle_in_transaction_timeout_ms
        self.queries: dict[str, str] = {}
        self._compiled_queries: dict[str, Compiled] = {}
        self._coercer_cache: dict[str, tuple[Callable[[Any], Any] | None, ...]] = {}
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._wloop: asyncio.AbstractEventLoop | None = None
        self._wconn: Any = None
        self._wstmts: dict[str, Any] = {}
        #: the bulk (array) form of each named INSERT run by executemany; None: it has none
        self._bulk_sql: dict[str, str | None] = {}
        #: (seq, hash) of the last audit row this writer inserted, per chain (`_chained_insert`)
        self._audit_heads: dict[str, tuple[int, str]] = {}
        self._pool: Any = None
        self._endpoints: list[tuple[str, int]] = []
        self.stats = {"transactions": 0, "commits": 0, "replays": 0, "round_trips": 0, "audit_batches": 0}
        #: Test hook: called before each group commit; may raise.
        self.fault_hook: Callable[[], None] | None = None
        #: Metrics hook: (seconds the COMMIT took, transactions in the group), in the writer thread.
        self.observe_commit: Callable[[float, int], None] | None = None

    # ------------------------------------------------------------------ lifecycle
    def _server_settings(self) -> dict[str, str]:
        s = {"application_name": "aionix", "synchronous_commit": "on", "TimeZone": "UTC"}
        if self.statement_timeout_ms:
            s["statement_timeout"] = str(int(self.statement_timeout_ms))
        if self.idle_in_transaction_timeout_ms:
            s["idle_in_transaction_session_timeout"] = str(int(self.idle_in_transaction_timeout_ms))
        return s

    async def _connect(self) -> Any:
        import asyncpg

        args = {k: v for k, v in self.connect_args.items() if v is not None}
        return await asyncpg.connect(
            **args,
            timeout=self.connect_timeout,
            server_settings=self._server_settings(),
            statement_cache_size=0,
        )

    async def start(self) -> None:
        try:
            import asyncpg
        except ImportError:  # pragma: no cover - the postgres extra is missing
            raise ConfigError(
                "database.url: a PostgreSQL store needs asyncpg (pip install 'aionix[postgres]')",
                details={"field": "database.url"},
            ) from None
        self.queries = load_queries(self.dialect)
        self._compiled_queries = {k: compile_query(v) for k, v in self.queries.items()}
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        loop = asyncio.get_running_loop()

        def opened(exc: BaseException | None) -> None:
            if ready.done():
                return
            if exc is None:
                ready.set_result(None)
            else:
                ready.set_exception(exc)

        self._thread = threading.Thread(
            target=self._writer_main, args=(loop, opened), name="aionix-store-writer", daemon=True
        )
        self._thread.start()
        try:
            await ready
        except BaseException:
            self._thread.join()
            self._thread = None
            raise
        args = {k: v for k, v in self.connect_args.items() if v is not None}
        try:
            self._pool = await asyncpg.create_pool(
                **args,
                min_size=1,
                max_size=self.reader_count,
                timeout=self.connect_timeout,
                server_settings=self._server_settings(),
                statement_cache_size=1024,
                reset=_keep_session,
            )
        except Exception as exc:
            await self.close()
            raise StoreError(f"cannot open the PostgreSQL read pool: {exc}") from None
        self._endpoints = await asyncio.to_thread(self._resolve_endpoints)
        a = self.connect_args
        log.info("store: PostgreSQL at %s:%s, database %s", a["host"], a["port"], a["database"])

    def _resolve_endpoints(self) -> list[tuple[str, int]]:
        host, port = str(self.connect_args["host"]), int(self.connect_args["port"])
        if host.startswith("/"):
            return []  # a unix socket: nothing on the network to guard
        found: set[str] = set()
        try:
            for info in socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP):
                found.add(str(info[4][0]).split("%", 1)[0])
        except OSError:
            pass
        return [(h, port) for h in sorted(found)]

    def network_endpoints(self) -> list[tuple[str, int]]:
        """(address, port) of the database server, which connections may never reach."""
        return list(self._endpoints)

    def _writer_main(self, owner: asyncio.AbstractEventLoop, opened: Callable[[BaseException | None], None]) -> None:
        try:  # uvloop's run_until_complete costs a fraction of asyncio's (one per statement here)
            import uvloop

            loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
            loop = asyncio.new_event_loop()
        self._wloop = loop
        try:
            try:
                self._use_connection(loop.run_until_complete(self._connect()))
                loop.run_until_complete(self._migrate(self._wconn))
                self._load_types(loop)
            except BaseException as exc:
                err = exc if isinstance(exc, AionixError) else StoreError(f"cannot open the PostgreSQL store: {exc}")
                owner.call_soon_threadsafe(opened, err)
                if self._wconn is not None:
                    loop.run_until_complete(self._wconn.close())
                return
            owner.call_soon_threadsafe(opened, None)
            self._writer_loop()
        finally:
            if self._wconn is not None and not self._wconn.is_closed():
                try:
                    loop.run_until_complete(self._wconn.close(timeout=5))
                except Exception:
                    self._wconn.terminate()
            loop.close()

    def _load_types(self, loop: asyncio.AbstractEventLoop) -> None:
        """Prepare every named query once (which checks it against the schema) and keep the
        parameter types PostgreSQL inferred. The writer's statements are named on the server
        (`name=True`; the connection has no statement cache, under which asyncpg would prepare
        them unnamed and send every execution's text to be parsed and planned again)."""
        for name, q in self._compiled_queries.items():
            try:
                stmt = loop.run_until_complete(self._wconn.prepare(q.tx_sql, name=True))
            except Exception as exc:
                raise StoreError(f"query {name} does not prepare on PostgreSQL: {exc}") from None
            self._wstmts[name] = stmt
            self._coercer_cache[name] = _coercers(stmt.get_parameters())

    async def _migrate(self, conn: Any) -> None:
        await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
        try:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version ("
                "version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
            )
            applied = {r[0] for r in await conn.fetch("SELECT version FROM schema_version")}
            for migration in load_migrations(self.dialect):
                if migration.version in applied:
                    continue
                log.info("applying migration %04d_%s", migration.version, migration.name)
                async with conn.transaction():
                    await conn.execute(migration.sql)
                    await conn.execute(
                        "INSERT INTO schema_version(version, name, applied_at) VALUES ($1, $2, $3)",
                        migration.version,
                        migration.name,
                        time.time(),
                    )
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)

    async def close(self) -> None:
        if self._thread is not None:
            self._queue.put(_STOP)
            await asyncio.to_thread(self._thread.join)
            self._thread = None
        if self._pool is not None:
            try:
                await asyncio.wait_for(self._pool.close(), 10)
            except Exception:
                self._pool.terminate()
            self._pool = None

    # ------------------------------------------------------------------ writer thread
    def _wait(self, coro: Any) -> Any:
        """One round trip of the writer's connection, to its end."""
        assert self._wloop is not None
        self.stats["round_trips"] += 1
        return self._wloop.run_until_complete(coro)

    def _use_connection(self, conn: Any) -> None:
        """`conn` becomes the writer's connection."""
        self._wconn = conn

    def _compiled(self, name: str) -> Compiled:
        try:
            return self._compiled_queries[name]
        except KeyError:
            raise UnknownQuery(name) from None

    def _writer_stmt(self, name: str) -> Any:
        stmt = self._wstmts.get(name)
        if stmt is None:
            q = self._compiled(name)
            stmt = self._wait(self._wconn.prepare(q.tx_sql, name=True))
            self._wstmts[name] = stmt
            self._coercer_cache[name] = _coercers(stmt.get_parameters())
        return stmt

    def _bulk_stmt(self, name: str, stmt: Any) -> Any:
        """The writer's prepared array form of INSERT `name` (`bulk_insert_sql`), or None."""
        key = name + "[]"
        bulk = self._wstmts.get(key)
        if bulk is not None:
            return bulk
        if name not in self._bulk_sql:
            self._bulk_sql[name] = bulk_insert_sql(self._compiled(name).tx_sql, list(stmt.get_parameters()))
        sql = self._bulk_sql[name]
        if sql is None:
            return None
        bulk = self._wstmts[key] = self._wait(self._wconn.prepare(sql, name=True))
        return bulk

    def _audit_after_stmt(self) -> Any:
        """The writer's prepared insert of audit rows over arrays after the head ($1 chain, $2
        seq, $3 hash), locked while it is still that head; nothing inserted otherwise."""
        stmt = self._wstmts.get("audit-after[]")
        if stmt is None:
            types = list(self._writer_stmt(_AUDIT_INSERT).get_parameters())
            bulk = bulk_insert_sql(
                self._compiled(_AUDIT_INSERT).tx_sql, types, first=4, when="EXISTS (SELECT 1 FROM head)"
            )
            assert bulk is not None
            sql = (
                "WITH head AS (SELECT chain FROM audit_heads WHERE chain = $1::text AND seq = $2::bigint"
                f" AND hash = $3::text FOR UPDATE) {bulk} RETURNING id"
            )
            stmt = self._wstmts["audit-after[]"] = self._wait(self._wconn.prepare(sql, name=True))
        return stmt

    def _then_insert_stmt(self, query: str, insert: str) -> Any:
        """The writer's prepared `then_insert_sql` of the two named queries, or None."""
        key = f"{query}+{insert}"
        fused = self._wstmts.get(key)
        if fused is not None:
            return fused
        if query in _PREPARE or query in _CHAINED or insert in _PREPARE or insert in _CHAINED:
            return None
        if key not in self._bulk_sql:
            q = self._compiled(query)
            types = list(self._writer_stmt(insert).get_parameters())
            self._bulk_sql[key] = then_insert_sql(q.tx_sql, q.count, self._compiled(insert).tx_sql, types)
        sql = self._bulk_sql[key]
        if sql is None:
            return None
        fused = self._wstmts[key] = self._wait(self._wconn.prepare(sql, name=True))
        return fused

    def _reconnect(self) -> None:
        """A fresh writer connection after the old one broke (the database restarted)."""
        try:
            if self._wconn is not None:
                self._wconn.terminate()
        except Exception:
            pass
        self._wstmts = {}
        self._audit_heads = {}
        self._use_connection(self._wait(self._connect()))

    def _writer_loop(self) -> None:
        tx = _Tx(self)
        stopping = False
        while not stopping:
            batch, stopping = next_batch(self._queue, self.group_commit_max)
            if not batch:
                continue
            if self._wconn is None or self._wconn.is_closed():
                try:
                    self._reconnect()
                except Exception as exc:
                    self._deliver(batch, [(False, StoreError(f"the database is unreachable: {exc}"))] * len(batch))
                    continue
            self._run_batch(tx, batch)

    def _run_batch(self, tx: _Tx, batch: list[_Job]) -> None:
        """One transaction for the group; each job in its own savepoint (none for a group of
        one), except that consecutive replayable jobs share one (`transaction(replayable=True)`).
        The control statements between savepoints travel together in one round trip
        (`RELEASE SAVEPOINT job; SAVEPOINT job`), the last release with the COMMIT.

        A savepoint costs a round trip to the server, which on a busy machine is most of what
        a small job costs; so a run of replayable jobs goes without one between them, and when
        one of them raises, the run is rolled back to its savepoint and played again, one
        savepoint a job, as any other job: each caller still gets its own outcome."""
        conn = self._wconn
        single = len(batch) == 1
        last = len(batch) - 1
        outcomes: list[tuple[bool, Any]] = []
        begin = "BEGIN" if single else "BEGIN; SAVEPOINT job"
        try:
            try:
                self._wait(conn.execute(begin))
            except Exception as exc:
                if not _is_connection_lost(exc):
                    raise
                # the connection died while idle (the database restarted): nothing of this
                # group ran yet, so a fresh connection can take it
                self._reconnect()
                conn = self._wconn
                self._wait(conn.execute(begin))
        except Exception as exc:
            self._rollback()
            self._deliver(batch, [(False, _translate(exc))] * len(batch))
            return
        broken: BaseException | None = None
        commit_sql = "COMMIT"
        solo_until = 0  # the jobs before this index run one savepoint each (their run was rolled back)
        i = 0
        while i <= last:
            if broken is not None:
                outcomes.append((False, _translate(broken)))
                i += 1
                continue
            end = i + 1  # the jobs [i, end) share the savepoint open now
            if not single and i >= solo_until and batch[i].replayable:
                while end <= last and batch[end].replayable:
                    end += 1
            if end - i > 1:
                played = self._play(tx, batch[i:end])
                if played is None:  # one raised: back to the savepoint, then one job at a time
                    try:
                        self._wait(conn.execute("ROLLBACK TO SAVEPOINT job"))
                    except Exception as fatal:
                        broken = fatal
                        continue
                    solo_until, end = end, i + 1
                else:
                    outcomes.extend(played)
            if end == i + 1:
                job = batch[i]
                try:
                    outcomes.append((True, job.fn(tx)))
                except BaseException as exc:
                    outcomes.append((False, _translate(exc) if _is_db_error(exc) else exc))
                    if single:
                        broken = exc
                        i += 1
                        continue
                    try:
                        self._wait(
                            conn.execute(
                                "ROLLBACK TO SAVEPOINT job; RELEASE SAVEPOINT job"
                                + ("; SAVEPOINT job" if i < last else "")
                            )
                        )
                    except Exception as fatal:
                        broken = fatal
                    i += 1
                    continue
            i = end
            if single:
                continue
            if i > last:
                commit_sql = "RELEASE SAVEPOINT job; COMMIT"
                continue
            try:
                self._wait(conn.execute("RELEASE SAVEPOINT job; SAVEPOINT job"))
            except Exception as exc:
                broken = exc
                outcomes[-1] = (False, _translate(exc))
        try:
            if broken is not None:
                if single:
                    self._rollback()
                    self._deliver(batch, outcomes)
                    return
                raise broken
            if self.fault_hook is not None:
                try:
                    self.fault_hook()
                except Exception as exc:  # an injected commit failure, whatever its type
                    raise StoreError(f"store error: {exc}", details={"reason": str(exc)}) from None
            committing = time.perf_counter()
            self._wait(conn.execute(commit_sql))
            if self.observe_commit is not None:
                self.observe_commit(time.perf_counter() - committing, len(batch))
        except BaseException as exc:
            self._rollback()
            err = exc if isinstance(exc, AionixError) else _translate(exc) if _is_db_error(exc) else exc
            self._deliver(batch, [(False, err)] * len(batch))
            return
        self.stats["transactions"] += len(batch)
        self.stats["commits"] += 1
        self._deliver(batch, outcomes)

    def _play(self, tx: _Tx, jobs: list[_Job]) -> list[tuple[bool, Any]] | None:
        """Run replayable jobs one after another under one savepoint: their outcomes, or None
        when one raised (the caller rolls them back and plays them again one by one)."""
        audits = [job.audit for job in jobs if job.audit is not None]
        together = len(audits) > 1
        outcomes: list[tuple[bool, Any]] = []
        try:
            if together:  # the audit rows first, together (nothing else reads them)
                _chained_insert_many(tx, audits)
                self.stats["audit_batches"] += 1
            for job in jobs:
                outcomes.append((True, 1) if together and job.audit is not None else (True, job.fn(tx)))
        except BaseException:
            self.stats["replays"] += 1
            return None
        return outcomes

    def _rollback(self) -> None:
        conn = self._wconn
        if conn is None or conn.is_closed():
            return
        try:
            if conn.is_in_transaction():
                self._wait(conn.execute("ROLLBACK"))
        except Exception:
            log.exception("rollback failed; reconnecting")
            try:
                conn.terminate()
            except Exception:
                pass

    @staticmethod
    def _deliver(batch: list[_Job], outcomes: list[tuple[bool, Any]]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Job, tuple[bool, Any]]]] = {}
        for job, outcome in zip(batch, outcomes, strict=True):
            by_loop.setdefault(job.loop, []).append((job, outcome))
        for loop, items in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, items)
            except RuntimeError:
                pass

    # ------------------------------------------------------------------ writes
    async def transaction(self, fn: Callable[[Any], T], *, replayable: bool = False) -> T:
        return await self.submit(fn, replayable=replayable)

    def submit(
        self, fn: Callable[[Any], T], *, replayable: bool = False, audit: Mapping[str, Any] | None = None
    ) -> asyncio.Future[T]:
        if self._thread is None:
            raise StoreError("the store is closed")
        loop = running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Job(fn, future, loop, replayable, audit))
        return future

    async def execute(self, query: str, params: Params = None) -> int:
        # one statement, nothing else: it may be played again (an audit row with its neighbours')
        audit = params if query == _AUDIT_INSERT and isinstance(params, Mapping) else None
        return await self.submit(lambda tx: tx.execute(query, params), replayable=True, audit=audit)

    # ------------------------------------------------------------------ reads
    async def _read(self, query: str, params: Params) -> list[Any]:
        q = self._compiled(query)
        args = _args(q, query, params)

        async def fetch(conn: Any) -> list[Any]:
            co = self._coercer_cache.get(query)
            if co is None:
                stmt = await conn.prepare(q.sql)
                co = self._coercer_cache[query] = _coercers(stmt.get_parameters())
            return await conn.fetch(q.sql, *_coerce(args, co))

        return await self._on_pool(fetch)

    async def _on_pool(self, fn: Callable[[Any], Awaitable[T]]) -> T:
        """`fn(connection)` on a pool connection; database errors as the store's errors."""
        if self._pool is None:
            raise StoreError("the store is closed")
        try:
            async with self._pool.acquire() as conn:
                return await fn(conn)
        except AionixError:
            raise
        except Exception as exc:
            if _is_db_error(exc):
                raise _translate(exc) from None
            raise

    async def fetch_one(self, query: str, params: Params = None) -> Row | None:
        rows = await self._read(query, params)
        return _row(rows[0]) if rows else None

    async def fetch_all(self, query: str, params: Params = None) -> list[Row]:
        return [_row(r) for r in await self._read(query, params)]

    # ------------------------------------------------------------------ LISTEN/NOTIFY (aionix/cluster.py)
    async def listen(
        self, channel: str, callback: Callable[[str], None], reconnected: Callable[[], Awaitable[None]]
    ) -> _Listener:
        """Deliver every NOTIFY on `channel` to `callback(payload)` (on this loop), over a
        connection of its own that comes back after a loss (then `reconnected()` runs)."""
        listener = _Listener(self, channel, callback, reconnected)
        await listener.open()
        return listener

    async def notify_now(self, channel: str, payload: str) -> None:
        """NOTIFY outside any transaction (what it tells is committed already)."""
        await self._on_pool(lambda conn: conn.execute("SELECT pg_notify($1, $2)", channel, payload))

    # ------------------------------------------------------------------ maintenance
    async def backup(self, target: Path) -> None:
        raise StoreError(
            "online backup is not applicable to a PostgreSQL store: use pg_dump or the database's own "
            "backups (point-in-time recovery)"
        )

    async def healthy(self) -> bool:
        try:
            return (await self.fetch_one("core.ping")) is not None
        except AionixError:
            return False

    async def server_info(self) -> dict[str, Any]:
        """What `aio admin doctor` shows about the database server."""
        if self._pool is None:
            raise StoreError("the store is closed")
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT version() AS version, current_setting('synchronous_commit') AS synchronous_commit, "
                "pg_database_size(current_database()) AS size"
            )
        return dict(row.items())


async def _keep_session(conn: Any) -> None:
    """Pool release without asyncpg's reset query (a round trip per read): reads change no
    session state (no advisory locks, cursors, LISTEN or SET on pool connections)."""


def _settle(items: list[tuple[_Job, tuple[bool, Any]]]) -> None:
    for job, (ok, value) in items:
        if job.future.done():
            continue
        if ok:
            job.future.set_result(value)
        else:
            job.future.set_exception(value)


class _Listener:
    """A LISTEN connection that reconnects (every second) after the database went away."""

    def __init__(
        self,
        store: PostgresStore,
        channel: str,
        callback: Callable[[str], None],
        reconnected: Callable[[], Awaitable[None]],
    ) -> None:
        self.store = store
        self.channel = channel
        self.callback = callback
        self.reconnected = reconnected
        self.conn: Any = None
        self.closed = False
        self._retry: asyncio.Task[None] | None = None

    async def open(self) -> None:
        conn = await self.store._connect()
        await conn.add_listener(self.channel, self._on_notify)
        conn.add_termination_listener(self._on_lost)
        self.conn = conn

    def _on_notify(self, conn: Any, pid: int, channel: str, payload: str) -> None:
        self.callback(payload)

    def _on_lost(self, conn: Any) -> None:
        if self.closed or self._retry is not None:
            return
        self.conn = None
        log.warning("store: the LISTEN connection to PostgreSQL was lost; reconnecting")
        self._retry = asyncio.ensure_future(self._reconnect())

    async def _reconnect(self) -> None:
        try:
            while not self.closed:
                await asyncio.sleep(1.0)
                try:
                    await self.open()
                except Exception as exc:
                    log.debug("store: LISTEN reconnect failed: %s", exc)
                    continue
                log.info("store: LISTEN connection to PostgreSQL is back")
                try:
                    await self.reconnected()
                except Exception:
                    log.exception("after the LISTEN connection came back")
                return
        finally:
            self._retry = None

    async def close(self) -> None:
        self.closed = True
        if self._retry is not None:
            self._retry.cancel()
        conn, self.conn = self.conn, None
        if conn is not None:
            try:
                await asyncio.wait_for(conn.close(), 5)
            except Exception:
                conn.terminate()
