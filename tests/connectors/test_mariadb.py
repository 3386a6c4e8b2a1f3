"""The sql kind's MySQL driver against a real MariaDB from Debian's packages."""

from __future__ import annotations

import pytest
from serverproc import free_port

from connectors.services import start_mariadb
from connectors.support import error_name, make_connection, make_secret, run_action, unique


@pytest.fixture(scope="module")
def mariadb():
    db = start_mariadb()
    yield db
    db.stop()


def _conn(api, db, password: str | None = None) -> str:
    secret = make_secret(api, password or db.password)
    return make_connection(
        api,
        "sql",
        {
            "driver": "mysql",
            "host": "127.0.0.1",
            "port": db.port,
            "database": db.database,
            "user": db.user,
            "password_secret": secret,
        },
    )


def test_mariadb_query_execute_transaction(api, mariadb):
    conn = _conn(api, mariadb)
    table = unique("t").replace("-", "_")
    r = run_action(
        api,
        "sql",
        {"sql": f"CREATE TABLE {table} (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(50), amount DECIMAL(10,2))"},
        connection=conn,
        operation="execute",
    )
    assert r.status_code == 200, r.text
    stmts = [
        {"sql": f"INSERT INTO {table} (name, amount) VALUES (%s, %s)", "params": [n, a]}
        for n, a in (("ann", 10), ("bob", 2.5))
    ]
    assert (
        run_action(api, "sql", {"statements": stmts}, connection=conn, operation="transaction").json()["result"][
            "row_count"
        ]
        == 2
    )
    r = run_action(
        api,
        "sql",
        {"sql": f"SELECT name, amount FROM {table} WHERE amount > %(min)s ORDER BY id", "params": {"min": 1}},
        connection=conn,
    )
    assert r.json()["result"]["rows"] == [{"name": "ann", "amount": 10}, {"name": "bob", "amount": 2.5}]
    bad = [
        {"sql": f"INSERT INTO {table} (name, amount) VALUES (%s, %s)", "params": ["cy", 1]},
        {"sql": "INSERT INTO nope VALUES (1)"},
    ]
    assert (
        error_name(run_action(api, "sql", {"statements": bad}, connection=conn, operation="transaction")) == "Sql.Error"
    )
    r = run_action(
        api, "sql", {"sql": f"SELECT count(*) AS n FROM {table} WHERE name = %s", "params": ["cy"]}, connection=conn
    )
    assert r.json()["result"]["rows"] == [{"n": 0}]
    r = run_action(api, "sql", {"sql": "SELECT seq AS n FROM seq_1_to_50000"}, connection=conn)
    assert r.json()["result"]["truncated"] is True
    assert api.post(f"/api/v1/connections/{conn}/test").json()["ok"] is True


def test_mariadb_errors_are_named(api, mariadb):
    conn = _conn(api, mariadb)
    assert error_name(run_action(api, "sql", {"sql": "SELECT * FROM no_such_table"}, connection=conn)) == "Sql.Error"
    assert (
        error_name(run_action(api, "sql", {"sql": "SELECT SLEEP(5)", "timeout": 0.5}, connection=conn)) == "Sql.Timeout"
    )
    bad = _conn(api, mariadb, password="wrong")
    assert error_name(run_action(api, "sql", {"sql": "SELECT 1"}, connection=bad)) == "Sql.AuthError"
    down = make_connection(
        api, "sql", {"driver": "mysql", "host": "127.0.0.1", "port": free_port(), "database": "x", "user": "x"}
    )
    assert error_name(run_action(api, "sql", {"sql": "SELECT 1"}, connection=down)) == "Sql.ConnectionError"
