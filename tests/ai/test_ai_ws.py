"""The WebSocket `GET /api/v1/ws` against the real server with a real client (`websockets`):
auth on the upgrade request or as the first message, several subscriptions, the SSE stream's
events, pings, tenant isolation, and a slow reader dropped with close code 4008. Providers are
the local stand-ins of standin.py (no real model runs here)."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator

import httpx
import pytest
from conftest import AiEnv, start_ai
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect


@pytest.fixture(scope="module")
def aiw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AiEnv]:
    env = {
        "AIONIX_AI_WS_QUEUE_SIZE": "4",
        "AIONIX_AI_WS_SLOW_READER_SECONDS": "0.3",
        "AIONIX_AI_WS_PING_SECONDS": "0.5",
    }
    yield from start_ai(tmp_path_factory, env)


def ws_url(env: AiEnv) -> str:
    return env.server.url.replace("http://", "ws://") + "/api/v1/ws"


@contextlib.contextmanager
def open_ws(env: AiEnv, key: str | None = None, **kw: object) -> Iterator[ClientConnection]:
    headers = {"Authorization": f"Bearer {key or env.server.admin_key}"}
    with connect(ws_url(env), additional_headers=headers, open_timeout=30, **kw) as ws:
        ready = json.loads(ws.recv(timeout=30))
        assert ready["type"] == "ready", ready
        yield ws


def recv_until_done(ws: ClientConnection, task_ids: set[str], timeout: float = 60) -> list[dict]:
    """Messages until every task in task_ids had its done/error event (pings skipped)."""
    out: list[dict] = []
    left = set(task_ids)
    deadline = time.monotonic() + timeout
    while left:
        msg = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
        if msg["type"] == "ping":
            continue
        out.append(msg)
        if msg["type"] == "event" and msg["event"] in ("done", "error"):
            left.discard(msg["task_id"])
    return out


def submit(c: httpx.Client, intent: str, **extra: object) -> str:
    r = c.post("/api/v1/tasks", json={"intent": intent, "params": {"text": "hi"}, "stream": True, **extra})
    assert r.status_code in (200, 202), r.text
    return r.json()["task_id"]


def test_subscribe_several_tasks_same_events_as_sse(aiw):
    with aiw.server.client() as c:
        a, b = submit(c, "api-ok"), submit(c, "local-ok")
        with open_ws(aiw) as ws:
            for t in (a, b):
                ws.send(json.dumps({"type": "subscribe", "task_id": t}))
            msgs = recv_until_done(ws, {a, b})
        assert {m["task_id"] for m in msgs if m["type"] == "subscribed"} == {a, b}
        for t in (a, b):
            events = [m for m in msgs if m["type"] == "event" and m["task_id"] == t]
            kinds = [m["event"] for m in events]
            assert kinds.count("token") == 3 and kinds[-1] == "done", kinds
            assert [m["id"] for m in events] == sorted(m["id"] for m in events)
            assert events[-1]["data"]["status"] == "OK" and events[-1]["data"]["task_id"] == t
            # the same events, with the same ids, as the SSE stream
            sse = []
            with c.stream("GET", f"/api/v1/tasks/{t}/stream", timeout=30) as r:
                ident = None
                for line in r.iter_lines():
                    if line.startswith("id: "):
                        ident = int(line[4:])
                    elif line.startswith("event: "):
                        sse.append((ident, line[7:]))
            assert sse == [(m["id"], m["event"]) for m in events]


def test_resume_after_unsubscribe_ping_and_bad_messages(aiw):
    with aiw.server.client() as c:
        t = submit(c, "api-ok")
        with open_ws(aiw) as ws:
            ws.send(json.dumps({"type": "subscribe", "task_id": t, "after": 2}))
            msgs = recv_until_done(ws, {t})
            ids = [m["id"] for m in msgs if m["type"] == "event"]
            assert ids and min(ids) == 3
            ws.send(json.dumps({"type": "unsubscribe", "task_id": t}))
            ws.send(json.dumps({"type": "ping"}))
            ws.send("not json")
            ws.send(json.dumps({"type": "subscribe"}))
            ws.send(json.dumps({"type": "nope"}))
            got = []
            deadline = time.monotonic() + 30
            while len([m for m in got if m["type"] != "ping"]) < 5 and time.monotonic() < deadline:
                got.append(json.loads(ws.recv(timeout=30)))
            kinds = [m["type"] for m in got if m["type"] != "ping"]
            assert kinds == ["unsubscribed", "pong", "error", "error", "error"], got
            errors = [m for m in got if m["type"] == "error"]
            assert "task_id" in errors[1]["message"] and "unknown message type" in errors[2]["message"]
            # keep-alive pings arrive on an idle socket ([ai] ws_ping_seconds = 0.5 here)
            assert json.loads(ws.recv(timeout=10))["type"] == "ping"


def test_auth_header_first_message_and_url_key(aiw):
    url = ws_url(aiw)
    key = aiw.server.admin_key
    # no key at all, then a first message that is not auth: 4401
    with connect(url, open_timeout=30) as ws:
        ws.send(json.dumps({"type": "subscribe", "task_id": "x"}))
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=30)
        assert info.value.rcvd.code == 4401
    # a wrong key on the upgrade request: 4401 with the reason
    with connect(url, additional_headers={"Authorization": "Bearer aio_wrong"}, open_timeout=30) as ws:
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=30)
        assert info.value.rcvd.code == 4401 and "invalid" in info.value.rcvd.reason
    # a key in the URL is refused even when it is valid
    with connect(url + f"?api_key={key}", open_timeout=30) as ws:
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=30)
        assert info.value.rcvd.code == 4400 and "URL" in info.value.rcvd.reason
    # browsers: the key as the first message
    with connect(url, open_timeout=30) as ws:
        ws.send(json.dumps({"type": "auth", "key": key}))
        assert json.loads(ws.recv(timeout=30))["type"] == "ready"
        ws.send(json.dumps({"type": "ping"}))
        assert json.loads(ws.recv(timeout=30))["type"] in ("pong", "ping")


def test_tenant_isolation_and_revocation(aiw):
    with aiw.server.client() as c:
        t = submit(c, "api-ok")
        r = c.post("/api/v1/keys", json={"name": "ws-other", "role": "admin", "tenant": "ws-other-tenant"})
        if r.status_code != 201:
            pytest.skip(f"cannot create a key in another tenant here: {r.text}")
        other = r.json()
        with open_ws(aiw, other["key"]) as ws:
            ws.send(json.dumps({"type": "subscribe", "task_id": t}))
            msg = json.loads(ws.recv(timeout=30))
            assert msg["type"] == "error" and msg["code"] == "not_found" and msg["task_id"] == t
            # a key revoked while its socket is open closes the socket (4401)
            own = {"Authorization": f"Bearer {other['key']}"}
            r = httpx.delete(f"{aiw.server.url}/api/v1/keys/{other['id']}", headers=own)
            assert r.status_code in (200, 204), r.text
            with pytest.raises(ConnectionClosed) as info:
                while True:
                    ws.recv(timeout=30)
            assert info.value.rcvd.code == 4401


def test_slow_reader_is_dropped_with_4008(aiw):
    with aiw.server.client() as c:
        # 12 floods of 5,000 tokens: ~15 MB of events, more than the kernel's socket buffers on
        # loopback (~4 MB) hold, so the server's writer really blocks
        ids = [submit(c, "api-flood", max_tokens=5000) for _ in range(12)]
        for t in ids:  # let them finish: a subscription then replays every event at once
            for _ in range(600):
                if c.get(f"/api/v1/tasks/{t}").json()["status"] != "RUNNING":
                    break
                time.sleep(0.05)
        # max_queue=1: the client stops reading its socket after one message
        with open_ws(aiw, max_queue=1) as ws:
            for t in ids:
                ws.send(json.dumps({"type": "subscribe", "task_id": t}))
            time.sleep(3)  # the server's queue (4 messages) stays full > 0.3 s
            received = 0
            with pytest.raises(ConnectionClosed) as info:
                while True:
                    ws.recv(timeout=30)
                    received += 1
            assert info.value.rcvd is not None and info.value.rcvd.code == 4008, info.value
            assert "slow reader" in info.value.rcvd.reason
        # the events that were not sent stay available: far fewer arrived than exist
        events = sum(len(c.get(f"/api/v1/tasks/{t}").json()["result"]["text"]) // 5 for t in ids)
        assert received < events
        assert c.get("/healthz").status_code == 200


def test_oversized_message_closes_1009(aiw):
    with open_ws(aiw) as ws:
        ws.send(json.dumps({"type": "ping", "pad": "x" * 70_000}))
        with pytest.raises(ConnectionClosed) as info:
            while True:
                ws.recv(timeout=30)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1009


def test_plain_http_get_is_not_a_websocket(aiw):
    r = httpx.get(aiw.server.url + "/api/v1/ws", headers={"Authorization": f"Bearer {aiw.server.admin_key}"})
    assert r.status_code in (400, 404, 405, 426)
    nope = aiw.server.url.replace("http://", "ws://") + "/api/v1/nope"
    with pytest.raises((InvalidStatus, ConnectionClosed, OSError)), connect(nope, open_timeout=10) as ws:
        ws.recv(timeout=5)
