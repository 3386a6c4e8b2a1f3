"""Studio sign-in with OpenID Connect: authorization code + PKCE against `[auth.oidc] issuer`.

The server is the OIDC client (a confidential one: the Studio's CSP lets it talk only to this
server). `GET /api/v1/auth/oidc/authorize` makes a state, a nonce and a PKCE verifier (S256),
binds the state to the browser with an HttpOnly cookie, and redirects to the issuer's
authorization endpoint (from its discovery document). The issuer sends the browser back to
`GET /api/v1/auth/oidc/callback`: the state must be known, unused, unexpired and match the
cookie; the code is exchanged (with the verifier) at the token endpoint; the ID token is checked
(signature against the issuer's JWKS — re-read once for an unknown `kid` —, `iss`, `aud`,
`azp`, `exp`, `iat`, and the nonce). The user is made or updated from the claims and its group
claim mapped to Aionix groups (`group_map`). The browser then goes back to the Studio with a
one-time *handoff* code (60 s), which the Studio exchanges (`POST /api/v1/auth/oidc/exchange`)
for its access and refresh tokens — the tokens never appear in a URL.

Sign-ins in progress and handoff codes are kept in the store (`iam_oidc_flows`,
`iam_oidc_handoffs`: hashes of the state and code; the PKCE verifier and the tokens sealed under
the system key `iam-oidc`), so a sign-in may start on one node and end on another; each is
taken once, in a transaction.

The OIDC client is written here on `httpx` and PyJWT rather than pulled from a larger library
(authlib): discovery, one token request and an ID-token check are all it needs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import httpx
import orjson

from aionix.api.auth import Principal
from aionix.errors import AionixError, NotFound, Unauthorized, Unavailable
from aionix.iam.tokens import client_secret

if TYPE_CHECKING:
    import jwt

    from aionix.iam.tokens import OidcConfig, TokenService
    from aionix.iam.users import UsersService
    from aionix.runtime import Runtime

log = logging.getLogger("aionix.iam")

SYSTEM_KEY = "iam-oidc"
CALLBACK_PATH = "/api/v1/auth/oidc/callback"
COOKIE = "aionix_oidc_state"
HANDOFF_SECONDS = 60.0
MAX_PENDING = 10_000
_ASYMMETRIC = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
_NAME_RE = re.compile(r"[^A-Za-z0-9_.-]+")
GROUP_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


class IssuerError(AionixError):
    """The OIDC issuer could not be reached or answered something unusable."""

    status = 502
    code = "oidc_issuer_error"


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def safe_return_to(value: str | None) -> str:
    """A same-site path to send the browser back to (never another site)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


class OidcFlow:
    def __init__(self, rt: Runtime, cfg: OidcConfig, users: UsersService, tokens: TokenService) -> None:
        self.rt = rt
        self.cfg = cfg
        self.users = users
        self.tokens = tokens
        self._swept = 0.0
        self._discovery: tuple[dict[str, Any], float] | None = None
        self._jwks: jwt.PyJWKSet | None = None
        self._jwks_at = 0.0

    @property
    def enabled(self) -> bool:
        return self.cfg.enabled

    def _require(self) -> None:
        if not self.enabled:
            raise NotFound("OIDC sign-in is not configured ([auth.oidc] issuer and client_id)")

    async def _get(self, url: str) -> dict[str, Any]:
        try:
            async with httpx.AsyncClient(timeout=self.cfg.http_timeout_seconds, follow_redirects=False) as client:
                response = await client.get(url, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise IssuerError(f"the OIDC issuer is unreachable: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise IssuerError(f"the OIDC issuer answered {response.status_code} for {url}")
        try:
            data = response.json()
        except ValueError:
            raise IssuerError(f"the OIDC issuer's {url} is not JSON") from None
        if not isinstance(data, dict):
            raise IssuerError(f"the OIDC issuer's {url} is not a JSON object")
        return data

    async def discovery(self) -> dict[str, Any]:
        if self._discovery is not None and self._discovery[1] > time.monotonic():
            return self._discovery[0]
        issuer = self.cfg.issuer.rstrip("/")
        doc = await self._get(issuer + "/.well-known/openid-configuration")
        if doc.get("issuer", "").rstrip("/") != issuer:
            raise IssuerError(f"the discovery document names issuer {doc.get('issuer')!r}, not {issuer!r}")
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(doc.get(name), str):
                raise IssuerError(f"the discovery document has no {name}")
        self._discovery = (doc, time.monotonic() + 3600)
        return doc

    async def _keys(self, force: bool = False) -> jwt.PyJWKSet:
        import jwt  # PyJWT: imported by the first sign-in (1.2 MB of idle memory otherwise)

        if self._jwks is None or (force and time.monotonic() - self._jwks_at > 5.0):
            doc = await self.discovery()
            data = await self._get(doc["jwks_uri"])
            try:
                self._jwks = jwt.PyJWKSet.from_dict(data)
            except jwt.PyJWTError as exc:
                raise IssuerError(f"the issuer's JWKS is unusable: {exc}") from None
            self._jwks_at = time.monotonic()
        return self._jwks

    async def _sweep(self) -> None:
        """Drop expired sign-ins and handoff codes (at most every 10 s)."""
        if time.monotonic() - self._swept < 10.0:
            return
        self._swept = time.monotonic()
        now = time.time()
        await self.rt.store.execute("iam_users.prune_oidc_flows", {"before": now - self.cfg.login_timeout_seconds})
        await self.rt.store.execute("iam_users.prune_oidc_handoffs", {"before": now - HANDOFF_SECONDS})

    async def _box(self) -> Any:
        return await self.rt.services["vault"].system_keys.box(SYSTEM_KEY)

    async def _take(self, get: str, delete: str, params: dict[str, Any]) -> Any:
        """Read and delete one row in a transaction: the one caller that deletes it gets it."""

        def fn(tx: Any) -> Any:
            row = tx.fetch_one(get, params)
            if row is None or tx.execute(delete, params) != 1:
                return None
            return dict(row)

        return await self.rt.store.transaction(fn)

    # ------------------------------------------------------------------ the flow
    async def authorize_url(self, base_url: str, return_to: str | None) -> tuple[str, str]:
        """(the issuer's authorization URL, the state for the browser's cookie)."""
        self._require()
        doc = await self.discovery()
        await self._sweep()
        count = await self.rt.store.fetch_one("iam_users.count_oidc_flows")
        if count is not None and count["n"] >= MAX_PENDING:
            raise Unavailable("too many sign-ins in progress; try again in a minute")
        state, nonce, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48)
        redirect_uri = self.cfg.redirect_url or base_url.rstrip("/") + CALLBACK_PATH
        state_hash = _digest(state)
        await self.rt.store.execute(
            "iam_users.insert_oidc_flow",
            {
                "state_hash": state_hash,
                "nonce": nonce,
                "verifier_sealed": (await self._box()).seal(verifier, f"oidc-verifier:{state_hash}"),
                "redirect_uri": redirect_uri,
                "return_to": safe_return_to(return_to),
                "now": time.time(),
            },
        )
        challenge = _b64(hashlib.sha256(verifier.encode()).digest())
        params = {
            "response_type": "code",
            "client_id": self.cfg.client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(dict.fromkeys(["openid", *self.cfg.scopes])),
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        endpoint = doc["authorization_endpoint"]
        return endpoint + ("&" if "?" in endpoint else "?") + urlencode(params), state

    async def callback(self, state: str, code: str, cookie_state: str | None, iss: str | None) -> tuple[str, str]:
        """(the handoff code, the path to return to) once the sign-in checks out."""
        self._require()
        await self._sweep()
        state_hash = _digest(state)
        pending = await self._take("iam_users.get_oidc_flow", "iam_users.delete_oidc_flow", {"state_hash": state_hash})
        if pending is None or time.time() - pending["created_at"] > self.cfg.login_timeout_seconds:
            raise Unauthorized("unknown, used or expired sign-in state; start the sign-in again")
        verifier = (await self._box()).open(pending["verifier_sealed"], f"oidc-verifier:{state_hash}")
        if not cookie_state or not hmac.compare_digest(cookie_state, state):
            raise Unauthorized("the sign-in was started in another browser (state cookie mismatch)")
        if iss is not None and iss.rstrip("/") != self.cfg.issuer.rstrip("/"):
            raise Unauthorized("the authorization response names another issuer")
        doc = await self.discovery()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": pending["redirect_uri"],
            "client_id": self.cfg.client_id,
            "code_verifier": verifier,
        }
        secret = client_secret(self.cfg)
        if secret:
            form["client_secret"] = secret
        try:
            async with httpx.AsyncClient(timeout=self.cfg.http_timeout_seconds, follow_redirects=False) as client:
                response = await client.post(doc["token_endpoint"], data=form, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise IssuerError(f"the OIDC token endpoint is unreachable: {type(exc).__name__}") from None
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        if response.status_code != 200 or not isinstance(answer, dict) or "id_token" not in answer:
            reason = answer.get("error", response.status_code) if isinstance(answer, dict) else response.status_code
            raise Unauthorized(f"the OIDC issuer refused the code exchange ({reason})")
        claims = await self.verify_id_token(str(answer["id_token"]), pending["nonce"], doc)
        session = await self._sign_in(claims)
        handoff = secrets.token_urlsafe(32)
        code_hash = _digest(handoff)
        sealed = (await self._box()).seal(orjson.dumps(session).decode(), f"oidc-handoff:{code_hash}")
        await self.rt.store.execute(
            "iam_users.insert_oidc_handoff", {"code_hash": code_hash, "session_sealed": sealed, "now": time.time()}
        )
        return handoff, pending["return_to"]

    async def verify_id_token(self, token: str, nonce: str, doc: dict[str, Any]) -> dict[str, Any]:
        import jwt

        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthorized("the ID token is malformed") from None
        alg = header.get("alg")
        allowed = [a for a in doc.get("id_token_signing_alg_values_supported", ["RS256"]) if a in _ASYMMETRIC]
        if alg not in allowed:
            raise Unauthorized(f"the ID token's algorithm {alg!r} is not accepted")
        kid = header.get("kid")
        keys = await self._keys()
        key = self._pick(keys, kid, alg)
        if key is None:
            key = self._pick(await self._keys(force=True), kid, alg)
        if key is None:
            raise Unauthorized("the ID token is signed by a key the issuer does not publish")
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                audience=self.cfg.client_id,
                issuer=doc["issuer"],
                leeway=30,
                options={"require": ["exp", "iat", "sub", "aud", "iss"]},
            )
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"the ID token is not valid: {exc}") from None
        aud = claims["aud"]
        if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != self.cfg.client_id:
            raise Unauthorized("the ID token is for several audiences and not authorized for this client (azp)")
        if not isinstance(claims.get("nonce"), str) or not hmac.compare_digest(claims["nonce"], nonce):
            raise Unauthorized("the ID token's nonce does not match this sign-in")
        return claims

    @staticmethod
    def _pick(keys: jwt.PyJWKSet, kid: Any, alg: str) -> jwt.PyJWK | None:
        for k in keys.keys:
            if (kid is None or k.key_id == kid) and (k.algorithm_name in (alg, None) or kid is not None):
                return k
        return None

    def map_groups(self, claims: dict[str, Any]) -> list[str]:
        """The Aionix groups the group claim maps to (`group_map`; unmapped values are dropped)."""
        raw = claims.get(self.cfg.groups_claim)
        values = (
            [raw] if isinstance(raw, str) else [v for v in raw if isinstance(v, str)] if isinstance(raw, list) else []
        )
        out: set[str] = set()
        for value in values:
            mapped = self.cfg.group_map.get(value)
            if mapped and GROUP_RE.match(mapped):
                out.add(mapped)
        return sorted(out)

    async def _sign_in(self, claims: dict[str, Any]) -> dict[str, Any]:
        groups = self.map_groups(claims)
        roles = [self.cfg.group_roles[g] for g in groups if g in self.cfg.group_roles]
        email = claims.get("email") if isinstance(claims.get("email"), str) else None
        preferred = claims.get("preferred_username") or (email.split("@")[0] if email else None) or claims["sub"]
        name = _NAME_RE.sub("-", str(preferred)).strip("-._")[:100] or "user"
        if not name[0].isalnum():
            name = "u" + name
        row = await self.users.oidc_user(
            self.cfg.tenant,
            self.cfg.issuer.rstrip("/"),
            str(claims["sub"]),
            name,
            email,
            groups,
            roles,
            self.cfg.default_role,
        )
        if row["disabled"]:
            raise Unauthorized("this user is disabled in Aionix")
        session = await self.tokens.new_session(tenant=row["tenant"], kind="user", subject=row["id"])
        user = {"id": row["id"], "tenant": row["tenant"], "name": row["name"], "role": row["role"], "groups": groups}
        who = Principal(row["id"], row["tenant"], row["role"], user_id=row["id"], groups=tuple(groups), source="token")
        await self.rt.audit(
            None,
            who,
            "auth.login",
            status=200,
            resource=row["id"],
            details={"method": "oidc", "user": row["name"], "tenant": row["tenant"], "groups": groups},
        )
        return {"user": user, **session}

    async def exchange(self, handoff: str) -> dict[str, Any]:
        await self._sweep()
        code_hash = _digest(handoff)
        found = await self._take(
            "iam_users.get_oidc_handoff", "iam_users.delete_oidc_handoff", {"code_hash": code_hash}
        )
        if found is None or time.time() - found["created_at"] > HANDOFF_SECONDS:
            raise Unauthorized("unknown, used or expired sign-in code; sign in again")
        return orjson.loads((await self._box()).open(found["session_sealed"], f"oidc-handoff:{code_hash}"))
