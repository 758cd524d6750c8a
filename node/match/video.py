"""Scoring a video query against one banked video (docs/video.md, "Decision").

Pure numpy, fed hashes and hits, never files. The frame index (or
:func:`brute_force_hits`) finds every pair of a query frame and a banked
frame within ``max_distance``; :func:`score_video` turns the pairs of one
banked video into a :class:`VideoScore`:

- pytx's percentages, for reports and policies: of the query's distinct frame
  hashes of quality >= 50, the share within the distance of some banked hash
  (query%), and of the banked distinct hashes the share matched (banked%);
- the time alignment: every pair votes for ``banked_ts - query_ts``; the
  offset where the most distinct banked frames agree (within
  ``offset_tolerance_ms``) is the alignment, and the pairs agreeing with it
  are the match;
- coverage: of the banked frames (quality >= 50) inside the stretch of the
  banked video that the query overlaps at that alignment, the share matched;
- the matched time ranges on both sides.

Each query frame is one of four variants (original, mirrored, trimmed,
trimmed + mirrored). Each variant is scored on its own and the one with the
most aligned banked frames is reported, so a mirrored upload reads as
"mirrored" and its percentages are those of the mirrored frames.

A match needs ``min_coverage`` of the overlap covered, at least
``min_frames`` banked frames aligned and at least ``min_matched_ms`` of the
banked video spanned by them; defaults are in :class:`VideoThresholds`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from node.errors import ValidationError

if TYPE_CHECKING:
    from node.core.vpdq import VideoFrame

__all__ = [
    "VARIANT_NAMES",
    "FrameHits",
    "QueryFrame",
    "VideoScore",
    "VideoThresholds",
    "brute_force_hits",
    "score_video",
]

VARIANT_ORIGINAL = 0
VARIANT_MIRRORED = 1
VARIANT_TRIMMED = 2
VARIANT_TRIMMED_MIRRORED = 3
VARIANT_NAMES = ("original", "mirrored", "trimmed", "trimmed+mirrored")
PDQ_BYTES = 32


@dataclass(frozen=True, slots=True)
class QueryFrame:
    """One hashed frame of an upload, as one of its variants."""

    pdq: bytes
    quality: int
    ts_ms: int
    variant: int

    def __post_init__(self) -> None:
        if len(self.pdq) != PDQ_BYTES:
            raise ValidationError(f"frame PDQ has {len(self.pdq)} bytes: expected {PDQ_BYTES}")
        if not 0 <= self.quality <= 100:
            raise ValidationError(f"frame quality {self.quality}: expected 0..100")
        if self.ts_ms < 0:
            raise ValidationError(f"frame timestamp {self.ts_ms} ms: expected >= 0")
        if self.variant not in (0, 1, 2, 3):
            raise ValidationError(f"frame variant {self.variant}: expected 0..3")


@dataclass(frozen=True, slots=True)
class VideoThresholds:
    """When a video query matches a banked video (docs/video.md has the
    measurements behind each default). Per request overridable."""

    max_distance: int = 31  # PDQ bits; pytx's and HMA's vPDQ distance
    quality_floor: int = 50  # frames below it count on neither side (pytx)
    min_coverage: float = 0.5  # share of the overlapped banked frames aligned
    min_frames: int = 4  # banked frames aligned, at least
    min_matched_ms: int = 1500  # banked time spanned by the aligned frames, at least
    offset_tolerance_ms: int = 300  # how far a pair's offset may stray from the alignment

    def __post_init__(self) -> None:
        if not 0 <= self.max_distance <= 256:
            raise ValidationError(f"max_distance must be in 0..256: got {self.max_distance}")
        if not 0 <= self.quality_floor <= 100:
            raise ValidationError(f"quality_floor must be in 0..100: got {self.quality_floor}")
        if not 0.0 <= self.min_coverage <= 1.0:
            raise ValidationError(f"min_coverage must be in 0..1: got {self.min_coverage}")
        if self.min_frames < 1 or self.min_matched_ms < 0:
            raise ValidationError("min_frames must be >= 1 and min_matched_ms >= 0")
        if self.offset_tolerance_ms < 1:
            raise ValidationError(
                f"offset_tolerance_ms must be >= 1: got {self.offset_tolerance_ms}"
            )


@dataclass(frozen=True, slots=True)
class FrameHits:
    """Pairs (query frame, banked frame) within the distance: parallel arrays
    of indexes into the query and banked sequences, and their distances."""

    query_index: Any
    banked_index: Any
    distance: Any

    def __post_init__(self) -> None:
        n = len(self.query_index)
        if len(self.banked_index) != n or len(self.distance) != n:
            raise ValidationError("frame hits: the three arrays must have the same length")

    @classmethod
    def empty(cls) -> FrameHits:
        z = np.zeros(0, np.int64)
        return cls(z, z, z)


@dataclass(frozen=True, slots=True)
class VideoScore:
    """How one query video compares with one banked video."""

    query_pct: float  # pytx: share of distinct query hashes matched (variant reported)
    banked_pct: float  # pytx: share of distinct banked hashes matched
    matched_frames: int  # distinct banked frames aligned
    offset_ms: int  # banked time = query time + offset
    coverage: float  # aligned / banked frames inside the overlap (0..1)
    query_range_ms: tuple[int, int]  # first and last aligned query frame
    banked_range_ms: tuple[int, int]  # first and last aligned banked frame
    mirrored: bool
    trimmed: bool
    is_match: bool

    @property
    def matched_ms(self) -> int:
        return self.banked_range_ms[1] - self.banked_range_ms[0]

    @property
    def variant(self) -> str:
        return VARIANT_NAMES[int(self.mirrored) + 2 * int(self.trimmed)]


NO_MATCH = VideoScore(0.0, 0.0, 0, 0, 0.0, (0, 0), (0, 0), False, False, False)


def _words(hashes: Sequence[bytes]) -> Any:
    """32-byte hashes as an (n, 4) uint64 array."""
    if not hashes:
        return np.zeros((0, 4), np.uint64)
    return np.frombuffer(b"".join(hashes), dtype=">u8").reshape(-1, 4).astype(np.uint64)


def brute_force_hits(
    query: Sequence[QueryFrame], banked: Sequence[VideoFrame], max_distance: int = 31
) -> FrameHits:
    """Every (query, banked) pair within ``max_distance``, by comparing all pairs."""
    q = _words([f.pdq for f in query])
    b = _words([f.pdq for f in banked])
    qi: list[Any] = []
    bi: list[Any] = []
    dist: list[Any] = []
    rows = max(1, (1 << 22) // max(1, len(b)))  # ~4M distances a block
    for start in range(0, len(q), rows):
        block = q[start : start + rows]
        d = np.bitwise_count(block[:, None, :] ^ b[None, :, :]).sum(axis=2, dtype=np.int64)
        i, j = np.nonzero(d <= max_distance)
        qi.append(i + start)
        bi.append(j)
        dist.append(d[i, j])
    if not qi:
        return FrameHits.empty()
    return FrameHits(
        np.concatenate(qi).astype(np.int64),
        np.concatenate(bi).astype(np.int64),
        np.concatenate(dist).astype(np.int64),
    )


def _distinct_ids(hashes: Sequence[bytes]) -> Any:
    """For each hash, the id of its distinct value (pytx de-duplicates)."""
    if not hashes:
        return np.zeros(0, np.int64)
    raw = np.frombuffer(b"".join(hashes), dtype=np.dtype((np.void, PDQ_BYTES)))
    _, inverse = np.unique(raw, return_inverse=True)
    return inverse.astype(np.int64)


def _pct(matched_ids: Any, all_ids: Any) -> float:
    total = len(np.unique(all_ids))
    return 100.0 * len(np.unique(matched_ids)) / total if total else 0.0


def _align(q_ts: Any, b_ts: Any, qi: Any, bi: Any, tol: int) -> tuple[int, Any]:
    """The offset (banked - query, ms) most distinct banked frames agree on,
    and the mask of the pairs within ``tol`` of it."""
    offsets = b_ts[bi] - q_ts[qi]
    bins = np.floor_divide(offsets, tol)
    # each banked frame votes once per bin, and for the bins beside it
    votes = np.unique(
        np.stack([np.concatenate([bins - 1, bins, bins + 1]), np.tile(bi, 3)], axis=1), axis=0
    )
    keys, counts = np.unique(votes[:, 0], return_counts=True)
    best = keys[counts == counts.max()]
    k = int(best[np.argmin(np.abs(best))])  # ties: the smallest shift
    near = offsets[np.abs(bins - k) <= 1]
    offset = int(np.median(near))
    # An even count's median can fall between far-apart pairs: then the
    # nearest pair's own offset is the alignment, so at least one pair holds.
    if not (np.abs(near - offset) <= tol).any():
        offset = int(near[np.argmin(np.abs(near - offset))])
    return offset, np.abs(offsets - offset) <= tol


def score_video(
    query: Sequence[QueryFrame],
    banked: Sequence[VideoFrame],
    hits: FrameHits,
    t: VideoThresholds = VideoThresholds(),
) -> VideoScore:
    """Score ``query`` against one banked video from their hits (module docstring)."""
    if not query or not banked:
        return NO_MATCH
    q_ts = np.array([f.ts_ms for f in query], np.int64)
    q_quality = np.array([f.quality for f in query], np.int64)
    q_variant = np.array([f.variant for f in query], np.int64)
    b_ts = np.array([f.ts_ms for f in banked], np.int64)
    b_good = np.array([f.quality for f in banked], np.int64) >= t.quality_floor
    q_ids = _distinct_ids([f.pdq for f in query])
    b_ids = _distinct_ids([f.pdq for f in banked])
    qi = np.asarray(hits.query_index, np.int64)
    bi = np.asarray(hits.banked_index, np.int64)
    keep = (np.asarray(hits.distance) <= t.max_distance) & (q_quality[qi] >= t.quality_floor)
    keep &= b_good[bi]
    qi, bi = qi[keep], bi[keep]
    q_good = q_quality >= t.quality_floor

    best: tuple[tuple[int, float], VideoScore] | None = None
    for variant in np.unique(q_variant[qi]) if len(qi) else ():
        mine = q_variant[qi] == variant
        vqi, vbi = qi[mine], bi[mine]
        frames_v = (q_variant == variant) & q_good
        query_pct = _pct(q_ids[vqi], q_ids[frames_v])
        banked_pct = _pct(b_ids[vbi], b_ids[b_good])
        offset, aligned = _align(q_ts, b_ts, vqi, vbi, t.offset_tolerance_ms)
        aqi, abi = vqi[aligned], vbi[aligned]
        # the banked stretch the query spans at this alignment
        spanned = q_ts[q_variant == variant]
        lo = max(int(spanned.min()) + offset, int(b_ts.min()))
        hi = min(int(spanned.max()) + offset, int(b_ts.max()))
        inside = (
            b_good & (b_ts >= lo - t.offset_tolerance_ms) & (b_ts <= hi + t.offset_tolerance_ms)
        )
        matched = np.unique(abi)
        covered = len(np.intersect1d(matched, np.nonzero(inside)[0]))
        coverage = min(1.0, covered / max(1, int(inside.sum())))
        b_range = (int(b_ts[abi].min()), int(b_ts[abi].max()))
        score = VideoScore(
            query_pct=round(query_pct, 2),
            banked_pct=round(banked_pct, 2),
            matched_frames=len(matched),
            offset_ms=offset,
            coverage=round(coverage, 4),
            query_range_ms=(int(q_ts[aqi].min()), int(q_ts[aqi].max())),
            banked_range_ms=b_range,
            mirrored=int(variant) in (VARIANT_MIRRORED, VARIANT_TRIMMED_MIRRORED),
            trimmed=int(variant) in (VARIANT_TRIMMED, VARIANT_TRIMMED_MIRRORED),
            is_match=(
                coverage >= t.min_coverage
                and len(matched) >= t.min_frames
                and b_range[1] - b_range[0] >= t.min_matched_ms
            ),
        )
        rank = (len(matched), coverage)
        if best is None or rank > best[0]:
            best = (rank, score)
    return best[1] if best is not None else NO_MATCH
