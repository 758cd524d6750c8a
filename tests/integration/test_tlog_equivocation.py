"""A malicious origin and a withholding peer, with real nodes.

Equivocation: ROGUE (a key-only submitter) signs two different entries for
seq 3 and shows one to X and the other to Y while Z, the middle of the line
X - Z - Y, is down. When Z comes back it pulls both, records the fork and
gossips it: one of X and Y sees the other body by Pull, the other learns of
the fork only through gossip. All three hold the evidence within one round,
flag ROGUE in match answers and status, and refuse its entries beyond the
fork point.

Withholding: P serves GOV's log only up to seq 3 while a witness quorum
has cosigned size 6; X, which pulls from P, flags it.
"""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import pytest

from node.config import TlogConfig
from node.core import evidence as ev
from node.core.entry import SignedEntry
from node.core.trust import MemberKind, MembersFile
from node.errors import ConflictError
from node.rpc._pb.consortium.v1 import node_pb2 as pb
from node.rpc._pb.consortium.v1 import node_pb2_grpc as pb_grpc
from node.rpc.client import NodeClient
from node.server import Node
from tests.helpers import (
    LoopThread,
    Origin,
    eventually,
    member,
    peer_file,
    witnessed,
    write_node_dir,
)

pytestmark = pytest.mark.integration

X, Y, Z = "x.example", "y.example", "z.example"
ROGUE, GOV, NGO, P = "rogue.example", "gov.example/ct", "ngo.example", "p.example"


def _stop(loop: LoopThread, nodes: dict[str, Node]) -> None:
    for n in nodes.values():
        if n._server is not None:
            loop.run(n.stop())


def test_equivocating_origin_is_caught_by_every_node(tmp_path: Path, loop: LoopThread) -> None:
    members = MembersFile.of([member(X), member(Y), member(Z), member(ROGUE)])
    configs = {
        X: write_node_dir(tmp_path, X, members, peers=(peer_file(Z),)),
        Z: write_node_dir(tmp_path, Z, members, peers=(peer_file(X), peer_file(Y))),
        Y: write_node_dir(tmp_path, Y, members, peers=(peer_file(Z),)),
    }
    nodes = {name: Node(c) for name, c in configs.items()}
    for n in nodes.values():
        loop.run(n.start())

    async def submit(name: str, batch: list) -> None:  # type: ignore[type-arg]
        async with NodeClient(nodes[name].address) as c:
            await c.submit(batch)

    async def flags(name: str, entry: object) -> list[bool]:
        async with NodeClient(nodes[name].address) as c:
            response = await c.match([(entry.body.algorithm, entry.body.hash)])  # type: ignore[attr-defined]
        return [m.provenance.origin_equivocated for m in response.results[0].matches]

    try:
        rogue = Origin(ROGUE)
        common = [rogue.next() for _ in range(3)]
        honest = Origin(X)
        loop.run(submit(X, [*common, honest.next()]))
        eventually(
            lambda: all(n.store.head(ROGUE).next_seq == 3 for n in nodes.values()),
            what="every node holds ROGUE's first 3 entries",
        )
        # The fork: two signed bodies for seq 3, one shown to X, one to Y.
        fork = Origin(ROGUE)
        fork.seq, fork.prev = rogue.seq, rogue.prev
        to_x = rogue.next(reason="shown to X")
        to_y = fork.next(reason="shown to Y")
        loop.run(nodes[Z].stop())
        loop.run(submit(X, [to_x]))
        loop.run(submit(Y, [to_y]))
        assert not nodes[X].app.tlog.fork_points() and not nodes[Y].app.tlog.fork_points()
        started = time.monotonic()
        nodes[Z] = Node(configs[Z])
        loop.run(nodes[Z].start())
        eventually(
            lambda: all(n.app.tlog.fork_points() == {ROGUE: 4} for n in nodes.values()),
            timeout=10,
            what="X, Y and Z all hold the fork evidence",
        )
        elapsed = time.monotonic() - started
        assert elapsed < 10
        print(f"evidence at all three nodes {elapsed:.2f}s after the fork")

        # The same self-proving evidence everywhere: both signed bodies of seq 3.
        for n in nodes.values():
            records = n.app.tlog.evidence()
            assert len(records) >= 1
            proofs = [ev.ForkProof.decode(r.data) for r in records]
            assert any({p.a, p.b} == {to_x.to_bytes(), to_y.to_bytes()} for p in proofs)
            for p in proofs:
                assert ev.verify(p, members).fork_point == 4
        # Never overwritten: each end keeps the body it was shown.
        assert nodes[X].store.get(to_x.entry_id) is not None
        assert nodes[Y].store.get(to_y.entry_id) is not None
        # Z's stored body went back to one end by Pull; the other end was never
        # sent a conflicting entry, and holds the evidence through gossip alone.
        detected_by_ingest = {name for name, n in nodes.items() if n.store.evidence()}
        assert Z in detected_by_ingest
        assert len({X, Y} - detected_by_ingest) >= 1

        # Match answers flag the origin, wherever the asker is; others are not flagged.
        assert loop.run(flags(X, to_x)) == [True]
        assert loop.run(flags(Y, to_y)) == [True]
        assert loop.run(flags(Z, common[0])) == [True]
        assert loop.run(flags(Z, honest.next())) == []  # not submitted: no match
        assert loop.run(flags(Y, common[0])) == [True]

        async def status(name: str) -> list[tuple[str, str]]:
            async with NodeClient(nodes[name].address) as c:
                s = await c.status()
            assert s.evidence >= 1
            return [(a.kind, a.origin) for a in s.alerts]

        for name in nodes:
            assert loop.run(status(name)) == [("equivocation", ROGUE)]

        # Entries beyond the fork point are refused, at the node that took to_x too.
        with pytest.raises(ConflictError, match=r"rogue.example forked its log .*from seq 4"):
            loop.run(submit(X, [rogue.next()]))
    finally:
        _stop(loop, nodes)


def test_a_peer_that_withholds_cosigned_entries_is_flagged(
    tmp_path: Path, loop: LoopThread
) -> None:
    members = MembersFile.of(
        [member(GOV, MemberKind.GOVERNMENT), member(NGO, MemberKind.NGO), member(X), member(P)]
    )
    roster = witnessed(members, (NGO,), 1)  # NGO witnesses; one cosignature settles
    tlog = TlogConfig(withholding_grace_s=0.2)
    configs = {
        GOV: write_node_dir(tmp_path, GOV, roster, MemberKind.GOVERNMENT, (peer_file(NGO),), tlog),
        NGO: write_node_dir(tmp_path, NGO, roster, MemberKind.NGO, (peer_file(GOV),), tlog),
        X: write_node_dir(tmp_path, X, roster, peers=(peer_file(GOV), peer_file(P)), tlog=tlog),
        P: write_node_dir(tmp_path, P, roster, tlog=tlog),  # syncs from nobody
    }
    nodes = {name: Node(c) for name, c in configs.items()}
    for n in nodes.values():
        loop.run(n.start())

    async def submit(name: str, batch: list) -> None:  # type: ignore[type-arg]
        async with NodeClient(nodes[name].address) as c:
            await c.submit(batch)

    async def peers_of_x() -> dict[str, bool]:
        async with NodeClient(nodes[X].address) as c:
            s = await c.status()
        return {p.peer_id: p.withholding for p in s.peers}

    async def alerts_of_x() -> list[tuple[str, str, str]]:
        async with NodeClient(nodes[X].address) as c:
            s = await c.status()
        return [(a.kind, a.peer, a.origin) for a in s.alerts]

    try:
        gov = Origin(GOV)
        entries = [gov.next() for _ in range(6)]
        loop.run(submit(P, entries[:3]))  # P holds (and serves) only the first 3
        loop.run(submit(GOV, entries))
        eventually(
            lambda: nodes[X].app.tlog.settled_sizes().get(GOV) == 6,
            what="X holds GOV's size-6 checkpoint cosigned by NGO",
        )
        eventually(
            lambda: loop.run(peers_of_x()) == {GOV: False, P: True},
            timeout=10,
            what="X flags P (and only P) as withholding",
        )
        assert loop.run(alerts_of_x()) == [("withholding", P, GOV)]

        # P catches up: the flag clears.
        loop.run(submit(P, entries[3:]))
        eventually(
            lambda: loop.run(peers_of_x()) == {GOV: False, P: False},
            timeout=30,  # P's idle follow stream reports its frontier every 15 s at most
            what="the flag clears once P serves size 6",
        )
    finally:
        _stop(loop, nodes)


def _pb(entry: object) -> pb.SubmitRequest:
    e: SignedEntry = entry  # type: ignore[assignment]
    return pb.SubmitRequest(entries=[pb.SignedEntry(body=e.body_bytes, signature=e.signature)])


def test_refusal_statuses_through_grpc(tmp_path: Path, loop: LoopThread) -> None:
    """The fork refusal is ALREADY_EXISTS on the wire."""
    members = MembersFile.of([member(X), member(ROGUE)])
    node = Node(write_node_dir(tmp_path, X, members))
    loop.run(node.start())
    try:
        rogue, fork = Origin(ROGUE), Origin(ROGUE)
        first, other = rogue.next(), fork.next(reason="other")

        async def go() -> None:
            async with NodeClient(node.address) as c:
                await c.submit([first])
            channel = grpc.aio.insecure_channel(node.address)
            stub = pb_grpc.NodeServiceStub(channel)
            try:
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await stub.Submit(
                        pb.SubmitRequest(
                            entries=[
                                pb.SignedEntry(body=other.body_bytes, signature=other.signature)
                            ]
                        )
                    )
                assert info.value.code() == grpc.StatusCode.ALREADY_EXISTS
                following = rogue.next()
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await stub.Submit(
                        pb.SubmitRequest(
                            entries=[
                                pb.SignedEntry(
                                    body=following.body_bytes, signature=following.signature
                                )
                            ]
                        )
                    )
                assert info.value.code() == grpc.StatusCode.ALREADY_EXISTS
                assert info.value.details() == (
                    "rogue.example forked its log (evidence held): entries from seq 1 on are "
                    "refused until a newer roster resolves it, got seq 1"
                )
            finally:
                await channel.close()

        loop.run(go())
    finally:
        loop.run(node.stop())
