"""Dynamic values ({% %}), $param references, $env allow-list, cycles and secret_ref."""

from __future__ import annotations

import pytest
from paramkit import get, put, role_client, unique


def test_dynamic_value_reads_other_params_at_read_time(server, admin):
    base = "/" + unique("dyn")
    put(admin, f"{base}/host", "db.internal")
    put(admin, f"{base}/port", 5432, "number")
    url = put(
        admin,
        f"{base}/url",
        "{% 'postgres://' & $param('" + base + "/host') & ':' & $string($param('" + base + "/port')) %}",
    )
    assert url["dynamic"] is True and url["value"].startswith("{%")
    got = get(admin, f"{base}/url", evaluate="true").json()
    assert got["evaluated"] is True and got["value"] == "postgres://db.internal:5432"
    put(admin, f"{base}/port", 6543, "number")
    assert get(admin, f"{base}/url", evaluate="true").json()["value"] == "postgres://db.internal:6543"
    doubled = put(admin, f"{base}/double", "{% $param('" + base + "/port') * 2 %}", "number")
    assert doubled["dynamic"] is True
    assert get(admin, f"{base}/double", evaluate="true").json()["value"] == 13086
    put(admin, f"{base}/obj", {"dsn": "{% $param('" + base + "/url') %}", "pool": 5}, "json")
    assert get(admin, f"{base}/obj", evaluate="true").json()["value"] == {
        "dsn": "postgres://db.internal:6543",
        "pool": 5,
    }
    tree = admin.get("/api/v1/params", params={"prefix": base, "recursive": "true", "evaluate": "true"}).json()["tree"]
    assert tree["url"] == "postgres://db.internal:6543" and tree["double"] == 13086


def test_cycles_are_reported_not_looped(server, admin):
    base = "/" + unique("cyc")
    put(admin, f"{base}/a", "{% $param('" + base + "/b') %}")
    put(admin, f"{base}/b", "{% $param('" + base + "/c') %}")
    put(admin, f"{base}/c", "{% $param('" + base + "/a') %}")
    r = get(admin, f"{base}/a", evaluate="true")
    assert r.status_code == 422 and r.json()["error"]["code"] == "param_cycle"
    assert r.json()["error"]["details"]["cycle"] == [f"{base}/a", f"{base}/b", f"{base}/c", f"{base}/a"]
    put(admin, f"{base}/self", "{% $param('" + base + "/self') & 'x' %}")
    r = get(admin, f"{base}/self", evaluate="true")
    assert r.status_code == 422 and "cycle" in r.json()["error"]["message"]


def test_dynamic_errors_are_clear(server, admin):
    base = "/" + unique("dynerr")
    r = admin.put(f"/api/v1/params{base}/bad", json={"type": "string", "value": "{% 1 + %}"})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "value"
    r = admin.put(f"/api/v1/params{base}/computed", json={"type": "string", "value": "{% $param('/x' & 'y') %}"})
    assert r.status_code == 422 and "literal" in r.json()["error"]["message"]
    put(admin, f"{base}/missing", "{% $param('" + base + "/nope') %}")
    r = get(admin, f"{base}/missing", evaluate="true")
    assert r.status_code == 404 and f"{base}/nope" in r.json()["error"]["message"]
    put(admin, f"{base}/wrongtype", "{% 'text' %}", "number")
    r = get(admin, f"{base}/wrongtype", evaluate="true")
    assert r.status_code == 422 and "number" in r.json()["error"]["message"]
    put(admin, f"{base}/env", "{% $env('HOME') %}")
    r = get(admin, f"{base}/env", evaluate="true")
    assert r.status_code == 403 and "env_allowlist" in r.json()["error"]["message"]


def test_env_reads_only_allow_listed_variables(make_server):
    proc = make_server(
        env={"AIONIX_PARAMS_ENV_ALLOWLIST": "DEPLOY_REGION", "DEPLOY_REGION": "eu-west-9", "OTHER_VAR": "hidden-other"}
    ).start()
    with proc.client() as c:
        put(c, "/region", "{% $env('DEPLOY_REGION') %}")
        assert get(c, "/region", evaluate="true").json()["value"] == "eu-west-9"
        put(c, "/other", "{% $env('OTHER_VAR') %}")
        r = get(c, "/other", evaluate="true")
        assert r.status_code == 403 and "hidden-other" not in r.text


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_secret_ref_is_resolved_only_for_admins(server, admin, role):
    tenant = unique("sr").lower()
    tadmin = role_client(server, admin, tenant, "admin")
    other = role_client(server, admin, tenant, role)
    secret = unique("dbpw")
    r = tadmin.post("/api/v1/secrets", json={"name": secret, "type": "password", "value": "ref-secret-value"})
    assert r.status_code == 201
    stored = put(tadmin, "/app/db/password", secret, "secret_ref")
    assert stored["value"] == f"trn:credvault:{tenant}:credential/{secret}"
    plain = get(other, "/app/db/password").json()
    assert plain["value"] == stored["value"] and "ref-secret-value" not in str(plain)
    denied = get(other, "/app/db/password", evaluate="true")
    assert denied.status_code == 403 and "ref-secret-value" not in denied.text
    put(tadmin, "/app/db/dsn", "{% 'pw=' & $param('/app/db/password') %}")
    assert get(other, "/app/db/dsn", evaluate="true").status_code == 403
    resolved = get(tadmin, "/app/db/password", evaluate="true").json()
    assert resolved["value"] == "ref-secret-value"
    assert get(tadmin, "/app/db/dsn", evaluate="true").json()["value"] == "pw=ref-secret-value"
    tree = tadmin.get("/api/v1/params", params={"prefix": "/app", "recursive": "true", "evaluate": "true"}).json()
    assert "ref-secret-value" not in str(tree)
    audit = tadmin.get("/api/v1/audit", params={"action": "credvault.resolve"}).json()["items"]
    reads = [a for a in audit if a["details"]["reader"] == f"trn:paramstore:{tenant}:param/app/db/password"]
    assert reads and reads[0]["key_id"] == tadmin.get("/api/v1/whoami").json()["key_id"]


def test_secret_ref_to_another_tenant_is_refused(server, admin):
    r = admin.put(
        "/api/v1/params/" + unique("x") + "/ref",
        json={"type": "secret_ref", "value": "trn:credvault:someone-else:credential/pw"},
    )
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "value"


def test_odd_expressions_and_schemas_are_client_errors_not_500(server, admin):
    base = "/" + unique("odd")
    put(admin, f"{base}/a", "x")
    put(admin, f"{base}/mapped", "{% $map(['" + base + "/a'], $param) %}", "json")
    r = get(admin, f"{base}/mapped", evaluate="true")
    assert r.status_code == 422 and "literal path" in r.json()["error"]["message"]
    r = admin.put(
        f"/api/v1/params{base}/ref",
        json={"type": "json", "value": 1, "json_schema": {"$ref": "http://127.0.0.1:1/unreachable.json"}},
    )
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "json_schema"
