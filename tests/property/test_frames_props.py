"""The frame index plus aggregation equals brute force over every banked frame."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from node.core.vpdq import VideoFrame, VpdqSegment
from node.match.frames import FrameIndex, QueryArrays, SegmentRows
from node.match.video import (
    FrameHits,
    QueryFrame,
    VideoThresholds,
    brute_force_hits,
    score_video,
)


def _flip(h: bytes, bits: list[int]) -> bytes:
    v = int.from_bytes(h, "big")
    for b in bits:
        v ^= 1 << b
    return v.to_bytes(32, "big")


def _near(a: bytes, b: bytes, radius: int) -> bool:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).bit_count() <= radius


def _brute(
    banked: dict[tuple[str, bytes], list[VideoFrame]],
    query: list[tuple[bytes, int, int, int]],
    radius: int,
    floor: int,
) -> dict[tuple[str, bytes], tuple[float, float, int, set[tuple[int, int]]]]:
    """pytx's rule, written out: per variant, distinct hashes of quality >= floor
    on each side, matched when within ``radius`` of any on the other side."""
    out = {}
    for key, frames in banked.items():
        indexed = [f for f in frames if 32 <= int.from_bytes(f.pdq, "big").bit_count() <= 224]
        indexed.sort(key=lambda f: f.ts_ms)
        hits = {
            (qi, bi)
            for qi, q in enumerate(query)
            for bi, f in enumerate(indexed)
            if (int.from_bytes(q[0], "big") ^ int.from_bytes(f.pdq, "big")).bit_count() <= radius
        }
        if not hits:
            continue
        b_units = {f.pdq for f in indexed if f.quality >= floor}
        best = (0.0, 0.0, 0)
        for v in sorted({q[3] for q in query}):
            q_units = {q[0] for q in query if q[3] == v and q[1] >= floor}
            if not q_units:
                continue
            qm = sum(any(_near(u, b, radius) for b in b_units) for u in q_units)
            bm = sum(any(_near(b, u, radius) for u in q_units) for b in b_units)
            pct = (100 * qm / len(q_units), 100 * bm / len(b_units) if b_units else 0.0, v)
            if pct[0] > best[0] or (pct[0] == best[0] and pct[1] > best[1]):
                best = pct
        out[key] = (*best, hits)
    return out


@st.composite
def scenes(
    draw: st.DrawFn,
) -> tuple[dict[tuple[str, bytes], list[VideoFrame]], list[tuple[bytes, int, int, int]], int]:
    bases = draw(st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=4))
    near = st.builds(_flip, st.sampled_from(bases), st.lists(st.integers(0, 255), max_size=40))
    frame_hash = st.one_of(near, st.binary(min_size=32, max_size=32), st.just(bytes(32)))
    banked: dict[tuple[str, bytes], list[VideoFrame]] = {}
    for v in range(draw(st.integers(1, 4))):
        key = (draw(st.sampled_from(["a.example", "b.example"])), bytes([v]) * 16)
        hs = draw(st.lists(frame_hash, min_size=1, max_size=12))
        banked[key] = [VideoFrame(h, draw(st.integers(0, 100)), 100 * k) for k, h in enumerate(hs)]
    query = [
        (h, draw(st.integers(0, 100)), 40 * k, draw(st.integers(0, 3)))
        for k, h in enumerate(draw(st.lists(frame_hash, min_size=1, max_size=12)))
    ]
    return banked, query, draw(st.sampled_from([0, 8, 31, 47, 63]))


@settings(max_examples=150, deadline=None)
@given(scenes(), st.integers(1, 5), st.integers(0, 100))
def test_index_and_aggregation_equal_brute_force(
    scene: tuple[dict[tuple[str, bytes], list[VideoFrame]], list[tuple[bytes, int, int, int]], int],
    per_segment: int,
    floor: int,
) -> None:
    banked, query, radius = scene
    index = FrameIndex()
    for (origin, vid), frames in banked.items():
        # segments of one video, added out of order: they aggregate on absolute time
        parts = [frames[i : i + per_segment] for i in range(0, len(frames), per_segment)]
        segs = [
            SegmentRows.decode(
                origin.encode() + vid + bytes([k]),
                origin,
                VpdqSegment(
                    vid, k, p[0].ts_ms, p[-1].ts_ms - p[0].ts_ms + 50, 0, False, tuple(p)
                ).encode(),
            )
            for k, p in enumerate(parts)
        ]
        index.add_segments(segs[::-1])
    q = QueryArrays.of(query)
    got = index.search(q, radius, quality_floor=floor)
    want = _brute(banked, query, radius, floor)
    assert {h.key for h in got} == set(want)
    for h in got:
        q_pct, b_pct, variant, hits = want[h.key]
        assert (h.query_pct, h.banked_pct, h.variant) == (q_pct, b_pct, variant)
        got_hits = set(zip(h.query_index.tolist(), h.banked_index.tolist(), strict=True))
        assert got_hits == hits
        # distances are the true ones, and banked frames are in time order
        for qi, bi, d in zip(h.query_index, h.banked_index, h.distance, strict=True):
            x = int.from_bytes(query[qi][0], "big") ^ int.from_bytes(
                h.banked_pdq[bi].tobytes(), "big"
            )
            assert x.bit_count() == d
        assert np.all(np.diff(h.banked_ts) >= 0)


@settings(max_examples=100, deadline=None)
@given(scenes())
def test_index_hits_score_like_brute_force_hits(
    scene: tuple[dict[tuple[str, bytes], list[VideoFrame]], list[tuple[bytes, int, int, int]], int],
) -> None:
    """The decision (score_video) from the index's hits equals the decision
    from brute_force_hits over the same banked frames."""
    banked, query, radius = scene
    index = FrameIndex()
    index.add_segments(
        [
            SegmentRows.decode(
                origin.encode() + vid,
                origin,
                VpdqSegment(vid, 0, 0, frames[-1].ts_ms + 50, 0, True, tuple(frames)).encode(),
            )
            for (origin, vid), frames in banked.items()
        ]
    )
    q = [QueryFrame(*f) for f in query]
    t = VideoThresholds(max_distance=radius, min_frames=1, min_matched_ms=0)
    for h in index.search(QueryArrays.of(query), radius):
        frames = [
            VideoFrame(p.tobytes(), int(qual), int(ts))
            for p, qual, ts in zip(h.banked_pdq, h.banked_quality, h.banked_ts, strict=True)
        ]
        got = score_video(q, frames, FrameHits(h.query_index, h.banked_index, h.distance), t)
        assert got == score_video(q, frames, brute_force_hits(q, frames, radius), t)
