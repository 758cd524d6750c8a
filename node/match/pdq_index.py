"""Exact Hamming-radius search over 256-bit PDQ hashes by multi-index hashing.

Each hash is cut into 16 chunks of 16 bits. If two hashes are within
distance ``r``, write ``r = 16 * s + a`` with ``0 <= a < 16``: at least one
of chunks ``0..a`` differs in at most ``s`` bits, or at least one of chunks
``a+1..15`` differs in at most ``s - 1`` bits (otherwise the total would be
at least ``(a + 1)(s + 1) + (15 - a) s = r + 1``; Norouzi, Punjani and Fleet,
"Fast exact search in Hamming space with multi-index hashing", TPAMI 2014).
So probing, in each chunk's table, the buckets within ``s`` (or ``s - 1``)
bits of the query's chunk finds every match; the candidates are then verified
with an exact popcount over four 64-bit words. Results equal a brute-force
scan for every query.

For the PDQ threshold of 31 this is the query's bucket plus its 16 one-bit
neighbours in each of the 16 tables (272 probes; about ``N / 240``
candidates on random hashes). Radii up to :data:`MAX_RADIUS` = 63 are
supported (``s <= 3``: 1, 17, 137 or 697 probes per table). Larger radii
are refused: unrelated PDQ hashes sit at 128 +- 8 bits, the thresholds in
use are 31 to about 63, and beyond 63 the probes would reach most of the
store. Whenever the probed buckets would yield more candidates than
``scan_fraction`` of the store (a heavily clustered store, a large radius),
the query scans linearly instead: the answer is the same.

Throughput on one core with 1M uniform random hashes (scripts/bench/match.py):
about 6,000 single or 7,500 batched queries/s at radius 31, ten times faiss
``IndexBinaryFlat``; about 1,100/s at radius 47, 1.8 times flat; at 63 the
candidates are a sixth of the store and a flat scan in C is faster than this
numpy code. Batching saves the per-call overhead only: the cost is in the
random reads of candidate hashes.

Layout (all numpy, no per-item Python objects in the bulk part):

* ``hashes``  (N, 4) uint64, 32 B/hash; ``ids`` (N,) int64, 8 B; ``alive``
  (N,) bool, 1 B; ``order`` (N,) uint32, 4 B, the rows sorted by id.
* ``postings`` (16 N,) uint32, 64 B/hash: for each chunk the rows sorted by
  that chunk's value (a CSR layout), and ``offsets`` (16 * 65537,) uint32
  (4 MiB in all) giving each bucket's slice.

That is about 109 bytes per hash plus 4 MiB, i.e. ~113 B/hash at 1M hashes.
Recent additions go to a small column-major buffer that is scanned linearly
and merged into the bulk part when it reaches ``buffer_limit`` (an
``O(N)`` copy: tens of ms at 1M hashes). Removal marks the row dead; dead
rows are purged (``O(N)``) once they exceed an eighth of the bulk part.

Concurrency: one writer and readers on the same thread (an asyncio loop).
Each call runs to completion without yielding, so readers never see a half
applied change; calling from several threads needs an external lock.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from itertools import pairwise
from typing import Any

import numpy as np
import numpy.typing as npt

from node.errors import ConflictError, NotFoundError, ValidationError

__all__ = [
    "DEFAULT_RADIUS",
    "HASH_BYTES",
    "MAX_RADIUS",
    "PdqIndex",
    "brute_force",
    "probes",
]

HASH_BYTES = 32
DEFAULT_RADIUS = 31
MAX_RADIUS = 63

_WORDS = 4  # 64-bit words per hash
_CHUNKS = 16  # 16-bit chunks per hash
_BUCKETS = 1 << 16
_STRIDE = _BUCKETS + 1  # offsets per chunk table
_MAX_ID = (1 << 63) - 1
_MAX_ROWS = (1 << 32) // _CHUNKS - 1  # postings and offsets are uint32

# Candidates verified per vectorised step: small enough for the temporaries to stay in cache.
_STEP_CANDIDATES = 1 << 14
_SCAN_BLOCK = 1 << 15  # rows per block of a linear scan

U64 = npt.NDArray[np.uint64]
U32 = npt.NDArray[np.uint32]
I64 = npt.NDArray[np.int64]
Hit = tuple[int, int]


@dataclass(frozen=True, slots=True)
class _Plan:
    """The buckets to probe for one radius: table index and XOR mask per probe."""

    chunk: npt.NDArray[np.intp]
    mask: npt.NDArray[np.uint16]
    base: npt.NDArray[np.intp]  # chunk * _STRIDE


@cache
def _masks() -> npt.NDArray[np.uint16]:
    """All 16-bit masks of weight <= 3, ordered by weight (1 + 16 + 120 + 560)."""
    values = np.arange(_BUCKETS, dtype=np.uint32)
    weight = np.bitwise_count(values)
    keep = weight <= MAX_RADIUS // _CHUNKS
    ordered = values[keep][np.argsort(weight[keep], kind="stable")]
    return ordered.astype(np.uint16)


_MASKS_UP_TO = (1, 17, 137, 697)  # masks of weight <= s, for s = 0..3


@cache
def _plan(radius: int) -> _Plan:
    s, a = divmod(radius, _CHUNKS)
    masks = _masks()
    chunks: list[npt.NDArray[np.intp]] = []
    picked: list[npt.NDArray[np.uint16]] = []
    for c in range(_CHUNKS):
        weight = s if c <= a else s - 1
        if weight < 0:
            continue
        n = _MASKS_UP_TO[weight]
        chunks.append(np.full(n, c, dtype=np.intp))
        picked.append(masks[:n])
    chunk = np.concatenate(chunks)
    return _Plan(chunk=chunk, mask=np.concatenate(picked), base=chunk * _STRIDE)


def probes(radius: int) -> int:
    """Buckets probed per query hash at ``radius`` (272 at 31, 11,152 at 63):
    the unit of a search's cost, see ``node.match.limits``."""
    return len(_plan(_check_radius(radius)).chunk)


def _check_hash(hash32: bytes) -> bytes:
    if not isinstance(hash32, bytes | bytearray | memoryview):
        raise ValidationError(f"PDQ hash must be bytes: got {type(hash32).__name__}")
    if len(hash32) != HASH_BYTES:
        raise ValidationError(f"PDQ hash has {len(hash32)} bytes: expected {HASH_BYTES}")
    return bytes(hash32)


def _check_id(item_id: int) -> int:
    if isinstance(item_id, bool) or not isinstance(item_id, int | np.integer):
        raise ValidationError(f"item id must be an int: got {type(item_id).__name__}")
    value = int(item_id)
    if not 0 <= value <= _MAX_ID:
        raise ValidationError(f"item id must be in 0..2**63-1: got {value}")
    return value


def _check_radius(radius: int) -> int:
    if isinstance(radius, bool) or not isinstance(radius, int | np.integer):
        raise ValidationError(f"radius must be an int: got {type(radius).__name__}")
    if not 0 <= radius <= MAX_RADIUS:
        raise ValidationError(f"radius must be in 0..{MAX_RADIUS}: got {radius}")
    return int(radius)


def _words(hashes: Sequence[bytes] | npt.NDArray[np.uint8]) -> U64:
    """Validated hashes as an (n, 4) uint64 array (a copy)."""
    if isinstance(hashes, np.ndarray):
        if hashes.dtype != np.uint8 or hashes.ndim != 2 or hashes.shape[1] != HASH_BYTES:
            raise ValidationError(
                f"PDQ hash array must be uint8 of shape (n, {HASH_BYTES}): "
                f"got {hashes.dtype} {hashes.shape}"
            )
        return np.ascontiguousarray(hashes).view(np.uint64).copy()
    if set(map(type, hashes)) - {bytes}:
        for h in hashes:  # name the first offender
            _check_hash(h)
    if set(map(len, hashes)) - {HASH_BYTES}:
        for h in hashes:
            _check_hash(h)
    flat = np.frombuffer(b"".join(hashes), dtype=np.uint64)
    return flat.reshape(-1, _WORDS).copy()


def _id_array(item_ids: Sequence[int] | npt.NDArray[np.integer[Any]]) -> I64:
    """Validated item ids as an int64 array."""
    if isinstance(item_ids, np.ndarray):
        if item_ids.ndim != 1 or item_ids.dtype.kind not in "iu":
            raise ValidationError(
                f"item id array must be 1-d integers: got {item_ids.dtype} {item_ids.shape}"
            )
        if len(item_ids) and (item_ids.min() < 0 or int(item_ids.max()) > _MAX_ID):
            raise ValidationError("item ids must be in 0..2**63-1")
        return item_ids.astype(np.int64)
    if set(map(type, item_ids)) - {int}:
        for i in item_ids:  # name the first offender
            _check_id(i)
    try:
        ids = np.array(item_ids, dtype=np.int64)
    except OverflowError:
        raise ValidationError("item ids must be in 0..2**63-1") from None
    if len(ids) and ids.min() < 0:
        raise ValidationError(f"item ids must be in 0..2**63-1: got {int(ids.min())}")
    return ids


def _insert_sorted(old: U32, positions: npt.NDArray[np.intp], values: U32) -> U32:
    """``np.insert`` for positions already in ascending order, without its sort."""
    m = len(positions)
    out = np.empty(len(old) + m, dtype=old.dtype)
    slots = positions + np.arange(m)
    out[slots] = values
    rest = np.ones(len(out), dtype=np.bool_)
    rest[slots] = False
    out[rest] = old
    return out


def _within(x: U64, r: int) -> tuple[npt.NDArray[np.intp], I64]:
    """Rows of the XORed (n, 4) array ``x`` with at most ``r`` bits set, and their counts.

    The fast pass adds the four per-word counts inside one uint32 (the top
    byte of ``w * 0x01010101``), which is the distance modulo 256: only the
    complement (distance 256) reads as 0, so the few hits are recounted exactly.
    """
    w = np.bitwise_count(x).view(np.uint32).reshape(-1)
    w *= np.uint32(0x01010101)
    w >>= np.uint32(24)
    hit = np.flatnonzero(w <= r)
    d = _popcount_rows(x[hit]).astype(np.int64)
    keep = d <= r
    return hit[keep], d[keep]


def _popcount_rows(x: U64) -> npt.NDArray[np.uint16]:
    """Bits set in each row of an (n, 4) uint64 array."""
    b = np.bitwise_count(x)
    d: npt.NDArray[np.uint16] = (b[:, 0] + b[:, 1]).astype(np.uint16)
    d += b[:, 2] + b[:, 3]
    return d


def brute_force(
    hashes: Mapping[int, bytes] | Iterable[tuple[int, bytes]], query: bytes, radius: int
) -> list[Hit]:
    """The oracle: every ``(item_id, distance)`` within ``radius``, by distance then id.

    Plain Python integers and ``int.bit_count``, sharing no code with the index.
    """
    items = hashes.items() if isinstance(hashes, Mapping) else hashes
    q = int.from_bytes(query, "big")
    out = []
    for item_id, h in items:
        d = (int.from_bytes(h, "big") ^ q).bit_count()
        if d <= radius:
            out.append((d, item_id))
    return [(i, d) for d, i in sorted(out)]


class PdqIndex:
    """In-memory exact near-duplicate index of 256-bit PDQ hashes.

    ``buffer_limit``: additions held in the linear-scan buffer before a merge
    (default ``N / 256`` clamped to 1024..16384). ``scan_fraction``: a query
    whose probes would yield more than this fraction of the bulk part as
    candidates scans linearly instead (same answer, bounded cost).
    """

    def __init__(self, *, buffer_limit: int | None = None, scan_fraction: float = 0.3) -> None:
        if buffer_limit is not None and buffer_limit < 1:
            raise ValidationError(f"buffer_limit must be >= 1: got {buffer_limit}")
        self._buffer_limit = buffer_limit
        self._scan_fraction = scan_fraction
        # bulk part
        self._hashes: U64 = np.zeros((0, _WORDS), dtype=np.uint64)
        self._ids: I64 = np.zeros(0, dtype=np.int64)
        self._alive: npt.NDArray[np.bool_] = np.zeros(0, dtype=np.bool_)
        self._order: U32 = np.zeros(0, dtype=np.uint32)
        self._postings: U32 = np.zeros(0, dtype=np.uint32)
        self._offsets: U32 = np.zeros(_CHUNKS * _STRIDE, dtype=np.uint32)
        self._dead = 0
        # buffer of recent additions, column-major so a scan XORs contiguous words
        self._buf: U64 = np.zeros((_WORDS, 64), dtype=np.uint64)
        self._buf_ids: I64 = np.zeros(64, dtype=np.int64)
        self._buf_n = 0
        self._buf_slot: dict[int, int] = {}

    # ----------------------------------------------------------------- sizes

    def __len__(self) -> int:
        return len(self._ids) - self._dead + self._buf_n

    def __contains__(self, item_id: object) -> bool:
        if isinstance(item_id, bool) or not isinstance(item_id, int | np.integer):
            return False
        iid = int(item_id)
        return iid in self._buf_slot or self._bulk_row(iid) is not None

    def bytes_per_hash(self) -> float:
        """Resident bytes of the index's structures divided by the live hashes."""
        n = len(self)
        if n == 0:
            return 0.0
        arrays = (
            self._hashes,
            self._ids,
            self._alive,
            self._order,
            self._postings,
            self._offsets,
            self._buf,
            self._buf_ids,
        )
        total = sum(a.nbytes for a in arrays) + sys.getsizeof(self._buf_slot)
        total += sum(sys.getsizeof(k) + sys.getsizeof(v) for k, v in self._buf_slot.items())
        return total / n

    def _limit(self) -> int:
        if self._buffer_limit is not None:
            return self._buffer_limit
        return min(16384, max(1024, len(self._ids) // 256))

    # ---------------------------------------------------------------- writes

    def add(self, item_id: int, hash32: bytes) -> None:
        """Index ``hash32`` under ``item_id``.

        Adding the same pair again is a no-op; the same id with another hash
        raises ``ConflictError``.
        """
        iid = _check_id(item_id)
        h = _check_hash(hash32)
        if self._known(iid, h):
            return
        words = np.frombuffer(h, dtype=np.uint64)
        n = self._buf_n
        if n == self._buf_ids.shape[0]:
            cap = 2 * n
            buf = np.zeros((_WORDS, cap), dtype=np.uint64)
            buf[:, :n] = self._buf[:, :n]
            self._buf = buf
            self._buf_ids = np.resize(self._buf_ids, cap)
        self._buf[:, n] = words
        self._buf_ids[n] = iid
        self._buf_slot[iid] = n
        self._buf_n = n + 1
        if self._buf_n >= self._limit():
            self._merge(np.zeros((0, _WORDS), dtype=np.uint64), np.zeros(0, dtype=np.int64))

    def add_many(
        self,
        item_ids: Sequence[int] | npt.NDArray[np.integer[Any]],
        hashes: Sequence[bytes] | npt.NDArray[np.uint8],
    ) -> None:
        """Bulk load: validate everything first, then merge once (all or nothing)."""
        ids = _id_array(item_ids)
        words = _words(hashes)
        if len(ids) != len(words):
            raise ValidationError(f"{len(ids)} item ids for {len(words)} hashes")
        ordered = np.sort(ids)
        if np.any(ordered[1:] == ordered[:-1]):
            raise ValidationError("item ids repeat within one add_many call")
        keep = np.ones(len(ids), dtype=np.bool_)
        for k in self._maybe_present(ids):
            keep[k] = not self._known(int(ids[k]), words[k].tobytes())
        self._merge(words[keep], ids[keep])

    def remove(self, item_id: int) -> None:
        """Forget ``item_id``; raises ``NotFoundError`` if it is not indexed."""
        iid = _check_id(item_id)
        slot = self._buf_slot.pop(iid, None)
        if slot is not None:
            last = self._buf_n - 1
            if slot != last:
                moved = int(self._buf_ids[last])
                self._buf[:, slot] = self._buf[:, last]
                self._buf_ids[slot] = moved
                self._buf_slot[moved] = slot
            self._buf_n = last
            return
        row = self._bulk_row(iid)
        if row is None:
            raise NotFoundError(f"item {iid} is not in the PDQ index")
        self._alive[row] = False
        self._dead += 1
        if self._dead > max(1024, len(self._ids) // 8):
            self.compact()

    def compact(self) -> None:
        """Merge the buffer and purge dead rows now (``O(N)``)."""
        self._merge(np.zeros((0, _WORDS), dtype=np.uint64), np.zeros(0, dtype=np.int64))
        if self._dead:
            self._purge()

    # ---------------------------------------------------------------- lookup

    def _known(self, iid: int, h: bytes) -> bool:
        """True if ``iid`` is live with hash ``h``; ConflictError if with another."""
        slot = self._buf_slot.get(iid)
        if slot is not None:
            have = self._buf[:, slot].tobytes()
        else:
            row = self._bulk_row(iid)
            if row is None:
                return False
            have = self._hashes[row].tobytes()
        if have != h:
            raise ConflictError(f"item {iid} is already indexed with another PDQ hash")
        return True

    def _bulk_row(self, iid: int) -> int | None:
        """The live bulk row holding ``iid`` (binary search through ``order``)."""
        ids, order = self._ids, self._order
        lo, hi = 0, len(order)
        while lo < hi:
            mid = (lo + hi) // 2
            if int(ids[order[mid]]) < iid:
                lo = mid + 1
            else:
                hi = mid
        while lo < len(order):
            row = int(order[lo])
            if int(ids[row]) != iid:
                return None
            if self._alive[row]:
                return row
            lo += 1
        return None

    def _maybe_present(self, ids: I64) -> list[int]:
        """Positions in ``ids`` that may already be indexed (checked one by one)."""
        hits = []
        if self._buf_slot:
            hits = [k for k, i in enumerate(ids.tolist()) if i in self._buf_slot]
        if len(self._ids):
            sorted_ids = self._ids[self._order]
            pos = np.searchsorted(sorted_ids, ids)
            pos = np.minimum(pos, len(sorted_ids) - 1)
            hits.extend(np.flatnonzero(sorted_ids[pos] == ids).tolist())
        return hits

    # --------------------------------------------------------------- merging

    def _merge(self, words: U64, ids: I64) -> None:
        """Append the buffer and ``words``/``ids`` to the bulk part in O(N + B)."""
        b = self._buf_n
        if b:
            words = np.concatenate([self._buf[:, :b].T, words])
            ids = np.concatenate([self._buf_ids[:b], ids])
        m = len(ids)
        if m == 0:
            return
        n = len(self._ids)
        if n + m > _MAX_ROWS:
            raise ValidationError(f"PDQ index is full: {n + m} rows, limit {_MAX_ROWS}")
        words = np.ascontiguousarray(words, dtype=np.uint64)
        rows = np.arange(n, n + m, dtype=np.uint32)
        chunks = words.view(np.uint16)  # (m, 16)
        off = self._offsets.reshape(_CHUNKS, _STRIDE)
        positions = []
        values = []
        new_off = off.astype(np.int64)
        for c in range(_CHUNKS):
            v = np.ascontiguousarray(chunks[:, c])
            srt = np.argsort(v, kind="stable")  # a radix sort for 16-bit keys
            if n:
                # each new row goes to the end of its bucket in the old layout
                positions.append(off[c][v[srt].astype(np.intp) + 1].astype(np.intp))
            values.append(rows[srt])
            counts = np.bincount(v, minlength=_BUCKETS)
            new_off[c, 1:] += np.cumsum(counts) + c * m
            new_off[c, 0] += c * m
        by_id = np.argsort(ids, kind="stable")
        if n:
            self._postings = _insert_sorted(
                self._postings, np.concatenate(positions), np.concatenate(values)
            )
            where = np.searchsorted(self._ids[self._order], ids[by_id], side="right")
            self._order = _insert_sorted(self._order, where, rows[by_id])
        else:
            self._postings = np.concatenate(values)
            self._order = rows[by_id]
        self._offsets = new_off.astype(np.uint32).reshape(-1)
        self._hashes = np.concatenate([self._hashes, words])
        self._ids = np.concatenate([self._ids, ids])
        self._alive = np.concatenate([self._alive, np.ones(m, dtype=np.bool_)])
        self._buf = np.zeros((_WORDS, 64), dtype=np.uint64)
        self._buf_ids = np.zeros(64, dtype=np.int64)
        self._buf_n = 0
        self._buf_slot = {}

    def _purge(self) -> None:
        """Drop dead rows, renumbering rows in every table without re-sorting."""
        alive = self._alive
        n = len(alive)
        keep_n = int(alive.sum())
        renumber = (np.cumsum(alive, dtype=np.int64) - 1).astype(np.uint32)
        off = self._offsets.reshape(_CHUNKS, _STRIDE).astype(np.int64)
        postings = np.empty(_CHUNKS * keep_n, dtype=np.uint32)
        new_off = np.empty((_CHUNKS, _STRIDE), dtype=np.int64)
        for c in range(_CHUNKS):
            p = self._postings[c * n : (c + 1) * n]
            live = alive[p]
            postings[c * keep_n : (c + 1) * keep_n] = renumber[p[live]]
            kept_before = np.concatenate([[0], np.cumsum(live, dtype=np.int64)])
            new_off[c] = kept_before[off[c] - c * n] + c * keep_n
        live_order = self._order[alive[self._order]]
        self._order = renumber[live_order]
        self._postings = postings
        self._offsets = new_off.astype(np.uint32).reshape(-1)
        self._hashes = self._hashes[alive]
        self._ids = self._ids[alive]
        self._alive = np.ones(keep_n, dtype=np.bool_)
        self._dead = 0

    # ---------------------------------------------------------------- search

    def search(self, hash32: bytes, radius: int = DEFAULT_RADIUS) -> list[Hit]:
        """``(item_id, distance)`` of every hash within ``radius``, by distance then id."""
        r = _check_radius(radius)
        q = np.frombuffer(_check_hash(hash32), dtype=np.uint64)
        ids: list[int] = []
        dists: list[int] = []
        n = len(self._ids)
        if n:
            plan = _plan(r)
            g = (q.view(np.uint16)[plan.chunk] ^ plan.mask).astype(np.intp) + plan.base
            starts = self._offsets[g].astype(np.int64)
            lens = self._offsets[g + 1].astype(np.int64) - starts
            if lens.sum() > self._scan_fraction * n:
                row, d = self._scan_rows(q, r)
            else:
                cand = self._candidates(starts, lens)
                x = np.take(self._hashes, cand, axis=0)
                xf = x.reshape(-1)
                np.bitwise_xor(xf, np.tile(q, len(cand)), out=xf)
                hit, d = _within(x, r)
                row = cand[hit].astype(np.int64)
                if len(row) > 1:  # the same row found through several tables
                    row, first = np.unique(row, return_index=True)
                    d = d[first]
            live = self._alive[row]
            ids = self._ids[row[live]].tolist()
            dists = d[live].tolist()
        if self._buf_n:
            _, bid, bd = self._search_buffer(q.reshape(1, _WORDS), r)
            ids += bid.tolist()
            dists += bd.tolist()
        return [(i, d) for d, i in sorted(zip(dists, ids, strict=True))]

    def search_batch(
        self, hashes: Sequence[bytes], radius: int = DEFAULT_RADIUS
    ) -> list[list[Hit]]:
        """:meth:`search` for many queries at once, vectorised across queries."""
        nq = len(hashes)
        if nq == 0:
            return []
        qid, ids, dist = self.search_arrays(hashes, radius)
        srt = np.lexsort((ids, dist, qid))
        bounds = np.searchsorted(qid[srt], np.arange(nq + 1)).tolist()
        id_list = ids[srt].tolist()
        d_list = dist[srt].tolist()
        return [
            list(zip(id_list[lo:hi], d_list[lo:hi], strict=True)) for lo, hi in pairwise(bounds)
        ]

    def search_arrays(
        self, hashes: Sequence[bytes] | npt.NDArray[np.uint8], radius: int = DEFAULT_RADIUS
    ) -> tuple[I64, I64, I64]:
        """Every hit of a batch of queries as three parallel arrays, unordered:
        query position, item id and distance (one row per (query, item) pair).

        The form for callers that aggregate hits with numpy (the video frame
        index): no Python object per hit.
        """
        r = _check_radius(radius)
        q = _words(hashes)
        if len(q) == 0:
            return _empty_hits()
        bulk = self._search_bulk(q, r)
        if not self._buf_n:
            return bulk
        buf = self._search_buffer(q, r)
        qid, ids, dist = (np.concatenate([a, b]) for a, b in zip(bulk, buf, strict=True))
        return qid, ids, dist

    def _search_buffer(self, q: U64, r: int) -> tuple[I64, I64, I64]:
        """Linear scan of the recent-additions buffer: (query, id, distance) triples."""
        b = self._buf_n
        if b == 0:
            return _empty_hits()
        step = max(1, _STEP_CANDIDATES // b)
        qids, ids, dists = [], [], []
        buf = self._buf[:, :b]
        for lo in range(0, len(q), step):
            block = q[lo : lo + step]
            d = np.zeros((len(block), b), dtype=np.uint16)
            for w in range(_WORDS):
                d += np.bitwise_count(buf[w][None, :] ^ block[:, w][:, None])
            qi, slot = np.nonzero(d <= r)
            qids.append(qi.astype(np.int64) + lo)
            ids.append(self._buf_ids[slot])
            dists.append(d[qi, slot].astype(np.int64))
        return np.concatenate(qids), np.concatenate(ids), np.concatenate(dists)

    def _search_bulk(self, q: U64, r: int) -> tuple[I64, I64, I64]:
        """Probe (or scan) the bulk part for every query: (query, id, distance) triples."""
        n = len(self._ids)
        if n == 0:
            return _empty_hits()
        plan = _plan(r)
        g = (q.view(np.uint16)[:, plan.chunk] ^ plan.mask).astype(np.intp) + plan.base
        starts = self._offsets[g].astype(np.int64)  # (Q, P)
        lens = self._offsets[g + 1].astype(np.int64) - starts
        per_query = lens.sum(axis=1)
        scan = per_query > self._scan_fraction * n
        qids, rows, dists = [], [], []
        for k in np.flatnonzero(scan).tolist():
            rw, d = self._scan_rows(q[k], r)
            qids.append(np.full(len(rw), k, dtype=np.int64))
            rows.append(rw)
            dists.append(d)
        # probe the other queries in groups of about _STEP_CANDIDATES candidates,
        # so that the temporaries stay in cache
        probe = np.flatnonzero(~scan)
        step = (np.cumsum(per_query[probe]) - 1) // _STEP_CANDIDATES
        for group in np.split(probe, np.flatnonzero(np.diff(step)) + 1):
            if len(group) == 0:
                continue
            glens = lens[group]
            row = self._candidates(starts[group], glens)
            owner = np.repeat(group, glens.sum(axis=1))
            x = np.take(self._hashes, row, axis=0)
            xf = x.reshape(-1)
            np.bitwise_xor(xf, np.take(q, owner, axis=0).reshape(-1), out=xf)
            hit, d = _within(x, r)
            qids.append(owner[hit].astype(np.int64))
            rows.append(row[hit].astype(np.int64))
            dists.append(d)
        if not qids:
            return _empty_hits()
        qid = np.concatenate(qids)
        row = np.concatenate(rows)
        dist = np.concatenate(dists)
        # drop (query, row) pairs found through several tables, then dead rows
        _, first = np.unique(qid * n + row, return_index=True)
        qid, row, dist = qid[first], row[first], dist[first]
        live = self._alive[row]
        return qid[live], self._ids[row[live]], dist[live]

    def _candidates(self, starts: I64, lens: I64) -> U32:
        """The rows in the posting slices ``[start, start + len)``, in order."""
        flat_len = lens.reshape(-1)
        nz = flat_len > 0
        flat_len = flat_len[nz]
        flat_start = starts.reshape(-1)[nz]
        ends = np.cumsum(flat_len)
        total = int(ends[-1]) if len(ends) else 0
        idx = np.arange(total, dtype=np.int64)
        idx += np.repeat(flat_start - (ends - flat_len), flat_len)
        return self._postings[idx]

    def _scan_rows(self, qw: U64, r: int) -> tuple[I64, I64]:
        """Exact linear scan of the bulk part for one query: (row, distance) pairs."""
        n = len(self._ids)
        tile = np.tile(qw, min(n, _SCAN_BLOCK))
        rows, dists = [], []
        for lo in range(0, n, _SCAN_BLOCK):
            x = self._hashes[lo : lo + _SCAN_BLOCK]
            xf = x.reshape(-1) ^ tile[: x.size]
            hit, d = _within(xf.reshape(-1, _WORDS), r)
            rows.append(hit.astype(np.int64) + lo)
            dists.append(d)
        return np.concatenate(rows), np.concatenate(dists)


def _empty_hits() -> tuple[I64, I64, I64]:
    z = np.zeros(0, dtype=np.int64)
    return z, z, z
