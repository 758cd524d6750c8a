"""The LMDB store: what is acknowledged survives reopening; batch rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.core.entry import Kind
from node.errors import EquivocationError, OrderingError, ValidationError
from node.store.base import Outcome
from node.store.lmdb_store import LmdbStore
from tests.helpers import Origin


def test_reopen_gives_back_exactly_what_was_acknowledged(tmp_path: Path) -> None:
    a, b = Origin("gov.example/ct"), Origin("platform.example")
    entries = [a.next() for _ in range(20)] + [b.next() for _ in range(7)]
    store = LmdbStore(tmp_path / "db")
    result = store.ingest(entries, atomic=True, now_ms=123)
    assert result.outcomes == (Outcome.ACCEPTED,) * 27
    heads = store.heads()
    store.close()

    again = LmdbStore(tmp_path / "db")
    assert again.heads() == heads
    assert heads["gov.example/ct"].next_seq == 20
    assert [e.to_bytes() for e in again.entries_from("gov.example/ct", 0, 100)] == [
        e.to_bytes() for e in entries[:20]
    ]
    stored = again.get(entries[5].entry_id)
    assert stored is not None and stored.arrival_ms == 123
    assert again.lookup("MD5", entries[5].body.hash) == [entries[5].entry_id]
    assert again.count() == 27
    again.close()


def test_atomic_batch_with_a_bad_entry_stores_nothing(tmp_path: Path) -> None:
    a = Origin("gov.example/ct")
    good = [a.next() for _ in range(3)]
    a.next()  # skipped: makes a gap
    gap = a.next()
    store = LmdbStore(tmp_path / "db")
    result = store.ingest([*good, gap], atomic=True, now_ms=0)
    ((_, error),) = result.errors
    assert isinstance(error, OrderingError)
    assert str(error) == "entry 4 of 4: out of order: gov.example/ct expects seq 3, got 4"
    assert store.heads() == {}
    store.close()


def test_relayed_batch_keeps_good_entries_and_refuses_the_rest_of_a_bad_origin(
    tmp_path: Path,
) -> None:
    a, b = Origin("gov.example/ct"), Origin("platform.example")
    a0, a1 = a.next(), a.next()
    a.next()
    a3 = a.next()  # gap after a1
    a4 = a.next()
    b0, b1 = b.next(), b.next()
    store = LmdbStore(tmp_path / "db")
    result = store.ingest([a0, b0, a1, a3, b1, a4], atomic=False, peer="p", now_ms=0)
    kinds = [o if isinstance(o, Outcome) else type(o) for o in result.outcomes]
    assert kinds == [
        Outcome.ACCEPTED,
        Outcome.ACCEPTED,
        Outcome.ACCEPTED,
        OrderingError,
        Outcome.ACCEPTED,
        OrderingError,
    ]
    assert "follows a refused entry" in str(result.outcomes[5])
    assert store.head("gov.example/ct").next_seq == 2
    assert store.head("platform.example").next_seq == 2
    assert store.peer_cursors("p") == {"gov.example/ct": 2, "platform.example": 2}
    store.close()


def test_fork_at_an_earlier_seq_is_evidence(tmp_path: Path) -> None:
    a = Origin("gov.example/ct")
    a0 = a.next()
    fork = Origin("gov.example/ct")
    fork_a0 = fork.next(reason="another body")
    fork_a1 = fork.next()  # chains onto the other seq 0
    store = LmdbStore(tmp_path / "db")
    store.ingest([a0], atomic=True, now_ms=0)
    result = store.ingest([fork_a1], atomic=False, now_ms=0)
    assert isinstance(result.outcomes[0], EquivocationError)
    assert "extends a different seq 0" in str(result.outcomes[0])
    result = store.ingest([fork_a0], atomic=False, now_ms=0)
    assert isinstance(result.outcomes[0], EquivocationError)
    assert len(store.evidence()) == 2
    assert store.get(a0.entry_id) is not None  # never overwritten
    assert store.get(fork_a0.entry_id) is None
    store.close()


def test_retract_marks_the_target(tmp_path: Path) -> None:
    a = Origin("gov.example/ct")
    add = a.next()
    retract = a.next(kind=Kind.RETRACT, algorithm="", hash=b"", labels=(), target=add.entry_id)
    store = LmdbStore(tmp_path / "db")
    store.ingest([add, retract], atomic=True, now_ms=0)
    stored = store.get(add.entry_id)
    assert stored is not None and stored.retracted_by == retract.entry_id
    store.close()


@pytest.mark.parametrize(
    ("target_of", "error", "message"),
    [
        ("missing", OrderingError, "which is not stored here yet: pull it first"),
        ("other", ValidationError, "retracts an entry of another member"),
    ],
)
def test_retract_refusals(tmp_path: Path, target_of: str, error: type, message: str) -> None:
    a, b = Origin("gov.example/ct"), Origin("platform.example")
    other = b.next()
    target = bytes(32) if target_of == "missing" else other.entry_id
    retract = a.next(kind=Kind.RETRACT, algorithm="", hash=b"", labels=(), target=target)
    store = LmdbStore(tmp_path / "db")
    store.ingest([other], atomic=True, now_ms=0)
    ((_, got),) = store.ingest([retract], atomic=True, now_ms=0).errors
    assert isinstance(got, error) and message in str(got)
    assert store.head("gov.example/ct").next_seq == 0
    store.close()


def test_map_full_grows_instead_of_failing(tmp_path: Path) -> None:
    a = Origin("gov.example/ct")
    store = LmdbStore(tmp_path / "db", map_size=256 * 1024)
    for _ in range(20):
        batch = [a.next(reason="x" * 900) for _ in range(50)]
        assert store.ingest(batch, atomic=True, now_ms=0).errors == []
    assert store.head("gov.example/ct").next_seq == 1000
    store.close()
