"""The hash algorithm registry and strict validation of hash values.

In ``core`` a hash value is ``bytes``; hex appears only at the edges
(CLI, JSON), where :func:`parse_hex` turns it into bytes.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from node.core import vpdq
from node.errors import ValidationError


class Matching(enum.Enum):
    EXACT = "exact"  # cryptographic: equal bytes or nothing
    HAMMING = "hamming"  # perceptual: near matches by Hamming distance
    OPAQUE = "opaque"  # stored and relayed; matched exactly until a matcher exists
    FRAMES = "frames"  # a vPDQ segment: its frames go to the frame index (node/core/vpdq.py)


@dataclass(frozen=True, slots=True)
class Algorithm:
    name: str
    min_len: int
    max_len: int
    matching: Matching
    pytx_name: str  # python-threatexchange signal type name
    description: str
    validate: Callable[[bytes], bytes] | None = None  # structure check beyond the length

    @property
    def long_values(self) -> bool:
        """Values too long for a hex form or an LMDB key (indexed by digest)."""
        return self.matching in (Matching.OPAQUE, Matching.FRAMES)

    def check(self, value: bytes) -> bytes:
        if not value:
            raise ValidationError(f"{self.name} hash is empty: expected {self.expected()}")
        if not self.min_len <= len(value) <= self.max_len:
            raise ValidationError(
                f"{self.name} hash has {len(value)} bytes: expected {self.expected()}"
            )
        if self.validate is not None:
            self.validate(value)
        return value

    def expected(self) -> str:
        if self.min_len == self.max_len:
            return f"{self.min_len} bytes ({2 * self.min_len} hex digits)"
        return f"{self.min_len}..{self.max_len} bytes"


_OPAQUE_VIDEO_CAP = 256 * 1024  # TMK+PDQF features are large but bounded

ALGORITHMS: dict[str, Algorithm] = {
    a.name: a
    for a in (
        Algorithm("PDQ", 32, 32, Matching.HAMMING, "pdq", "256-bit perceptual image hash"),
        Algorithm("MD5", 16, 16, Matching.EXACT, "md5", "MD5 of the file bytes"),
        Algorithm("SHA256", 32, 32, Matching.EXACT, "sha256", "SHA-256 of the file bytes"),
        Algorithm("VIDEO_MD5", 16, 16, Matching.EXACT, "video_md5", "MD5 of a video file"),
        # TMK+PDQF stays opaque: stored, relayed and matched exactly (nothing here
        # computes or compares it); vPDQ is validated and matched frame by frame.
        Algorithm(
            "TMK_PDQF", 1, _OPAQUE_VIDEO_CAP, Matching.OPAQUE, "tmk", "TMK+PDQF video features"
        ),
        Algorithm(
            "VPDQ",
            vpdq.HEADER_BYTES + vpdq.FRAME_BYTES,
            vpdq.MAX_ENCODED,
            Matching.FRAMES,
            "vpdq",
            "vPDQ frame hashes: one segment of a video",
            vpdq.check_segment,
        ),
    )
}


def algorithm(name: str) -> Algorithm:
    """Look up an algorithm by its canonical (upper-case) name."""
    try:
        return ALGORITHMS[name]
    except KeyError:
        raise ValidationError(
            f"unknown hash algorithm {name!r}: expected one of {', '.join(ALGORITHMS)}"
        ) from None


def normalize_name(name: str) -> str:
    """Accept ``pdq``, ``sha-256``, ``video_md5`` ... at the edges."""
    key = name.strip().upper().replace("-", "").replace("+", "_")
    aliases = {"SHA256": "SHA256", "TMKPDQF": "TMK_PDQF", "TMK": "TMK_PDQF"}
    key = aliases.get(key, key)
    algorithm(key)
    return key


def _trivial() -> dict[tuple[str, bytes], str]:
    out: dict[tuple[str, bytes], str] = {}
    for name, fn in (("MD5", hashlib.md5), ("VIDEO_MD5", hashlib.md5), ("SHA256", hashlib.sha256)):
        size = fn().digest_size
        out[(name, fn(b"").digest())] = "the digest of an empty file"
        out[(name, bytes(size))] = "all zeros, not the digest of any known file"
        out[(name, b"\xff" * size)] = "all ones, not the digest of any known file"
    return out


#: Digests no list should carry: an empty file (an upload that failed, a
#: placeholder) would match every other empty upload; all-zero and all-one
#: values are placeholders, not digests. PDQ has its own gates (quality and
#: degenerate hashes, node/media/image.py).
TRIVIAL_DIGESTS = _trivial()


def check_not_trivial(name: str, value: bytes) -> None:
    what = TRIVIAL_DIGESTS.get((name, value))
    if what is not None:
        raise ValidationError(
            f"{name} {value.hex()} is {what}: it would match unrelated content, so it is refused"
        )


def check_hash(name: str, value: bytes) -> bytes:
    return algorithm(name).check(value)


def parse_hex(name: str, text: str) -> bytes:
    """Parse a hash given as lowercase or uppercase hex at an edge."""
    alg = algorithm(name)
    text = text.strip()
    if not text:
        raise ValidationError(f"{name} hash is empty: expected {alg.expected()}")
    if len(text) % 2:
        raise ValidationError(
            f"{name} hash has {len(text)} hex digits (odd): expected {alg.expected()}"
        )
    try:
        value = bytes.fromhex(text)
    except ValueError:
        raise ValidationError(
            f"{name} hash is not hex: expected {alg.expected()}, got {text[:16]!r}"
        ) from None
    return alg.check(value)
