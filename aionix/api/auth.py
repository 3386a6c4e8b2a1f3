"""API keys and principals.

Keys are `aio_` + 43 URL-safe characters (256 random bits). Only their SHA-256 is stored; a
lookup is by hash and the stored hash is compared again with `hmac.compare_digest`. A key has
one tenant and one role (`viewer` < `operator` < `admin`); an admin key created as
`cross_tenant` may act in another tenant by sending `X-Aionix-Tenant`. Keys are never
accepted in URLs and never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aionix.errors import BadRequest, Forbidden, Unauthorized, Unavailable
from aionix.trn import TENANT_RE

if TYPE_CHECKING:
    from aionix.store import Store

KEY_PREFIX = "aio_"
ROLES = ("viewer", "operator", "admin")
_CACHE_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str
    tenant: str
    role: str
    cross_tenant: bool = False
    home_tenant: str = ""
    # Identity beyond keys (governance): a signed-in user and the groups it belongs to. `source`
    # says how the request authenticated: "key" (API key), "token" (short-lived access token).
    # Policies attach to key_id, user_id and each group; the role is the built-in policy.
    user_id: str | None = None
    groups: tuple[str, ...] = ()
    source: str = "key"

    def at_least(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key_id() -> str:
    return "key_" + secrets.token_hex(8)


def key_row(
    key: str, *, tenant: str, name: str, role: str, cross_tenant: bool, created_by: str | None
) -> dict[str, Any]:
    return {
        "id": new_key_id(),
        "tenant": tenant,
        "name": name,
        "role": role,
        "hash": hash_key(key),
        "prefix": key[: len(KEY_PREFIX) + 6],
        "cross_tenant": int(cross_tenant),
        "created_at": time.time(),
        "created_by": created_by,
    }


def extract_key(headers: Any) -> str | None:
    """The key from `Authorization: Bearer …` or `X-API-Key`; None when absent."""
    auth = headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthorized("the Authorization header must be 'Bearer <key>'")
        return value.strip()
    key = headers.get("x-api-key")
    return key.strip() if key else None


class KeyAuthenticator:
    """Resolves keys to principals, with a short cache (revocation clears it here at once and
    within `_CACHE_SECONDS` on other nodes)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._cache: dict[str, tuple[Principal | None, float]] = {}
        #: suspended tenants (kept by aionix.iam.tenants): their keys are refused
        self.suspended: set[str] | frozenset[str] = frozenset()
        #: verifies short-lived access tokens (JWTs) sent as bearer credentials beside keys; set
        #: by aionix.iam once its signing keys are loaded (aionix/iam/tokens.py)
        self.tokens: Any = None

    def forget(self) -> None:
        self._cache.clear()

    async def authenticate(self, key: str, tenant_header: str | None) -> Principal:
        if not key.startswith(KEY_PREFIX) and key.count(".") == 2:  # a JWT: an access token
            if self.tokens is None:
                raise Unavailable("access tokens are not accepted yet (the server is starting); retry")
            principal: Principal = await self.tokens.authenticate(key, tenant_header)
            if principal.home_tenant in self.suspended and not principal.cross_tenant:
                raise Forbidden(f"tenant {principal.home_tenant!r} is suspended", code="tenant_suspended")
            return principal
        digest = hash_key(key)
        cached = self._cache.get(digest)
        now = time.monotonic()
        if cached is not None and cached[1] > now:
            base = cached[0]
        else:
            row = await self.store.fetch_one("core.key_by_hash", {"hash": digest})
            base = None
            if row is not None and hmac.compare_digest(row["hash"], digest) and row["revoked_at"] is None:
                base = Principal(row["id"], row["tenant"], row["role"], bool(row["cross_tenant"]), row["tenant"])
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (base, now + _CACHE_SECONDS)
        if base is None:
            raise Unauthorized("invalid or revoked API key")
        if base.tenant in self.suspended and not base.cross_tenant:
            raise Forbidden(f"tenant {base.tenant!r} is suspended: its keys are refused", code="tenant_suspended")
        if tenant_header and tenant_header != base.tenant:
            if not (base.cross_tenant and base.role == "admin"):
                raise Forbidden("this key may not act in another tenant (X-Aionix-Tenant)")
            if TENANT_RE.fullmatch(tenant_header) is None:
                raise BadRequest("X-Aionix-Tenant: must match [a-z0-9][a-z0-9-]{0,62}")
            return Principal(base.key_id, tenant_header, base.role, True, base.tenant)
        return base


def require_role(principal: Principal, role: str) -> None:
    if not principal.at_least(role):
        raise Forbidden(f"this action needs the {role} role; the key has {principal.role}")


def principal_record(p: Any) -> dict[str, Any]:
    """What a run or an async invocation keeps of the principal that started it (identifiers,
    never a key or token), to call on its behalf again after a restart or on another node."""
    return {
        "key_id": p.key_id,
        "tenant": p.tenant,
        "role": p.role,
        "cross_tenant": bool(getattr(p, "cross_tenant", False)),
        "home_tenant": getattr(p, "home_tenant", ""),
        "user_id": getattr(p, "user_id", None),
        "groups": list(getattr(p, "groups", ())),
        "source": getattr(p, "source", "key"),
    }


def principal_from_record(rec: dict[str, Any]) -> Principal:
    return Principal(
        rec["key_id"],
        rec["tenant"],
        rec["role"],
        bool(rec.get("cross_tenant")),
        rec.get("home_tenant") or "",
        rec.get("user_id"),
        tuple(rec.get("groups") or ()),
        rec.get("source") or "key",
    )
