"""Connection pools: one per connection, shared by every call (20 concurrent calls open at most
the pool's size), replaced when the connection changes, and closed on shutdown."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from connectors.support import make_action, make_connection, make_secret


def _backends(pg) -> int:
    sql = "SELECT count(*) FROM pg_stat_activity WHERE usename = 'aionix' AND datname = 'aionix' AND pid <> pg_backend_pid()"
    return int(pg.psql(sql, database="postgres").strip())


def _wait_for(pg, expected, timeout: float = 20.0) -> int:
    deadline = time.monotonic() + timeout
    while True:
        n = _backends(pg)
        if expected(n) or time.monotonic() > deadline:
            return n
        time.sleep(0.2)


def test_pool_is_shared_and_closed_on_shutdown(make_server, postgres):
    baseline = _backends(postgres)
    server = make_server().start()
    with server.client() as api:
        secret = make_secret(api, postgres.password)
        conn = make_connection(
            api,
            "sql",
            {
                "driver": "postgres",
                "host": "127.0.0.1",
                "allow_hosts": ["127.0.0.1"],  # an admin opens the SSRF guard for the local server
                "port": postgres.port,
                "database": postgres.database,
                "user": postgres.user,
                "password_secret": secret,
                "pool_size": 3,
            },
        )
        action = make_action(api, "sql", {"sql": "SELECT pg_sleep(0.2) AS slept"}, connection=conn)
        with ThreadPoolExecutor(20) as pool:
            codes = list(
                pool.map(lambda _: api.post(f"/api/v1/actions/{action}/execute", json={}).status_code, range(20))
            )
        assert codes == [200] * 20
        opened = _backends(postgres) - baseline
        assert 1 <= opened <= 3
        # a changed connection gets a new pool; the old one is closed while the server runs on
        config = api.get(f"/api/v1/connections/{conn}").json()["config"]
        assert api.put(f"/api/v1/connections/{conn}", json={"config": {**config, "pool_size": 2}}).status_code == 200
        assert _wait_for(postgres, lambda n: n == baseline) == baseline
        assert api.post(f"/api/v1/actions/{action}/execute", json={}).status_code == 200
        assert _backends(postgres) - baseline == 1
    server.stop()
    assert _wait_for(postgres, lambda n: n == baseline) == baseline
