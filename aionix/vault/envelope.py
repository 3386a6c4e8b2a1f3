"""Envelope encryption: every secret version gets its own random 256-bit data key; the value is
sealed with AES-256-GCM under that key and the data key is wrapped (AES-256-GCM again) by the
master key. Each seal uses a fresh random 96-bit nonce. Both the value and the wrapped key carry
associated data naming tenant, secret and version, so a ciphertext or wrapped key copied onto
another row fails its authentication tag instead of opening.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from aionix.errors import AionixError

KEY_BYTES = 32
NONCE_BYTES = 12
_CHECK_PLAINTEXT = b"aionix-vault master key check v1"
_CHECK_AAD = b"aionix-vault:v1:key-check"


class IntegrityError(AionixError):
    """A stored ciphertext, nonce or wrapped key failed authentication: it was altered, moved
    to another secret, or sealed under another master key. Never a value."""

    status = 500
    code = "integrity_error"


@dataclass(frozen=True, slots=True)
class Sealed:
    """What is stored for one secret version."""

    key_nonce: bytes
    wrapped_key: bytes
    nonce: bytes
    ciphertext: bytes


def value_aad(tenant: str, name: str, version: int) -> bytes:
    return f"aionix-vault:v1:value:{tenant}:{name}:{version}".encode()


def key_aad(tenant: str, name: str, version: int) -> bytes:
    return f"aionix-vault:v1:data-key:{tenant}:{name}:{version}".encode()


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def wrap_key(master: bytes, data_key: bytes, aad: bytes) -> tuple[bytes, bytes]:
    nonce = os.urandom(NONCE_BYTES)
    return nonce, AESGCM(master).encrypt(nonce, data_key, aad)


def unwrap_key(master: bytes, nonce: bytes, wrapped: bytes, aad: bytes, what: str) -> bytes:
    try:
        key = AESGCM(master).decrypt(nonce, wrapped, aad)
    except (InvalidTag, ValueError):
        raise IntegrityError(f"{what}: the wrapped data key failed its integrity check") from None
    if len(key) != KEY_BYTES:
        raise IntegrityError(f"{what}: the wrapped data key has the wrong length")
    return key


def seal(master: bytes, plaintext: bytes, tenant: str, name: str, version: int) -> Sealed:
    """Seal one version's value under a fresh data key wrapped by `master`."""
    data_key = new_key()
    nonce = os.urandom(NONCE_BYTES)
    ciphertext = AESGCM(data_key).encrypt(nonce, plaintext, value_aad(tenant, name, version))
    key_nonce, wrapped = wrap_key(master, data_key, key_aad(tenant, name, version))
    return Sealed(key_nonce, wrapped, nonce, ciphertext)


def open_sealed(master: bytes, sealed: Sealed, tenant: str, name: str, version: int) -> bytes:
    """The plaintext, or `IntegrityError` when anything stored was altered or moved."""
    what = f"secret {name!r} version {version}"
    data_key = unwrap_key(master, sealed.key_nonce, sealed.wrapped_key, key_aad(tenant, name, version), what)
    try:
        return AESGCM(data_key).decrypt(sealed.nonce, sealed.ciphertext, value_aad(tenant, name, version))
    except (InvalidTag, ValueError):
        raise IntegrityError(f"{what}: the ciphertext failed its integrity check") from None


def rewrap(
    old_master: bytes, new_master: bytes, key_nonce: bytes, wrapped: bytes, tenant: str, name: str, version: int
) -> tuple[bytes, bytes]:
    """Re-wrap a version's data key under a new master key (the value is not re-encrypted)."""
    aad = key_aad(tenant, name, version)
    data_key = unwrap_key(old_master, key_nonce, wrapped, aad, f"secret {name!r} version {version} (tenant {tenant})")
    return wrap_key(new_master, data_key, aad)


def seal_check(master: bytes) -> tuple[bytes, bytes]:
    """A known string sealed under `master`: how a wrong master key is detected at start."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce, AESGCM(master).encrypt(nonce, _CHECK_PLAINTEXT, _CHECK_AAD)


def check_opens(master: bytes, nonce: bytes, value: bytes) -> bool:
    try:
        return AESGCM(master).decrypt(nonce, value, _CHECK_AAD) == _CHECK_PLAINTEXT
    except (InvalidTag, ValueError):
        return False
