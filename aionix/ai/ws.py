"""`GET /api/v1/ws`: task events over one WebSocket for several tasks.

Authentication: the API key on the upgrade request (`Authorization: Bearer <key>` or
`X-API-Key`, and `X-Aionix-Tenant` as on HTTP), or — for browsers, which cannot set headers on
a WebSocket — as the first message `{"type": "auth", "key": "aio_…"}` within
`AUTH_TIMEOUT_SECONDS`. Keys are never accepted in the URL (close 4400). The key is checked
again every `STREAM_KEY_CHECK_SECONDS`: a revoked key closes the socket (4401). Any role may
subscribe (viewer, as the SSE stream).

Client messages: `{"type": "subscribe", "task_id": ID, "after"?: N}` (events after event id N,
as SSE's `Last-Event-ID`), `{"type": "unsubscribe", "task_id": ID}`, `{"type": "ping"}`.
Server messages: `{"type": "event", "task_id", "id", "event": token|partial|done|error, "data"}`
(the SSE stream's events), `{"type": "subscribed"|"unsubscribed", "task_id"}`, `{"type":
"ping"}` every `[ai] ws_ping_seconds` (answer not required), `{"type": "pong"}`, and
`{"type": "error", "code", "message", "task_id"?}` for a refused message (the socket stays open).
A task of another tenant is `not_found`, as over HTTP.

Backpressure: the messages for a connection go through one queue of `[ai] ws_queue_size`; a
reader that leaves it full for `[ai] ws_slow_reader_seconds` is dropped with close code 4008
("slow reader") — nothing is buffered without bound (a finished task's events stay available:
subscribe again with `after`).

No cookie or ambient credential is involved (the key is sent explicitly), so a page of another
origin gains nothing by opening the socket: there is no Origin check.

Close codes: 4400 bad request (key in the URL), 1009 message over 64 KiB, 4401 no/invalid/revoked key,
4403 forbidden (X-Aionix-Tenant), 4429 too many failed authentications, 4008 slow reader,
1001 server shutting down.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any

from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from aionix import jsonutil
from aionix.api.auth import Principal, extract_key
from aionix.api.dispatch import STREAM_KEY_CHECK_SECONDS
from aionix.errors import AionixError, Forbidden, NotFound, Unauthorized

if TYPE_CHECKING:
    from aionix.ai.service import AiService

AUTH_TIMEOUT_SECONDS = 10.0
MAX_MESSAGE_BYTES = 64 * 1024
MAX_SUBSCRIPTIONS = 256

CLOSE_BAD_REQUEST = 4400
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_THROTTLED = 4429
CLOSE_SLOW_READER = 4008


class _Closing(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason[:120]  # a close reason is at most 123 bytes


class _Dropped(Exception):
    """The connection is ending (a slow reader): the pump or handler that hit it stops."""


class _Connection:
    def __init__(self, svc: AiService, ws: WebSocket, principal: Principal, key: str, tenant_header: str | None):
        self.svc = svc
        self.ws = ws
        self.principal = principal
        self.key = key
        self.tenant_header = tenant_header
        cfg = svc.config
        self.queue: asyncio.Queue[str] = asyncio.Queue(cfg.ws_queue_size)
        self.slow_seconds = cfg.ws_slow_reader_seconds
        self.subs: dict[str, asyncio.Task[None]] = {}
        self.ended: asyncio.Future[tuple[int, str] | None] = asyncio.get_running_loop().create_future()

    def end(self, close: tuple[int, str] | None) -> None:
        if not self.ended.done():
            self.ended.set_result(close)

    async def put(self, message: dict[str, Any]) -> None:
        text = jsonutil.dumps(message).decode()
        try:
            self.queue.put_nowait(text)
            return
        except asyncio.QueueFull:
            pass
        try:
            await asyncio.wait_for(self.queue.put(text), self.slow_seconds)
        except TimeoutError:
            self.end(
                (
                    CLOSE_SLOW_READER,
                    f"slow reader: {self.queue.maxsize} messages waited over {self.slow_seconds:g} s",
                )
            )
            raise _Dropped from None

    # ------------------------------------------------------------------ tasks
    async def writer(self) -> None:
        while True:
            text = await self.queue.get()
            await self.ws.send_text(text)

    async def reader(self) -> None:
        while True:
            msg = await self.ws.receive()
            if msg["type"] == "websocket.disconnect":
                self.end(None)
                return
            raw = msg.get("text")
            if raw is None and msg.get("bytes") is not None:
                raw = msg["bytes"].decode("utf-8", "replace")
            if raw is None:
                continue
            if len(raw) > MAX_MESSAGE_BYTES:
                self.end((CLOSE_BAD_REQUEST, f"a message is larger than {MAX_MESSAGE_BYTES} bytes"))
                return
            try:
                await self.handle(raw)
            except _Dropped:
                return

    async def pinger(self, every: float) -> None:
        last_ping = time.monotonic()
        while True:
            await asyncio.sleep(min(every, STREAM_KEY_CHECK_SECONDS))
            try:
                self.principal = await self.svc.rt.authenticator.authenticate(self.key, self.tenant_header)
            except AionixError as exc:
                self.end((CLOSE_UNAUTHORIZED, f"{exc.message}: the socket is closed"))
                return
            if time.monotonic() - last_ping >= every:
                last_ping = time.monotonic()
                with contextlib.suppress(asyncio.QueueFull):  # a full queue is the pumps' to judge
                    self.queue.put_nowait('{"type":"ping"}')

    # ------------------------------------------------------------------ messages
    async def error(self, code: str, message: str, task_id: Any = None) -> None:
        out: dict[str, Any] = {"type": "error", "code": code, "message": message}
        if task_id is not None:
            out["task_id"] = task_id
        await self.put(out)

    async def handle(self, raw: str) -> None:
        try:
            msg = jsonutil.loads(raw)
        except Exception:
            await self.error("bad_request", "a message is a JSON object")
            return
        if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
            await self.error("bad_request", 'a message is a JSON object with a "type"')
            return
        kind = msg["type"]
        if kind == "ping":
            await self.put({"type": "pong"})
            return
        if kind == "auth":
            await self.error("bad_request", "already authenticated")
            return
        if kind not in ("subscribe", "unsubscribe"):
            await self.error("bad_request", f"type: unknown message type {kind[:40]!r} (subscribe, unsubscribe, ping)")
            return
        task_id = msg.get("task_id")
        if not isinstance(task_id, str) or not task_id or len(task_id) > 64:
            await self.error("bad_request", "task_id: a task id (string) is required")
            return
        if kind == "unsubscribe":
            sub = self.subs.pop(task_id, None)
            if sub is not None:
                sub.cancel()
            await self.put({"type": "unsubscribed", "task_id": task_id})
            return
        after = msg.get("after", 0)
        if not isinstance(after, int) or isinstance(after, bool) or after < 0:
            await self.error("bad_request", "after: an event id (integer >= 0)", task_id)
            return
        wait = self.svc.rt.key_buckets.take(self.principal.key_id)
        if wait:
            await self.error("rate_limited", f"rate limit exceeded for this API key; retry in {wait:.2f} s", task_id)
            return
        if task_id in self.subs and not self.subs[task_id].done():
            await self.error("conflict", "already subscribed", task_id)
            return
        if sum(1 for t in self.subs.values() if not t.done()) >= MAX_SUBSCRIPTIONS:
            await self.error("bad_request", f"at most {MAX_SUBSCRIPTIONS} subscriptions per connection", task_id)
            return
        try:
            envelope = await self.svc.get(self.principal.tenant, task_id)
        except NotFound as exc:
            await self.error(exc.code, exc.message, task_id)
            return
        await self.put({"type": "subscribed", "task_id": task_id})
        self.subs[task_id] = asyncio.get_running_loop().create_task(self.pump(task_id, after, envelope))

    async def pump(self, task_id: str, after: int, envelope: dict[str, Any]) -> None:
        """The task's events after `after`, as the SSE stream sends them."""
        with contextlib.suppress(_Dropped):
            await self._pump(task_id, after, envelope)

    async def _pump(self, task_id: str, after: int, envelope: dict[str, Any]) -> None:
        run = self.svc.runs.get(task_id)
        if run is None or run.tenant != self.principal.tenant:
            kind = "done" if envelope["status"] == "OK" else "error"
            await self.put({"type": "event", "task_id": task_id, "id": None, "event": kind, "data": envelope})
            return
        while True:
            while len(run.events) > after:
                seq, kind, data = run.event(after)
                after = seq
                await self.put({"type": "event", "task_id": task_id, "id": seq, "event": kind, "data": data})
                if kind in ("done", "error"):
                    return
            if run.done.is_set() and len(run.events) <= after:
                return
            await run.wait_event(after, 30.0)


async def _authenticate(svc: AiService, ws: WebSocket) -> tuple[Principal, str, str | None]:
    rt = svc.rt
    ip = ws.client.host if ws.client else "unknown"
    tenant = ws.headers.get("x-aionix-tenant")
    try:
        key = extract_key(ws.headers)
    except Unauthorized as exc:
        raise _Closing(CLOSE_UNAUTHORIZED, exc.message) from None
    if key is None:
        try:
            async with asyncio.timeout(AUTH_TIMEOUT_SECONDS):
                msg = await ws.receive()
        except TimeoutError:
            raise _Closing(CLOSE_UNAUTHORIZED, "no API key: send {'type': 'auth', 'key': ...} first") from None
        if msg["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(msg.get("code", 1000))
        try:
            first = jsonutil.loads(msg.get("text") or msg.get("bytes") or b"")
        except Exception:
            first = None
        if not isinstance(first, dict) or first.get("type") != "auth" or not isinstance(first.get("key"), str):
            raise _Closing(CLOSE_UNAUTHORIZED, "missing API key: the first message is {'type': 'auth', 'key': ...}")
        key = first["key"]
        if isinstance(first.get("tenant"), str):
            tenant = first["tenant"]
    blocked = rt.auth_failures.blocked(ip)
    if blocked:
        raise _Closing(CLOSE_THROTTLED, "too many failed authentications from this address")
    try:
        principal = await rt.authenticator.authenticate(key, tenant)
    except Unauthorized as exc:
        rt.auth_failures.record(ip)
        raise _Closing(CLOSE_UNAUTHORIZED, exc.message) from None
    except Forbidden as exc:
        raise _Closing(CLOSE_FORBIDDEN, exc.message) from None
    except AionixError as exc:
        raise _Closing(CLOSE_BAD_REQUEST, exc.message) from None
    return principal, key, tenant


async def task_socket(ws: WebSocket) -> None:
    svc: AiService = ws.app.state.runtime.services["ai"]
    await ws.accept()
    tasks: list[asyncio.Task[Any]] = []
    conn: _Connection | None = None
    close: tuple[int, str] | None = None
    try:
        if any(k in ws.query_params for k in ("api_key", "apikey", "key", "token")):
            raise _Closing(CLOSE_BAD_REQUEST, "API keys are never accepted in URLs; send Authorization: Bearer <key>")
        principal, key, tenant = await _authenticate(svc, ws)
        conn = _Connection(svc, ws, principal, key, tenant)
        await ws.send_text(
            jsonutil.dumps({"type": "ready", "tenant": principal.tenant, "queue_size": conn.queue.maxsize}).decode()
        )
        loop = asyncio.get_running_loop()
        for coro in (conn.writer(), conn.reader(), conn.pinger(svc.config.ws_ping_seconds)):
            task = loop.create_task(coro)
            task.add_done_callback(lambda t, c=conn: c.end(None))
            tasks.append(task)
        close = await conn.ended
    except _Closing as exc:
        close = (exc.code, exc.reason)
    except WebSocketDisconnect:
        close = None
    except asyncio.CancelledError:
        close = (1001, "the server is shutting down")
        raise
    finally:
        pending = tasks + (list(conn.subs.values()) if conn is not None else [])
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if close is not None:
            # a slow reader gets its close frame once it reads what the socket already holds;
            # one that never reads is cut when the time is up
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(ws.close(close[0], close[1]), 10.0)


routes = [WebSocketRoute("/api/v1/ws", task_socket, name="ai_task_socket")]
