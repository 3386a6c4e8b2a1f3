"""Sessions: short-lived signed access tokens and rotating refresh tokens.

Access tokens are JWTs signed with ES256 (PyJWT over `cryptography`), valid
`[auth] access_token_ttl_seconds` (15 minutes by default). Each signing key has a `kid`; the
private key is kept in `iam_signing_keys` sealed under the system key `iam-token-signing`, so
the master key is the one thing to back up. A rotation (every `signing_key_rotation_days`, or
`POST /api/v1/auth/signing-keys/rotate`) makes a new key that signs from then on; the old ones
stay to verify the tokens they signed until those expire.

A token names its subject: a user (`knd: "user"`) or an API key it was exchanged for
(`knd: "key"`). Each request re-reads the subject (cached a few seconds like keys): a disabled
user or a revoked key stops its tokens at once, and the role and groups are the current ones.

Refresh tokens (`aior_…`, only a SHA-256 stored) rotate on each use; presenting one that was
already used (or revoked) revokes its whole family: a stolen token and its legitimate twin both
stop, and the user signs in again.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import os
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import BaseModel, ConfigDict, Field

from aionix.api.auth import KEY_PREFIX, ROLES, Principal
from aionix.errors import BadRequest, Forbidden, Unauthorized
from aionix.trn import TENANT_RE

if TYPE_CHECKING:
    from aionix.runtime import Runtime

log = logging.getLogger("aionix.iam")

ALG = "ES256"
AUDIENCE = "aionix-api"
ISSUER = "aionix"
REFRESH_PREFIX = "aior_"
SYSTEM_KEY = "iam-token-signing"
_CACHE_SECONDS = 5.0
_LEEWAY = 5.0


def _b64(n: int) -> str:
    return base64.urlsafe_b64encode(n.to_bytes(32, "big")).rstrip(b"=").decode()


def _jwk_of(public: ec.EllipticCurvePublicKey) -> dict[str, Any]:
    """The public JWK of a P-256 key (RFC 7518 6.2.1), as PyJWT's `ECAlgorithm.to_jwk` writes it:
    signing keys are loaded at start without importing PyJWT."""
    numbers = public.public_numbers()
    return {"kty": "EC", "crv": "P-256", "x": _b64(numbers.x), "y": _b64(numbers.y)}


def _public_from_jwk(jwk: dict[str, Any]) -> ec.EllipticCurvePublicKey:
    if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
        raise ValueError("not a P-256 public key")

    def number(text: str) -> int:
        return int.from_bytes(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), "big")

    return ec.EllipticCurvePublicNumbers(number(jwk["x"]), number(jwk["y"]), ec.SECP256R1()).public_key()


class OidcConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    issuer: str = ""
    client_id: str = ""
    client_secret: str = ""
    client_secret_env: str = "AIONIX_OIDC_CLIENT_SECRET"
    tenant: str = Field("default", pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    default_role: Literal["viewer", "operator", "admin"] = "viewer"
    scopes: list[str] = ["openid", "email", "profile"]
    groups_claim: str = "groups"
    group_map: dict[str, str] = {}
    group_roles: dict[str, Literal["viewer", "operator", "admin"]] = {}
    redirect_url: str = ""
    display_name: str = "Single sign-on"
    http_timeout_seconds: float = Field(10.0, gt=0, le=120)
    login_timeout_seconds: float = Field(600.0, ge=30, le=3600)

    @property
    def enabled(self) -> bool:
        return bool(self.issuer and self.client_id)


class AuthConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    access_token_ttl_seconds: float = Field(900.0, ge=1, le=86_400)
    refresh_token_ttl_seconds: float = Field(43_200.0, ge=60, le=90 * 86_400)
    signing_key_rotation_days: float = Field(30.0, gt=0, le=3650)
    local_users: bool = True
    password_min_length: int = Field(12, ge=8, le=1024)
    login_failures_per_user: int = Field(10, ge=1, le=10_000)
    oidc: OidcConfig = OidcConfig()


def hash_refresh(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass
class _Key:
    kid: str
    public: Any
    created_at: float
    retired_at: float | None
    private: Any = None


class TokenService:
    def __init__(self, rt: Runtime, cfg: AuthConfig) -> None:
        self.rt = rt
        self.cfg = cfg
        self._keys: dict[str, _Key] = {}
        self._signing: _Key | None = None
        self._lock = asyncio.Lock()
        self._loaded_at = 0.0
        self._subjects: dict[tuple[str, str, str], tuple[Any, float]] = {}
        self._verified: dict[str, dict[str, Any]] = {}

    # ------------------------------------------------------------------ signing keys
    async def _box(self) -> Any:
        return await self.rt.services["vault"].system_keys.box(SYSTEM_KEY)

    async def load_keys(self) -> None:
        """Read the signing keys from the store; make the first one (or the next, when the current
        one is older than the rotation period)."""
        async with self._lock:
            await self._load_locked()
            current = self._signing
            if current is None or time.time() - current.created_at > self.cfg.signing_key_rotation_days * 86_400:
                await self._rotate_locked()

    async def _load_locked(self) -> None:
        now = time.time()
        since = now - self.cfg.access_token_ttl_seconds - 60
        rows = await self.rt.store.fetch_all("iam_users.signing_keys", {"since": since})
        keys: dict[str, _Key] = {}
        signing = None
        for row in rows:
            known = self._keys.get(row["kid"])
            public = known.public if known else _public_from_jwk(orjson.loads(row["public_jwk"]))
            key = _Key(row["kid"], public, row["created_at"], row["retired_at"], known.private if known else None)
            keys[key.kid] = key
            if key.retired_at is None and (signing is None or key.created_at > signing.created_at):
                signing = key
        if signing is not None and signing.private is None:
            box = await self._box()
            sealed = next(r["private_sealed"] for r in rows if r["kid"] == signing.kid)
            pem = box.open(sealed, f"iam-signing-key:{signing.kid}")
            signing.private = serialization.load_pem_private_key(pem.encode(), password=None)
        self._keys = keys
        self._signing = signing
        self._loaded_at = time.monotonic()

    async def rotate(self) -> str:
        async with self._lock:
            return await self._rotate_locked()

    async def _rotate_locked(self) -> str:
        private = ec.generate_private_key(ec.SECP256R1())
        kid = time.strftime("%Y%m%d", time.gmtime()) + "-" + secrets.token_hex(6)
        pem = private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        jwk = _jwk_of(private.public_key())
        jwk.update({"kid": kid, "alg": ALG, "use": "sig"})
        box = await self._box()
        row = {
            "kid": kid,
            "alg": ALG,
            "private_sealed": box.seal(pem, f"iam-signing-key:{kid}"),
            "public_jwk": orjson.dumps(jwk).decode(),
            "now": time.time(),
        }

        def write(tx: Any) -> None:
            tx.execute("iam_users.insert_signing_key", row)
            tx.execute("iam_users.retire_signing_keys", {"kid": kid, "now": row["now"]})
            tx.execute(
                "iam_users.prune_signing_keys",
                {"before": row["now"] - self.cfg.access_token_ttl_seconds - 3600},
            )

        await self.rt.store.transaction(write)
        await self._load_locked()
        log.info("access-token signing key %s made (older keys verify until their tokens expire)", kid)
        return kid

    async def jwks(self) -> dict[str, Any]:
        await self._maybe_reload()
        rows = await self.rt.store.fetch_all(
            "iam_users.signing_keys", {"since": time.time() - self.cfg.access_token_ttl_seconds - 60}
        )
        return {"keys": [orjson.loads(r["public_jwk"]) for r in rows]}

    async def _maybe_reload(self, force: bool = False) -> None:
        # another node may have rotated: re-read at most once a second for an unknown kid, and
        # every minute in any case (so this node signs with the newest key)
        age = time.monotonic() - self._loaded_at
        if (force and age > 1.0) or age > 60.0 or self._signing is None:
            async with self._lock:
                await self._load_locked()
                if self._signing is None:
                    await self._rotate_locked()

    # ------------------------------------------------------------------ access tokens
    async def issue_access(
        self, *, tenant: str, kind: str, subject: str, ttl: float | None = None, extra: dict[str, Any] | None = None
    ) -> tuple[str, float]:
        await self._maybe_reload()
        signing = self._signing
        assert signing is not None and signing.private is not None
        now = time.time()
        ttl = min(ttl or self.cfg.access_token_ttl_seconds, self.cfg.access_token_ttl_seconds)
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": subject,
            "tid": tenant,
            "knd": kind,
            "iat": int(now),
            "exp": now + ttl,
            "jti": secrets.token_urlsafe(12),
            **(extra or {}),
        }
        import jwt  # PyJWT: imported by the first token (1.2 MB of idle memory otherwise)

        token = jwt.encode(claims, signing.private, algorithm=ALG, headers={"kid": signing.kid})
        return token, ttl

    def decode(self, token: str) -> dict[str, Any]:
        """The verified claims (signature, kid, expiry, audience, issuer), or Unauthorized."""
        import jwt

        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthorized("invalid access token") from None
        kid = header.get("kid")
        if header.get("alg") != ALG or not isinstance(kid, str):
            raise Unauthorized("invalid access token")
        key = self._keys.get(kid)
        if key is None:
            raise LookupError(kid)
        try:
            return jwt.decode(
                token,
                key.public,
                algorithms=[ALG],
                audience=AUDIENCE,
                issuer=ISSUER,
                leeway=_LEEWAY,
                options={"require": ["exp", "iat", "sub", "aud", "iss"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the access token has expired") from None
        except jwt.PyJWTError:
            raise Unauthorized("invalid access token") from None

    async def authenticate(self, token: str, tenant_header: str | None) -> Principal:
        # a verified token is remembered until its expiry: the signature check (~0.1 ms) is paid
        # once per token, not once per request
        claims = self._verified.get(token)
        if claims is not None and claims["exp"] + _LEEWAY < time.time():
            del self._verified[token]
            claims = None
        if claims is None:
            claims = await self._verify(token)
            if len(self._verified) >= 10_000:
                self._verified.clear()
            self._verified[token] = claims
        return await self._principal(claims, tenant_header)

    async def _verify(self, token: str) -> dict[str, Any]:
        try:
            return self.decode(token)
        except LookupError:
            await self._maybe_reload(force=True)
            try:
                return self.decode(token)
            except LookupError:
                raise Unauthorized("invalid access token (unknown signing key)") from None

    async def _principal(self, claims: dict[str, Any], tenant_header: str | None) -> Principal:
        tenant, kind, subject = claims.get("tid"), claims.get("knd"), claims["sub"]
        if not isinstance(tenant, str) or kind not in ("user", "key"):
            raise Unauthorized("invalid access token")
        base = await self._subject(tenant, kind, subject)
        if base is None:
            raise Unauthorized("the access token's user or key is disabled, revoked or gone")
        if tenant_header and tenant_header != base.tenant:
            if not (base.cross_tenant and base.role == "admin"):
                raise Forbidden("this token may not act in another tenant (X-Aionix-Tenant)")
            if TENANT_RE.fullmatch(tenant_header) is None:
                raise BadRequest("X-Aionix-Tenant: must match [a-z0-9][a-z0-9-]{0,62}")
            return Principal(
                base.key_id, tenant_header, base.role, True, base.tenant, base.user_id, base.groups, "token"
            )
        return base

    async def _subject(self, tenant: str, kind: str, subject: str) -> Principal | None:
        slot = (tenant, kind, subject)
        now = time.monotonic()
        cached = self._subjects.get(slot)
        if cached is not None and cached[1] > now:
            return cached[0]
        principal = None
        if kind == "key":
            row = await self.rt.store.fetch_one("core.get_key", {"id": subject, "tenant": tenant})
            if row is not None and row["revoked_at"] is None:
                principal = Principal(
                    row["id"], row["tenant"], row["role"], bool(row["cross_tenant"]), row["tenant"], source="token"
                )
        else:
            row = await self.rt.store.fetch_one("iam_users.get_user_by_id", {"id": subject})
            if row is not None and row["tenant"] == tenant and not row["disabled"]:
                groups = await self.rt.store.fetch_all("iam_users.user_groups", {"user_id": subject})
                principal = Principal(
                    row["id"],
                    tenant,
                    row["role"] if row["role"] in ROLES else "viewer",
                    False,
                    tenant,
                    user_id=row["id"],
                    groups=tuple(g["group_name"] for g in groups),
                    source="token",
                )
        if len(self._subjects) > 10_000:
            self._subjects.clear()
        self._subjects[slot] = (principal, now + _CACHE_SECONDS)
        return principal

    def forget(self, kind: str | None = None, subject: str | None = None) -> None:
        """Drop cached subjects (a user disabled or changed here takes effect at once, and on
        the other nodes of a cluster as soon as they hear of it)."""
        if subject is None:
            self._subjects.clear()
            return
        for slot in [s for s in self._subjects if s[1] == kind and s[2] == subject]:
            del self._subjects[slot]
        self.rt.cluster.changed("users")

    # ------------------------------------------------------------------ sessions
    async def new_session(self, *, tenant: str, kind: str, subject: str, extra: dict[str, Any] | None = None) -> dict:
        """An access token and the first refresh token of a new family."""
        access, ttl = await self.issue_access(tenant=tenant, kind=kind, subject=subject, extra=extra)
        refresh = await self._insert_refresh(tenant, kind, subject, family="fam_" + secrets.token_hex(12))
        return self._answer(access, ttl, refresh)

    def _answer(self, access: str, ttl: float, refresh: str | None) -> dict[str, Any]:
        out: dict[str, Any] = {"access_token": access, "token_type": "Bearer", "expires_in": int(ttl)}
        if refresh is not None:
            out["refresh_token"] = refresh
            out["refresh_expires_in"] = int(self.cfg.refresh_token_ttl_seconds)
        return out

    async def _insert_refresh(self, tenant: str, kind: str, subject: str, family: str, tx: Any = None) -> str:
        token = REFRESH_PREFIX + secrets.token_urlsafe(32)
        now = time.time()
        row = {
            "id": "rt_" + secrets.token_hex(10),
            "family": family,
            "hash": hash_refresh(token),
            "tenant": tenant,
            "subject_kind": kind,
            "subject_id": subject,
            "now": now,
            "expires_at": now + self.cfg.refresh_token_ttl_seconds,
        }
        if tx is not None:
            tx.execute("iam_users.insert_refresh", row)
        else:
            await self.rt.store.execute("iam_users.insert_refresh", row)
        return token

    async def refresh(self, token: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """(new tokens, the old row). A reused token revokes its family: `RefreshReused`."""
        if not token.startswith(REFRESH_PREFIX):
            raise Unauthorized("invalid refresh token")
        digest = hash_refresh(token)
        now = time.time()
        outcome: dict[str, Any] = {}

        def fn(tx: Any) -> dict[str, Any] | None:
            row = tx.fetch_one("iam_users.refresh_by_hash", {"hash": digest})
            if row is None or not hmac.compare_digest(row["hash"], digest):
                return None
            if row["used_at"] is not None or row["revoked_at"] is not None:
                outcome["revoked"] = tx.execute("iam_users.revoke_family", {"family": row["family"], "now": now})
                outcome["reused"] = True
                return dict(row)
            if row["expires_at"] < now:
                outcome["expired"] = True
                return dict(row)
            if tx.execute("iam_users.use_refresh", {"id": row["id"], "now": now}) != 1:
                outcome["revoked"] = tx.execute("iam_users.revoke_family", {"family": row["family"], "now": now})
                outcome["reused"] = True
                return dict(row)
            # the new refresh token is stored in the same transaction as the old one's use
            new = REFRESH_PREFIX + secrets.token_urlsafe(32)
            tx.execute(
                "iam_users.insert_refresh",
                {
                    "id": "rt_" + secrets.token_hex(10),
                    "family": row["family"],
                    "hash": hash_refresh(new),
                    "tenant": row["tenant"],
                    "subject_kind": row["subject_kind"],
                    "subject_id": row["subject_id"],
                    "now": now,
                    "expires_at": now + self.cfg.refresh_token_ttl_seconds,
                },
            )
            outcome["token"] = new
            return dict(row)

        row = await self.rt.store.transaction(fn)
        if row is None:
            raise Unauthorized("invalid refresh token")
        if outcome.get("reused"):
            raise RefreshReused(row, outcome.get("revoked", 0))
        if outcome.get("expired"):
            raise Unauthorized("the refresh token has expired; sign in again")
        base = await self._subject(row["tenant"], row["subject_kind"], row["subject_id"])
        if base is None:
            await self.rt.store.execute("iam_users.revoke_family", {"family": row["family"], "now": now})
            raise Unauthorized("the user or key of this session is disabled, revoked or gone")
        access, ttl = await self.issue_access(tenant=row["tenant"], kind=row["subject_kind"], subject=row["subject_id"])
        return self._answer(access, ttl, outcome["token"]), row

    async def revoke(self, token: str) -> dict[str, Any] | None:
        """Sign out: revoke the refresh token's family. The row, or None for an unknown token."""
        if not token.startswith(REFRESH_PREFIX):
            return None
        row = await self.rt.store.fetch_one("iam_users.refresh_by_hash", {"hash": hash_refresh(token)})
        if row is None:
            return None
        await self.rt.store.execute("iam_users.revoke_family", {"family": row["family"], "now": time.time()})
        return dict(row)

    async def revoke_subject(self, kind: str, subject: str) -> None:
        await self.rt.store.execute(
            "iam_users.revoke_subject", {"subject_kind": kind, "subject_id": subject, "now": time.time()}
        )
        self.forget(kind, subject)

    async def prune(self) -> None:
        await self.rt.store.execute("iam_users.prune_refresh", {"before": time.time() - 86_400})


class RefreshReused(Unauthorized):
    """A refresh token presented a second time: its family is revoked."""

    def __init__(self, row: dict[str, Any], revoked: int) -> None:
        super().__init__("this refresh token was already used: the session is revoked, sign in again")
        self.row = row
        self.revoked = revoked


def looks_like_token(credential: str) -> bool:
    """A bearer credential that is a JWT (three dot-separated parts), not an API key."""
    return not credential.startswith(KEY_PREFIX) and credential.count(".") == 2 and len(credential) < 8192


def client_secret(cfg: OidcConfig) -> str:
    return cfg.client_secret or os.environ.get(cfg.client_secret_env, "")
