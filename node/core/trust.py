"""Who may speak for which member: the trust view used to verify entries.

The rest of the node asks only "which member is this, and may this key
publish this entry?". A running node answers from the newest roster it has
adopted (``node/rosters.py``, rules in ``node/core/roster.py``); pure code
and tests may use any :class:`TrustView`, e.g. a :class:`Roster` itself or a
:class:`MembersFile` (a static, unsigned list of members).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from node.core.entry import SignedEntry, verify_signature
from node.core.roster import (
    EntryKey,
    Member,
    MemberKind,
    Role,
    Standing,
    default_roles,
    may_publish,
    public_key_from_raw,
    raw_public_key,
)
from node.errors import ProvenanceError, ValidationError

__all__ = [
    "EntryKey",
    "Member",
    "MemberKind",
    "MemberLookup",
    "MembersFile",
    "Role",
    "Standing",
    "TrustView",
    "check_provenance",
    "default_roles",
    "may_publish",
    "public_key_from_raw",
    "raw_public_key",
    "standing_of",
]


class MemberLookup(Protocol):
    def member(self, member_id: str) -> Member: ...


class TrustView(MemberLookup, Protocol):
    """The seam between the node and whatever says who the members are."""

    def members(self) -> tuple[Member, ...]: ...


@dataclass(frozen=True, slots=True)
class MembersFile:
    """A static trust view: a list of members with no signatures or history.

    For pure code and tests; a node trusts only a threshold-signed roster.
    """

    by_id: dict[str, Member]

    def member(self, member_id: str) -> Member:
        try:
            return self.by_id[member_id]
        except KeyError:
            raise ProvenanceError(f"unknown origin {member_id!r}: not a member") from None

    def members(self) -> tuple[Member, ...]:
        return tuple(self.by_id.values())

    @classmethod
    def of(cls, members: list[Member]) -> MembersFile:
        by_id: dict[str, Member] = {}
        for m in members:
            if m.id in by_id:
                raise ValidationError(f"member {m.id} is listed twice")
            by_id[m.id] = m
        return cls(by_id)


def check_provenance(trust: MemberLookup, entry: SignedEntry) -> Member:
    """The origin is a member allowed to publish this entry, and signed it.

    Checks, in order: the origin is a member; the key is one of its entry
    keys; the member is not revoked (past its keys' cut-offs); its roles
    allow the entry kind; the seq is within the key's ``valid_until_seq``;
    the signature. Returns the member; raises ProvenanceError naming what
    failed.
    """
    member = trust.member(entry.body.origin)
    verify_signature(entry, member.check_entry(entry.body))
    return member


def standing_of(trust: MemberLookup, entry: SignedEntry) -> Standing:
    """How a stored entry's origin stands now (for match answers)."""
    try:
        member = trust.member(entry.body.origin)
    except ProvenanceError:
        return Standing.UNKNOWN_ORIGIN
    return member.standing(entry.body)
