"""The LMDB store: one environment per node, named sub-databases.

Keys (all integers big-endian so LMDB's byte order is numeric order)::

    entries   origin 0x00 seq:u64          -> signed-entry bytes
    ids       entry_id                     -> arrival_ms:u64 seq:u64 origin
    hashes    algorithm 0x00 value         -> entry_id   (dupsort; opaque video
              algorithm 0x01 SHA-256(value)                 features by digest)
    heads     origin                       -> next_seq:u64 head_id:32
    retracted target entry_id              -> retracting entry_id
    cursors   peer 0x00 origin             -> next_seq:u64 (what that peer gave us)
    evidence  origin 0x00 seq:u64 entry_id -> recorded_ms:u64 conflicting signed bytes
    meta      name                         -> value
    tree, checkpoints, witnessed, forks, fork_points: the transparency log,
              see ``node.store.tree`` (tree hashes are written in the same
              transaction as the entry they cover)
    feedback  target entry_id || entry_id  -> kind:u8 (node/store/feedback.py)
    rosters   version:u64                  -> signed roster bytes (adopted history)
    voided, resolutions: the roster's fork resolutions and the losing
              branches they moved out of the live tables, see ``node.store.resolve``

Every batch is one write transaction: an entry is acknowledged only after
the transaction that stored it has committed (``sync`` and ``metasync`` on).
One process owns the environment; the node opens it once.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import struct
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import lmdb

from node.core.entry import Kind, SignedEntry
from node.core.feedback import Stored
from node.core.hashes import ALGORITHMS
from node.core.ordering import Decision, decide
from node.errors import (
    EquivocationError,
    NodeError,
    OrderingError,
    StorageError,
)
from node.store.base import Evidence, Head, IngestResult, Outcome, StoredEntry
from node.store.feedback import FeedbackIndex
from node.store.resolve import ResolutionTables
from node.store.tree import LeafAppender, TlogTables

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
DEFAULT_MAP_SIZE = 1 << 34  # 16 GiB of address space; the file grows as used
_U64 = struct.Struct(">Q")
_MAX_U64 = 2**64 - 1
_ID_ROW = struct.Struct(">QQ")  # an ids row before its origin: arrival_ms, seq


class _Db(enum.Enum):
    ENTRIES = b"entries"
    IDS = b"ids"
    HASHES = b"hashes"
    HEADS = b"heads"
    RETRACTED = b"retracted"
    CURSORS = b"cursors"
    EVIDENCE = b"evidence"
    META = b"meta"
    TREE = b"tree"
    CHECKPOINTS = b"checkpoints"
    WITNESSED = b"witnessed"
    FORKS = b"forks"
    FORK_POINTS = b"fork_points"
    FEEDBACK = b"feedback"
    ROSTERS = b"rosters"
    VOIDED = b"voided"
    RESOLUTIONS = b"resolutions"


def _entry_key(origin: str, seq: int) -> bytes:
    return origin.encode() + b"\x00" + _U64.pack(seq)


def _hash_key(algorithm: str, value: bytes) -> bytes:
    """Index key of a hash. Opaque (video feature) values can be far longer
    than LMDB's 511-byte key limit, so they are indexed by their SHA-256."""
    if ALGORITHMS[algorithm].long_values:
        return algorithm.encode() + b"\x01" + hashlib.sha256(value).digest()
    return algorithm.encode() + b"\x00" + value


@contextmanager
def _lmdb_errors(what: str) -> Iterator[None]:
    try:
        yield
    except lmdb.Error as exc:
        raise StorageError(f"{what}: {type(exc).__name__}: {exc}") from exc


class LmdbStore:
    """The node's persistent state. Not thread-safe for writers: one writer."""

    def __init__(
        self,
        path: Path,
        *,
        map_size: int = DEFAULT_MAP_SIZE,
        max_map_size: int = 0,
        readonly: bool = False,
    ) -> None:
        """``max_map_size``: grow the map on demand up to this (0: no cap).
        ``readonly``: a reader beside the owning process (backup, export)."""
        self.max_map_size = max_map_size
        #: Why writes are being refused (map full and not growable), or "".
        self.write_error = ""
        #: Moves on after every write transaction; read caches compare it.
        self._generation = 0
        self._heads_cache: tuple[int, dict[str, Head]] | None = None
        if readonly:
            self._open_readonly(path)
            self.path = path
            return
        path.mkdir(parents=True, exist_ok=True)
        with _lmdb_errors(f"opening LMDB at {path}"):
            self._env = lmdb.open(
                str(path),
                map_size=map_size,
                max_dbs=len(_Db) + 2,
                subdir=True,
                sync=True,
                metasync=True,
                readahead=False,
                max_readers=256,
            )
            self._dbs: dict[_Db, Any] = {
                d: self._env.open_db(d.value, dupsort=(d is _Db.HASHES)) for d in _Db
            }
            with self._env.begin(write=True) as txn:
                meta = self._dbs[_Db.META]
                stored = txn.get(b"schema", db=meta)
                if stored is None:
                    txn.put(b"schema", _U64.pack(SCHEMA_VERSION), db=meta)
                elif _U64.unpack(stored)[0] != SCHEMA_VERSION:
                    raise StorageError(
                        f"store schema {_U64.unpack(stored)[0]}: this node reads {SCHEMA_VERSION}"
                    )
        self.path = path
        # The append path's handles, looked up once (an Enum-keyed lookup
        # per row is measurable at catch-up rates).
        self._entries_db = self._dbs[_Db.ENTRIES]
        self._ids_db = self._dbs[_Db.IDS]
        self._hashes_db = self._dbs[_Db.HASHES]
        self.tlog = TlogTables(self._env, self._write, {d.name.lower(): self._dbs[d] for d in _Db})
        self.resolutions = ResolutionTables(
            self._env,
            self._write,
            {d.name.lower(): self._dbs[d] for d in _Db},
            self.tlog,
            _hash_key,
        )
        self._feedback = FeedbackIndex(
            self._dbs[_Db.FEEDBACK], self._dbs[_Db.RETRACTED], self._stored_in
        )

    # -- reads -------------------------------------------------------------

    def head(self, origin: str) -> Head:
        with _lmdb_errors("reading head"), self._env.begin() as txn:
            return self._head(txn, origin)

    def heads(self) -> dict[str, Head]:
        """Every origin's head (a fresh dict). Read often (each sync batch,
        each follow wake-up), so the last reading is kept until a write commits."""
        generation = self._generation
        cached = self._heads_cache
        if cached is not None and cached[0] == generation:
            return dict(cached[1])
        out: dict[str, Head] = {}
        with _lmdb_errors("reading heads"), self._env.begin() as txn:
            for key, value in txn.cursor(db=self._dbs[_Db.HEADS]):
                out[bytes(key).decode()] = Head(_U64.unpack(value[:8])[0], bytes(value[8:]))
        # Read after noting the generation: a commit meanwhile moves the
        # generation on, and this reading is never used again.
        self._heads_cache = (generation, out)
        return dict(out)

    def get(self, entry_id: bytes) -> StoredEntry | None:
        with _lmdb_errors("reading entry"), self._env.begin() as txn:
            return self._stored_in(txn, entry_id)

    def locate_many(self, entry_ids: Sequence[bytes]) -> list[tuple[str, int, int, bool] | None]:
        """Per entry id: (origin, seq, arrival_ms, retracted), or None if not
        stored; from the id index alone, without reading or decoding entries
        (what ranking many matches needs)."""
        out: list[tuple[str, int, int, bool] | None] = []
        with _lmdb_errors("locating entries"), self._env.begin() as txn:
            ids, retracted = self._dbs[_Db.IDS], self._dbs[_Db.RETRACTED]
            for entry_id in entry_ids:
                loc = txn.get(entry_id, db=ids)
                if loc is None:
                    out.append(None)
                    continue
                arrival, seq = struct.unpack(">QQ", loc[:16])
                gone = txn.get(entry_id, db=retracted) is not None
                out.append((bytes(loc[16:]).decode(), seq, arrival, gone))
        return out

    def ids_with_prefix(self, prefix: bytes, limit: int) -> list[bytes]:
        """Up to ``limit`` stored entry ids that begin with ``prefix``, in order."""
        out: list[bytes] = []
        with _lmdb_errors("reading entry ids"), self._env.begin() as txn:
            cursor = txn.cursor(db=self._dbs[_Db.IDS])
            if not cursor.set_range(prefix):
                return out
            for key in cursor.iternext(keys=True, values=False):
                if not bytes(key).startswith(prefix) or len(out) >= limit:
                    break
                out.append(bytes(key))
        return out

    def _stored_in(self, txn: Any, entry_id: bytes) -> StoredEntry | None:
        loc = txn.get(entry_id, db=self._dbs[_Db.IDS])
        if loc is None:
            return None
        arrival, seq = struct.unpack(">QQ", loc[:16])
        raw = txn.get(_entry_key(bytes(loc[16:]).decode(), seq), db=self._dbs[_Db.ENTRIES])
        if raw is None:
            raise StorageError(f"entry {entry_id.hex()} is indexed but not stored")
        retracted_by = txn.get(entry_id, db=self._dbs[_Db.RETRACTED]) or b""
        return StoredEntry(SignedEntry.from_bytes(bytes(raw)), arrival, bytes(retracted_by))

    def feedback_for(self, target: bytes) -> list[Stored]:
        """Stored feedback entries acting on ``target`` (it need not be stored)."""
        with _lmdb_errors("reading feedback"), self._env.begin() as txn:
            return self._feedback.items(txn, target)

    def entries_from(self, origin: str, seq: int, limit: int) -> list[SignedEntry]:
        return [SignedEntry.from_bytes(raw) for raw in self.raw_entries_from(origin, seq, limit)]

    def raw_entries_from(
        self, origin: str, seq: int, limit: int, max_bytes: int = 1 << 62
    ) -> list[bytes]:
        """Stored signed-entry bytes of ``origin`` from ``seq``, in order:
        at most ``limit`` entries, and no more than ``max_bytes`` in all
        (but always at least one entry if there is one)."""
        out: list[bytes] = []
        size = 0
        prefix = origin.encode() + b"\x00"
        with _lmdb_errors("reading entries"), self._env.begin() as txn:
            cur = txn.cursor(db=self._dbs[_Db.ENTRIES])
            if not cur.set_key(prefix + _U64.pack(seq)):
                return out
            for key, value in cur:
                if len(out) >= limit or not bytes(key).startswith(prefix):
                    break
                size += len(value)
                if out and size > max_bytes:
                    break
                out.append(bytes(value))
        return out

    def lookup(self, algorithm: str, value: bytes) -> list[bytes]:
        with _lmdb_errors("looking up hash"), self._env.begin() as txn:
            cur = txn.cursor(db=self._dbs[_Db.HASHES])
            if not cur.set_key(_hash_key(algorithm, value)):
                return []
            return [bytes(v) for v in cur.iternext_dup()]

    def known(self, entry_ids: Sequence[bytes]) -> list[bool]:
        """Which of these entry ids are stored (one read transaction)."""
        with _lmdb_errors("checking entry ids"), self._env.begin() as txn:
            ids = self._dbs[_Db.IDS]
            return [txn.get(eid, db=ids) is not None for eid in entry_ids]

    def lookup_many(self, keys: Sequence[tuple[str, bytes]]) -> list[list[bytes]]:
        """Batch exact lookups in one read transaction."""
        out: list[list[bytes]] = []
        with _lmdb_errors("looking up hashes"), self._env.begin() as txn:
            cur = txn.cursor(db=self._dbs[_Db.HASHES])
            for algorithm, value in keys:
                if cur.set_key(_hash_key(algorithm, value)):
                    out.append([bytes(v) for v in cur.iternext_dup()])
                else:
                    out.append([])
        return out

    def iter_entries(self) -> Iterator[StoredEntry]:
        """Every stored entry, origin by origin in seq order (for index builds, audit)."""
        with _lmdb_errors("scanning entries"), self._env.begin() as txn:
            ids = self._dbs[_Db.IDS]
            retracted = self._dbs[_Db.RETRACTED]
            for _key, value in txn.cursor(db=self._dbs[_Db.ENTRIES]):
                entry = SignedEntry.from_bytes(bytes(value))
                eid = entry.entry_id
                loc = txn.get(eid, db=ids)
                arrival = _U64.unpack(loc[:8])[0] if loc is not None else 0
                yield StoredEntry(entry, arrival, bytes(txn.get(eid, db=retracted) or b""))

    def evidence(self) -> list[Evidence]:
        out: list[Evidence] = []
        with _lmdb_errors("reading evidence"), self._env.begin() as txn:
            for key, value in txn.cursor(db=self._dbs[_Db.EVIDENCE]):
                origin_b, rest = bytes(key).split(b"\x00", 1)
                seq = _U64.unpack(rest[:8])[0]
                stored = txn.get(_entry_key(origin_b.decode(), seq), db=self._dbs[_Db.ENTRIES])
                out.append(
                    Evidence(
                        origin=origin_b.decode(),
                        seq=seq,
                        stored=bytes(stored or b""),
                        conflicting=bytes(value[8:]),
                        recorded_ms=_U64.unpack(value[:8])[0],
                    )
                )
        return out

    def peer_cursors(self, peer: str) -> dict[str, int]:
        prefix = peer.encode() + b"\x00"
        out: dict[str, int] = {}
        with _lmdb_errors("reading cursors"), self._env.begin() as txn:
            cur = txn.cursor(db=self._dbs[_Db.CURSORS])
            if cur.set_range(prefix):
                for key, value in cur:
                    if not bytes(key).startswith(prefix):
                        break
                    out[bytes(key[len(prefix) :]).decode()] = _U64.unpack(value)[0]
        return out

    def iter_hashes(self, algorithm: str) -> Iterator[tuple[bytes, bytes, bool]]:
        """``(value, entry_id, retracted)`` for every indexed hash of one
        algorithm, in index order (for building in-memory match indexes)."""
        prefix = algorithm.encode() + b"\x00"
        with _lmdb_errors("scanning hash index"), self._env.begin() as txn:
            retracted = self._dbs[_Db.RETRACTED]
            cur = txn.cursor(db=self._dbs[_Db.HASHES])
            if not cur.set_range(prefix):
                return
            for raw_key, entry_id in cur.iternext(keys=True, values=True):
                key = bytes(raw_key)
                if not key.startswith(prefix):
                    break
                eid = bytes(entry_id)
                yield key[len(prefix) :], eid, txn.get(eid, db=retracted) is not None

    def iter_stored(self, algorithm: str) -> Iterator[StoredEntry]:
        """Every stored ADD entry of a long-valued algorithm (VPDQ segments),
        in index order, for building the frame index at start-up."""
        prefix = algorithm.encode() + b"\x01"
        with _lmdb_errors("scanning hash index"), self._env.begin() as txn:
            cur = txn.cursor(db=self._dbs[_Db.HASHES])
            if not cur.set_range(prefix):
                return
            for raw_key, entry_id in cur.iternext(keys=True, values=True):
                if not bytes(raw_key).startswith(prefix):
                    break
                stored = self._stored_in(txn, bytes(entry_id))
                if stored is not None:
                    yield stored

    def count(self) -> int:
        with _lmdb_errors("counting"), self._env.begin() as txn:
            return int(txn.stat(self._dbs[_Db.ENTRIES])["entries"])

    # -- writes ------------------------------------------------------------

    def ingest(
        self,
        entries: Sequence[SignedEntry],
        *,
        atomic: bool,
        peer: str | None = None,
        now_ms: int,
    ) -> IngestResult:
        """Append verified entries in one write transaction.

        Signatures and provenance must already be checked by the caller.

        - ``atomic``: the batch commits whole or not at all; the first refused
          entry aborts it (its error is the only one reported).
        - otherwise every entry that can be appended is; a refused entry is
          reported, and later entries of the same origin are refused as out
          of order (they cannot chain onto a refused one).

        Equivocation evidence is committed in either case: it is signed by
        the origin and proves a fork whatever happens to the batch.
        """
        result: IngestResult = self._write(
            lambda txn: self.ingest_in(txn, entries, atomic=atomic, peer=peer, now_ms=now_ms)
        )
        return result

    def ingest_in(
        self,
        txn: Any,
        entries: Sequence[SignedEntry],
        *,
        atomic: bool,
        peer: str | None = None,
        now_ms: int,
    ) -> IngestResult:
        """:meth:`ingest` inside the caller's write transaction (a group
        commit): the entries go in a nested transaction, aborted on its own
        if an atomic batch is refused, while the evidence stays."""
        inner = self._env.begin(write=True, parent=txn)
        try:
            result = self._ingest(inner, entries, peer, now_ms, atomic)
        except _Abort as abort:
            inner.abort()
            if abort.evidence is not None:
                self._put_evidence(txn, abort.evidence, now_ms)
            return abort.result
        except BaseException:
            inner.abort()
            raise
        inner.commit()
        return result

    def write_group(self, jobs: Sequence[Callable[[Any], Any]]) -> list[tuple[bool, Any]]:
        """Run each job in a nested transaction of one write transaction and
        commit once; per job ``(True, result)`` or ``(False, exception)``.

        A job that raises has its nested transaction aborted and nothing of
        it is kept; the others commit. Jobs must be functions of the
        transaction alone: a full map aborts the group, grows the map and
        runs every job again.
        """

        def fn(txn: Any) -> list[tuple[bool, Any]]:
            out: list[tuple[bool, Any]] = []
            for job in jobs:
                inner = self._env.begin(write=True, parent=txn)
                try:
                    value = job(inner)
                except lmdb.MapFullError:
                    inner.abort()
                    raise  # the whole group: grow and retry
                except Exception as exc:  # noqa: BLE001 - handed to its caller
                    inner.abort()
                    out.append((False, exc))
                    continue
                inner.commit()
                out.append((True, value))
            return out

        result: list[tuple[bool, Any]] = self._write(fn)
        return result

    def write(self, fn: Callable[[Any], Any]) -> Any:
        """Run ``fn(txn)`` in a write transaction of its own and commit."""
        return self._write(fn)

    def _write(self, fn: Any) -> Any:
        if self.write_error:
            # Full at its cap: refuse every write until a restart with more
            # room, so small writes (checkpoints) cannot half-hide the state.
            raise StorageError(self.write_error)
        for attempt in range(8):
            try:
                try:
                    with self._env.begin(write=True) as txn:
                        return fn(txn)
                finally:
                    self._generation += 1  # committed or not: cached readings are stale
            except lmdb.MapFullError:
                # The map is address space, not disk: grow it and retry the
                # whole transaction (nothing of the failed one was kept).
                self._grow(attempt)
            except lmdb.Error as exc:
                raise StorageError(f"write failed: {type(exc).__name__}: {exc}") from exc
        self._refuse_writes("LMDB map full and still full after 8 doublings")

    def _grow(self, attempt: int) -> None:
        size = self._env.info()["map_size"]
        new_size = size * 2
        if self.max_map_size:
            new_size = min(new_size, self.max_map_size)
        if new_size <= size:
            self._refuse_writes(
                f"LMDB map full at {size >> 20} MiB, the cap set by lmdb_map_max_mib"
            )
        log.warning("LMDB map full; growing map to %d bytes (try %d)", new_size, attempt)
        try:
            self._env.set_mapsize(new_size)
        except lmdb.Error as exc:
            self._refuse_writes(
                f"LMDB map full at {size >> 20} MiB and growing it to {new_size >> 20} MiB "
                f"failed ({type(exc).__name__}: {exc})"
            )

    def _refuse_writes(self, why: str) -> NoReturn:
        self.write_error = (
            f"{why}: writes are refused, reads are still served; raise lmdb_map_max_mib "
            "or free disk space and restart (docs/operators.md, 'map full')"
        )
        log.error("%s", self.write_error)
        raise StorageError(self.write_error)

    def _ingest(
        self,
        txn: Any,
        entries: Sequence[SignedEntry],
        peer: str | None,
        now_ms: int,
        atomic: bool,
    ) -> IngestResult:
        outcomes: list[Outcome | NodeError] = []
        accepted: list[SignedEntry] = []
        heads: dict[str, Head] = {}
        refused: set[str] = set()
        evidence = 0
        tree = self.tlog.appender(txn)
        for i, entry in enumerate(entries):
            origin = entry.body.origin
            if origin in refused:
                outcomes.append(
                    OrderingError(
                        f"out of order: {origin} seq {entry.body.seq} follows a refused entry"
                    )
                )
                continue
            head = heads.get(origin) or self._head(txn, origin)
            stored = None
            if entry.body.seq < head.next_seq:
                raw = txn.get(_entry_key(origin, entry.body.seq), db=self._dbs[_Db.ENTRIES])
                stored = bytes(raw) if raw else None
            try:
                decision = decide(entry, head.next_seq, head.head_id, stored)
                if decision is Decision.APPEND:
                    tree.check(entry)
                    self._feedback.check(txn, entry, strict=peer is None)
            except NodeError as exc:
                is_fork = isinstance(exc, EquivocationError)
                if atomic:
                    where = f"entry {i + 1} of {len(entries)}: " if len(entries) > 1 else ""
                    error = type(exc)(where + str(exc))
                    raise _Abort(IngestResult((error,), ()), entry if is_fork else None) from None
                if is_fork:
                    self._put_evidence(txn, entry, now_ms)
                    evidence += 1
                outcomes.append(exc)
                refused.add(origin)
                continue
            if decision is Decision.DUPLICATE:
                outcomes.append(Outcome.DUPLICATE)
                continue
            self._append(txn, entry, now_ms, tree)
            heads[origin] = Head(entry.body.seq + 1, entry.entry_id)
            outcomes.append(Outcome.ACCEPTED)
            accepted.append(entry)
        for origin, head in heads.items():  # once per origin, not once per entry
            value = _U64.pack(head.next_seq) + head.head_id
            txn.put(origin.encode(), value, db=self._dbs[_Db.HEADS])
        if peer is not None:
            for origin, head in heads.items():
                txn.put(
                    peer.encode() + b"\x00" + origin.encode(),
                    _U64.pack(head.next_seq),
                    db=self._dbs[_Db.CURSORS],
                )
        return IngestResult(tuple(outcomes), tuple(accepted), evidence)

    def _append(self, txn: Any, entry: SignedEntry, now_ms: int, tree: LeafAppender) -> None:
        """One entry's rows; the caller writes the origin's head after the batch."""
        body = entry.body
        eid = entry.entry_id
        signed = entry.to_bytes()
        txn.put(_entry_key(body.origin, body.seq), signed, db=self._entries_db)
        tree.append(body.origin, body.seq, signed)
        txn.put(eid, _ID_ROW.pack(now_ms, body.seq) + body.origin.encode(), db=self._ids_db)
        if body.kind is Kind.ADD:
            txn.put(_hash_key(body.algorithm, body.hash), eid, db=self._hashes_db)
        else:
            self._feedback.on_append(txn, entry)

    def _put_evidence(self, txn: Any, entry: SignedEntry, now_ms: int) -> None:
        key = _entry_key(entry.body.origin, entry.body.seq) + entry.entry_id
        txn.put(key, _U64.pack(now_ms) + entry.to_bytes(), db=self._dbs[_Db.EVIDENCE])
        self.tlog.record_entry_fork(txn, entry, now_ms)

    def _head(self, txn: Any, origin: str) -> Head:
        raw = txn.get(origin.encode(), db=self._dbs[_Db.HEADS])
        if raw is None:
            return Head()
        return Head(_U64.unpack(raw[:8])[0], bytes(raw[8:]))

    def close(self) -> None:
        self._env.close()

    # -- operations (metrics, health, backup) -------------------------------

    def _open_readonly(self, path: Path) -> None:
        if not (path / "data.mdb").is_file():
            raise StorageError(f"no LMDB store at {path} (expected {path / 'data.mdb'})")
        with _lmdb_errors(f"opening LMDB at {path} read-only"):
            self._env = lmdb.open(
                str(path), readonly=True, max_dbs=len(_Db) + 2, subdir=True, readahead=False
            )
            # Without a txn argument py-lmdb opens each handle in a read
            # transaction of its own that it commits, so the handles stay valid.
            self._dbs = {
                d: self._env.open_db(d.value, create=False, dupsort=(d is _Db.HASHES)) for d in _Db
            }

    def stats(self) -> StoreStats:
        """Sizes for metrics: map size and use, entries, hash-index rows."""
        with _lmdb_errors("reading store stats"), self._env.begin() as txn:
            info = self._env.info()
            psize = self._env.stat()["psize"]
            return StoreStats(
                map_size=int(info["map_size"]),
                used=int((info["last_pgno"] + 1) * psize),
                entries=int(txn.stat(self._dbs[_Db.ENTRIES])["entries"]),
                hashes=int(txn.stat(self._dbs[_Db.HASHES])["entries"]),
                evidence=int(txn.stat(self._dbs[_Db.EVIDENCE])["entries"]),
            )

    def check(self) -> None:
        """Health probe: a read transaction that reads the schema record."""
        with _lmdb_errors("health check"), self._env.begin() as txn:
            if txn.get(b"schema", db=self._dbs[_Db.META]) is None:
                raise StorageError("health check: the store has no schema record")

    def copy_to(self, directory: Path) -> None:
        """A consistent, compacted copy (one read transaction; writers go on)."""
        with _lmdb_errors(f"copying LMDB to {directory}"):
            self._env.copy(str(directory), compact=True)

    # -- roster history ----------------------------------------------------

    def put_rosters(self, rosters: Sequence[tuple[int, bytes]]) -> None:
        """Append adopted rosters (version, signed bytes) in one write txn."""

        def put(txn: Any) -> None:
            for version, data in rosters:
                txn.put(_U64.pack(version), data, db=self._dbs[_Db.ROSTERS])

        self._write(put)

    def latest_roster(self) -> bytes | None:
        with _lmdb_errors("reading roster"), self._env.begin() as txn:
            cur = txn.cursor(db=self._dbs[_Db.ROSTERS])
            return bytes(cur.value()) if cur.last() else None

    def rosters_after(self, version: int, limit: int) -> list[bytes]:
        """Signed rosters newer than ``version``, oldest first, at most ``limit``."""
        out: list[bytes] = []
        if version >= _MAX_U64:  # nothing is newer than the largest version
            return out
        with _lmdb_errors("reading rosters"), self._env.begin() as txn:
            cur = txn.cursor(db=self._dbs[_Db.ROSTERS])
            if not cur.set_range(_U64.pack(version + 1)):
                return out
            for _key, value in cur:
                if len(out) >= limit:
                    break
                out.append(bytes(value))
        return out


@dataclass(frozen=True, slots=True)
class StoreStats:
    map_size: int
    used: int
    entries: int
    hashes: int
    evidence: int


class _Abort(Exception):
    def __init__(self, result: IngestResult, evidence: SignedEntry | None) -> None:
        self.result = result
        self.evidence = evidence
