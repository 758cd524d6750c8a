"""Comparing audio fingerprints: 1 - bit error rate at the best alignment.

Pure numpy over sequences of 32-bit sub-fingerprints (as
:mod:`node.media.audio` or ``fpcalc -raw`` gives them); no files, no PyAV.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from node.errors import ValidationError

__all__ = ["DEFAULT_MIN_OVERLAP", "Alignment", "align", "as_array", "beyond_chance"]

# An alignment must compare at least this many sub-fingerprints (about 5 s),
# or all of the shorter fingerprint when it has fewer. Without a floor the
# best alignment of two unrelated tracks is some overlap of a handful of
# items that agree by chance; 40 keeps such noise out (unrelated tracks in
# the vectors score 0.59, as the vectors' README states) while a 10-s clip
# (about 80 items) is still compared whole.
DEFAULT_MIN_OVERLAP = 40


@dataclass(frozen=True, slots=True)
class Alignment:
    """The best alignment of ``b`` against ``a``: ``b[i]`` lies over
    ``a[i + offset]``; ``overlap`` sub-fingerprints were compared and
    ``similarity`` is the fraction of their bits that agree."""

    similarity: float
    offset: int
    overlap: int
    bit_errors: int


def as_array(values: Sequence[int] | npt.NDArray[np.uint32]) -> npt.NDArray[np.uint32]:
    """Sub-fingerprints as a uint32 array; each must fit in 32 bits."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValidationError(f"a fingerprint is a flat sequence: got {arr.ndim} dimensions")
    if arr.size and (arr.dtype.kind not in "ui" or arr.min() < 0 or arr.max() > 0xFFFFFFFF):
        raise ValidationError("sub-fingerprints must be integers in 0..2**32-1")
    return arr.astype(np.uint32)


def align(
    a: Sequence[int] | npt.NDArray[np.uint32],
    b: Sequence[int] | npt.NDArray[np.uint32],
    *,
    min_overlap: int = DEFAULT_MIN_OVERLAP,
    max_offset: int | None = None,
) -> Alignment:
    """The offset where ``b`` agrees best with ``a``.

    Every offset whose overlap has at least ``min(min_overlap, len(a),
    len(b))`` items is scored (only ``|offset| <= max_offset`` when given).
    Ties go to the larger overlap, then the smaller ``|offset|``.
    """
    x, y = as_array(a), as_array(b)
    if not len(x) or not len(y):
        raise ValidationError("cannot align an empty fingerprint")
    if min_overlap < 1:
        raise ValidationError(f"min_overlap must be >= 1: got {min_overlap}")
    need = min(min_overlap, len(x), len(y))
    lo, hi = -(len(y) - need), len(x) - need
    if max_offset is not None:
        lo, hi = max(lo, -max_offset), min(hi, max_offset)
    best: tuple[float, int, int, int] | None = None  # (similarity, overlap, -|offset|, errors)
    found = Alignment(0.0, 0, 0, 0)
    for offset in range(lo, hi + 1):
        ai, bi = max(0, offset), max(0, -offset)
        n = min(len(x) - ai, len(y) - bi)
        errors = int(np.bitwise_count(x[ai : ai + n] ^ y[bi : bi + n]).sum())
        key = (1.0 - errors / (32 * n), n, -abs(offset), errors)
        if best is None or key[:3] > best[:3]:
            best = key
            found = Alignment(key[0], offset, n, errors)
    if best is None:
        raise ValidationError(f"no offset within {max_offset} overlaps {need} sub-fingerprints")
    return found


_BITS = np.arange(32, dtype=np.uint32)


def _ones(values: npt.NDArray[np.uint32]) -> npt.NDArray[np.float64]:
    """The share of items with each of the 32 bits set."""
    ones: npt.NDArray[np.float64] = ((values[:, None] >> _BITS) & 1).mean(axis=0)
    return ones


def beyond_chance(a: npt.NDArray[np.uint32], b: npt.NDArray[np.uint32], similarity: float) -> float:
    """How far ``similarity`` (the share of agreeing bits of ``a`` and ``b``,
    aligned item by item) lies beyond what chance gives two fingerprints
    with these bit frequencies: Cohen's kappa over the 32 bit positions,
    ``(similarity - chance) / (1 - chance)`` where chance is the mean over
    the bits of ``p_a p_b + (1 - p_a)(1 - p_b)``, ``p`` the share of items
    with the bit set. 1 for identical stretches, about 0 for unrelated
    audio whatever its bit bias; 1 when chance is 1 (every bit constant and
    equal on both sides: the distinct-values rule refuses such stretches).

    Why: noise, hiss and sweeps give fingerprints whose bits are far from
    even (white noise has the same average spectrum every time), so two
    unrelated recordings of them agree on about 80% of bits by chance
    alone, while music's bits agree about 55% by chance (docs/audio.md)."""
    if not len(a) or len(a) != len(b):
        raise ValidationError(
            f"beyond_chance needs two stretches of one length: {len(a)}, {len(b)}"
        )
    pa, pb = _ones(a), _ones(b)
    chance = float(np.mean(pa * pb + (1 - pa) * (1 - pb)))
    return 1.0 if chance >= 1.0 else (similarity - chance) / (1.0 - chance)
