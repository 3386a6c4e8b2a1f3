"""HTTP routes of the functions service (DESIGN.md §6); thin wrappers over the service."""

from __future__ import annotations

from typing import Any

from aionix.api.dispatch import json_response, parse_json, serialize
from aionix.api.endpoint import Api, Call, Page, PageQuery
from aionix.functions.models import (
    AliasInfo,
    CreateFunction,
    FunctionInfo,
    FunctionSummary,
    Invocation,
    InvocationQuery,
    InvokeQuery,
    LogPage,
    LogQuery,
    PublishVersion,
    PutAlias,
    Traffic,
    UpdateFunction,
    VersionInfo,
)

api = Api("functions")
BASE = "/api/v1/functions"


def _svc(call: Call) -> Any:
    return call.service("functions")


def _role(call: Call) -> str | None:
    return call.principal.role if call.principal else None


@api.post(BASE, role="operator", body=CreateFunction, response=FunctionInfo, status=201)
async def create_function(call: Call) -> dict[str, Any]:
    """Create a function from code (validated now: syntax errors and missing handlers are 422)."""
    return await _svc(call).create(call.tenant, call.body, _role(call))


@api.get(BASE, role="viewer", query=PageQuery, response=Page[FunctionSummary])
async def list_functions(call: Call) -> dict[str, Any]:
    """List the tenant's functions."""
    return await _svc(call).list(call.tenant, call.page_limit(call.query.limit), call.query.cursor)


@api.get(BASE + "/{name}", role="viewer", response=FunctionInfo)
async def get_function(call: Call) -> dict[str, Any]:
    """A function: $LATEST configuration, versions and aliases."""
    return await _svc(call).get(call.tenant, call.path["name"])


@api.put(BASE + "/{name}", role="operator", body=UpdateFunction, response=FunctionInfo)
async def update_function(call: Call) -> dict[str, Any]:
    """Replace $LATEST's code and/or configuration (validated like a create); publish to freeze it."""
    return await _svc(call).update(call.tenant, call.path["name"], call.body, _role(call))


@api.delete(BASE + "/{name}", role="operator", response=FunctionInfo)
async def delete_function(call: Call) -> dict[str, Any]:
    """Delete a function with its versions, aliases, records and logs."""
    return await _svc(call).delete(call.tenant, call.path["name"])


@api.post(BASE + "/{name}/versions", role="operator", body=PublishVersion, response=VersionInfo, status=201)
async def publish_version(call: Call) -> dict[str, Any]:
    """Publish an immutable version (optionally with new code/config); identical content returns the last version."""
    return await _svc(call).publish(call.tenant, call.path["name"], call.body, _role(call))


@api.get(BASE + "/{name}/versions", role="viewer", response=list[VersionInfo])
async def list_versions(call: Call) -> list[dict[str, Any]]:
    """Every published version."""
    return await _svc(call).list_versions(call.tenant, call.path["name"])


@api.get(BASE + "/{name}/versions/{version}", role="viewer", response=VersionInfo)
async def get_version(call: Call) -> dict[str, Any]:
    """One published version."""
    return await _svc(call).get_version(call.tenant, call.path["name"], call.path["version"])


@api.put(BASE + "/{name}/aliases/{alias}", role="operator", body=PutAlias, response=AliasInfo)
async def put_alias(call: Call) -> dict[str, Any]:
    """Create or move an alias (moving it back is an instant rollback)."""
    return await _svc(call).put_alias(call.tenant, call.path["name"], call.path["alias"], call.body)


@api.get(BASE + "/{name}/aliases/{alias}", role="viewer", response=AliasInfo)
async def get_alias(call: Call) -> dict[str, Any]:
    """One alias and its routing."""
    return await _svc(call).get_alias(call.tenant, call.path["name"], call.path["alias"])


@api.delete(BASE + "/{name}/aliases/{alias}", role="operator", response=AliasInfo)
async def delete_alias(call: Call) -> dict[str, Any]:
    """Delete an alias (its versions stay)."""
    return await _svc(call).delete_alias(call.tenant, call.path["name"], call.path["alias"])


@api.post(BASE + "/{name}/aliases/{alias}/traffic", role="operator", body=Traffic, response=AliasInfo)
async def set_traffic(call: Call) -> dict[str, Any]:
    """Send a weight of the alias's traffic to a second version (canary); weight 0 removes it."""
    return await _svc(call).set_traffic(call.tenant, call.path["name"], call.path["alias"], call.body)


@api.post(
    BASE + "/{name}/invoke",
    role="operator",
    query=InvokeQuery,
    response=Invocation,
    raw_body=True,
    audit=False,
    extra_responses={202: "mode=async: the invocation started (status RUNNING); poll …/invocations/{invocation_id}"},
)
async def invoke_function(call: Call) -> Any:
    """Invoke with the request body as the event; `mode=async` answers 202 at once with the invocation id."""
    raw = call.raw_body
    event = parse_json(raw, call.rt.config.limits.max_json_depth) if raw.strip() else None
    ctx = call.context()
    key = call.request.headers.get("idempotency-key")
    if key:
        ctx = ctx.child(idempotency_key=key)
    record = await _svc(call).invoke(call.tenant, call.path["name"], call.query.qualifier, event, ctx, call.query.mode)
    if call.query.mode == "async":
        return json_response(serialize(record, Invocation), 202)
    return record


@api.get(BASE + "/{name}/invocations", role="viewer", query=InvocationQuery, response=Page[Invocation])
async def list_invocations(call: Call) -> dict[str, Any]:
    """Invocation records, newest first."""
    return await _svc(call).records.list(
        call.tenant, call.path["name"], call.page_limit(call.query.limit), call.query.cursor
    )


@api.get(BASE + "/{name}/invocations/{invocation_id}", role="viewer", response=Invocation)
async def get_invocation(call: Call) -> dict[str, Any]:
    """One invocation record (poll it after an async invoke)."""
    return await _svc(call).records.get(call.tenant, call.path["name"], call.path["invocation_id"])


@api.get(BASE + "/{name}/logs", role="viewer", query=LogQuery, response=LogPage)
async def get_logs(call: Call) -> dict[str, Any]:
    """Captured stdout/stderr lines; pass `after=last_id` to follow."""
    q = call.query
    return await _svc(call).records.logs(
        call.tenant,
        call.path["name"],
        invocation_id=q.invocation_id,
        after=q.after,
        since=q.since,
        limit=call.page_limit(q.limit),
    )
