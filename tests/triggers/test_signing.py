"""Webhook signatures (Standard Webhooks scheme) and sealed secrets."""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag

from aionix.triggers.signing import (
    SecretBox,
    WebhookRejected,
    new_secret,
    new_token,
    sign,
    token_hash,
    verify_signature,
    verify_token,
)

NOW = 1_800_000_000
BODY = b'{"order": 42}'


def headers(secret: str, msg_id: str = "msg_1", stamp: int = NOW, body: bytes = BODY) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign(secret, msg_id, stamp, body),
    }


def test_signature_is_hmac_sha256_over_id_timestamp_body() -> None:
    secret = "whsec_test"
    mac = hmac.new(secret.encode(), b"msg_1.1800000000." + BODY, hashlib.sha256).digest()
    assert sign(secret, "msg_1", NOW, BODY) == "v1," + base64.b64encode(mac).decode()


def test_valid_signature_is_accepted() -> None:
    secret = new_secret()
    assert verify_signature([secret], headers(secret), BODY, now=NOW + 10, tolerance=300) == ("msg_1", NOW)


@pytest.mark.parametrize(
    ("mutate", "code", "status"),
    [
        (lambda h, b: ({**h, "webhook-signature": "v1,AAAA"}, b), "signature_invalid", 401),
        (lambda h, b: (h, b + b" "), "signature_invalid", 401),
        (lambda h, b: ({**h, "webhook-id": "msg_2"}, b), "signature_invalid", 401),
        (lambda h, b: ({k: v for k, v in h.items() if k != "webhook-signature"}, b), "signature_missing", 401),
        (lambda h, b: ({**h, "webhook-timestamp": "soon"}, b), "bad_timestamp", 400),
    ],
)
def test_tampered_deliveries_are_rejected(mutate, code: str, status: int) -> None:
    secret = new_secret()
    h, b = mutate(headers(secret), BODY)
    with pytest.raises(WebhookRejected) as err:
        verify_signature([secret], h, b, now=NOW, tolerance=300)
    assert (err.value.code, err.value.status) == (code, status)


@pytest.mark.parametrize("skew", [301, -301, 10_000])
def test_stale_or_future_timestamps_are_rejected(skew: int) -> None:
    secret = new_secret()
    with pytest.raises(WebhookRejected) as err:
        verify_signature([secret], headers(secret, stamp=NOW - skew), BODY, now=NOW, tolerance=300)
    assert err.value.code == "timestamp_out_of_window"


def test_wrong_secret_is_rejected_and_either_rotation_secret_is_accepted() -> None:
    old, new = new_secret(), new_secret()
    with pytest.raises(WebhookRejected):
        verify_signature([new], headers(old), BODY, now=NOW, tolerance=300)
    assert verify_signature([new, old], headers(old), BODY, now=NOW, tolerance=300)[0] == "msg_1"
    both = headers(new)
    both["webhook-signature"] = sign(old, "msg_1", NOW, BODY) + " " + both["webhook-signature"]
    assert verify_signature([new], both, BODY, now=NOW, tolerance=300)[0] == "msg_1"


def test_bearer_token_mode() -> None:
    token = new_token()
    verify_token([token_hash(token)], f"Bearer {token}")
    for bad in ("", f"Basic {token}", "Bearer wrong"):
        with pytest.raises(WebhookRejected):
            verify_token([token_hash(token)], bad)


def test_secret_box_round_trip_and_tamper(tmp_path: Path) -> None:
    box = SecretBox(tmp_path / "triggers.key")
    sealed = box.seal("whsec_abc", "t1/trg_1")
    assert "whsec_abc" not in sealed
    assert (tmp_path / "triggers.key").stat().st_mode & 0o777 == 0o600
    assert SecretBox(tmp_path / "triggers.key").open(sealed, "t1/trg_1") == "whsec_abc"
    with pytest.raises(InvalidTag):
        box.open(sealed, "t1/trg_2")  # a row copied to another trigger does not open
    raw = bytearray(base64.b64decode(sealed))
    raw[-1] ^= 1
    with pytest.raises(InvalidTag):
        box.open(base64.b64encode(bytes(raw)).decode(), "t1/trg_1")
