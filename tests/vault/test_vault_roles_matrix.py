"""RELIABILITY S1 for CredVault: every route × {no key, viewer, operator, admin, another
tenant's admin} against the policy table below."""

from __future__ import annotations

import pytest
from vaultkit import create_secret, role_client, unique

RANK = {"viewer": 1, "operator": 2, "admin": 3}
#: (method, path template, body, least role). `{n}` is a secret the tenant owns.
POLICY = [
    ("GET", "/api/v1/secrets", None, "viewer"),
    ("GET", "/api/v1/secrets/{n}", None, "viewer"),
    ("GET", "/api/v1/secrets/{n}/versions", None, "viewer"),
    ("PUT", "/api/v1/secrets/{n}", {"value": "matrix-v2"}, "operator"),
    ("POST", "/api/v1/secrets/{n}/rotate", {"value": "matrix-v3"}, "operator"),
    ("POST", "/api/v1/secrets/{n}/reveal", None, "admin"),
    ("DELETE", "/api/v1/secrets/{n}", None, "operator"),
    ("POST", "/api/v1/secrets/{n}/restore", None, "operator"),
    ("POST", "/api/v1/secrets", {"name": "{new}", "type": "password", "value": "matrix-new"}, "operator"),
]


def _request(client, method, path, body, name):
    path = path.replace("{n}", name)
    if body is not None:
        body = {k: (v.replace("{new}", unique("new")) if isinstance(v, str) else v) for k, v in body.items()}
        return client.request(method, path, json=body)
    if method == "POST":
        return client.request(method, path, json={}) if path.endswith(("/rotate",)) else client.request(method, path)
    return client.request(method, path)


@pytest.mark.parametrize("role", ["viewer", "operator", "admin"])
def test_each_route_allows_exactly_the_roles_in_the_policy(server, admin, role):
    tenant = unique("mx").lower()
    owner = role_client(server, admin, tenant, "admin")
    caller = role_client(server, admin, tenant, role)
    name = unique("matrix")
    create_secret(owner, name, "matrix-v1")
    for method, path, body, least in POLICY:
        r = _request(caller, method, path, body, name)
        if RANK[role] >= RANK[least]:
            assert r.status_code < 400, f"{role} {method} {path}: {r.status_code} {r.text}"
        else:
            assert r.status_code == 403, f"{role} {method} {path}: {r.status_code} {r.text}"
        assert "matrix-v" not in r.text or ((method, least) == ("POST", "admin") and role == "admin")


def test_no_key_is_401_and_another_tenant_sees_nothing(server, admin):
    owner_tenant, other_tenant = unique("own").lower(), unique("oth").lower()
    owner = role_client(server, admin, owner_tenant, "admin")
    other = role_client(server, admin, other_tenant, "admin")
    name = unique("matrix")
    create_secret(owner, name, "matrix-v1")
    anonymous = server.client("")
    for method, path, body, _ in POLICY:
        assert _request(anonymous, method, path, body, name).status_code == 401, f"{method} {path}"
        r = _request(other, method, path, body, name)
        if "{n}" in path:
            assert r.status_code == 404, f"other tenant {method} {path}: {r.status_code}"
        assert "matrix-v1" not in r.text
    assert [s["name"] for s in owner.get("/api/v1/secrets").json()["items"]] == [name]
    for method, path in (("GET", "/api/v1/vault/master-key"), ("POST", "/api/v1/vault/master-key/rotate")):
        assert anonymous.request(method, path, json={} if method == "POST" else None).status_code == 401
        assert other.request(method, path, json={} if method == "POST" else None).status_code == 403
