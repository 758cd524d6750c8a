"""The node's application service: verify, store, notify, answer.

Both the RPC servicer and the sync engine call this; it owns the store, the
trust view, the match indexes and the change notifier. It contains no gRPC
and no network I/O.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from node.accountability import Accountability
from node.core.entry import SignedEntry
from node.core.feedback import Aggregate
from node.core.hashes import algorithm
from node.core.policy import Decision
from node.core.trust import Member, TrustView, check_provenance
from node.errors import NodeError, NotFoundError, ValidationError
from node.store.base import Head, IngestResult
from node.store.lmdb_store import LmdbStore
from node.store.matchlog import MatchLog

log = logging.getLogger(__name__)

MAX_SUBMIT_BATCH = 1000
MAX_MATCH_BATCH = 10_000


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Changes:
    """Wakes every waiter when new entries commit (no missed wake-ups)."""

    def __init__(self) -> None:
        self.version = 0
        self.closed = False
        self._event = asyncio.Event()

    def close(self) -> None:
        """Wake every waiter for good: follow streams end (node shutdown)."""
        self.closed = True
        self.notify()

    def notify(self) -> None:
        self.version += 1
        self._event.set()
        self._event = asyncio.Event()

    async def wait_past(self, version: int, timeout: float) -> None:
        if self.version != version:
            return
        event = self._event
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            return


@dataclass(frozen=True, slots=True)
class MatchHit:
    entry: SignedEntry
    member: Member | None  # None if the origin is no longer a member
    arrival_ms: int
    retracted_by: bytes
    distance: int
    action: str
    rule: str = ""  # the policy rule that recommended ``action``
    feedback: Aggregate | None = None


class NodeApp:
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
        self.accountability = Accountability(
            node_id, store, trust, policy_path=policy_path, matchlog=matchlog
        )
        self.changes = Changes()
        self._listeners: list[Callable[[Sequence[SignedEntry]], None]] = []

    def on_commit(self, listener: Callable[[Sequence[SignedEntry]], None]) -> None:
        self._listeners.append(listener)

    # -- writes --------------------------------------------------------------

    def verify(self, entries: Sequence[SignedEntry]) -> list[NodeError | None]:
        """Check each entry's provenance; None where it is good."""
        out: list[NodeError | None] = []
        for entry in entries:
            try:
                check_provenance(self.trust, entry)
            except NodeError as exc:
                out.append(exc)
            else:
                out.append(None)
        return out

    def submit(self, entries: Sequence[SignedEntry]) -> IngestResult:
        """All-or-nothing: verify every entry, then commit them in one txn."""
        if not entries:
            raise ValidationError(f"empty batch: expected 1..{MAX_SUBMIT_BATCH} entries")
        if len(entries) > MAX_SUBMIT_BATCH:
            raise ValidationError(
                f"batch of {len(entries)} entries: expected at most {MAX_SUBMIT_BATCH}"
            )
        for i, error in enumerate(self.verify(entries)):
            if error is not None:
                where = f"entry {i + 1} of {len(entries)}: " if len(entries) > 1 else ""
                raise type(error)(where + str(error))
        result = self.store.ingest(entries, atomic=True, now_ms=now_ms())
        if result.errors:
            raise result.errors[0][1]
        self._committed(result)
        return result

    def ingest_from_peer(self, peer: str, entries: Sequence[SignedEntry]) -> IngestResult:
        """Entries relayed by a peer: already verified by the caller."""
        result = self.store.ingest(entries, atomic=False, peer=peer, now_ms=now_ms())
        self._committed(result)
        return result

    def _committed(self, result: IngestResult) -> None:
        if result.evidence:
            log.warning("equivocation evidence recorded (%d); see `ccnode status`", result.evidence)
        if not result.accepted:
            return
        for listener in self._listeners:
            listener(result.accepted)
        self.changes.notify()

    # -- reads ---------------------------------------------------------------

    def heads(self) -> dict[str, Head]:
        return self.store.heads()

    def get(self, entry_id: bytes) -> MatchHit:
        if len(entry_id) != 32:
            raise ValidationError(f"entry id has {len(entry_id)} bytes: expected 32")
        stored = self.store.get(entry_id)
        if stored is None:
            raise NotFoundError(f"entry {entry_id.hex()} is not stored here")
        return self._hit(stored.entry, stored.arrival_ms, stored.retracted_by, 0)

    def match(
        self,
        queries: Sequence[tuple[str, bytes]],
        *,
        include_retracted: bool = False,
        record: bool = False,
    ) -> list[list[MatchHit]]:
        if not queries:
            raise ValidationError(f"empty batch: expected 1..{MAX_MATCH_BATCH} queries")
        if len(queries) > MAX_MATCH_BATCH:
            raise ValidationError(
                f"batch of {len(queries)} queries: expected at most {MAX_MATCH_BATCH}"
            )
        for i, (name, value) in enumerate(queries):
            try:
                algorithm(name).check(value)
            except ValidationError as exc:
                where = f"query {i + 1} of {len(queries)}: " if len(queries) > 1 else ""
                raise ValidationError(where + str(exc)) from None
        out: list[list[MatchHit]] = []
        for ids in self.store.lookup_many(queries):
            hits: list[MatchHit] = []
            for entry_id in ids:
                stored = self.store.get(entry_id)
                if stored is None:
                    continue
                if stored.retracted_by and not include_retracted:
                    continue
                hits.append(self._hit(stored.entry, stored.arrival_ms, stored.retracted_by, 0))
            out.append(hits)
        if record:
            self.accountability.record_matches(
                [
                    (h.entry.entry_id, h.action, h.rule)
                    for hs in out
                    for h in hs
                    if not h.retracted_by
                ],
                now_ms(),
            )
        return out

    def explain(self, entry_id: bytes) -> tuple[MatchHit, Decision | None]:
        """The entry as a match answer, and the policy's rule-by-rule reasoning."""
        hit = self.get(entry_id)
        verdict = self.accountability.verdict(hit.entry, hit.retracted_by, explain=True)
        return hit, verdict.decision

    def _hit(self, entry: SignedEntry, arrival: int, retracted_by: bytes, dist: int) -> MatchHit:
        try:
            member: Member | None = self.trust.member(entry.body.origin)
        except NodeError:
            member = None
        verdict = self.accountability.verdict(entry, retracted_by)
        return MatchHit(
            entry,
            member,
            arrival,
            retracted_by,
            dist,
            verdict.action,
            verdict.rule,
            verdict.feedback,
        )
