"""The entry-signature verifier (libsodium) against RFC 8032 and `cryptography`."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

from node.core import ed25519

# RFC 8032 section 7.1, TEST 1 (empty message).
RFC_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
RFC_SIGNATURE = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555"
    "fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)


def test_rfc8032_test_1_verifies_and_any_flipped_bit_does_not() -> None:
    assert ed25519.verify(RFC_PUBLIC, b"", RFC_SIGNATURE)
    for i in range(len(RFC_SIGNATURE) * 8):
        bad = bytearray(RFC_SIGNATURE)
        bad[i // 8] ^= 1 << (i % 8)
        assert not ed25519.verify(RFC_PUBLIC, b"", bytes(bad)), f"bit {i}"
    assert not ed25519.verify(RFC_PUBLIC, b"\x00", RFC_SIGNATURE)


def test_wrong_lengths_and_refused_keys_are_false_not_errors() -> None:
    assert not ed25519.verify(RFC_PUBLIC[:31], b"", RFC_SIGNATURE)
    assert not ed25519.verify(RFC_PUBLIC + b"\x00", b"", RFC_SIGNATURE)
    assert not ed25519.verify(RFC_PUBLIC, b"", RFC_SIGNATURE[:63])
    # The identity point (small order): libsodium refuses such keys outright.
    identity = b"\x01" + bytes(31)
    assert not ed25519.verify(identity, b"", RFC_SIGNATURE)


@settings(max_examples=50, deadline=None)
@given(seed=st.binary(min_size=32, max_size=32), message=st.binary(max_size=300))
def test_agrees_with_cryptography_on_what_a_signer_makes(seed: bytes, message: bytes) -> None:
    key = Ed25519PrivateKey.from_private_bytes(seed)
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    signature = key.sign(message)
    assert ed25519.verify(raw, message, signature)
    other = Ed25519PrivateKey.from_private_bytes(bytes(b ^ 0xFF for b in seed))
    assert not ed25519.verify(raw, message, other.sign(message))
