"""The audio index against brute force: on sampled queries (a stretch cut
from a banked track, with bit errors), the index's answer is what
``align`` finds by trying every offset of every banked track."""

from __future__ import annotations

import numpy as np
from hypothesis import event, given, settings
from hypothesis import strategies as st

from node.match.audio import align
from node.match.audio_index import AudioIndex, AudioSearch, AudioThresholds, anchors

TH = AudioThresholds()
SEARCH = AudioSearch()


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_search_equals_brute_force_alignment(data: st.DataObject) -> None:
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    rng = np.random.default_rng(seed)
    lengths = data.draw(st.lists(st.integers(60, 400), min_size=1, max_size=8), label="lengths")
    tracks = [rng.integers(0, 2**32, size=n, dtype=np.uint32) for n in lengths]
    index = AudioIndex()
    for k, values in enumerate(tracks):
        index.add(k, 0, values)
    which = data.draw(st.integers(0, len(tracks) - 1), label="track")
    src = tracks[which]
    length = data.draw(st.integers(TH.min_items, len(src)), label="length")
    start = data.draw(st.integers(0, len(src) - length), label="start")
    flips = data.draw(
        st.lists(st.integers(0, 6), min_size=length, max_size=length), label="bit errors"
    )
    query = src[start : start + length].copy()
    for i, n in enumerate(flips):
        for b in rng.choice(32, size=n, replace=False):
            query[i] ^= np.uint32(1 << int(b))

    brute = {}
    for k, values in enumerate(tracks):
        found = align(values, query)
        if found.similarity >= TH.min_similarity and found.overlap >= TH.min_items:
            brute[k] = found
    got = index.search(query)
    assert {m.track for m in got} <= set(brute)  # never a match brute force lacks
    # The index finds a track when at least min_votes of the query's anchors
    # keep their key within one bit and the bits below it within
    # max_residual_errors (the documented recall condition).
    diff = (query ^ src[start : start + length])[anchors(query, SEARCH)]
    low = 32 - SEARCH.key_bits
    key_errors = np.bitwise_count(diff >> np.uint32(low))
    residual_errors = np.bitwise_count(
        (diff >> np.uint32(low - SEARCH.residual_bits)) & ((1 << SEARCH.residual_bits) - 1)
    )
    found = (key_errors <= 1) & (residual_errors <= SEARCH.max_residual_errors)
    event(f"anchors found: {min(int(found.sum()), SEARCH.min_votes)}+")
    if int(found.sum()) >= SEARCH.min_votes:
        assert {m.track for m in got} == set(brute) == {which}
        (m,) = got
        b = brute[which]
        assert (m.offset, m.similarity, m.bit_errors, m.items) == (
            b.offset,  # align(banked, query): query[i] lies over banked[i + offset]
            b.similarity,
            b.bit_errors,
            b.overlap,
        )
        assert m.banked_items == (start, start + length)
        assert m.query_items == (0, length)
