"""Users and groups per tenant, and local sign-in (scrypt passwords), against a real server:
CRUD through REST and `aio`, wrong passwords answered alike, audited and throttled, disabled
users and changed passwords ending sessions, the role and groups a user token carries."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pgstore
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_tokens import wait_ready

PASSWORD = "correct horse battery"
PER_USER = 4  # [auth] login_failures_per_user for this server


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    sys.path.insert(0, str(Path(__file__).parents[1]))
    from serverproc import ServerProcess

    proc = ServerProcess(
        tmp_path_factory.mktemp("users"),
        env={
            "AIONIX_AUTH_LOGIN_FAILURES_PER_USER": str(PER_USER),
            "AIONIX_SECURITY_AUTH_FAILURES_PER_MINUTE": "12",
        },
    ).start()
    wait_ready(proc)
    yield proc
    proc.stop()


def login(srv, name, password=PASSWORD, tenant="default") -> httpx.Response:
    return httpx.post(
        srv.url + "/api/v1/auth/login", json={"username": name, "password": password, "tenant": tenant}, timeout=30
    )


def test_user_and_group_crud(srv):
    with srv.client() as c:
        assert c.post("/api/v1/groups", json={"name": "eng", "description": "engineers"}).status_code == 201
        assert c.post("/api/v1/groups", json={"name": "eng"}).status_code == 409
        r = c.post(
            "/api/v1/users", json={"name": "ada", "role": "viewer", "email": "ada@example.test", "groups": ["eng"]}
        )
        assert r.status_code == 201, r.text
        user = r.json()
        assert user["source"] == "local" and user["groups"] == ["eng"] and "password_hash" not in user
        assert c.post("/api/v1/users", json={"name": "ada", "role": "viewer"}).status_code == 409
        r = c.post("/api/v1/users", json={"name": "bad", "role": "viewer", "groups": ["nope"]})
        assert r.status_code == 422 and "groups" in r.text
        r = c.post("/api/v1/users", json={"name": "short", "role": "viewer", "password": "short"})
        assert r.status_code == 422 and "password" in r.text
        assert [u["name"] for u in c.get("/api/v1/users").json()["items"]].count("ada") == 1
        r = c.put("/api/v1/users/ada", json={"role": "operator"})
        assert r.json()["role"] == "operator"
        assert c.post("/api/v1/groups", json={"name": "ops"}).status_code == 201
        r = c.post("/api/v1/groups/ops/members", json={"user": "ada"})
        assert [m["name"] for m in r.json()["members"]] == ["ada"]
        assert c.get("/api/v1/users/ada").json()["groups"] == ["eng", "ops"]
        assert c.delete("/api/v1/groups/ops/members/ada").status_code == 204
        assert c.delete("/api/v1/groups/ops/members/ada").status_code == 404
        groups = {g["name"]: g["members"] for g in c.get("/api/v1/groups").json()["items"]}
        assert groups["eng"] == 1 and groups["ops"] == 0
        assert c.delete("/api/v1/groups/ops").status_code == 204
        assert c.delete("/api/v1/users/ada").status_code == 204
        assert c.get("/api/v1/users/ada").status_code == 404
        # users belong to a tenant: another tenant sees none of them
        other = c.get("/api/v1/users", headers={"X-Aionix-Tenant": "elsewhere"}).json()["items"]
        assert other == []


def test_users_need_the_admin_role(srv):
    with srv.client() as c:
        viewer = c.post("/api/v1/keys", json={"name": "u-viewer", "role": "viewer"}).json()["key"]
    with srv.client(viewer) as c:
        assert c.get("/api/v1/users").status_code == 403
        assert c.post("/api/v1/users", json={"name": "x", "role": "admin"}).status_code == 403


def test_local_login_and_the_principal_of_its_token(srv):
    with srv.client() as c:
        c.post("/api/v1/groups", json={"name": "readers"})
        r = c.post(
            "/api/v1/users", json={"name": "grace", "role": "operator", "password": PASSWORD, "groups": ["readers"]}
        )
        assert r.status_code == 201, r.text
    r = login(srv, "grace")
    assert r.status_code == 200, r.text
    s = r.json()
    assert s["user"]["groups"] == ["readers"] and s["user"]["role"] == "operator"
    with srv.client(s["access_token"]) as c:
        me = c.get("/api/v1/whoami").json()
        assert me["role"] == "operator" and me["tenant"] == "default" and me["key_id"] == s["user"]["id"]
        assert c.get("/api/v1/users").status_code == 403  # operator, not admin
        assert c.post("/api/v1/auth/token", json={}).status_code == 403  # tokens are not keys
    # the password is stored as scrypt, never as given
    ((stored,),) = pgstore.query(srv.data_dir, "SELECT password_hash FROM iam_users WHERE name = 'grace'")
    assert stored.startswith("scrypt$32768$8$1$") and PASSWORD not in stored
    # a successful sign-in is audited in the user's tenant
    with srv.client() as c:
        rows = c.get("/api/v1/audit", params={"action": "auth.login"}).json()["items"]
    assert any(r["details"]["user"] == "grace" for r in rows)


def test_whoami_and_aio_status_name_the_signed_in_user(srv, tmp_path):
    with srv.client() as c:
        c.post("/api/v1/groups", json={"name": "auditors"})
        r = c.post(
            "/api/v1/users", json={"name": "hopper", "role": "viewer", "password": PASSWORD, "groups": ["auditors"]}
        )
        assert r.status_code == 201, r.text
        me = c.get("/api/v1/whoami").json()
        assert me["user_id"] is None and me["groups"] == [] and me["source"] == "key"
    s = login(srv, "hopper").json()
    with srv.client(s["access_token"]) as c:
        me = c.get("/api/v1/whoami").json()
    assert me["user_id"] == s["user"]["id"] and me["groups"] == ["auditors"] and me["source"] == "token"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIONIX_")}
    env.update({"AIONIX_URL": srv.url, "AIONIX_API_KEY": s["access_token"], "HOME": str(tmp_path)})
    aio = str(Path(sys.executable).parent / "aio")
    r = subprocess.run([aio, "-o", "json", "status"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert '"user_id": "' + s["user"]["id"] + '"' in r.stdout.replace('":"', '": "') and "auditors" in r.stdout


def test_role_change_and_disable_take_effect_on_live_tokens(srv):
    with srv.client() as c:
        c.post("/api/v1/users", json={"name": "linus", "role": "viewer", "password": PASSWORD})
    s = login(srv, "linus").json()
    with srv.client() as admin:
        admin.put("/api/v1/users/linus", json={"role": "admin"})
        with srv.client(s["access_token"]) as c:
            assert c.get("/api/v1/whoami").json()["role"] == "admin"
        admin.put("/api/v1/users/linus", json={"disabled": True})
        with srv.client(s["access_token"]) as c:
            assert c.get("/api/v1/whoami").status_code == 401
    assert login(srv, "linus").status_code == 401
    r = httpx.post(srv.url + "/api/v1/auth/refresh", json={"refresh_token": s["refresh_token"]})
    assert r.status_code == 401


def test_password_change_ends_sessions(srv):
    with srv.client() as c:
        c.post("/api/v1/users", json={"name": "rotator", "role": "viewer", "password": PASSWORD})
    s = httpx.post(srv.url + "/api/v1/auth/login", json={"username": "rotator", "password": PASSWORD})
    assert s.status_code == 200, s.text
    with srv.client() as c:
        assert c.put("/api/v1/users/rotator", json={"password": "another long password"}).status_code == 200
    r = httpx.post(srv.url + "/api/v1/auth/refresh", json={"refresh_token": s.json()["refresh_token"]})
    assert r.status_code == 401
    assert httpx.get(srv.url + "/api/v1/auth/oidc/authorize").status_code == 404  # no [auth.oidc] here


def test_wrong_password_is_audited_and_throttled(srv):
    with srv.client() as c:
        c.post("/api/v1/users", json={"name": "mallory-target", "role": "viewer", "password": PASSWORD})
    wrong = login(srv, "mallory-target", "not the password")
    unknown = login(srv, "no-such-user", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["error"]["message"] == unknown.json()["error"]["message"]
    # per user name: after PER_USER failures even the right password waits
    for _ in range(PER_USER - 1):
        assert login(srv, "mallory-target", "still wrong").status_code == 401
    r = login(srv, "mallory-target")
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    # per address: like bad API keys ([security] auth_failures_per_minute = 12 here)
    codes = [login(srv, f"nobody-{i}", "x").status_code for i in range(12)]
    assert codes[-1] == 429
    r = httpx.get(srv.url + "/api/v1/whoami", headers={"Authorization": "Bearer aio_guessed"})
    assert r.status_code == 429  # the same address counter as API keys
    # the failures are in the audit trail, aggregated per address and minute
    with srv.client() as c:
        rows = c.get("/api/v1/audit", params={"action": "auth.failure"}).json()["items"]
    reasons = {reason for row in rows for reason in row["details"]["reasons"]}
    assert "invalid user name or password" in reasons
    assert any("/api/v1/auth/login" in row["details"]["paths"] for row in rows)


def test_cli_users_groups_and_login(srv, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIONIX_")}
    env.update({"AIONIX_URL": srv.url, "AIONIX_API_KEY": srv.admin_key, "HOME": str(tmp_path)})
    aio = [str(Path(sys.executable).parent / "aio")]

    def run(*args, stdin=None):
        return subprocess.run([*aio, *args], env=env, input=stdin, capture_output=True, text=True, timeout=60)

    assert run("group", "create", "cli-team").returncode == 0
    r = run(
        "user",
        "create",
        "cli-user",
        "--role",
        "operator",
        "--group",
        "cli-team",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert r.returncode == 0, r.stderr
    r = run("-o", "json", "user", "get", "cli-user")
    assert '"cli-team"' in r.stdout
    assert "cli-user" in run("group", "get", "cli-team").stdout
    assert "cli-user" in run("user", "list").stdout
    r = run("auth", "config")
    assert r.returncode == 0 and "local_users" in r.stdout
    assert run("user", "update", "cli-user", "--disable").returncode == 0
    assert run("group", "remove", "cli-team", "cli-user").returncode == 0
    assert run("user", "delete", "cli-user").returncode == 0
    assert run("group", "delete", "cli-team").returncode == 0
