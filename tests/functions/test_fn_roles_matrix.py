"""RELIABILITY S1 for functions: every route × {no key, viewer, operator, admin, another
tenant's operator} against the policy table below."""

from __future__ import annotations

import pytest
from conftest import unique

RANK = {"viewer": 1, "operator": 2, "admin": 3}
SOURCE = "def handler(event, context):\n    return 'owner-only-result'\n"
POLICY = [
    ("GET", "/api/v1/functions", None, "viewer"),
    ("GET", "/api/v1/functions/{f}", None, "viewer"),
    ("GET", "/api/v1/functions/{f}/versions", None, "viewer"),
    ("GET", "/api/v1/functions/{f}/versions/1", None, "viewer"),
    ("GET", "/api/v1/functions/{f}/aliases/live", None, "viewer"),
    ("GET", "/api/v1/functions/{f}/invocations", None, "viewer"),
    ("GET", "/api/v1/functions/{f}/logs", None, "viewer"),
    ("POST", "/api/v1/functions/{f}/versions", {}, "operator"),
    ("PUT", "/api/v1/functions/{f}/aliases/live", {"version": "1"}, "operator"),
    ("POST", "/api/v1/functions/{f}/aliases/live/traffic", {"version": None, "weight": 0}, "operator"),
    ("POST", "/api/v1/functions/{f}/invoke", {}, "operator"),
    ("PUT", "/api/v1/functions/{f}", {"config": {"description": "changed"}}, "operator"),
    ("DELETE", "/api/v1/functions/{f}/aliases/live", None, "operator"),
    ("POST", "/api/v1/functions", "create", "operator"),
    ("DELETE", "/api/v1/functions/{f}", None, "operator"),
]


def _client(fn_server, fn, tenant: str, role: str):
    r = fn.post("/api/v1/keys", json={"name": unique("k"), "role": role, "tenant": tenant})
    assert r.status_code == 201, r.text
    return fn_server.client(r.json()["key"], timeout=120)


def _setup(owner) -> str:
    name = unique("rm")
    assert (
        owner.post(
            "/api/v1/functions", json={"name": name, "runtime": "python", "code": {"source": SOURCE}}
        ).status_code
        == 201
    )
    assert owner.put(f"/api/v1/functions/{name}/aliases/live", json={"version": "1"}).status_code == 200
    assert owner.post(f"/api/v1/functions/{name}/invoke", json={}).json()["result"] == "owner-only-result"
    return name


@pytest.mark.parametrize("role", ["viewer", "operator", "admin"])
def test_each_route_allows_exactly_the_roles_in_the_policy(fn_server, fn, role) -> None:
    tenant = unique("fm").lower()
    owner = _client(fn_server, fn, tenant, "operator")
    caller = _client(fn_server, fn, tenant, role)
    name = _setup(owner)
    for method, path, body, least in POLICY:
        if body == "create":
            body = {"name": unique("new"), "runtime": "python", "code": {"source": SOURCE}}
        r = caller.request(method, path.format(f=name), json=body)
        if RANK[role] >= RANK[least]:
            assert r.status_code < 400, f"{role} {method} {path}: {r.status_code} {r.text}"
        else:
            assert r.status_code == 403, f"{role} {method} {path}: {r.status_code} {r.text}"


def test_no_key_is_401_and_another_tenant_sees_nothing(fn_server, fn) -> None:
    owner = _client(fn_server, fn, unique("fo").lower(), "operator")
    other = _client(fn_server, fn, unique("ft").lower(), "operator")
    name = _setup(owner)
    anonymous = fn_server.client("")
    for method, path, body, _ in POLICY:
        if body == "create":
            continue  # a create in another tenant makes that tenant's own function
        url = path.format(f=name)
        assert anonymous.request(method, url, json=body).status_code == 401, f"{method} {path}"
        r = other.request(method, url, json=body)
        assert "owner-only-result" not in r.text
        if "{f}" in path:
            assert r.status_code == 404, f"other tenant {method} {path}: {r.status_code} {r.text}"
        else:
            assert r.status_code == 200 and name not in r.text
    assert owner.get(f"/api/v1/functions/{name}").status_code == 200
    assert owner.post(f"/api/v1/functions/{name}/invoke", json={}).json()["result"] == "owner-only-result"
    # resolving the owner's TRN from another tenant reveals nothing
    tenant = owner.get("/api/v1/whoami").json()["tenant"]
    resolved = other.get("/api/v1/resolve", params={"trn": f"trn:aionixfn:{tenant}:function/{name}"})
    assert resolved.status_code in (400, 403, 404) and "owner-only-result" not in resolved.text
