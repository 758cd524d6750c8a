"""The transparency log's LMDB tables: tree hashes, checkpoints, witness state, evidence.

Sub-databases (named in ``lmdb_store._Db``; integers big-endian)::

    tree         origin 0x00 level:u8 0x00 index:u64 -> 32-byte hash of the complete
                 subtree of 2**level leaves from leaf index * 2**level
    checkpoints  origin 0x00 size:u64            -> signed note (UTF-8), the origin's
                 signature first, then verified witness cosignatures
    witnessed    origin                           -> size:u64 note: the checkpoint this
                 node, as a witness, cosigned last for that origin's log; or
                 size:u64 0x00 root:32 when a roster's fork resolution reset it
                 (``node/store/resolve.py``)
    forks        evidence_id                      -> recorded_ms:u64 evidence bytes
                 (``core.evidence`` encoding)
    fork_points  origin                           -> seq:u64, the lowest fork point of
                 all evidence held against the origin

Tree hashes are written in the same write transaction as the entry they
cover (``LeafAppender``, used by the store's append), so the tree never
disagrees with the entries. A stored checkpoint always matches the stored
tree at its size: checkpoints that cannot be checked yet are not stored.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

import lmdb
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.core import evidence as ev
from node.core import merkle
from node.core.checkpoint import Checkpoint, SignedNote
from node.core.entry import SignedEntry
from node.core.resolution import divergence_bound
from node.core.tlog import (
    StaleSizeError,
    VerifiedCheckpoint,
    cosign,
    log_name,
    merge,
    sign_checkpoint,
    verify_checkpoint,
)
from node.core.trust import TrustView
from node.errors import ConflictError, NotFoundError, StorageError, ValidationError

_U64 = struct.Struct(">Q")
_LEVEL_INDEX = struct.Struct(">BxQ")  # a tree key after its origin: level 0x00 index
#: Layout of a ``resolutions`` record (``node/store/resolve.py``) as far as
#: the ingest gate and evidence intake read it: size at [8, 16), root at
#: [16, 48), state byte at 48.
RES_STATE_AT = 48
RES_PENDING = 1
RES_REFUSED = 2

Write = Callable[[Callable[[Any], Any]], Any]


@contextmanager
def read_txn(env: Any, what: str) -> Iterator[Any]:
    """A read transaction; ``lmdb.Error`` becomes StorageError naming ``what``."""
    try:
        with env.begin() as txn:
            yield txn
    except lmdb.Error as exc:
        raise StorageError(f"reading {what}: {type(exc).__name__}: {exc}") from exc


def tree_key(origin: str, level: int, index: int) -> bytes:
    return origin.encode() + b"\x00" + _LEVEL_INDEX.pack(level, index)


def parse_tree_key(key: bytes) -> tuple[str, int, int]:
    origin, rest = key.split(b"\x00", 1)
    if len(rest) != 10 or rest[1:2] != b"\x00":
        raise ValidationError(f"tree key has a bad layout: {key.hex()}")
    return origin.decode(), rest[0], _U64.unpack(rest[2:])[0]


def checkpoint_key(origin: str, size: int) -> bytes:
    return origin.encode() + b"\x00" + _U64.pack(size)


def parse_prefixed_u64(key: bytes) -> tuple[str, int]:
    origin, rest = key.split(b"\x00", 1)
    if len(rest) != 8:
        raise ValidationError(f"key has a bad layout: {key.hex()}")
    return origin.decode(), _U64.unpack(rest)[0]


class _TxnReader:
    """``merkle.TreeHashReader`` over one origin's tree inside one transaction."""

    __slots__ = ("_db", "_origin", "_txn")

    def __init__(self, txn: Any, db: Any, origin: str) -> None:
        self._txn, self._db, self._origin = txn, db, origin

    def get(self, level: int, index: int) -> bytes:
        value = self._txn.get(tree_key(self._origin, level, index), db=self._db)
        if value is None:
            raise NotFoundError(
                f"no tree hash for {self._origin} level {level} index {index} stored here"
            )
        return bytes(value)


class _Overlay:
    """Tree hashes about to be written, over the stored ones."""

    __slots__ = ("_new", "_stored")

    def __init__(self, new: dict[tuple[int, int], bytes], stored: _TxnReader) -> None:
        self._new, self._stored = new, stored

    def get(self, level: int, index: int) -> bytes:
        found = self._new.get((level, index))
        return found if found is not None else self._stored.get(level, index)


class CheckpointOutcome(enum.Enum):
    STORED = "stored"  # new, matches our tree
    MERGED = "merged"  # known; new cosignatures added
    UNCHANGED = "unchanged"  # known; nothing new
    AHEAD = "ahead"  # larger than our tree: cannot check yet, not stored
    MISMATCH = "mismatch"  # does not match our tree; no signed counterpart to prove it
    FORK = "fork"  # does not match: evidence recorded


@dataclass(frozen=True, slots=True)
class StoredEvidence:
    evidence_id: bytes
    data: bytes
    recorded_ms: int


@dataclass(frozen=True, slots=True)
class WitnessState:
    size: int
    root: bytes
    note: str  # "" when nothing was cosigned yet


class LeafAppender:
    """Tree appends of one batch inside one write transaction.

    Per batch, an origin's fork point and pending resolution are read once,
    and the sibling hashes a new leaf needs are mostly ones this batch just
    wrote, so they are read from memory rather than LMDB.
    Every hash is still written to ``txn`` at once (reads in the same
    transaction see it), so an appender can be dropped at any point.

    Valid only while ``txn`` is. An origin's fork point is read once: once
    the batch records fork evidence against an origin it must append no
    more of that origin's entries (the store's ingest refuses the rest of
    that origin's batch as out of order).
    """

    __slots__ = ("_guards", "_tlog", "_tree", "_txn", "_written")

    def __init__(self, tlog: TlogTables, txn: Any) -> None:
        self._tlog, self._txn = tlog, txn
        self._tree = tlog._db["tree"]
        #: origin -> (fork point or None, resolution record or None)
        self._guards: dict[str, tuple[int | None, bytes | None]] = {}
        #: (origin, level, index) -> hash written by this batch
        self._written: dict[tuple[str, int, int], bytes] = {}

    def check(self, entry: SignedEntry) -> None:
        """Refuse entries of a forked origin from its fork point on; while a
        roster's resolution of its fork is pending, refuse the entry at the
        resolved size - 1 unless the tree then has the resolved root."""
        origin, seq = entry.body.origin, entry.body.seq
        guard = self._guards.get(origin)
        if guard is None:
            guard = self._guards[origin] = self._guard(origin)
        point, resolution = guard
        if point is not None and seq >= point:
            raise ConflictError(
                f"{origin} forked its log (evidence held): entries from seq "
                f"{point} on are refused until a newer roster resolves it, got seq {seq}"
            )
        if resolution is not None:
            self._tlog._check_resolved_root(self._txn, entry, resolution)

    def _guard(self, origin: str) -> tuple[int | None, bytes | None]:
        key = origin.encode()
        raw = self._txn.get(key, db=self._tlog._db["fork_points"])
        res = self._txn.get(key, db=self._tlog._db["resolutions"])
        return (
            _U64.unpack(raw)[0] if raw is not None else None,
            bytes(res) if res is not None else None,
        )

    def append(self, origin: str, seq: int, signed: bytes) -> None:
        """Write the tree hashes that leaf ``seq`` (signed-entry bytes) adds:
        the leaf, then each subtree it completes (RFC 6962 section 2.1)."""
        txn, tree, written = self._txn, self._tree, self._written
        prefix = origin.encode() + b"\x00"
        level, index = 0, seq
        current = merkle.leaf_hash(signed)
        while True:
            txn.put(prefix + _LEVEL_INDEX.pack(level, index), current, db=tree)
            if not index & 1:  # a left child: the next leaves' sibling
                written[(origin, level, index)] = current
                return
            left = written.pop((origin, level, index - 1), None)
            if left is None:
                stored = txn.get(prefix + _LEVEL_INDEX.pack(level, index - 1), db=tree)
                if stored is None:
                    raise NotFoundError(
                        f"no tree hash for {origin} level {level} index {index - 1} stored here"
                    )
                left = bytes(stored)
            current = merkle.node_hash(left, current)
            level, index = level + 1, index >> 1


class TlogTables:
    """Tree, checkpoint, witness and evidence tables of one LMDB environment.

    ``dbs`` holds the handles named ``entries``, ``heads``, ``tree``,
    ``checkpoints``, ``witnessed``, ``forks`` and ``fork_points``; ``write``
    runs a function in one write transaction (the store's, with its map-full
    retry). Methods taking ``txn`` run inside the caller's transaction.
    """

    def __init__(self, env: Any, write: Write, dbs: dict[str, Any]) -> None:
        self._env = env
        self._write = write
        self._db = dbs

    def _read(self) -> AbstractContextManager[Any]:
        return read_txn(self._env, "the transparency log")

    # -- inside the store's ingest transaction --------------------------------

    def appender(self, txn: Any) -> LeafAppender:
        """Tree appends for a batch of entries in ``txn`` (see :class:`LeafAppender`)."""
        return LeafAppender(self, txn)

    def _check_resolved_root(self, txn: Any, entry: SignedEntry, record: bytes) -> None:
        if len(record) <= RES_STATE_AT or record[RES_STATE_AT] != RES_PENDING:
            return
        size, root = _U64.unpack(record[8:16])[0], record[16:48]
        origin, seq = entry.body.origin, entry.body.seq
        if seq != size - 1:
            return
        reader = _TxnReader(txn, self._db["tree"], origin)
        new = {
            (level, index): value
            for level, index, value in merkle.append_hashes(
                seq, merkle.leaf_hash(entry.to_bytes()), reader
            )
        }
        got = merkle.root_from_store(size, _Overlay(new, reader))
        if got != root:
            raise ConflictError(
                f"{origin} seq {seq} does not lead to the canonical history the roster "
                f"resolved its fork to: root at size {size} would be {got.hex()[:16]}, "
                f"the roster names {root.hex()[:16]}"
            )

    def put_resolved_witness_state(self, txn: Any, origin: str, size: int, root: bytes) -> None:
        """Witness state set by a fork resolution: ``(size, root)``, no note."""
        txn.put(origin.encode(), _U64.pack(size) + b"\x00" + root, db=self._db["witnessed"])

    def record_entry_fork(self, txn: Any, entry: SignedEntry, now_ms: int) -> None:
        """Gossipable evidence for a verified entry that conflicts with a stored one."""
        body = entry.body
        entries = self._db["entries"]
        for seq in (body.seq, body.seq - 1):
            if seq < 0:
                continue
            raw = txn.get(origin_seq_key(body.origin, seq), db=entries)
            if raw is None:
                continue
            try:
                proof = ev.entry_fork(SignedEntry.from_bytes(bytes(raw)), entry)
            except ValidationError:
                continue
            self._put_evidence(txn, proof, ev.entry_fork_point(proof), now_ms)
            return

    def backfill(self) -> list[str]:
        """Build the tree of every origin whose entries predate the tree table.

        Stores written before the transparency log have entries but no tree
        hashes; this adds them, per origin in one write transaction. Returns
        the origins it built.
        """
        built: list[str] = []
        with self._read() as txn:
            todo = [
                bytes(k).decode()
                for k, v in txn.cursor(db=self._db["heads"])
                if _U64.unpack(v[:8])[0] > 0
                and txn.get(
                    tree_key(bytes(k).decode(), 0, _U64.unpack(v[:8])[0] - 1), db=self._db["tree"]
                )
                is None
            ]
        for origin in todo:

            def fn(txn: Any, origin: str = origin) -> None:
                prefix = origin.encode() + b"\x00"
                cur = txn.cursor(db=self._db["entries"])
                if not cur.set_range(prefix):
                    return
                tree = self.appender(txn)
                for key, value in cur:
                    if not bytes(key).startswith(prefix):
                        break
                    tree.append(origin, parse_prefixed_u64(bytes(key))[1], bytes(value))

            self._write(fn)
            built.append(origin)
        return built

    # -- reads ------------------------------------------------------------------

    def _size(self, txn: Any, origin: str) -> int:
        raw = txn.get(origin.encode(), db=self._db["heads"])
        return 0 if raw is None else int(_U64.unpack(raw[:8])[0])

    def _checked_size(self, txn: Any, origin: str, size: int, what: str) -> None:
        have = self._size(txn, origin)
        if size > have:
            raise NotFoundError(
                f"{what}: this node holds {have} entries of {origin}, asked for tree size {size}"
            )

    def size(self, origin: str) -> int:
        with self._read() as txn:
            return self._size(txn, origin)

    def root(self, origin: str, size: int) -> bytes:
        with self._read() as txn:
            self._checked_size(txn, origin, size, "root")
            return merkle.root_from_store(size, _TxnReader(txn, self._db["tree"], origin))

    def inclusion_proof(self, origin: str, seq: int, size: int) -> list[bytes]:
        with self._read() as txn:
            self._checked_size(txn, origin, size, "inclusion proof")
            return merkle.inclusion_proof(seq, size, _TxnReader(txn, self._db["tree"], origin))

    def consistency_proof(self, origin: str, old: int, new: int) -> list[bytes]:
        with self._read() as txn:
            self._checked_size(txn, origin, new, "consistency proof")
            return merkle.consistency_proof(old, new, _TxnReader(txn, self._db["tree"], origin))

    def checkpoint_at(self, origin: str, size: int) -> str | None:
        with self._read() as txn:
            raw = txn.get(checkpoint_key(origin, size), db=self._db["checkpoints"])
        return None if raw is None else bytes(raw).decode("utf-8")

    def latest_checkpoint(self, origin: str, at_most: int | None = None) -> tuple[int, str] | None:
        """The stored checkpoint of ``origin`` with the largest size (<= ``at_most``)."""
        with self._read() as txn:
            return self._latest(txn, origin, at_most)

    def _latest(self, txn: Any, origin: str, at_most: int | None) -> tuple[int, str] | None:
        prefix = origin.encode() + b"\x00"
        limit = 2**64 - 1 if at_most is None else at_most
        cur = txn.cursor(db=self._db["checkpoints"])
        if cur.set_range(prefix + _U64.pack(limit)):
            key = bytes(cur.key())
            if key.startswith(prefix) and _U64.unpack(key[len(prefix) :])[0] <= limit:
                return _U64.unpack(key[len(prefix) :])[0], bytes(cur.value()).decode()
            if not cur.prev():
                return None
        elif not cur.last():
            return None
        key = bytes(cur.key())
        if not key.startswith(prefix):
            return None
        return _U64.unpack(key[len(prefix) :])[0], bytes(cur.value()).decode()

    def latest_checkpoints(self, at_most: dict[str, int]) -> dict[str, tuple[int, str]]:
        """For each origin, the latest stored checkpoint with size <= the given size."""
        out: dict[str, tuple[int, str]] = {}
        with self._read() as txn:
            for origin, limit in at_most.items():
                found = self._latest(txn, origin, limit)
                if found is not None:
                    out[origin] = found
        return out

    def checkpoints(self, origin: str | None = None) -> Iterator[tuple[str, int, str]]:
        """Stored checkpoints as (origin, size, note), in key order."""
        prefix = b"" if origin is None else origin.encode() + b"\x00"
        with self._read() as txn:
            cur = txn.cursor(db=self._db["checkpoints"])
            if not cur.set_range(prefix):
                return
            for key, value in cur:
                if not bytes(key).startswith(prefix):
                    break
                o, size = parse_prefixed_u64(bytes(key))
                yield o, size, bytes(value).decode()

    def checkpoints_newest_first(self, origin: str) -> Iterator[tuple[int, str]]:
        """One origin's stored checkpoints as (size, note), largest size first."""
        prefix = origin.encode() + b"\x00"
        with self._read() as txn:
            cur = txn.cursor(db=self._db["checkpoints"])
            if cur.set_range(prefix + _U64.pack(2**64 - 1)):
                if not cur.prev():
                    return
            elif not cur.last():
                return
            while bytes(cur.key()).startswith(prefix):
                yield _U64.unpack(bytes(cur.key())[len(prefix) :])[0], bytes(cur.value()).decode()
                if not cur.prev():
                    return

    def witnessed(self, origin: str) -> WitnessState:
        with self._read() as txn:
            return self._witnessed(txn, origin)

    def _witnessed(self, txn: Any, origin: str) -> WitnessState:
        raw = txn.get(origin.encode(), db=self._db["witnessed"])
        if raw is None:
            return WitnessState(0, merkle.EMPTY_ROOT, "")
        if raw[8:9] == b"\x00":  # reset by a fork resolution: (size, root), no note
            return WitnessState(_U64.unpack(raw[:8])[0], bytes(raw[9:41]), "")
        note = bytes(raw[8:]).decode()
        return WitnessState(
            _U64.unpack(raw[:8])[0], Checkpoint.parse(SignedNote.parse(note).body).root, note
        )

    def evidence(self) -> list[StoredEvidence]:
        with self._read() as txn:
            return [
                StoredEvidence(bytes(k), bytes(v[8:]), _U64.unpack(v[:8])[0])
                for k, v in txn.cursor(db=self._db["forks"])
            ]

    def evidence_count(self) -> int:
        with self._read() as txn:
            return int(txn.stat(self._db["forks"])["entries"])

    def fork_points(self) -> dict[str, int]:
        with self._read() as txn:
            return {
                bytes(k).decode(): _U64.unpack(v)[0]
                for k, v in txn.cursor(db=self._db["fork_points"])
            }

    # -- writes -----------------------------------------------------------------

    def _put_evidence(self, txn: Any, proof: ev.ForkProof, point: int, now_ms: int) -> bool:
        data = proof.encode()
        new = bool(
            txn.put(
                proof.evidence_id, _U64.pack(now_ms) + data, db=self._db["forks"], overwrite=False
            )
        )
        key = proof.origin.encode()
        res = txn.get(key, db=self._db["resolutions"])
        if (
            res is not None
            and res[RES_STATE_AT] != RES_REFUSED
            and divergence_bound(proof) < _U64.unpack(res[8:16])[0]
        ):
            return new  # the fork a roster resolved (docs/transparency.md): refuses nothing
        raw = txn.get(key, db=self._db["fork_points"])
        if raw is None or point < _U64.unpack(raw)[0]:
            txn.put(key, _U64.pack(point), db=self._db["fork_points"])
        return new

    def put_evidence(self, proof: ev.ForkProof, point: int, now_ms: int) -> bool:
        """Store verified evidence; False if it was already held (never overwritten)."""
        result: bool = self._write(lambda txn: self._put_evidence(txn, proof, point, now_ms))
        return result

    def sign_own(self, origin: str, key: Ed25519PrivateKey) -> tuple[int, str] | None:
        """Sign and store a checkpoint of ``origin``'s log at its stored size, if new."""
        result: tuple[int, str] | None = self._write(lambda txn: self.sign_own_in(txn, origin, key))
        return result

    def sign_own_in(self, txn: Any, origin: str, key: Ed25519PrivateKey) -> tuple[int, str] | None:
        """:meth:`sign_own` inside the caller's write transaction."""
        size = self._size(txn, origin)
        if size == 0:
            return None
        latest = self._latest(txn, origin, None)
        if latest is not None and latest[0] >= size:
            return None
        root = merkle.root_from_store(size, _TxnReader(txn, self._db["tree"], origin))
        note = sign_checkpoint(origin, size, root, key)
        txn.put(checkpoint_key(origin, size), note.encode(), db=self._db["checkpoints"])
        return size, note

    def accept_checkpoint(
        self,
        vc: VerifiedCheckpoint,
        trust: TrustView,
        witnesses: dict[str, bytes],
        now_ms: int,
    ) -> tuple[CheckpointOutcome, ev.ForkProof | None]:
        """Check a verified checkpoint against the stored tree and checkpoints.

        Same size as a stored one: merge cosignatures, or two roots for one
        size (evidence). Within our tree: store it if its root matches ours;
        if not, and a stored checkpoint at a size >= it matches our tree,
        that pair plus our consistency proof is evidence. Beyond our tree:
        not stored (AHEAD).
        """
        result: tuple[CheckpointOutcome, ev.ForkProof | None] = self._write(
            lambda txn: self.accept_checkpoint_in(txn, vc, trust, witnesses, now_ms)
        )
        return result

    def accept_checkpoint_in(
        self,
        txn: Any,
        vc: VerifiedCheckpoint,
        trust: TrustView,
        witnesses: dict[str, bytes],
        now_ms: int,
    ) -> tuple[CheckpointOutcome, ev.ForkProof | None]:
        """:meth:`accept_checkpoint` inside the caller's write transaction."""
        origin, size = vc.origin, vc.size
        key = checkpoint_key(origin, size)
        db = self._db["checkpoints"]
        raw = txn.get(key, db=db)
        if raw is not None:
            stored = verify_checkpoint(bytes(raw).decode(), trust, witnesses)
            if stored.root == vc.root:
                merged = merge(stored, vc)
                if merged.text == stored.text:
                    return CheckpointOutcome.UNCHANGED, None
                txn.put(key, merged.text.encode(), db=db)
                return CheckpointOutcome.MERGED, None
            proof = ev.checkpoint_fork(stored, vc, vc.root)
            self._put_evidence(txn, proof, size, now_ms)
            return CheckpointOutcome.FORK, proof
        have = self._size(txn, origin)
        if size > have:
            return CheckpointOutcome.AHEAD, None
        reader = _TxnReader(txn, self._db["tree"], origin)
        ours = merkle.root_from_store(size, reader)
        if ours == vc.root:
            txn.put(key, vc.text.encode(), db=db)
            return CheckpointOutcome.STORED, None
        later = self._first_at_least(txn, origin, size)
        if later is None:
            return CheckpointOutcome.MISMATCH, None
        other = verify_checkpoint(later, trust, witnesses)
        cproof = tuple(merkle.consistency_proof(size, other.size, reader))
        proof = ev.checkpoint_fork(vc, other, ours, cproof)
        self._put_evidence(txn, proof, size, now_ms)
        return CheckpointOutcome.FORK, proof

    def _first_at_least(self, txn: Any, origin: str, size: int) -> str | None:
        prefix = origin.encode() + b"\x00"
        cur = txn.cursor(db=self._db["checkpoints"])
        if cur.set_range(prefix + _U64.pack(size)) and bytes(cur.key()).startswith(prefix):
            return bytes(cur.value()).decode()
        return None

    def add_cosignatures(
        self, vc: VerifiedCheckpoint, trust: TrustView, witnesses: dict[str, bytes]
    ) -> VerifiedCheckpoint | None:
        """Merge the cosignatures of ``vc`` into the stored checkpoint of its size.

        Returns the merged checkpoint, or None if none of that size and root is stored.
        """

        def fn(txn: Any) -> VerifiedCheckpoint | None:
            key = checkpoint_key(vc.origin, vc.size)
            raw = txn.get(key, db=self._db["checkpoints"])
            if raw is None:
                return None
            stored = verify_checkpoint(bytes(raw).decode(), trust, witnesses)
            if stored.root != vc.root:
                return None
            merged = merge(stored, vc)
            if merged.text != stored.text:
                txn.put(key, merged.text.encode(), db=self._db["checkpoints"])
            return merged

        result: VerifiedCheckpoint | None = self._write(fn)
        return result

    def witness_add(
        self,
        vc: VerifiedCheckpoint,
        *,
        old_size: int,
        proof: list[bytes],
        witness_id: str,
        key: Ed25519PrivateKey,
        trust: TrustView,
        now_ms: int,
    ) -> str:
        """C2SP tlog-witness check-and-persist, in one write transaction.

        Returns this witness's cosignature line. Raises StaleSizeError when
        ``old_size`` is not the size cosigned last, ValidationError for a bad
        request or proof, ConflictError (after recording evidence) for a
        second root at the size cosigned last.
        """

        def fn(txn: Any) -> tuple[str, Exception | None]:
            state = self._witnessed(txn, vc.origin)
            if old_size != state.size:
                return "", StaleSizeError(
                    f"old size {old_size} is stale: this witness cosigned size {state.size} "
                    f"of {log_name(vc.origin)} last",
                    state.size,
                )
            if vc.size < old_size:
                return "", ValidationError(
                    f"checkpoint size {vc.size} is smaller than old size {old_size}"
                )
            if vc.size == state.size and state.note and vc.root != state.root:
                stored = verify_checkpoint(state.note, trust, {})
                fork = ev.checkpoint_fork(stored, vc, vc.root)
                self._put_evidence(txn, fork, vc.size, now_ms)
                return "", ConflictError(
                    f"{vc.origin} signed two roots for size {vc.size}: evidence recorded"
                )
            merkle.verify_consistency(old_size, vc.size, proof, state.root, vc.root)
            txn.put(
                vc.origin.encode(),
                _U64.pack(vc.size) + vc.origin_only().encode(),
                db=self._db["witnessed"],
            )
            return cosign(vc, witness_id, key, now_ms // 1000), None

        line, error = self._write(fn)
        if error is not None:
            raise error
        return str(line)


def origin_seq_key(origin: str, seq: int) -> bytes:
    return origin.encode() + b"\x00" + _U64.pack(seq)
