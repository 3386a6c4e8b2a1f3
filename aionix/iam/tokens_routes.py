"""Sign-in and session routes: local login, OIDC, API-key exchange, refresh, logout, JWKS.

The routes a client calls before it has a credential (`login`, `refresh`, `logout`, the OIDC
ones, `config`, `jwks`) are public (`role=None`): they are rate-limited per address like every
public route, and their failures count as failed authentications of the address (429 once
`[security] auth_failures_per_minute` is reached, and the aggregated `auth.failure` audit row).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import RedirectResponse, Response

from aionix.api.auth import Principal
from aionix.api.dispatch import AuthThrottled, client_ip
from aionix.api.endpoint import Api, Call
from aionix.errors import AionixError, Forbidden, Unauthorized
from aionix.iam.oidc import COOKIE, safe_return_to
from aionix.iam.tokens import RefreshReused

api = Api("auth")
_PUBLIC_401 = {401: "Not signed in: wrong credentials, or an invalid, used or expired token"}


class LoginBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(..., min_length=1, max_length=128)
    password: str = Field(..., min_length=1, max_length=1024)
    tenant: str = Field("default", pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")


class RefreshBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: str = Field(..., min_length=1, max_length=512)


class ExchangeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ttl_seconds: int | None = Field(None, ge=1, le=86_400, description="at most [auth] access_token_ttl_seconds")


class HandoffBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    handoff: str = Field(..., min_length=1, max_length=512)


class SessionUser(BaseModel):
    id: str
    tenant: str
    name: str
    role: str
    groups: list[str] = []


class Session(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
    refresh_token: str | None = None
    refresh_expires_in: int | None = None
    user: SessionUser | None = None


class OidcInfo(BaseModel):
    display_name: str
    authorize_url: str


class AuthInfo(BaseModel):
    local_users: bool
    oidc: OidcInfo | None = None
    access_token_ttl_seconds: float


class Jwks(BaseModel):
    keys: list[dict[str, Any]]


class Rotated(BaseModel):
    kid: str


class AuthorizeQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    return_to: str | None = Field(None, max_length=512, description="a path of this server to come back to")


class CallbackQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    # bounded so that the longest URL stays well within what the HTTP server parses
    code: str | None = Field(None, max_length=1024)
    state: str | None = Field(None, max_length=128)
    iss: str | None = Field(None, max_length=512)
    error: str | None = Field(None, max_length=128)
    error_description: str | None = Field(None, max_length=512)


def _iam(call: Call) -> Any:
    return call.service("iam")


async def _counted(call: Call, coro: Any) -> Any:
    """Run a public credential check, throttled and counted like bad API keys per address."""
    ip = client_ip(call.request)
    blocked = call.rt.auth_failures.blocked(ip)
    if blocked:
        coro.close()
        raise AuthThrottled("too many failed authentications from this address", retry_after=blocked)
    try:
        return await coro
    except Unauthorized:
        call.rt.auth_failures.record(ip)
        raise


def _on_behalf(row: Any) -> Principal:
    """Whom a session's audit row is about (its tenant and user or key)."""
    user = row["subject_id"] if row["subject_kind"] == "user" else None
    return Principal(row["subject_id"], row["tenant"], "viewer", user_id=user, source="token")


def _user(out: dict[str, Any]) -> dict[str, Any]:
    user = out.get("user")
    if user is not None:
        out = {
            **out,
            "user": {k: user.get(k) for k in ("id", "tenant", "name", "role")} | {"groups": user.get("groups", [])},
        }
    return out


@api.get("/api/v1/auth/config", role=None, response=AuthInfo)
async def auth_config(call: Call) -> dict[str, Any]:
    """How to sign in here: local users, and the OIDC issuer's button when configured."""
    iam = _iam(call)
    oidc = None
    if iam.oidc.enabled:
        oidc = {"display_name": iam.cfg.oidc.display_name, "authorize_url": "/api/v1/auth/oidc/authorize"}
    return {
        "local_users": iam.cfg.local_users,
        "oidc": oidc,
        "access_token_ttl_seconds": iam.cfg.access_token_ttl_seconds,
    }


@api.post("/api/v1/auth/login", role=None, body=LoginBody, response=Session, extra_responses=_PUBLIC_401)
async def login(call: Call) -> dict[str, Any]:
    """Sign in a local user with a password: an access token and a refresh token."""
    iam = _iam(call)
    body: LoginBody = call.body
    if not iam.cfg.local_users:
        raise Forbidden("local users are turned off here ([auth] local_users = false); sign in through OIDC")
    out = await _counted(call, iam.users.login(body.tenant, body.username, body.password))
    user = out["user"]
    who = Principal(
        user["id"], user["tenant"], user["role"], user_id=user["id"], groups=tuple(user["groups"]), source="token"
    )
    await call.rt.audit(
        call.request,
        who,
        "auth.login",
        status=200,
        resource=user["id"],
        details={"method": "password", "user": user["name"]},
    )
    return _user(out)


@api.post("/api/v1/auth/token", role="viewer", body=ExchangeBody, response=Session, audit=True)
async def exchange_key(call: Call) -> dict[str, Any]:
    """Exchange the calling API key for a short-lived access token (no refresh token: keep the key)."""
    p = call.principal
    assert p is not None
    if p.source != "key":
        raise Forbidden("only an API key can be exchanged for a token (send the key, not a token)")
    body: ExchangeBody = call.body
    token, ttl = await _iam(call).tokens.issue_access(
        tenant=p.home_tenant or p.tenant, kind="key", subject=p.key_id, ttl=body.ttl_seconds
    )
    return {"access_token": token, "token_type": "Bearer", "expires_in": int(ttl)}


@api.post("/api/v1/auth/refresh", role=None, body=RefreshBody, response=Session, extra_responses=_PUBLIC_401)
async def refresh(call: Call) -> dict[str, Any]:
    """A new access token and a new refresh token; the one sent is used up. Sending a used one
    again revokes the whole session (reuse detection)."""
    tokens = _iam(call).tokens
    body: RefreshBody = call.body
    try:
        out, _row = await _counted(call, tokens.refresh(body.refresh_token))
    except RefreshReused as exc:
        await call.rt.audit(
            call.request,
            _on_behalf(exc.row),
            "auth.refresh_reuse",
            status=401,
            resource=exc.row["subject_id"],
            details={"family": exc.row["family"], "tenant": exc.row["tenant"], "revoked": exc.revoked},
        )
        raise
    return out


@api.post("/api/v1/auth/logout", role=None, body=RefreshBody, status=204)
async def logout(call: Call) -> None:
    """Sign out: revoke the session's refresh tokens (its access token ends at its expiry)."""
    body: RefreshBody = call.body
    row = await _iam(call).tokens.revoke(body.refresh_token)
    if row is not None:
        await call.rt.audit(call.request, _on_behalf(row), "auth.logout", status=204, resource=row["subject_id"])
    return None


@api.get("/api/v1/auth/jwks", role=None, response=Jwks)
async def jwks(call: Call) -> dict[str, Any]:
    """The public keys that verify this server's access tokens (JWKS, by `kid`)."""
    return await _iam(call).tokens.jwks()


@api.post("/api/v1/auth/signing-keys/rotate", role="admin", response=Rotated, idempotent=False)
async def rotate_signing_key(call: Call) -> dict[str, Any]:
    """Make a new access-token signing key; tokens signed by the old one stay valid until they expire."""
    if call.principal is None or not call.principal.cross_tenant:
        raise Forbidden("the signing key serves every tenant: rotating it needs a cross-tenant admin key")
    return {"kid": await _iam(call).tokens.rotate()}


def _base_url(call: Call) -> str:
    return call.rt.config.server.public_url or str(call.request.base_url)


@api.get(
    "/api/v1/auth/oidc/authorize",
    role=None,
    query=AuthorizeQuery,
    media_type="text/html",
    extra_responses={302: "To the OIDC issuer's sign-in page", 502: "The issuer is unreachable"},
)
async def oidc_authorize(call: Call) -> Response:
    """Start the OIDC sign-in (authorization code + PKCE): redirects the browser to the issuer."""
    q: AuthorizeQuery = call.query
    url, state = await _iam(call).oidc.authorize_url(_base_url(call), q.return_to)
    response = RedirectResponse(url, status_code=302)
    response.set_cookie(
        COOKIE,
        state,
        max_age=int(_iam(call).cfg.oidc.login_timeout_seconds),
        path="/api/v1/auth/oidc",
        httponly=True,
        samesite="lax",
        secure=call.request.url.scheme == "https",
    )
    return response


@api.get(
    "/api/v1/auth/oidc/callback",
    role=None,
    query=CallbackQuery,
    media_type="text/html",
    extra_responses={302: "Back to the Studio with a one-time sign-in code, or the reason it failed"},
)
async def oidc_callback(call: Call) -> Response:
    """Where the OIDC issuer sends the browser back; checks state, PKCE, ID token and nonce."""
    from urllib.parse import urlencode

    q: CallbackQuery = call.query
    oidc = _iam(call).oidc
    oidc._require()
    try:
        if q.error:
            raise Unauthorized(
                f"the OIDC issuer refused the sign-in: {q.error}"
                + (f" ({q.error_description})" if q.error_description else "")
            )
        if not q.code or not q.state:
            raise Unauthorized("the OIDC callback has no code or state")
        handoff, return_to = await _counted(
            call, oidc.callback(q.state, q.code, call.request.cookies.get(COOKIE), q.iss)
        )
        target = safe_return_to(return_to)
        response = RedirectResponse(
            target + ("&" if "?" in target else "?") + urlencode({"aionix_signin": handoff}), 302
        )
    except AionixError as exc:
        if exc.status == 401:
            from aionix.api.authaudit import failed_auth_log

            await failed_auth_log(call.rt).note(call.request, exc.message, 401)
        response = RedirectResponse("/?" + urlencode({"aionix_signin_error": exc.message[:300]}), 302)
    response.delete_cookie(COOKIE, path="/api/v1/auth/oidc")
    return response


@api.post("/api/v1/auth/oidc/exchange", role=None, body=HandoffBody, response=Session, extra_responses=_PUBLIC_401)
async def oidc_exchange(call: Call) -> dict[str, Any]:
    """Exchange the one-time sign-in code from the OIDC callback for the session's tokens."""
    body: HandoffBody = call.body
    oidc = _iam(call).oidc

    return _user(await _counted(call, oidc.exchange(body.handoff)))
