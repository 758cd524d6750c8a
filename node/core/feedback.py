"""Feedback entries: what members say about each other's entries.

Every feedback entry is an ordinary signed entry of its author's log whose
``target`` is the 32-byte id of the entry it acts on. Kind by kind (fields
not listed must be empty):

==============  =============================================================
kind            content
==============  =============================================================
ENDORSE         target: an ADD entry of another member; empty payload
DISPUTE         target: an ADD entry of another member;
                payload: ``u8 version (1) || u8 reason code`` (DisputeReason)
RELABEL         target: an ADD entry of the same member; ``labels``: the
                complete new label set (at least one); empty payload
RETRACT         target: any entry of the same member; empty payload
ACTION_REPORT   target: an ADD entry; payload: ActionCounts (below);
                aggregate numbers only, never user data
==============  =============================================================

``incident`` on a feedback entry is empty or the target's incident.

Payload encodings are in ``node/core/payloads.py``. An action report is
cumulative: a member's later report on a target supersedes its earlier one,
so a reader takes the latest (highest seq) per member.

Two places apply the rules, and they must agree:

- :func:`check_submission` refuses, with an exact error, a feedback entry
  *submitted* to a node that breaks a rule (the author's own node sees it
  first, so an honest member never publishes one);
- :func:`aggregate` *counts* stored feedback deterministically, whatever
  order entries arrived in. Entries relayed by peers are never refused for
  feedback rules: a refused entry would stall its author's whole hash chain
  at this node, and nodes that saw entries in another order would disagree.
  Instead a relayed entry that breaks a rule is stored and not counted: a
  vote on one's own entry, a relabel or retraction of another member's
  entry, feedback from a member no longer in the trust view, feedback the
  trust view no longer accepts (judged by its seq like any entry: a revoked
  member's feedback after its cut-off, or all of it with no cut-off; a
  vote after the member's ENDORSE role was removed).

A revoked member's votes up to its cut-off count, flagged ``revoked``.

Counting rules: one vote per member per target, the latest (highest seq)
ENDORSE or DISPUTE of that member superseding earlier ones; a retracted vote
means no vote; the submitter's own votes are not counted; the effective
labels are those of the submitter's latest unretracted RELABEL.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from node.core import labels as labels_mod
from node.core.entry import EntryBody, Kind, SignedEntry, a_an
from node.core.payloads import ActionCounts, DisputeReason, decode_dispute, encode_dispute
from node.core.trust import Member
from node.errors import ConflictError, OrderingError, ValidationError

__all__ = [
    "ActionCounts",
    "Aggregate",
    "DisputeReason",
    "MemberLookup",
    "Report",
    "Stored",
    "Tally",
    "Vote",
    "aggregate",
    "check_submission",
    "current_vote",
    "decode_dispute",
    "encode_dispute",
]

VOTE_KINDS = frozenset({Kind.ENDORSE, Kind.DISPUTE})
FEEDBACK_KINDS = frozenset(
    {Kind.RETRACT, Kind.ENDORSE, Kind.DISPUTE, Kind.RELABEL, Kind.ACTION_REPORT}
)

_VERB = {
    Kind.RETRACT: "retracts",
    Kind.ENDORSE: "endorses",
    Kind.DISPUTE: "disputes",
    Kind.RELABEL: "relabels",
    Kind.ACTION_REPORT: "reports actions on",
}


# -- submission rules ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Stored:
    """A stored entry as the rules see it."""

    entry: SignedEntry
    retracted_by: bytes = b""


def _where(entry: SignedEntry) -> str:
    body = entry.body
    return f"{body.origin} seq {body.seq} {_VERB[body.kind]} {body.target.hex()[:16]}"


def check_submission(
    entry: SignedEntry, target: Stored | None, own_feedback: Sequence[Stored]
) -> None:
    """Refuse a feedback entry submitted here that breaks a rule.

    ``target`` is the stored target (None if not stored here);
    ``own_feedback`` the stored feedback entries of the same author on the
    same target. Raises the exact error; returns None for other kinds.
    """
    body = entry.body
    if body.kind not in FEEDBACK_KINDS:
        return
    where = _where(entry)
    if target is None:
        # One rule for every kind, RETRACT included: the target may exist in
        # the federation without having reached this node (docs/policy.md).
        raise OrderingError(f"{where}, which is not stored here yet: pull it first")
    tbody = target.entry.body
    if body.kind == Kind.RETRACT:
        if tbody.origin != body.origin:
            raise ValidationError(
                f"{body.origin} seq {body.seq} retracts an entry of another member "
                f"({tbody.origin}): only the submitter may retract"
            )
        if target.retracted_by:
            raise ConflictError(
                f"{where}, which is already retracted by {target.retracted_by.hex()[:16]}"
            )
        return
    if tbody.kind != Kind.ADD:
        raise ValidationError(f"{where}, {a_an(tbody.kind.name)} entry: expected an ADD entry")
    if body.incident and body.incident != tbody.incident:
        raise ValidationError(
            f"{where}: names incident {body.incident!r}, but its target is in "
            f"incident {tbody.incident!r}: expected empty or the same"
        )
    if body.kind == Kind.RELABEL:
        if tbody.origin != body.origin:
            raise ValidationError(
                f"{body.origin} seq {body.seq} relabels an entry of another member "
                f"({tbody.origin}): only the submitter may relabel"
            )
        if target.retracted_by:
            raise ValidationError(f"{where}, which was retracted by its submitter")
        return
    if body.kind == Kind.ACTION_REPORT:
        return
    # ENDORSE / DISPUTE
    if tbody.origin == body.origin:
        if body.kind == Kind.ENDORSE:
            raise ValidationError(
                f"{body.origin} seq {body.seq} endorses its own entry "
                f"{body.target.hex()[:16]}: self-endorsement is not counted"
            )
        raise ValidationError(
            f"{body.origin} seq {body.seq} disputes its own entry "
            f"{body.target.hex()[:16]}: retract or relabel it instead"
        )
    if target.retracted_by:
        raise ValidationError(f"{where}, which was retracted by its submitter")
    current = current_vote(own_feedback)
    if current is not None and _same_vote(current.entry.body, body):
        what = "endorses" if body.kind == Kind.ENDORSE else "disputes"
        detail = f" ({decode_dispute(body.payload).text})" if body.kind == Kind.DISPUTE else ""
        raise ConflictError(
            f"{body.origin} already {what} {body.target.hex()[:16]}{detail} "
            f"(entry {current.entry.entry_id.hex()[:16]}): one vote per member per target"
        )


def _same_vote(a: EntryBody, b: EntryBody) -> bool:
    return a.kind == b.kind and a.payload == b.payload


def current_vote(items: Sequence[Stored]) -> Stored | None:
    """One author's current vote among its feedback on one target."""
    votes = [i for i in items if i.entry.body.kind in VOTE_KINDS]
    if not votes:
        return None
    latest = max(votes, key=lambda i: i.entry.body.seq)
    return None if latest.retracted_by else latest


# -- aggregation ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Vote:
    member: str
    member_kind: str  # MemberKind value
    jurisdiction: str
    kind: Kind  # ENDORSE or DISPUTE
    reason: DisputeReason | None
    entry_id: bytes
    time_ms: int
    revoked: bool = False  # its member is revoked since: the vote predates the cut-off


@dataclass(frozen=True, slots=True)
class Tally:
    member_kind: str
    jurisdiction: str
    count: int


@dataclass(frozen=True, slots=True)
class Report:
    member: str
    member_kind: str
    jurisdiction: str
    entry_id: bytes
    time_ms: int
    counts: ActionCounts


@dataclass(frozen=True, slots=True)
class Aggregate:
    """Feedback on one ADD entry as counted here."""

    labels: tuple[str, ...]  # effective labels
    votes: tuple[Vote, ...] = ()  # current counted votes, by member id
    relabelled_by: bytes = b""  # the RELABEL giving ``labels``; b"" if none
    relabels: int = 0  # unretracted RELABELs by the submitter
    reports: tuple[Report, ...] = ()  # latest ACTION_REPORT per member
    uncounted: tuple[bytes, ...] = field(default=())  # stored, breaking a rule

    @property
    def endorsements(self) -> tuple[Vote, ...]:
        return tuple(v for v in self.votes if v.kind == Kind.ENDORSE)

    @property
    def disputes(self) -> tuple[Vote, ...]:
        return tuple(v for v in self.votes if v.kind == Kind.DISPUTE)

    def tallies(self, kind: Kind) -> tuple[Tally, ...]:
        counts: dict[tuple[str, str], int] = {}
        for v in self.votes:
            if v.kind == kind:
                key = (v.member_kind, v.jurisdiction)
                counts[key] = counts.get(key, 0) + 1
        return tuple(Tally(k, j, n) for (k, j), n in sorted(counts.items()))


MemberLookup = Callable[[str], Member | None]


def aggregate(target: SignedEntry, items: Sequence[Stored], lookup: MemberLookup) -> Aggregate:
    """Count the stored feedback ``items`` whose target is ``target``.

    Deterministic in the set of items (not their order). ``lookup`` gives the
    current member for an id, or None if it is no longer a member.
    """
    tbody = target.body
    if tbody.kind != Kind.ADD:
        return Aggregate(labels=tbody.labels)
    by_author: dict[str, list[Stored]] = {}
    uncounted: list[bytes] = []
    for item in items:
        body = item.entry.body
        if body.target != target.entry_id:
            raise ValidationError("aggregate: an item targets another entry")
        own = body.origin == tbody.origin
        writer = lookup(body.origin)
        breaks = (
            (body.kind in VOTE_KINDS and own)
            or (body.kind in (Kind.RELABEL, Kind.RETRACT) and not own)
            or (body.incident and body.incident != tbody.incident)
            or writer is None
            or not writer.accepts(body)
        )
        if breaks:
            uncounted.append(item.entry.entry_id)
            continue
        by_author.setdefault(body.origin, []).append(item)

    votes: list[Vote] = []
    reports: list[Report] = []
    for author in sorted(by_author):
        mine = by_author[author]
        member = lookup(author)
        if member is None:  # pragma: no cover - filtered above
            continue
        vote = current_vote(mine)
        if vote is not None:
            vb = vote.entry.body
            votes.append(
                Vote(
                    author,
                    member.kind.value,
                    member.jurisdiction,
                    vb.kind,
                    decode_dispute(vb.payload) if vb.kind == Kind.DISPUTE else None,
                    vote.entry.entry_id,
                    vb.time_ms,
                    revoked=member.revoked,
                )
            )
        filed = [i for i in mine if i.entry.body.kind == Kind.ACTION_REPORT and not i.retracted_by]
        if filed:
            latest = max(filed, key=lambda i: i.entry.body.seq)
            reports.append(
                Report(
                    author,
                    member.kind.value,
                    member.jurisdiction,
                    latest.entry.entry_id,
                    latest.entry.body.time_ms,
                    ActionCounts.decode(latest.entry.body.payload),
                )
            )
    relabels = [
        i
        for i in by_author.get(tbody.origin, [])
        if i.entry.body.kind == Kind.RELABEL and not i.retracted_by
    ]
    labels, relabelled_by = tbody.labels, b""
    if relabels:
        latest = max(relabels, key=lambda i: i.entry.body.seq)
        labels, relabelled_by = latest.entry.body.labels, latest.entry.entry_id
    return Aggregate(
        labels=labels_mod.check_labels(labels),
        votes=tuple(votes),
        relabelled_by=relabelled_by,
        relabels=len(relabels),
        reports=tuple(reports),
        uncounted=tuple(sorted(uncounted)),
    )
