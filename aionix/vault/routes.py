"""CredVault's HTTP routes (DESIGN.md §6): metadata only, except `reveal`."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from aionix.api.dispatch import json_response
from aionix.api.endpoint import Api, Call, Page
from aionix.errors import Forbidden
from aionix.trn import validate_name
from aionix.vault.models import (
    CreateSecret,
    DeleteQuery,
    ListSecretsQuery,
    MasterKeyStatus,
    RevealedSecret,
    RevealQuery,
    RotateMasterKey,
    RotateSecret,
    SecretInfo,
    SecretPolicy,
    SecretVersions,
    UpdateSecret,
)
from aionix.vault.service import VaultService, require_cross_tenant_admin

api = Api("secrets")


def _svc(call: Call) -> VaultService:
    return call.service("vault")


def _name(call: Call) -> str:
    return validate_name(call.path["name"], "path.name")


def _by(call: Call) -> str | None:
    return call.principal.key_id if call.principal else None


def _require_admin_for_readers(call: Call) -> None:
    readers = getattr(call.body, "readers", None)
    if readers is not None and (call.principal is None or not call.principal.at_least("admin")):
        raise Forbidden("readers: setting who may read a secret needs the admin role")


@api.post("/api/v1/secrets", role="operator", body=CreateSecret, response=SecretInfo, status=201)
async def create_secret(call: Call) -> dict[str, Any]:
    """Create a secret (version 1, stage current); the answer holds no value. `readers`
    (admin only) defaults to any resource of the tenant."""
    _require_admin_for_readers(call)
    return await _svc(call).create(call.tenant, _by(call), call.body)


@api.get("/api/v1/secrets", role="viewer", query=ListSecretsQuery, response=Page[SecretInfo])
async def list_secrets(call: Call) -> dict[str, Any]:
    """List the tenant's secrets (metadata only)."""
    q: ListSecretsQuery = call.query
    return await _svc(call).list(
        call.tenant, limit=call.page_limit(q.limit), cursor=q.cursor, include_deleted=q.include_deleted
    )


@api.get("/api/v1/secrets/{name}", role="viewer", response=SecretInfo)
async def get_secret(call: Call) -> dict[str, Any]:
    """A secret's metadata (never its value)."""
    return await _svc(call).get(call.tenant, _name(call))


@api.put("/api/v1/secrets/{name}", role="operator", body=UpdateSecret, response=SecretInfo)
async def update_secret(call: Call) -> dict[str, Any]:
    """Store a new version (it becomes current) and/or change the metadata (`readers`: admin only)."""
    _require_admin_for_readers(call)
    return await _svc(call).update(call.tenant, _name(call), _by(call), call.body)


@api.put("/api/v1/secrets/{name}/policy", role="admin", body=SecretPolicy, response=SecretInfo)
async def put_secret_policy(call: Call) -> dict[str, Any]:
    """Set who may resolve the secret (`readers`: TRN patterns of workflows, functions,
    connections, actions, triggers); anything else gets `CredVault.AccessDenied`, audited."""
    return await _svc(call).set_policy(call.tenant, _name(call), call.body)


@api.delete("/api/v1/secrets/{name}", role="operator", query=DeleteQuery, response=SecretInfo)
async def delete_secret(call: Call) -> dict[str, Any]:
    """Delete softly (restorable during the recovery window), or purge now with force (admin)."""
    force = call.query.force
    if force and (call.principal is None or not call.principal.at_least("admin")):
        raise Forbidden("purging a secret without a recovery window needs the admin role")
    return await _svc(call).delete(call.tenant, _name(call), force=force)


@api.post("/api/v1/secrets/{name}/restore", role="operator", response=SecretInfo)
async def restore_secret(call: Call) -> dict[str, Any]:
    """Cancel a pending deletion."""
    return await _svc(call).restore(call.tenant, _name(call))


@api.post(
    "/api/v1/secrets/{name}/reveal",
    role="admin",
    query=RevealQuery,
    response=RevealedSecret,
    idempotent=False,
    audit=True,
)
async def reveal_secret(call: Call) -> Response:
    """The value of one version (default: current); audited with who, when and which version.
    Never stored as an idempotent replay, and sent with `Cache-Control: no-store`."""
    assert call.principal is not None
    q: RevealQuery = call.query
    result = await _svc(call).reveal(
        call.tenant, _name(call), call.request, call.principal, version=q.version, stage=q.stage
    )
    body = RevealedSecret.model_validate(result).model_dump(mode="json")
    return json_response(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


@api.post("/api/v1/secrets/{name}/rotate", role="operator", body=RotateSecret, response=SecretInfo)
async def rotate_secret(call: Call) -> dict[str, Any]:
    """Create a pending version (supplied, or made by the rotation target) and promote it."""
    return await _svc(call).rotate(call.tenant, _name(call), _by(call), call.body, call.context())


@api.get("/api/v1/secrets/{name}/versions", role="viewer", response=SecretVersions)
async def list_secret_versions(call: Call) -> dict[str, Any]:
    """Every version with its stages, who made it and when."""
    return await _svc(call).versions(call.tenant, _name(call))


@api.get("/api/v1/vault/master-key", role="admin", response=MasterKeyStatus)
async def master_key_status(call: Call) -> dict[str, Any]:
    """Where the master key comes from and when it was last rotated (never the key)."""
    require_cross_tenant_admin(call.principal)
    return await _svc(call).master_status()


@api.post(
    "/api/v1/vault/master-key/rotate", role="admin", body=RotateMasterKey, response=MasterKeyStatus, idempotent=False
)
async def rotate_master_key(call: Call) -> dict[str, Any]:
    """Re-wrap every data key under a new master key, in one transaction."""
    require_cross_tenant_admin(call.principal)
    body: RotateMasterKey = call.body
    return await _svc(call).rotate_master_key(
        call.request, call.principal, new_key=body.new_key, new_passphrase=body.new_passphrase
    )
