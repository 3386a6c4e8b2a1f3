"""`/api/openapi.json`, generated from the endpoints' pydantic models (never hand-written)."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import GenerateJsonSchema

from aionix import __version__
from aionix.api.endpoint import Endpoint, ErrorEnvelope

_PARAM_RE = re.compile(r"\{([a-zA-Z_][a-zA-Z0-9_]*)(?::[a-z]+)?\}")
_REF = "#/components/schemas/{model}"
_ERRORS = {
    400: "Malformed request",
    401: "Missing or invalid API key",
    403: "The key's role or tenant does not allow this",
    404: "Not found",
    409: "Conflict",
    413: "Body too large",
    415: "Wrong content type",
    422: "Validation failed",
    429: "Rate limited",
}


class _Schemas:
    def __init__(self) -> None:
        self.components: dict[str, Any] = {}

    def of(self, tp: Any, mode: str) -> dict[str, Any]:
        schema = TypeAdapter(tp).json_schema(ref_template=_REF, mode=mode, schema_generator=GenerateJsonSchema)
        defs = schema.pop("$defs", {})
        self.components.update(defs)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            name = tp.__name__
            self.components[name] = schema
            return {"$ref": _REF.format(model=name)}
        return schema


def build(endpoints: list[Endpoint], *, title: str = "Aionix") -> dict[str, Any]:
    schemas = _Schemas()
    error_ref = schemas.of(ErrorEnvelope, "serialization")
    paths: dict[str, dict[str, Any]] = {}
    for ep in endpoints:
        path = _PARAM_RE.sub(lambda m: "{" + m.group(1) + "}", ep.path)
        op: dict[str, Any] = {"operationId": ep.operation_id, "summary": ep.summary, "tags": [ep.tag]}
        params = [
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": {"type": "string", "minLength": 1, "pattern": "^[^/]+$"},
            }
            for name in _PARAM_RE.findall(ep.path)
        ]
        for name in _PARAM_RE.finditer(ep.path):
            if re.search(r":[a-z]*path\}$", name.group(0)):  # path-like convertors match "/" too
                for p in params:
                    if p["name"] == name.group(1):
                        p["schema"] = {"type": "string", "minLength": 1}
        if ep.query is not None:
            qschema = ep.query.model_json_schema(ref_template=_REF)
            required = set(qschema.get("required", []))
            for name, prop in qschema.get("properties", {}).items():
                params.append({"name": name, "in": "query", "required": name in required, "schema": _simplify(prop)})
        if params:
            op["parameters"] = params
        if ep.body is not None:
            op["requestBody"] = {
                "required": True,
                "content": {ct: {"schema": schemas.of(ep.body, "validation")} for ct in ep.content_types},
            }
        if ep.role is not None:
            op["security"] = [{"bearer": []}, {"apiKey": []}]
            op["x-aionix-role"] = ep.role
        responses: dict[str, Any] = {}
        if ep.status == 204:
            responses["204"] = {"description": "No content"}
        elif ep.response is not None:
            responses[str(ep.status)] = {
                "description": "OK",
                "content": {ep.media_type: {"schema": schemas.of(ep.response, "serialization")}},
            }
        else:
            responses[str(ep.status)] = {"description": "OK", "content": {ep.media_type: {}}}
        for code, text in ep.extra_responses.items():
            responses.setdefault(str(code), {"description": text, "content": {"application/json": {}}})
        for code, text in _ERRORS.items():
            if code in (401, 403) and ep.role is None:
                continue
            responses.setdefault(
                str(code), {"description": text, "content": {"application/json": {"schema": error_ref}}}
            )
        op["responses"] = responses
        paths.setdefault(path, {})[ep.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": __version__},
        "paths": paths,
        "components": {
            "schemas": schemas.components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
    }


def _simplify(prop: dict[str, Any]) -> dict[str, Any]:
    """Query parameters arrive as strings; keep the schema (with `anyOf` nulls removed)."""
    prop = dict(prop)
    prop.pop("title", None)
    if "anyOf" in prop:
        options = [o for o in prop.pop("anyOf") if o.get("type") != "null"]
        if len(options) == 1:
            prop.update(options[0])
        else:
            prop["anyOf"] = options
    prop.pop("default", None) if prop.get("default") is None else None
    return prop
