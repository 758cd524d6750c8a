"""The node's application service: verify, store, notify, answer.

Both the RPC servicer and the sync engine call this; it owns the store, the
trust view, the match indexes and the change notifier. It contains no gRPC
and no network I/O.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.accountability import Accountability
from node.core.entry import (
    ENTRY_DOMAIN,
    MAX_ID_CANDIDATES,
    Kind,
    SignedEntry,
    check_id_text,
    key_id_of,
    pae,
    resolve_id_prefix,
    verify_signature,
)
from node.core.feedback import Aggregate
from node.core.hashes import ALGORITHMS, algorithm, check_not_trivial
from node.core.payloads import decode_quality
from node.core.policy import Decision, Policy, VideoFacts
from node.core.sigcheck import verify_many
from node.core.tlog import TlogPolicy
from node.core.trust import Member, Standing, TrustView, check_provenance, raw_public_key
from node.core.vpdq import VideoFrame
from node.errors import (
    EquivocationError,
    NodeError,
    NotFoundError,
    ProvenanceError,
    StorageError,
    UnavailableError,
    ValidationError,
)
from node.match.frames import FrameMatcher, QueryArrays
from node.match.matcher import PdqMatcher
from node.match.media import check_pdq_not_degenerate, check_pdq_quality
from node.match.negative import NegativeBank
from node.match.pdq_index import DEFAULT_RADIUS, MAX_RADIUS
from node.match.video import (
    FrameHits,
    QueryFrame,
    VideoScore,
    VideoThresholds,
    score_video,
)
from node.observe import ALERT_EQUIVOCATION, ALERT_MAP_FULL, NullObserver, Observer
from node.store.base import Head, IngestResult
from node.store.lmdb_store import LmdbStore
from node.store.matchlog import MatchLog
from node.store.writer import GroupWriter
from node.transparency import CheckResult, Transparency
from node.workers import die_with_parent

log = logging.getLogger(__name__)

MAX_SUBMIT_BATCH = 1000
MAX_MATCH_BATCH = 10_000
#: Query frames (all variants) per video Match request: 10 minutes of 30 fps
#: footage with its mirrored variant is 36,000, and 80,000 frames (~3.2 MB)
#: keep a request under the 4 MiB message cap; a longer upload is matched in
#: windows (the CLI does it).
MAX_VIDEO_QUERY_FRAMES = 80_000
#: Banked videos answered per video query, best first.
MAX_VIDEO_ANSWERS = 100
#: Batches at least this large are verified in worker processes (catch-up).
PROCESS_VERIFY_MIN = 256


def _raise_first(errors: Sequence[NodeError | None]) -> None:
    """Raise the first verification error, naming its place in the batch."""
    for i, error in enumerate(errors):
        if error is not None:
            where = f"entry {i + 1} of {len(errors)}: " if len(errors) > 1 else ""
            raise type(error)(where + str(error))


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def _check_batch(entries: Sequence[SignedEntry]) -> None:
    """Batch limits and submission gates (applied to Submit, not to relays)."""
    if not entries:
        raise ValidationError(f"empty batch: expected 1..{MAX_SUBMIT_BATCH} entries")
    if len(entries) > MAX_SUBMIT_BATCH:
        raise ValidationError(
            f"batch of {len(entries)} entries: expected at most {MAX_SUBMIT_BATCH}"
        )
    for i, e in enumerate(entries):
        if e.body.kind != Kind.ADD:
            continue
        try:
            if e.body.algorithm == "PDQ":
                check_pdq_not_degenerate(e.body.hash)
                if e.body.payload:
                    check_pdq_quality(decode_quality(e.body.payload))
            else:
                check_not_trivial(e.body.algorithm, e.body.hash)
        except ValidationError as exc:
            where = f"entry {i + 1} of {len(entries)}: " if len(entries) > 1 else ""
            raise ValidationError(where + str(exc)) from None


class MatchResults(list[list["MatchHit"]]):
    """Per-query hits, plus which queries the never-match list suppressed."""

    never_match: list[bool]


class UrgentTracker:
    """Recently committed urgent entries, so Pull can serve them first.

    Bounded: only the newest ``cap`` urgent entries are remembered (urgency
    matters for new entries; after a restart old ones are ordinary).
    """

    def __init__(self, cap: int = 100_000) -> None:
        self.cap = cap
        self._seqs: dict[str, list[int]] = {}
        self._count = 0

    def add(self, entries: Sequence[SignedEntry]) -> None:
        for e in entries:
            if e.body.urgent:
                self._seqs.setdefault(e.body.origin, []).append(e.body.seq)
                self._count += 1
        while self._count > self.cap:
            origin = next(iter(self._seqs))
            self._count -= len(self._seqs.pop(origin))

    def pending(self, origin: str, cursor: int) -> bool:
        """Is there an urgent entry of ``origin`` at or after ``cursor``?"""
        seqs = self._seqs.get(origin)
        return seqs is not None and bool(seqs) and seqs[-1] >= cursor


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
    settled: bool = False  # covered by a quorum-cosigned checkpoint (transparency log)
    origin_equivocated: bool = False  # evidence held that the origin forked its log
    rule: str = ""  # the policy rule that recommended ``action``
    feedback: Aggregate | None = None
    standing: Standing = Standing.ACTIVE  # revoked members' entries stay, flagged
    variant: int = 0  # PDQ: which query hash matched (0 the query, i its i-th dihedral hash)


@dataclass(frozen=True, slots=True)
class VideoMatchHit:
    """A banked video a video query hit: how (``score``), and the provenance,
    action and rule of its first matched segment (``hit``)."""

    hit: MatchHit
    video_id: bytes
    segments: tuple[bytes, ...]  # the video's segment entries held here, in time order
    score: VideoScore
    banked_ms: tuple[int, int]  # first and last banked frame held here


class NodeApp:
    def __init__(
        self,
        node_id: str,
        store: LmdbStore,
        trust: TrustView,
        *,
        verify_workers: int = 2,
        tlog_policy: TlogPolicy | None = None,
        checkpoint_key: Ed25519PrivateKey | None = None,
        policy_path: Path | None = None,
        matchlog: MatchLog | None = None,
        negative_path: Path | None = None,
    ) -> None:
        self.node_id = node_id
        self.store = store
        self.trust = trust
        self.accountability = Accountability(
            node_id, store, trust, policy_path=policy_path, matchlog=matchlog
        )
        self.changes = Changes()
        #: Per peer (member id), the heads it last said it holds (the frontier
        #: of its stream to us), numbered: our stream to it skips those
        #: entries, if it heard them after it opened (see ``heard_from``).
        self.peer_heads: dict[str, tuple[int, dict[str, int]]] = {}
        self._heard = 0
        self.urgent = UrgentTracker()
        self._listeners: list[Callable[[Sequence[SignedEntry]], None]] = [self.urgent.add]
        self.observer: Observer = NullObserver()
        # Ed25519 verification releases the GIL: a small pool uses every core.
        self._verify_pool = ThreadPoolExecutor(verify_workers, thread_name_prefix="verify")
        # One writer thread: LMDB has one writer at a time, and fsync-ing
        # commits must not stall the event loop. It commits what is queued
        # together (group commit): one fsync for many batches.
        self.writer = GroupWriter(store)
        self._verify_workers = verify_workers
        self._process_pool: ProcessPoolExecutor | None = None
        self._process_pool_broken = False
        self.tlog = Transparency(
            node_id,
            store,
            trust,
            policy=tlog_policy,
            checkpoint_key=checkpoint_key,
            on_change=self.changes.notify,
            writer=self.writer,
        )
        self.accountability.settled = self._settled
        self.matcher = PdqMatcher(store)
        self._listeners.append(self.matcher.on_commit)
        self.frames = FrameMatcher(store)
        self._listeners.append(self.frames.on_commit)
        self.negative_path = negative_path
        self.negative = NegativeBank.load(negative_path) if negative_path else NegativeBank()

    def _settled(self, entry_id: bytes) -> bool | None:
        """Policy input: is this entry covered by a quorum-cosigned checkpoint?"""
        stored = self.store.get(entry_id)
        if stored is None:
            return None
        return self.tlog.settled(stored.entry.body.origin, stored.entry.body.seq)

    def close(self) -> None:
        if self._process_pool is not None:
            self._process_pool.shutdown(wait=True, cancel_futures=True)
        self._verify_pool.shutdown(wait=True)
        self.tlog.stop()
        self.writer.shutdown()

    def heard_from(self, peer: str, frontier: dict[str, int]) -> None:
        """Note what ``peer`` says it holds now."""
        self._heard += 1
        self.peer_heads[peer] = (self._heard, frontier)

    def heard_since(self, peer: str, since: int) -> dict[str, int] | None:
        """What ``peer`` said it holds, if it said so after mark ``since``
        (a stream's opening: its cursors are fresher than anything before)."""
        found = self.peer_heads.get(peer)
        return found[1] if found is not None and found[0] > since else None

    @property
    def heard_mark(self) -> int:
        return self._heard

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

    def authentic(self, entry: SignedEntry) -> bool:
        """Is ``entry`` signed by the entry key its origin names (whatever the
        roster now allows)? For entries refused with a RightsError: an
        authentic one is held back, not the relaying peer's fault."""
        try:
            key = self.trust.member(entry.body.origin).key(entry.body.key_id)
            verify_signature(entry, key.key)
        except NodeError:
            return False
        return True

    async def submit_async(self, entries: Sequence[SignedEntry]) -> IngestResult:
        """All-or-nothing: verify every entry, then commit them in one
        transaction; verification and the commit run off the event loop."""
        try:
            _check_batch(entries)
            _raise_first(await self.verify_async(entries))
            result = await self._ingest(entries, atomic=True)
            if result.errors:
                self.tlog.committed(result)  # a refused fork is still evidence to gossip
                raise result.errors[0][1]
        except NodeError as exc:
            self._refused_submit(exc, len(entries))
            raise
        self._committed(result, "submit")
        return result

    def _refused_submit(self, exc: NodeError, count: int) -> None:
        self.observer.refused("submit", exc, max(1, count))
        if isinstance(exc, EquivocationError):
            self.observer.alert(ALERT_EQUIVOCATION, self.node_id)
        if isinstance(exc, StorageError) and self.store.write_error:
            self.observer.alert(ALERT_MAP_FULL, self.node_id)

    async def verify_async(self, entries: Sequence[SignedEntry]) -> list[NodeError | None]:
        """:meth:`verify`, with the signature checks off the event loop: on
        the thread pool for small batches, in worker processes for large ones
        (catch-up), where threads would contend for the GIL."""
        loop = asyncio.get_running_loop()
        if len(entries) < PROCESS_VERIFY_MIN or self._process_pool_broken:
            return await loop.run_in_executor(self._verify_pool, self.verify, entries)
        out, triples, where = await loop.run_in_executor(
            self._verify_pool, self._authorize, entries
        )
        size = max(64, -(-len(triples) // (2 * self._verify_workers)))
        try:
            pool = self._processes()
            parts = await asyncio.gather(
                *(
                    loop.run_in_executor(pool, verify_many, triples[j : j + size])
                    for j in range(0, len(triples), size)
                )
            )
        except BrokenProcessPool:
            log.warning("verification worker processes failed; verifying on threads")
            self._process_pool_broken = True
            return await loop.run_in_executor(self._verify_pool, self.verify, entries)
        if sum(map(len, parts)) == len(where) and all(map(all, parts)):
            return out  # the usual case, without a per-entry loop on the event loop
        for i, ok in zip(where, (ok for part in parts for ok in part), strict=True):
            if not ok:
                body = entries[i].body
                out[i] = ProvenanceError(
                    f"bad signature on {body.origin} seq {body.seq}: not signed by the key it names"
                )
        return out

    def _authorize(
        self, entries: Sequence[SignedEntry]
    ) -> tuple[list[NodeError | None], list[tuple[bytes, bytes, bytes]], list[int]]:
        """Membership, roles and key cut-offs (no crypto): the errors so far,
        and the ``(key, message, signature)`` triples left to verify."""
        out: list[NodeError | None] = [None] * len(entries)
        triples: list[tuple[bytes, bytes, bytes]] = []
        where: list[int] = []
        for i, entry in enumerate(entries):
            try:
                key = self.trust.member(entry.body.origin).check_entry(entry.body)
                if key_id_of(key) != entry.body.key_id:
                    raise ProvenanceError(
                        "entry names another key id than the key it was checked against"
                    )
            except NodeError as exc:
                out[i] = exc
                continue
            triples.append(
                (raw_public_key(key), pae(ENTRY_DOMAIN, entry.body_bytes), entry.signature)
            )
            where.append(i)
        return out, triples, where

    def _processes(self) -> ProcessPoolExecutor:
        """Started on first use ("spawn": never fork a process that runs gRPC)."""
        if self._process_pool is None:
            self._process_pool = ProcessPoolExecutor(
                self._verify_workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=die_with_parent,  # never orphaned if the node is killed
                initargs=(os.getpid(),),
            )
        return self._process_pool

    async def ingest_from_peer_async(
        self, peer: str, entries: Sequence[SignedEntry], checkpoints: Sequence[str] = ()
    ) -> IngestResult:
        """Entries relayed by a peer, already verified by the caller: every
        one that can be appended is, with the peer's cursor, in one txn;
        then the checkpoints that came with them are checked against the
        grown tree, in the same transaction (one job, one fsync)."""
        check = self.tlog.checkpoint_job(checkpoints)
        stamp = now_ms()

        def job(txn: Any) -> tuple[IngestResult, list[CheckResult]]:
            result = self.store.ingest_in(txn, entries, atomic=False, peer=peer, now_ms=stamp)
            return result, (check(txn) if check is not None else [])

        result, notes = await self.writer.run(job)
        self._relayed(result)
        if check is not None:
            self.tlog.checked(peer, notes)
        return result

    async def _ingest(
        self, entries: Sequence[SignedEntry], *, atomic: bool, peer: str | None = None
    ) -> IngestResult:
        """On the writer thread, committed with whatever else is queued there."""
        result: IngestResult = await self.writer.run(
            functools.partial(
                self.store.ingest_in, entries=entries, atomic=atomic, peer=peer, now_ms=now_ms()
            )
        )
        return result

    def _relayed(self, result: IngestResult) -> None:
        for _index, error in result.errors:
            self.observer.refused("peer", error)
        self._committed(result, "peer")

    def _committed(self, result: IngestResult, source: str) -> None:
        self.tlog.committed(result)  # signs checkpoints; logs and gossips new evidence
        self.observer.committed(source, result, now_ms())
        if result.evidence:
            log.warning("equivocation evidence recorded (%d); see `ccnode status`", result.evidence)
            self.observer.alert(ALERT_EQUIVOCATION, self.node_id)
        if not result.accepted:
            return
        for listener in self._listeners:
            listener(result.accepted)
        self.changes.notify()

    # -- reads ---------------------------------------------------------------

    def heads(self) -> dict[str, Head]:
        return self.store.heads()

    def reload(self) -> tuple[Policy, NegativeBank]:
        """``policy reload`` and SIGHUP: re-read DIR/policy.toml and
        DIR/never_match.txt. Both are read before either is swapped in, so a
        bad file (either) raises and leaves both as they were."""
        bank = NegativeBank.load(self.negative_path) if self.negative_path else NegativeBank()
        policy = self.accountability.reload()
        self.negative = bank
        return policy, bank

    def resolve_id(self, text: str) -> bytes:
        """The stored entry id that ``text`` (8..64 hex digits) begins."""
        prefix = check_id_text(text)
        even = bytes.fromhex(prefix[: len(prefix) // 2 * 2])
        # An odd digit count filters on the last nibble: read up to 16x as many.
        limit = (MAX_ID_CANDIDATES + 1) * (16 if len(prefix) % 2 else 1)
        ids = self.store.ids_with_prefix(even, limit)
        return resolve_id_prefix(prefix, ids, more=len(ids) >= limit)

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
        max_distance: int = 0,
        variants: Sequence[Sequence[bytes]] = (),
    ) -> MatchResults:
        """Exact lookups for cryptographic hashes; PDQ within ``max_distance``
        (0: the default 31) of the query or any of its ``variants`` (its
        dihedral hashes); never-match hashes answer nothing."""
        started = time.perf_counter()
        try:
            out = self._match(queries, include_retracted, record, max_distance, variants)
        except NodeError:
            self.observer.matched(len(queries), 0, time.perf_counter() - started, ok=False)
            raise
        hits = sum(len(h) for h in out)
        self.observer.matched(len(queries), hits, time.perf_counter() - started, ok=True)
        return out

    def _match(
        self,
        queries: Sequence[tuple[str, bytes]],
        include_retracted: bool,
        record: bool,
        max_distance: int = 0,
        variants: Sequence[Sequence[bytes]] = (),
    ) -> MatchResults:
        if not queries:
            raise ValidationError(f"empty batch: expected 1..{MAX_MATCH_BATCH} queries")
        if len(queries) > MAX_MATCH_BATCH:
            raise ValidationError(
                f"batch of {len(queries)} queries: expected at most {MAX_MATCH_BATCH}"
            )
        any_pdq = False
        for i, (name, value) in enumerate(queries):
            alg = ALGORITHMS.get(name)
            if alg is not None and alg.min_len <= len(value) <= alg.max_len:
                any_pdq = any_pdq or name == "PDQ"
                continue  # the fast path for a well-formed query
            try:
                algorithm(name).check(value)
            except ValidationError as exc:
                where = f"query {i + 1} of {len(queries)}: " if len(queries) > 1 else ""
                raise ValidationError(where + str(exc)) from None
        radius = max_distance or DEFAULT_RADIUS
        if any_pdq and not self.matcher.ready:
            raise UnavailableError("the PDQ index is still being built; retry shortly")
        out = MatchResults()
        bank = self.negative if len(self.negative) else None
        out.never_match = (
            [bank.suppresses(name, value) for name, value in queries]
            if bank
            else [False] * len(queries)
        )
        exact = self.store.lookup_many(queries)
        for i, (name, value) in enumerate(queries):
            if out.never_match[i]:
                out.append([])
                continue
            if name != "PDQ" and not exact[i]:
                out.append([])  # the common case at an upload gate: unknown content
                continue
            if name == "PDQ":
                extra = variants[i] if i < len(variants) else ()
                for v in extra:
                    algorithm("PDQ").check(v)
                found = self.matcher.search(
                    [value, *extra], radius, include_retracted=include_retracted
                )
            else:
                found = [(entry_id, 0, 0) for entry_id in exact[i]]
            hits: list[MatchHit] = []
            for entry_id, distance, variant in found:
                stored = self.store.get(entry_id)
                if stored is None:
                    continue
                if stored.retracted_by and not include_retracted:
                    continue
                if bank and bank.suppresses(stored.entry.body.algorithm, stored.entry.body.hash):
                    continue
                hits.append(
                    self._hit(
                        stored.entry, stored.arrival_ms, stored.retracted_by, distance, variant
                    )
                )
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

    def match_video(
        self,
        frames: Sequence[QueryFrame],
        thresholds: VideoThresholds | None = None,
        *,
        include_retracted: bool = False,
        record: bool = False,
        report_all: bool = False,
    ) -> list[VideoMatchHit]:
        """Banked videos that the query frames (an upload's frames with their
        variants) match, best first; with ``report_all`` also the videos that
        some frames hit without a match decision. CPU-bound: call it off the
        event loop (the Match servicer does)."""
        started = time.perf_counter()
        try:
            t = thresholds or VideoThresholds()
            out = self._match_video(frames, t, include_retracted, record, report_all)
        except NodeError:
            self.observer.matched(1, 0, time.perf_counter() - started, ok=False)
            raise
        self.observer.matched(1, len(out), time.perf_counter() - started, ok=True)
        return out

    def _match_video(
        self,
        frames: Sequence[QueryFrame],
        t: VideoThresholds,
        include_retracted: bool,
        record: bool,
        report_all: bool,
    ) -> list[VideoMatchHit]:
        if not frames:
            raise ValidationError(f"empty video query: expected 1..{MAX_VIDEO_QUERY_FRAMES} frames")
        if len(frames) > MAX_VIDEO_QUERY_FRAMES:
            raise ValidationError(
                f"video query of {len(frames)} frames: expected at most "
                f"{MAX_VIDEO_QUERY_FRAMES} (match a long upload in windows)"
            )
        if not self.frames.ready:
            raise UnavailableError("the frame index is still being built; retry shortly")
        if t.max_distance > MAX_RADIUS:
            raise ValidationError(f"PDQ distance {t.max_distance}: expected 0..{MAX_RADIUS}")
        bank = self.negative if len(self.negative) else None
        if bank is not None:  # frames of known benign footage never match
            benign = bank.suppressed_pdq([f.pdq for f in frames])
            frames = [f for f, drop in zip(frames, benign, strict=True) if not drop]
            if not frames:
                return []
        query = QueryArrays.of([(f.pdq, f.quality, f.ts_ms, f.variant) for f in frames])
        found = self.frames.index.search(
            query,
            t.max_distance,
            include_retracted=include_retracted,
            quality_floor=t.quality_floor,
        )
        out: list[VideoMatchHit] = []
        for v in found:
            banked = [
                VideoFrame(p.tobytes(), int(q), int(ts))
                for p, q, ts in zip(v.banked_pdq, v.banked_quality, v.banked_ts, strict=True)
            ]
            score = score_video(
                frames, banked, FrameHits(v.query_index, v.banked_index, v.distance), t
            )
            if not (score.is_match or report_all):
                continue
            stored = self.store.get(v.matched_segments[0]) if v.matched_segments else None
            if stored is None:
                continue
            video = VideoFacts(score.query_pct, score.banked_pct, score.matched_ms)
            hit = self._hit(stored.entry, stored.arrival_ms, stored.retracted_by, 0, video=video)
            out.append(
                VideoMatchHit(
                    hit,
                    v.key[1],
                    v.segments,
                    score,
                    (int(v.banked_ts[0]), int(v.banked_ts[-1])),
                )
            )
        out.sort(key=lambda h: (not h.score.is_match, -h.score.matched_frames, -h.score.coverage))
        out = out[:MAX_VIDEO_ANSWERS]
        if record:
            self.accountability.record_matches(
                [
                    (h.hit.entry.entry_id, h.hit.action, h.hit.rule)
                    for h in out
                    if h.score.is_match and not h.hit.retracted_by
                ],
                now_ms(),
            )
        return out

    def explain(self, entry_id: bytes) -> tuple[MatchHit, Decision | None]:
        """The entry as a match answer, and the policy's rule-by-rule reasoning."""
        hit = self.get(entry_id)
        verdict = self.accountability.verdict(
            hit.entry,
            hit.retracted_by,
            explain=True,
            settled=hit.settled,
            standing=hit.standing,
            equivocated=hit.origin_equivocated,
        )
        return hit, verdict.decision

    def _hit(
        self,
        entry: SignedEntry,
        arrival: int,
        retracted_by: bytes,
        dist: int,
        variant: int = 0,
        *,
        video: VideoFacts | None = None,
    ) -> MatchHit:
        try:
            member: Member | None = self.trust.member(entry.body.origin)
        except NodeError:
            member = None
        origin, seq = entry.body.origin, entry.body.seq
        settled = self.tlog.settled(origin, seq)
        standing = member.standing(entry.body) if member else Standing.UNKNOWN_ORIGIN
        equivocated = self.tlog.forked(origin)
        verdict = self.accountability.verdict(
            entry,
            retracted_by,
            settled=settled,
            distance=dist,
            standing=standing,
            equivocated=equivocated,
            video=video,
        )
        return MatchHit(
            entry,
            member,
            arrival,
            retracted_by,
            dist,
            verdict.action,
            rule=verdict.rule,
            feedback=verdict.feedback,
            settled=settled,
            origin_equivocated=equivocated,
            standing=standing,
            variant=variant,
        )
