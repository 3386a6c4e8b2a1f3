"""Issue 26 points 2 and 4: `/api/openapi.json` says what the server accepts and answers, and a
deleted workflow takes its versions with it (as a Step Functions state machine does)."""

from __future__ import annotations

import time
import uuid

import httpx
import jsonschema
import pytest

NAME_PATTERN = "^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def spec(server) -> dict:
    return httpx.get(server.url + "/api/openapi.json").json()


def resolve(spec: dict, schema: dict) -> dict:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def body_schema(spec: dict, method: str, path: str) -> dict:
    op = spec["paths"][path][method]
    return resolve(spec, op["requestBody"]["content"]["application/json"]["schema"])


def validator(spec: dict, schema: dict) -> jsonschema.Draft202012Validator:
    """A validator for one schema of the document, its `$ref`s resolved within the document."""
    root = {**schema, "components": spec["components"]}
    return jsonschema.Draft202012Validator(root)


def test_two_models_of_one_name_get_two_schemas(spec):
    rotate_secret = body_schema(spec, "post", "/api/v1/secrets/{name}/rotate")
    assert set(rotate_secret["properties"]) == {"value", "promote"}
    rotate_trigger = body_schema(spec, "post", "/api/v1/triggers/{name}/rotate-secret")
    assert "grace_seconds" in rotate_trigger["properties"]
    names = list(spec["components"]["schemas"])
    assert len(names) == len(set(names))
    assert "vault.RotateSecret" in names and "triggers.RotateSecret" in names
    # every reference in the document points at a component that exists
    text = httpx.Response(200, json=spec).text
    for ref in {part.split('"')[0] for part in text.split('"$ref":"#/components/schemas/')[1:]}:
        assert ref in spec["components"]["schemas"], ref


def test_asl_history_is_documented_and_conforms(spec, admin):
    name = unique("contract")
    definition = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
    assert admin.post("/api/v1/workflows", json={"name": name, "definition": definition}).status_code == 201
    eid = admin.post(f"/api/v1/workflows/{name}/executions", json={"mode": "sync"}).json()["execution_id"]
    op = spec["paths"]["/api/v1/executions/{id}/history"]["get"]
    schema = op["responses"]["200"]["content"]["application/json"]["schema"]
    check = validator(spec, schema)
    asl = admin.get(f"/api/v1/executions/{eid}/history", params={"format": "asl"}).json()
    assert asl["events"] and "items" not in asl
    check.validate(asl)
    check.validate(admin.get(f"/api/v1/executions/{eid}/history").json())


def test_path_names_are_documented_with_the_pattern_the_server_applies(spec, admin):
    for path, ops in spec["paths"].items():
        for op in ops.values():
            for p in op.get("parameters", []):
                if p["in"] == "path" and p["name"] in ("name", "alias") and "x-aionix-role" in op:
                    assert p["schema"]["pattern"] == NAME_PATTERN, (path, p)
    for url in ("/api/v1/workflows/-bad", "/api/v1/functions/a%20b", "/api/v1/secrets/_x/versions"):
        r = admin.get(url)
        assert r.status_code == 422, (url, r.status_code, r.text)
        assert r.json()["error"]["details"][0]["field"] == "path.name"


def test_definition_is_documented_as_dsl_or_asl(spec, admin):
    definition = body_schema(spec, "post", "/api/v1/workflows")["properties"]["definition"]
    dsl, asl = definition["oneOf"]
    assert resolve(spec, dsl)["required"] == ["entry", "states"]
    assert asl["required"] == ["StartAt", "States"]
    check = validator(spec, definition)
    check.validate({"entry": "A", "states": {"A": {"type": "succeed"}}})
    check.validate({"StartAt": "A", "States": {"A": {"Type": "Succeed"}}})
    with pytest.raises(jsonschema.ValidationError):
        check.validate({"anything": 1})
    r = admin.post("/api/v1/workflows", json={"name": unique("c"), "definition": {"anything": 1}})
    assert r.status_code == 422


def test_function_code_exactly_one_of_is_in_the_schema(spec, admin):
    code = resolve(spec, body_schema(spec, "post", "/api/v1/functions")["properties"]["code"])
    check = validator(spec, code)
    check.validate({"source": "def handler(e, c):\n    return e\n"})
    check.validate({"source": None, "zip_base64": "UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA=="})
    for bad in ({}, {"source": "x", "zip_base64": "y"}):
        with pytest.raises(jsonschema.ValidationError):
            check.validate(bad)
        r = admin.post("/api/v1/functions", json={"name": unique("fn"), "runtime": "python", "code": bad})
        assert r.status_code == 422, r.text


def test_authflow_callback_state_is_required(spec, server):
    params = spec["paths"]["/api/v1/authflow/callback"]["get"]["parameters"]
    assert next(p for p in params if p["name"] == "state")["required"] is True
    r = httpx.get(server.url + "/api/v1/authflow/callback", params={"code": "x"})
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "query.state"


def test_integers_carry_the_store_range_and_accept_integral_floats(spec, admin):
    version = body_schema(spec, "post", "/api/v1/workflows/{name}/executions")["properties"]["version"]
    integer = next(o for o in version.get("anyOf", [version]) if o.get("type") == "integer")
    assert integer["minimum"] == 1 and integer["maximum"] == 2**63 - 1
    name = unique("float")
    definition = {"entry": "Done", "states": {"Done": {"type": "succeed"}}}
    assert admin.post("/api/v1/workflows", json={"name": name, "definition": definition}).status_code == 201
    r = admin.post(f"/api/v1/workflows/{name}/executions", json={"mode": "sync", "version": 1.0})
    assert r.status_code == 200, r.text


def test_deleting_a_workflow_deletes_its_versions_and_keeps_its_executions(admin):
    name = unique("reborn")
    v1 = {"entry": "Old", "states": {"Old": {"type": "set", "value": "old", "end": True}}}
    v2 = {"entry": "Mid", "states": {"Mid": {"type": "fail", "error": "Boom", "cause": "v2 fails"}}}
    assert admin.post("/api/v1/workflows", json={"name": name, "definition": v1}).status_code == 201
    assert admin.put(f"/api/v1/workflows/{name}", json={"definition": v2}).json()["version"] == 2
    failed = admin.post(f"/api/v1/workflows/{name}/executions", json={"mode": "sync"}).json()
    assert failed["status"] == "FAILED" and failed["version"] == 2

    deleted = admin.delete(f"/api/v1/workflows/{name}")
    assert deleted.status_code == 200, deleted.text
    assert admin.get(f"/api/v1/workflows/{name}").status_code == 404
    assert admin.get(f"/api/v1/workflows/{name}/versions").status_code == 404

    new = {"entry": "New", "states": {"New": {"type": "set", "value": "new", "end": True}}}
    created = admin.post("/api/v1/workflows", json={"name": name, "definition": new})
    assert created.status_code == 201 and created.json()["version"] == 1
    versions = admin.get(f"/api/v1/workflows/{name}/versions").json()["items"]
    assert [v["version"] for v in versions] == [1]
    assert admin.get(f"/api/v1/workflows/{name}", params={"version": 2}).status_code == 404
    assert admin.get(f"/api/v1/workflows/{name}").json()["definition"] == new
    ran = admin.post(f"/api/v1/workflows/{name}/executions", json={"mode": "sync"}).json()
    assert ran["status"] == "SUCCEEDED" and ran["output"] == "new"

    # the old execution stays readable by id, with the definition it ran
    old = admin.get(f"/api/v1/executions/{failed['execution_id']}")
    assert old.status_code == 200 and old.json()["error"]["cause"] == "v2 fails"
    assert admin.get(f"/api/v1/executions/{failed['execution_id']}/history").json()["items"]
    asl = admin.get(f"/api/v1/executions/{failed['execution_id']}/history", params={"format": "asl"})
    assert asl.status_code == 200, asl.text
    assert "Mid" in asl.text and "New" not in asl.text
    # it cannot be redriven against a definition that is gone
    r = admin.post(f"/api/v1/executions/{failed['execution_id']}/redrive")
    assert r.status_code == 409 and "deleted" in r.json()["error"]["message"]


def test_a_workflow_with_running_executions_is_not_deleted(admin):
    name = unique("busy")
    wait = {"entry": "W", "states": {"W": {"type": "wait", "seconds": 3600, "end": True}}}
    assert admin.post("/api/v1/workflows", json={"name": name, "definition": wait}).status_code == 201
    eid = admin.post(f"/api/v1/workflows/{name}/executions", json={}).json()["execution_id"]
    r = admin.delete(f"/api/v1/workflows/{name}")
    assert r.status_code == 409 and "RUNNING" in r.json()["error"]["message"]
    assert admin.post(f"/api/v1/executions/{eid}/cancel").status_code == 200
    deadline = time.monotonic() + 10
    while admin.delete(f"/api/v1/workflows/{name}").status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert admin.get(f"/api/v1/executions/{eid}").json()["status"] == "ABORTED"
