"""Recall on the shared vectors: every edited copy of ``a`` matches it, ``unrelated-b`` does not.

``a.mp4`` is banked the way ``submit --file`` banks (:func:`bank_frames`);
each file is queried the way ``match VIDEO`` queries (:func:`query_frames`),
compared with every banked frame (:func:`brute_force_hits`, which the frame
index must equal) and scored with the default thresholds. The figures printed
here are the recall table in docs/benchmarks.md.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from node.match.video import VideoThresholds, brute_force_hits, score_video
from node.media.video import VideoHashes, bank_frames, query_frames

VECTORS = Path(__file__).resolve().parents[2].parent / "shared" / "vectors" / "vpdq"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not VECTORS.is_dir(),
        reason=f"vPDQ vectors not found at {VECTORS} (clone outside the workspace)",
    ),
]

# copy -> (variant expected to match, offset of the copy in a, ms)
COPIES = {
    "a.mp4": ("original", 0),
    "a-reencoded-crf38.mp4": ("original", 0),
    "a-resized-160x90.mp4": ("original", 0),
    "a-fps30.mp4": ("original", 0),
    "a-grey.mp4": ("original", 0),
    "a-vp9.webm": ("original", 0),
    "a-clip-3.4s-to-9.4s.mp4": ("original", 3400),
    "a-mirrored.mp4": ("mirrored", 0),
    "a-letterboxed.mp4": ("trimmed", 0),
    "a-screen-recorded.mp4": ("trimmed", 0),
}


@pytest.fixture(scope="module")
def bank() -> VideoHashes:
    return bank_frames(VECTORS / "a.mp4")


def test_the_bank_keeps_at_most_five_frames_a_second(bank: VideoHashes) -> None:
    assert len(bank.frames) <= 5 * bank.duration_ms / 1000
    # the reference's 1/s frames are all there, hashed at full size
    assert set(range(0, bank.frames_decoded, 25)) <= set(bank.frame_numbers)


@pytest.mark.parametrize("name", sorted(COPIES))
def test_every_copy_matches(bank: VideoHashes, name: str) -> None:
    variant, offset = COPIES[name]
    _, query = query_frames(VECTORS / name)
    t = VideoThresholds()
    s = score_video(query, bank.frames, brute_force_hits(query, bank.frames, t.max_distance), t)
    print(
        f"{name}: query% {s.query_pct:.1f} banked% {s.banked_pct:.1f} coverage {s.coverage:.2f} "
        f"frames {s.matched_frames} variant {s.variant} offset {s.offset_ms} ms "
        f"upload {s.query_range_ms} ~ banked {s.banked_range_ms}"
    )
    assert s.is_match
    assert s.variant == variant
    assert abs(s.offset_ms - offset) <= 100
    assert s.coverage >= 0.7


def test_unrelated_footage_does_not_match(bank: VideoHashes) -> None:
    _, query = query_frames(VECTORS / "unrelated-b.mp4")
    hits = brute_force_hits(query, bank.frames)
    s = score_video(query, bank.frames, hits)
    print(f"unrelated-b: {len(hits.query_index)} frame pairs within 31, {s}")
    assert not s.is_match
    assert s.matched_frames == 0
