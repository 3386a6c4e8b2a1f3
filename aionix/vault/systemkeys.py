"""Platform data keys wrapped by the master key.

What the platform itself must keep secret at rest (webhook secrets, idempotent answers that
carry a new API key) is sealed with AES-256-GCM under a *system key*: a random 256-bit data key
per purpose, stored in `system_keys` wrapped by the vault's master key exactly like a secret
version's data key. So there is one key to back up — the master key — and a database restored
with its master key opens everything. A master key rotation re-wraps these keys in its own
transaction (`rewrap`); the data keys themselves do not change.

Unlike secret data keys, an unwrapped system key is kept in memory once used: it is needed on
every webhook delivery and idempotent request, and it protects platform records, not values a
tenant stored.
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from aionix.errors import AionixError
from aionix.vault import envelope

if TYPE_CHECKING:
    from aionix.vault.service import VaultService

#: Prefix of a value sealed by `SystemBox.seal` (base64 never contains ':').
SEALED_PREFIX = "m1:"


class SealedUnreadable(AionixError):
    """A value sealed under a system key does not open: altered, moved, or from another
    installation. Never a plaintext."""

    status = 500
    code = "integrity_error"


def _aad(name: str) -> bytes:
    return f"aionix:system-key:v1:{name}".encode()


class SystemKeys:
    def __init__(self, vault: VaultService) -> None:
        self.vault = vault
        self._cache: dict[str, bytes] = {}
        self._lock = asyncio.Lock()

    async def get(self, name: str) -> bytes:
        """The data key `name`, created (wrapped under the current master key) on first use."""
        key = self._cache.get(name)
        if key is not None:
            return key
        async with self._lock:
            if name in self._cache:
                return self._cache[name]
            row = await self.vault.store.fetch_one("core.get_system_key", {"name": name})
            if row is None:
                fresh = envelope.new_key()

                def make(master_id: str, master: bytes) -> Any:
                    def fn(tx: Any) -> dict[str, Any] | None:
                        self.vault._require_master(tx, master_id)
                        nonce, wrapped = envelope.wrap_key(master, fresh, _aad(name))
                        tx.execute(
                            "core.insert_system_key",
                            {
                                "name": name,
                                "master_id": master_id,
                                "key_nonce": nonce,
                                "wrapped_key": wrapped,
                                "now": time.time(),
                            },
                        )
                        return tx.fetch_one("core.get_system_key", {"name": name})

                    return fn

                row = await self.vault._write(make)
            assert row is not None
            master = self.vault._keys.get(row["master_id"])
            if master is None:
                raise SealedUnreadable(f"system key {name!r} is wrapped by an unknown master key")
            key = envelope.unwrap_key(master, row["key_nonce"], row["wrapped_key"], _aad(name), f"system key {name!r}")
            self._cache[name] = key
            return key

    async def box(self, name: str) -> SystemBox:
        return SystemBox(await self.get(name))

    @staticmethod
    def rewrap(tx: Any, old_id: str, old_master: bytes, new_id: str, new_master: bytes) -> int:
        """Re-wrap every system key under a new master key (inside the rotation's transaction)."""
        rows = tx.fetch_all("core.all_system_keys")
        for r in rows:
            if r["master_id"] != old_id:
                raise envelope.IntegrityError(f"system key {r['name']!r} is wrapped by an unknown master key")
            key = envelope.unwrap_key(old_master, r["key_nonce"], r["wrapped_key"], _aad(r["name"]), "system key")
            nonce, wrapped = envelope.wrap_key(new_master, key, _aad(r["name"]))
            tx.execute(
                "core.rewrap_system_key",
                {"name": r["name"], "master_id": new_id, "key_nonce": nonce, "wrapped_key": wrapped},
            )
        return len(rows)


class SystemBox:
    """AES-256-GCM under one system key; associated data binds a value to its place."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal_bytes(self, plaintext: bytes, aad: str) -> bytes:
        nonce = os.urandom(envelope.NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext, aad.encode())

    def open_bytes(self, sealed: bytes, aad: str) -> bytes:
        try:
            return self._aead.decrypt(sealed[: envelope.NONCE_BYTES], sealed[envelope.NONCE_BYTES :], aad.encode())
        except (InvalidTag, ValueError):
            raise SealedUnreadable("a sealed record failed its integrity check") from None

    def seal(self, plaintext: str, aad: str) -> str:
        return SEALED_PREFIX + base64.b64encode(self.seal_bytes(plaintext.encode(), aad)).decode()

    def open(self, sealed: str, aad: str) -> str:
        if not sealed.startswith(SEALED_PREFIX):
            raise SealedUnreadable("not a value sealed under a system key")
        try:
            raw = base64.b64decode(sealed[len(SEALED_PREFIX) :], validate=True)
        except ValueError:
            raise SealedUnreadable("a sealed record is not valid base64") from None
        return self.open_bytes(raw, aad).decode()
