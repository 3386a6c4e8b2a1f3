"""The SSRF guard of every outbound HTTP call (RELIABILITY.md S6).

A host is resolved first and every address it resolves to is vetted: anything that is not
globally routable (loopback, private, link-local, shared, multicast, unspecified, reserved,
documentation) and the cloud metadata addresses are refused, including the same addresses
wrapped in IPv6 (`::ffff:127.0.0.1`, NAT64, 6to4, Teredo). `ipaddress` alone is fooled by
`2130706433`, `0x7f000001`, `0177.0.0.1` or `127.1`, so anything that is not a canonical
address literal goes through the resolver, which normalises those spellings the way the
socket layer would.

The guard sits in the connection layer (`GuardedBackend`, an httpcore network backend): the
socket connects to the address that was vetted, never to a second lookup's answer, so DNS
rebinding cannot slip a private address in between the check and the connect. TLS still
verifies the certificate against the original host name. Redirects are followed by the
caller, one vetted hop at a time.
"""

from __future__ import annotations

import asyncio
import fnmatch
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpcore

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]

#: Cloud instance metadata services: refused even where a broader range might be allowed.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200", "169.254.170.2")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class Refused(Exception):
    """The destination is not allowed; `reason` says which rule refused it."""

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(f"{host}: {reason}")
        self.host = host
        self.reason = reason


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address `host` resolves to, as the socket layer would see it."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise OSError(f"cannot resolve {host}: {exc.strerror}") from None
    return list(dict.fromkeys(info[4][0] for info in infos))


def _embedded_ipv4(ip: IPAddress) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses that an IPv6 address carries (mapped, NAT64, 6to4, Teredo, compatible)."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return []
    out: list[ipaddress.IPv4Address] = []
    if ip.ipv4_mapped is not None:
        out.append(ip.ipv4_mapped)
    if ip.sixtofour is not None:
        out.append(ip.sixtofour)
    if ip.teredo is not None:
        out.extend(ip.teredo)
    if ip in _NAT64 or int(ip) >> 32 == 0:
        out.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return out


def address_problem(ip: IPAddress) -> str | None:
    """Why `ip` may not be reached by default, or None when it is a public address."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        inner_problem = address_problem(ip.ipv4_mapped)
        return f"{inner_problem or 'IPv4-mapped address'} (as {ip})"
    own = _own_problem(ip)
    if own:
        return own
    for inner in _embedded_ipv4(ip):
        problem = address_problem(inner)
        if problem:
            return f"{problem} (embedded in {ip})"
    return None


def _own_problem(ip: IPAddress) -> str | None:
    if ip in METADATA_ADDRESSES:
        return "cloud metadata address"
    if ip.is_unspecified:
        return "unspecified address"
    if ip.is_loopback:
        return "loopback address"
    if ip.is_link_local:
        return "link-local address"
    if ip.is_multicast:
        return "multicast address"
    if ip.is_private:
        return "private address"
    if ip.is_reserved:
        return "reserved address"
    if not ip.is_global:
        return "not a globally routable address"
    return None


def literal_address(host: str) -> IPAddress | None:
    """A canonical IP literal (`[::1]` brackets allowed), else None."""
    text = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


@dataclass(frozen=True)
class AllowList:
    """Exceptions to the guard: host names (`api.internal`, `*.corp.example`), addresses and
    networks (`127.0.0.1`, `10.0.0.0/8`, `::1`)."""

    names: tuple[str, ...] = ()
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> AllowList:
        names: list[str] = []
        networks: list[Any] = []
        for raw in entries:
            entry = raw.strip()
            if not entry:
                continue
            bare = entry[1:-1] if entry.startswith("[") and entry.endswith("]") else entry
            try:
                networks.append(ipaddress.ip_network(bare, strict=False))
            except ValueError:
                names.append(entry.lower().rstrip("."))
        return cls(tuple(names), tuple(networks))

    def __or__(self, other: AllowList) -> AllowList:
        return AllowList(self.names + other.names, self.networks + other.networks)

    def __bool__(self) -> bool:
        return bool(self.names or self.networks)

    def names_host(self, host: str) -> bool:
        h = host.lower().rstrip(".")
        return any(h == n or (("*" in n or "?" in n) and fnmatch.fnmatchcase(h, n)) for n in self.names)

    def covers(self, ip: IPAddress) -> bool:
        candidates = [ip, *_embedded_ipv4(ip)]
        return any(c in net for c in candidates for net in self.networks if c.version == net.version)


def local_addresses() -> list[str]:
    """This host's own interface addresses (IPv4 from /proc/net/fib_trie, IPv6 from
    /proc/net/if_inet6), for refusing the server's own listener when it binds every interface."""
    out: list[str] = []
    try:
        with open("/proc/net/fib_trie", encoding="ascii") as f:
            last = None
            for line in f:
                text = line.strip()
                if text.startswith("|--"):
                    last = text[3:].strip()
                elif text.startswith("/32 host LOCAL") and last:
                    out.append(last)
    except OSError:
        pass
    try:
        with open("/proc/net/if_inet6", encoding="ascii") as f:
            for line in f:
                raw = line.split()[0]
                out.append(str(ipaddress.IPv6Address(int(raw, 16))))
    except (OSError, ValueError, IndexError):
        pass
    return list(dict.fromkeys(out))


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass
class Guard:
    """Vets destinations; `resolver` is injectable (tests use one that rebinds). `reserved`
    holds (network, port) endpoints refused whatever the allow list says: the server's own API
    and its store's database."""

    allow: AllowList = field(default_factory=AllowList)
    resolver: Resolver = system_resolver
    reserved: Iterable[tuple[Network, int]] = ()

    async def vet(self, host: str, port: int) -> str:
        """The address to connect to for `host`, after every resolved address passed; raise
        `Refused` otherwise."""
        if not host:
            raise Refused(host, "no host")
        literal = literal_address(host)
        if literal is not None:
            addresses = [str(literal)]
        else:
            try:
                addresses = await self.resolver(host, port)
            except OSError as exc:
                raise ConnectionError(str(exc)) from None
            if not addresses:
                raise ConnectionError(f"cannot resolve {host}: no addresses")
        named = literal is None and self.allow.names_host(host)
        chosen: str | None = None
        for text in addresses:
            ip = ipaddress.ip_address(text.split("%", 1)[0])
            for net, reserved_port in self.reserved:
                if reserved_port == port and any(
                    c in net for c in (ip, *_embedded_ipv4(ip)) if c.version == net.version
                ):
                    raise Refused(
                        host,
                        f"{host} ({ip}) port {port} is this server's own API or database: "
                        "never reachable from a connection, whatever the allow lists say",
                    )
            problem = address_problem(ip)
            if problem and not named and not self.allow.covers(ip):
                shown = host if str(ip) == host.strip("[]") else f"{host} resolves to {ip}"
                raise Refused(
                    host,
                    f"{shown}: {problem} (allow-list it in [connectors] allow_hosts or the connection's allow_hosts)",
                )
            chosen = chosen or str(ip)
        assert chosen is not None
        return chosen


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """An httpcore backend that connects only to vetted addresses."""

    def __init__(self, guard: Guard, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self.guard = guard
        self.inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        address = await self.guard.vet(host, port)
        return await self.inner.connect_tcp(
            address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise Refused(path, "unix sockets are not reachable from connectors")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)
