"""What the cluster tests share: a function that counts its invocations by idempotency key."""

from __future__ import annotations

import re
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx

SLOW_SOURCE = """
import time

def handler(event, context):
    detail = event.get("detail") or {}
    time.sleep(detail.get("sleep", 0))
    return {"key": context.idempotency_key, "value": "v-" + context.invocation_id}
"""


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def wait_for(check: Callable[[], Any], timeout: float = 60.0, interval: float = 0.1, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


def make_function(client: httpx.Client, timeout_seconds: float = 20.0) -> str:
    name = unique("fn")
    r = client.post(
        "/api/v1/functions",
        json={
            "name": name,
            "runtime": "python",
            "code": {"source": SLOW_SOURCE},
            "limits": {"timeout_seconds": timeout_seconds},
        },
    )
    assert r.status_code == 201, r.text
    return name


def pages(client: httpx.Client, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every item of a paged list."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query: dict[str, Any] = {"limit": 100, **params}
        if cursor:
            query["cursor"] = cursor
        page = client.get(path, params=query)
        assert page.status_code == 200, page.text
        body = page.json()
        items += body["items"]
        cursor = body.get("next_cursor")
        if not cursor:
            return items


def invocations(client: httpx.Client, fn: str) -> list[dict[str, Any]]:
    return pages(client, f"/api/v1/functions/{fn}/invocations")


def by_key(client: httpx.Client, fn: str) -> Counter[str]:
    """How many times the function ran per idempotency key (each delivery is one run)."""
    return Counter(run["idempotency_key"] for run in invocations(client, fn))


def history(client: httpx.Client, trigger: str, **params: Any) -> list[dict[str, Any]]:
    return pages(client, f"/api/v1/triggers/{trigger}/history", **params)


def delivered_count(proc, origin: str) -> float:
    """This node's `aionix_trigger_delivery_attempts_total{origin, outcome="delivered"}`."""
    text = proc.client().get("/metrics").text
    pattern = rf'^aionix_trigger_delivery_attempts_total\{{origin="{origin}",outcome="delivered"\}} (\S+)$'
    m = re.search(pattern, text, re.M)
    return float(m.group(1)) if m else 0.0
