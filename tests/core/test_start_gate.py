"""The server's start (aionix/server.py `Gate`): `/healthz` answers as soon as the store is open
and the first key handed over, with `"starting": true`; any other request waits until the
services have loaded and the app is built, then is served by it; a start that failed answers
503. (The whole start, from source and from the binaries, is measured by `bench/start.py`;
tests/e2e, tests/cli and tests/binary start real servers through it.)"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aionix.server import Gate


class FakeStore:
    async def healthy(self) -> bool:
        return True


class FakeRuntime:
    store = FakeStore()

    def describe(self) -> dict[str, Any]:
        return {"version": "test", "uptime_seconds": 0.1}


async def call(app: Any, method: str, path: str) -> tuple[int, bytes]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "headers": [], "query_string": b""}
    await app(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, body


async def full_app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": f"full app: {scope['path']}".encode()})


async def test_healthz_answers_while_the_services_load_and_other_requests_wait() -> None:
    gate = Gate(FakeRuntime())
    healthz = asyncio.ensure_future(call(gate, "GET", "/healthz"))
    await asyncio.sleep(0.05)
    assert not healthz.done()  # the first key is not handed over yet
    gate.serving.set()
    status, body = await asyncio.wait_for(healthz, 5)
    assert status == 200
    assert json.loads(body) == {
        "status": "ok",
        "store": "ok",
        "version": "test",
        "uptime_seconds": 0.1,
        "starting": True,
    }
    api = asyncio.ensure_future(call(gate, "GET", "/api/v1/workflows"))
    await asyncio.sleep(0.05)
    assert not api.done()  # waits for the services, never refused
    gate.app = full_app
    gate.ready.set()
    assert await asyncio.wait_for(api, 5) == (200, b"full app: /api/v1/workflows")
    # once started, the full app answers everything, /healthz included
    assert await call(gate, "GET", "/healthz") == (200, b"full app: /healthz")


async def test_requests_waiting_on_a_failed_start_get_503() -> None:
    gate = Gate(FakeRuntime())
    gate.serving.set()
    api = asyncio.ensure_future(call(gate, "POST", "/api/v1/functions"))
    await asyncio.sleep(0.05)
    gate.fail()
    status, body = await asyncio.wait_for(api, 5)
    assert status == 503
    assert json.loads(body)["error"]["code"] == "unavailable"
