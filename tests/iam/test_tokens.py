"""Access tokens and refresh tokens against a real server: API-key exchange, expiry (a short TTL
set through the config), signing-key rotation by `kid` (older tokens stay valid until they
expire), refresh rotation and reuse detection (the whole family is revoked), logout."""

from __future__ import annotations

import base64
import time

import httpx
import orjson
import pgstore
import pytest

TTL = 3  # seconds: [auth] access_token_ttl_seconds for this server


def _header(token: str) -> dict:
    part = token.split(".")[0]
    return orjson.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def wait_ready(server, path: str = "/api/v1/auth/config") -> None:
    """The services load while /healthz already answers: wait for the identity routes."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if httpx.get(server.url + path, timeout=5).status_code == 200:
            return
        time.sleep(0.1)
    raise AssertionError("the identity routes did not come up")


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1]))
    from serverproc import ServerProcess

    proc = ServerProcess(
        tmp_path_factory.mktemp("tokens"),
        env={
            "AIONIX_AUTH_ACCESS_TOKEN_TTL_SECONDS": str(TTL),
            "AIONIX_SECURITY_AUTH_FAILURES_PER_MINUTE": "100000",
        },
    ).start()
    wait_ready(proc)
    yield proc
    proc.stop()


def exchange(srv, key=None, **body) -> dict:
    with srv.client(key) as c:
        r = c.post("/api/v1/auth/token", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def whoami(srv, token) -> httpx.Response:
    with srv.client(token) as c:
        return c.get("/api/v1/whoami")


def test_api_key_exchange_gives_a_short_lived_token_that_acts_as_the_key(srv):
    out = exchange(srv)
    assert out["token_type"] == "Bearer" and out["expires_in"] == TTL and out.get("refresh_token") is None
    header = _header(out["access_token"])
    assert header["alg"] == "ES256" and header["kid"]
    r = whoami(srv, out["access_token"])
    assert r.status_code == 200, r.text
    with srv.client() as c:
        me = c.get("/api/v1/whoami").json()
    assert r.json()["key_id"] == me["key_id"] and r.json()["role"] == "admin"
    # the token cannot mint tokens (only a key can be exchanged)
    with srv.client(out["access_token"]) as c:
        assert c.post("/api/v1/auth/token", json={}).status_code == 403
    # the exchange is audited
    with srv.client() as c:
        rows = c.get("/api/v1/audit", params={"action": "POST /api/v1/auth/token"}).json()["items"]
    assert rows


def test_token_expires(srv):
    token = exchange(srv)["access_token"]
    assert whoami(srv, token).status_code == 200
    time.sleep(TTL + 5.5)  # the TTL and the verifier's 5 s leeway
    r = whoami(srv, token)
    assert r.status_code == 401 and "expired" in r.json()["error"]["message"]


def test_revoking_the_key_stops_its_tokens(srv):
    with srv.client() as c:
        made = c.post("/api/v1/keys", json={"name": "tok-revoke", "role": "operator"}).json()
    token = exchange(srv, made["key"])["access_token"]
    assert whoami(srv, token).json()["role"] == "operator"
    with srv.client() as c:
        assert c.delete(f"/api/v1/keys/{made['id']}").status_code in (200, 204)
    deadline = time.monotonic() + 10
    while whoami(srv, token).status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert whoami(srv, token).status_code == 401


def test_forged_and_garbled_tokens_are_refused(srv):
    token = exchange(srv)["access_token"]
    head, body, sig = token.split(".")
    claims = orjson.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["tid"] = "other"
    forged = base64.urlsafe_b64encode(orjson.dumps(claims)).rstrip(b"=").decode()
    for bad in (f"{head}.{forged}.{sig}", "a.b.c", f"{head}.{body}.", token[:-4] + "AAAA"):
        r = whoami(srv, bad)
        assert r.status_code == 401, (bad, r.text)


def test_rotation_with_kid_keeps_old_tokens_valid_until_expiry(srv):
    old = exchange(srv)["access_token"]
    old_kid = _header(old)["kid"]
    with srv.client() as c:
        r = c.post("/api/v1/auth/signing-keys/rotate")
        assert r.status_code == 200, r.text
        new_kid = r.json()["kid"]
        kids = {k["kid"] for k in c.get("/api/v1/auth/jwks").json()["keys"]}
    assert new_kid != old_kid and {old_kid, new_kid} <= kids
    new = exchange(srv)["access_token"]
    assert _header(new)["kid"] == new_kid
    assert whoami(srv, old).status_code == 200  # signed by the retired key, not expired yet
    assert whoami(srv, new).status_code == 200
    time.sleep(TTL + 5.5)
    assert whoami(srv, old).status_code == 401


def test_signing_keys_are_sealed_in_the_store(srv):
    rows = pgstore.query(srv.data_dir, "SELECT kid, private_sealed, public_jwk FROM iam_signing_keys")
    assert rows
    for _kid, sealed, public in rows:
        assert sealed.startswith("m1:") and "PRIVATE" not in sealed
        assert '"d"' not in public  # only the public half


def _user_session(srv, name: str) -> dict:
    with srv.client() as c:
        r = c.post("/api/v1/users", json={"name": name, "role": "operator", "password": "correct horse battery"})
        assert r.status_code == 201, r.text
    r = httpx.post(srv.url + "/api/v1/auth/login", json={"username": name, "password": "correct horse battery"})
    assert r.status_code == 200, r.text
    return r.json()


def refresh(srv, token: str) -> httpx.Response:
    return httpx.post(srv.url + "/api/v1/auth/refresh", json={"refresh_token": token})


def test_refresh_rotates_and_reuse_revokes_the_family(srv):
    first = _user_session(srv, "refresher")
    assert first["refresh_token"].startswith("aior_") and first["user"]["name"] == "refresher"
    r = refresh(srv, first["refresh_token"])
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert whoami(srv, second["access_token"]).json()["key_id"] == first["user"]["id"]
    r = refresh(srv, second["refresh_token"])
    assert r.status_code == 200
    third = r.json()
    # an attacker replays the first (used) token: the family is revoked ...
    r = refresh(srv, first["refresh_token"])
    assert r.status_code == 401 and "already used" in r.json()["error"]["message"]
    # ... so the legitimate holder's newest refresh token stops too
    assert refresh(srv, third["refresh_token"]).status_code == 401
    with srv.client() as c:
        rows = c.get("/api/v1/audit", params={"action": "auth.refresh_reuse"}).json()["items"]
    assert rows and max(r["details"]["revoked"] for r in rows) >= 1
    # a new sign-in starts a new family
    r = httpx.post(srv.url + "/api/v1/auth/login", json={"username": "refresher", "password": "correct horse battery"})
    assert refresh(srv, r.json()["refresh_token"]).status_code == 200


def test_logout_revokes_the_session(srv):
    s = _user_session(srv, "leaver")
    r = httpx.post(srv.url + "/api/v1/auth/logout", json={"refresh_token": s["refresh_token"]})
    assert r.status_code == 204
    assert refresh(srv, s["refresh_token"]).status_code == 401
    # an unknown token: the same answer (nothing to reveal)
    r = httpx.post(srv.url + "/api/v1/auth/logout", json={"refresh_token": "aior_nothing"})
    assert r.status_code == 204


def test_concurrent_refreshes_of_one_token_let_one_through(srv):
    import concurrent.futures

    s = _user_session(srv, "racer")
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda _: refresh(srv, s["refresh_token"]).status_code, range(8)))
    assert codes.count(200) <= 1 and set(codes) <= {200, 401}


def test_keys_rotate_by_age_and_survive_a_restart(tmp_path):
    """`[auth] signing_key_rotation_days` makes a new key when the current one is that old; the
    keys are in the store (sealed by the master key), so tokens outlive a restart."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1]))
    from serverproc import ServerProcess

    # 0.0001 days = 8.6 s: the housekeeping loop checks every quarter of that
    proc = ServerProcess(tmp_path / "rotating", env={"AIONIX_AUTH_SIGNING_KEY_ROTATION_DAYS": "0.0001"}).start()
    try:
        wait_ready(proc)
        token = exchange(proc)["access_token"]
        first = _header(token)["kid"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            kids = [k["kid"] for k in httpx.get(proc.url + "/api/v1/auth/jwks").json()["keys"]]
            if len(kids) > 1:
                break
            time.sleep(0.5)
        assert len(kids) > 1 and first in kids, kids
        assert _header(exchange(proc)["access_token"])["kid"] != first
        proc.restart()  # SIGKILL, then start again: the keys come back from the store
        wait_ready(proc)
        assert whoami(proc, token).status_code == 200  # the default 15-minute TTL
    finally:
        proc.stop()
