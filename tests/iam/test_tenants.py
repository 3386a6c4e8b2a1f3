"""Tenant management end to end against the real server: create and list (cross-tenant admins
only), suspend (the tenant's keys are refused, its schedules do not fire, its webhooks are
refused, nothing is deleted) and resume (all of it back), role checks, and `aio tenant`."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def key_in(admin: httpx.Client, tenant: str, role: str = "admin", cross: bool = False) -> str:
    r = admin.post("/api/v1/keys", json={"name": unique("k"), "role": role, "tenant": tenant, "cross_tenant": cross})
    assert r.status_code == 201, r.text
    return r.json()["key"]


def wait_for(check: Any, timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def fires(client: httpx.Client, name: str) -> list[dict[str, Any]]:
    r = client.get(f"/api/v1/triggers/{name}/history", params={"limit": 500})
    assert r.status_code == 200, r.text
    return r.json()["items"]


def test_create_list_and_roles(server, admin) -> None:
    name = unique("t")
    r = admin.post("/api/v1/tenants", json={"name": name})
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "active" and r.json()["quotas"] == {}
    assert admin.post("/api/v1/tenants", json={"name": name}).status_code == 409
    assert admin.post("/api/v1/tenants", json={"name": "Bad_Name"}).status_code == 422
    bad = admin.put(f"/api/v1/tenants/{name}/quotas", json={"executions_per_day": -1})
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "executions_per_day"
    assert admin.post("/api/v1/tenants/nobody-here/suspend").status_code == 404

    listed, cursor = [], None
    while True:
        page = admin.get("/api/v1/tenants", params={"limit": 2, **({"cursor": cursor} if cursor else {})}).json()
        listed += [t["name"] for t in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert name in listed and "default" in listed and listed == sorted(listed)

    own_admin, operator = key_in(admin, name), key_in(admin, name, "operator")
    with server.client(own_admin) as c:  # a tenant's admin: its own usage, nothing else
        assert c.get(f"/api/v1/tenants/{name}/usage").status_code == 200
        assert c.get("/api/v1/tenants/default/usage").status_code == 403
        assert c.get("/api/v1/tenants").status_code == 403
        assert c.post("/api/v1/tenants", json={"name": unique("x")}).status_code == 403
        assert c.post(f"/api/v1/tenants/{name}/suspend").status_code == 403
        assert c.put(f"/api/v1/tenants/{name}/quotas", json={"executions_per_day": 1000}).status_code == 403
    with server.client(operator) as c:
        assert c.get(f"/api/v1/tenants/{name}/usage").status_code == 403
    # a cross-tenant admin reads any tenant's usage
    usage = admin.get(f"/api/v1/tenants/{name}/usage").json()
    assert usage["tenant"] == name and usage["status"] == "active"
    assert {q["quota"] for q in usage["quotas"]} == {
        "executions_per_day",
        "concurrent_executions",
        "stored_bytes",
        "function_gb_seconds_per_day",
        "webhooks_per_minute",
        "ai_usd_per_day",
    }


def test_suspend_stops_keys_and_triggers_and_resume_restores_them(server, admin) -> None:
    tenant = unique("s")
    assert admin.post("/api/v1/tenants", json={"name": tenant}).status_code == 201
    key = key_in(admin, tenant)
    c = server.client(key)
    definition = {"entry": "S", "states": {"S": {"type": "set", "value": "{% input %}", "end": True}}}
    assert c.post("/api/v1/workflows", json={"name": "w", "definition": definition}).status_code == 201
    assert c.put("/api/v1/params/keep/me", json={"type": "string", "value": "v1"}).status_code == 200
    target = f"trn:stepflow:{tenant}:template/w"
    r = c.post(
        "/api/v1/triggers", json={"name": "tick", "target": target, "schedule": {"expression": "rate(1 second)"}}
    )
    assert r.status_code == 201, r.text
    r = c.post("/api/v1/triggers", json={"name": "hook", "target": target, "webhook": {"auth": "token"}})
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    hook = f"{server.url}/hooks/{tenant}/hook"

    def post_hook(i: str) -> httpx.Response:
        return httpx.post(hook, json={"i": i}, headers={"authorization": f"Bearer {token}", "webhook-id": i})

    wait_for(lambda: len(fires(c, "tick")) >= 2, what="the schedule to fire")
    assert post_hook("before").status_code == 202

    r = admin.post(f"/api/v1/tenants/{tenant}/suspend")
    assert r.status_code == 200 and r.json()["status"] == "suspended" and r.json()["suspended_at"]
    refused = c.get("/api/v1/whoami")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "tenant_suspended"
    assert post_hook("during").status_code == 403
    other = key_in(admin, "default", "viewer")  # other tenants are untouched
    with server.client(other) as o:
        assert o.get("/api/v1/whoami").status_code == 200
    # a cross-tenant admin still acts in the suspended tenant (to look, and to resume it)
    seen = admin.get("/api/v1/triggers/tick/history", params={"limit": 500}, headers={"X-Aionix-Tenant": tenant})
    assert seen.status_code == 200
    time.sleep(1.5)  # a fire committed just before the suspension is not a fire during it
    count = len(
        admin.get("/api/v1/triggers/tick/history", params={"limit": 500}, headers={"X-Aionix-Tenant": tenant}).json()[
            "items"
        ]
    )
    time.sleep(3)  # three due times pass while suspended: none fires
    after = admin.get("/api/v1/triggers/tick/history", params={"limit": 500}, headers={"X-Aionix-Tenant": tenant})
    assert len(after.json()["items"]) == count, after.json()["items"][:5]
    assert admin.get(f"/api/v1/tenants/{tenant}/usage").json()["status"] == "suspended"
    listed = admin.get("/api/v1/tenants", params={"limit": 500}).json()["items"]
    assert {t["name"]: t["status"] for t in listed}[tenant] == "suspended"

    r = admin.post(f"/api/v1/tenants/{tenant}/resume")
    assert r.status_code == 200 and r.json()["status"] == "active" and r.json()["suspended_at"] is None
    assert c.get("/api/v1/whoami").status_code == 200
    assert c.get("/api/v1/params/keep/me").json()["value"] == "v1"  # nothing was deleted
    assert post_hook("after").status_code == 202
    wait_for(lambda: len(fires(c, "tick")) > count, what="the schedule to fire again after resume")
    c.post("/api/v1/triggers/tick/disable")
    c.close()


def test_cli_tenant_commands(server, monkeypatch, capsys) -> None:
    from aionix.cli.main import run

    monkeypatch.setenv("AIONIX_URL", server.url)
    monkeypatch.setenv("AIONIX_API_KEY", server.admin_key)
    name = unique("cli")

    def aio(*args: str) -> Any:
        capsys.readouterr()
        code = run(["-o", "json", *args])
        out, err = capsys.readouterr()
        assert code == 0, err
        return json.loads(out)

    assert aio("tenant", "create", name, "--quota", "executions_per_day=5")["quotas"] == {"executions_per_day": 5}
    assert name in [t["name"] for t in aio("tenant", "list", "--limit", "500")["items"]]
    assert aio("tenant", "quotas", name, "--quota", "ai_usd_per_day=2.5")["quotas"] == {"ai_usd_per_day": 2.5}
    assert aio("tenant", "suspend", name)["status"] == "suspended"
    assert aio("tenant", "resume", name)["status"] == "active"
    usage = {q["quota"]: q for q in aio("tenant", "usage", name)["quotas"]}
    assert usage["ai_usd_per_day"]["limit"] == 2.5 and usage["executions_per_day"]["limit"] is None
    capsys.readouterr()
    assert run(["tenant", "usage"]) == 0  # the key's own tenant, as a table
    assert "executions_per_day" in capsys.readouterr().out
