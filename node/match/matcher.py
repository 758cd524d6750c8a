"""The node's PDQ near-duplicate matcher: entry ids over the exact index.

Two :class:`~node.match.pdq_index.PdqIndex` instances: active hashes, and
retracted ones (so a query can ask for retracted matches, flagged). Index
item ids are dense integers; their entry ids live in one bytearray (32 bytes
a hash), so the mapping adds little to the index's own bytes per hash.

Built from LMDB at start-up (off the event loop, with progress lines), then
updated as entries commit: an ADD is indexed, a RETRACT moves its target to
the retracted index. Updates that arrive while the build runs are queued and
applied when it ends. Degenerate hashes (near all-zero or all-one) are never
indexed: they would match unrelated images.

Threads: searches run in a worker thread (off the event loop, in chunks;
``node.match.limits``), commits arrive on the loop. One lock guards the
indexes. A commit never waits for a search: if the lock is busy its
entries are queued, and whoever holds the lock applies the queue before
letting go (and a search applies it before searching, so a Match after a
commit sees it).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from node.core.entry import Kind, SignedEntry
from node.errors import ValidationError
from node.match.pdq_index import MAX_RADIUS, PdqIndex
from node.media.image import check_pdq_not_degenerate
from node.store.lmdb_store import LmdbStore

log = logging.getLogger(__name__)

PROGRESS_EVERY = 250_000


def _usable(value: bytes) -> bool:
    try:
        check_pdq_not_degenerate(value)
    except ValidationError:
        return False
    return True


class BuiltFromStore:
    """An in-memory index loaded from LMDB once (in a worker thread at
    start-up), then kept current by commit listeners: commits that arrive
    while it loads, or while a search in a worker thread holds the index,
    are queued and applied when it is done (never waited for)."""

    def __init__(self, store: LmdbStore) -> None:
        self.store = store
        self._lock = threading.Lock()  # guards _building and _queued
        self._index_lock = threading.Lock()  # guards the index itself
        self._building = False
        self._queued: list[Sequence[SignedEntry]] = []
        self.ready = False

    def _begin_build(self) -> None:
        with self._lock:
            self._building = True

    def _end_build(self) -> None:
        with self._lock:
            self._building = False
        self._index_lock.acquire()
        self._release()  # what committed meanwhile
        self.ready = True

    def on_commit(self, entries: Sequence[SignedEntry]) -> None:
        """Commit listener (event loop thread): applied now, or by the search
        holding the index (never waits for it)."""
        with self._lock:
            self._queued.append(entries)
            if self._building:
                return
        if self._index_lock.acquire(blocking=False):
            self._release()

    def _drain(self) -> None:
        """Apply what is queued (the index lock is held)."""
        with self._lock:
            if self._building:
                return
            queued, self._queued = self._queued, []
        for entries in queued:
            self._apply(entries)

    def _release(self) -> None:
        """Apply what is queued, then let go of the index lock (held)."""
        while True:
            self._drain()
            self._index_lock.release()
            with self._lock:
                pending = bool(self._queued) and not self._building
            if not pending or not self._index_lock.acquire(blocking=False):
                return

    def void(self, entries: Sequence[SignedEntry]) -> None:
        """Forget entries a fork resolution moved out of the live tables: their
        hashes leave the index, and a target their RETRACT retracted is active
        again (if it is still stored and not retracted otherwise)."""
        self._index_lock.acquire()  # rare: may wait for one search step
        try:
            self._drain()
            self._void(entries)
        finally:
            self._release()

    def _apply(self, entries: Sequence[SignedEntry]) -> None:
        raise NotImplementedError

    def _void(self, entries: Sequence[SignedEntry]) -> None:
        raise NotImplementedError


class PdqMatcher(BuiltFromStore):
    def __init__(self, store: LmdbStore) -> None:
        super().__init__(store)
        self.active = PdqIndex()
        self.retracted = PdqIndex()
        self._entry_ids = bytearray()  # item id i -> entry id at [32 i, 32 i + 32)

    def __len__(self) -> int:
        return len(self.active)

    def bytes_per_hash(self) -> float:
        n = len(self.active) + len(self.retracted)
        if not n:
            return 0.0
        index = self.active.bytes_per_hash() * len(self.active)
        index += self.retracted.bytes_per_hash() * len(self.retracted)
        return (index + len(self._entry_ids)) / n

    def _item(self, entry_id: bytes) -> int:
        item = len(self._entry_ids) // 32
        self._entry_ids += entry_id
        return item

    def entry_id(self, item: int) -> bytes:
        return bytes(self._entry_ids[32 * item : 32 * item + 32])

    # -- building and updates ------------------------------------------------

    def build(self, progress: Callable[[str], None] | None = None) -> int:
        """Load every stored PDQ hash (run in a worker thread at start-up)."""
        self._begin_build()
        started = time.monotonic()
        active_ids: list[int] = []
        active_hashes: list[bytes] = []
        dead_ids: list[int] = []
        dead_hashes: list[bytes] = []
        n = 0
        for value, entry_id, retracted in self.store.iter_hashes("PDQ"):
            n += 1
            if not _usable(value):
                continue
            item = self._item(entry_id)
            (dead_ids if retracted else active_ids).append(item)
            (dead_hashes if retracted else active_hashes).append(value)
            if progress is not None and n % PROGRESS_EVERY == 0:
                progress(f"PDQ index: {n:,} hashes read")
        if active_ids:
            self.active.add_many(active_ids, active_hashes)
        if dead_ids:
            self.retracted.add_many(dead_ids, dead_hashes)
        self._end_build()
        if progress is not None:
            progress(
                f"PDQ index: {len(self.active):,} active and {len(self.retracted):,} retracted "
                f"hashes in {time.monotonic() - started:.1f} s "
                f"({self.bytes_per_hash():.0f} bytes/hash)"
            )
        return n

    def _apply(self, entries: Sequence[SignedEntry]) -> None:
        for e in entries:
            body = e.body
            if body.kind == Kind.ADD and body.algorithm == "PDQ":
                if _usable(body.hash):
                    self.active.add(self._item(e.entry_id), body.hash)
            elif body.kind == Kind.RETRACT:
                self._retract(body.target)

    def _retract(self, target: bytes) -> None:
        stored = self.store.get(target)
        if stored is None or stored.entry.body.algorithm != "PDQ":
            return
        value = stored.entry.body.hash
        for item, _ in self.active.search(value, 0):
            if self.entry_id(item) == target:
                self.active.remove(item)
                self.retracted.add(item, value)

    def _void(self, entries: Sequence[SignedEntry]) -> None:
        for e in entries:
            body = e.body
            if body.kind == Kind.ADD and body.algorithm == "PDQ":
                for index in (self.active, self.retracted):
                    for item, _ in index.search(body.hash, 0):
                        if self.entry_id(item) == e.entry_id:
                            index.remove(item)
            elif body.kind == Kind.RETRACT:
                stored = self.store.get(body.target)
                if stored is None or stored.retracted_by or stored.entry.body.algorithm != "PDQ":
                    continue
                value = stored.entry.body.hash
                for item, _ in self.retracted.search(value, 0):
                    if self.entry_id(item) == body.target:
                        self.retracted.remove(item)
                        self.active.add(item, value)

    # -- queries -------------------------------------------------------------

    def search(
        self, values: Sequence[bytes], radius: int, *, include_retracted: bool = False
    ) -> list[tuple[bytes, int, int]]:
        """Entries within ``radius`` of any of ``values`` (an image and its
        dihedral variants): ``(entry_id, best distance, index in values of the
        value at that distance)``, nearest first (the first value wins a tie)."""
        return self.search_many([values], radius, include_retracted=include_retracted)[0]

    def search_many(
        self, queries: Sequence[Sequence[bytes]], radius: int, *, include_retracted: bool = False
    ) -> list[list[tuple[bytes, int, int]]]:
        """:meth:`search` for several queries (each a hash and its variants) in
        one batch; safe from a worker thread (holds the index lock)."""
        if not 0 <= radius <= MAX_RADIUS:
            raise ValidationError(f"PDQ distance {radius}: expected 0..{MAX_RADIUS}")
        flat = [v for values in queries for v in values]
        owner = [(i, v) for i, values in enumerate(queries) for v in range(len(values))]
        best: list[dict[int, tuple[int, int]]] = [{} for _ in queries]
        self._index_lock.acquire()
        try:
            self._drain()  # what committed before this search
            indexes = (self.active, self.retracted) if include_retracted else (self.active,)
            for index in indexes:
                for (q, variant), hits in zip(owner, index.search_batch(flat, radius), strict=True):
                    mine = best[q]
                    for item, distance in hits:
                        if distance < mine.get(item, (radius + 1, 0))[0]:
                            mine[item] = (distance, variant)
            return [
                [
                    (self.entry_id(item), d, v)
                    for item, (d, v) in sorted(b.items(), key=lambda kv: kv[1])
                ]
                for b in best
            ]
        finally:
            self._release()
