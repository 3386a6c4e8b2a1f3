"""Tenant quotas end to end against the real server: each enforced under concurrency (50
concurrent requests against a limit of 10 → exactly 10 accepted), the 429 body (quota name,
limit, use, reset; Retry-After where the quota resets), usage numbers and `/metrics` lines."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def tenant_with_key(admin: httpx.Client, quotas: dict[str, Any]) -> tuple[str, str]:
    """A new tenant with these quota overrides and an admin key of its own."""
    name = unique("q")
    r = admin.post("/api/v1/tenants", json={"name": name, "quotas": quotas})
    assert r.status_code == 201, r.text
    assert r.json()["quotas"] == quotas
    r = admin.post("/api/v1/keys", json={"name": "k", "role": "admin", "tenant": name})
    assert r.status_code == 201, r.text
    return name, r.json()["key"]


def concurrently(n: int, fn: Any) -> list[httpx.Response]:
    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(fn, range(n)))


def usage_of(client: httpx.Client, tenant: str) -> dict[str, dict[str, Any]]:
    r = client.get(f"/api/v1/tenants/{tenant}/usage")
    assert r.status_code == 200, r.text
    return {q["quota"]: q for q in r.json()["quotas"]}


def refused(r: httpx.Response, quota: str) -> dict[str, Any]:
    assert r.status_code == 429, r.text
    err = r.json()["error"]
    assert err["code"] == "quota_exceeded"
    assert err["details"]["quota"] == quota
    assert quota in err["message"]
    return err["details"]


def test_executions_per_day_exactly_the_limit_under_concurrency(server, admin) -> None:
    tenant, key = tenant_with_key(admin, {"executions_per_day": 10})
    wf = unique("wf")
    with server.client(key) as c:
        definition = {"entry": "S", "states": {"S": {"type": "set", "value": 1, "end": True}}}
        assert c.post("/api/v1/workflows", json={"name": wf, "definition": definition}).status_code == 201

    def start(i: int) -> httpx.Response:
        return httpx.post(
            f"{server.url}/api/v1/workflows/{wf}/executions",
            json={"input": {"i": i}},
            headers={"Authorization": f"Bearer {key}"},
            timeout=60,
        )

    answers = concurrently(50, start)
    codes = sorted(r.status_code for r in answers)
    accepted = [r for r in answers if r.status_code < 300]
    assert len(accepted) == 10, codes
    assert codes.count(429) == 40, codes
    details = refused(next(r for r in answers if r.status_code == 429), "executions_per_day")
    midnight = (datetime.now(UTC) + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    assert details["resets_at"] == midnight.isoformat().replace("+00:00", "Z")
    assert details["limit"] == 10 and details["used"] == 10 and details["tenant"] == tenant
    wait = int(next(r for r in answers if r.status_code == 429).headers["Retry-After"])
    assert 0 < wait <= 86400 and abs(wait - (midnight.timestamp() - time.time())) < 120

    with server.client(key) as c:
        usage = usage_of(c, tenant)  # a tenant's admin reads its own usage
    day = usage["executions_per_day"]
    assert (day["used"], day["limit"], day["source"], day["unit"]) == (10, 10, "tenant", "executions")
    assert usage["concurrent_executions"]["limit"] is None  # unlimited: the default
    metrics = httpx.get(f"{server.url}/metrics").text
    assert f'aionix_tenant_quota_used{{quota="executions_per_day",tenant="{tenant}"}} 10.0' in metrics
    assert f'aionix_tenant_quota_limit{{quota="executions_per_day",tenant="{tenant}"}} 10.0' in metrics
    assert 'aionix_quota_exceeded_total{quota="executions_per_day"}' in metrics

    # a higher override takes effect at once on this node
    r = admin.put(f"/api/v1/tenants/{tenant}/quotas", json={"executions_per_day": 11})
    assert r.status_code == 200 and r.json()["quotas"] == {"executions_per_day": 11}
    assert start(99).status_code < 300
    assert start(100).status_code == 429


def test_concurrent_executions_count_running_ones(server, admin) -> None:
    tenant, key = tenant_with_key(admin, {"concurrent_executions": 10})
    wf = unique("wait")
    definition = {"entry": "W", "states": {"W": {"type": "wait", "seconds": 120, "end": True}}}
    with server.client(key) as c:
        assert c.post("/api/v1/workflows", json={"name": wf, "definition": definition}).status_code == 201
        failing = {"entry": "F", "states": {"F": {"type": "fail", "error": "Boom", "cause": "x"}}}
        assert c.post("/api/v1/workflows", json={"name": "boom", "definition": failing}).status_code == 201
        failed = c.post("/api/v1/workflows/boom/executions", json={"mode": "sync"}).json()
        assert failed["status"] == "FAILED", failed

    def start(i: int) -> httpx.Response:
        return httpx.post(
            f"{server.url}/api/v1/workflows/{wf}/executions",
            json={"input": {"i": i}},
            headers={"Authorization": f"Bearer {key}"},
            timeout=60,
        )

    answers = concurrently(50, start)
    accepted = [r for r in answers if r.status_code < 300]
    assert len(accepted) == 10, sorted(r.status_code for r in answers)
    details = refused(next(r for r in answers if r.status_code == 429), "concurrent_executions")
    assert details["resets_at"] is None and details["used"] == 10
    assert "Retry-After" not in next(r for r in answers if r.status_code == 429).headers
    with server.client(key) as c:
        assert usage_of(c, tenant)["concurrent_executions"]["used"] == 10
        # a redrive makes an execution RUNNING again: within the same quota
        refused(c.post(f"/api/v1/executions/{failed['execution_id']}/redrive"), "concurrent_executions")
        # one ends: one more may start
        eid = accepted[0].json()["execution_id"]
        assert c.post(f"/api/v1/executions/{eid}/cancel").status_code == 200
        assert start(50).status_code < 300
        assert start(51).status_code == 429
        for r in accepted[1:]:
            c.post(f"/api/v1/executions/{r.json()['execution_id']}/cancel")


def test_stored_bytes_params_and_secrets(server, admin) -> None:
    value = "x" * 298  # stored as the JSON text '"xx…x"': 300 bytes
    tenant, key = tenant_with_key(admin, {"stored_bytes": 3000})

    def put(i: int) -> httpx.Response:
        return httpx.put(
            f"{server.url}/api/v1/params/p{i}",
            json={"type": "string", "value": value},
            headers={"Authorization": f"Bearer {key}"},
            timeout=60,
        )

    answers = concurrently(50, put)
    assert sum(r.status_code < 300 for r in answers) == 10, sorted(r.status_code for r in answers)
    r = next(r for r in answers if r.status_code == 429)
    details = refused(r, "stored_bytes")
    assert details["resets_at"] is None and details["limit"] == 3000
    assert "Retry-After" not in r.headers
    with server.client(key) as c:
        assert usage_of(c, tenant)["stored_bytes"]["used"] == 3000
        # secrets count too: the store is full
        r = c.post("/api/v1/secrets", json={"name": "s1", "type": "password", "value": "v"})
        refused(r, "stored_bytes")
        # and so does a new execution (its history would be stored)
        definition = {"entry": "S", "states": {"S": {"type": "set", "value": 1, "end": True}}}
        assert c.post("/api/v1/workflows", json={"name": "w", "definition": definition}).status_code == 201
        refused(c.post("/api/v1/workflows/w/executions", json={}), "stored_bytes")


def test_webhooks_per_minute(server, admin) -> None:
    tenant, key = tenant_with_key(admin, {"webhooks_per_minute": 10})
    with server.client(key) as c:
        definition = {"entry": "S", "states": {"S": {"type": "set", "value": 1, "end": True}}}
        assert c.post("/api/v1/workflows", json={"name": "w", "definition": definition}).status_code == 201
        r = c.post(
            "/api/v1/triggers",
            json={"name": "hook", "target": f"trn:stepflow:{tenant}:template/w", "webhook": {"auth": "token"}},
        )
        assert r.status_code == 201, r.text
        token = r.json()["token"]
    if time.time() % 60 > 45:  # all within one minute: the counter's period
        time.sleep(61 - time.time() % 60)

    def post(i: int) -> httpx.Response:
        return httpx.post(
            f"{server.url}/hooks/{tenant}/hook",
            json={"i": i},
            headers={"authorization": f"Bearer {token}", "webhook-id": f"id-{i}"},
            timeout=60,
        )

    answers = concurrently(50, post)
    assert sum(r.status_code == 202 for r in answers) == 10, sorted(r.status_code for r in answers)
    r = next(r for r in answers if r.status_code == 429)
    details = refused(r, "webhooks_per_minute")
    assert details["resets_at"].endswith(":00Z")
    assert 1 <= int(r.headers["Retry-After"]) <= 60


@pytest.mark.parametrize(("quota", "amount"), [("function_gb_seconds_per_day", 0.25), ("ai_usd_per_day", 0.01)])
async def test_reservations_never_overshoot(tmp_path, quota: str, amount: float) -> None:
    """The reservations that functions (memory x timeout) and AI tasks (the estimate) take:
    50 concurrent ones against room for 10 → exactly 10 (the store's single writer orders them)."""
    import asyncio

    from aionix import config as configlib
    from aionix.iam.quotas import QuotaExceeded
    from aionix.runtime import Runtime

    cfg = configlib.load(env={}, overrides={"database.data_path": str(tmp_path)})
    rt = Runtime(cfg)
    await rt.store.start()
    try:
        rt.quotas.overrides["t1"] = {quota: amount * 10}

        async def one() -> bool:
            try:
                await rt.quotas.reserve("t1", quota, amount)
                return True
            except QuotaExceeded as exc:
                assert exc.details["quota"] == quota
                return False

        results = await asyncio.gather(*(one() for _ in range(50)))
        assert sum(results) == 10
        period, _ = await rt.quotas.reserve("t2", quota, amount)  # another tenant: unlimited
        rt.quotas.settle("t1", quota, period, -amount * 4)  # four ended having used nothing
        await rt.quotas.flush()
        [used] = [u for u in await rt.quotas.usage("t1") if u["quota"] == quota]
        assert used["used"] == pytest.approx(amount * 6)
        results = await asyncio.gather(*(one() for _ in range(50)))
        assert sum(results) == 4
    finally:
        await rt.store.close()


def test_config_toml_documents_every_quota_key() -> None:
    from pathlib import Path

    from aionix import config as configlib
    from aionix.iam.quotas import QUOTAS, QuotasConfig

    path = Path(__file__).parents[2] / "config.toml"
    text = path.read_text()
    assert "\n[quotas]\n" in text
    section = text.split("\n[quotas]\n", 1)[1].split("\n[", 1)[0]
    for key in QuotasConfig.model_fields:
        assert f"\n{key} =" in "\n" + section, f"quotas.{key} is not documented in config.toml"
    assert set(QUOTAS) <= set(QuotasConfig.model_fields)
    defaults = configlib.load(path, env={}).service_section("quotas", QuotasConfig)
    assert all(getattr(defaults, q) == 0 for q in QUOTAS)  # shipped unlimited: nothing changes until set


def test_function_gb_seconds_reserved_then_settled(server, admin) -> None:
    """Each invocation reserves memory x timeout (0.25 GB x 2 s) and settles to memory x
    duration: 30 concurrent invocations against 2 GB-s never pass it, and the use is what ran."""
    tenant, key = tenant_with_key(admin, {"function_gb_seconds_per_day": 2.0})
    source = "import time\ndef handler(event, context):\n    time.sleep(0.2)\n    return event\n"
    with server.client(key, timeout=120) as c:
        body = {
            "name": "nap",
            "runtime": "python",
            "code": {"source": source},
            "limits": {"timeout_seconds": 2, "memory_mb": 256},
        }
        r = c.post("/api/v1/functions", json=body)
        assert r.status_code == 201, r.text

    def invoke(i: int) -> httpx.Response:
        return httpx.post(
            f"{server.url}/api/v1/functions/nap/invoke",
            json={"i": i},
            headers={"Authorization": f"Bearer {key}"},
            timeout=120,
        )

    answers = concurrently(30, invoke)
    ok = [r for r in answers if r.status_code == 200]
    assert len(ok) >= 4, sorted(r.status_code for r in answers)  # 2 GB-s hold at least 4 reservations
    details = refused(next(r for r in answers if r.status_code == 429), "function_gb_seconds_per_day")
    assert details["unit"] == "GB-seconds" and details["resets_at"].endswith("T00:00:00Z")
    ran = sum(0.25 * r.json()["duration_ms"] / 1000 for r in ok)
    with server.client(key) as c:
        used = usage_of(c, tenant)["function_gb_seconds_per_day"]["used"]
    assert used == pytest.approx(ran, rel=1e-3) and used <= 2.0


def test_unlimited_tenants_are_counted_and_set_limits_take_the_count_into_account(server, admin) -> None:
    tenant, key = tenant_with_key(admin, {})
    with server.client(key) as c:
        definition = {"entry": "S", "states": {"S": {"type": "set", "value": 1, "end": True}}}
        assert c.post("/api/v1/workflows", json={"name": "w", "definition": definition}).status_code == 201
        for i in range(3):
            assert c.post("/api/v1/workflows/w/executions", json={"input": {"i": i}}).status_code < 300
        day = usage_of(c, tenant)["executions_per_day"]
        assert (day["used"], day["limit"], day["source"]) == (3, None, "default")
    # a limit set now counts the day's starts made while unlimited
    assert admin.put(f"/api/v1/tenants/{tenant}/quotas", json={"executions_per_day": 4}).status_code == 200
    with server.client(key) as c:
        assert c.post("/api/v1/workflows/w/executions", json={}).status_code < 300
        refused(c.post("/api/v1/workflows/w/executions", json={}), "executions_per_day")
    # back to the default (unlimited): starts are accepted again
    assert admin.put(f"/api/v1/tenants/{tenant}/quotas", json={}).json()["quotas"] == {}
    with server.client(key) as c:
        assert c.post("/api/v1/workflows/w/executions", json={}).status_code < 300
        assert usage_of(c, tenant)["executions_per_day"]["used"] == 5
