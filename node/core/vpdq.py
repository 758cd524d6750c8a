"""vPDQ values shared by hashing and matching.

This file holds :class:`VideoFrame`, one hashed video frame; the segment
encoding of VPDQ entries (``VpdqSegment``) joins it here.
"""

from __future__ import annotations

from dataclasses import dataclass

from node.errors import ValidationError

PDQ_BYTES = 32
MAX_QUALITY = 100
_U32_MAX = 2**32 - 1


@dataclass(frozen=True, slots=True)
class VideoFrame:
    """One hashed frame: PDQ, its quality, and its time from the video's start."""

    pdq: bytes
    quality: int
    ts_ms: int

    def __post_init__(self) -> None:
        if not isinstance(self.pdq, bytes) or len(self.pdq) != PDQ_BYTES:
            got = len(self.pdq) if isinstance(self.pdq, bytes | bytearray) else self.pdq
            raise ValidationError(f"frame PDQ has {got} bytes: expected {PDQ_BYTES}")
        if not 0 <= self.quality <= MAX_QUALITY:
            raise ValidationError(f"frame quality {self.quality}: expected 0..{MAX_QUALITY}")
        if not 0 <= self.ts_ms <= _U32_MAX:
            raise ValidationError(f"frame timestamp {self.ts_ms} ms: expected 0..{_U32_MAX}")
