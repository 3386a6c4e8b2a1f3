"""The PostgreSQL store beside the SQLite one: every SQLite query and migration has a PostgreSQL
counterpart, every PostgreSQL query prepares against the migrated schema, values round-trip as
SQLite gives them back, and `[database] url` selects it without a password in the config.
A real PostgreSQL from Debian's package (tests/pgstore.py)."""

from __future__ import annotations

import asyncio
import re
from importlib import resources

import asyncpg
import pgstore
import pytest

from aionix import config as configlib
from aionix.errors import ConfigError
from aionix.store import open_store
from aionix.store.postgres import PostgresStore, compile_query, parse_url
from aionix.store.queries import load_migrations, load_queries


def test_every_sqlite_query_and_migration_has_a_postgres_counterpart():
    """Guard: a service adding a SQLite named query or migration must port it
    (`.venv/bin/python scripts/port_sql_to_postgres.py` writes a first translation)."""
    sqlite_q, pg_q = load_queries("sqlite"), load_queries("postgres")
    missing = sorted(set(sqlite_q) - set(pg_q))
    assert not missing, f"named queries without a PostgreSQL version: {missing}"
    s_m = {(m.version, m.name) for m in load_migrations("sqlite")}
    p_m = {(m.version, m.name) for m in load_migrations("postgres")}
    assert s_m - p_m == set(), f"migrations without a PostgreSQL version: {sorted(s_m - p_m)}"
    root = resources.files("aionix.store")
    for sub in (root / "sql" / "postgres", root / "migrations" / "postgres"):
        for entry in sub.iterdir():
            assert "TODO(postgres)" not in entry.read_text(), f"{entry.name}: an unfinished translation"


def test_same_parameters_as_sqlite():
    """The services pass the same parameters to both dialects."""
    sqlite_q, pg_q = load_queries("sqlite"), load_queries("postgres")
    extra = {"core.insert_audit", "core.insert_audit_returning"}  # the store adds :seq, :prev_hash, :hash
    for name, sql in sqlite_q.items():
        s, p = compile_query(sql), compile_query(pg_q[name])
        if name in extra:
            assert set(s.names or ()) <= set(p.names or ()), name
        elif s.names is None:
            assert p.names is None and s.count == p.count, name
        else:
            assert set(s.names) == set(p.names or ()), name


def test_placeholders_skip_literals_comments_and_casts():
    q = compile_query("-- it's :not\nSELECT ':no', x::text, :a, :b, :a FROM t WHERE y = '?'")
    assert q.sql == "SELECT ':no', x::text, $1, $2, $1 FROM t WHERE y = '?'"
    assert q.names == ("a", "b")
    assert compile_query("INSERT INTO t VALUES (?, ?)").sql == "INSERT INTO t VALUES ($1, $2)"
    from aionix.store.postgres import _args

    assert _args(compile_query("SELECT 1"), "q", {"unused": 1}) == []  # as SQLite: ignored
    assert _args(compile_query("SELECT :a"), "q", {"a": 1, "extra": 2}) == [1]
    locked = compile_query("SELECT a FROM t WHERE k = :k /*tx: FOR UPDATE*/")
    assert locked.sql == "SELECT a FROM t WHERE k = $1" and locked.tx_sql == "SELECT a FROM t WHERE k = $1 FOR UPDATE"


def test_a_password_in_the_url_is_refused_naming_the_field(tmp_path, monkeypatch):
    with pytest.raises(ConfigError) as info:
        parse_url("postgresql://u:secret@db:5432/x", None)
    assert "database.url" in str(info.value) and "secret" not in str(info.value)
    f = tmp_path / "c.toml"
    f.write_text('[database]\nurl = "postgresql://u@db/x"\npassword = "hunter2"\n')
    with pytest.raises(ConfigError) as info:
        configlib.load(f, env={})
    assert "database.password" in str(info.value) and "hunter2" not in str(info.value)
    cfg = configlib.load(None, env={"AIONIX_DATABASE_PASSWORD": "pw"})
    assert cfg.database.password.get_secret_value() == "pw"
    pw = tmp_path / "pw"
    pw.write_text("from-file\n")
    cfg = configlib.load(
        None, env={"AIONIX_DATABASE_URL": "postgresql://u@127.0.0.1:1/x", "AIONIX_DATABASE_PASSWORD_FILE": str(pw)}
    )
    store = open_store(cfg)
    assert isinstance(store, PostgresStore)
    assert store.connect_args["password"] == "from-file"
    assert store.connect_args["host"] == "127.0.0.1" and store.connect_args["port"] == 1


@pytest.fixture
async def pg():
    url, password = pgstore.new_database("pgs")
    s = PostgresStore(url, password=password)
    await s.start()
    yield s
    await s.close()


async def test_every_query_prepares_and_the_endpoint_is_reported(pg):
    # start() prepared every named query (its transaction text, row locks included) against the
    # migrated schema (it fails otherwise); here the text plain reads run
    assert set(pg._coercer_cache) >= set(load_queries("postgres"))
    async with pg._pool.acquire() as conn:
        for name, sql in load_queries("postgres").items():
            q = compile_query(sql)
            try:
                await conn.prepare(q.sql)
            except asyncpg.PostgresError as exc:
                raise AssertionError(f"{name}: {exc}") from None
            assert "FOR UPDATE" not in q.sql or name == "core.pg_audit_head", name
    port = pg.connect_args["port"]
    assert ("127.0.0.1", port) in pg.network_endpoints()


async def test_values_round_trip_as_sqlite_gives_them(pg):
    key = {
        "id": "k1",
        "tenant": "t",
        "name": "n",
        "role": "admin",
        "hash": "h",
        "prefix": "p",
        "cross_tenant": True,  # a bool binds as 0/1, as in SQLite
        "created_at": 5,  # an int where a REAL is expected
        "created_by": None,
    }
    await pg.execute("core.insert_key", key)
    row = await pg.fetch_one("core.key_by_hash", {"hash": "h"})
    assert row is not None
    assert row["cross_tenant"] == 1 and type(row["cross_tenant"]) is int
    assert row["created_at"] == 5.0 and type(row["created_at"]) is float

    def fn(tx):
        tx.execute(
            "core.insert_system_key",
            {
                "name": "s",
                "master_id": "m",
                "key_nonce": bytearray(b"\x00\x01"),
                "wrapped_key": memoryview(b"\xff"),
                "now": 1.5,
            },
        )
        return tx.fetch_one("core.get_system_key", {"name": "s"})

    got = await pg.transaction(fn)
    assert got == {"name": "s", "master_id": "m", "key_nonce": b"\x00\x01", "wrapped_key": b"\xff"}


async def test_migrations_apply_once_under_concurrent_starts():
    url, password = pgstore.new_database("mig")
    stores = [PostgresStore(url, password=password) for _ in range(3)]
    await asyncio.gather(*(s.start() for s in stores))
    for s in stores:
        await s.close()
    conn = await asyncpg.connect(url.replace("postgresql://aionix@", "postgresql://aionix:" + password + "@"))
    try:
        versions = [r[0] for r in await conn.fetch("SELECT version FROM schema_version ORDER BY version")]
        cols = {
            (r["table_name"], r["column_name"]): r["data_type"]
            for r in await conn.fetch(
                "SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = 'public'"
            )
        }
    finally:
        await conn.close()
    assert versions == [m.version for m in load_migrations("postgres")]
    # SQLite's storage classes, one for one: INTEGER, REAL, BLOB, TEXT
    assert cols[("api_keys", "cross_tenant")] == "bigint"
    assert cols[("api_keys", "created_at")] == "double precision"
    assert cols[("system_keys", "wrapped_key")] == "bytea"
    assert cols[("api_keys", "id")] == "text"
    assert not any(re.fullmatch("json|jsonb|boolean|numeric", t) for t in cols.values())


async def test_the_audit_chain_is_computed_as_on_sqlite(pg, tmp_path):
    """PostgreSQL cannot call the server's Python: the store computes the chain's hash and the
    PII mask before the insert; the rows verify with the same row_hash."""
    from aionix.iam.audit import row_hash

    for i in range(3):
        await pg.execute(
            "core.insert_audit",
            {
                "ts": 1000.0 + i, "tenant": "t", "key_id": "k", "ip": "1.2.3.4", "method": "POST", "path": "/x",
                "action": "a.b", "resource": None, "status": 200, "details": f'{{"n": {i}}}',
            },
        )  # fmt: skip
    rows = await pg.fetch_all("audit_chain.page", {"chain": "t", "after": -1, "limit": 10})
    assert [r["seq"] for r in rows] == [1, 2, 3]
    prev = ""
    for r in rows:
        assert r["prev_hash"] == prev
        expect = row_hash(
            prev, r["seq"], r["ts"], r["tenant"], r["key_id"], r["ip"], r["method"], r["path"],
            r["action"], r["resource"], r["status"], r["details"],
        )  # fmt: skip
        assert r["hash"] == expect
        prev = r["hash"]
    head = await pg.fetch_all("audit_chain.heads")
    assert [(h["chain"], h["seq"]) for h in head] == [("t", 3)]


async def test_audit_details_updates_are_masked_row_by_row(pg):
    """The batched details update (executemany, as the auth audit flushes it) masks PII like
    SQLite's aionix_pii_mask does in its SQL."""
    row = {
        "ts": 1.0, "tenant": "t", "key_id": "k", "ip": None, "method": "GET", "path": "/x",
        "action": "a.b", "resource": None, "status": 200, "details": "{}",
    }  # fmt: skip
    rid = await pg.transaction(lambda tx: tx.fetch_one("core.insert_audit_returning", row))
    await pg.transaction(
        lambda tx: tx.executemany(
            "core.update_audit_details", [{"id": rid["id"], "details": '{"who": "bob@example.com"}'}]
        )
    )
    rows = await pg.fetch_all("audit_chain.page", {"chain": "t", "after": -1, "limit": 10})
    assert "bob@example.com" not in rows[0]["details"], rows[0]["details"]


def test_connections_cannot_reach_the_store_database(make_server):
    """The store's own host:port is reserved in the SSRF guard like the server's API port: an
    allow list that lets loopback through still refuses it."""
    from connectors.support import error_name, make_connection, make_secret, run_action

    url, password = pgstore.new_database("ssrf")
    server = make_server(
        env={
            "AIONIX_DATABASE_URL": url,
            "AIONIX_DATABASE_PASSWORD": password,
            "AIONIX_CONNECTORS_ALLOW_HOSTS": "127.0.0.1",
        }
    ).start()
    pg = pgstore.server()
    with server.client() as api:
        secret = make_secret(api, pg.password)
        config = {"driver": "postgres", "host": "127.0.0.1", "port": pg.port, "user": pg.user}
        conn = make_connection(api, "sql", {**config, "database": url.rsplit("/", 1)[1], "password_secret": secret})
        r = run_action(api, "sql", {"sql": "SELECT 1"}, connection=conn)
        assert error_name(r) == "Sql.Refused", r.text
        assert "SSRF" in r.text


async def test_the_store_reconnects_after_the_database_restarts():
    """A restart of PostgreSQL (its own server here) between writes: the next write and read
    succeed on fresh connections; nothing committed before is lost."""
    import subprocess

    from connectors.services import _as, pg_bin, start_postgres

    own = start_postgres()
    try:
        s = PostgresStore(f"postgresql://{own.user}@127.0.0.1:{own.port}/{own.database}", password=own.password)
        await s.start()
        try:
            await s.execute("core.put_meta", {"key": "before", "value": "1"})
            opts = f"-p {own.port} -k {own.root} -c listen_addresses=127.0.0.1 -c fsync=off"
            argv = [pg_bin("pg_ctl"), "-D", str(own.root / "data"), "-l", str(own.root / "log"), "-m", "fast"]
            await asyncio.to_thread(
                subprocess.run, _as("postgres", [*argv, "-w", "-o", opts, "restart"]), check=True, timeout=120
            )
            await s.execute("core.put_meta", {"key": "after", "value": "2"})
            assert await s.fetch_one("core.get_meta", {"key": "before"}) == {"value": "1"}
            assert await s.fetch_one("core.get_meta", {"key": "after"}) == {"value": "2"}
        finally:
            await s.close()
    finally:
        own.stop()


def test_an_insert_of_single_values_has_an_array_form_for_executemany():
    from types import SimpleNamespace

    from aionix.store.postgres import bulk_insert_sql

    def types(*names):
        return [SimpleNamespace(name=n, kind="scalar", schema="pg_catalog") for n in names]

    sql = "INSERT INTO t (a, b) VALUES ($1, $2) ON CONFLICT (a) DO NOTHING"
    assert bulk_insert_sql(sql, types("text", "int8")) == (
        "INSERT INTO t (a, b) SELECT * FROM unnest($1::text[], $2::int8[]) ON CONFLICT (a) DO NOTHING"
    )
    assert bulk_insert_sql("INSERT INTO t (a, b) VALUES ($1, lower($2))", types("text", "text")) is None
    assert bulk_insert_sql("INSERT INTO t (a, b) VALUES ($2, $1)", types("text", "text")) is None
    assert bulk_insert_sql("INSERT INTO t (a, b) VALUES ($1, $1)", types("text")) is None
    assert (
        bulk_insert_sql(
            "INSERT INTO t (a, b) VALUES ($1, $2) ON CONFLICT (a) DO UPDATE SET b = 1", types("text", "text")
        )
        is None
    )
    assert bulk_insert_sql("INSERT INTO t (a) VALUES ($1) RETURNING a", types("text")) is None
    custom = [SimpleNamespace(name="mood", kind="enum", schema="public")]
    assert bulk_insert_sql("INSERT INTO t (a) VALUES ($1)", custom) is None


def test_a_write_and_an_insert_of_single_values_compose_into_one_statement():
    from types import SimpleNamespace

    from aionix.store.postgres import then_insert_sql

    texts = [SimpleNamespace(name="text", kind="scalar", schema="pg_catalog")] * 2
    insert = "INSERT INTO h (a, b) VALUES ($1, $2)"
    assert then_insert_sql("UPDATE t SET x = $1 WHERE id = $2", 2, insert, texts) == (
        "WITH w AS (UPDATE t SET x = $1 WHERE id = $2 RETURNING 1), "
        "i AS (INSERT INTO h (a, b) SELECT * FROM unnest($3::text[], $4::text[]) WHERE EXISTS (SELECT 1 FROM w)) "
        "SELECT count(*) FROM w"
    )
    assert then_insert_sql("UPDATE t SET x = $1 RETURNING x", 1, insert, texts) is None
    assert then_insert_sql("INSERT INTO t (x) VALUES ($1)", 1, insert, texts) == (
        "WITH w AS (INSERT INTO t (x) VALUES ($1) RETURNING 1), "
        "i AS (INSERT INTO h (a, b) SELECT * FROM unnest($2::text[], $3::text[]) WHERE EXISTS (SELECT 1 FROM w)) "
        "SELECT count(*) FROM w"
    )
    assert then_insert_sql("SELECT 1 FROM t WHERE x = $1", 1, insert, texts) is None
    assert then_insert_sql("UPDATE t SET x = 1; DELETE FROM t", 0, insert, texts) is None
    assert then_insert_sql("UPDATE t SET x = $1", 1, "INSERT INTO h (a, b) VALUES ($1, lower($2))", texts) is None


async def test_executemany_of_an_insert_is_one_statement_with_the_rows_of_many(pg):
    """History rows (and every INSERT of plain values) go in as arrays: the same rows, NULLs and
    coerced values included, ON CONFLICT DO NOTHING within the batch, and a duplicate key fails
    the whole transaction function as row-by-row inserts did."""
    from aionix.store.sqlite import UniqueViolation

    rows = [("e1", i, 1000 + i, "StateEntered", None if i % 2 else f"S{i}", "0", None) for i in range(1, 6)]
    await pg.transaction(lambda tx: tx.executemany("stepflow.insert_event", rows))
    assert "stepflow.insert_event[]" in pg._wstmts  # the array form ran
    got = await pg.fetch_all("stepflow.history", {"id": "e1", "after": 0, "limit": 10})
    assert [(r["seq"], r["ts"], r["type"], r["state"]) for r in got] == [
        (i, float(1000 + i), "StateEntered", None if i % 2 else f"S{i}") for i in range(1, 6)
    ]
    tokens = [("tok1", "e1", "t", "0", 1.0), ("tok1", "e1", "t", "1", 2.0), ("tok2", "e1", "t", "2", 3)]
    await pg.transaction(lambda tx: tx.executemany("stepflow.insert_token", tokens))
    async with pg._pool.acquire() as conn:
        assert [tuple(r) for r in await conn.fetch("SELECT token, frame FROM sf_tokens ORDER BY token")] == [
            ("tok1", "0"),
            ("tok2", "2"),
        ]
    clash = [("e2", 1, 1.0, "A", None, None, None), ("e2", 1, 2.0, "B", None, None, None)]
    with pytest.raises(UniqueViolation):
        await pg.transaction(lambda tx: tx.executemany("stepflow.insert_event", clash))
    assert await pg.fetch_all("stepflow.history", {"id": "e2", "after": 0, "limit": 10}) == []


def _audit_row(i: int, tenant: str = "t") -> dict:
    return {
        "ts": 2000.0 + i, "tenant": tenant, "key_id": "k", "ip": None, "method": "POST", "path": "/x",
        "action": "a.b", "resource": None, "status": 200, "details": f'{{"n": {i}}}',
    }  # fmt: skip


async def _assert_chain_links(store: PostgresStore, chain: str, count: int) -> None:
    from aionix.iam.audit import row_hash

    rows = await store.fetch_all("audit_chain.page", {"chain": chain, "after": -1, "limit": 1000})
    assert [r["seq"] for r in rows] == list(range(1, count + 1))
    prev = ""
    for r in rows:
        assert r["prev_hash"] == prev
        assert r["hash"] == row_hash(
            prev, r["seq"], r["ts"], r["tenant"], r["key_id"], r["ip"], r["method"], r["path"],
            r["action"], r["resource"], r["status"], r["details"],
        )  # fmt: skip
        prev = r["hash"]
    heads = {h["chain"]: h for h in await store.fetch_all("audit_chain.heads")}
    assert (heads[chain]["seq"], heads[chain]["hash"]) == (count, prev)


async def test_the_audit_chain_stays_linked_across_nodes_and_rollbacks(pg, monkeypatch):
    """A writer inserts after the head it wrote last in one statement, which inserts nothing when
    that head moved (another node wrote, or the row was rolled back); the head is then read and
    locked. Two stores on one database (two nodes) writing at once keep one unbroken chain."""
    from aionix.store import postgres as pgmod

    other = PostgresStore(pg.url, password=pg.connect_args["password"])
    await other.start()
    try:
        ran: list[str] = []
        plain = pgmod._Tx._plain
        monkeypatch.setattr(pgmod._Tx, "_plain", lambda tx, q, p: ran.append(q) or plain(tx, q, p))
        await pg.execute("core.insert_audit", _audit_row(1))
        await pg.execute("core.insert_audit", _audit_row(2))
        # the first insert read the head; the second wrote after the one it remembered
        assert ran == ["core.pg_audit_head", "core.insert_audit_returning", "core.pg_insert_audit_after"]
        await other.execute("core.insert_audit", _audit_row(3))
        ran.clear()
        await pg.execute("core.insert_audit", _audit_row(4))  # the head moved: read again
        assert ran == ["core.pg_insert_audit_after", "core.pg_audit_head", "core.insert_audit_returning"]

        def rolled_back(tx):
            tx.execute("core.insert_audit", _audit_row(5))
            raise ValueError("after the audit row")

        with pytest.raises(ValueError):
            await pg.transaction(rolled_back)
        await pg.execute("core.insert_audit", _audit_row(6))  # the remembered head was rolled back
        await _assert_chain_links(pg, "t", 5)
        # both nodes at once, in groups (each insert in its own savepoint) and alone
        await asyncio.gather(
            *(s.execute("core.insert_audit", _audit_row(10 + i)) for i in range(40) for s in (pg, other))
        )
        await _assert_chain_links(pg, "t", 85)
    finally:
        await other.close()


async def test_a_failing_job_in_a_group_is_rolled_back_alone(pg):
    """A failing statement (its job rolled back to its savepoint) and the jobs around it in one
    group each come back with their own outcome."""
    from aionix.store.sqlite import UniqueViolation

    ok = [("d1", 1, 1.0, "A", None, None, None)]
    clash = [("d1", 1, 2.0, "B", None, None, None)]
    jobs = [pg.transaction(lambda tx, rows=rows: tx.executemany("stepflow.insert_event", rows)) for rows in (ok, clash)]
    jobs.append(pg.transaction(lambda tx: tx.fetch_one("stepflow_items.last_seq", ("d1",))))
    first, second, last = await asyncio.gather(*jobs, return_exceptions=True)
    assert first is None and isinstance(second, UniqueViolation) and last == {"n": 1}
    assert [r["type"] for r in await pg.fetch_all("stepflow.history", {"id": "d1", "after": 0, "limit": 10})] == ["A"]


def _hold_writer(pg):
    """Hold the writer with a job of its own, so that what is queued meanwhile goes in one
    group. (Its future, the event that lets it go.) The future gives the writer's round trips
    before the next group (the holding group's COMMIT is the one more)."""
    import threading

    held, release = threading.Event(), threading.Event()

    def hold(tx):
        held.set()
        release.wait(10)
        return pg.stats["round_trips"] + 1

    first = pg.submit(hold)
    assert held.wait(10)
    return first, release


def _one_group(pg, jobs):
    """Submit `jobs` ((fn, replayable) pairs) so the writer takes them as one group. The
    holding job's future and theirs, in order."""
    first, release = _hold_writer(pg)
    futures = [pg.submit(fn, replayable=replayable) for fn, replayable in jobs]
    release.set()
    return first, futures


async def test_replayable_jobs_share_one_savepoint_one_round_trip_a_job(pg):
    """Issue 17: a savepoint is a round trip, so a run of replayable jobs goes without one
    between them. (What happens when one of them raises, on both stores:
    tests/core/test_store.py.)"""

    def event(name, execution, seq):
        def fn(tx):
            tx.executemany("stepflow.insert_event", [(execution, seq, 1.0, name, None, None, None)])
            return name

        return fn

    commits, replays = pg.stats["commits"], pg.stats["replays"]
    first, futures = _one_group(pg, [(event(f"ok{i}", "r1", i + 1), True) for i in range(5)])
    trips = await first
    assert await asyncio.gather(*futures) == [f"ok{i}" for i in range(5)]
    assert pg.stats["commits"] == commits + 2  # the holding job's group and theirs
    # BEGIN with the savepoint, the 5 statements, RELEASE with the COMMIT (each job in a
    # savepoint of its own took 4 more)
    assert pg.stats["round_trips"] - trips == 7
    assert pg.stats["replays"] == replays


async def test_audit_rows_of_one_group_go_in_together_one_statement_a_chain(pg):
    """The audit rows of the requests in one group commit (`Store.execute` of
    `core.insert_audit`) go in over arrays, one statement a chain, linked as one by one; when
    the remembered head moved (another node wrote), the head is read and locked and they follow it."""
    other = PostgresStore(pg.url, password=pg.connect_args["password"])
    await other.start()
    try:
        await pg.execute("core.insert_audit", _audit_row(1))  # the head pg remembers
        await other.execute("core.insert_audit", _audit_row(2))  # ...moved by another node

        async def group(rows):
            first, release = _hold_writer(pg)
            tasks = [asyncio.ensure_future(pg.execute("core.insert_audit", row)) for row in rows]
            await asyncio.sleep(0.05)  # every one queued behind the holding job
            release.set()
            trips = await first
            assert await asyncio.gather(*tasks) == [1] * len(rows)
            return pg.stats["round_trips"] - trips

        batches = pg.stats["audit_batches"]
        # chain t: pg's remembered head is stale (the after-insert inserts nothing, the head is
        # read, the rows go in after it); chain u: a chain of its own, new
        rows = [_audit_row(3), _audit_row(4, "u"), _audit_row(5), _audit_row(6), _audit_row(7, "u")]
        trips = await group(rows)
        assert pg.stats["audit_batches"] == batches + 1
        # BEGIN, t: after (nothing) + head + insert, u: head + insert, COMMIT; and the two
        # array statements prepared at their first use
        assert trips == 7 + 2, trips
        await _assert_chain_links(pg, "t", 5)
        await _assert_chain_links(pg, "u", 2)
        # the heads are known now: one statement a chain
        trips = await group([_audit_row(8), _audit_row(9, "u"), _audit_row(10)])
        assert trips == 4, trips
        await _assert_chain_links(pg, "t", 7)
        await _assert_chain_links(pg, "u", 3)
        rows = await pg.fetch_all("audit_chain.page", {"chain": "t", "after": -1, "limit": 100})
        assert [r["details"] for r in rows][-3:] == ['{"n": 6}', '{"n": 8}', '{"n": 10}']
    finally:
        await other.close()
