"""Issue 15 finding 2: an idempotent answer belongs to the key that asked, and a stored answer
that carries a secret is never kept in plaintext."""

from __future__ import annotations

import uuid

import httpx


def _db_blob(srv) -> bytes:
    return b"".join(p.read_bytes() for p in srv.data_dir.glob("aionix.db*"))


def test_another_principal_never_receives_the_first_answer(make_server):
    srv = make_server().start()
    idem = "shared-" + uuid.uuid4().hex
    body = {"name": "second-root", "role": "admin", "cross_tenant": True}
    with srv.client() as root:
        first = root.post("/api/v1/keys", json=body, headers={"Idempotency-Key": idem})
        assert first.status_code == 201, first.text
        secret = first.json()["key"]
        plain_admin = root.post("/api/v1/keys", json={"name": "tenant-admin", "role": "admin"}).json()["key"]
    # an admin that is not cross-tenant sends the very same request with the same key:
    # it runs as its own request (and is refused), never replays the new cross-tenant key
    with srv.client(plain_admin) as other:
        replay = other.post("/api/v1/keys", json=body, headers={"Idempotency-Key": idem})
        assert replay.status_code == 403, replay.text
        assert "Idempotent-Replayed" not in replay.headers
        assert secret not in replay.text
        # its own first answer is replayed to it, and only to it
        own_body = {"name": "own-viewer", "role": "viewer"}
        own = other.post("/api/v1/keys", json=own_body, headers={"Idempotency-Key": idem + "-own"})
        again = other.post("/api/v1/keys", json=own_body, headers={"Idempotency-Key": idem + "-own"})
        assert own.status_code == again.status_code == 201
        assert again.headers["Idempotent-Replayed"] == "true" and again.json() == own.json()
    with srv.client() as root:
        # the first principal still gets its own answer
        again = root.post("/api/v1/keys", json=body, headers={"Idempotency-Key": idem})
        assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
        assert again.json()["key"] == secret
        other_try = root.post("/api/v1/keys", json=own_body, headers={"Idempotency-Key": idem + "-own"})
        assert "Idempotent-Replayed" not in other_try.headers
        names = [k["name"] for k in root.get("/api/v1/keys", params={"limit": 500}).json()["items"]]
        assert names.count("second-root") == 1


def test_stored_answers_with_secrets_are_sealed_and_replay_after_restart_and_rotation(make_server):
    srv = make_server().start()
    with srv.client() as c:
        key_answer = c.post(
            "/api/v1/keys", json={"name": "sealed-k", "role": "viewer"}, headers={"Idempotency-Key": "k1"}
        )
        assert key_answer.status_code == 201
        hook_answer = c.post(
            "/api/v1/triggers",
            json={"name": "sealed-hook", "target": "transform", "webhook": {}},
            headers={"Idempotency-Key": "t1"},
        )
        assert hook_answer.status_code == 201, hook_answer.text
        token_answer = c.post(
            "/api/v1/triggers",
            json={"name": "sealed-token", "target": "transform", "webhook": {"auth": "token"}},
            headers={"Idempotency-Key": "t2"},
        )
        assert token_answer.status_code == 201, token_answer.text
    api_key = key_answer.json()["key"]
    whsec = hook_answer.json()["secret"]
    whtok = token_answer.json()["token"]
    assert api_key.startswith("aio_") and whsec.startswith("whsec_") and whtok.startswith("whtok_")
    srv.stop()
    blob = _db_blob(srv)
    for secret in (api_key, whsec, whtok):
        assert secret.encode() not in blob
    srv.start()
    with srv.client() as c:
        again = c.post("/api/v1/keys", json={"name": "sealed-k", "role": "viewer"}, headers={"Idempotency-Key": "k1"})
        assert again.headers.get("Idempotent-Replayed") == "true" and again.json()["key"] == api_key
        rotated = c.post("/api/v1/vault/master-key/rotate", json={})
        assert rotated.status_code == 200, rotated.text
        again = c.post(
            "/api/v1/triggers",
            json={"name": "sealed-hook", "target": "transform", "webhook": {}},
            headers={"Idempotency-Key": "t1"},
        )
        assert again.status_code == 201 and again.headers.get("Idempotent-Replayed") == "true"
        assert again.json()["secret"] == whsec
    srv.restart()
    with srv.client() as c:
        again = c.post(
            "/api/v1/triggers",
            json={"name": "sealed-token", "target": "transform", "webhook": {"auth": "token"}},
            headers={"Idempotency-Key": "t2"},
        )
        assert again.status_code == 201 and again.json()["token"] == whtok
    assert httpx.get(srv.url + "/healthz").status_code == 200
