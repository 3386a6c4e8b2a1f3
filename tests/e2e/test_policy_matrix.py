"""RELIABILITY S1: every route × {no key, viewer, operator, admin} against the policy table
kept in the repo (tests/policy.json: operation -> least role, or "public").

The table is compared with the server's own OpenAPI document, so changing a route's role
means changing the table in the same commit (a reviewable line). Role checks run before the
body and query are read, so an empty body probes every operation."""

import json
import re
from pathlib import Path

import httpx

POLICY = Path(__file__).parents[1] / "policy.json"
RANK = {"viewer": 1, "operator": 2, "admin": 3}


def operations(spec):
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            yield f"{method.upper()} {path}", op.get("x-aionix-role", "public")


def test_policy_table_matches_the_routes(server):
    spec = httpx.get(server.url + "/api/openapi.json").json()
    actual = dict(operations(spec))
    expected = json.loads(POLICY.read_text())
    assert actual == expected, "routes and tests/policy.json disagree: update the table with the route"


def test_every_route_enforces_its_role(server, admin):
    spec = httpx.get(server.url + "/api/openapi.json").json()
    keys = {"admin": server.admin_key}
    for role in ("viewer", "operator"):
        keys[role] = admin.post("/api/v1/keys", json={"name": f"matrix-{role}", "role": role}).json()["key"]
    mismatches = []
    for operation, least in operations(spec):
        if least == "public":
            continue
        method, path = operation.split(" ", 1)
        url = server.url + re.sub(r"\{[^}]+\}", "policy-probe", path)
        for caller in ("none", "viewer", "operator", "admin"):
            headers = {} if caller == "none" else {"Authorization": f"Bearer {keys[caller]}"}
            body = {} if method in ("POST", "PUT", "PATCH") else None
            status = httpx.request(method, url, headers=headers, json=body, timeout=60).status_code
            if caller == "none":
                ok = status == 401
            elif RANK[caller] < RANK[least]:
                ok = status == 403
            else:
                ok = status not in (401, 403)
            if not ok:
                mismatches.append((operation, caller, status))
    assert mismatches == []
