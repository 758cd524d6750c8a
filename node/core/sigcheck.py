"""Bulk Ed25519 signature checks, for worker processes.

Catch-up is bound by signature verification. ``cryptography`` releases the
GIL inside OpenSSL, but each call still needs the GIL before and after, and
with the event loop and the LMDB writer thread also wanting it, threads reach
about half of two cores. Worker processes have a GIL each: the node decides
*which* key must have signed each entry (membership, roles, cut-offs) and
sends only ``(public key, signed message, signature)`` triples here.

Pure and picklable: no node state, only bytes in and booleans out.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

_KEYS: dict[bytes, Ed25519PublicKey] = {}  # per worker process: parsed keys


def verify_many(items: Sequence[tuple[bytes, bytes, bytes]]) -> list[bool]:
    """For each ``(raw public key, message, signature)``: does it verify?"""
    out: list[bool] = []
    for raw_key, message, signature in items:
        key = _KEYS.get(raw_key)
        if key is None:
            if len(_KEYS) > 10_000:
                _KEYS.clear()
            key = _KEYS[raw_key] = Ed25519PublicKey.from_public_bytes(raw_key)
        try:
            key.verify(signature, message)
        except InvalidSignature:
            out.append(False)
        else:
            out.append(True)
    return out
