"""Ed25519 verification of entry signatures: libsodium, through PyNaCl.

Signing, keys and every other signature (rosters, checkpoints, notes) use
``cryptography``. Entry signatures are the node's hot path (every relayed
entry, once per node; a joining node checks millions), and on the machines
we measured libsodium's verification is 2.3x faster than OpenSSL's
(56 us against 133 us here) and releases the GIL, so two threads check
about 24k signatures/s where ``cryptography`` managed 13k/s with worker
processes (docs/benchmarks.md, "Catch-up").

libsodium is the stricter of the two: it also refuses non-canonical point
encodings and small-order keys or R values, none of which an RFC 8032
signer produces. Every node checks entries with this one function, so all
members accept exactly the same entries.
"""

from __future__ import annotations

from nacl.bindings import crypto_sign_open
from nacl.exceptions import CryptoError

PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Does ``signature`` over ``message`` verify under the raw ``public_key``?"""
    if len(public_key) != PUBLIC_KEY_SIZE or len(signature) != SIGNATURE_SIZE:
        return False
    try:
        crypto_sign_open(signature + message, public_key)
    except CryptoError:  # BadSignatureError, or a key libsodium refuses
        return False
    return True


__all__ = ["PUBLIC_KEY_SIZE", "SIGNATURE_SIZE", "verify"]
