"""Per-origin ordering: the pure decision of what to do with a verified entry.

An origin's log is a hash chain: entry ``seq`` names the id of ``seq - 1`` as
its ``prev``. Given what is stored for the origin, a verified entry is

- appended when ``seq == next`` and ``prev`` is the stored head;
- a duplicate (ignored) when the identical signed entry is stored at that seq;
- equivocation when another body is stored at that seq, or another signature
  over the stored body (Ed25519 signing is deterministic, RFC 8032, so a
  second signature is a second Merkle leaf for one seq), or when it extends
  a different ``seq - 1`` than the stored one: both are signed by the
  origin, so together they prove the origin forked its log;
- out of order when ``seq > next``: refused until the gap is filled.
"""

from __future__ import annotations

import enum

from node.core.entry import SIG_LEN, SignedEntry
from node.errors import EquivocationError, OrderingError


class Decision(enum.Enum):
    APPEND = "append"
    DUPLICATE = "duplicate"


def decide(
    entry: SignedEntry,
    next_seq: int,
    head_id: bytes,
    stored_at_seq: bytes | None,
) -> Decision:
    """Raise EquivocationError or OrderingError, or say what to do.

    ``stored_at_seq`` is the stored signed-entry bytes (``to_bytes`` form) at
    the entry's seq, when that seq is below ``next_seq``.
    """
    body = entry.body
    if body.seq < next_seq:
        signed = entry.to_bytes()
        if stored_at_seq == signed:
            return Decision.DUPLICATE
        if stored_at_seq is not None and stored_at_seq[4:-SIG_LEN] == entry.body_bytes:
            raise EquivocationError(
                f"equivocation: {body.origin} seq {body.seq} carries a second signature "
                "over the stored body"
            )
        raise EquivocationError(
            f"equivocation: {body.origin} seq {body.seq} has a different signed body "
            "than the one stored"
        )
    if body.seq > next_seq:
        raise OrderingError(f"out of order: {body.origin} expects seq {next_seq}, got {body.seq}")
    if body.prev != head_id:
        raise EquivocationError(
            f"equivocation: {body.origin} seq {body.seq} extends a different seq "
            f"{body.seq - 1} than the one stored"
        )
    return Decision.APPEND
