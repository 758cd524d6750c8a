"""The frame index: retraction, voiding, degenerate frames, segments of one video."""

from __future__ import annotations

import pytest

from node.core.vpdq import VideoFrame, VpdqSegment
from node.errors import ValidationError
from node.match.frames import FrameIndex, QueryArrays, SegmentRows
from tests.helpers import pdq_value

VID = b"v" * 16


def seg(index: int, hashes: list[bytes], start: int = 0, vid: bytes = VID) -> VpdqSegment:
    frames = tuple(VideoFrame(h, 90, start + 100 * k) for k, h in enumerate(hashes))
    return VpdqSegment(vid, index, start, 100 * len(hashes), 25_000, False, frames)


def query(hashes: list[bytes], variant: int = 0) -> QueryArrays:
    return QueryArrays.of([(h, 90, 40 * k, variant) for k, h in enumerate(hashes)])


def test_segments_of_one_video_aggregate_and_retraction_moves_them() -> None:
    index = FrameIndex()
    a = [pdq_value(i) for i in range(1, 5)]
    b = [pdq_value(i) for i in range(5, 9)]
    index.add_segments(
        [
            SegmentRows.of(b"s1" * 16, "gov.example", seg(1, b, start=400)),
            SegmentRows.of(b"s0" * 16, "gov.example", seg(0, a)),
        ]
    )
    (hit,) = index.search(query(a + b), 31)
    assert hit.key == ("gov.example", VID)
    assert hit.segments == (b"s0" * 16, b"s1" * 16)  # in time order
    assert (hit.query_pct, hit.banked_pct) == (100.0, 100.0)
    assert hit.banked_ts.tolist() == [0, 100, 200, 300, 400, 500, 600, 700]

    assert index.retract(b"s1" * 16)
    (hit,) = index.search(query(a + b), 31)
    assert (hit.query_pct, hit.banked_pct) == (50.0, 100.0)  # only segment 0 is live
    assert hit.segments == (b"s0" * 16,)
    (hit,) = index.search(query(b), 31, include_retracted=True)
    assert hit.retracted and hit.matched_segments == (b"s1" * 16,)
    assert not index.search(query(b), 31)

    index.unretract(b"s1" * 16)  # the RETRACT was voided
    (hit,) = index.search(query(b), 31)
    assert not hit.retracted
    index.void(b"s1" * 16)  # the segment itself was voided
    assert not index.search(query(b), 31, include_retracted=True)
    assert len(index) == 4


def test_same_video_id_from_two_origins_are_two_videos() -> None:
    index = FrameIndex()
    a = [pdq_value(i) for i in range(1, 3)]
    index.add_segments(
        [
            SegmentRows.of(b"x" * 32, "gov.example", seg(0, a)),
            SegmentRows.of(b"y" * 32, "ngo.example", seg(0, a)),
        ]
    )
    hits = index.search(query(a), 0)
    assert sorted(h.key[0] for h in hits) == ["gov.example", "ngo.example"]


def test_degenerate_frames_are_kept_but_not_indexed() -> None:
    index = FrameIndex()
    blank = bytes(32)
    index.add_segments([SegmentRows.of(b"z" * 32, "gov.example", seg(0, [blank, pdq_value(3)]))])
    assert len(index) == 1
    assert not index.search(query([blank]), 31)
    (hit,) = index.search(query([pdq_value(3)]), 31)
    assert hit.banked_ts.tolist() == [100]  # the blank frame is not among the matchable ones


def test_a_mirrored_variant_reports_its_own_percentages() -> None:
    index = FrameIndex()
    a = [pdq_value(i) for i in range(1, 5)]
    index.add_segments([SegmentRows.of(b"m" * 32, "gov.example", seg(0, a))])
    q = QueryArrays.of(
        [(pdq_value(90 + k), 90, 40 * k, 0) for k in range(4)]
        + [(h, 90, 40 * k, 1) for k, h in enumerate(a[:3])]
    )
    (hit,) = index.search(q, 31)
    assert (hit.query_pct, hit.banked_pct, hit.variant) == (100.0, 75.0, 1)


def test_bad_queries_are_refused() -> None:
    index = FrameIndex()
    with pytest.raises(ValidationError) as err:
        index.search(query([pdq_value(1)]), 64)
    assert str(err.value) == "PDQ distance 64: expected 0..63"
    with pytest.raises(ValidationError) as err:
        QueryArrays.of([(b"\x01" * 31, 90, 0, 0)])
    assert str(err.value) == "query frame 0: PDQ has 31 bytes: expected 32"
