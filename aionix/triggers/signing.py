"""Webhook signatures (RELIABILITY.md S11) and the sealing of webhook secrets at rest.

The scheme follows Standard Webhooks (the one Svix, Stripe-like senders use):

    webhook-id:         a unique id per delivery (de-duplicated)
    webhook-timestamp:  Unix seconds when it was sent (must be within the replay window)
    webhook-signature:  v1,<base64 HMAC-SHA256(secret, "{id}.{timestamp}.{raw body}")>

The HMAC key is the secret string exactly as shown at creation (`whsec_…`), as UTF-8 bytes.
Several signatures may be sent separated by spaces (during a rotation a sender may sign with
both secrets); one valid signature under any active secret is enough. Comparison is
constant-time.

Secrets are sealed with AES-256-GCM under the `webhooks` system key, which is wrapped by the
vault's master key (`aionix.vault.systemkeys`), with the tenant and trigger id as associated
data: the database alone does not reveal them, a row copied to another trigger does not open,
and a database restored with its master key opens them — there is no other key to back up.
Earlier versions sealed them under a key file in the data directory (`triggers.key`); at start
such secrets are re-sealed under the system key (`WebhookSecrets.is_legacy`), and one that
cannot be opened is answered with a clear 500, never an unhandled error.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from aionix.vault.systemkeys import SEALED_PREFIX, SealedUnreadable, SystemBox

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
SECRET_PREFIX = "whsec_"
TOKEN_PREFIX = "whtok_"


class WebhookRejected(Exception):
    """A delivery that must not start anything; `status` is the HTTP answer."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def new_secret() -> str:
    return SECRET_PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def new_token() -> str:
    return TOKEN_PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def sign(secret: str, msg_id: str, timestamp: int | str, body: bytes) -> str:
    """The `webhook-signature` value for one delivery: `v1,<base64>`."""
    mac = hmac.new(secret.encode(), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def verify_signature(
    active_secrets: list[str], headers: dict[str, str], body: bytes, *, now: float, tolerance: float
) -> tuple[str, int]:
    """Check the three headers; return `(id, timestamp)` or raise `WebhookRejected`."""
    msg_id = headers.get(ID_HEADER, "")
    stamp = headers.get(TIMESTAMP_HEADER, "")
    signature = headers.get(SIGNATURE_HEADER, "")
    missing = [h for h, v in ((ID_HEADER, msg_id), (TIMESTAMP_HEADER, stamp), (SIGNATURE_HEADER, signature)) if not v]
    if missing:
        raise WebhookRejected(401, "signature_missing", f"missing header(s): {', '.join(missing)}")
    if len(msg_id) > 256:
        raise WebhookRejected(400, "bad_webhook_id", f"{ID_HEADER}: at most 256 characters")
    if not stamp.isdigit() or len(stamp) > 12:
        raise WebhookRejected(400, "bad_timestamp", f"{TIMESTAMP_HEADER}: expected Unix seconds")
    ts = int(stamp)
    if abs(now - ts) > tolerance:
        raise WebhookRejected(
            401, "timestamp_out_of_window", f"{TIMESTAMP_HEADER} is more than {tolerance:g} s from the server's clock"
        )
    offered = [part for part in signature.split(" ") if part]
    for secret in active_secrets:
        expected = sign(secret, msg_id, stamp, body).encode()
        for candidate in offered:
            if hmac.compare_digest(expected, candidate.encode()):
                return msg_id, ts
    raise WebhookRejected(401, "signature_invalid", "no valid v1 signature for this webhook's secret")


def verify_token(token_hashes: list[str], authorization: str) -> None:
    """Bearer-token mode: `Authorization: Bearer <token>` against the stored hashes."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise WebhookRejected(401, "token_missing", "missing Authorization: Bearer <token>")
    offered = token_hash(token.strip()).encode()
    if not any(hmac.compare_digest(offered, h.encode()) for h in token_hashes):
        raise WebhookRejected(401, "token_invalid", "the bearer token is not valid for this webhook")


class SecretBox:
    """AES-256-GCM sealing under a key file (`triggers.key` of earlier versions); only read now,
    to move secrets sealed by those versions under the master key."""

    def __init__(self, key_path: Path) -> None:
        self.key_path = key_path
        self._aead: AESGCM | None = None

    def _key(self) -> AESGCM:
        if self._aead is None:
            if not self.key_path.exists():
                fd = os.open(self.key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                try:
                    os.write(fd, AESGCM.generate_key(bit_length=256))
                    os.fsync(fd)
                finally:
                    os.close(fd)
            key = self.key_path.read_bytes()
            if len(key) != 32:
                raise ValueError(f"{self.key_path} does not hold a 256-bit key")
            self._aead = AESGCM(key)
        return self._aead

    def seal(self, plaintext: str, aad: str) -> str:
        nonce = secrets.token_bytes(12)
        sealed = self._key().encrypt(nonce, plaintext.encode(), aad.encode())
        return base64.b64encode(nonce + sealed).decode()

    def open(self, sealed: str, aad: str) -> str:
        raw = base64.b64decode(sealed)
        return self._key().decrypt(raw[:12], raw[12:], aad.encode()).decode()


#: The system key webhook secrets are sealed under.
SYSTEM_KEY = "webhooks"


class WebhookSecrets:
    """Webhook secrets sealed under the `webhooks` system key (set by `TriggerService.start`);
    secrets sealed by earlier versions under `triggers.key` are still opened when that file is
    there."""

    def __init__(self, legacy_key_path: Path) -> None:
        self.legacy_key_path = legacy_key_path
        self.box: SystemBox | None = None

    @staticmethod
    def is_legacy(sealed: str) -> bool:
        return not sealed.startswith(SEALED_PREFIX)

    def _box(self) -> SystemBox:
        if self.box is None:
            raise SealedUnreadable("the triggers service is not started")
        return self.box

    def seal(self, plaintext: str, aad: str) -> str:
        return self._box().seal(plaintext, aad)

    def open(self, sealed: str, aad: str) -> str:
        """The secret, or `SealedUnreadable` with a message saying why it does not open."""
        if not self.is_legacy(sealed):
            try:
                return self._box().open(sealed, aad)
            except SealedUnreadable:
                raise SealedUnreadable("the webhook secret does not open under this server's master key") from None
        if not self.legacy_key_path.exists():
            raise SealedUnreadable(
                f"the webhook secret was sealed under {self.legacy_key_path.name} (an earlier version's key "
                "file), which is missing from the data directory"
            )
        try:
            return SecretBox(self.legacy_key_path).open(sealed, aad)
        except (InvalidTag, ValueError, OSError):
            raise SealedUnreadable(
                f"the webhook secret does not open under {self.legacy_key_path} (a key file from another server?)"
            ) from None
