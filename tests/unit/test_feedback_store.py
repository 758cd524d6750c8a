"""Feedback in the store: relayed entries are never refused for feedback rules,
they are stored and counted deterministically, whatever order they arrive in."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.core.entry import Kind, SignedEntry
from node.core.feedback import Aggregate, Stored, aggregate
from node.core.payloads import ActionCounts, DisputeReason, encode_dispute
from node.core.trust import Member, MemberKind, MembersFile
from node.store.base import Outcome
from node.store.lmdb_store import LmdbStore
from tests.helpers import Origin, member

GOV, P1, P2, P3 = "gov.example/ct", "platform-one.example", "platform-two.example", "p3.example"
TRUST = MembersFile.of(
    [member(GOV, MemberKind.GOVERNMENT), member(P1), member(P2, jurisdiction="FR"), member(P3)]
)


def lookup(member_id: str) -> Member | None:
    return TRUST.by_id.get(member_id)


def fb(o: Origin, kind: Kind, target: SignedEntry, **fields: Any) -> SignedEntry:
    base: dict[str, Any] = dict(
        kind=kind, algorithm="", hash=b"", labels=(), target=target.entry_id
    )
    if kind == Kind.DISPUTE:
        base["payload"] = encode_dispute(DisputeReason.OTHER)
    base.update(fields)
    return o.next(**base)


def agg(store: LmdbStore, target: SignedEntry) -> Aggregate:
    return aggregate(target, store.feedback_for(target.entry_id), lookup)


def test_relayed_rule_breakers_are_stored_but_not_counted(tmp_path: Path) -> None:
    gov, p1, p2 = Origin(GOV), Origin(P1), Origin(P2)
    add = gov.next()
    self_vote = fb(gov, Kind.ENDORSE, add)
    foreign_retract = fb(p1, Kind.RETRACT, add)
    foreign_relabel = fb(p1, Kind.RELABEL, add, labels=("type:image",))
    e1, e2 = fb(p2, Kind.ENDORSE, add), fb(p2, Kind.ENDORSE, add)  # a duplicate vote
    batch = [add, self_vote, foreign_retract, foreign_relabel, e1, e2]
    store = LmdbStore(tmp_path / "db")
    result = store.ingest(batch, atomic=False, peer="relay.example", now_ms=5)
    assert result.outcomes == (Outcome.ACCEPTED,) * len(batch)
    stored = store.get(add.entry_id)
    assert stored is not None and stored.retracted_by == b""  # not the submitter's retraction
    a = agg(store, add)
    assert [(v.member, v.entry_id) for v in a.votes] == [(P2, e2.entry_id)]  # latest counts
    assert a.labels == add.body.labels and a.relabelled_by == b""
    assert set(a.uncounted) == {
        self_vote.entry_id,
        foreign_retract.entry_id,
        foreign_relabel.entry_id,
    }
    store.close()


def test_a_vote_relayed_before_its_target_counts_once_the_target_arrives(tmp_path: Path) -> None:
    gov, p1 = Origin(GOV), Origin(P1)
    add = gov.next()
    endorsement = fb(p1, Kind.ENDORSE, add)
    store = LmdbStore(tmp_path / "db")
    first = store.ingest([endorsement], atomic=False, peer="x", now_ms=1)
    assert first.outcomes == (Outcome.ACCEPTED,)
    store.ingest([add], atomic=False, peer="x", now_ms=2)
    assert [v.member for v in agg(store, add).endorsements] == [P1]
    store.close()


def test_submitted_vote_before_its_target_is_refused_as_out_of_order(tmp_path: Path) -> None:
    gov, p1 = Origin(GOV), Origin(P1)
    add = gov.next()
    store = LmdbStore(tmp_path / "db")
    ((_, error),) = store.ingest([fb(p1, Kind.ENDORSE, add)], atomic=True, now_ms=1).errors
    assert type(error).__name__ == "OrderingError"
    assert store.heads() == {}
    store.close()


def _scenario() -> tuple[SignedEntry, dict[str, list[SignedEntry]]]:
    gov, p1, p2, p3 = Origin(GOV), Origin(P1), Origin(P2), Origin(P3)
    add = gov.next()
    relabel = fb(gov, Kind.RELABEL, add, labels=("entity:attacker", "type:video"))
    d1 = fb(p1, Kind.DISPUTE, add)
    e1 = fb(p1, Kind.ENDORSE, add)
    e2 = fb(p2, Kind.ENDORSE, add)
    withdraw = fb(p2, Kind.RETRACT, e2)
    e3 = fb(p3, Kind.ENDORSE, add)
    report = fb(
        p3,
        Kind.ACTION_REPORT,
        add,
        payload=ActionCounts(10, 20, 30, 40, matches=1, removals=1).encode(),
    )
    return add, {GOV: [add, relabel], P1: [d1, e1], P2: [e2, withdraw], P3: [e3, report]}


@settings(max_examples=8)  # each example fsyncs a dozen LMDB commits
@given(st.randoms(use_true_random=False))
def test_any_arrival_order_gives_the_same_aggregate(
    tmp_path_factory: Any, rnd: random.Random
) -> None:
    add, chains = _scenario()
    # An interleaving that keeps each origin's chain in order, one entry per batch.
    queues = {o: list(es) for o, es in chains.items()}
    order: list[SignedEntry] = []
    while any(queues.values()):
        origin = rnd.choice(sorted(o for o, q in queues.items() if q))
        order.append(queues[origin].pop(0))
    store = LmdbStore(tmp_path_factory.mktemp("db"))
    for e in order:
        assert store.ingest([e], atomic=False, peer="x", now_ms=0).errors == []
    a = agg(store, add)
    store.close()
    assert [(v.member, v.kind) for v in a.votes] == [(P3, Kind.ENDORSE), (P1, Kind.ENDORSE)]
    assert a.labels == ("entity:attacker", "type:video")
    assert [(r.member, r.counts.removals) for r in a.reports] == [(P3, 1)]


@given(st.randoms(use_true_random=False))
def test_aggregate_is_a_function_of_the_set_of_items(rnd: random.Random) -> None:
    add, chains = _scenario()
    e2, withdraw = chains[P2]
    items = [
        Stored(e, withdraw.entry_id if e is e2 else b"")
        for es in chains.values()
        for e in es
        if e.body.target == add.entry_id
    ]
    shuffled = items[:]
    rnd.shuffle(shuffled)
    result = aggregate(add, shuffled, lookup)
    assert result == aggregate(add, items, lookup)
    assert [v.member for v in result.votes] == [P3, P1]  # P2 withdrew its endorsement


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (dict(arrival_ms=-1), "action report arrival_ms -1: expected 0..2^63-1"),
        (dict(matches=0), "first_match_ms 20 with 0 matches: expected 0 exactly when"),
        (dict(first_action_ms=0), "first_action_ms 0 with 1 actions: expected 0 exactly when"),
        (dict(as_of_ms=25), "action report: first_action_ms 30 is after as_of_ms 25"),
        (dict(reviews=-2), "action report reviews -2: expected 0..2^63-1"),
    ],
)
def test_bad_action_counts(fields: dict[str, int], message: str) -> None:
    base = dict(
        arrival_ms=10, first_match_ms=20, first_action_ms=30, as_of_ms=40, matches=1, reviews=1
    )
    base.update(fields)
    with pytest.raises(Exception) as info:
        ActionCounts(**base)
    assert type(info.value).__name__ == "ValidationError"
    assert message in str(info.value)


counts = st.builds(
    lambda a, m, f, x, n, b, r, v: ActionCounts(
        a, m if n else 0, f if b + r + v else 0, x + max(a, m, f), n, b, r, v
    ),
    st.integers(0, 2**40),
    st.integers(1, 2**40),
    st.integers(1, 2**40),
    st.integers(0, 2**40),
    *[st.integers(0, 2**62)] * 4,
)


@given(counts)
def test_action_counts_round_trip(c: ActionCounts) -> None:
    data = c.encode()
    assert len(data) == 65
    assert ActionCounts.decode(data) == c


@pytest.mark.parametrize("reason", list(DisputeReason))
def test_dispute_reasons_parse_from_their_text(reason: DisputeReason) -> None:
    assert DisputeReason.parse(reason.text) is reason
    assert DisputeReason.parse(reason.name) is reason
