"""A small but real OAuth2 authorization server on loopback: authorization code with PKCE
(S256, enforced), refresh tokens, client credentials, and a protected API."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit


class OAuthServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), OAuthHandler)
        self.client_id = "aionix-client"
        self.client_secret = "oauth-client-secret"
        self.expires_in = 3600
        self.codes: dict[str, dict[str, Any]] = {}
        self.access: set[str] = set()
        self.refresh: set[str] = set()
        self.grants: list[str] = []
        self.unauthorized = 0
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def revoke_access_tokens(self) -> None:
        with self.lock:
            self.access.clear()

    def issue(self, refresh: bool) -> dict[str, Any]:
        token = {"access_token": secrets.token_urlsafe(16), "token_type": "Bearer", "expires_in": self.expires_in}
        self.access.add(token["access_token"])
        if refresh:
            token["refresh_token"] = secrets.token_urlsafe(16)
            self.refresh.add(token["refresh_token"])
        return token


class OAuthHandler(BaseHTTPRequestHandler):
    server: OAuthServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        q = {k: v[0] for k, v in parse_qs(parts.query).items()}
        srv = self.server
        if parts.path == "/authorize":
            if (
                q.get("client_id") != srv.client_id
                or q.get("code_challenge_method") != "S256"
                or not q.get("code_challenge")
            ):
                return self._json(400, {"error": "invalid_request"})
            code = secrets.token_urlsafe(16)
            with srv.lock:
                srv.codes[code] = {"challenge": q["code_challenge"], "redirect_uri": q["redirect_uri"]}
            location = f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q['state']})}"
            self.send_response(302)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif parts.path == "/api/me":
            token = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
            with srv.lock:
                ok = token in srv.access
                if not ok:
                    srv.unauthorized += 1
            self._json(200 if ok else 401, {"sub": "ann"} if ok else {"error": "invalid_token"})
        else:
            self._json(404, {"error": "not found"})

    def do_POST(self) -> None:
        srv = self.server
        length = int(self.headers.get("Content-Length") or 0)
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        if urlsplit(self.path).path != "/token":
            return self._json(404, {"error": "not found"})
        client, secret = form.get("client_id"), form.get("client_secret")
        basic = self.headers.get("Authorization", "")
        if basic.startswith("Basic "):
            client, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
        grant = form.get("grant_type")
        with srv.lock:
            srv.grants.append(grant or "")
            if client != srv.client_id or (secret is not None and secret != srv.client_secret):
                return self._json(401, {"error": "invalid_client"})
            if grant == "client_credentials":
                if secret != srv.client_secret:
                    return self._json(401, {"error": "invalid_client"})
                return self._json(200, srv.issue(refresh=False))
            if grant == "authorization_code":
                entry = srv.codes.pop(form.get("code", ""), None)
                if entry is None or entry["redirect_uri"] != form.get("redirect_uri"):
                    return self._json(400, {"error": "invalid_grant", "error_description": "unknown code"})
                verifier = form.get("code_verifier", "")
                challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
                if challenge != entry["challenge"]:
                    return self._json(400, {"error": "invalid_grant", "error_description": "PKCE verification failed"})
                return self._json(200, srv.issue(refresh=True))
            if grant == "refresh_token":
                if form.get("refresh_token") not in srv.refresh:
                    return self._json(400, {"error": "invalid_grant", "error_description": "bad refresh token"})
                token = srv.issue(refresh=False)
                return self._json(200, token)
        return self._json(400, {"error": "unsupported_grant_type"})


def start_oauth() -> OAuthServer:
    server = OAuthServer()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
