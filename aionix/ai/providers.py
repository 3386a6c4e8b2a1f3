"""Model providers: OpenAI-compatible chat completions (OpenAI, vLLM, llama.cpp, TGI; Azure
OpenAI's deployment URLs), Ollama's `/api/chat` and Aionix functions.

Each HTTP provider has its own SSRF-guarded httpx client (`aionix.connectors.httpcall`) that
reaches only the hosts its `allow_hosts` in `models.yml` lists. The client of a provider whose
`location` is `api` refuses every request made while `LOCAL_ONLY` is set (the context of a
local-only task): privacy is enforced at the HTTP client, not only by the router.

`stream()` yields `("token", text)` chunks then one `("usage", tokens_in, tokens_out)`. Retries
(429/5xx, before the first byte only) honour `Retry-After`; a circuit breaker sheds a provider
for `breaker_cooldown_s` after `breaker_failures` failures in a row; a bounded queue per
provider refuses work (503 + Retry-After) instead of queueing without bound.
"""

from __future__ import annotations

import asyncio
import bisect
import contextvars
import math
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import h11
import httpcore
import httpx
import orjson

from aionix import telemetry
from aionix.ai.models import ProviderSpec
from aionix.bus import BusError, CallContext
from aionix.connectors.httpcall import guarded_client
from aionix.errors import AionixError, RateLimited
from aionix.ssrf import AllowList, GuardedBackend, Refused

#: latency samples kept per model (the router's p95)
LATENCY_SAMPLES = 200
#: connections per HTTP client of a provider (see Provider._shard)
POOL_SHARD = 8
#: set while a local-only task runs: every `api` provider's client refuses to send
LOCAL_ONLY: contextvars.ContextVar[bool] = contextvars.ContextVar("aionix_ai_local_only", default=False)


class PrivacyViolation(Exception):
    pass


class Saturated(RateLimited):
    """The provider's bounded queue is full: 503 with `Retry-After`."""

    status = 503
    code = "provider_saturated"


class ProviderFailure(Exception):
    """A provider call failed; `timeout` when it was too slow."""

    def __init__(self, message: str, *, timeout: bool = False, retryable: bool = False) -> None:
        super().__init__(message)
        self.timeout = timeout
        self.retryable = retryable


class _AsyncioStream(httpcore.AsyncNetworkStream):
    """A plain-TCP connection on asyncio's own streams, for providers reached over `http://`
    (local models: Ollama, vLLM, llama.cpp). httpcore's default AnyIO stream costs, per read and
    write, a cancel scope, a sniffio lookup and — each time the pool checks an idle connection —
    a dict of socket attributes and a poll() system call; here the check reads the buffered
    state asyncio already has."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            if timeout is None:
                return await self._reader.read(max_bytes)
            async with asyncio.timeout(timeout):
                return await self._reader.read(max_bytes)
        except TimeoutError as exc:
            raise httpcore.ReadTimeout(str(exc)) from exc
        except OSError as exc:
            raise httpcore.ReadError(str(exc)) from exc

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        try:
            self._writer.write(buffer)
            if timeout is None:
                await self._writer.drain()
            else:
                async with asyncio.timeout(timeout):
                    await self._writer.drain()
        except TimeoutError as exc:
            raise httpcore.WriteTimeout(str(exc)) from exc
        except (OSError, RuntimeError) as exc:  # RuntimeError: the transport is closed
            raise httpcore.WriteError(str(exc)) from exc

    async def aclose(self) -> None:
        self._writer.close()

    async def start_tls(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("TLS is not used on this plain-HTTP provider connection")

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            # a server that closed an idle kept-alive connection (EOF) or sent bytes nobody asked for
            transport = self._writer.transport
            return self._reader.at_eof() or transport.is_closing() or bool(self._reader._buffer)  # type: ignore[attr-defined]
        if info == "client_addr":
            return self._writer.get_extra_info("sockname")
        if info == "server_addr":
            return self._writer.get_extra_info("peername")
        if info == "socket":
            return self._writer.get_extra_info("socket")
        return None


class _AsyncioBackend(httpcore.AsyncNetworkBackend):
    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        local = (local_address, 0) if local_address else None
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(host, port, local_addr=local, limit=1 << 20)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(str(exc)) from exc
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        sock = writer.get_extra_info("socket")
        for option in socket_options or ():
            sock.setsockopt(*option)
        return _AsyncioStream(reader, writer)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


KEEPALIVE_SECONDS = 30.0
MAX_HEAD_BYTES = 1 << 20  # an answer's status line and headers (and a chunk's size line)


class _PlainResponse:
    """The answer of a `_PlainHTTP` POST: status, headers, and the body read as it comes (h11
    parses it: Content-Length, chunked, or until the connection closes)."""

    def __init__(
        self,
        pool: _PlainHTTP,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        conn: h11.Connection,
        status: int,
        headers: dict[str, str],
        read_timeout: float,
    ) -> None:
        self._pool = pool
        self._reader = reader
        self._writer: asyncio.StreamWriter | None = writer
        self._conn = conn
        self.status_code = status
        self.headers = headers
        self._timeout = read_timeout
        self._complete = False

    async def _read(self) -> bytes:
        """The next bytes within the read timeout (none buffered: a `read()` returns what is
        already buffered at once, no timer then)."""
        reader = self._reader
        try:
            if reader._buffer:  # type: ignore[attr-defined]
                return await reader.read(65536)
            async with asyncio.timeout(self._timeout):
                return await reader.read(65536)
        except TimeoutError:
            raise httpx.ReadTimeout("the provider sent nothing in time") from None
        except OSError as exc:
            raise httpx.ReadError(str(exc)) from None

    async def _blocks(self) -> AsyncIterator[bytes]:
        conn = self._conn
        while True:
            try:
                event = conn.next_event()
                while event is h11.NEED_DATA:
                    conn.receive_data(await self._read())
                    event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                raise httpx.RemoteProtocolError(f"the provider's answer: {exc}") from None
            if type(event) is h11.Data:
                yield bytes(event.data)
            elif type(event) is h11.EndOfMessage:
                break
        self._complete = True

    async def aiter_lines(self) -> AsyncIterator[str]:
        rest = b""
        async for data in self._blocks():
            *lines, rest = (rest + data).split(b"\n")
            for line in lines:
                yield line.decode("utf-8", "replace")
        if rest:
            yield rest.decode("utf-8", "replace")

    async def aread(self) -> bytes:
        return b"".join([data async for data in self._blocks()])

    async def aclose(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            conn = self._conn
            # reused only when both sides may go on (h11: keep-alive, the body read to its end)
            # and nothing came after the answer
            if (
                self._complete
                and conn.our_state is h11.DONE
                and conn.their_state is h11.DONE
                and not conn.trailing_data[0]
            ):
                conn.start_next_cycle()
                self._pool.put(self._reader, writer, conn)
            else:
                writer.close()


class _PlainHTTP:
    """An HTTP/1.1 client for providers reached over `http://` (local models: Ollama, vLLM,
    llama.cpp): a POST whose answer is read as lines, h11 (sans-I/O) over asyncio's streams, its
    kept-alive connections reused. httpx with httpcore spent about a third of the server's CPU
    per task here (request and response models, the pool's bookkeeping, AnyIO's streams). The
    same SSRF guard vets every address it connects to."""

    def __init__(self, guard: Any) -> None:
        self._backend = GuardedBackend(guard, _AsyncioBackend())
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, h11.Connection, float]] = []

    def put(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: h11.Connection) -> None:
        self._idle.append((reader, writer, conn, time.monotonic() + KEEPALIVE_SECONDS))

    def close(self) -> None:
        for _, writer, _, _ in self._idle:
            writer.close()
        self._idle.clear()

    async def _connect(
        self, host: str, port: int, timeout: float, pooled: bool
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, h11.Connection, bool]:
        now = time.monotonic()
        while pooled and self._idle:
            reader, writer, conn, expires = self._idle.pop()
            # a connection the provider closed (EOF), one with bytes nobody asked for, or too old
            if expires < now or reader.at_eof() or writer.transport.is_closing() or reader._buffer:  # type: ignore[attr-defined]
                writer.close()
                continue
            return reader, writer, conn, True
        try:
            stream = await self._backend.connect_tcp(host, port, timeout=timeout)
        except httpcore.TimeoutException as exc:
            raise httpx.ConnectTimeout(str(exc)) from None
        except httpcore.NetworkError as exc:
            raise httpx.ConnectError(str(exc)) from None
        assert isinstance(stream, _AsyncioStream)
        conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD_BYTES)
        return stream._reader, stream._writer, conn, False

    async def post(
        self, url: str, body: bytes, headers: dict[str, str], timeout: float, connect: float, read: float
    ) -> _PlainResponse:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or 80
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            fields = [
                (b"Host", parts.netloc.encode("latin-1")),
                (b"Accept", b"*/*"),
                (b"Accept-Encoding", b"identity"),
                *((k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()),
                (b"Content-Length", str(len(body)).encode()),
            ]
        except UnicodeEncodeError:
            raise httpx.LocalProtocolError("a header holds a character outside Latin-1") from None
        try:  # h11 refuses a header name or value with a line break (or anything else invalid)
            request = h11.Request(method=b"POST", target=target.encode("latin-1"), headers=fields)
        except (h11.LocalProtocolError, UnicodeEncodeError) as exc:
            raise httpx.LocalProtocolError(f"a header holds a line break or is invalid: {exc}") from None
        for fresh in (False, True):
            reader, writer, conn, reused = await self._connect(host, port, connect, not fresh)
            try:
                writer.write(
                    b"".join((conn.send(request), conn.send(h11.Data(data=body)), conn.send(h11.EndOfMessage())))
                )
                if writer.transport.get_write_buffer_size():  # not all sent at once: wait for it
                    async with asyncio.timeout(timeout):
                        await writer.drain()
                async with asyncio.timeout(read):
                    event = conn.next_event()
                    while event is h11.NEED_DATA or type(event) is h11.InformationalResponse:
                        if event is h11.NEED_DATA:
                            data = await reader.read(65536)
                            if not data and conn.their_state is h11.SEND_RESPONSE:
                                raise ConnectionResetError("closed before an answer")
                            conn.receive_data(data)
                        event = conn.next_event()
            except TimeoutError:
                writer.close()
                raise httpx.ReadTimeout("the provider sent nothing in time") from None
            except (OSError, RuntimeError) as exc:
                writer.close()
                if reused and not fresh:
                    continue  # a kept-alive connection the provider had closed: once more on a new one
                raise httpx.RemoteProtocolError(f"the provider closed the connection: {exc}") from None
            except h11.RemoteProtocolError as exc:
                writer.close()
                raise httpx.RemoteProtocolError(f"not an HTTP answer: {exc}") from None
            except BaseException:
                writer.close()
                raise
            break
        assert type(event) is h11.Response
        got = {name.decode("latin-1"): value.decode("latin-1") for name, value in event.headers}
        return _PlainResponse(self, reader, writer, conn, event.status_code, got, read)


_TLS: list[ssl.SSLContext] = []


def _tls_context() -> ssl.SSLContext:
    """One verifying TLS context for every provider client (building one loads the CA bundle:
    tens of milliseconds, on the event loop, for each new client otherwise)."""
    if not _TLS:
        _TLS.append(httpx.create_ssl_context())
    return _TLS[0]


def estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate: one token per 4 characters (OpenAI's rule of thumb for
    English), at least 1."""
    return max(1, math.ceil(len(text) / 4))


class PrivacyTransport(httpx.AsyncBaseTransport):
    """Wraps an `api` provider's transport: nothing is sent while `LOCAL_ONLY` is set."""

    def __init__(self, inner: httpx.AsyncBaseTransport, name: str) -> None:
        self.inner = inner
        self.name = name

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if LOCAL_ONLY.get():
            raise PrivacyViolation(f"provider {self.name} is an API provider; a local-only task cannot reach it")
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


class Breaker:
    def __init__(self, failures: int, cooldown: float) -> None:
        self.threshold = failures
        self.cooldown = cooldown
        self.failures = 0
        self.opened_at: float | None = None

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "open" if time.monotonic() - self.opened_at < self.cooldown else "half_open"

    def allow(self) -> bool:
        return self.state != "open"

    def success(self) -> None:
        self.failures = 0
        self.opened_at = None

    def failure(self) -> None:
        self.failures += 1
        if self.failures >= self.threshold or self.opened_at is not None:
            self.opened_at = time.monotonic()


def retry_after_seconds(value: str | None, default: float) -> float:
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return default


class Provider:
    def __init__(self, name: str, spec: ProviderSpec, rt: Any) -> None:
        self.name = name
        self.spec = spec
        self.rt = rt
        self.breaker = Breaker(spec.breaker_failures, spec.breaker_cooldown_s)
        self.slots = asyncio.Semaphore(spec.max_concurrency)
        self.pending = 0  # reserved: running + waiting
        self.latencies: dict[str, deque[float]] = {}
        self._ordered: dict[str, list[float]] = {}  # the same samples, sorted
        # HTTP clients, each with a pool of at most POOL_SHARD connections, made as concurrency
        # needs them: httpcore's pool does O(connections²) work on every request and closes an
        # idle connection whenever it holds more connections than its keep-alive limit, so one
        # big pool spends milliseconds per call and reconnects under load; small pools whose
        # callers never exceed their keep-alive limit keep every connection and stay cheap.
        self._shards: list[list[Any]] = []  # [client, calls in flight]
        self._allow = AllowList.parse(spec.allow_hosts) if spec.kind != "function" else None
        self.client: httpx.AsyncClient | None = self._shard()[0] if spec.kind != "function" else None
        self._allowed_hosts = {h.lower().strip("[]") for h in spec.allow_hosts}
        self._plain = (
            _PlainHTTP(self.client.guard)  # type: ignore[union-attr]
            if self.client is not None and (spec.base_url or "").lower().startswith("http://")
            else None
        )

    def _shard(self) -> list[Any]:
        """The least busy client with a free connection (a new one when all are full)."""
        best = None
        for shard in self._shards:
            if shard[1] < POOL_SHARD and (best is None or shard[1] < best[1]):
                best = shard
                if shard[1] == 0:
                    break
        if best is None:
            assert self._allow is not None
            client = guarded_client(self._allow, verify=_tls_context(), pool_size=POOL_SHARD)  # type: ignore[arg-type]
            if (self.spec.base_url or "").lower().startswith("http://"):
                # the same SSRF guard (every address vetted), over asyncio's streams
                client._transport._pool._network_backend = GuardedBackend(client.guard, _AsyncioBackend())  # type: ignore[attr-defined]
            if self.spec.location == "api":
                client._transport = PrivacyTransport(client._transport, self.name)
            best = [client, 0]
            self._shards.append(best)
        return best

    # ------------------------------------------------------------------ capacity
    @property
    def capacity(self) -> int:
        return self.spec.max_concurrency + self.spec.queue_size

    def reserve(self) -> None:
        if self.pending >= self.capacity:
            raise Saturated(
                f"provider {self.name} is saturated ({self.pending} tasks running or queued); retry later",
                retry_after=1.0,
                details={"provider": self.name, "capacity": self.capacity},
            )
        self.pending += 1

    def release(self) -> None:
        self.pending = max(0, self.pending - 1)

    def observe(self, model: str, latency_ms: float) -> None:
        samples = self.latencies.setdefault(model, deque(maxlen=LATENCY_SAMPLES))
        ordered = self._ordered.setdefault(model, [])
        if len(samples) == samples.maxlen:  # the oldest sample leaves both
            del ordered[bisect.bisect_left(ordered, samples[0])]
        samples.append(latency_ms)
        bisect.insort(ordered, latency_ms)

    def p95(self, model: str, min_samples: int) -> float | None:
        """The p95 of the recent samples, from a list kept sorted as they come (the router asks
        for every candidate of every task: no sort per decision)."""
        ordered = self._ordered.get(model)
        if not ordered or len(ordered) < min_samples:
            return None
        return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]

    async def close(self) -> None:
        if self._plain is not None:
            self._plain.close()
        for client, _ in self._shards:
            await client.aclose()

    # ------------------------------------------------------------------ calls
    def _request(
        self, model: str, messages: list[dict[str, Any]], max_tokens: int, key: str | None
    ) -> tuple[str, dict[str, Any], dict[str, str]]:
        spec = self.spec
        base = (spec.base_url or "").rstrip("/")
        headers = {"content-type": "application/json"}
        if spec.kind == "ollama":
            body = {"model": model, "messages": messages, "stream": True, "options": {"num_predict": max_tokens}}
            return f"{base}/api/chat", body, headers
        body = {
            "model": model,
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": max_tokens,
        }
        if spec.kind == "azure":
            if key:
                headers["api-key"] = key
            return f"{base}/openai/deployments/{model}/chat/completions?api-version={spec.api_version}", body, headers
        if key:
            headers["authorization"] = f"Bearer {key}"
        return f"{base}/chat/completions", body, headers

    async def stream(
        self, model: str, messages: list[dict[str, Any]], max_tokens: int, key: str | None, ctx: CallContext
    ) -> AsyncIterator[tuple[Any, ...]]:
        if self.spec.location == "api" and LOCAL_ONLY.get():
            raise PrivacyViolation(f"provider {self.name} is an API provider; a local-only task cannot reach it")
        if not self.breaker.allow():
            raise ProviderFailure(f"provider {self.name}: circuit open (cooling down after failures)")
        # a client span while tracing is on (telemetry.py); its traceparent goes on the HTTP call
        attrs = {"aionix.provider": self.name, "aionix.provider_kind": self.spec.kind, "gen_ai.request.model": model}
        span = telemetry.span(f"ai {self.name}", kind=telemetry.CLIENT, trace_id=ctx.trace_id, attrs=attrs)
        try:
            async with self.slots:
                if self.spec.kind == "function":
                    async for item in self._function(messages, max_tokens, ctx):
                        yield item
                    return
                async for item in self._http(model, messages, max_tokens, key, span.traceparent()):
                    yield item
        except GeneratorExit:  # the caller stopped reading (enough tokens): not a failure
            raise
        except BaseException as exc:
            span.fail(getattr(exc, "message", None) or type(exc).__name__)
            raise
        finally:
            span.end()

    async def _function(
        self, messages: list[dict[str, Any]], max_tokens: int, ctx: CallContext
    ) -> AsyncIterator[tuple[Any, ...]]:
        target = str(self.spec.target).replace("{tenant}", ctx.tenant)
        try:
            out = await self.rt.bus.invoke(
                target, {"messages": messages, "max_tokens": max_tokens}, ctx, timeout=self.spec.timeout_s
            )
        except BusError as exc:
            self.breaker.failure()
            raise ProviderFailure(
                f"function {target}: {exc.error}: {exc.cause}", timeout=exc.code == "target_timeout"
            ) from None
        except AionixError as exc:
            self.breaker.failure()
            raise ProviderFailure(f"function {target}: {exc.message}") from None
        self.breaker.success()
        if isinstance(out, str):
            out = {"text": out}
        if not isinstance(out, dict) or not isinstance(out.get("text"), str):
            raise ProviderFailure(f'function {target} must return a string or {{"text": …}}')
        text = out["text"]
        yield ("token", text)
        if isinstance(out.get("confidence"), (int, float)):
            yield ("confidence", float(out["confidence"]))
        usage = out.get("usage") if isinstance(out.get("usage"), dict) else {}
        prompt = "".join(str(m.get("content", "")) for m in messages)
        yield (
            "usage",
            int(usage.get("tokens_in") or estimate_tokens(prompt)),
            int(usage.get("tokens_out") or estimate_tokens(text)),
        )

    async def _http(
        self,
        model: str,
        messages: list[dict[str, Any]],
        max_tokens: int,
        key: str | None,
        traceparent: str | None = None,
    ) -> AsyncIterator[tuple[Any, ...]]:
        if self._plain is not None:  # http://: no client shard
            gen = self._http_on(None, model, messages, max_tokens, key, traceparent)
            try:
                async for item in gen:
                    yield item
            finally:
                await gen.aclose()
            return
        shard = self._shard()
        shard[1] += 1
        gen = self._http_on(shard[0], model, messages, max_tokens, key, traceparent)
        try:
            async for item in gen:
                yield item
        finally:
            try:
                await gen.aclose()  # at once (the response closes), not when collected
            finally:
                shard[1] -= 1

    async def _http_on(
        self,
        client: httpx.AsyncClient | None,
        model: str,
        messages: list[dict[str, Any]],
        max_tokens: int,
        key: str | None,
        traceparent: str | None,
    ) -> AsyncIterator[tuple[Any, ...]]:
        spec = self.spec
        url, body, headers = self._request(model, messages, max_tokens, key)
        if traceparent is not None:
            headers["traceparent"] = traceparent
        host = (urlsplit(url).hostname or "").lower()
        if host not in self._allowed_hosts:
            raise ProviderFailure(f"provider {self.name}: host {host!r} is not in its allow_hosts")
        timeout = httpx.Timeout(
            spec.timeout_s, connect=min(spec.timeout_s, spec.first_byte_timeout_s), read=spec.first_byte_timeout_s
        )
        attempt = 0
        while True:
            try:
                response: Any
                if self._plain is not None:
                    if spec.location == "api" and LOCAL_ONLY.get():  # as PrivacyTransport
                        raise PrivacyViolation(
                            f"provider {self.name} is an API provider; a local-only task cannot reach it"
                        )
                    response = await self._plain.post(
                        url,
                        orjson.dumps(body),
                        headers,
                        spec.timeout_s,
                        min(spec.timeout_s, spec.first_byte_timeout_s),
                        spec.first_byte_timeout_s,
                    )
                else:
                    assert client is not None
                    request = client.build_request(
                        "POST", url, content=orjson.dumps(body), headers=headers, timeout=timeout
                    )
                    response = await client.send(request, stream=True)
            except PrivacyViolation:
                raise
            except Refused as exc:
                raise ProviderFailure(f"provider {self.name}: {exc}") from None
            except httpx.TimeoutException:
                self.breaker.failure()
                raise ProviderFailure(
                    f"provider {self.name}: no answer within {spec.first_byte_timeout_s:g} s", timeout=True
                ) from None
            except httpx.HTTPError as exc:
                self.breaker.failure()
                raise ProviderFailure(f"provider {self.name}: {type(exc).__name__}: {exc}") from None
            if response.status_code == 429 or response.status_code >= 500:
                wait = retry_after_seconds(response.headers.get("retry-after"), min(2.0, 0.2 * 2**attempt))
                await response.aclose()
                if attempt < spec.retries and wait <= spec.max_retry_wait_s:
                    attempt += 1
                    await asyncio.sleep(wait)
                    continue
                self.breaker.failure()
                raise ProviderFailure(
                    f"provider {self.name}: HTTP {response.status_code} after {attempt + 1} attempt(s)", retryable=True
                )
            if response.status_code >= 400:
                text = (await response.aread())[:300].decode("utf-8", "replace")
                await response.aclose()
                self.breaker.failure()
                raise ProviderFailure(f"provider {self.name}: HTTP {response.status_code}: {text}")
            break
        tokens_in = tokens_out = None
        produced: list[str] = []
        done = False
        trailing = 0
        try:
            async for line in response.aiter_lines():
                line = line.strip()
                if done:
                    # read the body to its end so the connection goes back to the pool (a few
                    # trailing lines at most; a provider that keeps talking is cut)
                    trailing += 1
                    if trailing > 16:
                        break
                    continue
                if not line:
                    continue
                if spec.kind == "ollama":
                    data = orjson.loads(line)
                    piece = (data.get("message") or {}).get("content") or ""
                    if piece:
                        produced.append(piece)
                        yield ("token", piece)
                    if data.get("done"):
                        tokens_in = data.get("prompt_eval_count")
                        tokens_out = data.get("eval_count")
                        done = True
                    continue
                if not line.startswith("data:"):
                    continue
                payload = line[5:].strip()
                if payload == "[DONE]":
                    done = True
                    continue
                data = orjson.loads(payload)
                for choice in data.get("choices") or []:
                    piece = (choice.get("delta") or {}).get("content") or ""
                    if piece:
                        produced.append(piece)
                        yield ("token", piece)
                usage = data.get("usage")
                if isinstance(usage, dict):
                    tokens_in = usage.get("prompt_tokens", tokens_in)
                    tokens_out = usage.get("completion_tokens", tokens_out)
        except httpx.TimeoutException:
            self.breaker.failure()
            raise ProviderFailure(
                f"provider {self.name}: stream stalled for {spec.first_byte_timeout_s:g} s", timeout=True
            ) from None
        except (httpx.HTTPError, orjson.JSONDecodeError) as exc:
            self.breaker.failure()
            raise ProviderFailure(f"provider {self.name}: stream broken: {type(exc).__name__}") from None
        finally:
            await response.aclose()
        if not done:
            self.breaker.failure()
            raise ProviderFailure(f"provider {self.name}: stream ended before the answer was complete")
        self.breaker.success()
        prompt = "".join(str(m.get("content", "")) for m in messages)
        yield (
            "usage",
            int(tokens_in) if isinstance(tokens_in, int) else estimate_tokens(prompt),
            int(tokens_out) if isinstance(tokens_out, int) else estimate_tokens("".join(produced)),
        )
