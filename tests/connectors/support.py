"""Loopback servers the connector tests talk to (real sockets, real protocols)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx


class Recorder(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(address, Handler)
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (a timeout test) is expected; anything else is reported."""
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def count(self, path: str) -> int:
        with self.lock:
            return sum(1 for r in self.requests if r["path"] == path)


class Handler(BaseHTTPRequestHandler):
    server: Recorder
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def _send(
        self, status: int, body: bytes, ctype: str = "application/json", headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _handle(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        query = {k: v[0] if len(v) == 1 else v for k, v in parse_qs(parts.query).items()}
        record = {
            "method": self.command,
            "path": parts.path,
            "query": query,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body.decode("utf-8", "replace"),
        }
        with self.server.lock:
            self.server.requests.append(record)
        path = parts.path
        if path == "/echo":
            self._send(200, json.dumps(record).encode())
        elif path == "/text":
            self._send(200, b"hello text", "text/plain; charset=utf-8")
        elif path.startswith("/status/"):
            code = int(path.rsplit("/", 1)[1])
            self._send(code, json.dumps({"status": code}).encode())
        elif path == "/slow":
            time.sleep(float(query.get("s", "2")))
            self._send(200, b'{"slow": true}')
        elif path == "/big":
            n = int(query.get("n", "100000"))
            self._send(200, b"x" * n, "text/plain")
        elif path == "/redirect":
            self._send(int(query.get("code", "302")), b"", headers={"Location": query.get("to", "/redirect")})
        elif path == "/graphql":
            doc = json.loads(body or b"{}")
            if "fail" in doc.get("query", ""):
                self._send(200, json.dumps({"data": None, "errors": [{"message": "boom"}]}).encode())
            else:
                self._send(200, json.dumps({"data": {"echo": doc.get("variables")}}).encode())
        elif path == "/auth":
            if self.headers.get("Authorization") == "Bearer good-token":
                self._send(200, b'{"ok": true}')
            else:
                self._send(401, b'{"ok": false}')
        else:
            self._send(200, json.dumps({"ok": True, "path": path}).encode())

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle


def start_http(host: str = "127.0.0.1") -> Recorder:
    server = Recorder((host, 0))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def make_action(
    client: httpx.Client,
    kind: str,
    parameters: dict[str, Any],
    *,
    connection: str | None = None,
    operation: str | None = None,
) -> str:
    name = unique(kind)
    body: dict[str, Any] = {"name": name, "kind": kind, "parameters": parameters}
    if connection:
        body["connection"] = connection
    if operation:
        body["operation"] = operation
    r = client.post("/api/v1/actions", json=body)
    assert r.status_code == 201, r.text
    return name


def run_action(
    client: httpx.Client,
    kind: str,
    parameters: dict[str, Any],
    *,
    connection: str | None = None,
    operation: str | None = None,
    input: Any = None,
) -> httpx.Response:
    name = make_action(client, kind, parameters, connection=connection, operation=operation)
    return client.post(f"/api/v1/actions/{name}/execute", json={"input": input})


def make_connection(client: httpx.Client, kind: str, config: dict[str, Any]) -> str:
    name = unique(f"{kind}-conn")
    r = client.post("/api/v1/connections", json={"name": name, "kind": kind, "config": config})
    assert r.status_code == 201, r.text
    return name


def error_name(response: httpx.Response) -> str:
    assert response.status_code in (502, 504), response.text
    return response.json()["error"]["details"]["error"]


def make_secret(client: httpx.Client, value: str, type: str = "password") -> str:
    name = unique("sec")
    r = client.post("/api/v1/secrets", json={"name": name, "type": type, "value": value})
    assert r.status_code == 201, r.text
    return name
