"""node.match.video: the pure aggregator, on made-up frame hashes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.core.vpdq import VideoFrame
from node.errors import ValidationError
from node.match.video import (
    NO_MATCH,
    FrameHits,
    QueryFrame,
    VideoScore,
    VideoThresholds,
    brute_force_hits,
    score_video,
)


def _random_hash(rng: np.random.Generator) -> bytes:
    return rng.integers(0, 256, 32, dtype=np.uint8).tobytes()


def _flip(h: bytes, bits: int, rng: np.random.Generator) -> bytes:
    v = int.from_bytes(h, "big")
    for b in rng.choice(256, bits, replace=False):
        v ^= 1 << int(b)
    return v.to_bytes(32, "big")


def _banked(n: int, seed: int = 0, every_ms: int = 1000) -> list[VideoFrame]:
    rng = np.random.default_rng(seed)
    return [VideoFrame(_random_hash(rng), 90, i * every_ms) for i in range(n)]


def _query(
    banked: list[VideoFrame],
    *,
    start: int = 0,
    stop: int | None = None,
    shift_ms: int = 0,
    bits: int = 6,
    variant: int = 0,
    seed: int = 1,
) -> list[QueryFrame]:
    rng = np.random.default_rng(seed)
    return [
        QueryFrame(_flip(f.pdq, bits, rng), f.quality, f.ts_ms - shift_ms, variant)
        for f in banked[start:stop]
    ]


DEFAULT = VideoThresholds()


def _score(
    query: list[QueryFrame], banked: list[VideoFrame], t: VideoThresholds = DEFAULT
) -> VideoScore:
    return score_video(query, banked, brute_force_hits(query, banked, t.max_distance), t)


def test_a_copy_matches_in_full() -> None:
    banked = _banked(20)
    s = _score(_query(banked), banked)
    assert s.is_match
    assert (s.query_pct, s.banked_pct, s.coverage, s.matched_frames) == (100.0, 100.0, 1.0, 20)
    assert (s.offset_ms, s.query_range_ms, s.banked_range_ms) == (0, (0, 19000), (0, 19000))
    assert (s.mirrored, s.trimmed, s.variant) == (False, False, "original")


def test_a_clip_is_aligned_and_covers_its_overlap() -> None:
    banked = _banked(60)
    # banked seconds 20..29, the upload's 0..9
    s = _score(_query(banked, start=20, stop=30, shift_ms=20_000), banked)
    assert s.is_match
    assert s.offset_ms == 20_000
    assert s.query_range_ms == (0, 9000)
    assert s.banked_range_ms == (20_000, 29_000)
    assert s.coverage == 1.0
    assert s.banked_pct == pytest.approx(100 * 10 / 60, abs=0.01)
    assert s.query_pct == 100.0


def test_the_variant_that_matched_is_reported() -> None:
    banked = _banked(10)
    rng = np.random.default_rng(5)
    noise = [QueryFrame(_random_hash(rng), 90, f.ts_ms, 0) for f in banked]
    s = _score(noise + _query(banked, variant=3), banked)
    assert (s.is_match, s.mirrored, s.trimmed, s.variant) == (True, True, True, "trimmed+mirrored")
    assert s.query_pct == 100.0  # of the mirrored+trimmed frames


def test_hits_at_scattered_offsets_do_not_match() -> None:
    banked = _banked(30)
    rng = np.random.default_rng(2)
    # each query frame resembles some banked frame, in shuffled order
    order = rng.permutation(30)
    query = [
        QueryFrame(_flip(banked[int(j)].pdq, 5, rng), 90, i * 1000, 0) for i, j in enumerate(order)
    ]
    s = _score(query, banked)
    assert s.query_pct == 100.0  # pytx's bag-of-frames rule would call this a match
    assert not s.is_match
    assert s.matched_frames < 4


def test_too_short_or_too_thin_a_match_is_not_one() -> None:
    banked = _banked(30)
    short = _score(_query(banked, start=5, stop=7, shift_ms=5000), banked)  # 2 frames, 1 s
    assert (short.matched_frames, short.is_match) == (2, False)
    # half the overlapped frames far off: coverage 0.5 meets the default, 0.6 does not
    query = _query(banked)
    rng = np.random.default_rng(9)
    query = [
        q if i % 2 else QueryFrame(_random_hash(rng), 90, q.ts_ms, 0) for i, q in enumerate(query)
    ]
    half = _score(query, banked)
    assert half.coverage == 0.5 and half.is_match
    assert not _score(query, banked, VideoThresholds(min_coverage=0.6)).is_match


def test_low_quality_and_far_frames_count_on_neither_side() -> None:
    banked = _banked(10)
    query = _query(banked)
    dull = [QueryFrame(q.pdq, 49, q.ts_ms, 0) for q in query]
    assert _score(dull, banked) == NO_MATCH
    far = _query(banked, bits=40)
    assert _score(far, banked) == NO_MATCH
    assert _score(far, banked, VideoThresholds(max_distance=45)).is_match


def test_percentages_count_distinct_hashes_like_pytx() -> None:
    banked = _banked(4)
    rng = np.random.default_rng(3)
    one = _query(banked)[0]
    # the same matching hash three times, and one frame that matches nothing
    query = [one, QueryFrame(one.pdq, 90, 1000, 0), QueryFrame(one.pdq, 90, 2000, 0)]
    query.append(QueryFrame(_random_hash(rng), 90, 3000, 0))
    s = _score(query, banked)
    assert s.query_pct == 50.0  # 1 of 2 distinct hashes
    assert s.banked_pct == 25.0


def test_empty_sides_give_no_match() -> None:
    banked = _banked(3)
    assert score_video([], banked, FrameHits.empty()) == NO_MATCH
    assert score_video(_query(banked), [], FrameHits.empty()) == NO_MATCH
    assert score_video(_query(banked), banked, FrameHits.empty()) == NO_MATCH


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"max_distance": 300}, "max_distance must be in 0..256: got 300"),
        ({"quality_floor": -1}, "quality_floor must be in 0..100: got -1"),
        ({"min_coverage": 1.5}, "min_coverage must be in 0..1: got 1.5"),
        ({"min_frames": 0}, "min_frames must be >= 1 and min_matched_ms >= 0"),
        ({"offset_tolerance_ms": 0}, "offset_tolerance_ms must be >= 1: got 0"),
    ],
)
def test_thresholds_are_checked(bad: dict[str, float], message: str) -> None:
    with pytest.raises(ValidationError) as err:
        VideoThresholds(**bad)  # type: ignore[arg-type]
    assert str(err.value) == message


def test_hits_arrays_must_be_parallel() -> None:
    with pytest.raises(ValidationError, match="same length"):
        FrameHits(np.zeros(2), np.zeros(1), np.zeros(2))


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 40), st.integers(0, 12), st.integers(0, 64))
def test_brute_force_hits_are_every_pair_within_the_distance(
    seed: int, nq: int, nb: int, radius: int
) -> None:
    rng = np.random.default_rng(seed)
    banked = [VideoFrame(_random_hash(rng), 80, i) for i in range(nb)]
    # query frames near banked ones, so that some pairs fall inside the radius
    query = [
        QueryFrame(
            _flip(banked[i % nb].pdq, int(rng.integers(0, 70)), rng) if nb else _random_hash(rng),
            80,
            i,
            0,
        )
        for i in range(nq)
    ]
    hits = brute_force_hits(query, banked, radius)
    got = sorted(
        zip(
            hits.query_index.tolist(),
            hits.banked_index.tolist(),
            hits.distance.tolist(),
            strict=True,
        )
    )
    want = []
    for i, q in enumerate(query):
        for j, b in enumerate(banked):
            d = (int.from_bytes(q.pdq, "big") ^ int.from_bytes(b.pdq, "big")).bit_count()
            if d <= radius:
                want.append((i, j, d))
    assert got == want


def test_two_pairs_whose_median_offset_lies_between_them_still_align() -> None:
    # Offsets 0 and 800 ms vote for the bin between them, and their median
    # (400) is more than the tolerance from both: one of the pairs must still
    # be the alignment (this raised ValueError on an empty selection).
    banked = _banked(2)
    banked = [banked[0], VideoFrame(banked[1].pdq, 90, 1800)]
    query = [
        QueryFrame(banked[0].pdq, 90, 0, 0),
        QueryFrame(banked[1].pdq, 90, 1000, 0),
    ]
    s = _score(query, banked)
    assert s.offset_ms in (0, 800)
    assert s.matched_frames == 1
    assert not s.is_match
