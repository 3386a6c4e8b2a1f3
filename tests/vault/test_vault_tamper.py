"""Tampering with what is stored gives an integrity error, never a value."""

from __future__ import annotations

import pgstore
import pytest
from vaultkit import create_secret, db_execute, db_rows, reveal


@pytest.fixture(scope="module")
def vault(tmp_path_factory):
    from serverproc import ServerProcess

    proc = ServerProcess(tmp_path_factory.mktemp("tamper")).start()
    yield proc
    proc.kill()


def _flip(data_dir, column: str, name: str, version: int = 1) -> None:
    (blob,) = db_rows(data_dir, f"SELECT {column} FROM vault_versions WHERE name = ? AND version = ?", (name, version))[
        0
    ]
    changed = bytearray(blob)
    changed[len(changed) // 2] ^= 0x01
    db_execute(
        data_dir,
        f"UPDATE vault_versions SET {column} = ? WHERE name = ? AND version = ?",
        (bytes(changed), name, version),
    )


def _assert_integrity_error(client, name: str, value: str, **params) -> None:
    r = reveal(client, name, **params)
    assert r.status_code == 500, r.text
    assert r.json()["error"]["code"] == "integrity_error"
    assert value not in r.text


@pytest.mark.parametrize("column", ["ciphertext", "nonce", "wrapped_key", "key_nonce"])
def test_flipping_a_byte_of_stored_material_is_an_integrity_error(vault, column):
    name = f"flip-{column.replace('_', '-')}"
    with vault.client() as c:
        create_secret(c, name, "flip-value-" + column)
        assert reveal(c, name).status_code == 200
        _flip(vault.data_dir, column, name)
        _assert_integrity_error(c, name, "flip-value-" + column)


def test_moving_a_ciphertext_to_another_secret_is_an_integrity_error(vault):
    with vault.client() as c:
        create_secret(c, "move-src", "move-source-value")
        create_secret(c, "move-dst", "move-target-value")
        src = db_rows(
            vault.data_dir,
            "SELECT key_nonce, wrapped_key, nonce, ciphertext FROM vault_versions WHERE name = 'move-src'",
        )[0]
        db_execute(
            vault.data_dir,
            "UPDATE vault_versions SET key_nonce = ?, wrapped_key = ?, nonce = ?, ciphertext = ? WHERE name = 'move-dst'",
            src,
        )
        _assert_integrity_error(c, "move-dst", "move-source-value")
        assert reveal(c, "move-src").json()["value"] == "move-source-value"


def test_moving_a_version_onto_another_version_is_an_integrity_error(vault):
    with vault.client() as c:
        create_secret(c, "move-ver", "version-one-value")
        c.put("/api/v1/secrets/move-ver", json={"value": "version-two-value"})
        v1 = db_rows(
            vault.data_dir,
            "SELECT key_nonce, wrapped_key, nonce, ciphertext FROM vault_versions WHERE name = 'move-ver' AND version = 1",
        )[0]
        db_execute(
            vault.data_dir,
            "UPDATE vault_versions SET key_nonce = ?, wrapped_key = ?, nonce = ?, ciphertext = ? WHERE name = 'move-ver' AND version = 2",
            v1,
        )
        _assert_integrity_error(c, "move-ver", "version-one-value")
        _assert_integrity_error(c, "move-ver", "version-one-value", version=2)


def test_a_failed_integrity_check_is_audited(vault):
    with vault.client() as c:
        create_secret(c, "audit-tamper", "audit-tamper-value")
        _flip(vault.data_dir, "ciphertext", "audit-tamper")
        _assert_integrity_error(c, "audit-tamper", "audit-tamper-value")
        rows = c.get("/api/v1/audit", params={"action": "credvault.reveal"}).json()["items"]
        mine = [r for r in rows if r["resource"].endswith("/audit-tamper")]
        assert mine and mine[0]["status"] == 500 and "integrity" in mine[0]["details"]["error"]


def test_audit_fails_closed_no_audit_row_no_value(vault):
    """RELIABILITY S5: when the audit row of a read cannot be written, no value is returned."""
    with vault.client() as c:
        create_secret(c, "closed", "fail-closed-value")
        if pgstore.on_postgres():  # the same fault as a PL/pgSQL trigger
            db_execute(
                vault.data_dir,
                "CREATE FUNCTION block_reveal_audit() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'audit is unavailable'; END $$",
            )
            db_execute(
                vault.data_dir,
                "CREATE TRIGGER block_reveal_audit BEFORE INSERT ON audit FOR EACH ROW "
                "WHEN (NEW.action = 'credvault.reveal') EXECUTE FUNCTION block_reveal_audit()",
            )
        else:
            db_execute(
                vault.data_dir,
                "CREATE TRIGGER block_reveal_audit BEFORE INSERT ON audit WHEN NEW.action = 'credvault.reveal' "
                "BEGIN SELECT RAISE(ABORT, 'audit is unavailable'); END",
            )
        try:
            r = reveal(c, "closed")
            assert r.status_code >= 500 and r.status_code != 200
            assert "fail-closed-value" not in r.text
        finally:
            db_execute(
                vault.data_dir, "DROP TRIGGER block_reveal_audit" + (" ON audit" if pgstore.on_postgres() else "")
            )
        assert reveal(c, "closed").json()["value"] == "fail-closed-value"
