"""Issue 27.2: every outbound connection of every connector kind goes through the SSRF guard.

As an operator of a second tenant: `sql` (PostgreSQL and MySQL), `redis` and `email` connections
to loopback, private and metadata addresses, and to names that resolve to loopback, are refused
before any packet is sent — a listener on loopback records that nothing connected. The server's
own API (and its store's database) stays unreachable even when an admin allow-lists 127.0.0.1.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import httpx
import pytest
from connectors.support import unique
from serverproc import ServerProcess


class Listener:
    """A loopback TCP listener that counts every connection made to it."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@pytest.fixture(scope="module")
def listener() -> Iterator[Listener]:
    lst = Listener()
    yield lst
    lst.close()


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server with the default guard (no allow list)."""
    server = ServerProcess(tmp_path_factory.mktemp("egress")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def operator(guarded: ServerProcess) -> Iterator[httpx.Client]:
    with guarded.client() as admin:
        r = admin.post("/api/v1/keys", json={"name": "mallory", "role": "operator", "tenant": "second"})
        assert r.status_code == 201, r.text
        key = r.json()["key"]
    with guarded.client(key) as c:
        yield c


def _config(kind: str, host: str, port: int) -> dict[str, object]:
    if kind == "postgres":
        return {"driver": "postgres", "host": host, "port": port, "database": "d", "user": "u"}
    if kind == "mysql":
        return {"driver": "mysql", "host": host, "port": port, "database": "d", "user": "u"}
    if kind == "redis":
        return {"host": host, "port": port}
    return {"host": host, "port": port, "security": "plain", "from_address": "a@example.com"}


KINDS = {"postgres": "sql", "mysql": "sql", "redis": "redis", "email": "email"}
PREFIX = {"sql": "Sql", "redis": "Redis", "email": "Email"}


def _try(client: httpx.Client, flavour: str, host: str, port: int) -> httpx.Response:
    kind = KINDS[flavour]
    name = unique(flavour)
    r = client.post("/api/v1/connections", json={"name": name, "kind": kind, "config": _config(flavour, host, port)})
    assert r.status_code == 201, r.text
    return client.post(f"/api/v1/connections/{name}/test")


@pytest.mark.parametrize("flavour", ["postgres", "mysql", "redis", "email"])
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "127.1", "::ffff:127.0.0.1", "0.0.0.0"])
def test_loopback_refused_before_any_packet(operator, listener, flavour, host):
    before = listener.accepted
    r = _try(operator, flavour, host, listener.port)
    body = r.json()
    text = str(body)
    assert f"{PREFIX[KINDS[flavour]]}.Refused" in text, text
    assert "SSRF guard" in text
    assert listener.accepted == before, "the guard let a connection through to the loopback listener"


@pytest.mark.parametrize("flavour", ["postgres", "redis", "email"])
@pytest.mark.parametrize("host", ["10.1.2.3", "192.168.0.1", "169.254.169.254", "100.100.100.200", "fd00:ec2::254"])
def test_private_and_metadata_addresses_refused(operator, flavour, host):
    """Refused by the guard before connecting (no packet to these addresses ever leaves)."""
    r = _try(operator, flavour, host, 5432)
    text = str(r.json())
    assert f"{PREFIX[KINDS[flavour]]}.Refused" in text, text


def test_operators_cannot_open_the_guard(operator):
    for flavour in ("postgres", "redis", "email"):
        config = {**_config(flavour, "127.0.0.1", 1), "allow_hosts": ["127.0.0.1"]}
        r = operator.post(
            "/api/v1/connections", json={"name": unique(flavour), "kind": KINDS[flavour], "config": config}
        )
        assert r.status_code == 403, r.text


def test_admin_allow_list_opens_loopback_but_never_the_server_itself(guarded, listener):
    with guarded.client() as admin:
        before = listener.accepted
        name = unique("redis")
        r = admin.post(
            "/api/v1/connections",
            json={
                "name": name,
                "kind": "redis",
                "config": {"host": "127.0.0.1", "port": listener.port, "allow_hosts": ["127.0.0.1"]},
            },
        )
        assert r.status_code == 201, r.text
        admin.post(f"/api/v1/connections/{name}/test")
        assert listener.accepted > before, "an admin allow list must let the connection through"
        # the server's own API port: refused whatever the allow list says
        for flavour, host in (("postgres", "127.0.0.1"), ("redis", "localhost"), ("email", "127.0.0.1")):
            config = {**_config(flavour, host, guarded.port), "allow_hosts": ["127.0.0.0/8", "localhost", "::1"]}
            name = unique(flavour)
            r = admin.post("/api/v1/connections", json={"name": name, "kind": KINDS[flavour], "config": config})
            assert r.status_code == 201, r.text
            out = admin.post(f"/api/v1/connections/{name}/test").json()
            assert "Refused" in str(out) and "this server's own API" in str(out), out
        r = admin.post(
            "/api/v1/connections",
            json={"name": "self", "kind": "http", "config": {"base_url": guarded.url, "allow_hosts": ["127.0.0.1"]}},
        )
        assert r.status_code == 201, r.text
        r = admin.post(
            "/api/v1/actions",
            json={"name": "self-call", "kind": "http", "connection": "self", "parameters": {"url": "/healthz"}},
        )
        assert r.status_code == 201, r.text
        out = admin.post("/api/v1/actions/self-call/execute", json={})
        assert "Http.Refused" in out.text and "this server's own API" in out.text, out.text
