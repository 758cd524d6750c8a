"""The transparency log service: checkpoints, proofs, witnessing, evidence, alerts.

The application (``node.app.NodeApp``) owns one of these. Like the app it
holds no gRPC and no network I/O: the servicer calls it for the transparency
RPCs, the sync engine feeds it what peers send (checkpoints, frontiers), and
the witness submitter and evidence gossip (``node.sync``) drive it from
their own tasks. Every rule it applies lives in ``node.core.tlog`` and
``node.core.evidence``; every table in ``node.store.tree``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from node.core import evidence as ev
from node.core.entry import check_member_id
from node.core.tlog import (
    TlogPolicy,
    VerifiedCheckpoint,
    WithholdingMonitor,
    is_witness,
    verify_checkpoint,
)
from node.core.trust import TrustView
from node.errors import (
    ConflictError,
    EquivocationError,
    NodeError,
    NotFoundError,
    ProvenanceError,
    ValidationError,
)
from node.store.base import IngestResult
from node.store.lmdb_store import LmdbStore
from node.store.resolve import State
from node.store.tree import CheckpointOutcome, StoredEvidence
from node.store.writer import GroupWriter

log = logging.getLogger(__name__)

MAX_ALERTS = 100
SEEN_NOTES_CAP = 4096  # checkpoint notes remembered as already checked
CHECKPOINT_INTERVAL_S = 1.0  # a member signs its log at most this often


#: One relayed checkpoint note, checked: (note, verified checkpoint or why
#: not, outcome against the stored tree, fork evidence if any).
CheckResult = tuple[str, VerifiedCheckpoint | NodeError, CheckpointOutcome, ev.ForkProof | None]
CheckJob = Callable[[Any], list[CheckResult]]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Signal:
    """Wakes every waiter on each ``notify`` (no missed wake-ups: compare versions)."""

    def __init__(self) -> None:
        self.version = 0
        self._event = asyncio.Event()

    def notify(self) -> None:
        self.version += 1
        self._event.set()
        self._event = asyncio.Event()

    async def wait_past(self, version: int, timeout: float | None = None) -> None:
        if self.version != version:
            return
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            return


@dataclass(frozen=True, slots=True)
class Alert:
    kind: str  # equivocation | withholding | checkpoint
    origin: str
    peer: str
    detail: str


class Transparency:
    def __init__(
        self,
        node_id: str,
        store: LmdbStore,
        trust: TrustView,
        *,
        policy: TlogPolicy | None = None,
        checkpoint_key: Ed25519PrivateKey | None = None,
        on_change: Callable[[], None] = lambda: None,
        writer: GroupWriter | None = None,
    ) -> None:
        self.node_id = node_id
        #: The node's writer thread; None (offline tools, unit tests): write inline.
        self.writer = writer
        self._signing: asyncio.Task[None] | None = None
        self.store = store
        self.tables = store.tlog
        self.trust = trust
        self.policy = policy or TlogPolicy()
        self.witness_keys = self.policy.witness_keys(trust)
        self._configured_key = checkpoint_key
        self._key = checkpoint_key
        self._on_change = on_change
        self.evidence_signal = Signal()
        self.own_signal = Signal()
        self.monitor = WithholdingMonitor(self.policy.withholding_grace_ms)
        self._frontiers: dict[str, dict[str, int]] = {}
        self._checkpoint_alerts: deque[Alert] = deque(maxlen=MAX_ALERTS)
        self._flag_logged: set[tuple[str, str, int]] = set()
        self._settled: dict[str, int] = {}
        # Notes already checked: each peer relays the same signed note, and
        # verifying it once per peer is most of a busy mesh's CPU.
        self._seen_notes: dict[str, None] = {}
        # Per origin the latest stored checkpoint (size, note), or (0, "")
        # for none: every follow-stream wake-up asks, for every origin. Kept
        # on the event loop, from what committed; filled from LMDB on a miss.
        self._latest: dict[str, tuple[int, str]] = {}
        self._last_signed = 0.0
        self._sign_timer: asyncio.TimerHandle | None = None
        self._check_own_key()
        for origin in self.tables.backfill():
            log.warning("built the Merkle tree of %s from its stored entries", origin)
        self._recount_settled()
        self.sign_own()

    def reconfigure(self, policy: TlogPolicy) -> None:
        """Follow a newly adopted roster: its witnesses, their threshold and keys,
        and this node's own checkpoint key (a node the roster lists only now
        starts signing; one whose key the roster no longer lists stops)."""
        self._seen_notes.clear()  # which cosignatures count may have changed
        self._latest.clear()
        self.policy = policy
        self.witness_keys = policy.witness_keys(self.trust)
        self._key = self._configured_key
        try:
            self._check_own_key()
        except ValidationError as exc:
            log.error("not signing checkpoints: %s", exc)
            self._key = None
        self._recount_settled()
        self.sign_own()
        self._on_change()

    def resolved(self) -> None:
        """After a roster's fork resolution changed the stored logs."""
        self._seen_notes.clear()
        self._latest.clear()  # voided checkpoints are gone from the table
        self._recount_settled()

    def resolutions(self) -> list[Alert]:
        """Resolved forks (status shows them; evidence stays held)."""
        out: list[Alert] = []
        for origin, r in sorted(self.store.resolutions.records().items()):
            held = self.tables.size(origin)
            prefix = f"roster version {r.version} resolves the fork of {origin}"
            if r.state is State.REFUSED:
                out.append(Alert("resolution-refused", origin, "", f"{prefix}: {r.message}"))
                continue
            voided = f"{r.voided} entr(y/ies) from seq {r.keep} voided here" if r.voided else ""
            canonical = f"canonical size {r.size} root {r.root.hex()[:16]}"
            if r.state is State.PENDING and held < r.size:
                detail = f"{prefix} ({canonical}): waiting for its entries, {held} held"
                out.append(
                    Alert("resolving-fork", origin, "", "; ".join(filter(None, (detail, voided))))
                )
            else:
                detail = f"{prefix} ({canonical}): held"
                out.append(
                    Alert("resolved-fork", origin, "", "; ".join(filter(None, (detail, voided))))
                )
        return out

    def _recount_settled(self) -> None:
        self._settled = {}
        if not self.policy.witnesses:
            return
        for origin in self.store.heads():
            for size, text in self.tables.checkpoints_newest_first(origin):
                if self._count_cosigners(text) >= self.policy.threshold:
                    self._settled[origin] = size
                    break

    def _check_own_key(self) -> None:
        if self._key is None:
            return
        try:
            me = self.trust.member(self.node_id)
        except NodeError:
            self._key = None  # not a member (yet): nothing of ours to sign
            return
        raw = self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        if raw != me.checkpoint_public_key:
            raise ValidationError(
                f"the checkpoint key of this node does not match the checkpoint key of "
                f"{self.node_id} in the roster (publish a roster that lists it, or point "
                "tlog.checkpoint_key_file at the key the roster lists)"
            )

    @property
    def is_witness(self) -> bool:
        try:
            me = self.trust.member(self.node_id)
        except NodeError:
            return False
        return self._key is not None and me.id in self.policy.witnesses and is_witness(me)

    # -- own log ------------------------------------------------------------------

    def sign_own(self) -> bool:
        """Sign a checkpoint of this node's own log if it grew; True if one was signed."""
        if self._key is None:
            return False
        signed = self.tables.sign_own(self.node_id, self._key)
        if signed is None:
            return False
        self._signed(*signed)
        return True

    def _signed(self, size: int, note: str) -> None:
        """After a checkpoint of our own log committed: remember it, tell the
        witness submitter."""
        self._remember(self.node_id, size, note)
        log.info("signed checkpoint of %s at size %d", self.node_id, size)
        self.own_signal.notify()

    def committed(self, result: IngestResult) -> None:
        """Called after every ingest commit (own submissions and relayed batches)."""
        forks = result.evidence or sum(
            1 for _, error in result.errors if isinstance(error, EquivocationError)
        )
        if forks:
            self._evidence_learned(f"{forks} conflicting signed entr(y/ies) in one batch")
        if any(e.body.origin == self.node_id for e in result.accepted):
            self._sign_soon()

    def _sign_soon(self) -> None:
        """Sign a checkpoint now, or, if one was signed less than
        CHECKPOINT_INTERVAL_S ago, once that interval is over: a busy
        member publishes a checkpoint every interval, not one per commit
        (each is verified and stored by every node of the mesh)."""
        now = time.monotonic()
        wait = self._last_signed + CHECKPOINT_INTERVAL_S - now
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop (offline tools): sign at once
            self._last_signed = now
            self.sign_own()
            return
        if wait <= 0:
            self._signing_due()
        elif self._sign_timer is None:  # else already due
            self._sign_timer = loop.call_later(wait, self._signing_due)

    def _signing_due(self) -> None:
        self._sign_timer = None
        self._last_signed = time.monotonic()
        if self.writer is None:
            try:
                if self.sign_own():
                    self._on_change()  # wake follow streams: they carry the new checkpoint
            except NodeError as exc:  # a timer callback: nobody above to tell
                log.error("could not sign a checkpoint of %s: %s", self.node_id, exc)
            return
        # On the writer thread, in a group commit with whatever else is being written.
        self._signing = asyncio.get_running_loop().create_task(self._sign_on_writer())

    async def _sign_on_writer(self) -> None:
        key, writer = self._key, self.writer
        if key is None or writer is None:
            return
        try:
            signed = await writer.run(
                functools.partial(self.tables.sign_own_in, origin=self.node_id, key=key)
            )
        except NodeError as exc:  # a background task: nobody above to tell
            log.error("could not sign a checkpoint of %s: %s", self.node_id, exc)
            return
        if signed is not None:
            self._signed(*signed)
            self._on_change()  # wake follow streams: they carry the new checkpoint

    def stop(self) -> None:
        """Cancel the signing timer and a signing not yet started (shutdown);
        a signing already on the writer thread finishes there."""
        if self._sign_timer is not None:
            self._sign_timer.cancel()
            self._sign_timer = None
        if self._signing is not None and not self._signing.done():
            self._signing.cancel()

    def witness_targets(self) -> list[str]:
        """The witnesses this node asks to cosign its own checkpoints."""
        return [w for w in self.witness_keys if w != self.node_id]

    def own_latest(self) -> VerifiedCheckpoint | None:
        found = self.tables.latest_checkpoint(self.node_id)
        if found is None:
            return None
        return verify_checkpoint(found[1], self.trust, self.witness_keys)

    def add_cosignatures(self, checkpoint: VerifiedCheckpoint, lines: str) -> int:
        """Merge a witness's AddCheckpoint answer into the stored checkpoint.

        Returns how many cosignatures the stored checkpoint now has.
        """
        vc = verify_checkpoint(checkpoint.text + lines, self.trust, self.witness_keys, strict=True)
        if len(vc.cosigners) <= len(checkpoint.cosigners):
            raise ProvenanceError(
                f"witness answer for {vc.origin} size {vc.size} holds no valid cosignature "
                "by a configured witness"
            )
        merged = self.tables.add_cosignatures(vc, self.trust, self.witness_keys)
        if merged is None:
            raise NotFoundError(f"no checkpoint of {vc.origin} size {vc.size} is stored here")
        self._remember(merged.origin, merged.size, merged.text)
        self._note_settled(merged)
        self._on_change()
        return len(merged.cosigners)

    # -- reads --------------------------------------------------------------------

    def checkpoint(self, origin: str) -> tuple[str, str]:
        """The latest checkpoint held for ``origin``, and the latest settled one ("" if none)."""
        check_member_id(origin)
        found = self.tables.latest_checkpoint(origin)
        if found is None:
            raise NotFoundError(f"no checkpoint of {origin} is held here")
        settled = ""
        size = self._settled.get(origin, 0)
        if size:
            settled = self.tables.checkpoint_at(origin, size) or ""
        return found[1], settled

    def inclusion_proof(self, origin: str, seq: int, size: int) -> list[bytes]:
        check_member_id(origin)
        return self.tables.inclusion_proof(origin, seq, size)

    def consistency_proof(self, origin: str, old: int, new: int) -> list[bytes]:
        check_member_id(origin)
        return self.tables.consistency_proof(origin, old, new)

    def checkpoints_for_pull(
        self, cursors: Mapping[str, int], sent: dict[str, str], *, mark: bool = True
    ) -> list[str]:
        """Checkpoints a Pull stream should carry now: per origin the latest held at
        or below the caller's cursor, if it differs from what the stream sent.
        ``mark``: record them in ``sent`` (False: only look)."""
        out: list[str] = []
        for origin, n in sorted(cursors.items()):
            if n <= 0:
                continue
            latest = self._latest.get(origin)
            if latest is None:
                latest = self.tables.latest_checkpoint(origin) or (0, "")
                self._remember(origin, *latest)
            if latest[0] > n:  # the caller is behind it: the latest it can check
                latest = self.tables.latest_checkpoint(origin, n) or (0, "")
            text = latest[1]
            if text and sent.get(origin) != text:
                if mark:
                    sent[origin] = text
                out.append(text)
        return out

    def _forget(self, origin: str) -> None:
        self._latest.pop(origin, None)

    def _remember(self, origin: str, size: int, text: str) -> None:
        """Note a committed checkpoint (a larger size, or more cosignatures)."""
        if size >= self._latest.get(origin, (0, ""))[0]:
            self._latest[origin] = (size, text)

    def settled_sizes(self) -> dict[str, int]:
        return dict(self._settled)

    def settled(self, origin: str, seq: int) -> bool:
        return seq < self._settled.get(origin, 0)

    def fork_points(self) -> dict[str, int]:
        return self.tables.fork_points()

    def forked(self, origin: str) -> bool:
        return origin in self.tables.fork_points()

    def sizes(self) -> dict[str, tuple[int, int]]:
        """Per origin: (latest checkpoint size, settled size)."""
        out: dict[str, tuple[int, int]] = {}
        for origin in self.store.heads():
            found = self.tables.latest_checkpoint(origin)
            out[origin] = (found[0] if found else 0, self._settled.get(origin, 0))
        return out

    def evidence(self) -> list[StoredEvidence]:
        return self.tables.evidence()

    def evidence_count(self) -> int:
        return self.tables.evidence_count()

    # -- witnessing ---------------------------------------------------------------

    def add_checkpoint(self, old_size: int, proof: Sequence[bytes], note: str) -> str:
        """C2SP tlog-witness AddCheckpoint: this node's cosignature line."""
        me = self._witness_key()
        vc = verify_checkpoint(note, self.trust, {})
        if vc.origin == self.node_id:
            raise ValidationError(f"witness {self.node_id} does not cosign its own log")
        try:
            return self.tables.witness_add(
                vc,
                old_size=old_size,
                proof=list(proof),
                witness_id=self.node_id,
                key=me,
                trust=self.trust,
                now_ms=now_ms(),
            )
        except ConflictError:
            self._evidence_learned(f"{vc.origin} sent this witness two roots for one size")
            raise

    def _witness_key(self) -> Ed25519PrivateKey:
        if not self.is_witness or self._key is None:
            raise ProvenanceError(
                f"node {self.node_id} is not a witness (the roster's WITNESS role, with a "
                "witness threshold of at least 1)"
            )
        return self._key

    # -- from peers ---------------------------------------------------------------

    async def receive_checkpoints(self, peer: str, notes: Iterable[str]) -> None:
        """Check checkpoints a peer sent against the stored tree; never raises
        for a bad one (it is reported as an alert), so entry sync goes on.
        The checks and the write run on the writer thread: every new
        checkpoint of a response in one job."""
        job = self.checkpoint_job(notes)
        if job is None:
            return
        if self.writer is None:
            self.checked(peer, self.store.write(job))
        else:
            self.checked(peer, await self.writer.run(job))

    def checkpoint_job(self, notes: Iterable[str]) -> CheckJob | None:
        """The write-transaction part of :meth:`receive_checkpoints`, for a caller
        that runs it in its own job (after the entries the notes cover);
        hand the job's result to :meth:`checked`. None if nothing is new."""
        fresh = self._unseen(notes)
        if not fresh:
            return None
        return functools.partial(self._check_notes, texts=fresh, now=now_ms())

    def _unseen(self, notes: Iterable[str]) -> list[str]:
        # The same signed note from another peer has been checked already.
        return [t for t in dict.fromkeys(notes) if t not in self._seen_notes]

    def _check_notes(self, txn: object, texts: Sequence[str], now: int) -> list[CheckResult]:
        out: list[CheckResult] = []
        for text in texts:
            try:
                vc = verify_checkpoint(text, self.trust, self.witness_keys)
                outcome, proof = self.tables.accept_checkpoint_in(
                    txn, vc, self.trust, self.witness_keys, now
                )
            except NodeError as exc:
                out.append((text, exc, CheckpointOutcome.MISMATCH, None))
                continue
            out.append((text, vc, outcome, proof))
        return out

    def checked(self, peer: str, results: Sequence[CheckResult]) -> None:
        """After a :meth:`checkpoint_job` committed: alerts, evidence, settled sizes."""
        changed = False
        for text, vc, outcome, proof in results:
            if isinstance(vc, NodeError):
                self._checkpoint_alert("", peer, f"refused a checkpoint from {peer}: {vc}")
                continue
            if outcome is CheckpointOutcome.FORK and proof is not None:
                finding = ev.verify(proof, self.trust)
                self._evidence_learned(finding.summary)
            elif outcome is CheckpointOutcome.MISMATCH:
                self._checkpoint_alert(
                    vc.origin,
                    peer,
                    f"checkpoint of size {vc.size} from {peer} does not match the "
                    f"{vc.origin} entries stored here",
                )
            elif outcome in (CheckpointOutcome.STORED, CheckpointOutcome.MERGED):
                self._forget(vc.origin)  # a merge stored more than this note: re-read
                self._note_settled(vc)
                changed = True
            if outcome is not CheckpointOutcome.MISMATCH:
                self._seen_notes[text] = None
                if len(self._seen_notes) > SEEN_NOTES_CAP:
                    self._seen_notes.pop(next(iter(self._seen_notes)))
        if changed:
            self._on_change()  # once per batch: wakes follow streams to relay them

    def observe_frontier(self, peer: str, frontier: Mapping[str, int]) -> None:
        self._frontiers[peer] = dict(frontier)
        self.monitor.observe(peer, frontier, self._settled, now_ms())

    def submit_evidence(self, data: bytes) -> tuple[bytes, bool]:
        """Verify and keep gossiped evidence; returns (evidence id, newly held)."""
        proof = ev.ForkProof.decode(data)
        finding = ev.verify(proof, self.trust)
        new = self.tables.put_evidence(proof, finding.fork_point, now_ms())
        if new:
            self._evidence_learned(finding.summary)
        return proof.evidence_id, new

    # -- alerts -------------------------------------------------------------------

    def withholding(self) -> list[Alert]:
        now = now_ms()
        for peer, frontier in self._frontiers.items():
            self.monitor.observe(peer, frontier, self._settled, now)
        out: list[Alert] = []
        for w in self.monitor.flagged(now):
            detail = (
                f"peer {w.peer} serves {w.served} entries of {w.origin}, behind the "
                f"quorum-cosigned size {w.cosigned}, for {(now - w.since_ms) / 1000:.1f}s"
            )
            key = (w.peer, w.origin, w.cosigned)
            if key not in self._flag_logged:
                self._flag_logged.add(key)
                log.warning("WITHHOLDING: %s", detail)
            out.append(Alert("withholding", w.origin, w.peer, detail))
        return out

    def is_withholding(self, peer: str) -> bool:
        return any(a.peer == peer for a in self.withholding())

    def alerts(self) -> list[Alert]:
        counts: dict[str, int] = {}
        for stored in self.tables.evidence():
            try:
                origin = ev.ForkProof.decode(stored.data).origin
            except ValidationError:
                continue
            counts[origin] = counts.get(origin, 0) + 1
        out = [
            Alert(
                "equivocation",
                origin,
                "",
                f"{counts.get(origin, 0)} evidence record(s) prove {origin} forked its log; "
                f"its entries from seq {point} on are refused",
            )
            for origin, point in sorted(self.tables.fork_points().items())
        ]
        return out + self.resolutions() + self.withholding() + list(self._checkpoint_alerts)

    # -- internals ------------------------------------------------------------------

    def _evidence_learned(self, summary: str) -> None:
        log.warning("EQUIVOCATION: %s; see `ccnode status`", summary)
        self.evidence_signal.notify()

    def _checkpoint_alert(self, origin: str, peer: str, detail: str) -> None:
        log.warning("CHECKPOINT: %s", detail)
        self._checkpoint_alerts.append(Alert("checkpoint", origin, peer, detail))

    def _count_cosigners(self, text: str) -> int:
        """Cosignatures that verify (cosignature/v1) by the roster's witnesses."""
        try:
            vc = verify_checkpoint(text, self.trust, self.witness_keys)
        except NodeError:
            return 0
        return len(set(vc.cosigners) & self.policy.witnesses)

    def _note_settled(self, vc: VerifiedCheckpoint) -> None:
        """Re-read the stored checkpoint of ``vc``'s size; raise the settled size if due."""
        if not self.policy.witnesses:
            return
        text = self.tables.checkpoint_at(vc.origin, vc.size)
        if text is None:
            return
        if self._count_cosigners(text) >= self.policy.threshold:
            self._settled[vc.origin] = max(self._settled.get(vc.origin, 0), vc.size)
