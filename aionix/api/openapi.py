"""`/api/openapi.json`, generated from the endpoints' pydantic models (never hand-written)."""

from __future__ import annotations

import re
from typing import Any

from pydantic import TypeAdapter
from pydantic.json_schema import GenerateJsonSchema

from aionix import __version__
from aionix.api.endpoint import PATH_PATTERNS, Endpoint, ErrorEnvelope
from aionix.jsonutil import INT64_MAX, INT64_MIN

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


def _service_name(core_ref_no_id: str) -> str:
    """`aionix.vault.models.RotateSecret` -> `vault.RotateSecret`; generics keep their arguments'
    service too (`api.Page[vault.SecretInfo]`)."""

    def one(match: re.Match[str]) -> str:
        parts = match.group(0).split(".")
        if parts[0] == "aionix" and len(parts) >= 3:
            return f"{parts[1]}.{parts[-1]}"
        return parts[-1]

    name = re.sub(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+", one, core_ref_no_id)
    return re.sub(r"[^A-Za-z0-9.\-_]", "_", name)


class _Generator(GenerateJsonSchema):
    """Component names qualified by service (`vault.RotateSecret`, `triggers.RotateSecret`), so
    two models of one name can never share a schema; every integer bounded by the store's range."""

    def get_defs_ref(self, core_mode_ref: Any) -> Any:
        defs_ref = super().get_defs_ref(core_mode_ref)
        core_ref, mode = core_mode_ref
        no_id = "".join(x.rsplit(":", 1)[0] for x in re.split(r"([\][,])", core_ref))
        qualified = _service_name(no_id)
        title = "Input" if mode == "validation" else "Output"
        choices = self._prioritized_defsref_choices[defs_ref]
        self._prioritized_defsref_choices[defs_ref] = [qualified, f"{qualified}-{title}", *choices[2:]]
        return defs_ref

    def int_schema(self, schema: Any) -> Any:
        out = super().int_schema(schema)
        low = out.get("minimum", out.get("exclusiveMinimum"))
        if low is None or low < INT64_MIN:
            out.pop("exclusiveMinimum", None)
            out["minimum"] = INT64_MIN
        high = out.get("maximum", out.get("exclusiveMaximum"))
        if high is None or high > INT64_MAX:
            out.pop("exclusiveMaximum", None)
            out["maximum"] = INT64_MAX
        return out


class _Schemas:
    """Every type of every endpoint, generated in one pass so that names are unique."""

    def __init__(self) -> None:
        self.inputs: list[tuple[Any, Any, Any]] = []
        self.resolved: dict[tuple[Any, str], Any] = {}
        self.components: dict[str, Any] = {}

    def add(self, tp: Any, mode: str) -> tuple[int, str]:
        key = (len(self.inputs), mode)
        self.inputs.append((key[0], mode, TypeAdapter(tp).core_schema))
        return key

    def generate(self) -> None:
        generator = _Generator(ref_template=_REF)
        self.resolved, self.components = generator.generate_definitions(self.inputs)

    def __getitem__(self, key: tuple[int, str]) -> dict[str, Any]:
        return self.resolved[key]

    def deref(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            schema = self.components[schema["$ref"].rsplit("/", 1)[-1]]
        return schema


def build(endpoints: list[Endpoint], *, title: str = "Aionix") -> dict[str, Any]:
    from aionix.iam.policy import endpoint_action

    schemas = _Schemas()
    error_key = schemas.add(ErrorEnvelope, "serialization")
    keys: list[dict[str, Any]] = []
    for ep in endpoints:
        k: dict[str, Any] = {}
        if ep.query is not None:
            k["query"] = schemas.add(ep.query, "validation")
        if ep.body is not None:
            k["body"] = schemas.add(ep.body, "validation")
        if ep.status != 204 and ep.response is not None:
            k["response"] = schemas.add(ep.response, "serialization")
        keys.append(k)
    schemas.generate()
    error_ref = schemas[error_key]
    paths: dict[str, dict[str, Any]] = {}
    for ep, k in zip(endpoints, keys, strict=True):
        path = _PARAM_RE.sub(lambda m: "{" + m.group(1) + "}", ep.path)
        op: dict[str, Any] = {"operationId": ep.operation_id, "summary": ep.summary, "tags": [ep.tag]}
        params = []
        for match in _PARAM_RE.finditer(ep.path):
            name = match.group(1)
            if re.search(r":[a-z]*path\}$", match.group(0)):  # path-like convertors match "/" too
                schema: dict[str, Any] = {"type": "string", "minLength": 1}
            elif ep.role is not None and name in PATH_PATTERNS:
                schema = {"type": "string", "pattern": PATH_PATTERNS[name]}
            else:
                schema = {"type": "string", "minLength": 1, "pattern": "^[^/]+$"}
            params.append({"name": name, "in": "path", "required": True, "schema": schema})
        if "query" in k:
            qschema = schemas.deref(schemas[k["query"]])
            required = set(qschema.get("required", []))
            for name, prop in qschema.get("properties", {}).items():
                params.append({"name": name, "in": "query", "required": name in required, "schema": _simplify(prop)})
        if params:
            op["parameters"] = params
        if "body" in k:
            op["requestBody"] = {
                "required": True,
                "content": {ct: {"schema": schemas[k["body"]]} for ct in ep.content_types},
            }
        if ep.role is not None:
            op["security"] = [{"bearer": []}, {"apiKey": []}]
            op["x-aionix-role"] = ep.role
            op["x-aionix-action"] = endpoint_action(ep)  # what a policy statement names (aionix/iam/policy.py)
        responses: dict[str, Any] = {}
        if ep.status == 204:
            responses["204"] = {"description": "No content"}
        elif "response" in k:
            responses[str(ep.status)] = {
                "description": "OK",
                "content": {ep.media_type: {"schema": schemas[k["response"]]}},
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
