"""vPDQ against Meta's reference ``vpdq`` (see ../shared/vectors/README.md).

For every video in ``vpdq/``, at one hash a second and at every frame, our
:func:`reference_vpdq` must sample the same frame numbers with the same
timestamps, and each frame's PDQ must be within 10 bits of the reference's
(hashes from another FFmpeg build may differ by a few bits). The distance
distribution measured here is recorded in docs/video.md; with PyAV 18's
bundled FFmpeg it is 0 bits on all 3,396 frames.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from node.media.video import reference_vpdq

VECTORS = Path(__file__).resolve().parents[2].parent / "shared" / "vectors" / "vpdq"
VIDEOS = sorted(p for p in VECTORS.glob("*.*") if p.is_file()) if VECTORS.is_dir() else []
MAX_BITS = 10


def _hamming(a: bytes, b: bytes) -> int:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).bit_count()


@pytest.mark.skipif(
    not VIDEOS, reason=f"vPDQ vectors not found at {VECTORS} (clone outside the workspace)"
)
@pytest.mark.parametrize(
    ("every", "seconds"),
    [("every-1s", 1.0), pytest.param("every-frame", 0.0, marks=pytest.mark.slow)],
)
@pytest.mark.parametrize("video", VIDEOS, ids=lambda p: p.name)
def test_matches_the_reference(video: Path, every: str, seconds: float) -> None:
    ref = json.loads((VECTORS / "reference" / every / f"{video.stem}.json").read_text())
    got = reference_vpdq(video, seconds_per_hash=seconds)
    assert list(got.frame_numbers) == [r[0] for r in ref]
    assert [f.ts_ms for f in got.frames] == [round(r[3] * 1000) for r in ref]
    distances = [_hamming(f.pdq, bytes.fromhex(r[2])) for f, r in zip(got.frames, ref, strict=True)]
    print(
        f"{video.name} {every}: PDQ distance to the reference {sorted(Counter(distances).items())}"
    )
    assert max(distances) <= MAX_BITS
    # quality is reported beside the hash; the reference's may differ by a rounding
    assert all(abs(f.quality - r[1]) <= 2 for f, r in zip(got.frames, ref, strict=True))
