"""The modules service's HTTP routes. Installing, approving, quarantining, removing modules and
trusting keys are admin-only: a module is code that runs with the permissions it declares."""

from __future__ import annotations

from typing import Any

from aionix.api.dispatch import json_response, parse_json, read_body
from aionix.api.endpoint import Api, Call
from aionix.bus import BusError
from aionix.errors import field_error
from aionix.modules.models import ListQuery, ModuleQuery, QuarantineBody, RunQuery, TrustKey, TrustRootBody
from aionix.modules.service import ModulesService, _trn

api = Api("modules")
BASE = "/api/v1/modules"


def _svc(call: Call) -> ModulesService:
    return call.service("modules")


def _by(call: Call) -> str | None:
    return call.principal.key_id if call.principal else None


@api.get(BASE + "/schema", role="viewer")
async def module_schema(call: Call) -> dict[str, Any]:
    """The JSON Schema of an agent package manifest (`apiVersion: aionos/v1`, `kind: AgentPackage`)."""
    return _svc(call).schema()


@api.post(BASE + "/validate", role="viewer", raw_body=True, audit=False)
async def validate_manifest(call: Call) -> dict[str, Any]:
    """Check a manifest (YAML or JSON body): 200 with the normalized manifest, or 422 naming the field."""
    manifest = _svc(call).parse_manifest(call.raw_body)
    return {"valid": True, "manifest": manifest.model_dump(by_alias=True)}


@api.get("/api/v1/module-keys", role="viewer")
async def list_trusted_keys(call: Call) -> dict[str, Any]:
    """The public keys module signatures are verified against."""
    return await _svc(call).trust_list(call.tenant)


@api.post("/api/v1/module-keys", role="admin", body=TrustKey, status=201, audit=False)
async def trust_key(call: Call) -> dict[str, Any]:
    """Trust a public key (PEM, ECDSA P-256 or Ed25519) for module signatures; audited."""
    body: TrustKey = call.body
    out = await _svc(call).trust_add(call.tenant, body.name, body.public_key, _by(call))
    await call.rt.audit(
        call.request,
        call.principal,
        "modules.trust.add",
        status=201,
        resource=body.name,
        details={"fingerprint": out["fingerprint"], "algorithm": out["algorithm"]},
    )
    return out


@api.delete("/api/v1/module-keys/{name}", role="admin", audit=False)
async def untrust_key(call: Call) -> dict[str, Any]:
    """Stop trusting a key (installed modules keep their state); audited."""
    out = await _svc(call).trust_remove(call.tenant, call.path["name"])
    await call.rt.audit(
        call.request, call.principal, "modules.trust.remove", status=200, resource=call.path["name"], details=out
    )
    return out


@api.get("/api/v1/module-trust-roots", role="viewer")
async def list_trust_roots(call: Call) -> dict[str, Any]:
    """The Sigstore trusted roots keyless module signatures are verified against, with the
    identities and OIDC issuers each accepts."""
    return await _svc(call).root_list(call.tenant)


@api.post("/api/v1/module-trust-roots", role="admin", body=TrustRootBody, status=201, audit=False)
async def add_trust_root(call: Call) -> dict[str, Any]:
    """Trust a Sigstore trusted_root.json (Fulcio CAs, Rekor keys) for keyless module signatures
    by the listed identities and OIDC issuers; verified offline; audited."""
    body: TrustRootBody = call.body
    out = await _svc(call).root_add(call.tenant, body.name, body.trusted_root, body.identities, body.issuers, _by(call))
    await call.rt.audit(
        call.request,
        call.principal,
        "modules.trust.add_root",
        status=201,
        resource=body.name,
        details={"fingerprint": out["fingerprint"], "identities": out["identities"], "issuers": out["issuers"]},
    )
    return out


@api.delete("/api/v1/module-trust-roots/{name}", role="admin", audit=False)
async def remove_trust_root(call: Call) -> dict[str, Any]:
    """Stop trusting a Sigstore trusted root (installed modules keep their state); audited."""
    out = await _svc(call).root_remove(call.tenant, call.path["name"])
    await call.rt.audit(
        call.request, call.principal, "modules.trust.remove_root", status=200, resource=call.path["name"], details=out
    )
    return out


@api.get(BASE, role="viewer", query=ListQuery)
async def list_modules(call: Call) -> dict[str, Any]:
    """Installed modules (every version) with their verification state and reasons."""
    q: ListQuery = call.query
    return await _svc(call).list(call.tenant, q.state, call.page_limit(q.limit), q.cursor, q.intent)


def _multipart_package(content_type: str, raw: bytes) -> bytes:
    """The `package` part of a multipart/form-data body (stdlib MIME parser)."""
    from email.parser import BytesParser
    from email.policy import HTTP

    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw)
    if not message.is_multipart():
        raise field_error("package", "a multipart/form-data body with a boundary is expected")
    for part in message.iter_parts():
        if part.get_param("name", header="content-disposition") == "package":
            data = part.get_payload(decode=True)
            if isinstance(data, bytes):
                return data
    raise field_error("package", "the multipart body has no part named package")


@api.post(BASE, role="admin", audit=False, status=201)
async def install_module(call: Call) -> Any:
    """Install a package: the body is an OCI image layout as a tar (or tar.gz), raw
    (`application/x-tar`) or as the `package` part of multipart/form-data, up to `[modules]
    max_package_mb`. 201 with the module; a package that fails any check is stored quarantined
    with its reasons."""
    svc = _svc(call)
    raw = await read_body(call.request, svc.max_bytes)
    ctype = call.request.headers.get("content-type", "")
    if ctype.lower().startswith("multipart/form-data"):
        raw = _multipart_package(ctype, raw)
    out = await svc.install(call.tenant, raw, _by(call))
    await call.rt.audit(
        call.request,
        call.principal,
        "modules.install",
        status=201,
        resource=out["trn"],
        details={"digest": out["digest"], "state": out["state"], "reasons": out["reasons"], "signer": out["signer"]},
    )
    return json_response(out, 201, {"Location": f"{BASE}/{out['name']}?version={out['version']}"})


@api.get(BASE + "/{name}", role="viewer", query=ModuleQuery)
async def get_module(call: Call) -> dict[str, Any]:
    """One module (its newest version, or `version`): manifest, permissions, state, SBOM, invocations."""
    return await _svc(call).get(call.tenant, call.path["name"], call.query.version)


@api.delete(BASE + "/{name}", role="admin", query=ModuleQuery, audit=False)
async def remove_module(call: Call) -> dict[str, Any]:
    """Remove a module (every version, or `version`); audited."""
    out = await _svc(call).remove(call.tenant, call.path["name"], call.query.version)
    await call.rt.audit(
        call.request,
        call.principal,
        "modules.remove",
        status=200,
        resource=_trn(call.tenant, call.path["name"], call.query.version),
        details=out,
    )
    return out


@api.get(BASE + "/{name}/sbom", role="viewer", query=ModuleQuery)
async def module_sbom(call: Call) -> dict[str, Any]:
    """The module's SBOM (CycloneDX or SPDX JSON) as installed."""
    return await _svc(call).sbom(call.tenant, call.path["name"], call.query.version)


@api.post(BASE + "/{name}/verify", role="operator", query=ModuleQuery, audit=False)
async def verify_module(call: Call) -> dict[str, Any]:
    """Hash the stored layers again; a mismatch quarantines the module."""
    return await _svc(call).verify(call.tenant, call.path["name"], call.query.version)


@api.post(BASE + "/{name}/approve", role="admin", query=ModuleQuery, audit=False)
async def approve_module(call: Call) -> dict[str, Any]:
    """Approve a quarantined module explicitly (it becomes runnable); audited with its reasons."""
    out = await _svc(call).approve(call.tenant, call.path["name"], call.query.version, _by(call))
    await call.rt.audit(
        call.request,
        call.principal,
        "modules.approve",
        status=200,
        resource=out["trn"],
        details={"digest": out["digest"], "reasons": out["reasons"]},
    )
    return out


@api.post(BASE + "/{name}/quarantine", role="admin", body=QuarantineBody, audit=False)
async def quarantine_module(call: Call) -> dict[str, Any]:
    """Quarantine a module (it stops running); audited."""
    body: QuarantineBody = call.body
    out = await _svc(call).quarantine(call.tenant, call.path["name"], body.version, body.reason)
    await call.rt.audit(
        call.request,
        call.principal,
        "modules.quarantine",
        status=200,
        resource=out["trn"],
        details={"reason": body.reason},
    )
    return out


@api.post(
    BASE + "/{name}/run",
    role="operator",
    query=RunQuery,
    raw_body=True,
    audit=False,
    extra_responses={
        502: "the module failed (error: Module.Timeout, Module.InvalidOutput, …)",
        503: "Module.CircuitOpen or Module.Busy, or the confined runtimes are not ready",
    },
)
async def run_module(call: Call) -> Any:
    """Run the module with the body (JSON) as its input; the output is validated against the
    entrypoint's output schema. A failure is 502 with the error name (`Module.InvalidInput`,
    `Module.Quarantined`, `Module.Timeout`, `Module.CircuitOpen`, …)."""
    raw = call.raw_body
    event = parse_json(raw, call.rt.config.limits.max_json_depth) if raw.strip() else None
    q: RunQuery = call.query
    try:
        return await _svc(call).run(call.tenant, call.path["name"], q.version, q.entrypoint, event, call.context())
    except BusError as exc:
        status = (
            422
            if exc.error == "Module.InvalidInput"
            else 409
            if exc.error == "Module.Quarantined"
            else 503
            if exc.error in ("Module.CircuitOpen", "Module.Busy")
            else 502
        )
        return json_response(
            {"error": {"code": "module_failed", "error": exc.error, "message": exc.cause, "details": exc.details}},
            status,
        )
