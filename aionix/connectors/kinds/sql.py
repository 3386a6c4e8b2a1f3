"""`sql`: SQLite files (inside `[connectors] sql_roots`), PostgreSQL (asyncpg) and MySQL/MariaDB
(aiomysql). Queries are parameterised only — values travel as bind parameters in the driver's
own placeholder style (SQLite `?`/`:name`, PostgreSQL `$1`, MySQL `%s`/`%(name)s`), never
interpolated. `query` returns rows as objects, `execute` a row count, `transaction` runs a list
of statements atomically."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import decimal
import time
import uuid
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from aionix import jsonutil
from aionix.bus import BusError
from aionix.connectors.kind import ConnectionConfig, ConnectorKind, Invocation, Operation, Params
from aionix.connectors.roots import TenantRoots, protected_paths
from aionix.errors import field_error

SqlParams = list[Any] | dict[str, Any] | None


class SqlConnection(ConnectionConfig):
    driver: Literal["sqlite", "postgres", "mysql"]
    path: str | None = Field(None, description="sqlite: the database file, inside [connectors] sql_roots")
    read_only: bool = Field(False, description="sqlite: open read-only")
    host: str | None = Field(None, description="postgres/mysql")
    port: int | None = Field(None, ge=1, le=65535)
    database: str | None = None
    user: str | None = None
    password_secret: str | None = Field(None, description="CredVault credential holding the password")
    ssl: bool = False
    pool_size: int = Field(5, ge=1, le=100)
    allow_hosts: list[str] = Field(
        default_factory=list, description="postgres/mysql: SSRF guard exceptions for this connection (admin only)"
    )
    shared_root: bool = Field(
        False, description="sqlite, cross-tenant admin only: path may lie anywhere inside [connectors] sql_roots"
    )

    @model_validator(mode="after")
    def _needs(self) -> SqlConnection:
        if self.driver == "sqlite" and not self.path:
            raise ValueError("driver sqlite needs path")
        if self.driver != "sqlite":
            for name in ("host", "database", "user"):
                if getattr(self, name) is None:
                    raise ValueError(f"driver {self.driver} needs {name}")
        return self


class QueryParams(Params):
    sql: str = Field(..., min_length=1, max_length=100_000)
    params: SqlParams = Field(None, description="bind parameters: a list (positional) or an object (named)")
    max_rows: int | None = Field(None, ge=1, description="return at most this many rows (truncated: true)")


class ExecuteParams(Params):
    sql: str = Field(..., min_length=1, max_length=100_000)
    params: SqlParams = None


class Statement(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sql: str = Field(..., min_length=1, max_length=100_000)
    params: SqlParams = None


class TransactionParams(Params):
    statements: list[Statement] = Field(..., min_length=1, max_length=1000)


def jsonable(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() and abs(value) < 2**53 else float(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    return value


class RowCollector:
    """Collects rows until `max_rows` or the byte limit; then `truncated`."""

    def __init__(self, max_rows: int, max_bytes: int) -> None:
        self.rows: list[dict[str, Any]] = []
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self.size = 0
        self.truncated = False

    def add(self, row: dict[str, Any]) -> bool:
        """False when full (the row was not added)."""
        row = {k: jsonable(v) for k, v in row.items()}
        size = len(jsonutil.dumps(row, default=str))
        if len(self.rows) >= self.max_rows or self.size + size > self.max_bytes:
            self.truncated = True
            return False
        self.rows.append(row)
        self.size += size
        return True

    def result(self) -> dict[str, Any]:
        return {"rows": self.rows, "row_count": len(self.rows), "truncated": self.truncated}


def _collector(call: Invocation, p: QueryParams) -> RowCollector:
    return RowCollector(min(p.max_rows or call.settings.max_rows, call.settings.max_rows), call.max_result_bytes)


# ---------------------------------------------------------------------------- drivers
class SqliteDriver:
    def __init__(self, path: Path, read_only: bool) -> None:
        self.path = path
        self.read_only = read_only
        self.db: Any = None
        self.lock = asyncio.Lock()
        self.deadline = float("inf")

    async def connect(self) -> None:
        import aiosqlite

        uri = f"file:{self.path}?mode={'ro' if self.read_only else 'rwc'}"
        self.db = await aiosqlite.connect(uri, uri=True, isolation_level=None)
        self.db.row_factory = aiosqlite.Row
        await self.db.execute("PRAGMA busy_timeout = 5000")
        await self.db.set_progress_handler(self._abort_after_deadline, 1000)

    async def close(self) -> None:
        if self.db is not None:
            await self.db.close()

    def _abort_after_deadline(self) -> int:
        """SQLite progress handler: a non-zero answer aborts the running statement."""
        return 1 if time.monotonic() > self.deadline else 0

    def arm(self, timeout: float) -> None:
        self.deadline = time.monotonic() + timeout

    async def query(self, sql: str, params: SqlParams, rows: RowCollector, timeout: float = 3600) -> None:
        async with self.lock:
            self.arm(timeout)

            async def run() -> None:
                async with self.db.execute(sql, params or ()) as cur:
                    while True:
                        batch = await cur.fetchmany(256)
                        if not batch:
                            return
                        for row in batch:
                            if not rows.add(dict(row)):
                                return

            await run()

    async def execute(self, sql: str, params: SqlParams, timeout: float = 3600) -> int:
        async with self.lock:
            self.arm(timeout)
            cur = await self.db.execute(sql, params or ())
            count = cur.rowcount
            await cur.close()
            return max(count, 0)

    async def transaction(self, statements: list[Statement], timeout: float = 3600) -> list[int]:
        async with self.lock:
            self.arm(timeout)
            counts: list[int] = []
            await self.db.execute("BEGIN IMMEDIATE")
            try:
                for st in statements:
                    cur = await self.db.execute(st.sql, st.params or ())
                    counts.append(max(cur.rowcount, 0))
                    await cur.close()
                await self.db.execute("COMMIT")
            except BaseException:
                await asyncio.shield(self.db.execute("ROLLBACK"))
                raise
            return counts


class PostgresDriver:
    def __init__(self, config: SqlConnection, password: str | None) -> None:
        self.config = config
        self.password = password
        self.pool: Any = None

    async def connect(self) -> None:
        import asyncpg

        c = self.config
        self.pool = await asyncpg.create_pool(
            host=c.host,
            port=c.port or 5432,
            user=c.user,
            password=self.password,
            database=c.database,
            ssl=c.ssl or None,
            min_size=0,
            max_size=c.pool_size,
            timeout=c.timeout_seconds or 10,
        )

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()

    @staticmethod
    def _args(params: SqlParams) -> list[Any]:
        if isinstance(params, dict):
            raise field_error("parameters.params", "PostgreSQL takes positional parameters ($1, $2, …): give a list")
        return list(params or [])

    async def query(self, sql: str, params: SqlParams, rows: RowCollector, timeout: float = 3600) -> None:
        args = self._args(params)
        async with self.pool.acquire() as conn:
            execute = getattr(conn, "_execute", None)
            if execute is not None:
                # fetch() with a row limit on the protocol's Execute: one round trip, and never
                # more than max_rows + 1 rows in memory (asyncpg's fetchrow uses the same call)
                for record in await execute(sql, args, rows.max_rows + 1, None):
                    if not rows.add(dict(record)):
                        return
                return
            async with conn.transaction():
                async for record in conn.cursor(sql, *args, prefetch=256):
                    if not rows.add(dict(record)):
                        return

    @staticmethod
    def _count(status: str) -> int:
        last = status.rsplit(" ", 1)[-1]
        return int(last) if last.isdigit() else 0

    async def execute(self, sql: str, params: SqlParams, timeout: float = 3600) -> int:
        async with self.pool.acquire() as conn:
            return self._count(await conn.execute(sql, *self._args(params)))

    async def transaction(self, statements: list[Statement], timeout: float = 3600) -> list[int]:
        async with self.pool.acquire() as conn, conn.transaction():
            return [self._count(await conn.execute(st.sql, *self._args(st.params))) for st in statements]


class MysqlDriver:
    def __init__(self, config: SqlConnection, password: str | None) -> None:
        self.config = config
        self.password = password
        self.pool: Any = None

    async def connect(self) -> None:
        import aiomysql

        c = self.config
        self.pool = await aiomysql.create_pool(
            host=c.host,
            port=c.port or 3306,
            user=c.user,
            password=self.password or "",
            db=c.database,
            minsize=0,
            maxsize=c.pool_size,
            autocommit=True,
            connect_timeout=c.timeout_seconds or 10,
        )

    async def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
            await self.pool.wait_closed()

    @contextlib.asynccontextmanager
    async def _connection(self) -> Any:
        """A pooled connection; one interrupted mid-statement (timeout) is closed, not reused."""
        async with self.pool.acquire() as conn:
            try:
                yield conn
            except BaseException:
                conn.close()
                raise

    async def query(self, sql: str, params: SqlParams, rows: RowCollector, timeout: float = 3600) -> None:
        import aiomysql

        async with self._connection() as conn, conn.cursor(aiomysql.SSDictCursor) as cur:
            await cur.execute(sql, params)
            while True:
                batch = await cur.fetchmany(256)
                if not batch:
                    break
                if not all(rows.add(row) for row in batch):
                    break
            while await cur.fetchmany(1024):
                pass

    async def execute(self, sql: str, params: SqlParams, timeout: float = 3600) -> int:
        async with self._connection() as conn, conn.cursor() as cur:
            return max(await cur.execute(sql, params), 0)

    async def transaction(self, statements: list[Statement], timeout: float = 3600) -> list[int]:
        async with self._connection() as conn:
            await conn.begin()
            counts = []
            async with conn.cursor() as cur:
                for st in statements:
                    counts.append(max(await cur.execute(st.sql, st.params), 0))
            await conn.commit()
            return counts


# ---------------------------------------------------------------------------- errors
def _map_errors(exc: BaseException) -> BusError | None:
    """Driver exceptions as `Sql.*` names."""
    import sqlite3

    name = type(exc).__name__
    module = type(exc).__module__
    if isinstance(exc, sqlite3.OperationalError) and "interrupted" in str(exc):
        return KIND.error("Timeout", "the statement was interrupted at the timeout")
    if isinstance(exc, sqlite3.Error):
        return KIND.error("Error", str(exc))
    if module.startswith("asyncpg"):
        if name in ("InvalidPasswordError", "InvalidAuthorizationSpecificationError"):
            return KIND.error("AuthError", str(exc))
        if name in ("InvalidCatalogNameError",):
            return KIND.error("ConnectionError", str(exc))
        return KIND.error("Error", str(exc), details={"sqlstate": getattr(exc, "sqlstate", None)})
    if module.startswith(("pymysql", "aiomysql")):
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        if code in (1045, 1044, 1698):
            return KIND.error("AuthError", str(exc.args[-1]) if exc.args else str(exc))
        if code in (2003, 2002, 2013, 2006, 1049):
            return KIND.error("ConnectionError", str(exc.args[-1]) if exc.args else str(exc))
        return KIND.error("Error", str(exc.args[-1]) if exc.args else str(exc), details={"code": code})
    if isinstance(exc, OSError | ConnectionError):
        return KIND.error("ConnectionError", str(exc) or name)
    return None


async def _guard(coro: Any) -> Any:
    try:
        return await coro
    except BusError:
        raise
    except TimeoutError:
        raise
    except Exception as exc:
        mapped = _map_errors(exc)
        if mapped is None:
            raise
        raise mapped from None


# ---------------------------------------------------------------------------- kind
def sqlite_path(conn: Any) -> Path:
    """The database file: inside the tenant's part of `[connectors] sql_roots` (`{root}/{tenant}`)."""
    settings = conn.service.settings
    if not settings.sql_roots:
        raise KIND.error("NotConfigured", "no SQLite roots: set [connectors] sql_roots")
    roots = TenantRoots.of("sql_roots", settings.sql_roots, conn.tenant, protected_paths(conn.service.rt))
    full = roots.place(conn.config.path, "config.path", shared=conn.config.shared_root)
    if full in roots.configured or full in roots.parts():
        raise field_error("config.path", "names a root directory, not a database file")
    return full


async def open_driver(conn: Any) -> Any:
    config: SqlConnection = conn.config
    if config.driver == "sqlite":
        driver: Any = SqliteDriver(sqlite_path(conn), config.read_only)
    else:
        from aionix.connectors.kind import require_module

        module = "asyncpg" if config.driver == "postgres" else "aiomysql"
        extra = "postgres" if config.driver == "postgres" else "mysql"
        probe = ConnectorKind(
            name=f"sql ({config.driver})", title="", error_prefix="Sql", operations={}, module=module, extra=extra
        )
        require_module(probe)
        port = config.port or (5432 if config.driver == "postgres" else 3306)
        address = await conn.service.vet_endpoint(conn, config.host, port)
        password = await conn.secret(config.password_secret) if config.password_secret else None
        vetted = config.model_copy(update={"host": address, "port": port})
        driver = PostgresDriver(vetted, password) if config.driver == "postgres" else MysqlDriver(vetted, password)
    await _guard(driver.connect())
    return driver


async def close_driver(driver: Any) -> None:
    await driver.close()


async def run_query(call: Invocation) -> dict[str, Any]:
    p: QueryParams = call.params
    rows = _collector(call, p)
    await _guard(call.resource().query(p.sql, p.params, rows, call.timeout))
    return rows.result()


async def run_execute(call: Invocation) -> dict[str, Any]:
    p: ExecuteParams = call.params
    return {"row_count": await _guard(call.resource().execute(p.sql, p.params, call.timeout))}


async def run_transaction(call: Invocation) -> dict[str, Any]:
    p: TransactionParams = call.params
    counts = await _guard(call.resource().transaction(p.statements, call.timeout))
    return {"results": [{"row_count": n} for n in counts], "row_count": sum(counts)}


async def test_connection(conn: Any, settings: Any) -> dict[str, Any]:
    rows = RowCollector(1, 4096)
    await _guard(conn.resource.query("SELECT 1 AS ok", None, rows))
    return {"ok": rows.rows == [{"ok": 1}], "detail": f"{conn.config.driver}: SELECT 1 answered"}


_ROWS = {
    "type": "object",
    "properties": {
        "rows": {"type": "array", "items": {"type": "object"}},
        "row_count": {"type": "integer"},
        "truncated": {"type": "boolean"},
    },
    "required": ["rows", "row_count", "truncated"],
}

KIND = ConnectorKind(
    name="sql",
    title="SQL databases (SQLite, PostgreSQL, MySQL/MariaDB)",
    error_prefix="Sql",
    connection_model=SqlConnection,
    requires_connection=True,
    default_operation="query",
    operations={
        "query": Operation("query", "Run a SELECT; rows as objects", QueryParams, _ROWS, run_query),
        "execute": Operation(
            "execute",
            "Run one statement; the number of rows changed",
            ExecuteParams,
            {"type": "object", "properties": {"row_count": {"type": "integer"}}},
            run_execute,
        ),
        "transaction": Operation(
            "transaction",
            "Run statements in one transaction (all or nothing)",
            TransactionParams,
            {"type": "object", "properties": {"results": {"type": "array"}, "row_count": {"type": "integer"}}},
            run_transaction,
        ),
    },
    open=open_driver,
    close=close_driver,
    test=test_connection,
    examples=[
        {"connection": "orders-db", "operation": "query", "sql": "SELECT * FROM orders WHERE id = $1", "params": [42]}
    ],
)
