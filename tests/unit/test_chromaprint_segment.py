"""Chromaprint segments: the encoding, its exact errors, splitting, and entry validation."""

from __future__ import annotations

import struct

import pytest

from node.core import chromaprint
from node.core.chromaprint import ChromaprintSegment
from node.core.entry import MAX_CHROMAPRINT_BODY_BYTES, EntryBody
from node.errors import ValidationError
from tests.helpers import Origin

VID = bytes(range(16))
VALUES = (0xBB85FE3E, 0xBE84BD6E, 0x00000000, 0xFFFFFFFF)


def segment(**fields: object) -> ChromaprintSegment:
    base: dict[str, object] = dict(
        video_id=VID, index=0, start_item=0, final=True, values=VALUES[:3]
    )
    base.update(fields)
    return ChromaprintSegment(**base)  # type: ignore[arg-type]


GOOD = segment().encode()


def _patch(data: bytes, at: int, new: bytes) -> bytes:
    return data[:at] + new + data[at + len(new) :]


def test_the_encoding_is_the_documented_layout() -> None:
    seg = segment(index=7, start_item=485, final=False, values=VALUES)
    data = seg.encode()
    assert data[:5] == b"CHRP\x01"
    assert data[5:21] == VID
    assert struct.unpack(">IIBH", data[21:32]) == (7, 485, 0, 4)
    assert data[32:] == bytes.fromhex("bb85fe3ebe84bd6e00000000ffffffff")
    assert len(data) == chromaprint.HEADER_BYTES + 4 * chromaprint.ITEM_BYTES
    assert ChromaprintSegment.decode(data) == seg
    # the time base is the algorithm's: item 485 starts 485 x 1365 / 11025 s in
    assert seg.start_ms == 60_048
    assert chromaprint.item_ms(1) == 124


BAD_ENCODINGS = [
    (b"", "Chromaprint segment is truncated: 0 bytes, expected a 32-byte header"),
    (GOOD[:31], "Chromaprint segment is truncated: 31 bytes, expected a 32-byte header"),
    (b"VPDQ" + GOOD[4:], "not a Chromaprint segment: bad magic"),
    (_patch(GOOD, 4, b"\x02"), "Chromaprint segment version 2: expected 1"),
    (_patch(GOOD, 29, b"\x02"), "unknown Chromaprint segment flags 0x02"),
    (_patch(GOOD, 30, b"\x00\x00"), "Chromaprint segment has 0 sub-fingerprints: expected 1..2048"),
    (
        _patch(GOOD, 30, b"\x08\x01"),
        "Chromaprint segment has 2049 sub-fingerprints: expected 1..2048",
    ),
    (
        GOOD[:-1],
        "Chromaprint segment is truncated: 3 sub-fingerprints declared, 2 present "
        "and 3 bytes of a truncated sub-fingerprint",
    ),
    (GOOD[:-4], "Chromaprint segment is truncated: 3 sub-fingerprints declared, 2 present"),
    (GOOD + b"\x00", "Chromaprint segment has 1 trailing bytes after 3 sub-fingerprints"),
    (
        _patch(GOOD, 25, struct.pack(">I", 2**32 - 2)),
        "Chromaprint segment ends at item 4294967296: expected at most 4294967295",
    ),
]


@pytest.mark.parametrize(("data", "message"), BAD_ENCODINGS)
def test_bad_encodings_are_refused_with_an_exact_error(data: bytes, message: str) -> None:
    with pytest.raises(ValidationError) as err:
        ChromaprintSegment.decode(data)
    assert str(err.value) == message


BAD_VALUES = [
    (dict(video_id=bytes(15)), "Chromaprint video id has 15 bytes: expected 16"),
    (dict(values=()), "Chromaprint segment has 0 sub-fingerprints: expected 1..2048"),
    (dict(values=(1,) * 2049), "Chromaprint segment has 2049 sub-fingerprints: expected 1..2048"),
    (dict(index=-1), "Chromaprint segment index -1: expected 0..4294967295"),
    (dict(index=2**32), "Chromaprint segment index 4294967296: expected 0..4294967295"),
    (dict(start_item=-1), "Chromaprint segment start item -1: expected 0..4294967295"),
    (
        dict(values=(1, 2**32)),
        "Chromaprint sub-fingerprint 1 is 4294967296: expected an integer 0..4294967295",
    ),
    (
        dict(values=(-1,)),
        "Chromaprint sub-fingerprint 0 is -1: expected an integer 0..4294967295",
    ),
    (
        dict(values=(1, 2.0)),
        "Chromaprint sub-fingerprint 1 is 2.0: expected an integer 0..4294967295",
    ),
]


@pytest.mark.parametrize(("fields", "message"), BAD_VALUES)
def test_bad_segment_values_are_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError) as err:
        segment(**fields)
    assert str(err.value) == message


def test_a_full_segment_is_at_the_cap_and_fits_an_entry() -> None:
    seg = segment(values=tuple(range(chromaprint.MAX_ITEMS)))
    data = seg.encode()
    assert len(data) == chromaprint.MAX_ENCODED == 8_224
    entry = Origin("gov.example").next(algorithm="CHROMAPRINT", hash=data)
    assert len(entry.body_bytes) <= MAX_CHROMAPRINT_BODY_BYTES
    assert EntryBody.decode(entry.body_bytes).hash == data


def test_an_entry_validates_its_chromaprint_field_like_any_other() -> None:
    bad = GOOD + b"\x00"
    with pytest.raises(ValidationError) as err:
        Origin("gov.example").next(algorithm="CHROMAPRINT", hash=bad)
    assert str(err.value) == "Chromaprint segment has 1 trailing bytes after 3 sub-fingerprints"
    # and a received body with that field is refused as it is decoded
    body = Origin("gov.example").next(algorithm="CHROMAPRINT", hash=GOOD).body_bytes
    tampered = body.replace(GOOD, _patch(GOOD, 0, b"XHRP"))
    with pytest.raises(ValidationError) as err:
        EntryBody.decode(tampered)
    assert str(err.value) == "not a Chromaprint segment: bad magic"
    with pytest.raises(ValidationError) as err:
        Origin("gov.example").next(algorithm="CHROMAPRINT", hash=b"\x01" * 9_000)
    assert str(err.value) == "CHROMAPRINT hash has 9000 bytes: expected 36..8224 bytes"


def test_a_two_hour_track_splits_into_minute_segments_that_share_its_id() -> None:
    n = round(2 * 3600 / chromaprint.ITEM_SECONDS)  # 58,154 sub-fingerprints
    values = [(i * 2654435761) & 0xFFFFFFFF for i in range(n)]
    segs = chromaprint.split(values, VID)
    assert len(segs) == 120
    assert [s.index for s in segs] == list(range(120))
    assert [s.final for s in segs] == [False] * 119 + [True]
    assert {s.video_id for s in segs} == {VID}
    assert [s.start_item for s in segs] == [485 * k for k in range(120)]
    assert [v for s in segs for v in s.values] == values
    entries = [Origin("gov.example").next(algorithm="CHROMAPRINT", hash=s.encode()) for s in segs]
    assert max(len(e.to_bytes()) for e in entries) < 2_500
    assert [ChromaprintSegment.decode(e.body.hash) for e in entries] == segs


def test_split_refuses_nothing_to_bank_and_bad_sizes() -> None:
    with pytest.raises(ValidationError) as err:
        chromaprint.split((), VID)
    assert str(err.value) == "a track with no sub-fingerprints cannot be banked"
    with pytest.raises(ValidationError) as err:
        chromaprint.split((1,), VID, max_items=2049)
    assert str(err.value) == "max_items 2049: expected 1..2048"
    assert [len(s.values) for s in chromaprint.split(range(5), VID, max_items=2)] == [2, 2, 1]
