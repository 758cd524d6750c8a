"""Faulty delivery changes nothing in the final state; bad peers are cut off."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.config import PeerConfig
from node.core.trust import MemberKind, MembersFile
from node.rpc._pb.consortium.v1 import node_pb2 as pb
from node.rpc.client import NodeClient
from node.server import Node
from tests import faults
from tests.helpers import LoopThread, Origin, eventually, member, write_node_dir

pytestmark = pytest.mark.integration

GOV, P1, P2, BAD = "gov.example/ct", "platform-one.example", "platform-two.example", "bad.example"


def _members() -> MembersFile:
    return MembersFile.of([member(GOV, MemberKind.GOVERNMENT), member(P1), member(P2), member(BAD)])


async def _submit(address: str, entries: list) -> None:  # type: ignore[type-arg]
    async with NodeClient(address) as c:
        for i in range(0, len(entries), 100):
            await c.submit(entries[i : i + 100])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_duplicated_reordered_delayed_delivery_converges(
    tmp_path: Path, loop: LoopThread, seed: int
) -> None:
    members = _members()
    source = Node(write_node_dir(tmp_path, GOV, members, MemberKind.GOVERNMENT))
    loop.run(source.start())
    relay = faults.FaultyRelay(source.address, seed)
    server, relay_addr = loop.run(faults.serve(relay))
    sink_cfg = write_node_dir(tmp_path, P1, members, peers=(PeerConfig(GOV, relay_addr),))
    sink = Node(sink_cfg, anti_entropy_s=0.2)
    loop.run(sink.start())
    try:
        origins = [Origin(GOV), Origin(P2)]
        entries = [o.next() for _ in range(150) for o in origins]
        # Small batches from the source make many faulty deliveries.
        for e in entries:
            loop.run(_submit(source.address, [e]))
        eventually(lambda: sink.store.heads() == source.store.heads(), timeout=30, what="converged")
        assert sum(relay.faults.values()) > 0
        for e in entries:
            stored = sink.store.get(e.entry_id)
            assert stored is not None and stored.entry.to_bytes() == e.to_bytes()
        assert sink.store.evidence() == []  # duplicates and reordering are not forks
    finally:
        loop.run(sink.stop())
        loop.run(server.stop(0))
        loop.run(source.stop())


def _garbage_batches(kind: str) -> list[pb.PullResponse]:
    good = Origin(BAD).next()
    if kind == "garbage":
        return [pb.PullResponse(entries=[pb.SignedEntry(body=b"\x00garbage", signature=b"x")])]
    if kind == "forged":
        sig = bytearray(good.signature)
        sig[5] ^= 0xFF
        return [
            pb.PullResponse(entries=[pb.SignedEntry(body=good.body_bytes, signature=bytes(sig))])
        ]
    if kind == "impostor":  # signed by the bad peer's key, claiming to be the government
        fake = Origin(GOV)
        fake.signer = Origin(BAD).signer
        e = fake.next()
        return [pb.PullResponse(entries=[pb.SignedEntry(body=e.body_bytes, signature=e.signature)])]
    raise AssertionError(kind)


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("garbage", "refused: signature has 1 bytes: expected 64"),
        ("forged", "refused: bad signature on bad.example seq 0: not signed by the key it names"),
        ("impostor", "refused: key "),
    ],
)
def test_bad_peer_is_disconnected_counted_and_does_not_stall_others(
    tmp_path: Path, loop: LoopThread, kind: str, message: str
) -> None:
    members = _members()
    bad = faults.MaliciousPeer(_garbage_batches(kind))
    bad_server, bad_addr = loop.run(faults.serve(bad))
    good = Node(write_node_dir(tmp_path, GOV, members, MemberKind.GOVERNMENT))
    loop.run(good.start())
    cfg = write_node_dir(
        tmp_path, P1, members, peers=(PeerConfig(BAD, bad_addr), PeerConfig(GOV, good.address))
    )
    node = Node(cfg, anti_entropy_s=0)
    loop.run(node.start())
    try:
        gov = Origin(GOV)
        loop.run(_submit(good.address, [gov.next() for _ in range(20)]))
        eventually(lambda: node.store.head(GOV).next_seq == 20, what="good peer's entries")
        eventually(lambda: node.sync.states[BAD].refused >= 2, what="reconnected and refused again")
        last_error = node.sync.states[BAD].last_error
        assert last_error.startswith(message)
        if kind == "impostor":
            assert last_error.endswith("is not an entry key of member gov.example/ct")
        assert node.store.head(BAD).next_seq == 0
        assert node.store.evidence() == []
        status = loop.run(_status(node.address))
        (bad_status,) = [p for p in status.peers if p.peer_id == BAD]
        assert bad_status.refused >= 2
    finally:
        loop.run(node.stop())
        loop.run(good.stop())
        loop.run(bad_server.stop(0))


async def _status(address: str) -> pb.StatusResponse:
    async with NodeClient(address) as c:
        return await c.status()


def test_stuck_peer_does_not_block_others(tmp_path: Path, loop: LoopThread) -> None:
    members = _members()
    stuck = faults.MaliciousPeer([])  # accepts the stream, never sends
    stuck_server, stuck_addr = loop.run(faults.serve(stuck))
    good = Node(write_node_dir(tmp_path, GOV, members, MemberKind.GOVERNMENT))
    loop.run(good.start())
    cfg = write_node_dir(
        tmp_path, P1, members, peers=(PeerConfig(BAD, stuck_addr), PeerConfig(GOV, good.address))
    )
    node = Node(cfg, anti_entropy_s=0)
    loop.run(node.start())
    try:
        gov = Origin(GOV)
        loop.run(_submit(good.address, [gov.next() for _ in range(10)]))
        eventually(lambda: node.store.head(GOV).next_seq == 10, what="good peer not blocked")
        assert stuck.pulls >= 1
    finally:
        loop.run(node.stop())
        loop.run(good.stop())
        loop.run(stuck_server.stop(0))
