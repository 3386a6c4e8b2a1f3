"""Parameters through the real server: types, versions, labels, rollback, hierarchy, roles."""

from __future__ import annotations

from paramkit import get, put, role_client, unique


def test_put_and_get_typed_values(server, admin):
    base = "/" + unique("app")
    assert put(admin, f"{base}/db/host", "db.local")["version"] == 1
    assert put(admin, f"{base}/db/port", 5432, "number")["value"] == 5432
    assert put(admin, f"{base}/feature/on", True, "boolean")["value"] is True
    assert put(admin, f"{base}/limits", {"rps": 10, "burst": [1, 2]}, "json")["value"] == {"rps": 10, "burst": [1, 2]}
    got = get(admin, f"{base}/db/port").json()
    assert (
        got["type"] == "number" and got["value"] == 5432 and got["trn"] == f"trn:paramstore:default:param{base}/db/port"
    )
    assert get(admin, f"{base}/db/nothing").status_code == 404


def test_type_and_constraint_errors_name_the_field(server, admin):
    base = "/" + unique("bad")
    r = admin.put(f"/api/v1/params{base}/port", json={"type": "number", "value": "80"})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "value"
    r = admin.put(f"/api/v1/params{base}/flag", json={"type": "boolean", "value": 1})
    assert r.status_code == 422
    r = admin.put(f"/api/v1/params{base}/env", json={"type": "string", "value": "qa", "pattern": "dev|prod"})
    assert r.status_code == 422 and "pattern" in r.json()["error"]["message"]
    assert put(admin, f"{base}/env", "prod", pattern="dev|prod")["pattern"] == "dev|prod"
    schema = {"type": "object", "required": ["rps"], "properties": {"rps": {"type": "integer", "minimum": 1}}}
    r = admin.put(f"/api/v1/params{base}/limits", json={"type": "json", "value": {"rps": 0}, "json_schema": schema})
    assert r.status_code == 422 and "JSON Schema" in r.json()["error"]["message"]
    assert put(admin, f"{base}/limits", {"rps": 5}, "json", json_schema=schema)["json_schema"] == schema
    r = admin.put(f"/api/v1/params{base}/s", json={"type": "json", "value": 1, "json_schema": {"type": 12}})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "json_schema"
    r = admin.put(f"/api/v1/params{base}/p", json={"type": "string", "value": "x", "pattern": "("})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "pattern"
    r = admin.put(f"/api/v1/params{base}/bad seg", json={"type": "string", "value": "x"})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "path"
    r = admin.put(f"/api/v1/params{base}/x", json={"type": "nope", "value": "x"})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "type"
    r = admin.put(f"/api/v1/params{base}/x", json={"type": "string", "value": "x", "labels": ["1bad"]})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "labels.0"


def test_versions_labels_and_rollback(server, admin):
    path = "/" + unique("svc") + "/timeout"
    put(admin, path, 10, "number", description="seconds", labels=["stable"])
    put(admin, path, 20, "number")
    third = put(admin, path, 30, "number", labels=["canary"])
    assert third["version"] == 3 and third["labels"] == ["canary"] and third["description"] == "seconds"
    assert get(admin, path, version=1).json()["value"] == 10
    assert get(admin, path, label="stable").json()["value"] == 10
    assert get(admin, path, label="canary").json()["version"] == 3
    assert get(admin, path, label="missing").status_code == 404
    assert get(admin, path, version=99).status_code == 404
    rolled = admin.post(f"/api/v1/params{path}/rollback", json={"version": 1, "labels": ["stable"]})
    assert rolled.status_code == 200, rolled.text
    assert rolled.json()["version"] == 4 and rolled.json()["value"] == 10 and rolled.json()["labels"] == ["stable"]
    assert get(admin, path).json()["value"] == 10
    history = admin.get(f"/api/v1/params{path}/versions").json()
    assert [v["version"] for v in history["items"]] == [4, 3, 2, 1]
    assert history["items"][0]["note"] == "rollback to version 1"
    assert history["items"][0]["labels"] == ["stable"] and history["items"][3]["labels"] == []
    assert all(v["created_by"] and v["created_at"] > 0 for v in history["items"])
    page = admin.get(f"/api/v1/params{path}/versions", params={"limit": 2}).json()
    assert [v["version"] for v in page["items"]] == [4, 3]
    rest = admin.get(f"/api/v1/params{path}/versions", params={"limit": 2, "cursor": page["next_cursor"]}).json()
    assert [v["version"] for v in rest["items"]] == [2, 1]
    assert admin.post(f"/api/v1/params{path}/rollback", json={"version": 9}).status_code == 404
    labelled = admin.post(f"/api/v1/params{path}/labels", json={"version": 2, "labels": ["canary"]})
    assert labelled.status_code == 200 and labelled.json()["version"] == 2
    assert get(admin, path, label="canary").json()["value"] == 20


def test_expected_version_guards_concurrent_updates(server, admin):
    path = "/" + unique("cas") + "/v"
    r = admin.put(f"/api/v1/params{path}", json={"type": "string", "value": "a", "expected_version": 0})
    assert r.status_code == 200
    r = admin.put(f"/api/v1/params{path}", json={"type": "string", "value": "b", "expected_version": 0})
    assert r.status_code == 409
    assert (
        admin.put(f"/api/v1/params{path}", json={"type": "string", "value": "b", "expected_version": 1}).status_code
        == 200
    )


def test_list_by_prefix_and_recursive_tree(server, admin):
    base = "/" + unique("tree")
    put(admin, f"{base}/db/host", "h")
    put(admin, f"{base}/db/port", 1, "number")
    put(admin, f"{base}/db", "the db node", description="both a value and a folder")
    put(admin, f"{base}/cache/ttl", 60, "number")
    put(admin, f"{base}/cfg", {"a": {"b": 1}}, "json")
    put(admin, f"{base}x/other", "not under the prefix")
    flat = admin.get("/api/v1/params", params={"prefix": base}).json()
    assert [p["path"] for p in flat["items"]] == [
        f"{base}/cache/ttl",
        f"{base}/cfg",
        f"{base}/db",
        f"{base}/db/host",
        f"{base}/db/port",
    ]
    page = admin.get("/api/v1/params", params={"prefix": base, "limit": 2}).json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    nxt = admin.get("/api/v1/params", params={"prefix": base, "limit": 10, "cursor": page["next_cursor"]}).json()
    assert len(nxt["items"]) == 3
    tree = admin.get("/api/v1/params", params={"prefix": base, "recursive": "true"}).json()
    assert tree["count"] == 5 and tree["prefix"] == base
    assert tree["tree"] == {
        "cache": {"ttl": 60},
        "cfg": {"a": {"b": 1}},
        "db": {"@value": "the db node", "host": "h", "port": 1},
    }
    sub = admin.get("/api/v1/params", params={"prefix": f"{base}/db/", "recursive": "true"}).json()
    assert sub["tree"] == {"@value": "the db node", "host": "h", "port": 1}


def test_delete_removes_every_version(server, admin):
    path = "/" + unique("del") + "/k"
    put(admin, path, "a")
    put(admin, path, "b")
    r = admin.delete(f"/api/v1/params{path}")
    assert r.status_code == 200 and r.json()["versions_deleted"] == 2
    assert get(admin, path).status_code == 404
    assert admin.delete(f"/api/v1/params{path}").status_code == 404


def test_roles_and_tenants(server, admin):
    a, b = unique("pa").lower(), unique("pb").lower()
    viewer_a = role_client(server, admin, a, "viewer")
    operator_a = role_client(server, admin, a, "operator")
    operator_b = role_client(server, admin, b, "operator")
    put(operator_a, "/shared/key", "tenant-a")
    assert get(viewer_a, "/shared/key").json()["value"] == "tenant-a"
    assert viewer_a.put("/api/v1/params/shared/key", json={"type": "string", "value": "x"}).status_code == 403
    assert viewer_a.delete("/api/v1/params/shared/key").status_code == 403
    assert get(operator_b, "/shared/key").status_code == 404
    assert operator_b.get("/api/v1/params", params={"prefix": "/shared", "recursive": "true"}).json()["tree"] == {}
    assert operator_b.get("/api/v1/params", params={"prefix": "/"}).json()["items"] == []
    assert operator_b.get("/api/v1/params/shared/key/versions").status_code == 404
    put(operator_b, "/shared/key", "tenant-b")
    assert get(operator_a, "/shared/key").json()["value"] == "tenant-a"
    assert get(operator_b, "/shared/key").json()["value"] == "tenant-b"


def test_reserved_sub_resource_words_are_not_parameter_names(server, admin):
    base = "/" + unique("res")
    put(admin, f"{base}/k", "v")
    assert admin.put(f"/api/v1/params{base}/k/versions", json={"type": "string", "value": "x"}).status_code == 405
    assert admin.delete(f"/api/v1/params{base}/k/rollback").status_code == 405
    assert admin.get(f"/api/v1/params{base}/k/labels").status_code == 405
    r = admin.put("/api/v1/params/versions", json={"type": "string", "value": "x"})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "path"
    spec = admin.get("/api/openapi.json").json()
    assert "/api/v1/params/{path}" in spec["paths"] and "/api/v1/params/{path}/versions" in spec["paths"]
    schema = spec["paths"]["/api/v1/params/{path}"]["get"]["parameters"][0]["schema"]
    assert "pattern" not in schema, "a parameter path may contain '/'"
