"""Transparency RPCs through the real gRPC service: exact statuses and messages.

AddCheckpoint follows C2SP tlog-witness (stale old size -> FAILED_PRECONDITION
with the witness's size in a trailer; bad proof -> INVALID_ARGUMENT;
check-and-persist atomic); SubmitEvidence keeps only self-proving evidence.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from node.core import evidence as ev
from node.core import merkle
from node.core.entry import SignedEntry
from node.core.tlog import log_name, sign_checkpoint, verify_checkpoint
from node.core.trust import MemberKind, MembersFile
from node.rpc._pb.consortium.v1 import node_pb2 as pb
from node.rpc._pb.consortium.v1 import node_pb2_grpc as pb_grpc
from node.rpc.client import CHANNEL_OPTIONS
from node.server import Node
from tests.helpers import LoopThread, Origin, member, signer_for, witnessed, write_node_dir

pytestmark = pytest.mark.integration

GOV, NGO, PLAT = "gov.example/ct", "ngo.example", "platform.example"
MEMBERS = MembersFile.of(
    [member(GOV, MemberKind.GOVERNMENT), member(NGO, MemberKind.NGO), member(PLAT)]
)
#: NGO is the one witness (the roster's WITNESS role); one cosignature settles.
ROSTER = witnessed(MEMBERS, (NGO,), 1)
GOV_KEY = signer_for(GOV).private_key


class Log:
    """GOV's log as an honest origin would build it, with signed checkpoints."""

    def __init__(self, size: int) -> None:
        self.origin = Origin(GOV)
        self.entries: list[SignedEntry] = []
        self.tree = merkle.MemoryTree()
        self.grow(size)

    def grow(self, n: int) -> None:
        for _ in range(n):
            e = self.origin.next()
            self.entries.append(e)
            self.tree.append(e.to_bytes())

    def note(self, size: int, root: bytes | None = None, key: Any = GOV_KEY) -> str:
        return sign_checkpoint(GOV, size, root or self.tree.root(size), key)

    def proof(self, old: int, new: int) -> list[bytes]:
        return merkle.consistency_proof(old, new, self.tree)


@pytest.fixture
def witness(tmp_path: Path, loop: LoopThread) -> Iterator[tuple[Node, Any]]:
    config = write_node_dir(tmp_path, NGO, ROSTER, MemberKind.NGO)
    n = Node(config)
    address = loop.run(n.start())
    channel = grpc.insecure_channel(address, options=CHANNEL_OPTIONS)
    try:
        yield n, pb_grpc.NodeServiceStub(channel)
    finally:
        channel.close()
        if n._server is not None:
            loop.run(n.stop())


def _add(stub: Any, old: int, proof: list[bytes], note: str) -> pb.AddCheckpointResponse:
    request = pb.AddCheckpointRequest(old_size=old, consistency_proof=proof, checkpoint=note)
    return stub.AddCheckpoint(request, timeout=10)


def _refused(call: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value


def test_add_checkpoint_cosigns_consistent_extensions_only(witness: tuple[Node, Any]) -> None:
    node, stub = witness
    log = Log(3)
    keys = {NGO: MEMBERS.member(NGO).checkpoint_public_key}
    answer = _add(stub, 0, [], log.note(3))
    vc = verify_checkpoint(log.note(3) + answer.cosignature, MEMBERS, keys)
    assert vc.cosigners == (NGO,)
    assert node.store.tlog.witnessed(GOV).size == 3

    log.grow(4)  # size 7
    err = _refused(lambda: _add(stub, 0, [], log.note(7)))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert err.details() == (
        f"old size 0 is stale: this witness cosigned size 3 of {log_name(GOV)} last"
    )
    assert ("ccnode-witness-size", "3") in tuple(err.trailing_metadata())

    cases: list[tuple[str, int, list[bytes], str, grpc.StatusCode, str]] = [
        (
            "proof for another size",
            3,
            log.proof(2, 7),
            log.note(7),
            grpc.StatusCode.INVALID_ARGUMENT,
            "consistency proof must have 4 hashes, got 2",
        ),
        (
            "flipped proof hash",
            3,
            [bytes(32), *log.proof(3, 7)[1:]],
            log.note(7),
            grpc.StatusCode.INVALID_ARGUMENT,
            "consistency proof 3->7 gives root1",
        ),
        (
            "root not of this tree",
            3,
            log.proof(3, 7),
            log.note(7, root=merkle.leaf_hash(b"x")),
            grpc.StatusCode.INVALID_ARGUMENT,
            "gives root2",
        ),
        (
            "smaller than old size",
            3,
            [],
            log.note(2),
            grpc.StatusCode.INVALID_ARGUMENT,
            "checkpoint size 2 is smaller than old size 3",
        ),
        (
            "signed by another key",
            3,
            log.proof(3, 7),
            log.note(7, key=signer_for(PLAT).private_key),
            grpc.StatusCode.PERMISSION_DENIED,
            f"checkpoint of {GOV} size 7 has a bad signature by its origin's checkpoint key",
        ),
        (
            "unknown origin",
            0,
            [],
            sign_checkpoint("stranger.example", 1, bytes(32), GOV_KEY),
            grpc.StatusCode.PERMISSION_DENIED,
            "unknown origin 'stranger.example': not a member",
        ),
        (
            "not one of our logs",
            0,
            [],
            log.note(7).replace(log_name(GOV), "example.com/log", 1),
            grpc.StatusCode.INVALID_ARGUMENT,
            "checkpoint origin must start with 'ccnode/v1/', got 'example.com/log'",
        ),
        (
            "not a note",
            3,
            [],
            "hello\n",
            grpc.StatusCode.INVALID_ARGUMENT,
            "note has no blank line before its signatures",
        ),
        (
            "its own log",
            0,
            [],
            sign_checkpoint(NGO, 1, bytes(32), signer_for(NGO).private_key),
            grpc.StatusCode.INVALID_ARGUMENT,
            f"witness {NGO} does not cosign its own log",
        ),
    ]
    for what, old, proof, note, code, message in cases:
        err = _refused(lambda old=old, proof=proof, note=note: _add(stub, old, proof, note))  # type: ignore[misc]
        assert (err.code(), what) == (code, what)
        assert message in (err.details() or ""), (what, err.details())
    assert node.store.tlog.witnessed(GOV).size == 3  # nothing persisted by refusals

    # A consistent extension is cosigned; the new size is what counts next.
    answer = _add(stub, 3, log.proof(3, 7), log.note(7))
    assert verify_checkpoint(log.note(7) + answer.cosignature, MEMBERS, keys).cosigners == (NGO,)
    assert node.store.tlog.witnessed(GOV).size == 7


def test_add_checkpoint_is_check_and_persist_atomic(
    witness: tuple[Node, Any], loop: LoopThread
) -> None:
    node, _ = witness
    log = Log(9)
    _add(_stub(node), 0, [], log.note(4))

    async def race() -> list[grpc.StatusCode]:
        async with grpc.aio.insecure_channel(node.address) as channel:
            stub = pb_grpc.NodeServiceStub(channel)
            request = pb.AddCheckpointRequest(
                old_size=4, consistency_proof=log.proof(4, 9), checkpoint=log.note(9)
            )
            calls = [stub.AddCheckpoint(request, timeout=10) for _ in range(8)]
            results = await asyncio.gather(*calls, return_exceptions=True)
        return [
            r.code() if isinstance(r, grpc.aio.AioRpcError) else grpc.StatusCode.OK for r in results
        ]

    codes = loop.run(race())
    assert sorted(c.name for c in codes) == ["FAILED_PRECONDITION"] * 7 + ["OK"]
    assert node.store.tlog.witnessed(GOV).size == 9


def _stub(node: Node) -> Any:
    return pb_grpc.NodeServiceStub(grpc.insecure_channel(node.address, options=CHANNEL_OPTIONS))


def test_witness_state_survives_restart_and_a_second_root_is_evidence(
    witness: tuple[Node, Any], loop: LoopThread
) -> None:
    node, stub = witness
    log = Log(5)
    _add(stub, 0, [], log.note(5))
    loop.run(node.stop())
    again = Node(node.config)
    loop.run(again.start())
    try:
        stub2 = _stub(again)
        err = _refused(lambda: _add(stub2, 0, [], log.note(5)))
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
        # The origin signs another root for size 5: refused, and kept as evidence.
        forged = log.note(5, root=merkle.leaf_hash(b"other history"))
        err = _refused(lambda: _add(stub2, 5, [], forged))
        assert err.code() == grpc.StatusCode.ALREADY_EXISTS
        assert err.details() == f"{GOV} signed two roots for size 5: evidence recorded"
        (record,) = again.app.tlog.evidence()
        proof = ev.ForkProof.decode(record.data)
        assert proof.kind is ev.EvidenceKind.CHECKPOINT_FORK
        assert ev.verify(proof, MEMBERS).fork_point == 5
        status = stub2.Status(pb.StatusRequest(), timeout=10)
        assert status.evidence == 1
        assert [(a.kind, a.origin) for a in status.alerts] == [("equivocation", GOV)]
    finally:
        loop.run(again.stop())


def test_a_node_that_is_not_a_witness_refuses(tmp_path: Path, loop: LoopThread) -> None:
    n = Node(write_node_dir(tmp_path, PLAT, ROSTER))
    loop.run(n.start())
    try:
        err = _refused(lambda: _add(_stub(n), 0, [], Log(1).note(1)))
        assert err.code() == grpc.StatusCode.PERMISSION_DENIED
        assert err.details() == (
            f"node {PLAT} is not a witness (the roster's WITNESS role, with a witness "
            "threshold of at least 1)"
        )
    finally:
        loop.run(n.stop())


def _evidence_cases() -> dict[str, tuple[bytes, grpc.StatusCode, str]]:
    gov, other = Origin(GOV), Origin(GOV)
    a0, b0 = gov.next(), other.next(reason="other")
    a1 = gov.next()
    fork = ev.entry_fork(a0, b0)
    forged = bytearray(b0.to_bytes())
    forged[-1] ^= 1
    raw = fork.encode()
    swapped = ev.ForkProof(ev.EvidenceKind.ENTRY_FORK, GOV, fork.b, fork.a).encode()
    log = Log(4)
    good_a = verify_checkpoint(log.note(4), MEMBERS, {})
    good_b = verify_checkpoint(log.note(4, root=merkle.leaf_hash(b"x")), MEMBERS, {})
    consistent = ev.checkpoint_fork(
        verify_checkpoint(log.note(2), MEMBERS, {}),
        good_a,
        log.tree.root(2),
        tuple(log.proof(2, 4)),
    )
    return {
        "garbage": (b"hello", grpc.StatusCode.INVALID_ARGUMENT, "evidence must start with b'CCX1'"),
        "trailing bytes": (
            raw + b"\x00",
            grpc.StatusCode.INVALID_ARGUMENT,
            "evidence has 1 trailing bytes",
        ),
        "not canonical": (
            swapped,
            grpc.StatusCode.INVALID_ARGUMENT,
            "evidence items are not in canonical order",
        ),
        "same entry twice": (
            ev.ForkProof(ev.EvidenceKind.ENTRY_FORK, GOV, a0.to_bytes(), a0.to_bytes()).encode(),
            grpc.StatusCode.INVALID_ARGUMENT,
            "not a fork: the same entry twice at seq 0",
        ),
        "a correct chain": (
            ev.ForkProof(ev.EvidenceKind.ENTRY_FORK, GOV, a0.to_bytes(), a1.to_bytes()).encode(),
            grpc.StatusCode.INVALID_ARGUMENT,
            "not a fork: seq 1 correctly extends seq 0",
        ),
        "forged signature": (
            ev.ForkProof(
                ev.EvidenceKind.ENTRY_FORK, GOV, *sorted((a0.to_bytes(), bytes(forged)))
            ).encode(),
            grpc.StatusCode.PERMISSION_DENIED,
            f"bad signature on {GOV} seq 0: not signed by the key it names",
        ),
        "consistent checkpoints": (
            consistent.encode(),
            grpc.StatusCode.INVALID_ARGUMENT,
            "not a fork: checkpoint of size 2 is consistent with size 4",
        ),
        "entry fork": (raw, grpc.StatusCode.OK, ""),
        "two roots for one size": (
            ev.checkpoint_fork(good_a, good_b, good_b.root).encode(),
            grpc.StatusCode.OK,
            "",
        ),
    }


CASES = _evidence_cases()


@pytest.mark.parametrize("case", list(CASES))
def test_submit_evidence(witness: tuple[Node, Any], case: str) -> None:
    node, stub = witness
    data, code, message = CASES[case]
    request = pb.SubmitEvidenceRequest(evidence=data)
    if code is not grpc.StatusCode.OK:
        err = _refused(lambda: stub.SubmitEvidence(request, timeout=10))
        assert (err.code(), err.details()) == (code, message)
        assert node.app.tlog.evidence_count() == 0
        assert node.app.tlog.fork_points() == {}
        return
    first = stub.SubmitEvidence(request, timeout=10)
    again = stub.SubmitEvidence(request, timeout=10)
    assert (first.new, again.new) == (True, False)
    assert first.evidence_id == ev.ForkProof.decode(data).evidence_id
    assert node.app.tlog.evidence_count() == 1
    assert node.app.tlog.fork_points() == {GOV: 1 if case == "entry fork" else 4}


@pytest.mark.parametrize(
    ("method", "request_", "code", "message"),
    [
        (
            "GetCheckpoint",
            pb.GetCheckpointRequest(origin=GOV),
            grpc.StatusCode.NOT_FOUND,
            f"no checkpoint of {GOV} is held here",
        ),
        (
            "GetCheckpoint",
            pb.GetCheckpointRequest(origin="Not An Id"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "bad member id 'Not An Id'",
        ),
        (
            "GetInclusionProof",
            pb.GetInclusionProofRequest(origin=GOV, seq=0, tree_size=4),
            grpc.StatusCode.NOT_FOUND,
            f"inclusion proof: this node holds 3 entries of {GOV}, asked for tree size 4",
        ),
        (
            "GetInclusionProof",
            pb.GetInclusionProofRequest(origin=GOV, seq=3, tree_size=3),
            grpc.StatusCode.INVALID_ARGUMENT,
            "leaf index must be < tree size 3, got 3",
        ),
        (
            "GetInclusionProof",
            pb.GetInclusionProofRequest(origin=GOV, seq=0, tree_size=0),
            grpc.StatusCode.INVALID_ARGUMENT,
            "leaf index must be < tree size 0, got 0",
        ),
        (
            "GetConsistencyProof",
            pb.GetConsistencyProofRequest(origin=GOV, old_size=3, new_size=2),
            grpc.StatusCode.INVALID_ARGUMENT,
            "old size must be <= new size 2, got 3",
        ),
        (
            "GetConsistencyProof",
            pb.GetConsistencyProofRequest(origin=GOV, old_size=1, new_size=9),
            grpc.StatusCode.NOT_FOUND,
            f"consistency proof: this node holds 3 entries of {GOV}, asked for tree size 9",
        ),
    ],
)
def test_proof_requests_refused(
    witness: tuple[Node, Any], method: str, request_: Any, code: grpc.StatusCode, message: str
) -> None:
    _, stub = witness
    assert stub.Submit(pb.SubmitRequest(entries=[_pb(e) for e in Log(3).entries]), timeout=10)
    err = _refused(lambda: getattr(stub, method)(request_, timeout=10))
    assert err.code() == code
    assert (err.details() or "").startswith(message), err.details()


def _pb(e: SignedEntry) -> pb.SignedEntry:
    return pb.SignedEntry(body=e.body_bytes, signature=e.signature)
