"""vPDQ segments round-trip, and decoding raises nothing but ValidationError."""

from __future__ import annotations

import contextlib
import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from node.core import vpdq
from node.core.vpdq import VideoFrame, VpdqSegment
from node.errors import ValidationError


@st.composite
def segments(draw: st.DrawFn) -> VpdqSegment:
    start = draw(st.integers(0, 10**9))
    duration = draw(st.integers(1, vpdq.MAX_SEGMENT_MS))
    n = draw(st.integers(1, 40))
    ts = sorted(draw(st.lists(st.integers(0, duration), min_size=n, max_size=n)))
    fs = tuple(
        VideoFrame(draw(st.binary(min_size=32, max_size=32)), draw(st.integers(0, 100)), start + t)
        for t in ts
    )
    return VpdqSegment(
        video_id=draw(st.binary(min_size=16, max_size=16)),
        index=draw(st.integers(0, 2**32 - 1)),
        start_ms=start,
        duration_ms=duration,
        fps_milli=draw(st.integers(0, vpdq.MAX_FPS_MILLI)),
        final=draw(st.booleans()),
        frames=fs,
    )


@given(segments())
def test_segments_round_trip_exactly(seg: VpdqSegment) -> None:
    data = seg.encode()
    assert len(data) == vpdq.HEADER_BYTES + len(seg.frames) * vpdq.FRAME_BYTES
    assert VpdqSegment.decode(data) == seg
    assert VpdqSegment.decode(data).encode() == data


@settings(max_examples=300)
@given(segments(), st.data())
def test_damaged_segments_raise_validation_error_only(
    seg: VpdqSegment, data: st.DataObject
) -> None:
    raw = seg.encode()
    cut = data.draw(st.integers(0, len(raw)))
    flip = data.draw(st.integers(0, len(raw) - 1))
    junk = data.draw(st.binary(max_size=8))
    flipped = raw[:flip] + bytes([raw[flip] ^ 0xFF]) + raw[flip + 1 :]
    for candidate in (raw[:cut] + junk, flipped):
        with contextlib.suppress(ValidationError):
            VpdqSegment.decode(candidate)


@given(
    st.lists(st.integers(0, 3_000), min_size=1, max_size=300),
    st.integers(1, 50),
    st.integers(1, 2_000),
)
def test_split_keeps_every_frame_in_order_within_the_caps(
    gaps: list[int], max_frames: int, max_ms: int
) -> None:
    ts = []
    t = 0
    for g in gaps:
        t += g
        ts.append(t)
    fs = tuple(VideoFrame(bytes([k % 256]) * 32, 50, v) for k, v in enumerate(ts))
    segs = vpdq.split(
        fs, bytes(16), duration_ms=t + 10, fps_milli=0, max_frames=max_frames, max_ms=max_ms
    )
    assert tuple(f for s in segs for f in s.frames) == fs
    assert [s.index for s in segs] == list(range(len(segs)))
    assert segs[-1].final and not any(s.final for s in segs[:-1])
    for a, b in itertools.pairwise(segs):
        assert a.end_ms <= b.start_ms  # no overlap
    for s in segs:
        assert len(s.frames) <= max_frames
        assert VpdqSegment.decode(s.encode()) == s
