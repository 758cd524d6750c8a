"""Fork resolution: what a node does with a roster's word on a forked log.

A roster version may carry :class:`~node.core.roster.ForkResolution` records
``(origin, size n, root R)``: the canonical history of ``origin``'s log is
the one whose first ``n`` entries have root ``R``. Governance signs it with
its threshold, so no single node decides which branch wins.

Given the resolution, what the node holds of the origin's log (``held``
entries; its own root at ``n`` when it holds that many) and the evidence it
holds against the origin, :func:`plan` decides, purely:

- which evidence the resolution settles (:func:`settles`): every piece
  whose two histories may part inside the canonical prefix, i.e. whose
  :func:`divergence_bound` is below ``n`` (the canonical history says which
  side was right). That covers all evidence with a fork point at most
  ``n``, and also later evidence of the same fork: the losing branch
  continued beyond ``n`` (two entries at seq ``t >= n`` with different
  ``prev``). Only two entries at one seq ``t >= n`` naming the same
  ``prev`` prove a new fork, beyond the resolution; it stays unresolved and
  refuses the origin from ``t + 1``;
- whether the node's log is *confirmed*: it holds at least ``n`` entries and
  its root at ``n`` is ``R``. Nothing is voided;
- otherwise which prefix it keeps: entries ``[0, keep)`` stay, ``[keep,
  held)`` are voided (moved out of the live tables, never deleted), and the
  node re-syncs the canonical branch, refusing the entry at seq ``n - 1``
  unless it makes the root at ``n`` equal ``R`` (see ``node/store/tree.py``).

``keep`` is where the node can tell, from the evidence alone, that the two
histories still agreed (:func:`divergence_bound`): for two entries at seq
``s`` naming the same ``prev`` that is exactly ``s``; for any other
evidence the place where the histories part is not in the evidence, so the
node keeps nothing it cannot vouch for (0). A node holding fewer than ``n``
entries and no evidence keeps what it holds and lets the check at ``n``
decide.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from node.core import evidence as ev
from node.core.entry import SignedEntry
from node.core.roster import ForkResolution
from node.errors import ValidationError


def fork_point_of(proof: ev.ForkProof) -> int:
    """The fork point of stored (already verified) evidence, from its structure."""
    if proof.kind is ev.EvidenceKind.ENTRY_FORK:
        return ev.entry_fork_point(proof)
    return ev.checkpoint_size(proof.a)


def divergence_bound(proof: ev.ForkProof) -> int:
    """The lowest seq at which the evidence shows the two histories may differ.

    Exact for two entries at one seq with one ``prev``; 0 (nothing can be
    vouched for) when the evidence does not say where the histories part.
    """
    if proof.kind is ev.EvidenceKind.ENTRY_FORK:
        a, b = SignedEntry.from_bytes(proof.a), SignedEntry.from_bytes(proof.b)
        if a.body.seq == b.body.seq and a.body.prev == b.body.prev:
            return a.body.seq
    return 0


def settles(res: ForkResolution, proof: ev.ForkProof) -> bool:
    """Whether ``res`` settles ``proof`` (its histories may part below ``res.size``)."""
    return proof.origin == res.origin and divergence_bound(proof) < res.size


def check_resolution(res: ForkResolution, fork_point: int | None) -> None:
    """Refuse a resolution that settles none of the evidence held here."""
    if fork_point is not None and res.size < fork_point:
        raise ValidationError(
            f"resolution of {res.origin} names size {res.size}, below its fork point "
            f"{fork_point}: it must name the canonical history at or beyond the fork point"
        )


@dataclass(frozen=True, slots=True)
class Plan:
    """What applying one resolution does at one node."""

    confirmed: bool  # the node's log already holds the canonical prefix
    keep: int  # entries [0, keep) stay live; [keep, held) are voided
    fork_point: int | None  # what stays refused: the lowest unresolved fork point
    resolved: int  # how many evidence records the resolution settles


def plan(
    res: ForkResolution,
    held: int,
    root_at_size: bytes | None,
    evidence: Sequence[ev.ForkProof],
) -> Plan:
    """Decide what to keep, void and refuse (see the module docstring).

    ``root_at_size`` is the node's root at ``res.size`` (None when it holds
    fewer entries); ``evidence`` is every record held against ``res.origin``.
    Raises ValidationError for a resolution below every fork point held.
    """
    for proof in evidence:
        if proof.origin != res.origin:
            raise ValidationError(f"evidence against {proof.origin} given for {res.origin}")
    points = [(fork_point_of(p), p) for p in evidence]
    check_resolution(res, min((f for f, _ in points), default=None))
    settled = [p for _, p in points if settles(res, p)]
    left = [f for f, p in points if not settles(res, p)]
    fork_point = min(left, default=None)
    if held >= res.size and root_at_size == res.root:
        return Plan(True, held, fork_point, len(settled))
    if settled:
        keep = min(held, *(divergence_bound(p) for p in settled))
    else:
        keep = 0 if held >= res.size else held  # losing, and nothing says where
    return Plan(False, keep, fork_point, len(settled))
