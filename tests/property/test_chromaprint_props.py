"""Chromaprint segments round-trip, and decoding raises nothing but ValidationError."""

from __future__ import annotations

import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st

from node.core import chromaprint
from node.core.chromaprint import ChromaprintSegment
from node.errors import ValidationError


@st.composite
def segments(draw: st.DrawFn) -> ChromaprintSegment:
    values = tuple(draw(st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=64)))
    return ChromaprintSegment(
        video_id=draw(st.binary(min_size=16, max_size=16)),
        index=draw(st.integers(0, 2**32 - 1)),
        start_item=draw(st.integers(0, 2**32 - len(values))),
        final=draw(st.booleans()),
        values=values,
    )


@given(segments())
def test_segments_round_trip_exactly(seg: ChromaprintSegment) -> None:
    data = seg.encode()
    assert len(data) == chromaprint.HEADER_BYTES + len(seg.values) * chromaprint.ITEM_BYTES
    assert ChromaprintSegment.decode(data) == seg
    assert ChromaprintSegment.decode(data).encode() == data


@settings(max_examples=300)
@given(segments(), st.data())
def test_damaged_segments_raise_validation_error_only(
    seg: ChromaprintSegment, data: st.DataObject
) -> None:
    raw = seg.encode()
    cut = data.draw(st.integers(0, len(raw)))
    flip = data.draw(st.integers(0, len(raw) - 1))
    junk = data.draw(st.binary(max_size=8))
    flipped = raw[:flip] + bytes([raw[flip] ^ 0xFF]) + raw[flip + 1 :]
    for candidate in (raw[:cut] + junk, flipped):
        with contextlib.suppress(ValidationError):
            ChromaprintSegment.decode(candidate)


@given(st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=300), st.integers(1, 64))
def test_split_keeps_every_value_in_order_at_its_position(values: list[int], size: int) -> None:
    segs = chromaprint.split(values, bytes(16), max_items=size)
    assert [s.index for s in segs] == list(range(len(segs)))
    assert [s.final for s in segs] == [False] * (len(segs) - 1) + [True]
    for s in segs:
        assert tuple(values[s.start_item : s.end_item]) == s.values
    assert sum(len(s.values) for s in segs) == len(values)
