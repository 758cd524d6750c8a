"""Chromaprint vectors (../shared/vectors/chromaprint, README there): our
fingerprints against ``fpcalc -raw`` from Chromaprint 1.5.1, and our
comparison against the README's table.

Measured (PyAV 18.1, FFmpeg 8; docs/audio.md): every file's fingerprint is
identical to fpcalc's, all 8 of 8 at similarity 1.0. The test requires 0.98
for each, the brief's floor (a different FFmpeg's decoder or resampler may
round a few samples differently).
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("av", reason="PyAV is not installed (audio fingerprints need it)")

from node.match.audio import align
from node.media.audio import fingerprint_file

VECTORS = Path(__file__).resolve().parents[2].parent / "shared" / "vectors" / "chromaprint"
REFERENCE = VECTORS / "reference"
needs_vectors = pytest.mark.skipif(
    not REFERENCE.is_dir(),
    reason=f"Chromaprint vectors not found at {VECTORS} (a clone outside the workspace)",
)
NAMES = sorted(p.stem for p in REFERENCE.glob("*.txt")) if REFERENCE.is_dir() else []
COPIES = [n for n in NAMES if n.startswith("a-")]


def reference(name: str) -> list[int]:
    text = (REFERENCE / f"{name}.txt").read_text()
    fields = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    return [int(v) for v in fields["FINGERPRINT"].split(",")]


def media(name: str) -> Path:
    (path,) = [p for p in VECTORS.glob(f"{name}.*") if p.is_file()]
    return path


@pytest.fixture(scope="module")
def ours() -> dict[str, tuple[int, ...]]:
    return {name: fingerprint_file(media(name)).values for name in NAMES}


@needs_vectors
def test_the_vectors_are_all_there() -> None:
    assert len(NAMES) == 8 and "a" in NAMES and "unrelated-b" in NAMES and len(COPIES) == 6


@needs_vectors
@pytest.mark.parametrize("name", NAMES)
def test_fingerprint_agrees_with_fpcalc(ours: dict[str, tuple[int, ...]], name: str) -> None:
    ref = reference(name)
    got = ours[name]
    assert abs(len(got) - len(ref)) <= 1
    found = align(ref, got, max_offset=1)
    assert found.offset == 0
    assert found.similarity >= 0.98, found


@needs_vectors
@pytest.mark.parametrize("name", COPIES)
def test_each_copy_scores_like_the_readme_says(ours: dict[str, tuple[int, ...]], name: str) -> None:
    """README: each copy scores 0.87-0.99 against ``a``, with fpcalc's
    fingerprints and ours alike (0.8679 rounds to 0.87)."""
    for fps in (ours, {n: tuple(reference(n)) for n in ("a", name)}):
        got = align(fps["a"], fps[name])
        assert 0.865 <= got.similarity <= 0.995, (name, got)


@needs_vectors
def test_the_clip_is_found_where_it_was_cut(ours: dict[str, tuple[int, ...]]) -> None:
    """The 10-s clip starts 4.3 s in: 4.3 / 0.1238 = 34.7 sub-fingerprints."""
    assert align(ours["a"], ours["a-clip-4.3s-to-14.3s"]).offset == 35


@needs_vectors
def test_unrelated_b_scores_near_0_6(ours: dict[str, tuple[int, ...]]) -> None:
    for a, b in ((ours["a"], ours["unrelated-b"]), (reference("a"), reference("unrelated-b"))):
        assert 0.55 <= align(a, b).similarity <= 0.62


@needs_vectors
def test_the_audio_index_matches_every_copy_and_not_the_unrelated_track(
    ours: dict[str, tuple[int, ...]],
) -> None:
    """Recall and false matches on the vectors, our own fingerprints banked
    and queried through node.match.audio_index at its defaults (0.8 over
    7 s); the similarities are the README's table."""
    from node.match.audio_index import AudioIndex

    index = AudioIndex()
    index.add("a", 0, ours["a"])
    index.add("unrelated-b", 0, ours["unrelated-b"])
    expected = {
        "a-mp3-64k": (0.9895, 0),
        "a-quieter": (0.9877, 0),
        "a-with-noise": (0.9850, 0),
        "a-clip-4.3s-to-14.3s": (0.9544, 35),
        "a-phone-band": (0.8757, 0),
        "a-room-echo": (0.8679, 0),
    }
    for name, (similarity, offset) in expected.items():
        found = index.search(ours[name])
        assert [(m.track, round(m.similarity, 4), m.offset) for m in found] == [
            ("a", similarity, offset)
        ], name
        assert found[0].aligned_s >= 7.0
    clip = index.search(ours["a-clip-4.3s-to-14.3s"])[0]
    assert clip.query_items == (0, len(ours["a-clip-4.3s-to-14.3s"]))
    assert clip.banked_range_ms[0] == 4333  # item 35: 35 x 1365 / 11025 s into a
    # the unrelated track finds itself only; a finds only a
    assert [m.track for m in index.search(ours["unrelated-b"])] == ["unrelated-b"]
    assert [m.track for m in index.search(ours["a"])] == ["a"]
    # and not even a scored candidate of the other: no offset gathers 3 votes
    assert [m.track for m in index.search(ours["unrelated-b"], matches_only=False)] == [
        "unrelated-b"
    ]
