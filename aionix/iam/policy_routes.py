"""Routes: policies (CRUD, attach/detach, simulate) and the list of actions."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from aionix.api.auth import Principal
from aionix.api.endpoint import Api, Call, Page, PageQuery
from aionix.iam import tags as tagslib
from aionix.iam.policy import PolicyDocument, PolicySet, Request
from aionix.iam.policy_engine import _fields

api = Api("policies")
NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"


class PolicyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = Field("", max_length=1000)
    document: PolicyDocument


class PolicyView(BaseModel):
    name: str
    description: str
    document: dict[str, Any]
    builtin: bool
    version: int
    created_at: float | None = None
    updated_at: float | None = None


class PolicyListQuery(PageQuery):
    cursor: str | None = Field(None, max_length=128, pattern=NAME)


class AttachBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    principal_kind: Literal["key", "user", "group"]
    principal_id: str = Field(..., min_length=1, max_length=256, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@:+-]*$")


class Attachment(BaseModel):
    principal_kind: str
    principal_id: str
    policy: str
    created_at: float
    created_by: str | None = None


class Attachments(BaseModel):
    items: list[Attachment]


class SimContext(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source_ip: str | None = Field(None, max_length=64)
    time: float | None = Field(None, ge=0, le=1e11, description="Unix time (default: now)")
    intent: str | None = Field(None, max_length=256)
    route: str | None = Field(None, max_length=1024, description="'METHOD /path'")
    provider: str | None = Field(None, max_length=256)
    via: Literal["api", "mcp", "bus"] = "api"
    tags: dict[str, str] | None = None
    tenant: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9-]{0,62}$", description="acting tenant (default: yours)")


class SimulateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: str = Field(..., min_length=3, max_length=256, pattern=r"^[A-Za-z0-9]+:[A-Za-z0-9]+$")
    resource: str = Field(..., min_length=4, max_length=1024, pattern=r"^trn:")
    key_id: str | None = Field(None, max_length=64, description="simulate this key of the tenant")
    user_id: str | None = Field(None, max_length=256)
    groups: list[str] = Field([], max_length=100)
    role: Literal["viewer", "operator", "admin", "none"] | None = Field(
        None, description="the role of a user (or to override the key's)"
    )
    context: SimContext = SimContext()
    extra_policies: list[PolicyDocument] = Field(
        [], max_length=20, description="unsaved documents evaluated as if attached (to test a draft)"
    )


class Statement(BaseModel):
    policy: str
    sid: str | None
    index: int
    effect: str


class SimulateResult(BaseModel):
    decision: Literal["allow", "deny"]
    reason: Literal["allow", "explicit_deny", "implicit_deny"]
    action: str
    resource: str
    statement: Statement | None = None
    policies: list[str]


class ActionView(BaseModel):
    action: str
    method: str
    path: str
    role: str
    resource: str


class ActionList(BaseModel):
    items: list[ActionView]


@api.get("/api/v1/policies", role="admin", query=PolicyListQuery, response=Page[PolicyView])
async def list_policies(call: Call) -> dict[str, Any]:
    """The tenant's policies, the built-in role policies first."""
    items, cursor = await call.rt.policies.list(call.tenant, call.query.cursor, call.page_limit(call.query.limit))
    return {"items": items, "next_cursor": cursor}


@api.get("/api/v1/policies/{name}", role="admin", response=PolicyView)
async def get_policy(call: Call) -> dict[str, Any]:
    """One policy document."""
    return await call.rt.policies.get(call.tenant, call.path["name"])


@api.put("/api/v1/policies/{name}", role="admin", body=PolicyBody, response=PolicyView)
async def put_policy(call: Call) -> dict[str, Any]:
    """Create or replace a policy (its attachments take the new document at once)."""
    body: PolicyBody = call.body
    assert call.principal is not None
    return await call.rt.policies.put(
        call.tenant, call.path["name"], body.description, body.document, call.principal.key_id
    )


@api.delete("/api/v1/policies/{name}", role="admin", status=204)
async def delete_policy(call: Call) -> None:
    """Delete a policy and every attachment of it."""
    await call.rt.policies.delete(call.tenant, call.path["name"])


@api.get("/api/v1/policies/{name}/attachments", role="admin", response=Attachments)
async def list_policy_attachments(call: Call) -> dict[str, Any]:
    """The keys, users and groups a policy is attached to."""
    return {"items": await call.rt.policies.attachments(call.tenant, call.path["name"])}


@api.post("/api/v1/policies/{name}/attach", role="admin", body=AttachBody, response=Attachments)
async def attach_policy(call: Call) -> dict[str, Any]:
    """Attach a policy to a key, a user or a group of the tenant."""
    body: AttachBody = call.body
    assert call.principal is not None
    name = call.path["name"]
    await call.rt.policies.attach(call.tenant, name, body.principal_kind, body.principal_id, call.principal.key_id)
    return {"items": await call.rt.policies.attachments(call.tenant, name)}


@api.post("/api/v1/policies/{name}/detach", role="admin", body=AttachBody, response=Attachments)
async def detach_policy(call: Call) -> dict[str, Any]:
    """Detach a policy from a key, a user or a group."""
    body: AttachBody = call.body
    name = call.path["name"]
    await call.rt.policies.detach(call.tenant, name, body.principal_kind, body.principal_id)
    return {"items": await call.rt.policies.attachments(call.tenant, name)}


@api.post("/api/v1/policies/simulate", role="admin", body=SimulateBody, response=SimulateResult)
async def simulate_policy(call: Call) -> dict[str, Any]:
    """May principal P do action A on resource R? The decision and the statement that decided."""
    body: SimulateBody = call.body
    engine = call.rt.policies
    tenant = call.tenant
    if body.key_id is not None:
        who = await engine.key_principal(tenant, body.key_id)
        if body.role is not None:
            who = Principal(who.key_id, tenant, body.role, who.cross_tenant, tenant)
    else:
        who = Principal("", tenant, body.role or "none", False, tenant, user_id=body.user_id, groups=tuple(body.groups))
    if body.user_id is not None or body.groups:
        who = Principal(
            who.key_id, tenant, who.role, who.cross_tenant, tenant, user_id=body.user_id, groups=tuple(body.groups)
        )
    policies = await engine.effective_policies(who)
    policies += [(f"extra-{i}", doc) for i, doc in enumerate(body.extra_policies)]
    ctx = body.context
    req = Request(
        action=body.action,
        resource=body.resource,
        tenant=ctx.tenant or tenant,
        source_ip=ctx.source_ip,
        now=ctx.time,
        intent=ctx.intent,
        route=ctx.route,
        provider=ctx.provider,
        via=ctx.via,
        tags=ctx.tags,
    )
    pset = PolicySet(policies)
    if ctx.tags is None and "tags" in pset.needs:  # the resource's own tags (aionix/iam/tags.py)
        req = Request(**{**_fields(req), "tags": await engine._tags(body.resource, tenant)})
    decision = pset.decide(req)
    return {**decision.to_dict(), "policies": [name for name, _ in policies]}


@api.get("/api/v1/policy-actions", role="admin", response=ActionList)
async def list_policy_actions(call: Call) -> dict[str, Any]:
    """Every action a policy can name, with its route, least role and resource pattern."""
    return {"items": call.rt.policies.actions()}


# ---------------------------------------------------------------------------- tags on resources
TRN_FIELD = Field(..., min_length=4, max_length=1024, pattern=r"^trn:", description="the resource's TRN")


class TagsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    trn: str = TRN_FIELD


class TagsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    trn: str = TRN_FIELD
    tags: dict[str, str] = Field(..., max_length=tagslib.MAX_TAGS, description="replaces every tag of the resource")


class TagsView(BaseModel):
    trn: str
    tags: dict[str, str]
    updated_at: float | None = None
    updated_by: str | None = None


@api.get("/api/v1/tags", role="viewer", query=TagsQuery, response=TagsView)
async def get_tags(call: Call) -> dict[str, Any]:
    """The tags of a resource (the `tags` condition of policies reads them; a secret's labels
    count as its tags too, shown on the secret)."""
    return await tagslib.get(call.rt, call.tenant, call.query.trn)


@api.put("/api/v1/tags", role="admin", body=TagsBody, response=TagsView)
async def put_tags(call: Call) -> dict[str, Any]:
    """Set the tags of a resource of the tenant (a workflow, function, secret, parameter,
    trigger, connection or saved action), replacing those it had."""
    body: TagsBody = call.body
    return await tagslib.put(
        call.rt, call.tenant, body.trn, body.tags, call.principal.key_id if call.principal else None
    )


@api.delete("/api/v1/tags", role="admin", query=TagsQuery, status=204)
async def delete_tags(call: Call) -> None:
    """Remove every tag of a resource."""
    await tagslib.delete(call.rt, call.tenant, call.query.trn)
