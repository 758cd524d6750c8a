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
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

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
from node.core.policy import AudioFacts, Decision, Policy, VideoFacts
from node.core.sigcheck import verify_many
from node.core.tlog import TlogPolicy
from node.core.trust import (
    EntryKey,
    Member,
    Standing,
    TrustView,
    check_provenance,
    raw_public_key,
)
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
from node.match.audio_index import AudioMatch, AudioMatcher, AudioThresholds
from node.match.frames import FrameMatcher, QueryArrays
from node.match.limits import Candidate, MatchLimits, chunks, rank
from node.match.matcher import PdqMatcher
from node.match.negative import NegativeBank
from node.match.pdq_index import DEFAULT_RADIUS, MAX_RADIUS
from node.match.video import (
    FrameHits,
    QueryFrame,
    VideoScore,
    VideoThresholds,
    score_video,
)
from node.media.image import check_pdq_not_degenerate, check_pdq_quality
from node.observe import ALERT_EQUIVOCATION, ALERT_MAP_FULL, NullObserver, Observer
from node.store.base import Head, IngestResult
from node.store.lmdb_store import LmdbStore
from node.store.matchlog import MatchLog
from node.store.writer import GroupWriter
from node.transparency import CheckResult, Transparency
from node.workers import die_with_parent

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_SUBMIT_BATCH = 1000
#: Query frames (all variants) per video Match request, whatever the budget:
#: 80,000 frames (~3.2 MB) keep a request under the 4 MiB message cap. The
#: Match budget (node.match.limits) counts each frame like a PDQ query, so by
#: default a request holds at most 10,000 frames at distance 31; a longer
#: upload is matched in windows (the CLI does it).
MAX_VIDEO_QUERY_FRAMES = 80_000
#: Banked videos answered per video query, best first.
MAX_VIDEO_ANSWERS = 100
#: Sub-fingerprints per audio Match request: 3 hours of audio (87,230 items at
#: 8.08 a second) and some. A longer query is matched in windows.
MAX_AUDIO_QUERY_ITEMS = 90_000
#: Banked tracks answered per audio query, best first.
MAX_AUDIO_ANSWERS = 100
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


def check_batch_size(n: int, limit: int, what: str) -> None:
    """A batch's size, checked before its items are decoded or looked at."""
    if n < 1:
        raise ValidationError(f"empty batch: expected 1..{limit} {what}")
    if n > limit:
        raise ValidationError(f"batch of {n} {what}: expected at most {limit}")


def _check_batch(entries: Sequence[SignedEntry]) -> None:
    """Batch limits and submission gates (applied to Submit, not to relays)."""
    check_batch_size(len(entries), MAX_SUBMIT_BATCH, "entries")
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
    """Per-query hits (ranked, capped: ``node.match.limits``), plus which
    queries the never-match list suppressed, how many stored entries each
    query matched, and whether its list holds fewer than that."""

    never_match: list[bool]
    totals: list[int]
    truncated: list[bool]
    hits: int = 0
    bytes: int = 0


#: Queries whose hits are built between yields to the event loop.
HITS_SLICE = 64
#: A request of at most this many queries runs its cheap steps on the loop
#: (and ranks there if it matched at most SMALL_MATCH_CANDIDATES entries);
#: so does one of at most SMALL_EXACT_MATCH queries with no PDQ among them
#: (an upload gate's batch of digests: a few ms of index reads, where a
#: thread hand-over per step would cost a third of the throughput).
SMALL_MATCH = 16
SMALL_EXACT_MATCH = 2000
SMALL_MATCH_CANDIDATES = 256
#: Bytes a hit adds to an answer besides its entry body (provenance, votes).
HIT_OVERHEAD_BYTES = 512


def _is_pdq(query: Any) -> bool:
    name = query[0] if isinstance(query, tuple) else query.algorithm
    return bool(name == "PDQ")


class _MatchJob:
    """One Match request's work, step by step: lookups, the PDQ search in
    chunks, ranking. Each step may run in the match thread (it touches only
    LMDB reads, the matcher under its lock and immutable inputs)."""

    def __init__(
        self,
        app: NodeApp,
        *,
        queries: Sequence[tuple[str, bytes]],
        variants: Sequence[Sequence[bytes]],
        sizes: list[int],
        radius: int,
        include_retracted: bool,
    ) -> None:
        self.app = app
        self.queries = queries
        self.variants = variants
        self.sizes = sizes
        self.radius = radius
        self.include_retracted = include_retracted
        n = len(queries)
        self.never_match = [False] * n
        #: query index -> (entry id, distance, variant) of what it matched
        self.found: dict[int, list[tuple[bytes, int, int]]] = {}
        self.pdq = [i for i, size in enumerate(sizes) if size]
        self.totals = [0] * n
        self.truncated = [False] * n
        self.ranked: dict[int, list[Candidate]] = {}

    def lookup(self) -> None:
        """Validate every query; never-match; exact lookups."""
        queries = self.queries
        for i, (name, value) in enumerate(queries):
            alg = ALGORITHMS.get(name)
            if alg is not None and alg.min_len <= len(value) <= alg.max_len:
                continue  # the fast path for a well-formed query
            try:
                algorithm(name).check(value)
            except ValidationError as exc:
                where = f"query {i + 1} of {len(queries)}: " if len(queries) > 1 else ""
                raise ValidationError(where + str(exc)) from None
        for i in self.pdq:
            for v in self.variants[i] if i < len(self.variants) else ():
                algorithm("PDQ").check(v)
        bank = self.app.negative if len(self.app.negative) else None
        if bank:
            self.never_match = [bank.suppresses(name, value) for name, value in queries]
        wanted: Sequence[int]
        if bank or self.pdq:
            wanted = [
                i for i in range(len(queries)) if not self.sizes[i] and not self.never_match[i]
            ]
            exact = self.app.store.lookup_many([queries[i] for i in wanted])
        else:  # the common case: digests only
            wanted, exact = range(len(queries)), self.app.store.lookup_many(queries)
        for i, ids in zip(wanted, exact, strict=True):
            if ids:
                self.found[i] = [(entry_id, 0, 0) for entry_id in ids]

    def parts(self) -> list[list[int]]:
        """The PDQ queries in chunks of bounded cost (never-match ones skipped)."""
        pdq = [i for i in self.pdq if not self.never_match[i]]
        limits = self.app.match_limits
        return [
            [pdq[j] for j in run]
            for run in chunks([self.sizes[i] for i in pdq], self.radius, limits.chunk_probes)
        ]

    def search(self, part: list[int]) -> None:
        values = [
            [self.queries[i][1], *(self.variants[i] if i < len(self.variants) else ())]
            for i in part
        ]
        found = self.app.matcher.search_many(
            values, self.radius, include_retracted=self.include_retracted
        )
        for i, hits in zip(part, found, strict=True):
            if hits:
                self.found[i] = hits

    def rank(self) -> None:
        """Per query: the matching stored entries, counted, ranked and capped;
        at most ``max_candidates`` examined per request."""
        limits = self.app.match_limits
        store, tlog = self.app.store, self.app.tlog
        examined = 0
        for i, found in sorted(self.found.items()):
            if examined + len(found) > limits.max_candidates:
                self.totals[i] = len(found)  # counted, not examined
                self.truncated[i] = True
                continue
            examined += len(found)
            located = store.locate_many([entry_id for entry_id, _, _ in found])
            candidates = [
                Candidate(
                    entry_id,
                    distance,
                    loc[0],
                    loc[1],
                    loc[2],
                    tlog.settled(loc[0], loc[1]),
                    variant,
                )
                for (entry_id, distance, variant), loc in zip(found, located, strict=True)
                if loc is not None and (self.include_retracted or not loc[3])
            ]
            self.totals[i] = len(candidates)
            if candidates:
                self.ranked[i] = rank(candidates, limits.hits_per_query, limits.hits_per_origin)

    def results(self) -> MatchResults:
        out = MatchResults([[] for _ in self.queries])
        out.never_match = self.never_match
        out.totals = self.totals
        out.truncated = self.truncated
        return out


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


ALERT_RESTORED = "restored"


class OwnLog:
    """After a restore: does this node know its own log's head yet?

    A backup may predate entries this member published since, which its
    peers hold. Signing "the next entry" from the backup's head would fork
    the member's own log, and every node would record the equivocation. So a
    restored node (``node.backup.RESTORED_MARKER`` in its directory) refuses to
    accept new entries of its own origin until a peer has said, in its Pull
    frontier, how much of this log it holds and this node holds at least
    that much (and at least what every other peer said); then the marker is
    removed (docs/operators.md, *Backups*).
    """

    def __init__(self, node_id: str, marker: Path | None, held: Callable[[], int]) -> None:
        self.node_id = node_id
        self.marker = marker
        self.held = held
        self.pending = marker is not None and marker.exists()
        self._said: dict[str, int] = {}  # peer -> entries of our log it says it holds

    def heard(self, peer: str, frontier: dict[str, int]) -> None:
        if self.pending:
            self._said[peer] = frontier.get(self.node_id, 0)
            self.check()

    def check(self) -> None:
        """Confirmed once a peer spoke and this node holds what any peer said."""
        if not self.pending or not self._said:
            return
        held, said = self.held(), max(self._said.values())
        if held < said:
            return
        self.pending = False
        if self.marker is not None:
            self.marker.unlink(missing_ok=True)
        log.warning(
            "own log confirmed after the restore: %d entries (peers hold at most %d); "
            "submissions of %s are accepted again",
            held,
            said,
            self.node_id,
        )

    def refuse(self, entries: Sequence[SignedEntry]) -> None:
        if self.pending and any(e.body.origin == self.node_id for e in entries):
            raise UnavailableError(
                f"{self.node_id} was restored from a backup and holds {self.held()} entries "
                "of its own log: it signs nothing new until a peer has told it its log's "
                "head (see `ccnode status`), so that it cannot fork its own log"
            )

    def alert(self) -> str:
        """The status alert while pending, else ""."""
        if not self.pending:
            return ""
        return (
            f"restored from a backup: holds {self.held()} entries of its own log and no peer "
            "has confirmed its head yet; its own submissions are refused until one does"
        )


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


@dataclass(frozen=True, slots=True)
class AudioMatchHit:
    """A banked soundtrack an audio query matched: how (``score``: similarity,
    aligned items and ranges), and the provenance, action and rule of its
    first matched segment (``hit``)."""

    hit: MatchHit
    video_id: bytes
    segments: tuple[bytes, ...]  # the track's segment entries the aligned stretch covers
    score: AudioMatch


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
        restored_marker: Path | None = None,
        former_key: Callable[[str, bytes], EntryKey | None] | None = None,
    ) -> None:
        self.node_id = node_id
        self.store = store
        self.own_log = OwnLog(node_id, restored_marker, lambda: store.head(node_id).next_seq)
        #: A key a member had in an earlier roster (RosterKeeper.former_key).
        self.former_key = former_key or (lambda member_id, key_id: None)
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
        self.audio = AudioMatcher(store)
        self._listeners.append(self.audio.on_commit)
        self.match_limits = MatchLimits()
        # Match work off the event loop, one step at a time per request (the
        # search in chunks), so requests interleave (node.match.limits). Two
        # threads: a small request's steps need not queue behind a large
        # one's; searches still take turns on the index lock.
        self.match_pool = ThreadPoolExecutor(2, thread_name_prefix="match")
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
        self.match_pool.shutdown(wait=True)
        self.tlog.stop()
        self.writer.shutdown()

    def heard_from(self, peer: str, frontier: dict[str, int]) -> None:
        """Note what ``peer`` says it holds now."""
        self._heard += 1
        self.peer_heads[peer] = (self._heard, frontier)
        self.own_log.heard(peer, frontier)

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
        """Is ``entry`` signed by the entry key its origin names, now or in an
        earlier roster version (whatever the roster now allows)? For entries
        the roster refuses: an authentic one is held back, not the relaying
        peer's fault."""
        body = entry.body
        try:
            self.trust.member(body.origin)  # an unknown origin is never authentic
        except NodeError:
            return False
        try:
            key = self.trust.member(body.origin).key(body.key_id)
        except NodeError:
            former = self.former_key(body.origin, body.key_id)
            if former is None:
                return False
            key = former
        try:
            verify_signature(entry, key.key)
        except NodeError:
            return False
        return True

    async def submit_async(self, entries: Sequence[SignedEntry]) -> IngestResult:
        """All-or-nothing: verify every entry, then commit them in one
        transaction; verification and the commit run off the event loop."""
        try:
            _check_batch(entries)
            self.own_log.refuse(entries)
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
        self.own_log.check()
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
        dihedral hashes); never-match hashes answer nothing. Bounded by
        ``self.match_limits`` (``node.match.limits``). In the caller's thread,
        in one piece: the RPC path is :meth:`match_async`."""
        started = time.perf_counter()
        try:
            job = self._match_job(queries, include_retracted, max_distance, variants)
            job.lookup()
            for part in job.parts():
                job.search(part)
            job.rank()
            out = job.results()
            bank = self.negative if len(self.negative) else None
            for i in sorted(job.ranked):  # only queries with something to list
                self._build_hits(job, i, out, bank)
            self._record(out, record)
        except NodeError:
            self.observer.matched(len(queries), 0, time.perf_counter() - started, ok=False)
            raise
        self.observer.matched(len(queries), out.hits, time.perf_counter() - started, ok=True)
        return out

    async def match_async(
        self,
        queries: Sequence[tuple[str, bytes]],
        *,
        include_retracted: bool = False,
        record: bool = False,
        max_distance: int = 0,
        variants: Sequence[Sequence[bytes]] = (),
    ) -> MatchResults:
        """:meth:`match` without stalling the event loop: the cost is checked
        first; validation, lookups, the PDQ search (in chunks, one at a time,
        so other requests interleave) and ranking run in a match thread (a
        small request's cheap steps run here: see :meth:`match_step`); only
        building the (bounded) hits runs on the loop, in slices."""
        started = time.perf_counter()
        step = self.match_step(queries)
        threaded = self.match_step(())
        try:
            job: _MatchJob = await step(
                self._match_job, queries, include_retracted, max_distance, variants
            )
            await step(job.lookup)
            parts: list[list[int]] = await step(job.parts)
            for part in parts:
                await threaded(job.search, part)  # may wait for the index lock
            many = sum(len(f) for f in job.found.values()) > SMALL_MATCH_CANDIDATES
            await (threaded if many else step)(job.rank)
            out = job.results()
            bank = self.negative if len(self.negative) else None
            for n, i in enumerate(sorted(job.ranked)):  # only queries with something to list
                self._build_hits(job, i, out, bank)
                if n % HITS_SLICE == HITS_SLICE - 1:
                    await asyncio.sleep(0)  # let other callers in
            self._record(out, record)
        except NodeError:
            self.observer.matched(len(queries), 0, time.perf_counter() - started, ok=False)
            raise
        self.observer.matched(len(queries), out.hits, time.perf_counter() - started, ok=True)
        return out

    def match_step(self, queries: Sequence[Any]) -> Callable[..., Awaitable[Any]]:
        """How to run one step of a request of these ``queries`` (anything with
        an ``algorithm`` or a ``(name, value)`` pair each; ``()``: always a
        thread): in a match thread, or, for a small request (whose steps take
        microseconds to a few ms), right here on the loop, so it never queues
        behind a large one."""
        if 0 < len(queries) <= SMALL_MATCH or (
            0 < len(queries) <= SMALL_EXACT_MATCH and not any(_is_pdq(q) for q in queries)
        ):

            async def inline(fn: Callable[..., T], *args: Any) -> T:
                return fn(*args)

            return inline
        loop = asyncio.get_running_loop()

        async def threaded(fn: Callable[..., T], *args: Any) -> T:
            return await loop.run_in_executor(self.match_pool, fn, *args)

        return threaded

    def _match_job(
        self,
        queries: Sequence[tuple[str, bytes]],
        include_retracted: bool,
        max_distance: int,
        variants: Sequence[Sequence[bytes]],
    ) -> _MatchJob:
        """Check the request's size and cost (cheap, before any work)."""
        limits = self.match_limits
        check_batch_size(len(queries), limits.max_queries, "queries")
        radius = max_distance or DEFAULT_RADIUS
        if not 0 <= radius <= MAX_RADIUS:
            raise ValidationError(f"PDQ distance {radius}: expected 0..{MAX_RADIUS}")
        sizes = [
            1 + (len(variants[i]) if i < len(variants) else 0) if name == "PDQ" else 0
            for i, (name, _) in enumerate(queries)
        ]
        limits.check_cost(sum(sizes), radius)
        if any(sizes) and not self.matcher.ready:
            raise UnavailableError("the PDQ index is still being built; retry shortly")
        return _MatchJob(
            self,
            queries=queries,
            variants=variants,
            sizes=sizes,
            radius=radius,
            include_retracted=include_retracted,
        )

    def _build_hits(
        self, job: _MatchJob, i: int, out: MatchResults, bank: NegativeBank | None
    ) -> None:
        """Query ``i``'s ranked candidates as hits, within the response budget."""
        hits: list[MatchHit] = []
        for c in job.ranked[i]:
            stored = self.store.get(c.entry_id)
            if stored is None:
                continue
            body = stored.entry.body
            if bank and body.algorithm == "PDQ" and bank.suppresses(body.algorithm, body.hash):
                out.totals[i] -= 1
                continue
            size = len(stored.entry.body_bytes) + HIT_OVERHEAD_BYTES
            if out.bytes + size > self.match_limits.response_bytes:
                out.truncated[i] = True
                break
            out.bytes += size
            hits.append(
                self._hit(
                    stored.entry, stored.arrival_ms, stored.retracted_by, c.distance, c.variant
                )
            )
        out[i] = hits
        out.truncated[i] = out.truncated[i] or len(hits) < out.totals[i]
        out.hits += len(hits)

    def _record(self, out: MatchResults, record: bool) -> None:
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
        some frames hit without a match decision. Its cost (each frame as a
        PDQ query at the request's distance) is checked against the Match
        budget first. CPU-bound: call it off the event loop, in
        ``match_pool`` (the Match servicer does); the frames are looked up in
        one batch holding the frame index's lock."""
        t = thresholds or VideoThresholds()
        return self._observed(
            lambda: self._match_video(frames, t, include_retracted, record, report_all)
        )

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
        if t.max_distance > MAX_RADIUS:
            raise ValidationError(f"PDQ distance {t.max_distance}: expected 0..{MAX_RADIUS}")
        # every frame is searched like a PDQ query: the same budget
        self.match_limits.check_cost(len(frames), t.max_distance)
        if not self.frames.ready:
            raise UnavailableError("the frame index is still being built; retry shortly")
        bank = self.negative if len(self.negative) else None
        if bank is not None:  # frames of known benign footage never match
            benign = bank.suppressed_pdq([f.pdq for f in frames])
            frames = [f for f, drop in zip(frames, benign, strict=True) if not drop]
            if not frames:
                return []
        query = QueryArrays.of([(f.pdq, f.quality, f.ts_ms, f.variant) for f in frames])
        found = self.frames.search(
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
            self._record_hits([h.hit for h in out if h.score.is_match])
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

    def video_segments(self, entry: SignedEntry) -> tuple[bytes, ...]:
        """Every held segment of the video ``entry`` is a segment of: its VPDQ
        segments in time order, then its soundtrack's CHROMAPRINT segments
        (same origin, same video id); empty for any other entry."""
        body = entry.body
        if body.kind != Kind.ADD or body.algorithm not in ("VPDQ", "CHROMAPRINT"):
            return ()
        # both encodings: magic (4 bytes), version (1), then the 16-byte video id
        key = (body.origin, body.hash[5:21])
        return self.frames.index.video_segments_of(key) + self.audio.index.track_segments(key)

    def match_audio(
        self,
        values: Sequence[int],
        thresholds: AudioThresholds | None = None,
        *,
        include_retracted: bool = False,
        record: bool = False,
        report_all: bool = False,
    ) -> list[AudioMatchHit]:
        """Banked soundtracks that a query fingerprint (Chromaprint
        sub-fingerprints from the start of the upload's audio) matches, best
        first; with ``report_all`` also the candidate tracks that did not
        make the thresholds. CPU-bound: call it off the event loop."""
        t = thresholds or AudioThresholds()
        return self._observed(
            lambda: self._match_audio(values, t, include_retracted, record, report_all)
        )

    def _observed(self, match: Callable[[], list[T]]) -> list[T]:
        """One media Match request, timed and counted by the observer."""
        started = time.perf_counter()
        try:
            out = match()
        except NodeError:
            self.observer.matched(1, 0, time.perf_counter() - started, ok=False)
            raise
        self.observer.matched(1, len(out), time.perf_counter() - started, ok=True)
        return out

    def _record_hits(self, hits: Sequence[MatchHit]) -> None:
        """Matches answered, for the accountability log (retracted ones are not)."""
        self.accountability.record_matches(
            [(h.entry.entry_id, h.action, h.rule) for h in hits if not h.retracted_by],
            now_ms(),
        )

    def _match_audio(
        self,
        values: Sequence[int],
        t: AudioThresholds,
        include_retracted: bool,
        record: bool,
        report_all: bool,
    ) -> list[AudioMatchHit]:
        if not len(values):
            raise ValidationError(
                f"empty audio query: expected 1..{MAX_AUDIO_QUERY_ITEMS} sub-fingerprints"
            )
        if len(values) > MAX_AUDIO_QUERY_ITEMS:
            raise ValidationError(
                f"audio query of {len(values)} sub-fingerprints: expected at most "
                f"{MAX_AUDIO_QUERY_ITEMS} (match a long upload in windows)"
            )
        if not self.audio.ready:
            raise UnavailableError("the audio index is still being built; retry shortly")
        found = self.audio.search(
            values, t, include_retracted=include_retracted, matches_only=not report_all
        )
        out: list[AudioMatchHit] = []
        for m in found[:MAX_AUDIO_ANSWERS]:
            segments = self.audio.segments_of(m.track, m.banked_items)
            stored = self.store.get(segments[0][0]) if segments else None
            if stored is None:
                continue
            audio = AudioFacts(m.similarity, m.aligned_s)
            hit = self._hit(stored.entry, stored.arrival_ms, stored.retracted_by, 0, audio=audio)
            origin_and_video: tuple[str, bytes] = m.track  # type: ignore[assignment]
            out.append(AudioMatchHit(hit, origin_and_video[1], tuple(e for e, _ in segments), m))
        if record:
            self._record_hits([h.hit for h in out if h.score.is_match])
        return out

    def _hit(
        self,
        entry: SignedEntry,
        arrival: int,
        retracted_by: bytes,
        dist: int,
        variant: int = 0,
        *,
        video: VideoFacts | None = None,
        audio: AudioFacts | None = None,
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
            audio=audio,
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
