"""The group-commit writer: many jobs, one transaction, each job on its own."""

from __future__ import annotations

import asyncio
import functools
import threading
from pathlib import Path
from typing import Any

import pytest

from node.errors import OrderingError, StorageError, ValidationError
from node.store.base import Outcome
from node.store.lmdb_store import LmdbStore
from node.store.writer import GroupWriter
from tests.helpers import Origin


def _ingest(store: LmdbStore, entries: list[Any], *, atomic: bool = True) -> Any:
    return functools.partial(store.ingest_in, entries=entries, atomic=atomic, now_ms=7)


def test_queued_jobs_commit_together_and_a_failing_job_loses_only_itself(
    tmp_path: Path,
) -> None:
    store = LmdbStore(tmp_path / "db")
    writer = GroupWriter(store)
    origins = [Origin(f"platform-{i}.example") for i in range(4)]
    release = threading.Event()
    started = threading.Event()

    def hold(txn: Any) -> str:
        started.set()
        assert release.wait(10)
        return "held"

    def broken(txn: Any) -> None:
        txn.put(b"never", b"kept")  # in the job's nested transaction: discarded
        raise ValidationError("this job is refused")

    first = writer.submit(hold)
    assert started.wait(10)
    # Queued while the writer is busy: these form the next group.
    futures = [writer.submit(_ingest(store, [o.next(), o.next()])) for o in origins[:2]]
    bad = writer.submit(broken)
    futures += [writer.submit(_ingest(store, [o.next()])) for o in origins[2:]]
    release.set()
    assert first.result(10) == "held"
    results = [f.result(10) for f in futures]
    with pytest.raises(ValidationError, match=r"^this job is refused$"):
        bad.result(10)
    writer.shutdown()

    assert [r.outcomes for r in results] == [(Outcome.ACCEPTED,) * 2] * 2 + [
        (Outcome.ACCEPTED,)
    ] * 2
    assert (writer.groups, writer.jobs) == (2, 6)
    assert {o: h.next_seq for o, h in store.heads().items()} == {
        "platform-0.example": 2,
        "platform-1.example": 2,
        "platform-2.example": 1,
        "platform-3.example": 1,
    }
    with store._env.begin() as txn:  # the failed job's write is nowhere
        assert txn.get(b"never") is None
    store.close()


def test_a_refused_atomic_batch_in_a_group_keeps_nothing_but_its_evidence(
    tmp_path: Path,
) -> None:
    store = LmdbStore(tmp_path / "db")
    a, b = Origin("gov.example/ct"), Origin("platform.example")
    a0 = a.next()
    assert store.ingest([a0], atomic=True, now_ms=0).errors == []
    fork = Origin("gov.example/ct")
    fork_a0 = fork.next(reason="another body for seq 0")
    b0 = b.next()
    outcomes = store.write_group([_ingest(store, [b0]), _ingest(store, [a.next(), fork_a0])])
    (ok_good, good), (ok_bad, bad) = outcomes
    assert ok_good and good.accepted == (b0,)
    assert ok_bad and bad.accepted == () and len(bad.errors) == 1
    assert str(bad.errors[0][1]).startswith("entry 2 of 2: ")
    assert store.head("gov.example/ct").next_seq == 1  # a1 went with its batch
    assert store.head("platform.example").next_seq == 1
    assert len(store.evidence()) == 1  # the fork is proof whatever the batch did
    store.close()


def test_a_group_that_fills_the_map_grows_it_and_runs_every_job_again(
    tmp_path: Path,
) -> None:
    store = LmdbStore(tmp_path / "db", map_size=256 * 1024)
    origins = [Origin(f"platform-{i}.example") for i in range(8)]
    jobs = [_ingest(store, [o.next(reason="x" * 900) for _ in range(60)]) for o in origins]
    outcomes = store.write_group(jobs)
    assert all(ok and not r.errors for ok, r in outcomes)
    assert all(store.head(o.name).next_seq == 60 for o in origins)
    assert store._env.info()["map_size"] > 256 * 1024
    store.close()


def test_heads_cache_follows_every_commit(tmp_path: Path) -> None:
    store = LmdbStore(tmp_path / "db")
    writer = GroupWriter(store)
    a = Origin("gov.example/ct")
    for n in range(1, 6):
        writer.call(_ingest(store, [a.next()]))
        assert store.heads()["gov.example/ct"].next_seq == n
    x = Origin("x.example")
    x.next()
    gap = x.next()  # x.example's seq 0 never arrives
    writer.call(_ingest(store, [a.next(), gap], atomic=False))
    assert store.heads()["gov.example/ct"].next_seq == 6
    assert "x.example" not in store.heads()
    writer.shutdown()
    store.close()


def test_shutdown_finishes_queued_jobs_then_refuses_new_ones(tmp_path: Path) -> None:
    store = LmdbStore(tmp_path / "db")
    writer = GroupWriter(store, max_jobs=2)
    a = Origin("gov.example/ct")
    futures = [writer.submit(_ingest(store, [a.next()])) for _ in range(9)]
    writer.shutdown()
    assert all(f.result(0).errors == [] for f in futures)
    assert store.head("gov.example/ct").next_seq == 9
    with pytest.raises(StorageError, match=r"^the store is closing: no more writes$"):
        writer.submit(_ingest(store, [a.next()]))
    store.close()


def test_out_of_order_relayed_batch_reports_per_entry(tmp_path: Path) -> None:
    store = LmdbStore(tmp_path / "db")
    writer = GroupWriter(store)
    a = Origin("gov.example/ct")
    a0 = a.next()
    a.next()
    a2 = a.next()

    async def go() -> Any:
        return await writer.run(_ingest(store, [a0, a2], atomic=False))

    result = asyncio.run(go())
    assert result.outcomes[0] is Outcome.ACCEPTED
    assert isinstance(result.outcomes[1], OrderingError)
    writer.shutdown()
    store.close()
