"""AuthFlow: OAuth2 for `http` connections — authorization code with PKCE (S256) and client
credentials.

Client credentials: tokens are fetched on demand, kept in memory, refreshed before they expire
and once on a 401. Authorization code: `start` records a one-time `state` with its PKCE
verifier and returns the provider's authorization URL; the provider redirects the browser to
`GET /api/v1/authflow/callback`, which checks the state (unknown, used or expired states are
refused) and exchanges the code with the verifier. The tokens are handed once to the caller that
started the flow (`aio act auth`), which stores them in CredVault under the connection's
`token_secret`; the server reads them from there (resolved through the bus), refreshes the access
token before expiry and on a 401, and writes refreshed tokens back to that secret (a new version).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import orjson

from aionix import jsonutil
from aionix.bus import BusError
from aionix.connectors.httpcall import HttpRequest, send
from aionix.errors import AionixError, BadRequest, NotFound, field_error

log = logging.getLogger("aionix.connectors.authflow")

if TYPE_CHECKING:
    from aionix.connectors.connection import ConnectionHandle
    from aionix.connectors.service import ConnectorsService

STATE_TTL_SECONDS = 600.0


@dataclass
class Token:
    access_token: str
    refresh_token: str | None
    expires_at: float | None
    lifetime: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"access_token": self.access_token, "refresh_token": self.refresh_token, "expires_at": self.expires_at}


def pkce_pair() -> tuple[str, str]:
    """A PKCE verifier and its S256 challenge (RFC 7636)."""
    verifier = secrets.token_urlsafe(64)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode("ascii")
    return verifier, challenge


class AuthFlow:
    def __init__(self, service: ConnectorsService) -> None:
        self.service = service
        self._tokens: dict[tuple[str, str], tuple[Token, float]] = {}
        self._handoff: dict[str, tuple[dict[str, Any], float]] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    # ------------------------------------------------------------------ tokens
    def _auth(self, conn: ConnectionHandle) -> Any:
        auth = getattr(conn.config, "auth", None)
        if auth is None or auth.type != "oauth2":
            raise field_error("name", f"connection {conn.name} does not use oauth2 auth")
        return auth

    def forget(self, tenant: str, name: str) -> None:
        self._tokens.pop((tenant, name), None)

    async def access_token(self, conn: ConnectionHandle) -> str:
        key = (conn.tenant, conn.name)
        cached = self._tokens.get(key)
        if cached is not None and cached[1] == conn.updated_at and _fresh(cached[0]):
            return cached[0].access_token
        return (await self.refresh(conn)).access_token

    async def refresh(self, conn: ConnectionHandle | None, force: bool = False) -> Token:
        """A fresh token: client credentials again, or the refresh token (from memory, else the
        one stored in CredVault)."""
        assert conn is not None
        auth = self._auth(conn)
        key = (conn.tenant, conn.name)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            cached = self._tokens.get(key)
            if not force and cached is not None and cached[1] == conn.updated_at and _fresh(cached[0]):
                return cached[0]
            if auth.grant == "client_credentials":
                token = await self._token_request(
                    conn,
                    {"grant_type": "client_credentials", **({"scope": " ".join(auth.scopes)} if auth.scopes else {})},
                )
            else:
                stored = cached[0] if cached is not None and cached[1] == conn.updated_at else await self._stored(conn)
                if stored.refresh_token is None:
                    if not force and _fresh(stored):
                        token = stored
                    else:
                        raise BusError(
                            "AuthFlow.Expired",
                            f"connection {conn.name}: the access token expired and there is no refresh token: run aio act auth {conn.name}",
                        )
                else:
                    token = await self._token_request(
                        conn, {"grant_type": "refresh_token", "refresh_token": stored.refresh_token}
                    )
                    if token.refresh_token is None:
                        token.refresh_token = stored.refresh_token
                    await self._keep(conn, auth.token_secret, token)
            self._tokens[key] = (token, conn.updated_at)
            return token

    async def _keep(self, conn: ConnectionHandle, token_secret: str | None, token: Token) -> None:
        """Write refreshed tokens back to CredVault (a new version), so a restart or another node
        uses them — providers that rotate refresh tokens revoke the old one. A failed write is
        logged; the call goes on with the token in memory."""
        if not token_secret:
            return
        try:
            await conn.service.store_secret(conn.tenant, token_secret, token.to_json(), writer=conn.trn)
            conn.forget_secrets()
        except AionixError as exc:
            log.warning(
                "connection %s: could not keep refreshed tokens in %s: %s", conn.name, token_secret, exc.message
            )

    async def _stored(self, conn: ConnectionHandle) -> Token:
        auth = self._auth(conn)
        if not auth.token_secret:
            raise BusError(
                "AuthFlow.NotAuthorized", f"connection {conn.name} has no token_secret to keep its tokens in"
            )
        conn.forget_secrets()
        value = await conn.secret(auth.token_secret)
        if isinstance(value, str):
            try:
                value = jsonutil.loads(value)
            except orjson.JSONDecodeError:
                value = {"access_token": value}
        if not isinstance(value, dict) or not value.get("access_token"):
            raise BusError(
                "AuthFlow.NotAuthorized",
                f"secret {auth.token_secret!r} holds no OAuth2 tokens: run aio act auth {conn.name}",
            )
        return Token(value["access_token"], value.get("refresh_token"), value.get("expires_at"))

    async def _client_auth(self, conn: ConnectionHandle) -> tuple[dict[str, str], dict[str, str]]:
        """Headers and form fields that authenticate the client (HTTP Basic when it has a secret)."""
        auth = self._auth(conn)
        if auth.client_secret_secret:
            secret = str(await conn.secret(auth.client_secret_secret))
            pair = f"{_form(auth.client_id)}:{_form(secret)}".encode()
            return {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}, {}
        return {}, {"client_id": auth.client_id}

    async def _token_request(self, conn: ConnectionHandle, form: dict[str, str]) -> Token:
        auth = self._auth(conn)
        headers, extra = await self._client_auth(conn)
        headers.update({"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"})
        settings = self.service.settings
        req = HttpRequest(
            "POST",
            auth.token_url,
            headers,
            {},
            content=urlencode({**form, **extra}).encode(),
            timeout=min(settings.timeout_seconds, 30),
            max_bytes=65536,
            max_redirects=0,
            follow_redirects=False,
        )
        started = time.time()
        try:
            result = await send(conn.resource, req)
        except BusError as exc:
            body = (exc.details or {}).get("body") if isinstance(exc.details, dict) else None
            reason = body.get("error_description") or body.get("error") if isinstance(body, dict) else exc.cause
            raise BusError(
                "AuthFlow.TokenError", f"token endpoint refused the {form['grant_type']} grant: {reason}"
            ) from None
        body = result["body"]
        if not isinstance(body, dict) or not body.get("access_token"):
            raise BusError("AuthFlow.TokenError", "token endpoint answered without an access_token")
        expires_in = body.get("expires_in")
        expires_at = started + float(expires_in) if isinstance(expires_in, int | float) else None
        lifetime = float(expires_in) if isinstance(expires_in, int | float) else None
        return Token(str(body["access_token"]), body.get("refresh_token"), expires_at, lifetime)

    # ------------------------------------------------------------------ authorization code
    async def start(self, tenant: str, name: str) -> dict[str, Any]:
        conn = await self.service.handle(tenant, name, field="name")
        if conn.kind.name != "http":
            raise field_error("name", f"connection {name} is not an http connection")
        auth = self._auth(conn)
        if auth.grant != "authorization_code":
            raise field_error("name", f"connection {name} uses the {auth.grant} grant: nothing to authorize")
        if not auth.token_secret:
            raise field_error("config.auth.token_secret", "required: the CredVault credential the tokens are stored in")
        state = secrets.token_urlsafe(32)
        verifier, challenge = pkce_pair()
        redirect_uri = auth.redirect_uri or f"{self.service.rt.base_url.rstrip('/')}/api/v1/authflow/callback"
        await self.service.rt.store.execute(
            "connectors.insert_authflow_state",
            {
                "state": state,
                "tenant": tenant,
                "connection": name,
                "code_verifier": verifier,
                "redirect_uri": redirect_uri,
                "now": time.time(),
            },
        )
        params = {
            "response_type": "code",
            "client_id": auth.client_id,
            "redirect_uri": redirect_uri,
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        if auth.scopes:
            params["scope"] = " ".join(auth.scopes)
        sep = "&" if "?" in auth.authorize_url else "?"
        return {
            "authorization_url": f"{auth.authorize_url}{sep}{urlencode(params)}",
            "state": state,
            "redirect_uri": redirect_uri,
        }

    async def callback(self, state: str | None, code: str | None, error: str | None) -> str:
        """Finish a flow; raise `BadRequest` for an unknown, used or expired state."""
        if not state:
            raise field_error("query.state", "missing", status=BadRequest)
        row = await self.service.rt.store.fetch_one("connectors.get_authflow_state", {"state": state})
        if row is None or row["completed_at"] is not None or time.time() - row["created_at"] > STATE_TTL_SECONDS:
            raise BadRequest(
                "unknown, already used or expired authorization state",
                details=[{"field": "query.state", "message": "not a pending authorization"}],
            )
        finish = {"state": state, "now": time.time(), "error": None}
        if error or not code:
            finish["error"] = f"the provider refused: {error or 'no code'}"
            await self.service.rt.store.execute("connectors.finish_authflow_state", finish)
            raise BadRequest(f"authorization failed: {finish['error']}")
        try:
            conn = await self.service.handle(row["tenant"], row["connection"], field="name")
            token = await self._token_request(
                conn,
                {
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": row["redirect_uri"],
                    "code_verifier": row["code_verifier"],
                },
            )
        except (BusError, NotFound) as exc:
            finish["error"] = getattr(exc, "cause", None) or exc.message
            await self.service.rt.store.execute("connectors.finish_authflow_state", finish)
            raise BadRequest(f"authorization failed: {finish['error']}") from None
        changed = await self.service.rt.store.execute("connectors.finish_authflow_state", finish)
        if not changed:
            raise BadRequest("authorization state already used")
        self._tokens[(conn.tenant, conn.name)] = (token, conn.updated_at)
        self._handoff[state] = (token.to_json(), time.time())
        return row["connection"]

    async def status(self, tenant: str, state: str) -> dict[str, Any]:
        """Where a flow stands; the tokens are in the answer once, right after completion."""
        row = await self.service.rt.store.fetch_one("connectors.get_authflow_state", {"state": state})
        if row is None or row["tenant"] != tenant:
            raise NotFound("authorization not found")
        now = time.time()
        for key, (_, at) in list(self._handoff.items()):
            if now - at > STATE_TTL_SECONDS:
                self._handoff.pop(key, None)
        handed = self._handoff.pop(state, None)
        conn = await self.service.get_connection(tenant, row["connection"])
        return {
            "state": state,
            "connection": row["connection"],
            "completed": row["completed_at"] is not None,
            "error": row["error"],
            "token_secret": ((conn["config"].get("auth") or {}).get("token_secret")),
            "tokens": handed[0] if handed else None,
        }


def _fresh(token: Token) -> bool:
    """Usable for a while yet: refreshed a minute before expiry (a quarter of the lifetime for
    short-lived tokens)."""
    if token.expires_at is None:
        return True
    margin = min(60.0, (token.lifetime or 240.0) / 4)
    return token.expires_at - time.time() > margin


def _form(value: str | None) -> str:
    from urllib.parse import quote

    return quote(value or "", safe="")
