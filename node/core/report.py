"""Incident and transparency reports, computed from signed entries only.

A report is a pure function of a set of verified signed entries (every
origin's log from seq 0, hash chain checked) and the trust view. Nothing in
it is a node's say-so: each figure names the entries it was computed from,
so a reader holding the same entries gets the same numbers, and the
per-origin coverage (entries read, head entry id, RFC 6962 root over the
signed entries) says exactly which log prefix was read.

Checkpoints: a caller may pass each origin's verified signed checkpoint; the
origin's entries must then be exactly the log prefix it commits to (same
size, same root) and :class:`OriginCoverage` carries the note, so every
figure traces to a root the origin signed. Origins with no checkpoint (a
key-only submitter signs none) are covered by their root alone.

Times: ``published`` is the submitter's signing time (``time_ms`` of the
ADD entry); arrival, first match and first action come from each platform's
own signed ACTION_REPORT (its node's clock). Time to action is first action
minus publication; propagation is arrival minus publication.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from node.core.entry import ZERO_ID, Kind, SignedEntry
from node.core.feedback import (
    Aggregate,
    MemberLookup,
    Report,
    Stored,
    Vote,
    aggregate,
)
from node.core.merkle import MemoryTree
from node.core.trust import Member, MemberKind
from node.errors import ValidationError

# -- the verified entry set ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OriginCoverage:
    origin: str
    size: int  # entries of this origin read (seq 0 .. size-1)
    head_id: bytes  # entry id of seq size-1: commits to the whole chain
    root: bytes  # RFC 6962 root over the signed entries read
    checkpoint: str = ""  # the origin's signed checkpoint note of this size and root, if any


class Ledger:
    """Entries indexed for reports. Each origin's entries must be its log from
    seq 0 with an intact hash chain (they are, as ``Pull`` serves them)."""

    def __init__(
        self,
        entries: Iterable[SignedEntry],
        lookup: MemberLookup,
        checkpoints: Mapping[str, tuple[int, bytes, str]] | None = None,
    ) -> None:
        """``checkpoints``: origin -> (size, root, signed note), verified by
        the caller; the origin's entries must be exactly that prefix."""
        self.lookup = lookup
        self.by_id: dict[bytes, SignedEntry] = {}
        self.by_origin: dict[str, list[SignedEntry]] = {}
        for e in entries:
            self.by_origin.setdefault(e.body.origin, []).append(e)
        coverage = []
        for origin in sorted(self.by_origin):
            chain = sorted(self.by_origin[origin], key=lambda e: e.body.seq)
            tree = MemoryTree()
            prev = ZERO_ID
            for i, e in enumerate(chain):
                if e.body.seq != i:
                    raise ValidationError(
                        f"origin {origin}: expected seq {i}, got {e.body.seq}: "
                        "a report needs each origin's whole log prefix"
                    )
                if e.body.prev != prev:
                    raise ValidationError(f"origin {origin} seq {i}: hash chain broken")
                prev = e.entry_id
                tree.append(e.to_bytes())
                self.by_id[e.entry_id] = e
            self.by_origin[origin] = chain
            note = ""
            if checkpoints and origin in checkpoints:
                size, root, note = checkpoints[origin]
                if size != len(chain) or root != tree.root():
                    raise ValidationError(
                        f"origin {origin}: the {len(chain)} entries read do not match its "
                        f"signed checkpoint of size {size}"
                    )
            coverage.append(OriginCoverage(origin, len(chain), prev, tree.root(), note))
        self.coverage = tuple(coverage)
        self._feedback: dict[bytes, list[SignedEntry]] = {}
        self.retracted_by: dict[bytes, bytes] = {}
        for origin in sorted(self.by_origin):
            for e in self.by_origin[origin]:
                if e.body.kind == Kind.ADD:
                    continue
                self._feedback.setdefault(e.body.target, []).append(e)
                target = self.by_id.get(e.body.target)
                if (
                    e.body.kind == Kind.RETRACT
                    and target is not None
                    and target.body.origin == origin
                ):
                    self.retracted_by.setdefault(e.body.target, e.entry_id)

    def adds(self) -> list[SignedEntry]:
        return [
            e for o in sorted(self.by_origin) for e in self.by_origin[o] if e.body.kind == Kind.ADD
        ]

    def aggregate(self, target: SignedEntry) -> Aggregate:
        items = [
            Stored(e, self.retracted_by.get(e.entry_id, b""))
            for e in self._feedback.get(target.entry_id, [])
        ]
        return aggregate(target, items, self.lookup)


# -- statistics ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Distribution:
    n: int
    min: int
    median: int
    p90: int
    max: int

    @classmethod
    def of(cls, values: Iterable[int]) -> Distribution | None:
        xs = sorted(values)
        if not xs:
            return None
        return cls(len(xs), xs[0], _rank(xs, 50), _rank(xs, 90), xs[-1])


def _rank(xs: Sequence[int], pct: int) -> int:
    """Nearest-rank percentile (a value that occurs in the data)."""
    k = max(1, -(-pct * len(xs) // 100))  # ceil(pct/100 * n)
    return xs[k - 1]


# -- incident report -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IncidentHash:
    entry_id: bytes
    origin: str
    algorithm: str
    hash: bytes
    labels: tuple[str, ...]  # effective labels
    published_ms: int
    urgent: bool
    retracted_by: bytes
    relabelled_by: bytes
    endorsements: tuple[Vote, ...]
    disputes: tuple[Vote, ...]


@dataclass(frozen=True, slots=True)
class HashActions:
    """One member's signed report on one hash."""

    target: bytes
    published_ms: int
    report: Report

    @property
    def time_to_action_ms(self) -> int | None:
        first = self.report.counts.first_action_ms
        return first - self.published_ms if first else None

    @property
    def propagation_ms(self) -> int:
        return self.report.counts.arrival_ms - self.published_ms


@dataclass(frozen=True, slots=True)
class MemberActions:
    member: str
    kind: str
    jurisdiction: str
    rows: tuple[HashActions, ...]

    def total(self, name: str) -> int:
        return sum(int(getattr(r.report.counts, name)) for r in self.rows)

    @property
    def time_to_action(self) -> Distribution | None:
        return Distribution.of(t for r in self.rows if (t := r.time_to_action_ms) is not None)

    @property
    def propagation(self) -> Distribution | None:
        return Distribution.of(r.propagation_ms for r in self.rows)

    @property
    def sources(self) -> tuple[bytes, ...]:
        return tuple(r.report.entry_id for r in self.rows)


@dataclass(frozen=True, slots=True)
class IncidentReport:
    incident: str
    node_id: str
    generated_ms: int
    hashes: tuple[IncidentHash, ...]
    members: tuple[MemberActions, ...]
    silent: tuple[str, ...]  # platforms that filed no report on any of the hashes
    coverage: tuple[OriginCoverage, ...]


def incident_report(
    ledger: Ledger, incident: str, *, node_id: str, generated_ms: int, platforms: Sequence[str]
) -> IncidentReport:
    hashes: list[IncidentHash] = []
    rows: dict[str, list[HashActions]] = {}
    for e in ledger.adds():
        if e.body.incident != incident:
            continue
        agg = ledger.aggregate(e)
        hashes.append(
            IncidentHash(
                e.entry_id,
                e.body.origin,
                e.body.algorithm,
                e.body.hash,
                agg.labels,
                e.body.time_ms,
                e.body.urgent,
                ledger.retracted_by.get(e.entry_id, b""),
                agg.relabelled_by,
                agg.endorsements,
                agg.disputes,
            )
        )
        for r in agg.reports:
            rows.setdefault(r.member, []).append(HashActions(e.entry_id, e.body.time_ms, r))
    if not hashes:
        raise ValidationError(f"no entries of incident {incident!r} in the log read")
    members = []
    for name in sorted(rows):
        first = rows[name][0].report
        members.append(
            MemberActions(name, first.member_kind, first.jurisdiction, tuple(rows[name]))
        )
    silent = tuple(sorted(p for p in platforms if p not in rows))
    return IncidentReport(
        incident, node_id, generated_ms, tuple(hashes), tuple(members), silent, ledger.coverage
    )


# -- transparency report ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Count:
    key: str
    count: int
    sources: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class SubmitterRates:
    member: str
    kind: str
    jurisdiction: str
    adds: tuple[bytes, ...]
    disputed: tuple[bytes, ...]  # entries with at least one counted dispute
    retracted: tuple[bytes, ...]
    relabelled: tuple[bytes, ...]

    def rate(self, name: str) -> float:
        n = len(self.adds)
        return len(getattr(self, name)) / n if n else 0.0


#: A member's action-report rows in a transparency report: the same shape
#: and figures as in an incident report.
MemberReporting = MemberActions


@dataclass(frozen=True, slots=True)
class TransparencyReport:
    node_id: str
    generated_ms: int
    since_ms: int
    until_ms: int
    adds: tuple[bytes, ...]
    by_label: tuple[Count, ...]
    by_kind: tuple[Count, ...]
    by_jurisdiction: tuple[Count, ...]
    dispute_reasons: tuple[Count, ...]
    submitters: tuple[SubmitterRates, ...]
    members: tuple[MemberReporting, ...]
    coverage: tuple[OriginCoverage, ...]


def _counts(groups: Mapping[str, list[bytes]]) -> tuple[Count, ...]:
    return tuple(
        Count(k, len(v), tuple(v))
        for k, v in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    )


def transparency_report(
    ledger: Ledger, *, since_ms: int, until_ms: int, node_id: str, generated_ms: int
) -> TransparencyReport:
    """ADD entries signed in [since_ms, until_ms), with their feedback as it stands."""
    by_label: dict[str, list[bytes]] = {}
    by_kind: dict[str, list[bytes]] = {}
    by_jurisdiction: dict[str, list[bytes]] = {}
    reasons: dict[str, list[bytes]] = {}
    per_submitter: dict[str, dict[str, list[bytes]]] = {}
    reporting: dict[str, list[HashActions]] = {}
    adds: list[bytes] = []
    for e in ledger.adds():
        if not since_ms <= e.body.time_ms < until_ms:
            continue
        eid = e.entry_id
        adds.append(eid)
        agg = ledger.aggregate(e)
        member = ledger.lookup(e.body.origin)
        kind = member.kind.value if member else "former member"
        jurisdiction = member.jurisdiction if member else "??"
        for label in agg.labels or ("(no label)",):
            by_label.setdefault(label, []).append(eid)
        by_kind.setdefault(kind, []).append(eid)
        by_jurisdiction.setdefault(jurisdiction, []).append(eid)
        for d in agg.disputes:
            reasons.setdefault(d.reason.text if d.reason else "?", []).append(d.entry_id)
        s = per_submitter.setdefault(
            e.body.origin,
            {"adds": [], "disputed": [], "retracted": [], "relabelled": [], "meta": []},
        )
        s["adds"].append(eid)
        if agg.disputes:
            s["disputed"].append(eid)
        if eid in ledger.retracted_by:
            s["retracted"].append(eid)
        if agg.relabelled_by:
            s["relabelled"].append(eid)
        for r in agg.reports:
            reporting.setdefault(r.member, []).append(HashActions(eid, e.body.time_ms, r))
    submitters = []
    for origin in sorted(per_submitter):
        s = per_submitter[origin]
        member = ledger.lookup(origin)
        submitters.append(
            SubmitterRates(
                origin,
                member.kind.value if member else "former member",
                member.jurisdiction if member else "??",
                tuple(s["adds"]),
                tuple(s["disputed"]),
                tuple(s["retracted"]),
                tuple(s["relabelled"]),
            )
        )
    members = []
    for name in sorted(reporting):
        first = reporting[name][0].report
        members.append(
            MemberReporting(name, first.member_kind, first.jurisdiction, tuple(reporting[name]))
        )
    return TransparencyReport(
        node_id,
        generated_ms,
        since_ms,
        until_ms,
        tuple(adds),
        _counts(by_label),
        _counts(by_kind),
        _counts(by_jurisdiction),
        _counts(reasons),
        tuple(submitters),
        tuple(members),
        ledger.coverage,
    )


def platforms_of(members: Iterable[Member]) -> list[str]:
    """Member ids of kind platform (for 'who filed no report')."""
    return sorted(m.id for m in members if m.kind is MemberKind.PLATFORM)
