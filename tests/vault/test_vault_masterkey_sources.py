"""Master key sources as a pure function: order, validation, and never inventing a key for a
vault that already exists."""

from __future__ import annotations

import base64
import os
import stat

import pytest

from aionix.errors import ConfigError
from aionix.vault.masterkey import derive_from_passphrase, load_master_key

KEY = bytes(range(32))
SALT = b"0123456789abcdef"


def test_env_key_wins_and_both_variables_leave_the_environment(tmp_path):
    env = {"AIONIX_MASTER_KEY": base64.b64encode(KEY).decode(), "AIONIX_MASTER_PASSPHRASE": "a passphrase"}
    master = load_master_key(tmp_path / "master.key", salt=SALT, initialised=False, env=env)
    assert master.key == KEY and master.source == "env"
    assert env == {}
    assert not (tmp_path / "master.key").exists()


def test_passphrase_is_stretched_with_the_stored_salt(tmp_path):
    master = load_master_key(
        tmp_path / "k", salt=SALT, initialised=True, env={"AIONIX_MASTER_PASSPHRASE": "a passphrase"}
    )
    assert master.source == "passphrase" and master.key == derive_from_passphrase("a passphrase", SALT)
    assert master.key != derive_from_passphrase("a passphrase", b"another salt 123")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"AIONIX_MASTER_KEY": "not base64!"}, "not valid base64"),
        ({"AIONIX_MASTER_KEY": base64.b64encode(b"short").decode()}, "32 bytes"),
        ({"AIONIX_MASTER_PASSPHRASE": "short"}, "at least 8 characters"),
        ({}, "master key is missing"),
    ],
)
def test_bad_or_missing_sources_are_one_line_config_errors(tmp_path, env, message):
    with pytest.raises(ConfigError) as caught:
        load_master_key(tmp_path / "master.key", salt=SALT, initialised=True, env=env)
    assert message in caught.value.message and "\n" not in caught.value.message
    assert not (tmp_path / "master.key").exists()


def test_key_file_is_created_once_with_mode_0600_and_read_back(tmp_path):
    path = tmp_path / "master.key"
    first = load_master_key(path, salt=SALT, initialised=False, env={})
    assert first.source == "file" and stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load_master_key(path, salt=SALT, initialised=True, env={})
    assert again.key == first.key
    os.chmod(path, 0o640)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_master_key(path, salt=SALT, initialised=True, env={})
