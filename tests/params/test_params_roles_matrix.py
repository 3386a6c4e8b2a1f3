"""RELIABILITY S1 for ParamStore: every route × {no key, viewer, operator, admin, another
tenant's operator} against the policy table below."""

from __future__ import annotations

import pytest
from paramkit import put, role_client, unique

RANK = {"viewer": 1, "operator": 2, "admin": 3}
POLICY = [
    ("GET", "/api/v1/params?prefix=/m", None, "viewer"),
    ("GET", "/api/v1/params?prefix=/m&recursive=true", None, "viewer"),
    ("GET", "/api/v1/params/m/key", None, "viewer"),
    ("GET", "/api/v1/params/m/key/versions", None, "viewer"),
    ("PUT", "/api/v1/params/m/key", {"type": "string", "value": "v2"}, "operator"),
    ("POST", "/api/v1/params/m/key/labels", {"version": 1, "labels": ["first"]}, "operator"),
    ("POST", "/api/v1/params/m/key/rollback", {"version": 1}, "operator"),
    ("DELETE", "/api/v1/params/m/key", None, "operator"),
]


@pytest.mark.parametrize("role", ["viewer", "operator", "admin"])
def test_each_route_allows_exactly_the_roles_in_the_policy(server, admin, role):
    tenant = unique("pm").lower()
    owner = role_client(server, admin, tenant, "operator")
    caller = role_client(server, admin, tenant, role)
    put(owner, "/m/key", "v1")
    for method, path, body, least in POLICY:
        r = caller.request(method, path, json=body)
        if RANK[role] >= RANK[least]:
            assert r.status_code < 400, f"{role} {method} {path}: {r.status_code} {r.text}"
        else:
            assert r.status_code == 403, f"{role} {method} {path}: {r.status_code} {r.text}"


def test_no_key_is_401_and_another_tenant_sees_nothing(server, admin):
    owner = role_client(server, admin, unique("po").lower(), "operator")
    other = role_client(server, admin, unique("pt").lower(), "operator")
    put(owner, "/m/key", "owner-only-value")
    anonymous = server.client("")
    for method, path, body, _ in POLICY:
        assert anonymous.request(method, path, json=body).status_code == 401, f"{method} {path}"
        if method == "PUT":
            continue  # a put in another tenant creates that tenant's own parameter
        r = other.request(method, path, json=body)
        assert "owner-only-value" not in r.text
        if "/m/key" in path:
            assert r.status_code == 404, f"other tenant {method} {path}: {r.status_code}"
        else:
            assert r.status_code == 200 and "/m/key" not in r.text
    assert owner.get("/api/v1/params/m/key").json()["value"] == "owner-only-value"
