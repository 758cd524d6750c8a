"""node.match.limits (pure): cost, chunks, ranking; and the matcher's
commit-while-searching hand-over."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from node.errors import LimitError, ValidationError
from node.match.limits import Candidate, MatchLimits, chunks, match_cost, rank
from node.match.matcher import PdqMatcher
from node.match.pdq_index import probes
from node.store.lmdb_store import LmdbStore
from tests.helpers import Origin


def test_probes_grow_steeply_with_radius() -> None:
    assert [probes(r) for r in (0, 15, 16, 31, 47, 63)] == [1, 16, 32, 272, 2192, 11152]
    assert match_cost(10, 31) == 2720


def test_cost_check_names_the_limit_and_the_request() -> None:
    limits = MatchLimits(max_probes=1000)
    assert limits.check_cost(3, 31) == 816
    with pytest.raises(LimitError) as info:
        limits.check_cost(4, 31)
    assert str(info.value) == (
        "Match would probe 1,088 index buckets (4 PDQ hashes at distance 31, 272 each): at "
        "most 1,000 per request, i.e. 3 hashes at distance 31 or 3 at 31; send fewer queries "
        "or dihedral hashes, or a smaller max_distance"
    )
    assert isinstance(info.value, ValidationError)


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValidationError, match="match limit hits_per_query must be a positive"):
        MatchLimits(hits_per_query=0)


def test_chunks_are_bounded_and_cover_every_query() -> None:
    sizes = [1, 8, 8, 1, 20, 1, 1]
    parts = list(chunks(sizes, 31, 272 * 10))
    assert [list(p) for p in parts] == [[0, 1], [2, 3], [4], [5, 6]]
    assert list(chunks([], 31, 100)) == []


def _c(
    eid: int, distance: int, origin: str, arrival: int, settled: bool = False, seq: int = 0
) -> Candidate:
    return Candidate(bytes([eid]) * 32, distance, origin, seq, arrival, settled)


def test_rank_orders_by_distance_settled_newest_and_caps_per_origin() -> None:
    found = [
        _c(1, 5, "a", 100),
        _c(2, 0, "b", 10),
        _c(3, 0, "c", 50, settled=True),
        _c(4, 0, "a", 90),
        _c(5, 0, "a", 95),
        _c(6, 0, "a", 99),
        _c(7, 0, "d", 99, seq=2),
        _c(8, 0, "d", 99, seq=3),
    ]
    assert [c.entry_id[0] for c in rank(found, 10, 2)] == [3, 8, 7, 6, 5, 2]
    assert [c.entry_id[0] for c in rank(found, 3, 5)] == [3, 8, 7]
    assert rank(list(reversed(found)), 10, 2) == rank(found, 10, 2)


def test_a_commit_during_a_search_is_applied_when_the_search_lets_go(tmp_path: Path) -> None:
    store = LmdbStore(tmp_path / "db")
    matcher = PdqMatcher(store)
    matcher.build()
    value = bytes(range(32))
    entry = Origin("gov.example/ct").next(algorithm="PDQ", hash=value)
    assert store.ingest([entry], atomic=True, now_ms=0).errors == []
    held, done = threading.Event(), threading.Event()

    def searching() -> None:  # a search holding the index, as the match thread does
        matcher._index_lock.acquire()
        held.set()
        done.wait(10)
        matcher._release()

    t = threading.Thread(target=searching)
    t.start()
    assert held.wait(10)
    matcher.on_commit([entry])  # returns at once: the index is busy
    assert len(matcher) == 0
    done.set()
    t.join(10)
    assert matcher.search([value], 0) == [(entry.entry_id, 0, 0)]
    store.close()
