"""The frame index: banked video frames -> (video, frame), searched in one batch.

Every frame of every stored VPDQ segment is a row here: its PDQ, quality,
absolute timestamp, its video and its segment. The PDQ hashes of frames that
pass the image gate (not degenerate, node/media/image.py) go into an exact
multi-index :class:`~node.match.pdq_index.PdqIndex` whose item ids are the
rows; a second one holds the frames of retracted segments (for
``include_retracted``). A video is the set of segments one origin published
under one video id; its frames aggregate on their absolute timestamps, over
whichever of its segments are stored here (a live stream still publishing,
a sync in progress).

A query (every frame of an upload, with its mirrored and border-trimmed
variants) is looked up in ONE call of :meth:`PdqIndex.search_arrays`: a
vectorised probe of all frames at once, with no Python object per hit. The
hits are grouped per video with numpy; only videos with hits are scored.

Per video, python-threatexchange's percentages (its VPDQIndex.query):
frames of quality below the floor are dropped and identical hashes counted
once on each side; ``query%`` is the share of the query's distinct hashes
within distance of some frame of the video, ``banked%`` the share of the
video's distinct (indexed) hashes within distance of some query hash. They
are computed per query variant (a mirrored upload is a different hash set),
and the variant with the best query% is kept. They order the candidates and
are what the benchmark compares with faiss; the Match answer reports
``score_video``'s (node/match/video.py: the same definitions, for the
variant with the most time-aligned frames), fed this index's hits (the
property tests check both against brute force).

Memory per frame: the index (~113 bytes) plus 46 bytes of row data
(PDQ 32, timestamp 8, video 4, quality 1, indexed 1); docs/benchmarks.md.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from node.core.entry import Kind, SignedEntry
from node.core.vpdq import HEADER_BYTES, VpdqSegment, check_header
from node.errors import ValidationError
from node.match.matcher import BuiltFromStore
from node.match.pdq_index import MAX_RADIUS, PdqIndex
from node.media.image import MIN_MINORITY_BITS
from node.store.lmdb_store import LmdbStore

log = logging.getLogger(__name__)

VideoKey = tuple[str, bytes]  # (origin, video id)
I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]

QUALITY_FLOOR = 50  # pytx's VPDQ_QUALITY_THRESHOLD
PROGRESS_EVERY = 10_000  # segments


def _pdq_rows(values: Iterable[bytes]) -> U8:
    joined = b"".join(values)
    return np.frombuffer(joined, dtype=np.uint8).reshape(-1, 32)


def _degenerate_rows(pdq: U8) -> npt.NDArray[np.bool_]:
    """The image gate (:func:`check_pdq_not_degenerate`), vectorised: a frame
    hash with fewer than 32 set or 32 clear bits matches blank frames, so it
    is kept (for the 1/s export) but not indexed."""
    ones = np.bitwise_count(pdq).sum(axis=1, dtype=np.int64)
    out: npt.NDArray[np.bool_] = (ones < MIN_MINORITY_BITS) | (256 - ones < MIN_MINORITY_BITS)
    return out


class _Column:
    """A numpy column that grows by doubling (appends are amortised O(1))."""

    def __init__(self, dtype: npt.DTypeLike, width: int = 0) -> None:
        self._shape = (width,) if width else ()
        self.data: npt.NDArray[np.generic] = np.zeros((1024, *self._shape), dtype=dtype)
        self.n = 0

    def extend(self, values: npt.NDArray[np.generic]) -> None:
        m = len(values)
        if self.n + m > len(self.data):
            grown = np.zeros((max(2 * len(self.data), self.n + m), *self._shape), self.data.dtype)
            grown[: self.n] = self.data[: self.n]
            self.data = grown
        self.data[self.n : self.n + m] = values
        self.n += m

    @property
    def view(self) -> npt.NDArray[np.generic]:
        return self.data[: self.n]


@dataclass(slots=True)
class _Segment:
    entry_id: bytes
    video: int
    first: int  # first row
    count: int
    retracted: bool = False
    void: bool = False


_FRAME_DTYPE = np.dtype([("pdq", np.uint8, (32,)), ("quality", np.uint8), ("ts", ">u4")])


@dataclass(frozen=True, slots=True)
class SegmentRows:
    """One segment's frames as arrays (absolute timestamps), ready to index."""

    entry_id: bytes
    origin: str
    video_id: bytes
    pdq: U8  # (n, 32)
    quality: npt.NDArray[np.uint8]
    ts_ms: I64
    retracted: bool = False

    @classmethod
    def of(
        cls, entry_id: bytes, origin: str, seg: VpdqSegment, retracted: bool = False
    ) -> SegmentRows:
        return cls(
            entry_id,
            origin,
            seg.video_id,
            _pdq_rows(f.pdq for f in seg.frames),
            np.array([f.quality for f in seg.frames], dtype=np.uint8),
            np.array([f.ts_ms for f in seg.frames], dtype=np.int64),
            retracted,
        )

    @classmethod
    def decode(
        cls, entry_id: bytes, origin: str, data: bytes, retracted: bool = False
    ) -> SegmentRows:
        """From a stored (already validated) segment's bytes, without a Python
        object per frame: the start-up build reads millions of frames."""
        video_id, _, start_ms, _, _, _, count = check_header(data)
        rec = np.frombuffer(data, dtype=_FRAME_DTYPE, count=count, offset=HEADER_BYTES)
        return cls(
            entry_id,
            origin,
            video_id,
            np.ascontiguousarray(rec["pdq"]),
            rec["quality"].copy(),
            rec["ts"].astype(np.int64) + start_ms,
            retracted,
        )


@dataclass(frozen=True, slots=True)
class QueryArrays:
    """A query's frames as parallel arrays (variant: 0 original, 1 mirrored,
    2 border-trimmed, 3 trimmed and mirrored)."""

    pdq: U8  # (n, 32)
    quality: I64
    ts_ms: I64
    variant: I64

    def __post_init__(self) -> None:
        n = len(self.pdq)
        if self.pdq.ndim != 2 or self.pdq.shape[1:] != (32,):
            raise ValidationError(
                f"query frame hashes: expected (n, 32) bytes, got {self.pdq.shape}"
            )
        if not len(self.quality) == len(self.ts_ms) == len(self.variant) == n:
            raise ValidationError("query frame arrays differ in length")

    def __len__(self) -> int:
        return len(self.pdq)

    @classmethod
    def of(cls, frames: Sequence[tuple[bytes, int, int, int]]) -> QueryArrays:
        """From ``(pdq, quality, ts_ms, variant)`` tuples."""
        for i, (pdq, _, _, _) in enumerate(frames):
            if len(pdq) != 32:
                raise ValidationError(f"query frame {i}: PDQ has {len(pdq)} bytes: expected 32")
        return cls(
            _pdq_rows(f[0] for f in frames) if frames else np.zeros((0, 32), np.uint8),
            np.array([f[1] for f in frames], dtype=np.int64),
            np.array([f[2] for f in frames], dtype=np.int64),
            np.array([f[3] for f in frames], dtype=np.int64),
        )


@dataclass(frozen=True, slots=True)
class VideoHits:
    """One banked video that some query frame hit, with pytx's percentages."""

    key: VideoKey
    segments: tuple[bytes, ...]  # entry ids of its segments held here, in segment order
    retracted: bool  # every segment that matched is retracted
    banked_ts: I64  # the video's indexed frames: absolute timestamps ...
    banked_quality: I64
    banked_pdq: U8
    query_index: I64  # hits: query frame, banked frame (into the arrays above), distance
    banked_index: I64
    distance: I64
    query_pct: float
    banked_pct: float
    variant: int  # the query variant whose percentages these are
    matched_segments: tuple[bytes, ...] = field(default=())


def pytx_percentages(  # noqa: PLR0917  (the hits are parallel arrays)
    query: QueryArrays,
    banked_pdq: U8,
    banked_quality: I64,
    qi: I64,
    bi: I64,
    quality_floor: int = QUALITY_FLOOR,
) -> tuple[float, float, int]:
    """query%, banked% and the variant they are for, for one video, from its
    hits (``qi``/``bi`` index the query and the video's frames)."""
    best = (0.0, 0.0, 0)
    q_ok = query.quality >= quality_floor
    b_ok = banked_quality >= quality_floor
    b_units, b_inv = _units(banked_pdq, b_ok)
    for v in np.unique(query.variant).tolist():
        qmask = q_ok & (query.variant == v)
        q_units, q_inv = _units(query.pdq, qmask)
        if not q_units:
            continue
        keep = qmask[qi] & b_ok[bi]
        qm = len(np.unique(q_inv[qi[keep]]))
        bm = len(np.unique(b_inv[bi[keep]]))
        pct = (100.0 * qm / q_units, 100.0 * bm / b_units if b_units else 0.0, int(v))
        if pct[0] > best[0] or (pct[0] == best[0] and pct[1] > best[1]):
            best = pct
    return best


def _units(pdq: U8, mask: npt.NDArray[np.bool_]) -> tuple[int, I64]:
    """Distinct hashes among the masked rows: their count, and each row's
    unit (-1 where masked out)."""
    inv = np.full(len(pdq), -1, dtype=np.int64)
    rows = np.flatnonzero(mask)
    if not len(rows):
        return 0, inv
    keys = np.ascontiguousarray(pdq[rows]).view(np.dtype((np.void, 32))).reshape(-1)
    uniq, unit = np.unique(keys, return_inverse=True)
    inv[rows] = unit.reshape(-1)
    return len(uniq), inv


class FrameIndex:
    """Banked frames of every stored VPDQ segment; see the module docstring."""

    def __init__(self) -> None:
        self.active = PdqIndex()
        self.retracted = PdqIndex()
        self._pdq = _Column(np.uint8, 32)
        self._quality = _Column(np.uint8)
        self._ts = _Column(np.int64)
        self._video = _Column(np.int32)
        self._indexed = _Column(np.bool_)
        self._segments: list[_Segment] = []
        self._by_entry: dict[bytes, int] = {}
        self._videos: dict[VideoKey, int] = {}
        self._video_keys: list[VideoKey] = []
        self._video_segments: list[list[int]] = []

    def __len__(self) -> int:
        """Indexed frame hashes (active)."""
        return len(self.active)

    @property
    def videos(self) -> int:
        return len(self._video_keys)

    def bytes_per_frame(self) -> float:
        n = len(self.active) + len(self.retracted)
        if not n:
            return 0.0
        index = self.active.bytes_per_hash() * len(self.active)
        index += self.retracted.bytes_per_hash() * len(self.retracted)
        rows = sum(c.view.nbytes for c in (self._pdq, self._quality, self._ts, self._video))
        return (index + rows) / n

    # -- writes --------------------------------------------------------------

    def add_segments(self, segments: Sequence[SegmentRows]) -> None:
        """Add segments in bulk (one index merge); a segment already held is skipped."""
        ids: list[list[I64]] = [[], []]
        rows: list[list[U8]] = [[], []]
        for seg in segments:
            if seg.entry_id in self._by_entry:
                continue
            first = self._append(seg)
            good = ~_degenerate_rows(seg.pdq)
            self._indexed.extend(good)
            ids[seg.retracted].append(np.flatnonzero(good).astype(np.int64) + first)
            rows[seg.retracted].append(seg.pdq[good])
        for which, index in ((0, self.active), (1, self.retracted)):
            if ids[which]:
                index.add_many(np.concatenate(ids[which]), np.concatenate(rows[which]))

    def _append(self, seg: SegmentRows) -> int:
        key = (seg.origin, seg.video_id)
        video = self._videos.get(key)
        if video is None:
            video = self._videos[key] = len(self._video_keys)
            self._video_keys.append(key)
            self._video_segments.append([])
        first = self._pdq.n
        self._pdq.extend(seg.pdq)
        self._quality.extend(seg.quality)
        self._ts.extend(seg.ts_ms)
        self._video.extend(np.full(len(seg.pdq), video, dtype=np.int32))
        number = len(self._segments)
        self._segments.append(_Segment(seg.entry_id, video, first, len(seg.pdq), seg.retracted))
        self._by_entry[seg.entry_id] = number
        segs = self._video_segments[video]
        segs.append(number)
        segs.sort(key=self._segment_order)
        return first

    def _segment_order(self, number: int) -> int:
        s = self._segments[number]
        return int(self._ts.view[s.first]) if s.count else 0

    def _rows(self, seg: _Segment) -> tuple[I64, U8]:
        items = np.arange(seg.first, seg.first + seg.count, dtype=np.int64)
        good = self._indexed.view[items].astype(bool)
        return items[good], self._pdq.view[items[good]]

    def retract(self, entry_id: bytes) -> bool:
        """Move a segment's frames to the retracted index; False if not held."""
        number = self._by_entry.get(entry_id)
        if number is None:
            return False
        seg = self._segments[number]
        if seg.retracted or seg.void:
            return True
        items, pdq = self._rows(seg)
        for item in items.tolist():
            self.active.remove(item)
        if len(items):
            self.retracted.add_many(items, pdq)
        seg.retracted = True
        return True

    def unretract(self, entry_id: bytes) -> None:
        """A RETRACT was voided: its target's frames are active again."""
        number = self._by_entry.get(entry_id)
        if number is None:
            return
        seg = self._segments[number]
        if not seg.retracted or seg.void:
            return
        items, pdq = self._rows(seg)
        for item in items.tolist():
            self.retracted.remove(item)
        if len(items):
            self.active.add_many(items, pdq)
        seg.retracted = False

    def void(self, entry_id: bytes) -> None:
        """Forget a segment entirely (a fork resolution voided its entry)."""
        number = self._by_entry.pop(entry_id, None)
        if number is None:
            return
        seg = self._segments[number]
        items, _ = self._rows(seg)
        index = self.retracted if seg.retracted else self.active
        for item in items.tolist():
            index.remove(item)
        seg.void = True
        self._video_segments[seg.video].remove(number)

    # -- queries -------------------------------------------------------------

    def video_segments(self, entry_id: bytes) -> tuple[bytes, ...]:
        """Every held segment of the video ``entry_id`` belongs to, in time
        order (retracted ones included); empty if it is not a held segment."""
        number = self._by_entry.get(entry_id)
        if number is None:
            return ()
        video = self._segments[number].video
        return tuple(self._segments[s].entry_id for s in self._video_segments[video])

    def search(
        self,
        query: QueryArrays,
        max_distance: int,
        *,
        include_retracted: bool = False,
        quality_floor: int = QUALITY_FLOOR,
    ) -> list[VideoHits]:
        """Every banked video some query frame lies within ``max_distance`` of,
        with its hits and pytx's percentages, best query% first."""
        if not 0 <= max_distance <= MAX_RADIUS:
            raise ValidationError(f"PDQ distance {max_distance}: expected 0..{MAX_RADIUS}")
        if not len(query):
            return []
        parts = [self.active.search_arrays(query.pdq, max_distance)]
        if include_retracted and len(self.retracted):
            parts.append(self.retracted.search_arrays(query.pdq, max_distance))
        qid = np.concatenate([p[0] for p in parts])
        item = np.concatenate([p[1] for p in parts])
        dist = np.concatenate([p[2] for p in parts])
        return self.aggregate(
            query, qid, item, dist, include_retracted=include_retracted, quality_floor=quality_floor
        )

    def aggregate(
        self,
        query: QueryArrays,
        qid: I64,
        item: I64,
        dist: I64,
        *,
        include_retracted: bool = False,
        quality_floor: int = QUALITY_FLOOR,
    ) -> list[VideoHits]:
        """Group frame hits ``(query frame, row, distance)`` per video and score
        each video with pytx's percentages (also used by the benchmark to
        aggregate another index's hits the same way)."""
        if not len(qid):
            return []
        video = self._video.view[item].astype(np.int64)
        order = np.argsort(video, kind="stable")
        qid, item, dist, video = qid[order], item[order], dist[order], video[order]
        starts = np.flatnonzero(np.r_[True, video[1:] != video[:-1]])
        out = []
        for lo, hi in zip(starts.tolist(), [*starts[1:].tolist(), len(video)], strict=True):
            out.append(
                self._video_hits(
                    int(video[lo]),
                    query,
                    qid[lo:hi],
                    item[lo:hi],
                    dist[lo:hi],
                    include_retracted,
                    quality_floor,
                )
            )
        out.sort(key=lambda h: (-h.query_pct, -h.banked_pct, h.key))
        return out

    def _video_hits(  # noqa: PLR0917
        self,
        video: int,
        query: QueryArrays,
        qi: I64,
        items: I64,
        dist: I64,
        include_retracted: bool,
        quality_floor: int,
    ) -> VideoHits:
        segs = [
            self._segments[s]
            for s in self._video_segments[video]
            if include_retracted or not self._segments[s].retracted
        ]
        rows = (
            np.concatenate([np.arange(s.first, s.first + s.count) for s in segs])
            if segs
            else np.zeros(0, np.int64)
        )
        rows = rows[self._indexed.view[rows].astype(bool)]
        # the video's frames in time order; hits re-pointed into them
        rows = rows[np.argsort(self._ts.view[rows], kind="stable")]
        by_row = np.argsort(rows, kind="stable")
        bi = by_row[np.searchsorted(rows[by_row], items)]
        pdq: U8 = self._pdq.view[rows]
        quality = self._quality.view[rows].astype(np.int64)
        q_pct, b_pct, variant = pytx_percentages(query, pdq, quality, qi, bi, quality_floor)
        firsts = np.array([s.first for s in segs], dtype=np.int64)
        by_first = np.argsort(firsts)
        slot = np.searchsorted(firsts[by_first], np.unique(items), side="right") - 1
        hit = set(by_first[slot].tolist())
        matched = [s for k, s in enumerate(segs) if k in hit]
        return VideoHits(
            key=self._video_keys[video],
            segments=tuple(s.entry_id for s in segs),
            retracted=all(s.retracted for s in matched),
            banked_ts=self._ts.view[rows].astype(np.int64),
            banked_quality=quality,
            banked_pdq=pdq,
            query_index=qi,
            banked_index=bi,
            distance=dist,
            query_pct=q_pct,
            banked_pct=b_pct,
            variant=variant,
            matched_segments=tuple(s.entry_id for s in matched),
        )


class FrameMatcher(BuiltFromStore):
    """The node's frame index over its store: built at start-up (off the event
    loop), then kept current by commit listeners, like the PDQ matcher."""

    def __init__(self, store: LmdbStore) -> None:
        super().__init__(store)
        self.index = FrameIndex()

    def build(self, progress: Callable[[str], None] | None = None) -> int:
        self._begin_build()
        started = time.monotonic()
        batch: list[SegmentRows] = []
        n = 0
        for stored in self.store.iter_stored("VPDQ"):
            body = stored.entry.body
            batch.append(
                SegmentRows.decode(
                    stored.entry.entry_id, body.origin, body.hash, bool(stored.retracted_by)
                )
            )
            n += 1
            if len(batch) >= PROGRESS_EVERY:
                self.index.add_segments(batch)
                batch = []
                if progress is not None:
                    progress(f"frame index: {n:,} video segments read")
        if batch:
            self.index.add_segments(batch)
        self._end_build()
        if progress is not None:
            progress(
                f"frame index: {len(self.index):,} frames of {self.index.videos:,} videos "
                f"in {time.monotonic() - started:.1f} s "
                f"({self.index.bytes_per_frame():.0f} bytes/frame)"
            )
        return n

    def search(
        self,
        query: QueryArrays,
        max_distance: int,
        *,
        include_retracted: bool = False,
        quality_floor: int = QUALITY_FLOOR,
    ) -> list[VideoHits]:
        """:meth:`FrameIndex.search` from a worker thread: one batch, holding
        the index lock (commits meanwhile are queued, never waited for)."""
        self._index_lock.acquire()
        try:
            self._drain()  # what committed before this search
            return self.index.search(
                query,
                max_distance,
                include_retracted=include_retracted,
                quality_floor=quality_floor,
            )
        finally:
            self._release()

    def _apply(self, entries: Sequence[SignedEntry]) -> None:
        adds = []
        for e in entries:
            body = e.body
            if body.kind == Kind.ADD and body.algorithm == "VPDQ":
                adds.append(SegmentRows.decode(e.entry_id, body.origin, body.hash))
            elif body.kind == Kind.RETRACT:
                if adds:
                    self.index.add_segments(adds)
                    adds = []
                self.index.retract(body.target)
        if adds:
            self.index.add_segments(adds)

    def _void(self, entries: Sequence[SignedEntry]) -> None:
        for e in entries:
            body = e.body
            if body.kind == Kind.ADD and body.algorithm == "VPDQ":
                self.index.void(e.entry_id)
            elif body.kind == Kind.RETRACT:
                stored = self.store.get(body.target)
                if stored is None or stored.retracted_by:
                    continue
                self.index.unretract(body.target)
