"""Core routes: API keys, the audit trail, TRN resolution, identity and online backup."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.background import BackgroundTask
from starlette.responses import FileResponse

from aionix import jsonutil
from aionix import trn as trnlib
from aionix.api.auth import key_row, new_key
from aionix.api.endpoint import Api, Call, Page, PageQuery, int_cursor
from aionix.errors import Conflict, Forbidden, NotFound, field_error

api = Api("admin")


class CreateKey(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    role: Literal["viewer", "operator", "admin"]
    tenant: str | None = Field(
        None, pattern=r"^[a-z0-9][a-z0-9-]{0,62}$", description="defaults to the caller's tenant"
    )
    cross_tenant: bool = Field(False, description="admin keys only: may act in other tenants via X-Aionix-Tenant")


class KeyInfo(BaseModel):
    id: str
    tenant: str
    name: str
    role: str
    prefix: str
    cross_tenant: bool
    created_at: float
    created_by: str | None = None
    revoked_at: float | None = None


class CreatedKey(KeyInfo):
    key: str = Field(..., description="the key itself; shown only in this response")


class AuditRecord(BaseModel):
    id: int
    ts: float
    tenant: str | None
    key_id: str | None
    ip: str | None
    method: str | None
    path: str | None
    action: str
    resource: str | None
    status: int | None
    details: Any = None


class AuditQuery(PageQuery):
    cursor: str | None = Field(None, max_length=20, pattern=r"^[0-9]+$")
    action: str | None = Field(None, max_length=200)
    since: float | None = Field(None, ge=0, description="Unix time")


class ResolveQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    trn: str = Field(..., min_length=5, max_length=1024, pattern=r"^trn:")


class Resolved(BaseModel):
    trn: str
    service: str
    tenant: str
    type: str
    path: str
    name: str
    qualifier: str | None
    exists: bool | None = Field(None, description="null when no service resolves this type")
    resource: dict[str, Any] | None = None


class WhoAmI(BaseModel):
    key_id: str
    tenant: str
    role: str
    cross_tenant: bool
    version: str
    user_id: str | None = Field(None, description="the signed-in user (null for an API key)")
    groups: list[str] = Field(default_factory=list, description="the user's groups (policies attach to them)")
    source: str = Field("key", description="how the request authenticated: 'key' (API key) or 'token' (access token)")


def _key_info(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "cross_tenant": bool(row["cross_tenant"])}


@api.post("/api/v1/keys", role="admin", body=CreateKey, response=CreatedKey, status=201)
async def create_key(call: Call) -> dict[str, Any]:
    """Create an API key; the key is returned once and only its hash is kept."""
    body: CreateKey = call.body
    tenant = body.tenant or call.tenant
    assert call.principal is not None
    if tenant != call.tenant and not call.principal.cross_tenant:
        raise Forbidden("this key may only create keys in its own tenant")
    if body.cross_tenant and body.role != "admin":
        raise field_error("cross_tenant", "only admin keys can be cross-tenant")
    if body.cross_tenant and not call.principal.cross_tenant:
        raise Forbidden("only a cross-tenant admin key can create another")
    key = new_key()
    row = key_row(
        key,
        tenant=tenant,
        name=body.name,
        role=body.role,
        cross_tenant=body.cross_tenant,
        created_by=call.principal.key_id,
    )
    await call.rt.store.execute("core.insert_key", row)
    row.pop("hash")
    return {**_key_info(row), "key": key, "revoked_at": None}


@api.get("/api/v1/keys", role="admin", query=PageQuery, response=Page[KeyInfo])
async def list_keys(call: Call) -> dict[str, Any]:
    """List the tenant's API keys (never the keys themselves)."""
    limit = call.page_limit(call.query.limit)
    rows = await call.rt.store.fetch_all(
        "core.list_keys", {"tenant": call.tenant, "cursor": call.query.cursor, "limit": limit + 1}
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": [_key_info(r) for r in rows], "next_cursor": rows[-1]["id"] if more else None}


@api.delete("/api/v1/keys/{key_id}", role="admin", response=KeyInfo)
async def revoke_key(call: Call) -> dict[str, Any]:
    """Revoke a key; it stops working at once on this node."""
    key_id = call.path["key_id"]
    params = {"id": key_id, "tenant": call.tenant, "now": time.time()}

    def revoke(tx: Any) -> dict[str, Any]:
        row = tx.fetch_one("core.get_key", {"id": key_id, "tenant": call.tenant})
        if row is None or row["revoked_at"] is not None:
            raise NotFound(f"key {key_id} not found (or already revoked)")
        if row["cross_tenant"] and row["role"] == "admin":
            others = [r for r in tx.fetch_all("core.active_cross_tenant_admins") if r["id"] != key_id]
            if not others:
                raise Conflict(
                    f"key {key_id} is the last active cross-tenant admin key: without it nobody can administer "
                    "the server. Create another first (POST /api/v1/keys with role admin and cross_tenant true, "
                    "or `aio keys create NAME --role admin --cross-tenant`), then revoke this one",
                    details={"key_id": key_id},
                )
        tx.execute("core.revoke_key", params)
        found = tx.fetch_one("core.get_key", {"id": key_id, "tenant": call.tenant})
        assert found is not None
        return found

    row = await call.rt.store.transaction(revoke)
    call.rt.authenticator.forget()
    call.rt.cluster.changed("keys")
    return _key_info(row)


@api.get("/api/v1/audit", role="admin", query=AuditQuery, response=Page[AuditRecord])
async def list_audit(call: Call) -> dict[str, Any]:
    """The tenant's audit trail, newest first (cross-tenant admins also see failed authentications)."""
    q: AuditQuery = call.query
    limit = call.page_limit(q.limit)
    cursor = int_cursor(q.cursor)
    rows = await call.rt.store.fetch_all(
        "core.list_audit",
        {
            "tenant": call.tenant,
            # tenant-less records (failed authentications) are shown to cross-tenant admins only
            "include_global": int(bool(call.principal and call.principal.cross_tenant)),
            "cursor": cursor,
            "action": q.action,
            "since": q.since,
            "limit": limit + 1,
        },
    )
    more = len(rows) > limit
    rows = rows[:limit]
    for r in rows:
        r["details"] = jsonutil.loads(r["details"]) if r["details"] else None
    return {"items": rows, "next_cursor": str(rows[-1]["id"]) if more else None}


@api.get("/api/v1/resolve", role="viewer", query=ResolveQuery, response=Resolved)
async def resolve(call: Call) -> dict[str, Any]:
    """Parse a TRN and look the resource up in the caller's tenant."""
    parsed = trnlib.parse(call.query.trn)
    if parsed.tenant != call.tenant:
        raise NotFound(f"{call.query.trn} not found")
    resolver = call.rt.resolvers.get((parsed.service, parsed.type))
    resource = await resolver(parsed) if resolver else None
    return {
        "trn": str(parsed),
        "service": parsed.service,
        "tenant": parsed.tenant,
        "type": parsed.type,
        "path": parsed.path,
        "name": parsed.name,
        "qualifier": parsed.qualifier,
        "exists": (resource is not None) if resolver else None,
        "resource": resource,
    }


@api.get("/api/v1/whoami", role="viewer", response=WhoAmI)
async def whoami(call: Call) -> dict[str, Any]:
    """The caller's identity: its key (or token), tenant and role, and the signed-in user and
    groups when it authenticated with an access token."""
    from aionix import __version__

    p = call.principal
    assert p is not None
    return {
        "key_id": p.key_id,
        "tenant": p.tenant,
        "role": p.role,
        "cross_tenant": p.cross_tenant,
        "version": __version__,
        "user_id": p.user_id,
        "groups": list(p.groups),
        "source": p.source,
    }


@api.get("/api/v1/admin/backup", role="admin", media_type="application/vnd.sqlite3", audit=True)
async def backup(call: Call) -> FileResponse:
    """A consistent online copy of the whole database (SQLite backup API), as a file."""
    if call.principal is None or not call.principal.cross_tenant:
        raise Forbidden("a backup holds every tenant: it needs a cross-tenant admin key")
    if call.rt.store.dialect != "sqlite":
        raise Conflict(
            "online backup is not applicable to a PostgreSQL store: use pg_dump or the database's own backups "
            "(point-in-time recovery)"
        )
    folder = Path(tempfile.mkdtemp(prefix="aionix-backup-"))
    target = folder / "aionix-backup.db"
    await call.rt.store.backup(target)
    from aionix import doctor as doctorlib

    await doctorlib.record_backup(call.rt, call.principal)  # `aio admin doctor` reports its age

    async def cleanup() -> None:
        await asyncio.to_thread(lambda: (target.unlink(missing_ok=True), folder.rmdir()))

    return FileResponse(
        target, media_type="application/vnd.sqlite3", filename="aionix-backup.db", background=BackgroundTask(cleanup)
    )


class DoctorProblem(BaseModel):
    check: str
    tenant: str | None = None
    resource: str | None = None
    problem: str
    fix: str


class DoctorCheck(BaseModel):
    check: str
    status: Literal["ok", "warn", "problem"]
    message: str = Field(..., description="what was found, and why it matters")
    fix: str | None = Field(None, description="the way out (warn and problem)")
    tenant: str | None = None
    resource: str | None = None
    details: dict[str, Any] | None = None


class DoctorReport(BaseModel):
    ok: bool = Field(..., description="false when any check found a problem (warnings do not count)")
    problems: list[DoctorProblem]
    checks: list[DoctorCheck] = Field(default_factory=list, description="every check, ok and warn included")


@api.get("/api/v1/admin/doctor", role="admin", response=DoctorReport)
async def doctor(call: Call) -> dict[str, Any]:
    """What an admin must fix: each service's checks (for example file connections that lie
    outside their tenant's part of the roots). A cross-tenant admin sees every tenant and the
    server-wide checks (config, data dir and free space, WAL, quick_check, last backup, master
    key, clock skew, confinement and runtimes)."""
    from aionix import doctor as doctorlib

    assert call.principal is not None
    tenant = None if call.principal.cross_tenant and "x-aionix-tenant" not in call.request.headers else call.tenant
    return await doctorlib.run(call.rt, tenant, server_wide=tenant is None)
