"""The sql kind: SQLite files under the roots and a real PostgreSQL from Debian's packages."""

from __future__ import annotations

import sqlite3

import pytest

from connectors.support import error_name, make_action, make_connection, make_secret, run_action, unique


@pytest.fixture
def sqlite_conn(api, roots):
    path = roots["sql_part"] / f"{unique('db')}.sqlite"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT, total REAL); INSERT INTO orders VALUES (1, 'ann', 9.5), (2, 'bob', 20);"
    )
    db.close()
    return make_connection(api, "sql", {"driver": "sqlite", "path": path.name})


def test_sqlite_query_execute_and_transaction(api, sqlite_conn):
    r = run_action(
        api,
        "sql",
        {"sql": "SELECT id, customer, total FROM orders WHERE total > ? ORDER BY id", "params": [5]},
        connection=sqlite_conn,
    )
    assert r.status_code == 200, r.text
    assert r.json()["result"] == {
        "rows": [{"id": 1, "customer": "ann", "total": 9.5}, {"id": 2, "customer": "bob", "total": 20.0}],
        "row_count": 2,
        "truncated": False,
    }
    r = run_action(
        api,
        "sql",
        {"sql": "UPDATE orders SET total = total + 1 WHERE customer = :c", "params": {"c": "ann"}},
        connection=sqlite_conn,
        operation="execute",
    )
    assert r.json()["result"] == {"row_count": 1}
    stmts = [
        {"sql": "INSERT INTO orders (customer, total) VALUES (?, ?)", "params": ["cy", 1]},
        {"sql": "DELETE FROM orders WHERE customer = ?", "params": ["bob"]},
    ]
    r = run_action(api, "sql", {"statements": stmts}, connection=sqlite_conn, operation="transaction")
    assert r.json()["result"]["row_count"] == 2


def test_sqlite_transaction_is_all_or_nothing(api, sqlite_conn):
    stmts = [
        {"sql": "INSERT INTO orders (customer, total) VALUES (?, ?)", "params": ["dan", 1]},
        {"sql": "INSERT INTO nope VALUES (1)"},
    ]
    r = run_action(api, "sql", {"statements": stmts}, connection=sqlite_conn, operation="transaction")
    assert error_name(r) == "Sql.Error"
    r = run_action(
        api, "sql", {"sql": "SELECT count(*) AS n FROM orders WHERE customer = 'dan'"}, connection=sqlite_conn
    )
    assert r.json()["result"]["rows"] == [{"n": 0}]


def test_sqlite_values_are_bound_not_interpolated(api, sqlite_conn):
    evil = "x'); DROP TABLE orders; --"
    r = run_action(
        api,
        "sql",
        {"sql": "SELECT count(*) AS n FROM orders WHERE customer = ?", "params": [evil]},
        connection=sqlite_conn,
    )
    assert r.json()["result"]["rows"] == [{"n": 0}]
    r = run_action(api, "sql", {"sql": "SELECT count(*) AS n FROM orders"}, connection=sqlite_conn)
    assert r.json()["result"]["rows"][0]["n"] >= 2


def test_sqlite_large_result_truncated(api, sqlite_conn):
    r = run_action(
        api,
        "sql",
        {
            "sql": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 100000) SELECT x, 'padding-padding' AS p FROM c"
        },
        connection=sqlite_conn,
    )
    result = r.json()["result"]
    assert result["truncated"] is True
    assert 0 < result["row_count"] < 100000
    r = run_action(api, "sql", {"sql": "SELECT * FROM orders", "max_rows": 1}, connection=sqlite_conn)
    assert r.json()["result"]["row_count"] == 1
    assert r.json()["result"]["truncated"] is True


def test_sqlite_timeout_interrupts_the_statement(api, sqlite_conn):
    r = run_action(
        api,
        "sql",
        {
            "sql": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
            "timeout": 0.5,
        },
        connection=sqlite_conn,
    )
    assert error_name(r) == "Sql.Timeout"
    r = run_action(api, "sql", {"sql": "SELECT 1 AS one"}, connection=sqlite_conn)
    assert r.status_code == 200, r.text
    assert r.json()["result"]["rows"] == [{"one": 1}]


def test_sqlite_path_outside_roots_and_bad_parameters(api, tmp_path):
    r = api.post(
        "/api/v1/connections",
        json={"name": unique("sq"), "kind": "sql", "config": {"driver": "sqlite", "path": str(tmp_path / "x.db")}},
    )
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "config.path"
    r = api.post("/api/v1/connections", json={"name": unique("sq"), "kind": "sql", "config": {"driver": "oracle"}})
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "config.driver"
    r = api.post("/api/v1/actions", json={"name": unique("a"), "kind": "sql", "parameters": {"sql": "SELECT 1"}})
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "connection"


def test_sqlite_sql_error_is_named(api, sqlite_conn):
    r = run_action(api, "sql", {"sql": "SELEC nonsense"}, connection=sqlite_conn)
    assert error_name(r) == "Sql.Error"


def _pg_conn(api, pg, password: str | None = None) -> str:
    secret = make_secret(api, password or pg.password)
    return make_connection(
        api,
        "sql",
        {
            "driver": "postgres",
            "host": "127.0.0.1",
            "port": pg.port,
            "database": pg.database,
            "user": pg.user,
            "password_secret": secret,
        },
    )


def test_postgres_query_execute_transaction(api, postgres):
    conn = _pg_conn(api, postgres)
    table = unique("t").replace("-", "_")
    r = run_action(
        api,
        "sql",
        {
            "sql": f"CREATE TABLE {table} (id serial PRIMARY KEY, name text, amount numeric, at timestamptz DEFAULT now())"
        },
        connection=conn,
        operation="execute",
    )
    assert r.status_code == 200, r.text
    stmts = [
        {"sql": f"INSERT INTO {table} (name, amount) VALUES ($1, $2)", "params": [n, a]}
        for n, a in (("ann", 10), ("bob", 2.5))
    ]
    r = run_action(api, "sql", {"statements": stmts}, connection=conn, operation="transaction")
    assert r.json()["result"]["row_count"] == 2
    r = run_action(
        api,
        "sql",
        {"sql": f"SELECT name, amount, at FROM {table} WHERE amount > $1 ORDER BY id", "params": [1]},
        connection=conn,
    )
    rows = r.json()["result"]["rows"]
    assert [(row["name"], row["amount"]) for row in rows] == [("ann", 10), ("bob", 2.5)]
    assert isinstance(rows[0]["at"], str)
    r = run_action(
        api,
        "sql",
        {"sql": f"DELETE FROM {table} WHERE name = $1", "params": ["bob"]},
        connection=conn,
        operation="execute",
    )
    assert r.json()["result"] == {"row_count": 1}
    test = api.post(f"/api/v1/connections/{conn}/test").json()
    assert test["ok"] is True


def test_postgres_errors_are_named(api, postgres):
    conn = _pg_conn(api, postgres)
    assert error_name(run_action(api, "sql", {"sql": "SELECT * FROM no_such_table"}, connection=conn)) == "Sql.Error"
    assert (
        error_name(run_action(api, "sql", {"sql": "SELECT pg_sleep(5)", "timeout": 0.5}, connection=conn))
        == "Sql.Timeout"
    )
    bad = _pg_conn(api, postgres, password="wrong")
    assert error_name(run_action(api, "sql", {"sql": "SELECT 1"}, connection=bad)) == "Sql.AuthError"
    assert api.post(f"/api/v1/connections/{bad}/test").json()["error"] == "Sql.AuthError"
    from serverproc import free_port

    secret = make_secret(api, "x")
    down = make_connection(
        api,
        "sql",
        {
            "driver": "postgres",
            "host": "127.0.0.1",
            "port": free_port(),
            "database": "x",
            "user": "x",
            "password_secret": secret,
        },
    )
    assert error_name(run_action(api, "sql", {"sql": "SELECT 1"}, connection=down)) == "Sql.ConnectionError"
    r = run_action(api, "sql", {"sql": "SELECT $1::int", "params": {"a": 1}}, connection=conn)
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "parameters.params"


def test_postgres_large_result_truncated(api, postgres):
    conn = _pg_conn(api, postgres)
    name = make_action(
        api, "sql", {"sql": "SELECT g AS n, repeat('x', 100) AS pad FROM generate_series(1, 50000) g"}, connection=conn
    )
    r = api.post(f"/api/v1/actions/{name}/execute", json={})
    result = r.json()["result"]
    assert result["truncated"] is True
    assert result["rows"][0] == {"n": 1, "pad": "x" * 100}
