"""Master key rotation: every data key re-wrapped in one transaction, every secret readable
afterwards and across restarts, interrupted rotations recoverable."""

from __future__ import annotations

import base64
import stat

import pytest
from vaultkit import create_secret, db_rows, reveal, role_client, unique

KEY_A = base64.b64encode(bytes(range(32))).decode()
KEY_B = base64.b64encode(bytes(range(100, 132))).decode()


def _seed(client) -> dict[str, str]:
    values = {}
    for i in range(3):
        name = f"s{i}"
        create_secret(client, name, f"rotation-value-{i}-v1")
        client.put(f"/api/v1/secrets/{name}", json={"value": f"rotation-value-{i}-v2"})
        values[name] = f"rotation-value-{i}-v2"
    return values


def _check_all(client, values: dict[str, str]) -> None:
    for name, value in values.items():
        assert reveal(client, name).json()["value"] == value
        assert reveal(client, name, version=1).json()["value"] == value.replace("-v2", "-v1")


def _rotate(client, **body):
    return client.post("/api/v1/vault/master-key/rotate", json=body)


def test_rotation_with_a_key_file_rewraps_everything_and_survives_restart(make_server):
    proc = make_server().start()
    key_file = proc.data_dir / "master.key"
    with proc.client() as c:
        values = _seed(c)
        old_key = key_file.read_text()
        before = c.get("/api/v1/vault/master-key").json()
        r = _rotate(c)
        assert r.status_code == 200, r.text
        status = r.json()
        assert status["rewrapped"] == 6 and status["master_id"] != before["master_id"] and status["rotated_at"]
        assert key_file.read_text() != old_key and stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert not (proc.data_dir / "master.key.next").exists()
        _check_all(c, values)
        ids = {row[0] for row in db_rows(proc.data_dir, "SELECT DISTINCT master_id FROM vault_versions")}
        assert ids == {status["master_id"]}
        create_secret(c, "after", "after-rotation-value")
        assert reveal(c, "after").json()["value"] == "after-rotation-value"
        audit = c.get("/api/v1/audit", params={"action": "credvault.rotate_master_key"}).json()["items"]
        assert audit and audit[0]["details"]["rewrapped"] == 6
    proc.stop()
    proc.start()
    with proc.client() as c:
        _check_all(c, values)
    proc.stop()
    new_key = key_file.read_text()
    key_file.write_text(old_key)
    with pytest.raises(RuntimeError):
        proc.start()
    assert "wrong master key" in proc.log()
    key_file.write_text(new_key)
    proc.start()
    with proc.client() as c:
        _check_all(c, values)


def test_rotation_cut_off_after_commit_is_finished_at_the_next_start(make_server):
    proc = make_server().start()
    key_file = proc.data_dir / "master.key"
    next_file = proc.data_dir / "master.key.next"
    with proc.client() as c:
        values = _seed(c)
        old_key = key_file.read_text()
        assert _rotate(c).status_code == 200
    proc.kill()
    # The state a crash between the commit and the key file swap leaves behind.
    new_key = key_file.read_text()
    next_file.write_text(new_key)
    next_file.chmod(0o600)
    key_file.write_text(old_key)
    proc.start()
    assert key_file.read_text() == new_key and not next_file.exists()
    with proc.client() as c:
        _check_all(c, values)


def test_rotation_cut_off_before_commit_keeps_the_old_key(make_server):
    proc = make_server().start()
    next_file = proc.data_dir / "master.key.next"
    with proc.client() as c:
        values = _seed(c)
    proc.kill()
    next_file.write_text(base64.b64encode(bytes(32)).decode())
    next_file.chmod(0o600)
    proc.start()
    assert not next_file.exists()
    with proc.client() as c:
        _check_all(c, values)


def test_rotation_with_env_key_and_with_passphrase(make_server):
    proc = make_server(env={"AIONIX_MASTER_KEY": KEY_A}).start()
    with proc.client() as c:
        values = _seed(c)
        r = _rotate(c)
        assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "new_key"
        r = _rotate(c, new_key="not-base64!")
        assert r.status_code == 422
        r = _rotate(c, new_key=KEY_B)
        assert r.status_code == 200 and "AIONIX_MASTER_KEY" in r.json()["next_step"]
        _check_all(c, values)
    proc.stop()
    proc.extra_env = {"AIONIX_MASTER_KEY": KEY_B}
    proc.start()
    with proc.client() as c:
        _check_all(c, values)
    proc.stop()

    proc2 = make_server(env={"AIONIX_MASTER_PASSPHRASE": "first passphrase"}).start()
    with proc2.client() as c:
        values = _seed(c)
        assert _rotate(c).status_code == 422
        r = _rotate(c, new_passphrase="second passphrase")
        assert r.status_code == 200, r.text
    proc2.stop()
    proc2.extra_env = {"AIONIX_MASTER_PASSPHRASE": "first passphrase"}
    with pytest.raises(RuntimeError):
        proc2.start()
    assert "wrong master key" in proc2.log()
    proc2.extra_env = {"AIONIX_MASTER_PASSPHRASE": "second passphrase"}
    proc2.start()
    with proc2.client() as c:
        _check_all(c, values)


def test_only_a_cross_tenant_admin_rotates_the_master_key(server, admin):
    tenant_admin = role_client(server, admin, unique("mk").lower(), "admin")
    assert _rotate(tenant_admin).status_code == 403
    assert tenant_admin.get("/api/v1/vault/master-key").status_code == 403
