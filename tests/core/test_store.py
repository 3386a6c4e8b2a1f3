import asyncio
import random
import sqlite3

import pytest

from aionix.errors import StoreError
from aionix.store.queries import load_migrations, load_queries
from aionix.store.sqlite import SQLiteStore, UniqueViolation


def _pg_store():
    import pgstore

    from aionix.store.postgres import PostgresStore

    url, password = pgstore.new_database("store")
    return PostgresStore(url, password=password)


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request, tmp_path):
    """Each store-level test runs on both stores (PostgreSQL: a real server, fresh database)."""
    s = SQLiteStore(tmp_path / "t.db") if request.param == "sqlite" else _pg_store()
    await s.start()
    yield s
    await s.close()


@pytest.fixture
async def sqlite_store(tmp_path):
    s = SQLiteStore(tmp_path / "t.db")
    await s.start()
    yield s
    await s.close()


def meta(key, value="v"):
    return {"key": key, "value": value}


async def test_settings_wal_full_foreign_keys(sqlite_store):
    store = sqlite_store
    conn = sqlite3.connect(store.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    assert store._writer.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert store._writer.execute("PRAGMA foreign_keys").fetchone()[0] == 1


async def test_migrations_apply_once_and_are_recorded(tmp_path):
    s = SQLiteStore(tmp_path / "m.db")
    await s.start()
    await s.close()
    s = SQLiteStore(tmp_path / "m.db")
    await s.start()
    conn = sqlite3.connect(tmp_path / "m.db")
    versions = [r[0] for r in conn.execute("SELECT version FROM schema_version ORDER BY version")]
    conn.close()
    assert versions == [m.version for m in load_migrations("sqlite")]
    await s.close()


async def test_concurrent_writers_are_group_committed_and_each_sees_its_commit(store):
    await asyncio.gather(*(store.execute("core.put_meta", meta(f"k{i}")) for i in range(500)))
    assert store.stats["transactions"] == 500
    assert store.stats["commits"] < 500
    rows = await asyncio.gather(*(store.fetch_one("core.get_meta", {"key": f"k{i}"}) for i in range(500)))
    assert all(r == {"value": "v"} for r in rows)


async def test_a_failing_caller_does_not_undo_the_others_in_its_group(store):
    def good(i):
        return lambda tx: tx.execute("core.put_meta", meta(f"g{i}"))

    def bad(tx):
        tx.execute("core.put_meta", meta("half"))
        raise ValueError("boom")

    jobs = [store.transaction(good(i)) for i in range(20)] + [store.transaction(bad)]
    results = await asyncio.gather(*jobs, return_exceptions=True)
    assert isinstance(results[-1], ValueError)
    assert await store.fetch_one("core.get_meta", {"key": "half"}) is None
    for i in range(20):
        assert await store.fetch_one("core.get_meta", {"key": f"g{i}"}) is not None


async def test_reads_inside_a_transaction_see_its_own_writes(store):
    def fn(tx):
        tx.execute("core.put_meta", meta("own", "1"))
        return tx.fetch_one("core.get_meta", {"key": "own"})

    assert await store.transaction(fn) == {"value": "1"}


async def test_unique_violation_is_a_conflict(store):
    row = {
        "id": "k1",
        "tenant": "t",
        "name": "n",
        "role": "admin",
        "hash": "h",
        "prefix": "p",
        "cross_tenant": 0,
        "created_at": 1.0,
        "created_by": None,
    }
    await store.execute("core.insert_key", row)
    with pytest.raises(UniqueViolation) as info:
        await store.execute("core.insert_key", row)
    assert info.value.status == 409


async def test_unknown_query_name_is_a_programming_error(store):
    with pytest.raises(KeyError):
        await store.fetch_one("core.no_such_query")


async def test_injected_commit_faults_never_half_apply(store):
    """RELIABILITY store faults: commits fail at a seeded 5%; every caller gets either its
    whole transaction or a clean StoreError, never half of it."""
    rng = random.Random(7)

    def fault():
        if rng.random() < 0.05:
            raise sqlite3.OperationalError(
                rng.choice(["disk I/O error", "database or disk is full", "database is locked"])
            )

    store.fault_hook = fault

    def pair(i):
        def fn(tx):
            tx.execute("core.put_meta", meta(f"a{i}"))
            tx.execute("core.put_meta", meta(f"b{i}"))

        return fn

    outcomes = []
    for chunk in range(10):
        outcomes += await asyncio.gather(
            *(store.transaction(pair(chunk * 40 + i)) for i in range(40)), return_exceptions=True
        )
    store.fault_hook = None
    failed = [i for i, o in enumerate(outcomes) if isinstance(o, Exception)]
    assert failed, "the seeded faults should have hit some commits"
    assert all(isinstance(outcomes[i], StoreError) for i in failed)
    for i in range(len(outcomes)):
        a = await store.fetch_one("core.get_meta", {"key": f"a{i}"})
        b = await store.fetch_one("core.get_meta", {"key": f"b{i}"})
        assert (a is None) == (b is None) == (i in failed)
    if store.dialect == "sqlite":
        assert store._writer.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


async def test_online_backup_is_consistent(sqlite_store, tmp_path):
    store = sqlite_store
    await asyncio.gather(*(store.execute("core.put_meta", meta(f"k{i}")) for i in range(100)))
    target = tmp_path / "backup.db"
    await store.backup(target)
    conn = sqlite3.connect(target)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT count(*) FROM meta WHERE key LIKE 'k%'").fetchone()[0] == 100
    conn.close()


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_closed_store_refuses_writes(tmp_path, kind):
    s = SQLiteStore(tmp_path / "c.db") if kind == "sqlite" else _pg_store()
    await s.start()
    await s.close()
    with pytest.raises(StoreError):
        await s.execute("core.put_meta", meta("x"))


def test_every_named_query_compiles_against_the_schema(tmp_path):
    """A typo in any service's named SQL fails here, not at first use."""
    import asyncio as aio

    s = SQLiteStore(tmp_path / "q.db")
    aio.run(s.start())
    aio.run(s.close())
    conn = sqlite3.connect(tmp_path / "q.db")
    from aionix.iam.audit import register_sql_functions

    register_sql_functions(conn)  # as on every store connection (the audit chain's insert uses them)
    for name, sql in load_queries("sqlite").items():
        try:
            conn.execute("EXPLAIN " + sql, {}) if ":" in sql else conn.execute("EXPLAIN " + sql)
        except sqlite3.ProgrammingError:
            pass  # parameters are not bound here; the statement itself compiled
        except sqlite3.Error as exc:
            raise AssertionError(f"{name}: {exc}") from None
    conn.close()


async def test_execute_then_insert_inserts_only_when_the_statement_changed_a_row(store):
    """The checkpoint's UPDATE and its history rows, together (one statement on PostgreSQL):
    when the UPDATE matched nothing (a fenced checkpoint) no row goes in."""
    key = {
        "id": "k1", "tenant": "t", "name": "n", "role": "admin", "hash": "h", "prefix": "p",
        "cross_tenant": 0, "created_at": 1.0, "created_by": None,
    }  # fmt: skip
    await store.execute("core.insert_key", key)

    def events(*seqs):
        return [("e1", seq, 1.0, f"T{seq}", None, None, None) for seq in seqs]

    revoke = {"now": 2.0, "id": "k1", "tenant": "t"}
    args = ("core.revoke_key", revoke, "stepflow.insert_event")
    assert await store.transaction(lambda tx: tx.execute_then_insert(*args, events(1, 2))) == 1
    # revoked already: the UPDATE changes nothing, so neither do the events
    assert await store.transaction(lambda tx: tx.execute_then_insert(*args, events(3))) == 0
    # no events: the statement alone
    assert await store.transaction(lambda tx: tx.execute_then_insert(*args, [])) == 0
    rows = await store.fetch_all("stepflow.history", {"id": "e1", "after": 0, "limit": 10})
    assert [(r["seq"], r["type"]) for r in rows] == [(1, "T1"), (2, "T2")]
    assert (await store.fetch_one("core.get_key", {"id": "k1", "tenant": "t"}))["revoked_at"] == 2.0
    if store.dialect == "postgres":  # the two went as one statement
        assert "core.revoke_key+stepflow.insert_event" in store._wstmts


def _one_group(store, jobs):
    """Submit `jobs` ((fn, replayable) pairs) while the writer is held by a job of its own, so
    that it takes them as one group; then let it go. Their futures, in order."""
    import threading

    held, release = threading.Event(), threading.Event()

    def hold(tx):
        held.set()
        release.wait(10)

    store.submit(hold)
    assert held.wait(10)
    futures = [store.submit(fn, replayable=replayable) for fn, replayable in jobs]
    release.set()
    return futures


async def test_replayable_jobs_of_one_group_where_one_fails_are_played_again_one_by_one(store):
    """Consecutive replayable jobs share one savepoint (SQLite and PostgreSQL alike); when one
    raises, their run is rolled back and each is played again in a savepoint of its own: every
    caller gets its own outcome, and the others' rows stay."""
    calls: dict[str, int] = {}

    def event(name, seq, execution="r2"):
        def fn(tx):
            calls[name] = calls.get(name, 0) + 1
            tx.executemany("stepflow.insert_event", [(execution, seq, 1.0, name, None, None, None)])
            return name

        return fn

    clean = _one_group(store, [(event(f"ok{i}", i + 1, "r1"), True) for i in range(5)])
    assert await asyncio.gather(*clean) == [f"ok{i}" for i in range(5)]
    assert all(calls[f"ok{i}"] == 1 for i in range(5))  # no failure: each ran once
    replays = store.stats["replays"]

    calls.clear()
    jobs = [
        (event("A", 1), True),
        (event("B", 1), True),  # the same (execution, seq): a unique violation
        (event("C", 2), True),
        (event("D", 3), False),  # not replayable: a savepoint of its own, run once
        (event("E", 4), True),
        (event("F", 5), True),
    ]
    outcomes = await asyncio.gather(*_one_group(store, jobs), return_exceptions=True)
    assert outcomes[0] == "A" and isinstance(outcomes[1], UniqueViolation) and outcomes[2:] == ["C", "D", "E", "F"]
    # A and B ran again (C never ran before B raised); D once; E and F after it, together
    assert calls == {"A": 2, "B": 2, "C": 1, "D": 1, "E": 1, "F": 1}
    assert store.stats["replays"] == replays + 1
    rows = await store.fetch_all("stepflow.history", {"id": "r2", "after": 0, "limit": 10})
    assert [(r["seq"], r["type"]) for r in rows] == [(1, "A"), (2, "C"), (3, "D"), (4, "E"), (5, "F")]


async def test_a_replayable_job_that_raises_after_writing_leaves_nothing_of_its_own(store):
    def write(seq, fail=False):
        def fn(tx):
            tx.executemany("stepflow.insert_event", [("r3", seq, 1.0, f"S{seq}", None, None, None)])
            if fail:
                raise ValueError("refused after a write")
            return seq

        return fn

    futures = _one_group(store, [(write(1), True), (write(2, fail=True), True), (write(3), True)])
    outcomes = await asyncio.gather(*futures, return_exceptions=True)
    assert outcomes[0] == 1 and isinstance(outcomes[1], ValueError) and outcomes[2] == 3
    rows = await store.fetch_all("stepflow.history", {"id": "r3", "after": 0, "limit": 10})
    assert [r["seq"] for r in rows] == [1, 3]


async def test_many_rows_of_a_plain_insert_go_in_whole_or_not_at_all(store):
    """`executemany` of a plain INSERT (multi-row statements on SQLite, 64 rows each): every
    row in order; a clash in a later chunk leaves none of the job's rows."""

    def rows(execution, seqs):
        return [(execution, s, float(s), f"T{s}", "S", "0", f'{{"n":{s}}}') for s in seqs]

    await store.transaction(lambda tx: tx.executemany("stepflow.insert_event", rows("m1", range(1, 151))))
    got = await store.fetch_all("stepflow.history", {"id": "m1", "after": 0, "limit": 500})
    assert [(r["seq"], r["type"], r["detail"]) for r in got] == [(s, f"T{s}", f'{{"n":{s}}}') for s in range(1, 151)]

    clash = rows("m2", range(1, 101)) + rows("m2", [70])  # the duplicate is in the second chunk
    with pytest.raises(UniqueViolation):
        await store.transaction(lambda tx: tx.executemany("stepflow.insert_event", clash))
    assert await store.fetch_all("stepflow.history", {"id": "m2", "after": 0, "limit": 500}) == []


async def test_rows_of_unequal_length_are_refused_not_shifted(sqlite_store):
    """A multi-row statement binds the rows as one list: a short row next to a long one must
    fail, never move values into the neighbouring row's columns."""
    bad = [("u1", 1, 1.0, "A", None, None), ("u1", 2, 2.0, "B", None, None, None, None)]
    with pytest.raises(StoreError):
        await sqlite_store.transaction(lambda tx: tx.executemany("stepflow.insert_event", bad))
    assert await sqlite_store.fetch_all("stepflow.history", {"id": "u1", "after": 0, "limit": 10}) == []
