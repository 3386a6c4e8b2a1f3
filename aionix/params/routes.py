"""ParamStore's HTTP routes (DESIGN.md §6). The `/versions`, `/rollback` and `/labels` routes
are declared before the plain `{path:path}` routes so that they match first (those words are
reserved as the last segment of a parameter path)."""

from __future__ import annotations

from typing import Any

from starlette.convertors import PathConvertor, register_url_convertor

from aionix.api.endpoint import Api, Call, PageQuery
from aionix.params.models import (
    DeletedParam,
    GetParamQuery,
    LabelParam,
    ListParamsQuery,
    ParamInfo,
    ParamPage,
    ParamTree,
    ParamVersions,
    PutParam,
    RollbackParam,
)
from aionix.params.service import ParamsService

api = Api("params")


class ParamPathConvertor(PathConvertor):
    """A parameter path whose last segment is not one of the reserved sub-resource words, so
    that `PUT …/app/x/versions` is a 405 (only GET is declared there) rather than a put of a
    parameter named `versions`."""

    regex = r"(?!.*/(?:versions|rollback|labels)$).+"


register_url_convertor("parampath", ParamPathConvertor())


def _svc(call: Call) -> ParamsService:
    return call.service("params")


def _by(call: Call) -> str | None:
    return call.principal.key_id if call.principal else None


@api.get("/api/v1/params", role="viewer", query=ListParamsQuery, response=ParamPage | ParamTree)
async def list_params(call: Call) -> dict[str, Any]:
    """Parameters under a prefix: a page of them, or with `recursive=true` the whole subtree
    as one nested object."""
    q: ListParamsQuery = call.query
    if q.recursive:
        return await _svc(call).tree(call.tenant, q.prefix, evaluate=q.evaluate)
    return await _svc(call).list(
        call.tenant, q.prefix, limit=call.page_limit(q.limit), cursor=q.cursor, evaluate=q.evaluate
    )


@api.get("/api/v1/params/{path:path}/versions", role="viewer", query=PageQuery, response=ParamVersions)
async def list_param_versions(call: Call) -> dict[str, Any]:
    """Every version, newest first, with who made it and when."""
    return await _svc(call).versions(
        call.tenant, call.path["path"], limit=call.page_limit(call.query.limit), cursor=call.query.cursor
    )


@api.post("/api/v1/params/{path:path}/rollback", role="operator", body=RollbackParam, response=ParamInfo)
async def rollback_param(call: Call) -> dict[str, Any]:
    """Make an old version current again, as a new version."""
    body: RollbackParam = call.body
    return await _svc(call).rollback(call.tenant, call.path["path"], _by(call), body.version, body.labels)


@api.post("/api/v1/params/{path:path}/labels", role="operator", body=LabelParam, response=ParamInfo)
async def label_param(call: Call) -> dict[str, Any]:
    """Put labels on a version (a label moves off the version that had it)."""
    body: LabelParam = call.body
    return await _svc(call).label(call.tenant, call.path["path"], body.version, body.labels)


@api.get("/api/v1/params/{path:parampath}", role="viewer", query=GetParamQuery, response=ParamInfo)
async def get_param(call: Call) -> dict[str, Any]:
    """A parameter (current version, or by `version` or `label`); `evaluate=true` evaluates a
    dynamic value and resolves a secret_ref (the latter for admins only)."""
    q: GetParamQuery = call.query
    assert call.principal is not None
    return await _svc(call).get(
        call.tenant,
        call.path["path"],
        version=q.version,
        label=q.label,
        evaluate=q.evaluate,
        can_read_secrets=call.principal.at_least("admin"),
        ctx=call.context(),
    )


@api.put("/api/v1/params/{path:parampath}", role="operator", body=PutParam, response=ParamInfo)
async def put_param(call: Call) -> dict[str, Any]:
    """Create or update a parameter; every put is a new version."""
    return await _svc(call).put(call.tenant, call.path["path"], _by(call), call.body)


@api.delete("/api/v1/params/{path:parampath}", role="operator", response=DeletedParam)
async def delete_param(call: Call) -> dict[str, Any]:
    """Delete a parameter and all its versions."""
    return await _svc(call).delete(call.tenant, call.path["path"])
