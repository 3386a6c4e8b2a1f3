"""Where the master key comes from, in order: `AIONIX_MASTER_KEY` (base64 of 32 bytes),
`AIONIX_MASTER_PASSPHRASE` (stretched with scrypt and the salt stored in `vault_master`), or a
key file in the data dir (created with mode 0600 on the very first start only).

Both variables are removed from the process environment once read, so nothing started later
by the server inherits them. A key file is only ever created when the vault has never been
initialised: a missing key for an existing vault is an error, never a fresh key (which would
make every stored secret unreadable).
"""

from __future__ import annotations

import base64
import binascii
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from aionix.errors import ConfigError
from aionix.vault.envelope import KEY_BYTES, new_key

ENV_KEY = "AIONIX_MASTER_KEY"
ENV_PASSPHRASE = "AIONIX_MASTER_PASSPHRASE"
SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
MIN_PASSPHRASE = 8


@dataclass(frozen=True)
class MasterKey:
    key: bytes
    source: str  # "env" | "passphrase" | "file"
    path: Path | None = None

    def describe(self) -> str:
        if self.source == "env":
            return ENV_KEY
        if self.source == "passphrase":
            return ENV_PASSPHRASE
        return f"the key file {self.path}"


def derive_from_passphrase(passphrase: str, salt: bytes) -> bytes:
    kdf = Scrypt(salt=salt, length=KEY_BYTES, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    return kdf.derive(passphrase.encode("utf-8"))


def decode_key(text: str, where: str) -> bytes:
    """A base64 key of exactly 32 bytes, or `ConfigError` naming `where`."""
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"vault: {where} is not valid base64") from None
    if len(key) != KEY_BYTES:
        raise ConfigError(f"vault: {where} must hold {KEY_BYTES} bytes (base64), got {len(key)}")
    return key


def encode_key(key: bytes) -> str:
    return base64.b64encode(key).decode("ascii")


def check_passphrase(passphrase: str, where: str) -> str:
    if len(passphrase) < MIN_PASSPHRASE:
        raise ConfigError(f"vault: {where} must be at least {MIN_PASSPHRASE} characters")
    return passphrase


def read_key_file(path: Path) -> bytes:
    try:
        st = path.stat()
    except OSError as exc:
        raise ConfigError(f"vault: cannot read the master key file {path}: {exc.strerror}") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"vault: the master key file {path} is accessible by other users (mode {stat.S_IMODE(st.st_mode):o}); "
            f"run chmod 600 {path}"
        )
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"vault: cannot read the master key file {path}: {exc}") from None
    return decode_key(text, f"the master key file {path}")


def write_key_file(path: Path, key: bytes) -> None:
    """Create `path` (must not exist) with mode 0600 and the key in base64, durably."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, (encode_key(key) + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_dir(path.parent)


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load_master_key(key_file: Path, *, salt: bytes, initialised: bool, env: dict[str, str] | None = None) -> MasterKey:
    """The master key from the first source present (see the module docstring).

    `salt` is the stored scrypt salt (a fresh one on first start); `initialised` says whether
    the vault already holds a key check, in which case a missing source is an error."""
    environ = os.environ if env is None else env
    raw = environ.pop(ENV_KEY, None)
    passphrase = environ.pop(ENV_PASSPHRASE, None)
    if raw:
        return MasterKey(decode_key(raw, ENV_KEY), "env")
    if passphrase:
        check_passphrase(passphrase, ENV_PASSPHRASE)
        return MasterKey(derive_from_passphrase(passphrase, salt), "passphrase")
    if key_file.exists():
        return MasterKey(read_key_file(key_file), "file", key_file)
    if initialised:
        raise ConfigError(
            f"vault: the master key is missing: set {ENV_KEY} or {ENV_PASSPHRASE}, or restore the key file {key_file}"
        )
    key = new_key()
    try:
        write_key_file(key_file, key)
    except OSError as exc:
        raise ConfigError(f"vault: cannot create the master key file {key_file}: {exc.strerror}") from None
    return MasterKey(key, "file", key_file)
