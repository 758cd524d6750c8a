"""Scoring a video query against banked videos (docs/video.md)."""

from __future__ import annotations

from dataclasses import dataclass

from node.errors import ValidationError

VARIANT_ORIGINAL = 0
VARIANT_MIRRORED = 1
VARIANT_TRIMMED = 2
VARIANT_TRIMMED_MIRRORED = 3
VARIANT_NAMES = ("original", "mirrored", "trimmed", "trimmed+mirrored")


@dataclass(frozen=True, slots=True)
class QueryFrame:
    """One hashed frame of an upload, as one of its variants."""

    pdq: bytes
    quality: int
    ts_ms: int
    variant: int

    def __post_init__(self) -> None:
        if len(self.pdq) != 32:
            raise ValidationError(f"frame PDQ has {len(self.pdq)} bytes: expected 32")
        if not 0 <= self.quality <= 100:
            raise ValidationError(f"frame quality {self.quality}: expected 0..100")
        if self.ts_ms < 0:
            raise ValidationError(f"frame timestamp {self.ts_ms} ms: expected >= 0")
        if self.variant not in (0, 1, 2, 3):
            raise ValidationError(f"frame variant {self.variant}: expected 0..3")
