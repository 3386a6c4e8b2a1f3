"""Issue 15 finding 5: a function granted `permissions.net` reaches only its granted hosts.

An admin allow-lists loopback for function egress (`[functions] allow_hosts`) and grants a
function one loopback test server; everything else on loopback (another local service, the
Aionix API itself) and the cloud metadata address stay out of reach, through the proxy and
around it (raw sockets find no route out of the worker's network namespace).
"""

from __future__ import annotations

import http.server
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent.parent))

from serverproc import ServerProcess

BODY = b"hello-egress"

PYTHON = r"""
import http.client, socket, urllib.error, urllib.request

def handler(event, context):
    op = event["op"]
    if op == "get":
        try:
            with urllib.request.urlopen(event["url"], timeout=10) as r:
                return "ok %d %s" % (r.status, r.read().decode())
        except urllib.error.HTTPError as exc:
            return "refused %d %s" % (exc.code, exc.read().decode().strip())
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            return "error %s" % exc
    if op == "tunnel":  # what an https:// client does: CONNECT through HTTPS_PROXY
        conn = http.client.HTTPConnection("127.0.0.1", 3128, timeout=10)
        conn.set_tunnel(event["host"], event["port"])
        try:
            conn.request("GET", "/")
            r = conn.getresponse()
            return "ok %d %s" % (r.status, r.read().decode())
        except OSError as exc:
            return "error %s" % exc
    if op == "proxy_bytes":  # whatever a client may send the proxy
        with socket.create_connection(("127.0.0.1", 3128), timeout=15) as c:
            c.sendall(event["data"].encode("latin-1"))
            return c.recv(200).decode("latin-1").split("\r\n")[0]
    if op == "many":  # hold `n` tunnels open at once
        socks, statuses = [], []
        try:
            for _ in range(event["n"]):
                c = socket.create_connection(("127.0.0.1", 3128), timeout=15)
                socks.append(c)
                c.sendall(("CONNECT 127.0.0.1:%d HTTP/1.1\r\n\r\n" % event["port"]).encode())
                statuses.append(c.recv(200).decode().split(" ")[1])
        finally:
            for c in socks:
                c.close()
        return statuses
    if op == "raw":
        try:
            socket.create_connection((event["host"], event["port"]), timeout=3).close()
            return "connected"
        except OSError as exc:
            return "denied %s" % exc
"""

DENO = r"""
export default async function handler(event) {
  try {
    if (event.op === "raw") {
      const c = await Deno.connect({ hostname: event.host, port: event.port });
      c.close();
      return "connected";
    }
    const r = await fetch(event.url);
    return (r.ok ? "ok " : "refused ") + r.status + " " + (await r.text()).trim();
  } catch (e) {
    return "error " + String(e);
  }
}
"""


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"x" * (256 * 1024) if self.path == "/big" else BODY
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def _http_server() -> http.server.ThreadingHTTPServer:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def targets() -> Iterator[tuple[int, int]]:
    granted, other = _http_server(), _http_server()
    yield granted.server_address[1], other.server_address[1]
    granted.shutdown()
    other.shutdown()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(
        tmp_path_factory.mktemp("fn-egress"),
        # the admin opens the SSRF guard for loopback (IPv4) to function egress, nothing more
        env={
            "AIONIX_FUNCTIONS_ALLOW_HOSTS": "127.0.0.1",
            "AIONIX_FUNCTIONS_POOL_SIZE": "1",
            "AIONIX_FUNCTIONS_EGRESS_MAX_BYTES": str(64 * 1024),
            "AIONIX_FUNCTIONS_EGRESS_MAX_CONNECTIONS": "8",
        },
    ).start()
    yield proc
    proc.stop()


@pytest.fixture
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with server.client(timeout=120.0) as c:
        yield c


def _confinement(client: httpx.Client) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        report = client.get("/healthz").json()["confinement"]
        if report.get("status") != "detecting" or time.monotonic() > deadline:
            return report
        time.sleep(0.05)


def _create(client: httpx.Client, runtime: str, source: str, net: list[str], expect: int = 201) -> str:
    name = f"egress-{runtime}-{uuid.uuid4().hex[:8]}"
    body = {"name": name, "runtime": runtime, "code": {"source": source}, "permissions": {"net": net}}
    r = client.post("/api/v1/functions", json=body)
    assert r.status_code == expect, r.text
    return name


def _call(client: httpx.Client, name: str, event: dict[str, Any]) -> str:
    r = client.post(f"/api/v1/functions/{name}/invoke", json=event)
    assert r.status_code == 200, r.text
    record = r.json()
    assert record["status"] == "SUCCEEDED", record["error"]
    return record["result"]


def test_python_reaches_only_its_granted_host(client, server, targets) -> None:
    granted, other = targets
    health = _confinement(client)
    assert health["netns"], "these checks need a network namespace (run as root)"
    assert health["egress"]["mode"] == "proxy"
    name = _create(client, "python", PYTHON, [f"127.0.0.1:{granted}", "169.254.169.254"])

    assert _call(client, name, {"op": "get", "url": f"http://127.0.0.1:{granted}/x"}) == "ok 200 hello-egress"
    assert _call(client, name, {"op": "tunnel", "host": "127.0.0.1", "port": granted}) == "ok 200 hello-egress"

    # another local service: not granted
    result = _call(client, name, {"op": "get", "url": f"http://127.0.0.1:{other}/"})
    assert result.startswith("refused 403") and "permissions.net" in result, result
    assert "403" in _call(client, name, {"op": "tunnel", "host": "127.0.0.1", "port": other})
    # the Aionix API itself
    result = _call(client, name, {"op": "get", "url": f"http://127.0.0.1:{server.port}/healthz"})
    assert result.startswith("refused 403"), result
    # the metadata address: granted by name, still refused by the SSRF guard
    result = _call(client, name, {"op": "get", "url": "http://169.254.169.254/latest/meta-data/"})
    assert result.startswith("refused 403") and "metadata" in result, result
    # a granted host that the admin did not allow-list (IPv6 loopback) stays refused by the guard
    v6 = _create(client, "python", PYTHON, [f"[::1]:{granted}"])
    result = _call(client, v6, {"op": "get", "url": f"http://[::1]:{granted}/"})
    assert result.startswith("refused 403") and "loopback" in result and "[functions] allow_hosts" in result, result

    # around the proxy: no route out of the namespace at all
    for host, port in (("127.0.0.1", other), ("127.0.0.1", server.port), ("169.254.169.254", 80)):
        assert _call(client, name, {"op": "raw", "host": host, "port": port}).startswith("denied"), (host, port)
    assert _call(client, name, {"op": "raw", "host": "127.0.0.1", "port": granted}).startswith("denied")


def test_bytes_per_connection_are_capped(client, targets) -> None:
    granted, _ = targets
    name = _create(client, "python", PYTHON, [f"127.0.0.1:{granted}"])
    result = _call(client, name, {"op": "get", "url": f"http://127.0.0.1:{granted}/big"})
    assert result.startswith("error"), result[:200]
    health = _confinement(client)["egress"]
    assert health["max_bytes_per_connection"] == 64 * 1024 and health["relayed"] >= 1, health


def test_malformed_proxy_requests_get_a_clear_answer(client, server, targets) -> None:
    granted, _ = targets
    name = _create(client, "python", PYTHON, [f"127.0.0.1:{granted}"])
    for data, status in (
        ("nonsense\r\n\r\n", "400"),
        ("CONNECT 127.0.0.1 HTTP/1.1\r\n\r\n", "400"),
        ("GET http://[::1/ HTTP/1.1\r\n\r\n", "400"),
        ("GET /relative HTTP/1.1\r\n\r\n", "400"),
        ("GET http://127.0.0.1:99999/ HTTP/1.1\r\n\r\n", "400"),
        ("GET http://127.0.0.1/ HTTP/1.1\r\nX: " + "a" * 20000 + "\r\n\r\n", "400"),
        (f"GET http://127.0.0.1:{granted}/ HTTP/1.1\r\nHost: elsewhere\r\n\r\n", "HTTP/1.0 200"),
    ):
        result = _call(client, name, {"op": "proxy_bytes", "data": data})
        assert status in result, (data[:60], result)
    assert "Traceback" not in server.log()


def test_connections_are_capped(client, targets) -> None:
    granted, _ = targets
    name = _create(client, "python", PYTHON, [f"127.0.0.1:{granted}"])
    statuses = _call(client, name, {"op": "many", "n": 12, "port": granted})
    assert statuses.count("200") <= 8 and statuses[-1] == "503", statuses
    # once they are closed (the proxy notices within moments), connections are available again
    deadline = time.monotonic() + 10
    while (result := _call(client, name, {"op": "get", "url": f"http://127.0.0.1:{granted}/"})).startswith("refused"):
        assert time.monotonic() < deadline, result
        time.sleep(0.2)
    assert result == "ok 200 hello-egress"


def test_api_port_is_refused_even_when_granted(client, server) -> None:
    name = _create(client, "python", PYTHON, [f"127.0.0.1:{server.port}"])
    result = _call(client, name, {"op": "get", "url": f"http://127.0.0.1:{server.port}/healthz"})
    assert result.startswith("refused 403") and "Aionix API" in result, result


def test_deno_goes_through_the_same_proxy(client, server, targets) -> None:
    granted, other = targets
    if not _confinement(client)["deno"]["available"]:
        pytest.fail("the dev install includes deno (pip install 'aionix[deno]')")
    name = _create(client, "deno", DENO, [f"127.0.0.1:{granted}", f"127.0.0.1:{other}"])
    assert _call(client, name, {"url": f"http://127.0.0.1:{granted}/"}) == "ok 200 hello-egress"
    # --allow-net lets the name through; the namespace leaves no direct route
    assert _call(client, name, {"op": "raw", "host": "127.0.0.1", "port": other}).startswith("error")
    # not granted at all: Deno's own check refuses before any connection
    assert _call(client, name, {"url": f"http://127.0.0.1:{server.port}/healthz"}).startswith("error")


def test_bad_grant_is_a_422_naming_the_field(client) -> None:
    body = {"name": "egress-bad", "runtime": "python", "code": {"source": PYTHON}, "permissions": {"net": ["a b:x"]}}
    r = client.post("/api/v1/functions", json=body)
    assert r.status_code == 422, r.text
    assert "permissions.net" in r.text


def test_without_a_namespace_grants_are_refused_and_healthz_says_so(tmp_path: Path, targets) -> None:
    granted, _ = targets
    refused = ServerProcess(tmp_path / "refused", env={"AIONIX_FUNCTIONS_NETWORK_NAMESPACE": "false"}).start()
    try:
        with refused.client(timeout=120.0) as c:
            egress = _confinement(c)["egress"]
            assert egress["mode"] == "refused", egress
            body = {
                "name": "open-net",
                "runtime": "python",
                "code": {"source": PYTHON},
                "permissions": {"net": ["a.b"]},
            }
            r = c.post("/api/v1/functions", json=body)
            assert r.status_code == 422, r.text
            assert "permissions.net" in r.text and "allow_unconfined_net" in r.text
    finally:
        refused.stop()
    # the admin accepted an open network: the grant runs, unconfined, and /healthz says so
    env = {"AIONIX_FUNCTIONS_NETWORK_NAMESPACE": "false", "AIONIX_FUNCTIONS_ALLOW_UNCONFINED_NET": "true"}
    unconfined = ServerProcess(tmp_path / "unconfined", env=env).start()
    try:
        with unconfined.client(timeout=120.0) as c:
            assert _confinement(c)["egress"]["mode"] == "unconfined"
            name = _create(c, "python", PYTHON, [f"127.0.0.1:{granted}"])
            assert _call(c, name, {"op": "raw", "host": "127.0.0.1", "port": granted}) == "connected"
    finally:
        unconfined.stop()
