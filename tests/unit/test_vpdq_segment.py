"""vPDQ segments: the encoding, its exact errors, splitting, and entry validation."""

from __future__ import annotations

import struct

import pytest

from node.app import MAX_SUBMIT_BATCH
from node.core import vpdq
from node.core.entry import MAX_VPDQ_BODY_BYTES, EntryBody
from node.core.vpdq import VideoFrame, VpdqSegment
from node.errors import ValidationError
from node.rpc.client import MAX_MESSAGE_BYTES
from node.rpc.service import MAX_PULL_BYTES
from tests.helpers import Origin, pdq_value

VID = bytes(range(16))


def frames(n: int, step_ms: int = 200, start: int = 0) -> tuple[VideoFrame, ...]:
    return tuple(VideoFrame(pdq_value(i + 1), 90, start + i * step_ms) for i in range(n))


def segment(**fields: object) -> VpdqSegment:
    base: dict[str, object] = dict(
        video_id=VID,
        index=0,
        start_ms=0,
        duration_ms=60_000,
        fps_milli=25_000,
        final=True,
        frames=frames(3),
    )
    base.update(fields)
    return VpdqSegment(**base)  # type: ignore[arg-type]


GOOD = segment().encode()


def test_the_encoding_is_the_documented_layout() -> None:
    seg = segment(start_ms=5_000, frames=frames(2, start=5_000), index=7, final=False)
    data = seg.encode()
    assert data[:5] == b"VPDQ\x01"
    assert data[5:21] == VID
    assert struct.unpack(">IIIIBH", data[21:40]) == (7, 5_000, 60_000, 25_000, 0, 2)
    # per frame: the hash, its quality and its time relative to the segment's start
    assert data[40:77] == pdq_value(1) + bytes([90]) + struct.pack(">I", 0)
    assert data[77:] == pdq_value(2) + bytes([90]) + struct.pack(">I", 200)
    assert len(data) == vpdq.HEADER_BYTES + 2 * vpdq.FRAME_BYTES
    assert VpdqSegment.decode(data) == seg


def _frame_at(data: bytes, i: int) -> int:
    return vpdq.HEADER_BYTES + i * vpdq.FRAME_BYTES


def _patch(data: bytes, at: int, new: bytes) -> bytes:
    return data[:at] + new + data[at + len(new) :]


BAD_ENCODINGS = [
    (b"", "vPDQ segment is truncated: 0 bytes, expected a 40-byte header"),
    (GOOD[:39], "vPDQ segment is truncated: 39 bytes, expected a 40-byte header"),
    (b"VPDX" + GOOD[4:], "not a vPDQ segment: bad magic"),
    (_patch(GOOD, 4, b"\x02"), "vPDQ segment version 2: expected 1"),
    (_patch(GOOD, 37, b"\x03"), "unknown vPDQ segment flags 0x03"),
    (_patch(GOOD, 38, b"\x00\x00"), "vPDQ segment has 0 frames: expected 1..1024"),
    (_patch(GOOD, 38, b"\x04\x01"), "vPDQ segment has 1025 frames: expected 1..1024"),
    (
        GOOD[:-1],
        "vPDQ segment is truncated: 3 frames declared, 2 present and 36 bytes of a truncated frame",
    ),
    (GOOD[: _frame_at(GOOD, 2)], "vPDQ segment is truncated: 3 frames declared, 2 present"),
    (GOOD + b"\x00", "vPDQ segment has 1 trailing bytes after 3 frames"),
    (_patch(GOOD, _frame_at(GOOD, 1) + 32, b"\x65"), "vPDQ frame 1: quality 101: expected 0..100"),
    (
        _patch(GOOD, _frame_at(GOOD, 2) + 33, struct.pack(">I", 100)),
        "vPDQ frame 2: timestamp 100 ms before the previous frame's 200 ms: "
        "expected non-decreasing",
    ),
    (
        _patch(GOOD, _frame_at(GOOD, 0) + 33, struct.pack(">I", 60_001)),
        "vPDQ frame 0: timestamp 60001 ms outside the segment 0..60000 ms",
    ),
    (
        _patch(GOOD, 29, struct.pack(">I", 600_001)),
        "vPDQ segment duration 600001 ms: expected 0..600000",
    ),
    (
        _patch(GOOD, 33, struct.pack(">I", 1_000_001)),
        "vPDQ frame rate 1000001 mfps: expected 0..1000000 (0: unknown)",
    ),
    (
        _patch(GOOD, 25, struct.pack(">I", 2**32 - 10)),
        "vPDQ segment ends at 4295027286 ms: expected at most 4294967295",
    ),
]


@pytest.mark.parametrize(("data", "message"), BAD_ENCODINGS)
def test_bad_encodings_are_refused_with_an_exact_error(data: bytes, message: str) -> None:
    with pytest.raises(ValidationError) as err:
        VpdqSegment.decode(data)
    assert str(err.value) == message


BAD_VALUES = [
    (dict(video_id=bytes(15)), "vPDQ video id has 15 bytes: expected 16"),
    (dict(frames=()), "vPDQ segment has 0 frames: expected 1..1024"),
    (dict(frames=frames(1025, step_ms=1)), "vPDQ segment has 1025 frames: expected 1..1024"),
    (dict(index=-1), "vPDQ segment index -1: expected 0..4294967295"),
    (dict(fps_milli=-1), "vPDQ frame rate -1 mfps: expected 0..1000000 (0: unknown)"),
]


@pytest.mark.parametrize(("fields", "message"), BAD_VALUES)
def test_bad_segment_values_are_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError) as err:
        segment(**fields)
    assert str(err.value) == message


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((b"\x01" * 31, 50, 0), "frame PDQ has 31 bytes: expected 32"),
        ((b"\x01" * 32, 101, 0), "frame quality 101: expected 0..100"),
        ((b"\x01" * 32, -1, 0), "frame quality -1: expected 0..100"),
        ((b"\x01" * 32, 50, -5), "frame timestamp -5 ms: expected 0..4294967295"),
    ],
)
def test_bad_frames_are_refused(args: tuple[bytes, int, int], message: str) -> None:
    with pytest.raises(ValidationError) as err:
        VideoFrame(*args)
    assert str(err.value) == message


def test_a_full_segment_is_at_the_cap_and_fits_an_entry() -> None:
    seg = segment(frames=frames(vpdq.MAX_FRAMES, step_ms=50))
    data = seg.encode()
    assert len(data) == vpdq.MAX_ENCODED == 37_928
    entry = Origin("gov.example").next(algorithm="VPDQ", hash=data)
    assert len(entry.body_bytes) <= MAX_VPDQ_BODY_BYTES
    assert EntryBody.decode(entry.body_bytes).hash == data


def test_an_entry_validates_its_vpdq_field_like_any_other() -> None:
    bad = _patch(GOOD, _frame_at(GOOD, 1) + 32, b"\xff")
    with pytest.raises(ValidationError) as err:
        Origin("gov.example").next(algorithm="VPDQ", hash=bad)
    assert str(err.value) == "vPDQ frame 1: quality 255: expected 0..100"
    # and a received body with that field is refused as it is decoded
    body = Origin("gov.example").next(algorithm="VPDQ", hash=GOOD).body_bytes
    tampered = body.replace(GOOD, bad)
    with pytest.raises(ValidationError) as err:
        EntryBody.decode(tampered)
    assert str(err.value) == "vPDQ frame 1: quality 255: expected 0..100"


def test_the_opaque_cap_no_longer_applies_to_vpdq_but_still_to_tmk() -> None:
    with pytest.raises(ValidationError) as err:
        Origin("gov.example").next(algorithm="VPDQ", hash=b"\x01" * 200_000)
    assert str(err.value) == "VPDQ hash has 200000 bytes: expected 77..37928 bytes"
    big = Origin("gov.example").next(algorithm="TMK_PDQF", hash=b"\x01" * 200_000)
    assert EntryBody.decode(big.body_bytes).hash == b"\x01" * 200_000


def test_a_two_hour_video_splits_into_segments_that_share_its_id() -> None:
    # the bank's densest rate: 5 frames a second for two hours
    fs = frames(2 * 3600 * 5, step_ms=200)
    segs = vpdq.split(fs, VID, duration_ms=7_200_000, fps_milli=25_000)
    assert len(segs) == 120
    assert [s.index for s in segs] == list(range(120))
    assert [s.final for s in segs] == [False] * 119 + [True]
    assert {s.video_id for s in segs} == {VID}
    assert [s.start_ms for s in segs] == [60_000 * k for k in range(120)]
    assert all(s.duration_ms == 60_000 for s in segs)
    assert tuple(f for s in segs for f in s.frames) == fs
    entries = [Origin("gov.example").next(algorithm="VPDQ", hash=s.encode()) for s in segs]
    total = sum(len(e.to_bytes()) for e in entries)
    assert max(len(e.to_bytes()) for e in entries) < 12_000
    assert total < 1_500_000  # one submit batch, under the 4 MiB message cap
    assert total < MAX_MESSAGE_BYTES and len(entries) <= MAX_SUBMIT_BATCH
    # the largest possible VPDQ entry travels in any Pull response
    assert MAX_VPDQ_BODY_BYTES + 68 < MAX_PULL_BYTES / 40  # 45 of them fill one response
    assert [VpdqSegment.decode(e.body.hash) for e in entries] == segs


def test_splitting_by_frame_count_and_across_a_gap() -> None:
    fs = frames(5, step_ms=10) + frames(2, step_ms=10, start=200_000)
    segs = vpdq.split(fs, VID, duration_ms=250_000, fps_milli=0, max_frames=3)
    assert [(s.start_ms, s.duration_ms, len(s.frames)) for s in segs] == [
        (0, 30, 3),
        (30, 60_000, 2),
        (200_000, 50_000, 2),
    ]
    with pytest.raises(ValidationError) as err:
        vpdq.split((), VID, duration_ms=1, fps_milli=0)
    assert str(err.value) == "a video with no hashed frames cannot be banked"


def test_reference_frames_are_recovered_from_timestamps_and_frame_rate() -> None:
    # 29.97 fps: the reference samples frame indices that are multiples of int(fps) = 29
    fps_milli = 29_970
    idx = [0, 3, 7, 29, 30, 58, 87, 90]
    fs = tuple(
        VideoFrame(pdq_value(i + 1), 80, (i * 1_000_000 + fps_milli // 2) // fps_milli) for i in idx
    )
    segs = vpdq.split(fs, VID, duration_ms=4_000, fps_milli=fps_milli)
    picked = vpdq.reference_frames(segs)
    assert [f.pdq for f in picked] == [pdq_value(i + 1) for i in (0, 29, 58, 87)]
