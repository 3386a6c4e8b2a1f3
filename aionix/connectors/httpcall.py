"""The outbound HTTP machinery shared by the `http`, `slack`, `discord` and `s3` kinds and
AuthFlow: guarded clients (see `ssrf.py`), redirects followed one vetted hop at a time, response
size limits and the `Http.*` error names."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx
import orjson

from aionix import jsonutil, telemetry
from aionix.bus import BusError
from aionix.errors import field_error
from aionix.ssrf import (
    AllowList,
    Guard,
    GuardedBackend,
    Network,
    Refused,
    Resolver,
    literal_address,
    system_resolver,
)

REDIRECTS = {301, 302, 303, 307, 308}
_SENSITIVE = {"authorization", "cookie", "proxy-authorization", "x-api-key"}
_TEXTUAL = ("text/", "application/xml", "application/javascript", "application/x-www-form-urlencoded")


def guarded_client(
    allow: AllowList,
    *,
    verify: bool = True,
    pool_size: int = 10,
    resolver: Resolver = system_resolver,
    reserved: Iterable[tuple[Network, int]] = (),
) -> httpx.AsyncClient:
    """An httpx client whose every connection goes through the SSRF guard (`reserved`: endpoints
    refused whatever `allow` says — the server's own API and database)."""
    guard = Guard(allow, resolver, tuple(reserved))
    transport = httpx.AsyncHTTPTransport(verify=verify, trust_env=False)
    ssl_context = transport._pool._ssl_context  # the context httpx built from `verify`
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=ssl_context,
        max_connections=pool_size * 4,
        max_keepalive_connections=pool_size,
        keepalive_expiry=30.0,
        network_backend=GuardedBackend(guard),
    )
    client = httpx.AsyncClient(transport=transport, trust_env=False, follow_redirects=False)
    client.guard = guard  # type: ignore[attr-defined]
    return client


@dataclass
class HttpRequest:
    method: str
    url: str
    headers: dict[str, str]
    query: dict[str, Any]
    content: bytes | None = None
    timeout: float = 30.0
    max_bytes: int = 1_048_576
    max_redirects: int = 5
    follow_redirects: bool = True
    parse_body: bool = True  # False: the body always comes back base64 (body_encoding: base64)
    secret_headers: frozenset[str] = frozenset()  # lower-case names dropped on cross-origin redirects


def check_url(url: str, field: str = "parameters.url") -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise field_error(field, f"not a valid URL: {exc}") from None
    if parsed.scheme not in ("http", "https"):
        raise field_error(field, f"scheme must be http or https, not {parsed.scheme or 'missing'!r}")
    if not parsed.host:
        raise field_error(field, "URL has no host")
    return parsed


def _headers(response: httpx.Response) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in response.headers.multi_items():
        k = key.lower()
        out[k] = f"{out[k]}, {value}" if k in out else value
    return out


def decode_body(raw: bytes, content_type: str, truncated: bool) -> tuple[Any, str | None]:
    """The body as JSON (when it is JSON and complete), text, or base64; and its encoding."""
    ctype = content_type.split(";", 1)[0].strip().lower()
    if not raw:
        return None, None
    if not truncated and (ctype == "application/json" or ctype.endswith("+json")):
        try:
            return jsonutil.loads(raw), None
        except orjson.JSONDecodeError:
            pass
    if ctype.startswith(_TEXTUAL) or "json" in ctype or not ctype:
        return raw.decode("utf-8", errors="replace"), None
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii"), "base64"


async def send(client: httpx.AsyncClient, req: HttpRequest) -> dict[str, Any]:
    """Send `req`, following redirects (each hop vetted again), and return
    `{status, headers, body, truncated}`; raise `BusError` with `Http.*` names. While tracing is
    on (telemetry.py) the call is a client span and carries its W3C `traceparent` (unless the
    request sets its own)."""
    tracing = telemetry.tracer
    if tracing is None:
        return await _send(client, req)
    method = req.method.upper()
    attrs = {"http.request.method": method, "url.full": shown_url(check_url(req.url))}
    with tracing.start(f"HTTP {method}", kind=telemetry.CLIENT, attrs=attrs) as span:
        if not any(name.lower() == "traceparent" for name in req.headers):
            req = dataclasses.replace(req, headers={**req.headers, "traceparent": span.traceparent()})
        result = await _send(client, req)
        span.set("http.response.status_code", result["status"])
        return result


async def _send(client: httpx.AsyncClient, req: HttpRequest) -> dict[str, Any]:
    url = check_url(req.url)
    method = req.method.upper()
    headers = dict(req.headers)
    content = req.content
    params: Any = req.query or None
    guard: Guard | None = getattr(client, "guard", None)
    hops = 0
    while True:
        if guard is not None and literal_address(url.host) is None:
            await _vet(guard, url)  # names: resolved and vetted here, and again when connecting
        try:
            request = client.build_request(
                method, url, headers=headers, params=params, content=content, timeout=req.timeout
            )
            response = await client.send(request, stream=True)
        except Refused as exc:
            raise BusError(
                "Http.Refused", f"{method} {shown_url(url)} refused by the SSRF guard: {exc.reason}"
            ) from None
        except httpx.TimeoutException:
            raise BusError(
                "Http.Timeout", f"{method} {shown_url(url)} did not answer within {req.timeout:g} s"
            ) from None
        except (httpx.TransportError, ConnectionError, OSError) as exc:
            raise BusError("Http.ConnectionError", f"{method} {shown_url(url)}: {exc or type(exc).__name__}") from None
        try:
            if req.follow_redirects and response.status_code in REDIRECTS and "location" in response.headers:
                hops += 1
                if hops > req.max_redirects:
                    raise BusError(
                        "Http.TooManyRedirects", f"{method} {shown_url(url)}: more than {req.max_redirects} redirects"
                    )
                target = url.join(response.headers["location"])
                if target.scheme not in ("http", "https"):
                    raise BusError("Http.Refused", f"redirect to a {target.scheme!r} URL refused")
                if (target.scheme, target.host, target.port) != (url.scheme, url.host, url.port):
                    drop = _SENSITIVE | req.secret_headers
                    headers = {k: v for k, v in headers.items() if k.lower() not in drop}
                if response.status_code == 303 or (
                    response.status_code in (301, 302) and method not in ("GET", "HEAD")
                ):
                    method = "GET" if method != "HEAD" else method
                    content = None
                    headers = {k: v for k, v in headers.items() if k.lower() not in ("content-type", "content-length")}
                url, params = target, None
                continue
            raw, truncated = await _read(response, req.max_bytes)
        except httpx.TimeoutException:
            raise BusError(
                "Http.Timeout", f"{method} {shown_url(url)}: the response did not finish within {req.timeout:g} s"
            ) from None
        except httpx.TransportError as exc:
            raise BusError("Http.ConnectionError", f"{method} {shown_url(url)}: {exc or type(exc).__name__}") from None
        finally:
            await response.aclose()
        if req.parse_body or response.status_code >= 400:
            body, encoding = decode_body(raw, response.headers.get("content-type", ""), truncated)
        else:
            body, encoding = base64.b64encode(raw).decode("ascii"), "base64"
        result: dict[str, Any] = {
            "status": response.status_code,
            "headers": _headers(response),
            "body": body,
            "truncated": truncated,
        }
        if encoding:
            result["body_encoding"] = encoding
        if response.status_code >= 400:
            preview = body if not isinstance(body, str) else body[:2000]
            raise BusError(
                f"Http.Status.{response.status_code}",
                f"{method} {shown_url(url)} answered {response.status_code} {response.reason_phrase}",
                details={"status": response.status_code, "body": preview},
            )
        return result


async def _vet(guard: Guard, url: httpx.URL) -> None:
    try:
        await guard.vet(url.host, url.port or (443 if url.scheme == "https" else 80))
    except Refused as exc:
        raise BusError("Http.Refused", f"{shown_url(url)} refused by the SSRF guard: {exc.reason}") from None
    except ConnectionError as exc:
        raise BusError("Http.ConnectionError", str(exc)) from None


async def _read(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_raw() if _identity(response) else response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(chunks)[:limit], True
    return b"".join(chunks), False


def _identity(response: httpx.Response) -> bool:
    return response.headers.get("content-encoding", "identity").lower() in ("", "identity")


def shown_url(url: httpx.URL) -> str:
    """The URL without query string or credentials (they may carry secrets)."""
    parts = urlsplit(str(url))
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"
