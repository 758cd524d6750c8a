"""False matches of the audio index against a generated negative corpus
(tests/audio_corpus.py: music, speech-like, noise, silence and near
silence, tones), every track written as a WAV by PyAV and fingerprinted by
``fingerprint_file``, banked beside the Chromaprint vectors' `a` and asked
of the bank: no track matches anything but itself, only near-constant
audio fails to match even itself, only silence is refused; every edited
copy of `a` matches `a` only and `unrelated-b` matches nothing. The quick
loop runs 10 tracks; the slow test the full 240 (the benchmark's figures:
scripts/bench/audio_false_matches.py, docs/benchmarks.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from node.errors import ValidationError
from node.match.audio import beyond_chance
from node.match.audio_index import AudioIndex, AudioThresholds
from node.media.audio import fingerprint_file
from tests.audio_corpus import bank, distinct_per_item, fingerprint_corpus, query_all, specs
from tests.audio_files import COPIES, VECTORS

pytestmark = pytest.mark.integration


def _vector(name: str) -> np.ndarray:  # type: ignore[type-arg]
    path = VECTORS / name
    if not path.exists():
        pytest.skip(f"Chromaprint vectors not found at {VECTORS}")
    return fingerprint_file(path).values


def check_corpus(tmp_path: Path, n: int) -> None:
    fps, refused = fingerprint_corpus(tmp_path, n)
    assert len(fps) + len(refused) == n
    # only silence is refused, and only silence and near silence is silent
    assert set(refused.values()) <= {"audio is silence only (no frame above -60 dBFS)"}
    assert all(name.startswith("quiet-") for name in refused)
    held = {**fps, "vector:a": _vector("a.m4a")}
    index = bank(held)
    out = query_all(index, held)
    assert out.false_matches == ()
    assert all(got in ((name,), ()) for name, got in out.matched.items())
    # what matches nothing, not even itself, is near-constant audio (held
    # tones, hum): the distinct-values rule; music, speech and noise match themselves
    for name in out.unmatched:
        assert name.split("-")[0] in ("tone", "quiet"), name
        assert distinct_per_item(held[name]) < AudioThresholds().min_distinct, name
    kinds = {s.name: s.kind for s in specs(n)}
    assert all(out.matched[k] == (k,) for k in fps if kinds[k] in ("music", "speech", "noise"))
    assert out.matched["vector:a"] == ("vector:a",)
    # the vectors against the whole bank
    for name in COPIES:
        assert [m.track for m in index.search(_vector(name))] == ["vector:a"], name
    assert index.search(_vector("unrelated-b.m4a")) == []


def test_a_small_negative_corpus_never_matches_and_a_still_does(tmp_path: Path) -> None:
    check_corpus(tmp_path, 10)


@pytest.mark.slow
def test_240_generated_tracks_give_no_false_match(tmp_path: Path) -> None:
    """Without the beyond-chance rule this fails: unrelated white-noise
    tracks (hiss, static) agree on 80-84% of their bits over 7-10 s."""
    check_corpus(tmp_path, 240)


def test_agreement_beyond_chance() -> None:
    a = np.array([0b1, 0b0], dtype=np.uint32)
    b = np.array([0b1, 0b1], dtype=np.uint32)
    # 63 of 64 bits agree, and chance alone gives as much: bit 0 agrees half
    # the time, the 31 constant bits always
    assert beyond_chance(a, b, 63 / 64) == 0.0
    assert beyond_chance(a, a, 1.0) == 1.0
    assert beyond_chance(b[:1], b[:1], 1.0) == 1.0  # constant: chance is 1
    with pytest.raises(ValidationError) as err:
        beyond_chance(a, b[:1], 1.0)
    assert str(err.value) == "beyond_chance needs two stretches of one length: 2, 1"
    with pytest.raises(ValidationError) as err:
        AudioThresholds(min_beyond_chance=1.5)
    assert str(err.value) == "audio min_beyond_chance must be in [0, 1]: got 1.5"


def test_biased_bits_that_agree_by_chance_do_not_match() -> None:
    """Two unrelated tracks whose top 26 bits are the same constant and whose
    low 6 bits are random agree on 29 of 32 bits by chance: a match by
    similarity alone (0.9), not beyond chance (about 0)."""
    rng = np.random.default_rng(3)
    top = np.uint32(0x2B5A_C3C0)  # low 6 bits clear

    def track() -> np.ndarray:  # type: ignore[type-arg]
        return top | rng.integers(0, 64, size=200).astype(np.uint32)

    index = AudioIndex()
    index.add("x", 0, track())
    query = track()
    (m,) = index.search(query, matches_only=False)
    assert 0.88 < m.similarity < 0.93 and m.items >= 57 and not m.is_match
    loose = AudioThresholds(min_beyond_chance=0)
    assert index.search(query, loose)[0].is_match
