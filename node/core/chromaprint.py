"""Chromaprint segments: the hash field of a CHROMAPRINT entry.

A soundtrack is banked like a video (node/core/vpdq.py): a sequence of
*segment* entries sharing a ``video_id``, each carrying a contiguous run of
Chromaprint sub-fingerprints (unsigned 32-bit, docs/audio.md) and the
position of its first one in the track. The time base is a constant of the
algorithm: sub-fingerprint ``i`` of a track starts at ``i * 1365`` samples
of its 11025 Hz audio (:data:`ITEM_SECONDS`, 0.1238 s), so positions are
stored as item numbers, exactly, and converted to milliseconds only for
display. A video's soundtrack takes the video's own ``video_id`` (the first
16 bytes of SHA-256 of the file), which links its CHROMAPRINT segments to
its VPDQ segments as one video.

Encoding (all integers big-endian; docs/protocol.md)::

    magic        4 bytes   b"CHRP"
    version      u8        1
    video_id     16 bytes  files: SHA-256(file)[:16]; live streams: random
    index        u32       segment number, from 0
    start_item   u32       the track position of the first sub-fingerprint
    flags        u8        bit 0: final (last segment of the track); others zero
    count        u16       sub-fingerprints, 1..MAX_ITEMS
    count times:
      value      u32       one sub-fingerprint, as ``fpcalc -raw`` prints it

The header is 32 bytes and an item 4, so a full segment is 32 + 4 * 2048 =
8,224 bytes (:data:`MAX_ENCODED`). Files are cut every :data:`SEGMENT_ITEMS`
items (485, 60.04 s, as vPDQ cuts every 60 s): ~1.9 KiB an entry, and a
two-hour soundtrack is 120 segments (~230 KiB).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

from node.core.segments import check_items
from node.errors import ValidationError

__all__ = [
    "FLAG_FINAL",
    "HEADER_BYTES",
    "ITEM_BYTES",
    "ITEM_SAMPLES",
    "ITEM_SECONDS",
    "MAGIC",
    "MAX_ENCODED",
    "MAX_ITEMS",
    "SAMPLE_RATE",
    "SEGMENT_ITEMS",
    "VERSION",
    "ChromaprintSegment",
    "check_segment",
    "item_ms",
    "items_at",
    "split",
]

MAGIC = b"CHRP"
VERSION = 1
VIDEO_ID_BYTES = 16
SAMPLE_RATE = 11025  # Hz: the algorithm's working rate
ITEM_SAMPLES = 1365  # samples between sub-fingerprints (4096 // 3)
ITEM_SECONDS = ITEM_SAMPLES / SAMPLE_RATE  # 0.1238 s, 8.08 items a second
MAX_ITEMS = 2048  # per segment: 4 min 13 s
SEGMENT_ITEMS = 485  # how files are cut: 60.04 s a segment
FLAG_FINAL = 0x01

_HEADER = struct.Struct(">4sB16sIIBH")
HEADER_BYTES = _HEADER.size  # 32
ITEM_BYTES = 4
MAX_ENCODED = HEADER_BYTES + MAX_ITEMS * ITEM_BYTES  # 8224
_U32_MAX = 2**32 - 1


def items_at(ms: int) -> int:
    """The first item position that starts at or after ``ms`` milliseconds."""
    return -(-ms * SAMPLE_RATE // (1000 * ITEM_SAMPLES))


def item_ms(item: int) -> int:
    """The start of sub-fingerprint ``item``, in whole milliseconds (rounded half up)."""
    return (2000 * item * ITEM_SAMPLES + SAMPLE_RATE) // (2 * SAMPLE_RATE)


@dataclass(frozen=True, slots=True)
class ChromaprintSegment:
    """The hash field of one CHROMAPRINT entry: ``values[k]`` is the track's
    sub-fingerprint number ``start_item + k``."""

    video_id: bytes
    index: int
    start_item: int
    final: bool
    values: tuple[int, ...] = field(repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.video_id, bytes) or len(self.video_id) != VIDEO_ID_BYTES:
            raise ValidationError(
                f"Chromaprint video id has {len(self.video_id)} bytes: expected {VIDEO_ID_BYTES}"
            )
        if not 0 <= self.index <= _U32_MAX:
            raise ValidationError(f"Chromaprint segment index {self.index}: expected 0..{_U32_MAX}")
        if not 0 <= self.start_item <= _U32_MAX:
            raise ValidationError(
                f"Chromaprint segment start item {self.start_item}: expected 0..{_U32_MAX}"
            )
        if not 1 <= len(self.values) <= MAX_ITEMS:
            raise ValidationError(
                f"Chromaprint segment has {len(self.values)} sub-fingerprints: "
                f"expected 1..{MAX_ITEMS}"
            )
        if self.start_item + len(self.values) - 1 > _U32_MAX:
            raise ValidationError(
                f"Chromaprint segment ends at item {self.start_item + len(self.values) - 1}: "
                f"expected at most {_U32_MAX}"
            )
        for i, v in enumerate(self.values):
            if type(v) is not int or not 0 <= v <= _U32_MAX:
                raise ValidationError(
                    f"Chromaprint sub-fingerprint {i} is {v!r}: expected an integer 0..{_U32_MAX}"
                )

    @property
    def end_item(self) -> int:
        """One past the last sub-fingerprint's position."""
        return self.start_item + len(self.values)

    @property
    def start_ms(self) -> int:
        return item_ms(self.start_item)

    def encode(self) -> bytes:
        return _HEADER.pack(
            MAGIC,
            VERSION,
            self.video_id,
            self.index,
            self.start_item,
            FLAG_FINAL if self.final else 0,
            len(self.values),
        ) + struct.pack(f">{len(self.values)}I", *self.values)

    @classmethod
    def decode(cls, data: bytes) -> ChromaprintSegment:
        """Strict decode: every field checked, exact length, canonical form."""
        if len(data) < HEADER_BYTES:
            raise ValidationError(
                f"Chromaprint segment is truncated: {len(data)} bytes, "
                f"expected a {HEADER_BYTES}-byte header"
            )
        magic, version, video_id, index, start_item, flags, count = _HEADER.unpack_from(data)
        if magic != MAGIC:
            raise ValidationError("not a Chromaprint segment: bad magic")
        if version != VERSION:
            raise ValidationError(f"Chromaprint segment version {version}: expected {VERSION}")
        if flags & ~FLAG_FINAL:
            raise ValidationError(f"unknown Chromaprint segment flags 0x{flags:02x}")
        check_items(
            "Chromaprint segment",
            "sub-fingerprints",
            "sub-fingerprint",
            count=count,
            cap=MAX_ITEMS,
            body=len(data) - HEADER_BYTES,
            size=ITEM_BYTES,
        )
        values = struct.unpack_from(f">{count}I", data, HEADER_BYTES)
        return cls(video_id, index, start_item, bool(flags), values)


def check_segment(data: bytes) -> bytes:
    """Validate an encoded segment (the hash field of a CHROMAPRINT entry)."""
    ChromaprintSegment.decode(data)
    return data


def split(
    values: Sequence[int], video_id: bytes, *, max_items: int = SEGMENT_ITEMS
) -> list[ChromaprintSegment]:
    """Cut a whole track's sub-fingerprints into consecutive segments of
    ``max_items`` (the last one shorter and ``final``)."""
    if not values:
        raise ValidationError("a track with no sub-fingerprints cannot be banked")
    if not 1 <= max_items <= MAX_ITEMS:
        raise ValidationError(f"max_items {max_items}: expected 1..{MAX_ITEMS}")
    starts = range(0, len(values), max_items)
    return [
        ChromaprintSegment(
            video_id=video_id,
            index=k,
            start_item=start,
            final=k == len(starts) - 1,
            values=tuple(values[start : start + max_items]),
        )
        for k, start in enumerate(starts)
    ]
