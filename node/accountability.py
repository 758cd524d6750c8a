"""Policy, feedback views and the local match log: the accountability side of the app.

:class:`NodeApp` owns one :class:`Accountability`. It holds the node's
current :class:`~node.core.policy.Policy` (swapped whole on reload, so a
match never sees half a policy), counts the stored feedback on an entry
(:func:`node.core.feedback.aggregate`), turns both into the recommended
action, and keeps the local match log that signed action reports are built
from. No gRPC, no network I/O.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from node.core.entry import Kind, SignedEntry
from node.core.feedback import ActionCounts, Aggregate, aggregate
from node.core.policy import (
    DEFAULT_POLICY,
    AudioFacts,
    Decision,
    Policy,
    VideoFacts,
    facts_for,
    origin_status,
)
from node.core.roster import when
from node.core.trust import Member, Standing, TrustView
from node.errors import NodeError, NotFoundError, ValidationError
from node.store.lmdb_store import LmdbStore
from node.store.matchlog import Event, EventKind, MatchLog

log = logging.getLogger(__name__)

POLICY_FILE = "policy.toml"
MAX_ACTION_SKEW_MS = 60_000  # record-action --at may run this far ahead of the node's clock
NO_ACTION = "NONE"  # the recommended action for entries that are not ADDs


def load_policy(path: Path | None) -> Policy:
    """The policy in ``path``; the built-in default if there is no such file."""
    if path is None:
        return DEFAULT_POLICY
    try:
        text = path.read_text()
    except FileNotFoundError:
        return Policy(source=f"built-in default (no {path}): REVIEW every match")
    except OSError as exc:
        raise ValidationError(f"cannot read policy file {path}: {exc.strerror}") from None
    return Policy.loads(text, source=str(path))


@dataclass(frozen=True, slots=True)
class Verdict:
    action: str  # BLOCK | REVIEW | LOG_ONLY | IGNORE; NONE for non-ADD entries
    rule: str
    feedback: Aggregate
    decision: Decision | None = None


@dataclass(frozen=True, slots=True)
class ActionSummary:
    """What this node did about one matched entry, and whether it is reported."""

    entry_id: bytes
    incident: str
    counts: ActionCounts
    reported_by: bytes  # this node's latest ACTION_REPORT on it, b"" if none
    reported: bool  # that report already has these counts


class Accountability:
    def __init__(
        self,
        node_id: str,
        store: LmdbStore,
        trust: TrustView,
        *,
        policy_path: Path | None = None,
        matchlog: MatchLog | None = None,
    ) -> None:
        self.node_id = node_id
        self.store = store
        self.trust = trust
        self.policy_path = policy_path
        self.policy = load_policy(policy_path)
        self.matchlog = matchlog
        #: SETTLED HOOK. The transparency log sets this to say whether an entry
        #: is settled (cosigned by k of n witnesses). None means unknown, which
        #: the policy treats as not settled.
        self.settled: Callable[[bytes], bool | None] = lambda _entry_id: None

    # -- policy --------------------------------------------------------------

    def reload(self) -> Policy:
        """Re-read the policy file; on error keep the current policy and raise."""
        policy = load_policy(self.policy_path)
        self.policy = policy
        log.info("policy loaded from %s: %d rules", policy.source, len(policy.rules))
        return policy

    def member(self, member_id: str) -> Member | None:
        try:
            return self.trust.member(member_id)
        except NodeError:
            return None

    def feedback(self, entry: SignedEntry) -> Aggregate:
        return aggregate(entry, self.store.feedback_for(entry.entry_id), self.member)

    def verdict(
        self,
        entry: SignedEntry,
        retracted_by: bytes,
        *,
        explain: bool = False,
        settled: bool | None = None,
        distance: int = 0,
        standing: Standing = Standing.ACTIVE,
        equivocated: bool = False,
        video: VideoFacts | None = None,
        audio: AudioFacts | None = None,
    ) -> Verdict:
        """``settled``: known by the caller already; else asked of the hook.
        ``distance`` is the match's (0 for exact algorithms and for an entry
        looked at without a query); ``standing`` and ``equivocated`` say how
        its origin stands here; ``video``: how a video query matched this
        entry's video; ``audio``: how an audio query matched its soundtrack
        (the distance is then no fact: distance rules do not fire)."""
        feedback = self.feedback(entry)
        if entry.body.kind != Kind.ADD:
            return Verdict(NO_ACTION, "", feedback)
        facts = facts_for(
            entry.body,
            self.member(entry.body.origin),
            feedback,
            retracted=bool(retracted_by),
            settled=self.settled(entry.entry_id) if settled is None else settled,
            distance=distance,
            origin_status=origin_status(standing, equivocated=equivocated),
            video=video,
            audio=audio,
        )
        policy = self.policy  # read once: a reload swaps the whole object
        decision = policy.explain(facts) if explain else policy.evaluate(facts)
        return Verdict(decision.action.wire, decision.rule, feedback, decision)

    # -- match log -----------------------------------------------------------

    def _log(self) -> MatchLog:
        if self.matchlog is None:
            raise ValidationError("this node keeps no match log")
        return self.matchlog

    def record_matches(self, hits: Sequence[tuple[bytes, str, str]], now_ms: int) -> None:
        """Log (entry_id, recommended action, rule) match events."""
        if hits:
            self._log().record(
                [Event(now_ms, EventKind.MATCH, eid, 1, action, rule) for eid, action, rule in hits]
            )

    def record_action(
        self, entry_id: bytes, kind: EventKind, count: int, at_ms: int, *, now_ms: int = 0
    ) -> None:
        """Log ``count`` actions taken at ``at_ms``: not in the future (beyond
        a minute of clock skew), nor before the entry arrived here."""
        if len(entry_id) != 32:
            raise ValidationError(f"entry id has {len(entry_id)} bytes: expected 32")
        stored = self.store.get(entry_id)
        if stored is None:
            raise NotFoundError(f"entry {entry_id.hex()} is not stored here")
        if stored.entry.body.kind != Kind.ADD:
            raise ValidationError(
                f"entry {entry_id.hex()[:16]} is a {stored.entry.body.kind.name} entry: "
                "actions are taken on matched ADD entries"
            )
        now_ms = now_ms or at_ms
        if at_ms > now_ms + MAX_ACTION_SKEW_MS:
            raise ValidationError(
                f"action time {when(at_ms)} is in the future (now {when(now_ms)})"
            )
        if at_ms < stored.arrival_ms:
            raise ValidationError(
                f"action time {when(at_ms)} is before entry {entry_id.hex()[:16]} "
                f"arrived here ({when(stored.arrival_ms)}): an action must follow the match"
            )
        self._log().record([Event(at_ms, kind, entry_id, count)])

    def summaries(self, now_ms: int, *, unreported_only: bool = False) -> list[ActionSummary]:
        out: list[ActionSummary] = []
        for totals in self._log().totals():
            stored = self.store.get(totals.entry_id)
            if stored is None:  # pragma: no cover - matched entries are stored
                continue
            counts = ActionCounts(
                arrival_ms=stored.arrival_ms,
                first_match_ms=totals.first_match_ms,
                first_action_ms=totals.first_action_ms,
                as_of_ms=max(now_ms, totals.last_ms, stored.arrival_ms),
                matches=totals.matches,
                blocked_at_upload=totals.blocked_at_upload,
                removals=totals.removals,
                reviews=totals.reviews,
            )
            mine = [r for r in self.feedback(stored.entry).reports if r.member == self.node_id]
            reported_by = mine[0].entry_id if mine else b""
            reported = bool(mine) and mine[0].counts.same_counts(counts)
            if unreported_only and reported:
                continue
            out.append(
                ActionSummary(
                    totals.entry_id, stored.entry.body.incident, counts, reported_by, reported
                )
            )
        return out

    def prune(self, before_ms: int) -> tuple[int, int]:
        log_ = self._log()
        removed = log_.prune(before_ms)
        return removed, log_.count()
