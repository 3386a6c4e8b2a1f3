"""Secrets through the real server: create, versions, stages, reveal, audit, delete/restore."""

from __future__ import annotations

from vaultkit import create_secret, reveal, role_client, unique


def test_create_returns_metadata_only_and_get_never_shows_the_value(server, admin):
    name = unique("db-pass")
    value = "s3cr3t-" + unique("v")
    info = create_secret(admin, name, value, description="db", labels={"team": "core"})
    assert info["name"] == name and info["type"] == "password"
    assert info["trn"] == f"trn:credvault:default:credential/{name}"
    assert info["stages"] == {"current": 1, "previous": None, "pending": None}
    assert info["labels"] == {"team": "core"}
    for response in (admin.get(f"/api/v1/secrets/{name}"), admin.get("/api/v1/secrets", params={"limit": 500})):
        assert response.status_code == 200
        assert value not in response.text
    assert "value" not in admin.get(f"/api/v1/secrets/{name}").json()


def test_reveal_by_version_and_stage_after_updates(server, admin):
    name = unique("api")
    create_secret(admin, name, "first-value", type_="api_key")
    r = admin.put(f"/api/v1/secrets/{name}", json={"value": "second-value"})
    assert r.status_code == 200, r.text
    assert r.json()["stages"] == {"current": 2, "previous": 1, "pending": None}
    assert "second-value" not in r.text
    assert reveal(admin, name).json()["value"] == "second-value"
    assert reveal(admin, name, stage="previous").json()["value"] == "first-value"
    got = reveal(admin, name, version=1).json()
    assert got["value"] == "first-value" and got["version"] == 1 and got["stages"] == ["previous"]
    missing = reveal(admin, name, stage="pending")
    assert missing.status_code == 404 and "pending" in missing.json()["error"]["message"]
    assert reveal(admin, name, version=9).status_code == 404
    versions = admin.get(f"/api/v1/secrets/{name}/versions").json()["items"]
    assert [(v["version"], v["stages"]) for v in versions] == [(2, ["current"]), (1, ["previous"])]
    assert all(v["created_by"] for v in versions)


def test_json_and_oauth_values_round_trip(server, admin):
    name = unique("cfg")
    value = {"user": "svc", "password": "pw-123456", "port": 5432, "tls": True}
    create_secret(admin, name, value, type_="json")
    assert reveal(admin, name).json()["value"] == value
    token = unique("tok")
    create_secret(admin, token, {"access_token": "at-1", "refresh_token": "rt-1"}, type_="oauth_token")
    assert reveal(admin, token).json()["value"]["refresh_token"] == "rt-1"


def test_bad_input_names_the_field_and_never_echoes_the_value(server, admin):
    r = admin.post("/api/v1/secrets", json={"name": unique("c"), "type": "certificate", "value": "not-a-pem-hidden"})
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "value"
    assert "not-a-pem-hidden" not in r.text
    r = admin.post("/api/v1/secrets", json={"name": "bad name!", "type": "password", "value": "x"})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "name"
    r = admin.post("/api/v1/secrets", json={"name": unique("t"), "type": "nope", "value": "x"})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "type"
    r = admin.post("/api/v1/secrets", json={"name": unique("e"), "type": "password", "value": ""})
    assert r.status_code == 422
    r = admin.post(
        "/api/v1/secrets",
        json={
            "name": unique("r"),
            "type": "password",
            "value": "abc",
            "rotation": {"schedule": "not cron", "target": "trn:aionixfn:default:function/rot"},
        },
    )
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "rotation.schedule"
    r = admin.post(
        "/api/v1/secrets",
        json={
            "name": unique("r"),
            "type": "password",
            "value": "abc",
            "rotation": {"target": "trn:aionixfn:other:function/rot"},
        },
    )
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "rotation.target"


def test_duplicate_name_conflicts(server, admin):
    name = unique("dup")
    create_secret(admin, name, "one-value")
    r = admin.post("/api/v1/secrets", json={"name": name, "type": "password", "value": "two-value"})
    assert r.status_code == 409


def test_reveal_is_audited_with_who_when_and_version(server, admin):
    name = unique("audited")
    create_secret(admin, name, "audited-value")
    admin.put(f"/api/v1/secrets/{name}", json={"value": "audited-value-2"})
    assert reveal(admin, name, version=1).status_code == 200
    me = admin.get("/api/v1/whoami").json()
    rows = admin.get("/api/v1/audit", params={"action": "credvault.reveal", "limit": 500}).json()["items"]
    mine = [r for r in rows if r["resource"] == f"trn:credvault:default:credential/{name}"]
    assert len(mine) == 1
    assert mine[0]["key_id"] == me["key_id"] and mine[0]["ts"] > 0 and mine[0]["details"]["version"] == 1
    assert "audited-value" not in admin.get("/api/v1/audit", params={"limit": 500}).text


def test_reveal_ignores_idempotency_so_no_value_is_stored_as_a_replay(server, admin):
    name = unique("idem")
    create_secret(admin, name, "idem-value-123")
    r = admin.post(f"/api/v1/secrets/{name}/reveal", headers={"Idempotency-Key": unique("k")})
    assert r.status_code == 200 and "Idempotent-Replayed" not in r.headers
    assert r.headers["cache-control"] == "no-store"


def test_delete_is_soft_then_restore_then_force_purge(server, admin):
    name = unique("gone")
    create_secret(admin, name, "gone-value")
    r = admin.delete(f"/api/v1/secrets/{name}")
    assert r.status_code == 200 and r.json()["deleted_at"] and r.json()["purge_after"] > r.json()["deleted_at"]
    assert reveal(admin, name).status_code == 404
    listed = [s["name"] for s in admin.get("/api/v1/secrets", params={"limit": 500}).json()["items"]]
    assert name not in listed
    listed = [
        s["name"]
        for s in admin.get("/api/v1/secrets", params={"limit": 500, "include_deleted": "true"}).json()["items"]
    ]
    assert name in listed
    again = admin.post("/api/v1/secrets", json={"name": name, "type": "password", "value": "x"})
    assert again.status_code == 409 and "restore" in again.json()["error"]["message"]
    assert admin.post(f"/api/v1/secrets/{name}/restore").status_code == 200
    assert reveal(admin, name).json()["value"] == "gone-value"
    assert admin.delete(f"/api/v1/secrets/{name}", params={"force": "true"}).status_code == 200
    assert admin.get(f"/api/v1/secrets/{name}").status_code == 404


def test_rotate_with_value_promotes_pending_and_keeps_previous(server, admin):
    name = unique("rot")
    create_secret(admin, name, "rot-v1")
    staged = admin.post(f"/api/v1/secrets/{name}/rotate", json={"value": "rot-v2", "promote": False})
    assert staged.status_code == 200, staged.text
    assert staged.json()["stages"] == {"current": 1, "previous": None, "pending": 2}
    assert reveal(admin, name, stage="pending").json()["value"] == "rot-v2"
    assert reveal(admin, name).json()["value"] == "rot-v1"
    promoted = admin.post(f"/api/v1/secrets/{name}/rotate", json={})
    assert promoted.json()["stages"] == {"current": 2, "previous": 1, "pending": None}
    assert promoted.json()["rotated_at"]
    direct = admin.post(f"/api/v1/secrets/{name}/rotate", json={"value": "rot-v3"})
    assert direct.json()["stages"] == {"current": 3, "previous": 2, "pending": None}
    assert reveal(admin, name).json()["value"] == "rot-v3"
    none = admin.post(f"/api/v1/secrets/{name}/rotate", json={})
    assert none.status_code == 422 and none.json()["error"]["details"][0]["field"] == "value"


def test_roles_viewer_and_operator_cannot_reveal(server, admin):
    tenant = unique("t").lower()
    viewer = role_client(server, admin, tenant, "viewer")
    operator = role_client(server, admin, tenant, "operator")
    tadmin = role_client(server, admin, tenant, "admin")
    name = unique("roles")
    create_secret(operator, name, "role-value")
    assert viewer.get(f"/api/v1/secrets/{name}").status_code == 200
    assert (
        viewer.post("/api/v1/secrets", json={"name": unique("v"), "type": "password", "value": "x"}).status_code == 403
    )
    assert reveal(viewer, name).status_code == 403
    assert reveal(operator, name).status_code == 403
    assert operator.delete(f"/api/v1/secrets/{name}", params={"force": "true"}).status_code == 403
    assert reveal(tadmin, name).json()["value"] == "role-value"
    assert tadmin.get("/api/v1/vault/master-key").status_code == 403


def test_tenants_cannot_see_each_others_secrets(server, admin):
    a, b = unique("ta").lower(), unique("tb").lower()
    admin_a = role_client(server, admin, a, "admin")
    admin_b = role_client(server, admin, b, "admin")
    name = unique("shared-name")
    create_secret(admin_a, name, "tenant-a-value")
    assert admin_b.get(f"/api/v1/secrets/{name}").status_code == 404
    assert reveal(admin_b, name).status_code == 404
    assert admin_b.get("/api/v1/secrets").json()["items"] == []
    assert admin_b.put(f"/api/v1/secrets/{name}", json={"value": "x"}).status_code == 404
    assert admin_b.delete(f"/api/v1/secrets/{name}").status_code == 404
    create_secret(admin_b, name, "tenant-b-value")
    assert reveal(admin_a, name).json()["value"] == "tenant-a-value"
    assert reveal(admin_b, name).json()["value"] == "tenant-b-value"
    trn_a = f"trn:credvault:{a}:credential/{name}"
    assert admin_b.get("/api/v1/resolve", params={"trn": trn_a}).status_code == 404
    resolved = admin_a.get("/api/v1/resolve", params={"trn": trn_a}).json()
    assert resolved["exists"] is True and resolved["resource"]["name"] == name
    assert "tenant-a-value" not in str(resolved)


def test_a_schedule_that_never_fires_is_refused(server, admin):
    r = admin.post(
        "/api/v1/secrets",
        json={
            "name": unique("never"),
            "type": "password",
            "value": "abc-123",
            "rotation": {"schedule": "0 0 31 2 *", "target": "trn:aionixfn:default:function/rot"},
        },
    )
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "rotation.schedule"
