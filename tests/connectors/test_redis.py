"""The redis kind against a real redis-server from Debian's packages."""

from __future__ import annotations

import pytest
from serverproc import free_port

from connectors.support import error_name, make_connection, make_secret, run_action, unique


@pytest.fixture(scope="module")
def rconn(api, redis_server):
    secret = make_secret(api, redis_server.password)
    return make_connection(api, "redis", {"port": redis_server.port, "password_secret": secret})


def op(api, conn, operation, **params):
    r = run_action(api, "redis", params, connection=conn, operation=operation)
    assert r.status_code == 200, r.text
    return r.json()["result"]


def test_strings_counters_and_expiry(api, rconn):
    key = unique("k")
    assert op(api, rconn, "set", key=key, value={"total": 9.5}) == {"key": key, "set": True}
    assert op(api, rconn, "get", key=key, parse_json=True)["value"] == {"total": 9.5}
    assert op(api, rconn, "set", key=key, value="other", nx=True)["set"] is False
    assert op(api, rconn, "get", key=key)["value"] == '{"total":9.5}'
    counter = unique("c")
    assert op(api, rconn, "incr", key=counter)["value"] == 1
    assert op(api, rconn, "incr", key=counter, by=5)["value"] == 6
    assert op(api, rconn, "expire", key=counter, seconds=100)["set"] is True
    assert op(api, rconn, "del", keys=[key, counter])["deleted"] == 2
    assert op(api, rconn, "get", key=key) == {"key": key, "exists": False, "value": None, "truncated": False}


def test_hashes_lists_publish_streams(api, rconn):
    h = unique("h")
    assert op(api, rconn, "hset", key=h, fields={"a": "1", "b": 2})["added"] == 2
    assert op(api, rconn, "hget", key=h, field="b")["value"] == "2"
    assert op(api, rconn, "hget", key=h)["fields"] == {"a": "1", "b": "2"}
    assert op(api, rconn, "hdel", key=h, fields=["a"])["deleted"] == 1
    lst = unique("l")
    assert op(api, rconn, "push", key=lst, values=["x", "y"])["length"] == 2
    assert op(api, rconn, "range", key=lst)["values"] == ["x", "y"]
    assert op(api, rconn, "pop", key=lst)["value"] == "x"
    assert op(api, rconn, "publish", channel=unique("ch"), message={"hi": 1})["receivers"] == 0
    stream = unique("s")
    first = op(api, rconn, "xadd", key=stream, fields={"event": "created", "n": 1})["id"]
    op(api, rconn, "xadd", key=stream, fields={"event": "paid"})
    read = op(api, rconn, "xread", key=stream)
    assert [e["fields"]["event"] for e in read["entries"]] == ["created", "paid"]
    after = op(api, rconn, "xread", key=stream, after=first)
    assert [e["fields"]["event"] for e in after["entries"]] == ["paid"]


def test_large_value_truncated(api, rconn):
    key = unique("big")
    op(api, rconn, "set", key=key, value="z" * 100_000)
    got = op(api, rconn, "get", key=key)
    assert got["truncated"] is True
    assert len(got["value"]) == 65536


def test_bad_credentials_server_down_timeout_and_bad_parameters(api, redis_server):
    wrong = make_secret(api, "wrong-password")
    bad = make_connection(api, "redis", {"port": redis_server.port, "password_secret": wrong})
    assert error_name(run_action(api, "redis", {"key": "x"}, connection=bad, operation="get")) == "Redis.AuthError"
    test = api.post(f"/api/v1/connections/{bad}/test").json()
    assert test["ok"] is False
    assert test["error"] == "Redis.AuthError"
    down = make_connection(api, "redis", {"port": free_port()})
    assert (
        error_name(run_action(api, "redis", {"key": "x"}, connection=down, operation="get")) == "Redis.ConnectionError"
    )
    secret = make_secret(api, redis_server.password)
    slow = make_connection(api, "redis", {"port": redis_server.port, "password_secret": secret})
    r = run_action(
        api,
        "redis",
        {"key": unique("empty"), "after": "$", "block_ms": 5000, "timeout": 0.5},
        connection=slow,
        operation="xread",
    )
    assert error_name(r) == "Redis.Timeout"
    r = api.post(
        "/api/v1/actions",
        json={
            "name": unique("r"),
            "kind": "redis",
            "connection": slow,
            "operation": "incr",
            "parameters": {"key": "x", "by": "lots"},
        },
    )
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "parameters.by"
    r = api.post(
        "/api/v1/actions",
        json={"name": unique("r"), "kind": "redis", "connection": slow, "operation": "flushall", "parameters": {}},
    )
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "operation"
