"""Alignment of audio fingerprints: a fingerprint against itself shifted is
found at the shift, with similarity 1; flipped bits cost exactly their share."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from node.match.audio import align

# Distinct values: a fingerprint with repeats could also agree with itself at
# another offset, and then "the right offset" is not unique.
fingerprints = st.lists(
    st.integers(min_value=0, max_value=2**32 - 1), min_size=2, max_size=300, unique=True
)


@given(fingerprints, st.data())
def test_a_shifted_copy_is_found_at_its_shift(fp: list[int], data: st.DataObject) -> None:
    shift = data.draw(st.integers(min_value=0, max_value=len(fp) - 1), label="shift")
    length = data.draw(st.integers(min_value=1, max_value=len(fp) - shift), label="length")
    part = fp[shift : shift + length]
    found = align(fp, part)
    assert (found.offset, found.similarity, found.overlap) == (shift, 1.0, length)
    # and the other way round: the longer one lies at minus the shift
    back = align(part, fp)
    assert (back.offset, back.similarity) == (-shift, 1.0)


@given(fingerprints, st.data())
def test_flipped_bits_lower_similarity_by_their_share(fp: list[int], data: st.DataObject) -> None:
    arr = np.array(fp, dtype=np.uint32)
    flips = data.draw(st.integers(min_value=0, max_value=len(fp)), label="flips")
    noisy = arr.copy()
    noisy[:flips] ^= np.uint32(1)  # one bit in each of the first `flips` items
    found = align(arr, noisy, max_offset=0)
    assert found.bit_errors == flips
    assert found.similarity == 1.0 - flips / (32 * len(fp))


def test_a_real_fingerprint_is_found_at_its_shift() -> None:
    """The same on sub-fingerprints of real audio (repetitive, unlike random
    values): a 5-s stretch cut from 20 s of a melody."""
    from node.media.audio import fingerprint_pcm
    from tests.audio_files import melody

    pcm = (melody(20, rate=11025)[0] * 32767).astype(np.int16)
    fp = fingerprint_pcm(pcm)
    for shift in (0, 1, 17, 60, len(fp) - 41):
        found = align(fp, fp[shift : shift + 40])
        assert (found.offset, found.similarity) == (shift, 1.0)


_MELODY: list[tuple[np.ndarray, np.ndarray]] = []


def _melody() -> tuple[np.ndarray, np.ndarray]:
    """20 s of a melody at 11025 Hz, 16-bit, and its fingerprint (made once)."""
    if not _MELODY:
        from node.media.audio import fingerprint_pcm
        from tests.audio_files import melody

        pcm = (melody(20, rate=11025, seed=7)[0] * 32767).astype(np.int16)
        _MELODY.append((pcm, fingerprint_pcm(pcm)))
    return _MELODY[0]


@settings(max_examples=20)
@given(st.integers(min_value=0, max_value=80), st.integers(min_value=0, max_value=1364))
def test_audio_cut_anywhere_is_found_where_it_was_cut(frames: int, extra: int) -> None:
    """Cutting the first ``frames * 1365 + extra`` samples off the audio:
    on a frame boundary (extra = 0) the fingerprint is exactly the tail of
    the whole one; between boundaries it aligns at the nearest frame,
    with a similarity that falls from 1 towards about 0.93 half a frame
    (62 ms) away."""
    from node.media.audio import FRAME_STEP, fingerprint_pcm

    pcm, whole = _melody()
    cut = fingerprint_pcm(pcm[frames * FRAME_STEP + extra :])
    if extra == 0:
        assert np.array_equal(cut, whole[frames:])
    found = align(whole, cut)
    # the nearest frame; either one near the middle (682 samples), where
    # both agree about as well (0.93 on this melody)
    if extra < 600:
        assert found.offset == frames, found
    elif extra > 765:
        assert found.offset == frames + 1, found
    else:
        assert found.offset in (frames, frames + 1), found
    if extra == 0:
        assert found.similarity == 1.0
    else:
        assert found.similarity >= 0.85, found
