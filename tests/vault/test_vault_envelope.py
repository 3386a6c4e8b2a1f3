"""Envelope encryption as pure functions (property-based)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aionix.vault import envelope
from aionix.vault.envelope import IntegrityError

MASTER = envelope.new_key()
OTHER = envelope.new_key()
names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,20}", fullmatch=True)


@settings(max_examples=60, deadline=None)
@given(plaintext=st.binary(max_size=2048), name=names, version=st.integers(1, 10_000))
def test_seal_then_open_round_trips_and_binds_identity(plaintext, name, version):
    sealed = envelope.seal(MASTER, plaintext, "t1", name, version)
    assert envelope.open_sealed(MASTER, sealed, "t1", name, version) == plaintext
    assert len(plaintext) < 8 or plaintext not in sealed.ciphertext
    for tenant, other_name, other_version in (
        ("t2", name, version),
        ("t1", name + "x", version),
        ("t1", name, version + 1),
    ):
        with pytest.raises(IntegrityError):
            envelope.open_sealed(MASTER, sealed, tenant, other_name, other_version)
    with pytest.raises(IntegrityError):
        envelope.open_sealed(OTHER, sealed, "t1", name, version)


def test_each_seal_uses_a_fresh_data_key_and_nonce():
    a = envelope.seal(MASTER, b"same", "t", "n", 1)
    b = envelope.seal(MASTER, b"same", "t", "n", 1)
    assert a.nonce != b.nonce and a.key_nonce != b.key_nonce
    assert a.ciphertext != b.ciphertext and a.wrapped_key != b.wrapped_key
    assert len(a.nonce) == 12 and len(a.key_nonce) == 12


def test_rewrap_moves_a_data_key_to_a_new_master_without_touching_the_value():
    sealed = envelope.seal(MASTER, b"value", "t", "n", 3)
    key_nonce, wrapped = envelope.rewrap(MASTER, OTHER, sealed.key_nonce, sealed.wrapped_key, "t", "n", 3)
    moved = envelope.Sealed(key_nonce, wrapped, sealed.nonce, sealed.ciphertext)
    assert envelope.open_sealed(OTHER, moved, "t", "n", 3) == b"value"
    with pytest.raises(IntegrityError):
        envelope.open_sealed(MASTER, moved, "t", "n", 3)


def test_key_check_detects_a_wrong_master_key():
    nonce, value = envelope.seal_check(MASTER)
    assert envelope.check_opens(MASTER, nonce, value)
    assert not envelope.check_opens(OTHER, nonce, value)
