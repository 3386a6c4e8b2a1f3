"""Helpers for the triggers' end-to-end tests: unique names, signed webhook posts, polling."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from aionix.triggers.signing import sign


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def wait_for(check: Callable[[], Any], timeout: float = 30.0, interval: float = 0.1, what: str = "condition") -> Any:
    """Poll `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last value: {last!r}")


def history(client: httpx.Client, name: str, **params: Any) -> list[dict[str, Any]]:
    r = client.get(f"/api/v1/triggers/{name}/history", params={"limit": 500, **params})
    assert r.status_code == 200, r.text
    return r.json()["items"]


def post_signed(
    url: str,
    path: str,
    secret: str,
    body: bytes,
    *,
    msg_id: str | None = None,
    stamp: int | None = None,
    content_type: str = "application/json",
    timeout: float = 30.0,
) -> httpx.Response:
    msg_id = msg_id or uuid.uuid4().hex
    stamp = int(time.time()) if stamp is None else stamp
    headers = {
        "content-type": content_type,
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign(secret, msg_id, stamp, body),
    }
    return httpx.post(url + path, content=body, headers=headers, timeout=timeout)


def create_workflow(client: httpx.Client, name: str, definition: dict[str, Any] | None = None) -> None:
    """A one-state workflow whose output is its input plus a marker."""
    definition = definition or {
        "entry": "Echo",
        "states": {"Echo": {"type": "set", "value": {"got": "{% input %}", "marker": "ok"}, "end": True}},
    }
    r = client.post("/api/v1/workflows", json={"name": name, "definition": definition})
    assert r.status_code == 201, r.text


def execution(client: httpx.Client, execution_id: str) -> dict[str, Any]:
    r = client.get(f"/api/v1/executions/{execution_id}")
    assert r.status_code == 200, r.text
    return r.json()


def finished_execution(client: httpx.Client, execution_id: str, timeout: float = 30.0) -> dict[str, Any]:
    return wait_for(
        lambda: (e := execution(client, execution_id))["status"] != "RUNNING" and e,
        timeout,
        what=f"execution {execution_id} to finish",
    )
