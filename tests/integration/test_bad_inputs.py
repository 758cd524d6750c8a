"""Bad input through the real gRPC service: exact status, exact message, nothing stored."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from node.config import NodeConfig
from node.core.entry import ENTRY_DOMAIN, EntryBody, SignedEntry, pae
from node.core.trust import MemberKind, MembersFile
from node.rpc._pb.consortium.v1 import node_pb2 as pb
from node.rpc._pb.consortium.v1 import node_pb2_grpc as pb_grpc
from node.rpc.client import CHANNEL_OPTIONS
from node.server import Node
from tests.helpers import LoopThread, Origin, member, signer_for, write_node_dir

pytestmark = pytest.mark.integration

GOV, PLAT = "gov.example/ct", "platform.example"


def _raw(body: EntryBody, **bad: Any) -> bytes:
    """Encode a body with fields that validation would refuse."""
    forged = EntryBody(**{f: getattr(body, f) for f in body.__dataclass_fields__})
    for name, value in bad.items():
        object.__setattr__(forged, name, value)
    return forged.encode()


def _sign_raw(name: str, data: bytes) -> pb.SignedEntry:
    signature = signer_for(name).private_key.sign(pae(ENTRY_DOMAIN, data))
    return pb.SignedEntry(body=data, signature=signature)


def _pb(e: SignedEntry) -> pb.SignedEntry:
    return pb.SignedEntry(body=e.body_bytes, signature=e.signature)


@pytest.fixture
def node(tmp_path: Path, loop: LoopThread) -> Iterator[tuple[Node, Any]]:
    members = MembersFile.of([member(GOV, MemberKind.GOVERNMENT), member(PLAT)])
    config: NodeConfig = write_node_dir(tmp_path, PLAT, members)
    n = Node(config)
    address = loop.run(n.start())
    channel = grpc.insecure_channel(address, options=CHANNEL_OPTIONS)
    try:
        yield n, pb_grpc.NodeServiceStub(channel)
    finally:
        channel.close()
        loop.run(n.stop())


def _gov_stored(count: int) -> tuple[Origin, list[SignedEntry]]:
    gov = Origin(GOV)
    return gov, [gov.next() for _ in range(count)]


Case = Callable[[], tuple[list[pb.SignedEntry], list[pb.SignedEntry]]]


def _cases() -> dict[str, tuple[Case, grpc.StatusCode, str]]:
    def unknown_algorithm() -> Any:
        gov = Origin(GOV)
        return [], [_sign_raw(GOV, _raw(gov.body(), algorithm="FOO"))]

    def wrong_length() -> Any:
        gov = Origin(GOV)
        return [], [_sign_raw(GOV, _raw(gov.body(), hash=bytes(15)))]

    def unknown_origin() -> Any:
        stranger = Origin("stranger.example")
        return [], [_pb(stranger.next())]

    def bad_signature() -> Any:
        e = Origin(GOV).next()
        sig = bytearray(e.signature)
        sig[0] ^= 1
        return [], [pb.SignedEntry(body=e.body_bytes, signature=bytes(sig))]

    def other_members_key() -> Any:
        gov = Origin(GOV)
        gov.signer = signer_for(PLAT)  # platform key claiming to be the government
        return [], [_pb(gov.next())]

    def out_of_order() -> Any:
        gov, stored = _gov_stored(2)
        gov.next()  # seq 2 never submitted
        return [_pb(e) for e in stored], [_pb(gov.next())]

    def equivocating_body() -> Any:
        _, stored = _gov_stored(2)
        fork = Origin(GOV)
        fork.next()
        other = fork.next(hash=b"\x01" * 16)  # same seq 1, different body
        return [_pb(e) for e in stored], [_pb(other)]

    def bad_unknown_label() -> Any:
        gov = Origin(GOV)
        return [], [_sign_raw(GOV, _raw(gov.body(), labels=("behaviour:cats",)))]

    def garbage_body() -> Any:
        return [], [pb.SignedEntry(body=b"not an entry", signature=bytes(64))]

    def short_signature() -> Any:
        e = Origin(GOV).next()
        return [], [pb.SignedEntry(body=e.body_bytes, signature=e.signature[:10])]

    def empty_batch() -> Any:
        return [], []

    def second_entry_bad() -> Any:
        gov = Origin(GOV)
        good = gov.next()
        return [], [_pb(good), _sign_raw(GOV, _raw(gov.body(), hash=bytes(3)))]

    code = grpc.StatusCode
    return {
        "unknown algorithm": (
            unknown_algorithm,
            code.INVALID_ARGUMENT,
            "unknown hash algorithm 'FOO': expected one of PDQ, MD5, "
            "SHA256, VIDEO_MD5, TMK_PDQF, VPDQ",
        ),
        "wrong length": (
            wrong_length,
            code.INVALID_ARGUMENT,
            "MD5 hash has 15 bytes: expected 16 bytes (32 hex digits)",
        ),
        "unknown label": (
            bad_unknown_label,
            code.INVALID_ARGUMENT,
            "unknown label 'behaviour:cats'",
        ),
        "garbage body": (garbage_body, code.INVALID_ARGUMENT, "not an entry body: bad magic"),
        "short signature": (
            short_signature,
            code.INVALID_ARGUMENT,
            "signature has 10 bytes: expected 64",
        ),
        "unknown origin": (
            unknown_origin,
            code.PERMISSION_DENIED,
            "unknown origin 'stranger.example': not a member",
        ),
        "bad signature": (
            bad_signature,
            code.PERMISSION_DENIED,
            "bad signature on gov.example/ct seq 0: not signed by the key it names",
        ),
        "another member's key": (
            other_members_key,
            code.PERMISSION_DENIED,
            "is not an entry key of member gov.example/ct",
        ),
        "out-of-order seq": (
            out_of_order,
            code.FAILED_PRECONDITION,
            "out of order: gov.example/ct expects seq 2, got 3",
        ),
        "equivocating body": (
            equivocating_body,
            code.ALREADY_EXISTS,
            "equivocation: gov.example/ct seq 1 has a different signed body than the one stored",
        ),
        "empty batch": (
            empty_batch,
            code.INVALID_ARGUMENT,
            "empty batch: expected 1..1000 entries",
        ),
        "bad second entry": (
            second_entry_bad,
            code.INVALID_ARGUMENT,
            "entry 2 of 2: MD5 hash has 3 bytes: expected 16 bytes",
        ),
    }


CASES = _cases()


@pytest.mark.parametrize("name", list(CASES))
def test_bad_submit_is_refused_exactly_and_stores_nothing(
    name: str, node: tuple[Node, Any]
) -> None:
    n, stub = node
    make, code, message = CASES[name]
    setup, bad = make()
    if setup:
        stub.Submit(pb.SubmitRequest(entries=setup), timeout=5)
    before = n.store.heads()
    with pytest.raises(grpc.RpcError) as info:
        stub.Submit(pb.SubmitRequest(entries=bad), timeout=5)
    assert info.value.code() == code
    assert message in info.value.details()
    assert n.store.heads() == before  # all-or-nothing: not even the good first entry


def test_equivocation_is_kept_as_evidence(node: tuple[Node, Any]) -> None:
    n, stub = node
    setup, bad = CASES["equivocating body"][0]()
    stub.Submit(pb.SubmitRequest(entries=setup), timeout=5)
    with pytest.raises(grpc.RpcError):
        stub.Submit(pb.SubmitRequest(entries=bad), timeout=5)
    (evidence,) = n.store.evidence()
    assert (evidence.origin, evidence.seq) == (GOV, 1)
    assert evidence.conflicting[4:].startswith(bad[0].body)
    assert evidence.stored != evidence.conflicting
    status = stub.Status(pb.StatusRequest(), timeout=5)
    assert status.evidence == 1


def test_replayed_entry_is_an_idempotent_duplicate(node: tuple[Node, Any]) -> None:
    n, stub = node
    _, entries = _gov_stored(3)
    first = stub.Submit(pb.SubmitRequest(entries=[_pb(e) for e in entries]), timeout=5)
    assert [r.outcome for r in first.results] == [pb.OUTCOME_ACCEPTED] * 3
    replay = stub.Submit(pb.SubmitRequest(entries=[_pb(entries[1])]), timeout=5)
    assert [r.outcome for r in replay.results] == [pb.OUTCOME_DUPLICATE]
    assert replay.results[0].entry_id == entries[1].entry_id
    assert n.store.head(GOV).next_seq == 3
    assert n.store.evidence() == []


def test_oversized_message_is_refused_by_the_server(node: tuple[Node, Any]) -> None:
    n, _ = node
    huge = pb.SignedEntry(body=b"x" * (5 * 1024 * 1024), signature=bytes(64))
    # A client with no send cap of its own, so the server's cap is what refuses.
    with grpc.insecure_channel(n.address) as channel:
        stub = pb_grpc.NodeServiceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.Submit(pb.SubmitRequest(entries=[huge]), timeout=5)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "Received message larger than max (5242956 vs. 4194304)" in info.value.details()


def test_oversized_body_under_the_transport_cap_is_refused(node: tuple[Node, Any]) -> None:
    _, stub = node
    big = pb.SignedEntry(body=b"x" * (400 * 1024), signature=bytes(64))
    with pytest.raises(grpc.RpcError) as info:
        stub.Submit(pb.SubmitRequest(entries=[big]), timeout=5)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details() == "entry body has 409600 bytes: expected at most 307200"


@pytest.mark.parametrize(
    ("query", "code", "message"),
    [
        (
            pb.HashQuery(algorithm="FOO", value=bytes(16)),
            grpc.StatusCode.INVALID_ARGUMENT,
            "unknown hash algorithm 'FOO'",
        ),
        (
            pb.HashQuery(algorithm="PDQ", value=bytes(31)),
            grpc.StatusCode.INVALID_ARGUMENT,
            "PDQ hash has 31 bytes: expected 32 bytes (64 hex digits)",
        ),
        (
            pb.HashQuery(algorithm="SHA256", value=b""),
            grpc.StatusCode.INVALID_ARGUMENT,
            "SHA256 hash is empty: expected 32 bytes (64 hex digits)",
        ),
    ],
)
def test_bad_match_queries(
    node: tuple[Node, Any], query: pb.HashQuery, code: Any, message: str
) -> None:
    _, stub = node
    with pytest.raises(grpc.RpcError) as info:
        stub.Match(pb.MatchRequest(queries=[query]), timeout=5)
    assert info.value.code() == code
    assert info.value.details() == message or message in info.value.details()


def test_get_entry_not_found_and_bad_id(node: tuple[Node, Any]) -> None:
    _, stub = node
    with pytest.raises(grpc.RpcError) as info:
        stub.GetEntry(pb.GetEntryRequest(entry_id=bytes(32)), timeout=5)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert info.value.details() == f"entry {'00' * 32} is not stored here"
    with pytest.raises(grpc.RpcError) as info:
        stub.GetEntry(pb.GetEntryRequest(entry_id=b"short"), timeout=5)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details() == "entry id has 5 bytes: expected 32"
