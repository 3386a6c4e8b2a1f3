"""The real server on loopback: errors, auth, roles, tenants, idempotency, limits."""

import asyncio
import subprocess
import sys
import uuid

import httpx
import pytest


def new_name():
    return "k-" + uuid.uuid4().hex[:10]


def error_of(response, status):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert {"code", "message", "details"} <= set(body["error"])
    return body["error"]


def test_healthz_needs_no_key_and_reports_store(server):
    body = httpx.get(server.url + "/healthz").json()
    assert body["status"] == "ok" and body["store"] == "ok"
    assert body["version"] and body["uptime_seconds"] >= 0


def test_metrics_are_prometheus_text(server, admin):
    admin.get("/api/v1/whoami")
    text = httpx.get(server.url + "/metrics").text
    assert "# TYPE aionix_http_requests_total counter" in text
    assert 'route="/api/v1/whoami"' in text


def test_openapi_is_generated_from_the_models(server):
    spec = httpx.get(server.url + "/api/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    op = spec["paths"]["/api/v1/keys"]["post"]
    schema_ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert schema_ref.endswith("/api.CreateKey")  # component names are qualified by service
    assert "role" in spec["components"]["schemas"]["api.CreateKey"]["properties"]
    assert op["x-aionix-role"] == "admin"


def test_every_api_route_requires_a_key(server):
    spec = httpx.get(server.url + "/api/openapi.json").json()
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if "x-aionix-role" not in op:
                continue
            url = server.url + path.replace("{", "").replace("}", "")
            r = httpx.request(method.upper(), url, json={} if method in ("post", "put") else None)
            assert r.status_code == 401, (method, path, r.status_code)


def test_missing_bad_and_malformed_keys(server):
    error_of(httpx.get(server.url + "/api/v1/keys"), 401)
    error_of(httpx.get(server.url + "/api/v1/keys", headers={"Authorization": "Bearer aio_nope"}), 401)
    error_of(httpx.get(server.url + "/api/v1/keys", headers={"Authorization": "Basic abc"}), 401)
    error_of(httpx.get(server.url + "/api/v1/keys", headers={"X-API-Key": "aio_nope"}), 401)


def test_key_in_url_is_refused(server):
    err = error_of(httpx.get(server.url + f"/api/v1/whoami?api_key={server.admin_key}"), 400)
    assert "never accepted in URLs" in err["message"]


def test_bad_input_gets_the_documented_status_and_changes_nothing(admin):
    before = admin.get("/api/v1/keys", params={"limit": 500}).json()["items"]
    err = error_of(
        admin.post("/api/v1/keys", content=b'{"name": "x", "role": ', headers={"content-type": "application/json"}), 400
    )
    assert err["details"]["position"] == 22 and "line 1" in err["message"]
    err = error_of(admin.post("/api/v1/keys", json={"name": "x", "role": 5}), 422)
    assert err["details"][0]["field"] == "role"
    err = error_of(admin.post("/api/v1/keys", json={"name": "x", "role": "viewer", "sneaky": True}), 422)
    assert err["details"][0] == {"field": "sneaky", "message": "unknown field"}
    error_of(admin.post("/api/v1/keys", json={"role": "viewer"}), 422)
    error_of(
        admin.post("/api/v1/keys", content=b"name=x", headers={"content-type": "application/x-www-form-urlencoded"}),
        415,
    )
    error_of(
        admin.post(
            "/api/v1/keys", content=b"{" + b" " * 2_000_000 + b"}", headers={"content-type": "application/json"}
        ),
        413,
    )
    deep = "[" * 200 + "]" * 200
    error_of(admin.post("/api/v1/keys", content=deep.encode(), headers={"content-type": "application/json"}), 400)
    error_of(admin.get("/api/v1/keys", params={"limit": "many"}), 422)
    error_of(admin.get("/api/v1/nothing-here"), 404)
    error_of(admin.patch("/api/v1/keys"), 405)
    error_of(admin.get("/api/v1/resolve", params={"trn": "trn:stepflow:default:templat/x"}), 400)
    after = admin.get("/api/v1/keys", params={"limit": 500}).json()["items"]
    assert after == before


def test_roles_viewer_operator_admin(server, admin):
    viewer = admin.post("/api/v1/keys", json={"name": new_name(), "role": "viewer"}).json()["key"]
    operator = admin.post("/api/v1/keys", json={"name": new_name(), "role": "operator"}).json()["key"]
    with server.client(viewer) as v, server.client(operator) as o:
        assert v.get("/api/v1/whoami").json()["role"] == "viewer"
        error_of(v.post("/api/v1/keys", json={"name": "x", "role": "viewer"}), 403)
        error_of(o.post("/api/v1/keys", json={"name": "x", "role": "viewer"}), 403)
        error_of(o.get("/api/v1/audit"), 403)
        error_of(v.get("/api/v1/admin/backup"), 403)


def test_tenants_never_see_each_other(server, admin):
    tenant = "t-" + uuid.uuid4().hex[:8]
    other = admin.post("/api/v1/keys", json={"name": new_name(), "role": "admin", "tenant": tenant}).json()
    with server.client(other["key"]) as b:
        assert b.get("/api/v1/whoami").json()["tenant"] == tenant
        ids = [k["id"] for k in b.get("/api/v1/keys").json()["items"]]
        assert ids == [other["id"]]
        my_key_id = admin.get("/api/v1/whoami").json()["key_id"]
        error_of(b.delete(f"/api/v1/keys/{my_key_id}"), 404)
        error_of(b.get("/api/v1/keys", headers={"X-Aionix-Tenant": "default"}), 403)
        error_of(b.get("/api/v1/resolve", params={"trn": "trn:stepflow:default:template/x"}), 404)
        error_of(b.post("/api/v1/keys", json={"name": "x", "role": "admin", "tenant": "default"}), 403)
        assert all(r["tenant"] == tenant for r in b.get("/api/v1/audit").json()["items"])
    assert admin.get("/api/v1/whoami").json()["key_id"] == my_key_id
    # a cross-tenant admin may act in another tenant explicitly
    seen = admin.get("/api/v1/keys", headers={"X-Aionix-Tenant": tenant}).json()["items"]
    assert [k["id"] for k in seen] == [other["id"]]


def test_revoked_key_stops_working_at_once(server, admin):
    created = admin.post("/api/v1/keys", json={"name": new_name(), "role": "viewer"}).json()
    with server.client(created["key"]) as c:
        assert c.get("/api/v1/whoami").status_code == 200
        assert admin.delete(f"/api/v1/keys/{created['id']}").json()["revoked_at"] is not None
        error_of(c.get("/api/v1/whoami"), 401)


def test_idempotency_key_replays_and_refuses_other_bodies(admin):
    key = uuid.uuid4().hex
    body = {"name": new_name(), "role": "viewer"}
    first = admin.post("/api/v1/keys", json=body, headers={"Idempotency-Key": key})
    again = admin.post("/api/v1/keys", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    err = error_of(admin.post("/api/v1/keys", json={**body, "role": "admin"}, headers={"Idempotency-Key": key}), 422)
    assert err["details"][0]["field"] == "Idempotency-Key"
    names = [k["name"] for k in admin.get("/api/v1/keys", params={"limit": 500}).json()["items"]]
    assert names.count(body["name"]) == 1


def test_concurrent_requests_with_one_idempotency_key_create_exactly_one(make_server):
    """RELIABILITY S7: 1,000 concurrent same-key requests create exactly 1 resource."""
    srv = make_server(
        env={
            "AIONIX_SECURITY_RATE_LIMIT_PER_KEY": "100000",
            "AIONIX_SECURITY_RATE_LIMIT_PER_KEY_BURST": "100000",
            "AIONIX_SECURITY_RATE_LIMIT_PER_IP": "100000",
            "AIONIX_SECURITY_RATE_LIMIT_PER_IP_BURST": "100000",
        }
    ).start()
    body = {"name": "only-once", "role": "viewer"}

    async def fire():
        limits = httpx.Limits(max_connections=50)
        async with httpx.AsyncClient(
            base_url=srv.url,
            headers={"Authorization": f"Bearer {srv.admin_key}", "Idempotency-Key": "same"},
            limits=limits,
            timeout=60,
        ) as c:
            return await asyncio.gather(*(c.post("/api/v1/keys", json=body) for _ in range(1000)))

    responses = asyncio.run(fire())
    statuses = {r.status_code for r in responses}
    assert statuses <= {201, 409}, statuses
    created = {r.json()["id"] for r in responses if r.status_code == 201}
    assert len(created) == 1
    with srv.client() as c:
        names = [k["name"] for k in c.get("/api/v1/keys").json()["items"]]
    assert names.count("only-once") == 1


def test_rate_limit_per_key_answers_429_with_retry_after(make_server):
    srv = make_server(
        env={"AIONIX_SECURITY_RATE_LIMIT_PER_KEY": "2", "AIONIX_SECURITY_RATE_LIMIT_PER_KEY_BURST": "5"}
    ).start()
    with srv.client() as c:
        statuses = [c.get("/api/v1/whoami") for _ in range(12)]
    limited = [r for r in statuses if r.status_code == 429]
    assert limited, [r.status_code for r in statuses]
    assert int(limited[0].headers["Retry-After"]) >= 1
    assert limited[0].json()["error"]["code"] == "rate_limited"


def test_repeated_auth_failures_are_throttled(make_server):
    srv = make_server(env={"AIONIX_SECURITY_AUTH_FAILURES_PER_MINUTE": "5"}).start()
    codes = [
        httpx.get(srv.url + "/api/v1/whoami", headers={"Authorization": "Bearer aio_guess"}).status_code
        for _ in range(8)
    ]
    assert codes[:5] == [401] * 5 and codes[-1] == 429
    # only failed authentications are throttled: a valid key from that address still works
    assert (
        httpx.get(srv.url + "/api/v1/whoami", headers={"Authorization": f"Bearer {srv.admin_key}"}).status_code == 200
    )


def test_audit_records_mutations_and_auth_failures(make_server):
    # a private server: failed authentications are one row per address per minute
    server = make_server().start()
    admin = server.client()
    name = new_name()
    admin.post("/api/v1/keys", json={"name": name, "role": "viewer"})
    httpx.get(server.url + "/api/v1/keys", headers={"Authorization": "Bearer aio_wrong"})
    items = admin.get("/api/v1/audit", params={"limit": 50}).json()["items"]
    assert any(i["action"] == "POST /api/v1/keys" and i["status"] == 201 for i in items)
    failures = admin.get("/api/v1/audit", params={"action": "auth.failure"}).json()["items"]
    assert failures and failures[0]["status"] == 401 and failures[0]["path"] == "/api/v1/keys"
    assert failures[0]["details"]["reason"] == "invalid or revoked API key"
    assert failures[0]["details"]["count"] == 1


def test_api_keys_are_never_stored_or_logged(make_server):
    """S10: a DB dump yields no usable key; the key appears in no log line after the first print."""
    srv = make_server().start()
    with srv.client() as c:
        created = c.post("/api/v1/keys", json={"name": "canary", "role": "viewer"}).json()["key"]
        c.get("/api/v1/whoami", headers={"Authorization": f"Bearer {created}"})
    srv.stop()
    blob = b"".join(p.read_bytes() for p in srv.data_dir.glob("aionix.db*"))
    assert created.encode() not in blob and srv.admin_key.encode() not in blob
    assert created not in srv.log()
    # the first key went to the 0600 credentials profile; the log is not a terminal, so it is not printed
    assert srv.admin_key not in srv.log()
    assert f"saved the first admin key as profile 'default' in {srv.credentials}" in srv.log()


def test_committed_data_survives_sigkill(make_server):
    srv = make_server().start()
    with srv.client() as c:
        ids = [c.post("/api/v1/keys", json={"name": f"k{i}", "role": "viewer"}).json()["id"] for i in range(20)]
    srv.kill()
    srv.restart()
    with srv.client() as c:
        listed = {k["id"] for k in c.get("/api/v1/keys").json()["items"]}
    assert set(ids) <= listed


def test_second_server_on_the_same_data_dir_is_refused(make_server, tmp_path):
    srv = make_server().start()
    proc = subprocess.run(
        [sys.executable, "-m", "aionix", "--port", "0", "--data-dir", str(srv.data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        env=srv.env(),
    )
    assert proc.returncode == 2
    assert "in use by another aionix process" in proc.stderr


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["--port", "http"], {}, "server.port"),
        ([], {"AIONIX_SERVER_PORT": "99999"}, "server.port"),
        ([], {"AIONIX_DATABASE_SYNCHRONOUS": "sometimes"}, "database.synchronous"),
        ([], {"AIONIX_LIMITS_MAX_BODY_BYTES": "1"}, "limits.max_body_bytes"),
    ],
)
def test_bad_config_exits_before_binding_with_one_line(tmp_path, args, env, expected):
    import os

    full_env = {k: v for k, v in os.environ.items() if not k.startswith("AIONIX_")} | env
    proc = subprocess.run(
        [sys.executable, "-m", "aionix", "--data-dir", str(tmp_path / "d"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=full_env,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0] and "Traceback" not in proc.stderr
    assert not (tmp_path / "d").exists()


def test_unwritable_data_dir_is_a_clear_error(tmp_path):
    import os

    blocker = tmp_path / "file"
    blocker.write_text("not a dir")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIONIX_")}
    proc = subprocess.run(
        # port 0: the server binds before it touches the data dir, and 53000 may be taken here
        [sys.executable, "-m", "aionix", "--port", "0", "--data-dir", str(blocker / "data")],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert proc.returncode == 2
    assert "database.data_path" in proc.stderr and "Traceback" not in proc.stderr


def test_cors_is_off_by_default_and_allow_listed_origins_pass(server, make_server):
    preflight = {"Origin": "http://studio.example", "Access-Control-Request-Method": "GET"}
    r = httpx.options(server.url + "/api/v1/whoami", headers=preflight)
    assert "access-control-allow-origin" not in r.headers
    srv = make_server(env={"AIONIX_SECURITY_CORS_ORIGINS": "http://studio.example,http://other.example"}).start()
    r = httpx.options(srv.url + "/api/v1/whoami", headers=preflight)
    assert r.headers["access-control-allow-origin"] == "http://studio.example"
    r = httpx.options(srv.url + "/api/v1/whoami", headers={**preflight, "Origin": "http://evil.example"})
    assert r.headers.get("access-control-allow-origin") != "http://evil.example"
