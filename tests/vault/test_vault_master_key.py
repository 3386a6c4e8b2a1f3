"""Master key sources, wrong and missing keys at start, and what lies at rest on disk."""

from __future__ import annotations

import base64
import os
import stat
import time

import pgstore
import pytest
from vaultkit import create_secret, db_rows, reveal, unique

KEY_A = base64.b64encode(bytes(range(32))).decode()
KEY_B = base64.b64encode(bytes(range(1, 33))).decode()


def _fails_to_start(proc) -> str:
    with pytest.raises(RuntimeError):
        proc.start(timeout=30)
    assert proc.proc.returncode == 2
    return proc.log()


def _vault_rows(data_dir):
    return db_rows(data_dir, "SELECT * FROM vault_versions ORDER BY tenant, name, version") + db_rows(
        data_dir, "SELECT * FROM vault_master"
    )


def test_key_file_is_created_on_first_start_with_mode_0600(make_server):
    proc = make_server().start()
    key_file = proc.data_dir / "master.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(base64.b64decode(key_file.read_text().strip())) == 32
    with proc.client() as c:
        create_secret(c, "kept", "kept-value-1")
        assert c.get("/healthz").json()["vault"]["master_key_source"] == "file"
    proc.stop()
    proc.start()
    with proc.client() as c:
        assert reveal(c, "kept").json()["value"] == "kept-value-1"


def test_missing_key_file_for_an_existing_vault_stops_the_server(make_server):
    proc = make_server().start()
    with proc.client() as c:
        create_secret(c, "s", "value-123")
    proc.stop()
    (proc.data_dir / "master.key").unlink()
    log = _fails_to_start(proc)
    assert "master key is missing" in log
    assert not (proc.data_dir / "master.key").exists(), "a fresh key must never replace a lost one"


def test_key_file_readable_by_others_is_refused(make_server):
    proc = make_server().start()
    proc.stop()
    os.chmod(proc.data_dir / "master.key", 0o644)
    assert "chmod 600" in _fails_to_start(proc)


def test_env_key_opens_and_wrong_env_key_stops_without_changing_data(make_server):
    proc = make_server(env={"AIONIX_MASTER_KEY": KEY_A}).start()
    with proc.client() as c:
        create_secret(c, "envsecret", "env-value-42")
        assert c.get("/healthz").json()["vault"]["master_key_source"] == "env"
    proc.stop()
    assert not (proc.data_dir / "master.key").exists()
    before = _vault_rows(proc.data_dir)
    proc.extra_env = {"AIONIX_MASTER_KEY": KEY_B}
    log = _fails_to_start(proc)
    assert "wrong master key" in log and "AIONIX_MASTER_KEY" in log
    assert "env-value-42" not in log
    assert _vault_rows(proc.data_dir) == before
    proc.extra_env = {"AIONIX_MASTER_KEY": "not base64!"}
    assert "not valid base64" in _fails_to_start(proc)
    proc.extra_env = {"AIONIX_MASTER_KEY": KEY_A}
    proc.start()
    with proc.client() as c:
        assert reveal(c, "envsecret").json()["value"] == "env-value-42"


def test_passphrase_opens_and_wrong_passphrase_stops_without_changing_data(make_server):
    proc = make_server(env={"AIONIX_MASTER_PASSPHRASE": "correct horse battery"}).start()
    with proc.client() as c:
        create_secret(c, "pp", "pp-value-77")
    proc.stop()
    before = _vault_rows(proc.data_dir)
    proc.extra_env = {"AIONIX_MASTER_PASSPHRASE": "wrong horse battery"}
    log = _fails_to_start(proc)
    assert "wrong master key" in log and "AIONIX_MASTER_PASSPHRASE" in log
    assert _vault_rows(proc.data_dir) == before
    proc.extra_env = {"AIONIX_MASTER_PASSPHRASE": "correct horse battery"}
    proc.start()
    with proc.client() as c:
        assert reveal(c, "pp").json()["value"] == "pp-value-77"


def test_plaintext_never_reaches_the_database_file_or_its_wal(make_server):
    proc = make_server().start()
    values = [unique("canary-plain"), unique("canary-json")]
    with proc.client() as c:
        create_secret(c, "plain", values[0])
        create_secret(c, "structured", {"password": values[1]}, type_="json")
        c.put("/api/v1/secrets/plain", json={"value": values[0] + "-v2"})
        c.post("/api/v1/secrets/plain/rotate", json={"value": values[0] + "-v3", "promote": False})
        assert reveal(c, "plain", version=2).json()["value"] == values[0] + "-v2"
        assert reveal(c, "structured").json()["value"] == {"password": values[1]}
    files = pgstore.database_files(proc.data_dir)  # the SQLite file and its WAL, or PostgreSQL's files and WAL
    assert any(p.name.endswith("-wal") or p.parent.name == "pg_wal" for p in files)
    for path in files:
        raw = path.read_bytes()
        for value in values:
            assert value.encode() not in raw, f"{value} found in {path.name}"
    for value in values:
        assert value not in proc.log()
    proc.stop()
    for path in {*proc.data_dir.iterdir(), *pgstore.database_files(proc.data_dir)}:
        if path.is_file():
            raw = path.read_bytes()
            for value in values:
                assert value.encode() not in raw, f"{value} found in {path.name} after shutdown"


def test_deleted_secrets_are_purged_after_the_recovery_window(make_server):
    proc = make_server(
        env={"AIONIX_VAULT_RECOVERY_WINDOW_DAYS": "0.00002", "AIONIX_VAULT_PURGE_INTERVAL_SECONDS": "0.5"}
    ).start()
    with proc.client() as c:
        create_secret(c, "short-lived", "short-lived-value")
        deleted = c.delete("/api/v1/secrets/short-lived").json()
        assert deleted["purge_after"] - deleted["deleted_at"] < 3
        assert c.post("/api/v1/secrets/short-lived/restore").status_code in (200, 404)
        c.delete("/api/v1/secrets/short-lived")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and c.get("/api/v1/secrets/short-lived").status_code != 404:
            time.sleep(0.2)
        assert c.get("/api/v1/secrets/short-lived").status_code == 404
    assert db_rows(proc.data_dir, "SELECT count(*) FROM vault_versions WHERE name = 'short-lived'") == [(0,)]
