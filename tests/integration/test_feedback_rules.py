"""Feedback rules through the real gRPC service: exact status, exact message, nothing stored."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from node.core.entry import ENTRY_DOMAIN, EntryBody, Kind, SignedEntry, pae
from node.core.payloads import ActionCounts, DisputeReason, encode_dispute
from node.core.trust import MemberKind, MembersFile
from node.rpc._pb.consortium.v1 import node_pb2 as pb
from node.rpc._pb.consortium.v1 import node_pb2_grpc as pb_grpc
from node.rpc.client import CHANNEL_OPTIONS
from node.server import Node
from tests.helpers import LoopThread, Origin, member, signer_for, write_node_dir

pytestmark = pytest.mark.integration

GOV, P1, P2 = "gov.example/ct", "platform-one.example", "platform-two.example"
OBS, NGO = "observer.example", "ngo.example/desk"
NEWS = encode_dispute(DisputeReason.NEWS_DOCUMENTARY_USE)
COUNTS = ActionCounts(1000, 1100, 1200, 2000, matches=3, blocked_at_upload=2).encode()


def _pb(e: SignedEntry) -> pb.SignedEntry:
    return pb.SignedEntry(body=e.body_bytes, signature=e.signature)


def _forged(origin: Origin, **fields: Any) -> pb.SignedEntry:
    """Sign a body that EntryBody validation would refuse (bypassing it)."""
    body = origin.body(kind=Kind.ENDORSE, algorithm="", hash=b"", labels=(), target=bytes(32))
    raw = EntryBody(**{f: getattr(body, f) for f in body.__dataclass_fields__})
    for name, value in fields.items():
        object.__setattr__(raw, name, value)
    data = raw.encode()
    return pb.SignedEntry(
        body=data, signature=signer_for(origin.name).private_key.sign(pae(ENTRY_DOMAIN, data))
    )


def vote(o: Origin, kind: Kind, target: SignedEntry, **fields: Any) -> SignedEntry:
    base: dict[str, Any] = dict(
        kind=kind, algorithm="", hash=b"", labels=(), target=target.entry_id
    )
    if kind == Kind.DISPUTE:
        base["payload"] = NEWS
    base.update(fields)
    return o.next(**base)


@pytest.fixture
def stub(tmp_path: Path, loop: LoopThread) -> Iterator[tuple[Node, Any]]:
    members = MembersFile.of(
        [
            member(GOV, MemberKind.GOVERNMENT),
            member(P1),
            member(P2, jurisdiction="FR"),
            member(OBS, MemberKind.OBSERVER),
            member(NGO, MemberKind.NGO),
        ]
    )
    n = Node(write_node_dir(tmp_path, P1, members))
    address = loop.run(n.start())
    channel = grpc.insecure_channel(address, options=CHANNEL_OPTIONS)
    try:
        yield n, pb_grpc.NodeServiceStub(channel)
    finally:
        channel.close()
        loop.run(n.stop())


Case = Callable[[], tuple[list[SignedEntry], list[pb.SignedEntry], grpc.StatusCode, str]]
C = grpc.StatusCode


def _cases() -> dict[str, Case]:
    def observer_endorses() -> Any:
        gov, obs = Origin(GOV), Origin(OBS)
        add = gov.next()
        return (
            [add],
            [_pb(vote(obs, Kind.ENDORSE, add))],
            C.PERMISSION_DENIED,
            f"member {OBS} (observer) has roles WITNESS, READ: ENDORSE entries need the "
            "ENDORSE role",
        )

    def government_files_action_report() -> Any:
        gov = Origin(GOV)
        add = gov.next()
        return (
            [add],
            [_pb(vote(gov, Kind.ACTION_REPORT, add, payload=COUNTS))],
            C.PERMISSION_DENIED,
            f"member {GOV} is a government: ACTION_REPORT entries come from platforms",
        )

    def self_endorsement() -> Any:
        gov = Origin(GOV)
        add = gov.next()
        return (
            [add],
            [_pb(vote(gov, Kind.ENDORSE, add))],
            C.INVALID_ARGUMENT,
            f"{GOV} seq 1 endorses its own entry {add.entry_id.hex()[:16]}: "
            "self-endorsement is not counted",
        )

    def self_dispute() -> Any:
        p2 = Origin(P2)
        add = p2.next()
        return (
            [add],
            [_pb(vote(p2, Kind.DISPUTE, add))],
            C.INVALID_ARGUMENT,
            f"{P2} seq 1 disputes its own entry {add.entry_id.hex()[:16]}: "
            "retract or relabel it instead",
        )

    def duplicate_endorsement() -> Any:
        gov, p1 = Origin(GOV), Origin(P1)
        add = gov.next()
        first = vote(p1, Kind.ENDORSE, add)
        return (
            [add, first],
            [_pb(vote(p1, Kind.ENDORSE, add, reason="again"))],
            C.ALREADY_EXISTS,
            f"{P1} already endorses {add.entry_id.hex()[:16]} (entry "
            f"{first.entry_id.hex()[:16]}): one vote per member per target",
        )

    def duplicate_dispute() -> Any:
        gov, p2 = Origin(GOV), Origin(P2)
        add = gov.next()
        first = vote(p2, Kind.DISPUTE, add)
        return (
            [add, first],
            [_pb(vote(p2, Kind.DISPUTE, add))],
            C.ALREADY_EXISTS,
            f"{P2} already disputes {add.entry_id.hex()[:16]} (news-documentary-use) (entry "
            f"{first.entry_id.hex()[:16]}): one vote per member per target",
        )

    def duplicate_in_one_batch() -> Any:
        gov, p1 = Origin(GOV), Origin(P1)
        add = gov.next()
        first = vote(p1, Kind.ENDORSE, add)
        second = vote(p1, Kind.ENDORSE, add)
        return (
            [add],
            [_pb(first), _pb(second)],
            C.ALREADY_EXISTS,
            f"entry 2 of 2: {P1} already endorses {add.entry_id.hex()[:16]} (entry "
            f"{first.entry_id.hex()[:16]}): one vote per member per target",
        )

    def vote_on_retracted() -> Any:
        gov, p1 = Origin(GOV), Origin(P1)
        add = gov.next()
        retract = gov.next(
            kind=Kind.RETRACT, algorithm="", hash=b"", labels=(), target=add.entry_id
        )
        return (
            [add, retract],
            [_pb(vote(p1, Kind.ENDORSE, add))],
            C.INVALID_ARGUMENT,
            f"{P1} seq 0 endorses {add.entry_id.hex()[:16]}, which was retracted by its submitter",
        )

    def retraction_by_non_submitter() -> Any:
        gov, p1 = Origin(GOV), Origin(P1)
        add = gov.next()
        return (
            [add],
            [_pb(vote(p1, Kind.RETRACT, add))],
            C.INVALID_ARGUMENT,
            f"{P1} seq 0 retracts an entry of another member ({GOV}): "
            "only the submitter may retract",
        )

    def retraction_twice() -> Any:
        gov = Origin(GOV)
        add = gov.next()
        first = vote(gov, Kind.RETRACT, add)
        return (
            [add, first],
            [_pb(vote(gov, Kind.RETRACT, add))],
            C.ALREADY_EXISTS,
            f"{GOV} seq 2 retracts {add.entry_id.hex()[:16]}, which is already retracted by "
            f"{first.entry_id.hex()[:16]}",
        )

    def relabel_by_non_submitter() -> Any:
        gov, ngo = Origin(GOV), Origin(NGO)
        add = gov.next()
        return (
            [add],
            [_pb(vote(ngo, Kind.RELABEL, add, labels=("type:image",)))],
            C.INVALID_ARGUMENT,
            f"{NGO} seq 0 relabels an entry of another member ({GOV}): "
            "only the submitter may relabel",
        )

    def target_not_pulled_yet() -> Any:
        gov, p1 = Origin(GOV), Origin(P1)
        add = gov.next()  # never stored here
        return (
            [],
            [_pb(vote(p1, Kind.ENDORSE, add))],
            C.FAILED_PRECONDITION,
            f"{P1} seq 0 endorses {add.entry_id.hex()[:16]}, "
            "which is not stored here yet: pull it first",
        )

    def retract_of_a_target_not_stored_here() -> Any:
        # One rule for every feedback kind (docs/policy.md): the target may
        # exist elsewhere in the federation, so "pull it first", not NOT_FOUND.
        add = Origin(GOV).next()  # never stored here
        return (
            [],
            [_pb(vote(Origin(GOV), Kind.RETRACT, add))],
            C.FAILED_PRECONDITION,
            f"{GOV} seq 0 retracts {add.entry_id.hex()[:16]}, "
            "which is not stored here yet: pull it first",
        )

    def vote_on_a_vote() -> Any:
        gov, p1, p2 = Origin(GOV), Origin(P1), Origin(P2)
        add = gov.next()
        endorsement = vote(p1, Kind.ENDORSE, add)
        return (
            [add, endorsement],
            [_pb(vote(p2, Kind.ENDORSE, endorsement))],
            C.INVALID_ARGUMENT,
            f"{P2} seq 0 endorses {endorsement.entry_id.hex()[:16]}, an ENDORSE entry: "
            "expected an ADD entry",
        )

    def other_incident() -> Any:
        gov, p1 = Origin(GOV), Origin(P1)
        add = gov.next()
        return (
            [add],
            [_pb(vote(p1, Kind.ENDORSE, add, incident="halle-2019-10-09"))],
            C.INVALID_ARGUMENT,
            f"{P1} seq 0 endorses {add.entry_id.hex()[:16]}: names incident 'halle-2019-10-09', "
            "but its target is in incident 'christchurch-2019-03-15': expected empty or the same",
        )

    def bad_dispute_code() -> Any:
        return (
            [],
            [_forged(Origin(P2), kind=Kind.DISPUTE, payload=b"\x01\x09")],
            C.INVALID_ARGUMENT,
            "DISPUTE reason code 9: expected 1..5",
        )

    def dispute_without_payload() -> Any:
        return (
            [],
            [_forged(Origin(P2), kind=Kind.DISPUTE, payload=b"")],
            C.INVALID_ARGUMENT,
            "DISPUTE payload has 0 bytes: expected 2 (version, reason code)",
        )

    def short_action_report() -> Any:
        return (
            [],
            [_forged(Origin(P2), kind=Kind.ACTION_REPORT, payload=COUNTS[:-1])],
            C.INVALID_ARGUMENT,
            "ACTION_REPORT payload has 64 bytes: expected 65",
        )

    def endorsement_with_labels() -> Any:
        return (
            [],
            [_forged(Origin(P2), labels=("type:image",))],
            C.INVALID_ARGUMENT,
            "an ENDORSE entry carries no labels",
        )

    def relabel_without_labels() -> Any:
        return (
            [],
            [_forged(Origin(GOV), kind=Kind.RELABEL)],
            C.INVALID_ARGUMENT,
            "a RELABEL entry needs the new labels (at least one)",
        )

    return {
        "wrong role: observer endorses": observer_endorses,
        "wrong role: government files an action report": government_files_action_report,
        "self-endorsement": self_endorsement,
        "self-dispute": self_dispute,
        "duplicate endorsement": duplicate_endorsement,
        "duplicate dispute": duplicate_dispute,
        "duplicate vote in one batch": duplicate_in_one_batch,
        "vote on a retracted entry": vote_on_retracted,
        "retraction by a non-submitter": retraction_by_non_submitter,
        "retraction twice": retraction_twice,
        "relabel by a non-submitter": relabel_by_non_submitter,
        "target not pulled yet": target_not_pulled_yet,
        "retraction of a target not stored here": retract_of_a_target_not_stored_here,
        "vote on a vote": vote_on_a_vote,
        "feedback names another incident": other_incident,
        "bad dispute reason code": bad_dispute_code,
        "dispute without reason": dispute_without_payload,
        "truncated action report": short_action_report,
        "endorsement with labels": endorsement_with_labels,
        "relabel without labels": relabel_without_labels,
    }


CASES = _cases()


@pytest.mark.parametrize("name", list(CASES))
def test_feedback_rule_is_refused_exactly(name: str, stub: tuple[Node, Any]) -> None:
    n, s = stub
    setup, bad, code, message = CASES[name]()
    for e in setup:  # one by one: each origin's chain in order
        s.Submit(pb.SubmitRequest(entries=[_pb(e)]), timeout=5)
    before = n.store.heads()
    with pytest.raises(grpc.RpcError) as info:
        s.Submit(pb.SubmitRequest(entries=bad), timeout=5)
    assert (info.value.code(), info.value.details()) == (code, message)
    assert n.store.heads() == before


def test_later_vote_supersedes_and_match_shows_the_aggregate(stub: tuple[Node, Any]) -> None:
    n, s = stub
    gov, p1, p2, ngo = Origin(GOV), Origin(P1), Origin(P2), Origin(NGO)
    add = gov.next(algorithm="MD5")
    steps = [
        add,
        vote(p1, Kind.DISPUTE, add, payload=encode_dispute(DisputeReason.WRONG_LABEL)),
        vote(p1, Kind.ENDORSE, add),  # supersedes P1's dispute
        vote(p2, Kind.DISPUTE, add),
        vote(ngo, Kind.ENDORSE, add),
        gov.next(
            kind=Kind.RELABEL,
            algorithm="",
            hash=b"",
            labels=("entity:attacker", "type:livestream"),
            target=add.entry_id,
        ),
    ]
    for e in steps:
        s.Submit(pb.SubmitRequest(entries=[_pb(e)]), timeout=5)
    (m,) = (
        s.Match(
            pb.MatchRequest(queries=[pb.HashQuery(algorithm="MD5", value=add.body.hash)]), timeout=5
        )
        .results[0]
        .matches
    )
    p = m.provenance
    assert [(v.member, v.vote, v.reason) for v in p.votes] == [
        (NGO, "endorse", ""),
        (P1, "endorse", ""),
        (P2, "dispute", "news-documentary-use"),
    ]
    assert [(t.member_kind, t.jurisdiction, t.count) for t in p.endorsements] == [
        ("ngo", "NZ", 1),
        ("platform", "NZ", 1),
    ]
    assert [(t.member_kind, t.jurisdiction, t.count) for t in p.disputes] == [("platform", "FR", 1)]
    assert list(p.current_labels) == ["entity:attacker", "type:livestream"]
    assert list(p.labels) == list(add.body.labels)  # the signed original stays visible
    assert p.relabelled_by == steps[-1].entry_id and p.relabels == 1
    assert (m.recommended_action, m.rule) == ("REVIEW", "(default)")

    # Withdrawing a vote: P1 retracts its endorsement; it no longer counts.
    withdraw = p1.next(
        kind=Kind.RETRACT, algorithm="", hash=b"", labels=(), target=steps[2].entry_id
    )
    s.Submit(pb.SubmitRequest(entries=[_pb(withdraw)]), timeout=5)
    got = s.GetEntry(pb.GetEntryRequest(entry_id=add.entry_id), timeout=5).provenance
    assert [(v.member, v.vote) for v in got.votes] == [(NGO, "endorse"), (P2, "dispute")]
    assert n.store.head(P1).next_seq == 3
