"""Users and groups per tenant, local passwords, and sign-in.

A user belongs to one tenant and has a role like an API key (`viewer` < `operator` < `admin`);
the policy engine turns the role into its built-in policy and attaches policies to users and
groups. A *local* user signs in with a password: stored as an scrypt hash (`hashlib.scrypt`,
standard library, so air-gapped sites need nothing more), checked off the event loop. An *OIDC*
user is made or updated at each sign-in through the configured issuer, found by the issuer's
subject; its OIDC group memberships are replaced from the group claim each time.

Failed local sign-ins answer the same 401 whether the user exists or not (a hash is computed
either way), are written to the aggregated failed-authentication audit row of the address, and
are throttled per address (like bad API keys) and per user name.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import time
from typing import TYPE_CHECKING, Any

from aionix.api.auth import ROLES
from aionix.api.limits import FailureCounter
from aionix.errors import Conflict, NotFound, RateLimited, Unauthorized, field_error

if TYPE_CHECKING:
    from aionix.iam.tokens import AuthConfig, TokenService
    from aionix.runtime import Runtime

# scrypt: N=2^15, r=8, p=1 (32 MiB, ~50-100 ms): OWASP's recommended minimum
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
_DUMMY_SALT = b"aionix-no-such-user-salt"
_MAXMEM = 64 * 1024 * 1024


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=_MAXMEM, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${n}${r}${p}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str | None) -> bool:
    """True when `password` matches `stored`; computes a hash even without one (same timing)."""
    try:
        scheme, n, r, p, salt, digest = (stored or "").split("$")
        if scheme != "scrypt":
            raise ValueError(scheme)
        params = (int(n), int(r), int(p), base64.b64decode(salt), base64.b64decode(digest))
    except ValueError:
        hashlib.scrypt(
            password.encode(), salt=_DUMMY_SALT, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, maxmem=_MAXMEM, dklen=32
        )
        return False
    n_, r_, p_, salt_, digest_ = params
    got = hashlib.scrypt(password.encode("utf-8"), salt=salt_, n=n_, r=r_, p=p_, maxmem=_MAXMEM, dklen=32)
    return hmac.compare_digest(got, digest_)


def public_user(row: Any, groups: list[str] | None = None) -> dict[str, Any]:
    out = {
        "id": row["id"],
        "tenant": row["tenant"],
        "name": row["name"],
        "email": row["email"],
        "role": row["role"],
        "source": row["source"],
        "disabled": bool(row["disabled"]),
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "last_login_at": row["last_login_at"],
    }
    if groups is not None:
        out["groups"] = groups
    return out


class UsersService:
    def __init__(self, rt: Runtime, cfg: AuthConfig, tokens: TokenService) -> None:
        self.rt = rt
        self.cfg = cfg
        self.tokens = tokens
        self.user_failures = FailureCounter(cfg.login_failures_per_user, window=900.0)

    # ------------------------------------------------------------------ users
    async def _row(self, tenant: str, name: str) -> Any:
        row = await self.rt.store.fetch_one("iam_users.get_user", {"tenant": tenant, "name": name})
        if row is None:
            raise NotFound(f"no user {name!r} in tenant {tenant!r}")
        return row

    async def _groups(self, user_id: str) -> list[str]:
        rows = await self.rt.store.fetch_all("iam_users.user_groups", {"user_id": user_id})
        return [r["group_name"] for r in rows]

    def _check_password(self, password: str) -> None:
        if len(password) < self.cfg.password_min_length:
            raise field_error("password", f"must be at least {self.cfg.password_min_length} characters")

    async def create(
        self, tenant: str, name: str, role: str, email: str | None, password: str | None, groups: list[str]
    ) -> dict[str, Any]:
        pw_hash = None
        if password is not None:
            self._check_password(password)
            pw_hash = await asyncio.to_thread(hash_password, password)
        for g in groups:
            if await self.rt.store.fetch_one("iam_users.get_group", {"tenant": tenant, "name": g}) is None:
                raise field_error("groups", f"no group {g!r} in tenant {tenant!r}")
        row = {
            "id": "usr_" + secrets.token_hex(8),
            "tenant": tenant,
            "name": name,
            "email": email,
            "role": role,
            "source": "local",
            "subject": None,
            "password_hash": pw_hash,
            "now": time.time(),
        }

        def fn(tx: Any) -> Any:
            if tx.fetch_one("iam_users.get_user", {"tenant": tenant, "name": name}) is not None:
                raise Conflict(f"user {name!r} already exists in tenant {tenant!r}")
            tx.execute("iam_users.insert_user", row)
            for g in groups:
                tx.execute(
                    "iam_users.add_member",
                    {"tenant": tenant, "group_name": g, "user_id": row["id"], "source": "manual", "now": row["now"]},
                )
            return tx.fetch_one("iam_users.get_user", {"tenant": tenant, "name": name})

        created = await self.rt.store.transaction(fn)
        return public_user(created, sorted(groups))

    async def get(self, tenant: str, name: str) -> dict[str, Any]:
        row = await self._row(tenant, name)
        return public_user(row, await self._groups(row["id"]))

    async def list(self, tenant: str, cursor: str | None, limit: int) -> dict[str, Any]:
        rows = await self.rt.store.fetch_all(
            "iam_users.list_users", {"tenant": tenant, "cursor": cursor, "limit": limit + 1}
        )
        items = [public_user(r) for r in rows[:limit]]
        return {"items": items, "next_cursor": rows[limit - 1]["name"] if len(rows) > limit else None}

    async def update(
        self,
        tenant: str,
        name: str,
        *,
        role: str | None,
        email: str | None,
        disabled: bool | None,
        password: str | None,
    ) -> dict[str, Any]:
        row = await self._row(tenant, name)
        if password is not None:
            if row["source"] != "local":
                raise field_error("password", "only local users have a password (this one signs in through OIDC)")
            self._check_password(password)
            pw_hash = await asyncio.to_thread(hash_password, password)
            await self.rt.store.execute(
                "iam_users.set_password", {"tenant": tenant, "name": name, "password_hash": pw_hash, "now": time.time()}
            )
        await self.rt.store.execute(
            "iam_users.update_user",
            {
                "tenant": tenant,
                "name": name,
                "role": role or row["role"],
                "email": email if email is not None else row["email"],
                "disabled": int(disabled) if disabled is not None else row["disabled"],
                "now": time.time(),
            },
        )
        if disabled or password is not None:
            await self.tokens.revoke_subject("user", row["id"])  # sessions end: sign in again
        self.tokens.forget("user", row["id"])
        return await self.get(tenant, name)

    async def delete(self, tenant: str, name: str) -> None:
        row = await self._row(tenant, name)

        def fn(tx: Any) -> None:
            tx.execute("iam_users.delete_user_memberships", {"user_id": row["id"]})
            tx.execute("iam_users.delete_user", {"tenant": tenant, "name": name})

        await self.rt.store.transaction(fn)
        await self.tokens.revoke_subject("user", row["id"])

    # ------------------------------------------------------------------ groups
    async def create_group(self, tenant: str, name: str, description: str) -> dict[str, Any]:
        def fn(tx: Any) -> Any:
            if tx.fetch_one("iam_users.get_group", {"tenant": tenant, "name": name}) is not None:
                raise Conflict(f"group {name!r} already exists in tenant {tenant!r}")
            tx.execute(
                "iam_users.insert_group",
                {"tenant": tenant, "name": name, "description": description, "now": time.time()},
            )
            return tx.fetch_one("iam_users.get_group", {"tenant": tenant, "name": name})

        row = await self.rt.store.transaction(fn)
        return {**dict(row), "members": []}

    async def get_group(self, tenant: str, name: str) -> dict[str, Any]:
        row = await self.rt.store.fetch_one("iam_users.get_group", {"tenant": tenant, "name": name})
        if row is None:
            raise NotFound(f"no group {name!r} in tenant {tenant!r}")
        members = await self.rt.store.fetch_all("iam_users.list_members", {"tenant": tenant, "group_name": name})
        return {
            **dict(row),
            "members": [{"id": m["id"], "name": m["name"], "source": m["membership"]} for m in members],
        }

    async def list_groups(self, tenant: str, cursor: str | None, limit: int) -> dict[str, Any]:
        rows = await self.rt.store.fetch_all(
            "iam_users.list_groups", {"tenant": tenant, "cursor": cursor, "limit": limit + 1}
        )
        items = [dict(r) for r in rows[:limit]]
        return {"items": items, "next_cursor": rows[limit - 1]["name"] if len(rows) > limit else None}

    async def delete_group(self, tenant: str, name: str) -> None:
        await self.get_group(tenant, name)
        members = await self.rt.store.fetch_all("iam_users.list_members", {"tenant": tenant, "group_name": name})

        def fn(tx: Any) -> None:
            tx.execute("iam_users.delete_group_members", {"tenant": tenant, "name": name})
            tx.execute("iam_users.delete_group", {"tenant": tenant, "name": name})

        await self.rt.store.transaction(fn)
        for m in members:
            self.tokens.forget("user", m["id"])

    async def add_member(self, tenant: str, group: str, user: str) -> dict[str, Any]:
        await self.get_group(tenant, group)
        row = await self._row(tenant, user)
        await self.rt.store.execute(
            "iam_users.add_member",
            {"tenant": tenant, "group_name": group, "user_id": row["id"], "source": "manual", "now": time.time()},
        )
        self.tokens.forget("user", row["id"])
        return await self.get_group(tenant, group)

    async def remove_member(self, tenant: str, group: str, user: str) -> None:
        await self.get_group(tenant, group)
        row = await self._row(tenant, user)
        n = await self.rt.store.execute(
            "iam_users.remove_member", {"tenant": tenant, "group_name": group, "user_id": row["id"]}
        )
        if not n:
            raise NotFound(f"user {user!r} is not a member of group {group!r}")
        self.tokens.forget("user", row["id"])

    # ------------------------------------------------------------------ sign-in
    async def login(self, tenant: str, name: str, password: str) -> dict[str, Any]:
        """A new session for a local user, or Unauthorized (the same for every wrong part)."""
        slot = f"{tenant}/{name}"
        blocked = self.user_failures.blocked(slot)
        if blocked:
            raise LoginThrottled("too many failed sign-ins for this user; try again later", retry_after=blocked)
        row = await self.rt.store.fetch_one("iam_users.get_user", {"tenant": tenant, "name": name})
        stored = row["password_hash"] if row is not None and row["source"] == "local" else None
        ok = await asyncio.to_thread(verify_password, password, stored)
        if not ok or row is None or row["disabled"]:
            self.user_failures.record(slot)
            raise Unauthorized("invalid user name or password")
        await self.rt.store.execute("iam_users.touch_login", {"id": row["id"], "now": time.time(), "email": None})
        return {
            "user": public_user(row, await self._groups(row["id"])),
            **await self.tokens.new_session(tenant=tenant, kind="user", subject=row["id"]),
        }

    async def oidc_user(
        self,
        tenant: str,
        issuer: str,
        subject: str,
        name: str,
        email: str | None,
        groups: list[str],
        roles: list[str],
        default_role: str,
    ) -> Any:
        """Make or update the user the issuer calls `subject`; replace its OIDC groups."""
        source_subject = f"{issuer}#{subject}"
        now = time.time()
        role = max([default_role, *roles], key=ROLES.index) if roles else None

        def fn(tx: Any) -> Any:
            row = tx.fetch_one(
                "iam_users.get_user_by_subject", {"tenant": tenant, "source": "oidc", "subject": source_subject}
            )
            if row is None:
                unique = name
                if tx.fetch_one("iam_users.get_user", {"tenant": tenant, "name": unique}) is not None:
                    unique = f"{name}-{secrets.token_hex(3)}"
                tx.execute(
                    "iam_users.insert_user",
                    {
                        "id": "usr_" + secrets.token_hex(8),
                        "tenant": tenant,
                        "name": unique,
                        "email": email,
                        "role": role or default_role,
                        "source": "oidc",
                        "subject": source_subject,
                        "password_hash": None,
                        "now": now,
                    },
                )
                row = tx.fetch_one("iam_users.get_user", {"tenant": tenant, "name": unique})
            elif role is not None and role != row["role"]:
                tx.execute(
                    "iam_users.update_user",
                    {
                        "tenant": tenant,
                        "name": row["name"],
                        "role": role,
                        "email": row["email"],
                        "disabled": row["disabled"],
                        "now": now,
                    },
                )
            tx.execute("iam_users.touch_login", {"id": row["id"], "now": now, "email": email})
            tx.execute("iam_users.remove_oidc_members", {"user_id": row["id"]})
            for g in groups:
                tx.execute(
                    "iam_users.insert_group_if_absent",
                    {"tenant": tenant, "name": g, "description": "from the OIDC group claim", "now": now},
                )
                tx.execute(
                    "iam_users.add_member",
                    {"tenant": tenant, "group_name": g, "user_id": row["id"], "source": "oidc", "now": now},
                )
            return tx.fetch_one("iam_users.get_user_by_id", {"id": row["id"]})

        row = await self.rt.store.transaction(fn)
        self.tokens.forget("user", row["id"])
        return row


class LoginThrottled(RateLimited):
    """429: too many failed sign-ins for one user name."""
