"""The ai_usd_per_day quota end to end: the AI server of tests/ai (stand-in providers on loopback,
no real model) with a tenant whose AI spend is bounded. Running tasks hold their router estimate
against the quota; a finished task is settled to the cost charged, a canceled one to nothing."""

from __future__ import annotations

import importlib.util
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

_spec = importlib.util.spec_from_file_location("ai_conftest", Path(__file__).parents[1] / "ai" / "conftest.py")
assert _spec is not None and _spec.loader is not None
ai_conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ai_conftest)

PER_TASK = 2 / 1000 * 0.001 + 256 / 1000 * 0.002  # api-hang's estimate: ~2 prompt tokens, max_tokens 256


@pytest.fixture(scope="module")
def ai(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    yield from ai_conftest.start_ai(tmp_path_factory, {})


def submit(c: httpx.Client, intent: str, **extra: object) -> httpx.Response:
    return c.post("/api/v1/tasks", json={"intent": intent, "params": {"text": "hi"}, **extra})


def ai_used(c: httpx.Client, tenant: str) -> dict[str, Any]:
    quotas = c.get(f"/api/v1/tenants/{tenant}/usage").json()["quotas"]
    return next(q for q in quotas if q["quota"] == "ai_usd_per_day")


def test_ai_spend_quota_holds_estimates_and_settles_to_the_cost(ai) -> None:
    server = ai.server
    tenant = f"ai-{uuid.uuid4().hex[:8]}"
    with server.client() as admin:
        r = admin.post("/api/v1/tenants", json={"name": tenant, "quotas": {"ai_usd_per_day": 2.5 * PER_TASK}})
        assert r.status_code == 201, r.text
        key = admin.post("/api/v1/keys", json={"name": "k", "role": "admin", "tenant": tenant}).json()["key"]
    with server.client(key) as c:
        r = c.post("/api/v1/secrets", json={"name": "cloud-key", "type": "api_key", "value": "sk-standin-secret-123"})
        assert r.status_code == 201, r.text
        first = [submit(c, "api-hang", stream=True) for _ in range(2)]
        assert [r.status_code for r in first] == [202, 202], [r.text for r in first]
        third = submit(c, "api-hang", stream=True)
        assert third.status_code == 429, third.text
        err = third.json()["error"]
        assert err["code"] == "quota_exceeded" and err["details"]["quota"] == "ai_usd_per_day"
        assert err["details"]["resets_at"].endswith("T00:00:00Z") and int(third.headers["Retry-After"]) > 0
        assert ai_used(c, tenant)["used"] == pytest.approx(2 * PER_TASK, rel=1e-3)
        for r in first:  # canceled: nothing spent, the reservations are released
            assert c.post(f"/api/v1/tasks/{r.json()['task_id']}/cancel").json()["status"] == "CANCELED"
        deadline = time.monotonic() + 10
        while ai_used(c, tenant)["used"] > 1e-9 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ai_used(c, tenant)["used"] == pytest.approx(0, abs=1e-9)
        done = submit(c, "api-ok")
        assert done.status_code == 200, done.text
        cost = done.json()["usage"]["cost_usd"]
        assert cost > 0
        assert ai_used(c, tenant)["used"] == pytest.approx(cost, rel=1e-6)
