"""The audio index: partial copies, thresholds, silence and near-constant
audio, missing segments, and its parameters' exact errors."""

from __future__ import annotations

import numpy as np
import pytest

from node.core.chromaprint import ChromaprintSegment, split
from node.errors import ValidationError
from node.match.audio_index import (
    AudioIndex,
    AudioSearch,
    AudioThresholds,
    aligned_stretch,
    anchors,
)

RNG = np.random.default_rng(17)


def track(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2**32, size=n, dtype=np.uint32)


def noisy(values: np.ndarray, bits: int, seed: int = 0, within: int = 32) -> np.ndarray:
    """``bits`` distinct bits flipped in every item, among its ``within`` low bits."""
    rng = np.random.default_rng(seed)
    out = values.copy()
    for i in range(len(out)):
        for b in rng.choice(within, size=bits, replace=False):
            out[i] ^= np.uint32(1 << int(b))
    return out


def test_a_copied_passage_inside_unrelated_audio_is_found_with_its_ranges() -> None:
    banked = track(1450, 1)  # a 3-minute track
    index = AudioIndex()
    index.add("t", 0, banked)
    index.add("other", 0, track(1450, 2))
    passage = noisy(banked[600:700], 3)  # 12.4 s of it, 3 bit errors an item
    query = np.concatenate([track(300, 3), passage, track(200, 4)])
    (m,) = index.search(query)
    assert m.track == "t" and m.is_match
    assert m.offset == 300  # banked item = query item + 300
    assert m.query_items == (300, 400) and m.banked_items == (600, 700)
    assert m.similarity == 1 - 3 / 32 and m.bit_errors == 300
    assert m.query_range_ms == (37_143, 49_524) and m.banked_range_ms == (74_286, 86_667)
    assert round(m.aligned_s, 2) == 12.38


@pytest.mark.parametrize("key_bits", [8, 20, 24, 26])
@pytest.mark.parametrize("tracks", [4, 70])  # 70 (140k postings): 8 and 20 bits use the key table
def test_a_copy_is_found_at_every_key_width(key_bits: int, tracks: int) -> None:
    index = AudioIndex(AudioSearch(key_bits=key_bits, max_postings=1 << 20))
    for k in range(tracks):
        index.add(k, 0, track(2000, 200 + k))
    banked = track(2000, 201)
    query = noisy(banked[300:500], 1, seed=3)
    # one bit error an item: every anchor (1 of 2 items) votes at the right offset
    assert [(m.track, m.offset, m.items, m.votes) for m in index.search(query)] == [
        (1, 300, 200, 100)
    ]


def test_a_whole_copy_is_reported_whole_not_at_its_repeated_chorus() -> None:
    a, chorus, b = track(400, 30), track(100, 31), track(400, 32)
    banked = np.concatenate([a, chorus, b, chorus])  # the chorus comes back at 900
    index = AudioIndex()
    index.add("t", 0, banked)
    query = noisy(banked, 2, seed=4)
    query[900:] = banked[900:]  # the second chorus copied without errors
    (m,) = index.search(query)
    # offset -500 (the query's second chorus over the first) scores 1.0 over
    # 100 items; the whole track at offset 0 scores 0.9438 over 1000: more evidence
    assert (m.offset, m.items, m.bit_errors) == (0, 1000, 1800)
    assert m.similarity == 1 - 1800 / 32000


def test_the_defaults_need_0_8_similarity_over_7_seconds() -> None:
    banked = track(400, 5)
    # Scoring, not lookup, is tested here: items with 6 or 7 errors each are
    # found by 20-bit keys with no residual filter (the defaults' 24-bit keys
    # and 2-error filter on the 8 bits below need items with <= 3 errors).
    index = AudioIndex(AudioSearch(key_bits=20, max_residual_errors=12))
    index.add("t", 0, banked)
    assert AudioThresholds().min_items == 57  # 57 x 0.1238 s = 7.06 s
    # 57 items agree (7.06 s): a match; 56 items (6.93 s): not
    assert [m.items for m in index.search(banked[100:157])] == [57]
    assert index.search(banked[100:156]) == []
    (short,) = index.search(banked[100:156], matches_only=False)
    assert (short.items, short.similarity, short.is_match) == (56, 1.0, False)
    # 6 errors an item is 0.8125; 7 is 0.78125: below 0.8 (errors in the low
    # 12 bits, so that the search's 20-bit keys survive)
    assert [m.similarity for m in index.search(noisy(banked[:200], 6, within=12))] == [0.8125]
    seven = noisy(banked[:200], 7, seed=1, within=12)
    (low,) = index.search(seven, matches_only=False)
    assert (low.similarity, low.is_match) == (1 - 7 / 32, False)
    # per-request thresholds
    loose = AudioThresholds(min_similarity=0.75, min_aligned_s=5.0)
    assert [m.items for m in index.search(banked[:50], loose)] == [50]
    assert index.search(seven, loose)[0].is_match


@pytest.mark.parametrize(
    "name",
    ["silence", "a constant tone", "two alternating values", "a slow drone"],
)
def test_silence_and_near_constant_audio_never_match(name: str) -> None:
    n = 400
    values = {
        "silence": np.zeros(n, dtype=np.uint32),
        "a constant tone": np.full(n, 0x9A3C5F21, dtype=np.uint32),
        "two alternating values": np.tile(np.array([0x12345678, 0x9ABCDEF0], np.uint32), n // 2),
        # 8 distinct values, each held 50 items (6 s)
        "a slow drone": np.repeat(track(8, 6), n // 8),
    }[name]
    index = AudioIndex()
    index.add("same", 0, values)  # banked identical to the query
    index.add("music", 0, track(n, 7))
    assert index.search(values) == []
    assert all(not m.is_match for m in index.search(values, matches_only=False))


def test_a_near_constant_stretch_is_refused_even_when_the_search_finds_it() -> None:
    # a drone of 20 distinct values over 400 items: 0.05 distinct an item
    drone = np.repeat(track(20, 8), 20)
    index = AudioIndex()
    index.add("d", 0, drone)
    (m,) = index.search(drone, matches_only=False)
    assert (m.similarity, m.items, m.is_match) == (1.0, 400, False)
    assert index.search(drone, AudioThresholds(min_distinct=0.05))[0].is_match


def test_segments_place_items_on_the_track_and_a_missing_one_is_a_gap() -> None:
    banked = track(485 * 3, 9)
    vid = bytes(16)
    first, middle, last = split(banked.tolist(), vid)
    index = AudioIndex()
    index.add_segment(("gov.example", vid), first)
    index.add_segment(("gov.example", vid), last)
    index.add_segment(("gov.example", vid), last)  # again: ignored
    assert index.items == 485 * 2
    # a query over the end of the first and the (missing) middle segment
    (m,) = index.search(banked[400:600])
    assert m.track == ("gov.example", vid)
    assert m.banked_items == (400, 485)  # the stretch stops at the gap
    # a query inside the last segment only
    (m,) = index.search(banked[1000:1100])
    assert (m.offset, m.banked_items) == (1000, (1000, 1100))
    index.add_segment(("gov.example", vid), middle)
    (m,) = index.search(banked[400:600])
    assert m.banked_items == (400, 600)


def test_segment_values_go_in_as_decoded() -> None:
    seg = ChromaprintSegment(bytes(16), 0, 7, True, tuple(track(80, 10).tolist()))
    index = AudioIndex()
    index.add_segment("x", ChromaprintSegment.decode(seg.encode()))
    (m,) = index.search(np.array(seg.values, dtype=np.uint32))
    assert (m.offset, m.banked_items) == (7, (7, 87))


def test_an_empty_index_or_query_finds_nothing() -> None:
    assert AudioIndex().search(track(100, 11)) == []
    index = AudioIndex()
    index.add("t", 0, track(100, 11))
    assert index.search([]) == []


def test_aligned_stretch_is_the_best_run() -> None:
    e = np.array([16, 2, 3, 16, 1, 0, 20, 30, 2], dtype=np.int64)
    # gains (10 - e): -6 8 7 -6 9 10 -10 -20 8 -> best run items 1..5
    assert aligned_stretch(e, 10) == (1, 6)
    assert aligned_stretch(np.array([12, 15], dtype=np.int64), 10) == (0, 0)
    assert aligned_stretch(np.zeros(0, dtype=np.int64), 10) == (0, 0)
    assert aligned_stretch(np.array([3, 3, 3], dtype=np.int64), 10) == (0, 3)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: AudioThresholds(min_similarity=0.5),
            "audio min_similarity must be in (0.5, 1]: got 0.5",
        ),
        (
            lambda: AudioThresholds(min_aligned_s=0),
            "audio min_aligned_s must be in (0, 3600]: got 0",
        ),
        (
            lambda: AudioThresholds(min_distinct=1.5),
            "audio min_distinct must be in [0, 1]: got 1.5",
        ),
        (lambda: AudioThresholds(stretch_bits=0), "audio stretch_bits must be 1..16: got 0"),
        (lambda: AudioSearch(key_bits=27), "audio key_bits must be 8..26: got 27"),
        (lambda: AudioSearch(anchor_stride=0), "audio anchor_stride must be >= 1: got 0"),
        (
            lambda: AudioSearch(max_residual_errors=17),
            "audio max_residual_errors must be 0..16: got 17",
        ),
        (lambda: AudioSearch(min_votes=0), "audio min_votes must be >= 1: got 0"),
        (lambda: AudioIndex().add("t", -1, [1]), "start_item must be >= 0: got -1"),
        (
            lambda: AudioIndex().add("t", 0, [2**32]),
            "sub-fingerprints must be integers in 0..2**32-1",
        ),
    ],
)
def test_bad_parameters_get_exact_errors(make: object, message: str) -> None:
    with pytest.raises(ValidationError) as err:
        make()  # type: ignore[operator]
    assert str(err.value) == message


def test_retract_unretract_and_void_by_entry_id() -> None:
    banked = track(300, 12)
    index = AudioIndex()
    index.add("t", 0, banked[:150], b"e1")
    index.add("t", 150, banked[150:], b"e2")
    assert index.segments_of("t", (100, 200)) == [(b"e1", False), (b"e2", False)]
    assert index.retract(b"e2") and not index.retract(b"unknown")
    assert index.items == 150
    assert [m.banked_items for m in index.search(banked)] == [(0, 150)]
    assert [m.banked_items for m in index.search(banked, include_retracted=True)] == [(0, 300)]
    assert index.segments_of("t", (100, 200)) == [(b"e1", False), (b"e2", True)]
    index.unretract(b"e2")
    assert [m.banked_items for m in index.search(banked)] == [(0, 300)]
    index.void(b"e1")
    assert [m.banked_items for m in index.search(banked)] == [(150, 300)]
    assert index.segments_of("t", (0, 300)) == [(b"e2", False)]
    index.add("t", 0, banked[:150], b"e1")  # held again after the void
    assert [m.banked_items for m in index.search(banked)] == [(0, 300)]


def test_anchors_are_the_steadiest_item_of_each_block() -> None:
    # keys (top 24 bits) 0, 0b1, 0b111, 0b111, 0b1111111: run starts 0, 1, 2, 4
    values = np.array([0, 1, 7, 7, 127], dtype=np.uint32) << np.uint32(8)
    assert anchors(values, AudioSearch(anchor_stride=1)).tolist() == [0, 1, 2, 4]
    # key distance to the neighbouring run starts: 1+1, 1+2, 2+4, 4+4
    assert anchors(values, AudioSearch(anchor_stride=2)).tolist() == [0, 2]
    assert anchors(values, AudioSearch(anchor_stride=3)).tolist() == [0, 4]
    assert anchors(values[:1], AudioSearch(anchor_stride=2)).tolist() == [0]
    assert anchors(values[:0], AudioSearch(anchor_stride=2)).tolist() == []


def test_tracks_added_between_searches_answer_as_one_built_at_once() -> None:
    # 12-bit keys: the main run uses its key table from 512 postings on
    search = AudioSearch(key_bits=12, max_postings=1 << 20)
    tracks = [track(300, 100 + k) for k in range(250)]  # 75,000 postings
    queries = [noisy(t[50:200], 1, seed=k) for k, t in enumerate(tracks[:12])]
    at_once = AudioIndex(search)
    for k, t in enumerate(tracks):
        at_once.add(k, 0, t)
    grown = AudioIndex(search)
    sizes = []
    for batch in (range(4), range(4, 6), range(6, 249), range(249, 250)):
        for k in batch:
            grown.add(k, 0, tracks[k])
        grown.search(queries[0])
        sizes.append((len(grown._main), len(grown._delta), grown._main.table is not None))
    # the main run, a small run beside it, a merge (over 2**16 postings), a small run
    assert sizes == [(1200, 0, True), (1200, 600, True), (74_700, 0, True), (74_700, 300, True)]
    for q in queries:
        assert grown.search(q, matches_only=False) == at_once.search(q, matches_only=False)
    assert [m.track for q in queries for m in grown.search(q)] == list(range(12))


def test_a_track_past_the_last_position_is_refused() -> None:
    with pytest.raises(ValidationError) as err:
        AudioIndex().add("t", 2**31 - 2, [1, 2, 3])
    assert str(err.value) == "a track holds items 0..2147483647: got 2147483648"
