"""Roles and tenants on every connectors route (RELIABILITY S1): viewers read, operators write
and execute, another tenant sees nothing, no key gets 401."""

from __future__ import annotations

import pytest

from connectors.support import make_action, make_connection, unique


@pytest.fixture(scope="module")
def keys(api):
    out = {}
    for role, tenant in (("viewer", None), ("operator", None), ("admin", "other-tenant")):
        body = {"name": unique(role), "role": role}
        if tenant:
            body["tenant"] = tenant
        r = api.post("/api/v1/keys", json=body)
        assert r.status_code == 201, r.text
        out[tenant or role] = r.json()["key"]
    return out


def test_role_and_tenant_matrix(api, conn_server, keys, http_target):
    conn = make_connection(api, "http", {"base_url": http_target.url})
    action = make_action(api, "http", {"url": "/json"}, connection=conn)
    reads = [
        ("GET", "/api/v1/connectors", None),
        ("GET", "/api/v1/connections", None),
        ("GET", f"/api/v1/connections/{conn}", None),
        ("GET", "/api/v1/actions", None),
        ("GET", f"/api/v1/actions/{action}", None),
    ]
    writes = [
        ("POST", "/api/v1/connections", {"name": unique("c"), "kind": "http", "config": {}}),
        ("PUT", f"/api/v1/connections/{conn}", {"config": {"base_url": http_target.url}}),
        ("POST", f"/api/v1/connections/{conn}/test", None),
        ("POST", "/api/v1/actions", {"name": unique("a"), "kind": "transform", "parameters": {"expression": "1"}}),
        ("POST", f"/api/v1/actions/{action}/execute", {}),
        ("PUT", f"/api/v1/actions/{action}", {"kind": "http", "connection": conn, "parameters": {"url": "/json"}}),
    ]
    with (
        conn_server.client(keys["viewer"]) as viewer,
        conn_server.client(keys["operator"]) as operator,
        conn_server.client(keys["other-tenant"]) as other,
        conn_server.client("") as anonymous,
    ):
        for method, path, _ in reads:
            assert viewer.request(method, path).status_code == 200, path
            assert anonymous.request(method, path).status_code == 401, path
        for method, path, body in writes:
            assert viewer.request(method, path, json=body).status_code == 403, path
            assert operator.request(method, path, json=body).status_code in (200, 201), path
            assert anonymous.request(method, path, json=body).status_code == 401, path
        assert other.get(f"/api/v1/connections/{conn}").status_code == 404
        assert other.get(f"/api/v1/actions/{action}").status_code == 404
        assert other.post(f"/api/v1/actions/{action}/execute", json={}).status_code == 404
        assert conn not in other.get("/api/v1/connections").text
        assert viewer.delete(f"/api/v1/actions/{action}").status_code == 403
        assert other.delete(f"/api/v1/connections/{conn}").status_code == 404
        assert operator.delete(f"/api/v1/actions/{action}").status_code == 200
        assert operator.delete(f"/api/v1/connections/{conn}").status_code == 200
