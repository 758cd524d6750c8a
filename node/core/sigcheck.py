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

from node.core import ed25519


def verify_many(items: Sequence[tuple[bytes, bytes, bytes]]) -> list[bool]:
    """For each ``(raw public key, message, signature)``: does it verify?"""
    return [ed25519.verify(key, message, sig) for key, message, sig in items]
