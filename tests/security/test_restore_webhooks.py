"""Issue 15 finding 10: a database restored with its master key (the README's restore) keeps
its webhooks working; webhook secrets of earlier versions (sealed under `triggers.key`) move
under the master key at start; a secret that cannot be opened is a clear error, never an
unhandled exception."""

from __future__ import annotations

import shutil
import sqlite3
import time
from pathlib import Path

import orjson
from serverproc import ServerProcess
from triggers.support import post_signed

from aionix.triggers.signing import SecretBox


def _hook(c, name: str) -> str:
    r = c.post("/api/v1/triggers", json={"name": name, "target": "transform", "webhook": {}})
    assert r.status_code == 201, r.text
    return r.json()["secret"]


def test_restore_with_the_master_key_keeps_webhooks_working(make_server, tmp_path):
    srv = make_server().start()
    with srv.client() as c:
        secret = _hook(c, "orders")
        assert post_signed(srv.url, "/hooks/default/orders", secret, b'{"n": 1}').status_code == 202
        backup = c.get("/api/v1/admin/backup")
        assert backup.status_code == 200
    srv.stop()
    # the README's restore: the database and master.key, nothing else
    fresh = ServerProcess(tmp_path / "restored")
    fresh.data_dir.mkdir(parents=True)
    (fresh.data_dir / "aionix.db").write_bytes(backup.content)
    shutil.copy2(srv.data_dir / "master.key", fresh.data_dir / "master.key")
    fresh.admin_key = srv.admin_key
    fresh.start()
    try:
        r = post_signed(fresh.url, "/hooks/default/orders", secret, b'{"n": 2}')
        assert r.status_code == 202, r.text
        assert not (fresh.data_dir / "triggers.key").exists()
        # after a master key rotation and a restart too
        with fresh.client() as c:
            assert c.post("/api/v1/vault/master-key/rotate", json={}).status_code == 200
        assert post_signed(fresh.url, "/hooks/default/orders", secret, b'{"n": 3}').status_code == 202
        fresh.restart()
        assert post_signed(fresh.url, "/hooks/default/orders", secret, b'{"n": 4}').status_code == 202
    finally:
        fresh.kill()


def _seal_legacy(db: Path, key_file: Path, name: str, secret: str) -> None:
    """Rewrite a trigger's secret as an earlier version stored it (under a `triggers.key`)."""
    conn = sqlite3.connect(db)
    try:
        tid, tenant, creds = conn.execute(
            "SELECT id, tenant, credentials FROM triggers WHERE name = ?", (name,)
        ).fetchone()
        data = orjson.loads(creds)
        data["items"][0]["sealed"] = SecretBox(key_file).seal(secret, f"{tenant}/{tid}")
        conn.execute("UPDATE triggers SET credentials = ? WHERE id = ?", (orjson.dumps(data).decode(), tid))
        conn.commit()
    finally:
        conn.close()


def _sealed_values(db: Path) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT credentials FROM triggers WHERE kind = 'webhook'").fetchall()
    finally:
        conn.close()
    return [item["sealed"] for (creds,) in rows for item in orjson.loads(creds)["items"] if "sealed" in item]


def test_secrets_sealed_under_triggers_key_move_under_the_master_key(make_server):
    srv = make_server().start()
    with srv.client() as c:
        secret = _hook(c, "legacy")
    srv.stop()
    _seal_legacy(srv.data_dir / "aionix.db", srv.data_dir / "triggers.key", "legacy", secret)
    srv.start()
    assert post_signed(srv.url, "/hooks/default/legacy", secret, b"{}").status_code == 202
    srv.stop()
    assert all(v.startswith("m1:") for v in _sealed_values(srv.data_dir / "aionix.db"))
    # the old key file is no longer needed
    (srv.data_dir / "triggers.key").unlink()
    srv.start()
    assert post_signed(srv.url, "/hooks/default/legacy", secret, b"{}").status_code == 202


def test_a_secret_that_cannot_be_opened_is_a_clear_error(make_server, tmp_path):
    srv = make_server().start()
    with srv.client() as c:
        secret = _hook(c, "lost")
    srv.stop()
    # sealed under a triggers.key that did not come back with the restore
    _seal_legacy(srv.data_dir / "aionix.db", tmp_path / "elsewhere.key", "lost", secret)
    srv.start()
    for _ in range(3):
        r = post_signed(srv.url, "/hooks/default/lost", secret, b"{}")
        assert r.status_code == 500, r.text
        err = r.json()["error"]
        assert err["code"] == "webhook_secret_unreadable"
        assert "triggers.key" in err["message"] and "rotate-secret lost" in err["message"]
    time.sleep(0.2)
    log = srv.log()
    assert "Traceback" not in log and "InvalidTag" not in log
    assert log.count("webhook trigger default/lost:") == 1  # logged once, not per delivery
    with srv.client() as c:
        rotated = c.post("/api/v1/triggers/lost/rotate-secret", json={"grace_seconds": 0})
        assert rotated.status_code == 200, rotated.text
        history = c.get("/api/v1/triggers/lost/history").json()["items"]
    assert any(h["error"] == "webhook_secret_unreadable" for h in history)
    assert post_signed(srv.url, "/hooks/default/lost", rotated.json()["secret"], b"{}").status_code == 202
