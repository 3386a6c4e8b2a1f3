"""Network egress of functions: an HTTP(S) proxy in the server's event loop, reachable from a
worker's network namespace only, that lets a function reach the hosts it was granted and
nothing else.

A worker granted `permissions.net` still gets its own network namespace (no route anywhere,
only its loopback). Before it drops privileges it binds a listening socket on
`127.0.0.1:EGRESS_PORT` inside that namespace and hands the socket to the server over a
socketpair; the server accepts on it (the socket stays in the worker's namespace, so nothing
else can connect to it) and relays each connection after two checks, like Deno's
`--allow-net=hosts`:

- the destination `host[:port]` must match one of the function's grant entries (`host` allows
  every port; names compare case-insensitively; `[v6]:port` for IPv6 literals);
- the connection layer's SSRF guard (`aionix.ssrf.Guard`) vets what the host
  resolves to: loopback, private, link-local and metadata addresses are refused unless
  `[functions] allow_hosts` lists them, and the socket connects to the vetted address (no DNS
  rebinding between check and connect). The server's own API port on a local address is
  refused in any case.

HTTP clients find the proxy through `HTTP_PROXY`/`HTTPS_PROXY` (set in the worker's
environment): `CONNECT host:port` for TLS (the tunnel carries the client's own TLS, so
certificates are verified end to end) and absolute-form requests (`GET http://host/…`) for
plain HTTP (sent on with `Connection: close`, so one connection serves one vetted
destination). Connections are bounded per worker and in all, bytes per connection, header
size and idle time; every refusal is an HTTP answer with a reason, never a dropped socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from aionix.ssrf import AllowList, Guard, Refused

log = logging.getLogger("aionix.functions")

#: the proxy's port inside every worker's network namespace (each namespace has its own ports)
EGRESS_PORT = 3128
PROXY_URL = f"http://127.0.0.1:{EGRESS_PORT}"
HEADER_LIMIT = 16 * 1024
HEADER_TIMEOUT = 10.0
CONNECT_TIMEOUT = 10.0
IDLE_TIMEOUT = 120.0
CHUNK = 64 * 1024
HOP_HEADERS = {b"proxy-connection", b"proxy-authorization", b"connection", b"keep-alive"}
GUARD_HINT = "allow-list it in [functions] allow_hosts"
CONNECTORS_HINT = "allow-list it in [connectors] allow_hosts or the connection's allow_hosts"


def proxy_env() -> dict[str, str]:
    """The environment that points HTTP clients (urllib, requests, httpx, Deno's fetch) at the
    proxy; nothing bypasses it."""
    return {name: PROXY_URL for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY")}


def parse_grant(entries: list[str]) -> list[tuple[str, int | None]]:
    """`host`, `host:port`, `[v6]`, `[v6]:port` → (lower-case host without brackets, port)."""
    parsed: list[tuple[str, int | None]] = []
    for i, raw in enumerate(entries):
        host, port = split_host_port(raw.strip())
        if not host or "/" in host or (port is not None and not 0 < port < 65536):
            raise ValueError(f"entry {i} ({raw!r}) is not host, host:port or [ipv6]:port")
        parsed.append((host, port))
    return parsed


UNCONFINED = (
    "this host gives functions no network namespace (it needs root and [functions] network_namespace), "
    "so a grant would open the whole network; an admin may accept that with [functions] allow_unconfined_net = true"
)


@dataclass
class NetPolicy:
    """How `permissions.net` is honoured here: through the egress proxy (`egress`, where
    workers get a network namespace), unconfined (no namespace, and the operator said so), or
    not at all."""

    egress: Egress | None
    allow_unconfined: bool

    def problem(self, hosts: list[str]) -> str | None:
        """Why a grant of `hosts` cannot be honoured on this host, or None."""
        try:
            parse_grant(hosts)
        except ValueError as exc:
            return str(exc)
        if hosts and self.egress is None and not self.allow_unconfined:
            return UNCONFINED
        return None

    def describe(self) -> dict[str, Any]:
        if self.egress is not None:
            return {**self.egress.describe(), "note": "granted hosts only, through the server's proxy"}
        if self.allow_unconfined:
            return {"mode": "unconfined", "note": "no network namespace: a grant opens the whole network"}
        return {"mode": "refused", "note": "no network namespace: grants of permissions.net are refused"}


def split_host_port(text: str, default: int | None = None) -> tuple[str, int | None]:
    host, port = text, default
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            return "", None
        host, rest = text[1:end], text[end + 1 :]
        if rest.startswith(":") and rest[1:].isdigit():
            port = int(rest[1:])
        elif rest:
            return "", None
    elif text.count(":") == 1:
        host, _, tail = text.partition(":")
        if not tail.isdigit():
            return "", None
        port = int(tail)
    elif ":" in text:  # a bare IPv6 literal
        try:
            ipaddress.IPv6Address(text)
        except ValueError:
            return "", None
    return host.lower().rstrip("."), port


def granted(grant: list[tuple[str, int | None]], host: str, port: int) -> bool:
    h = host.lower().rstrip(".")
    return any(h == g and (p is None or p == port) for g, p in grant)


@dataclass
class EgressStats:
    connections: int = 0
    refused: int = 0


@dataclass
class Egress:
    """The server-wide proxy settings and counters; `attach` serves one worker's listener."""

    allow: AllowList = field(default_factory=AllowList)
    max_connections: int = 256
    max_bytes: int = 1 << 30
    #: the server's own API port (known once bound), refused on every local address
    api_port: Callable[[], int | None] = lambda: None
    active: int = 0
    stats: EgressStats = field(default_factory=EgressStats)

    def __post_init__(self) -> None:
        self.guard = Guard(self.allow)

    def describe(self) -> dict[str, Any]:
        return {
            "mode": "proxy",
            "allow_hosts": [*self.allow.names, *(str(n) for n in self.allow.networks)],
            "max_connections": self.max_connections,
            "max_bytes_per_connection": self.max_bytes,
            "active": self.active,
            "relayed": self.stats.connections,
            "refused": self.stats.refused,
        }

    def grant(self, hosts: list[str], per_worker: int) -> EgressGrant:
        return EgressGrant(self, parse_grant(hosts), per_worker)


@dataclass
class EgressGrant:
    """One function's hosts and connection cap; `attach` serves a worker's listener with them."""

    egress: Egress
    hosts: list[tuple[str, int | None]]
    per_worker: int

    async def attach(self, listener: socket.socket) -> WorkerProxy:
        proxy = WorkerProxy(self.egress, self.hosts, self.per_worker)
        listener.setblocking(False)
        proxy.server = await asyncio.start_server(proxy.handle, sock=listener, limit=HEADER_LIMIT)
        return proxy


def receive_listener(channel: socket.socket) -> socket.socket | None:
    """The listening socket a worker sent over `channel` (already queued), or None."""
    channel.setblocking(False)
    try:
        _, fds, _, _ = socket.recv_fds(channel, 16, 4)
    except OSError:
        return None
    if not fds:
        return None
    for extra in fds[1:]:
        os.close(extra)
    listener = socket.socket(fileno=fds[0])
    if (
        listener.type != socket.SOCK_STREAM
        or listener.family != socket.AF_INET
        or not listener.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
    ):
        listener.close()
        return None
    return listener


class _Refusal(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


_STATUS_TEXT = {400: "Bad Request", 403: "Forbidden", 502: "Bad Gateway", 503: "Service Unavailable"}


class WorkerProxy:
    """The proxy of one worker: its grant, its connections; closed when the worker retires."""

    def __init__(self, egress: Egress, grant: list[tuple[str, int | None]], per_worker: int) -> None:
        self.egress = egress
        self.grant = grant
        self.per_worker = per_worker
        self.server: asyncio.AbstractServer | None = None
        self.tasks: set[asyncio.Task[Any]] = set()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        egress = self.egress
        counted = False
        upstream: asyncio.StreamWriter | None = None
        try:
            if len(self.tasks) > self.per_worker or egress.active >= egress.max_connections:
                raise _Refusal(503, "too many connections through the egress proxy")
            egress.active += 1
            counted = True
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEADER_TIMEOUT)
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, TimeoutError):
                raise _Refusal(400, "a proxy request needs a complete header under 16 KiB") from None
            method, target, version, headers = _parse_head(head)
            if method == b"CONNECT":
                host, port = split_host_port(target.decode("latin-1"))
                if not host or port is None:
                    raise _Refusal(400, "CONNECT needs host:port")
                forward = b""
            else:
                try:
                    url = urlsplit(target.decode("latin-1"))
                except ValueError:
                    raise _Refusal(400, "not a valid URL") from None
                if url.scheme != "http" or not url.hostname:
                    raise _Refusal(400, "plain requests need an absolute http:// URL (use CONNECT for https)")
                host, port = split_host_port(url.netloc.rpartition("@")[2], 80)
                path = (url.path or "/") + (f"?{url.query}" if url.query else "")
                kept = [line for line in headers if line.split(b":", 1)[0].strip().lower() not in HOP_HEADERS]
                forward = b"\r\n".join([b" ".join([method, path.encode("latin-1"), version]), *kept])
                forward += b"\r\nConnection: close\r\n\r\n"
            if not host or port is None or not 0 < port < 65536:
                raise _Refusal(400, "no valid host and port in the request")
            address = await self._vet(host, port)
            try:
                up_reader, upstream = await asyncio.wait_for(asyncio.open_connection(address, port), CONNECT_TIMEOUT)
            except (OSError, TimeoutError) as exc:
                raise _Refusal(502, f"cannot connect to {host}:{port}: {exc or 'timed out'}") from None
            egress.stats.connections += 1
            if forward:
                upstream.write(forward)
            else:
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            budget = [egress.max_bytes]
            await asyncio.gather(
                _pipe(reader, upstream, budget), _pipe(up_reader, writer, budget), return_exceptions=True
            )
        except _Refusal as refusal:
            egress.stats.refused += 1
            body = (refusal.reason + "\n").encode()
            with contextlib.suppress(Exception):
                writer.write(
                    b"HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n"
                    b"Connection: close\r\n\r\n%s"
                    % (refusal.status, _STATUS_TEXT[refusal.status].encode(), len(body), body)
                )
                await asyncio.wait_for(writer.drain(), 5)
        except (ConnectionError, OSError, TimeoutError, asyncio.CancelledError):
            pass
        except Exception:
            log.exception("the egress proxy failed on a connection")
        finally:
            if counted:
                egress.active -= 1
            for w in (writer, upstream):
                if w is not None:
                    with contextlib.suppress(Exception):
                        w.close()
            self.tasks.discard(task)

    async def _vet(self, host: str, port: int) -> str:
        if not granted(self.grant, host, port):
            raise _Refusal(403, f"{host}:{port} is not in the function's permissions.net")
        try:
            address = await self.egress.guard.vet(host, port)
        except Refused as exc:
            raise _Refusal(403, exc.reason.replace(CONNECTORS_HINT, GUARD_HINT)) from None
        except (ConnectionError, OSError) as exc:
            raise _Refusal(502, str(exc)) from None
        if port == self.egress.api_port() and _local(address):
            raise _Refusal(403, f"{host}:{port} is the Aionix API itself")
        return address


def _local(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if ip.is_loopback or ip.is_unspecified:
        return True
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    with contextlib.suppress(OSError), socket.socket(family, socket.SOCK_DGRAM) as probe:
        probe.bind((address, 0))  # binds only to an address of this host
        return True
    return False


def _parse_head(head: bytes) -> tuple[bytes, bytes, bytes, list[bytes]]:
    lines = head[:-4].split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/"):
        raise _Refusal(400, "not an HTTP proxy request")
    return parts[0].upper(), parts[1], parts[2], lines[1:]


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, budget: list[int]) -> None:
    """Copy until EOF, idle timeout or the connection's byte budget runs out (then both close)."""
    try:
        while True:
            data = await asyncio.wait_for(reader.read(CHUNK), IDLE_TIMEOUT)
            if not data:
                break
            budget[0] -= len(data)
            if budget[0] < 0:
                raise ConnectionAbortedError("the connection's byte budget is spent")
            writer.write(data)
            await writer.drain()
        with contextlib.suppress(OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()
    except (ConnectionError, OSError, TimeoutError):
        writer.close()
        raise
