"""Pull: cursors, byte-bounded batches, urgent entries first."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from node.core.tlog import log_name
from node.core.trust import MemberKind, MembersFile
from node.rpc._pb.consortium.v1 import node_pb2 as pb
from node.rpc.client import NodeClient
from node.rpc.service import ALONE_EVERY_S, NodeServicer
from node.rpc.tls import Authorizer
from node.server import Node
from tests.helpers import LoopThread, Origin, member, write_node_dir

pytestmark = pytest.mark.integration

GOV, BULK = "gov.example/ct", "platform.example"


async def _pull(address: str, cursors: dict[str, int], max_batch: int) -> list[pb.PullResponse]:
    async with NodeClient(address) as c:
        return [r async for r in c.pull(cursors, follow=False, max_batch=max_batch)]


@pytest.fixture
def node(tmp_path: Path, loop: LoopThread):  # type: ignore[no-untyped-def]
    members = MembersFile.of([member(GOV, MemberKind.GOVERNMENT), member(BULK)])
    n = Node(write_node_dir(tmp_path, BULK, members), anti_entropy_s=0)
    loop.run(n.start())
    yield n
    loop.run(n.stop())


def test_urgent_entry_jumps_ahead_of_bulk_catch_up(node: Node, loop: LoopThread) -> None:
    bulk, gov = Origin(BULK), Origin(GOV)
    # "platform.example" sorts after "gov.example/ct"; make the bulk origin
    # sort first so that plain name order would serve it first.
    bulk_entries = [bulk.next() for _ in range(600)]
    node.store.ingest(bulk_entries, atomic=True, now_ms=0)
    for e in [gov.next() for _ in range(3)]:
        loop.run(node.app.submit_async([e]))
    urgent = gov.next(urgent=True)
    loop.run(node.app.submit_async([urgent]))

    responses = loop.run(_pull(node.address, {}, max_batch=50))
    first = [bytes(e.body) for e in responses[0].entries]
    assert urgent.body_bytes in first  # a far-behind node gets the urgent entry first
    total = sum(len(r.entries) for r in responses)
    assert total == 604
    assert responses[-1].frontier.sizes == {GOV: 4, BULK: 600}


def test_cursors_are_honoured(node: Node, loop: LoopThread) -> None:
    gov = Origin(GOV)
    entries = [gov.next() for _ in range(10)]
    loop.run(node.app.submit_async(entries))
    responses = loop.run(_pull(node.address, {GOV: 7}, max_batch=100))
    got = [bytes(e.body) for r in responses for e in r.entries]
    assert got == [e.body_bytes for e in entries[7:]]


def test_large_opaque_entries_are_split_under_the_message_cap(node: Node, loop: LoopThread) -> None:
    gov = Origin(GOV)
    big = [gov.next(algorithm="TMK_PDQF", hash=bytes([i]) * 200_000) for i in range(30)]
    for e in big:
        loop.run(node.app.submit_async([e]))
    responses = loop.run(_pull(node.address, {}, max_batch=1000))
    assert len(responses) >= 3  # 6 MB of entries cannot travel in one 4 MiB message
    for r in responses:
        assert r.ByteSize() < 4 * 1024 * 1024
    assert [bytes(e.body) for r in responses for e in r.entries] == [e.body_bytes for e in big]
    # Long opaque values are indexed by digest, and still match exactly.
    (hits,) = node.app.match([("TMK_PDQF", big[3].body.hash)])
    assert [h.entry.entry_id for h in hits] == [big[3].entry_id]


def test_follow_stream_delivers_new_entries(node: Node, loop: LoopThread) -> None:
    gov = Origin(GOV)

    async def follow_then_submit() -> list[bytes]:
        got: list[bytes] = []
        async with NodeClient(node.address) as c:
            stream = c.pull({}, follow=True)
            entry = gov.next()
            submit = asyncio.ensure_future(node.app.submit_async([entry]))
            async for r in stream:
                got += [bytes(e.body) for e in r.entries]
                if got:
                    break
            await submit
            await stream.aclose()
        return got

    assert len(loop.run(follow_then_submit())) == 1


def test_a_follow_stream_skips_what_its_caller_said_it_holds(node: Node, loop: LoopThread) -> None:
    gov = Origin(GOV)
    entries = [gov.next() for _ in range(8)]
    loop.run(node.app.submit_async(entries[:3]))
    servicer = NodeServicer(node.app, lambda: [], rosters=node.rosters, authorizer=Authorizer(None))
    x = "platform-x.example"

    async def follow(caller: str, said: dict[str, int] | None) -> list[bytes]:
        """Open a follow stream at cursor 3, then the caller says it holds
        ``said`` while 5 more entries commit: what does the stream send?"""
        stream = servicer._pull(pb.PullRequest(cursors={GOV: 3}, follow=True), caller)
        try:
            opening = await stream.__anext__()
            assert list(opening.entries) == []  # only the frontier
            await node.app.submit_async(entries[3:])
            if said is not None:
                node.app.heard_from(x, said)
            got: list[bytes] = []
            while len(got) < 8 - max(3, (said or {}).get(GOV, 0)):
                got += [bytes(e.body) for e in (await stream.__anext__()).entries]
            return got
        finally:
            await stream.aclose()

    assert loop.run(follow(x, {GOV: 6})) == [e.body_bytes for e in entries[6:]]


def test_what_a_caller_said_before_its_stream_opened_does_not_count(
    node: Node, loop: LoopThread
) -> None:
    gov = Origin(GOV)
    entries = [gov.next() for _ in range(8)]
    loop.run(node.app.submit_async(entries))
    servicer = NodeServicer(node.app, lambda: [], rosters=node.rosters, authorizer=Authorizer(None))
    # platform-x said it held all 8, then voided some and reopened from 3:
    # its new stream's cursors win.
    node.app.heard_from("platform-x.example", {GOV: 8})

    async def first(follow: bool, caller: str) -> pb.PullResponse:
        stream = servicer._pull(pb.PullRequest(cursors={GOV: 3}, follow=follow), caller)
        try:
            return await stream.__anext__()
        finally:
            await stream.aclose()

    held = loop.run(first(True, "platform-x.example"))
    assert [bytes(e.body) for e in held.entries] == [e.body_bytes for e in entries[3:]]
    # A one-off Pull never skips; nor does a stream of a caller that said nothing.
    assert len(loop.run(first(False, "platform-x.example")).entries) == 5
    assert len(loop.run(first(True, "")).entries) == 5


def test_a_checkpoint_alone_waits_to_ride_with_entries(node: Node, loop: LoopThread) -> None:
    """A follow-stream response without entries goes at most every
    ALONE_EVERY_S: the node's own checkpoint, signed just after the entries
    it covers went out, follows them no sooner than that."""
    own = Origin(BULK)
    servicer = NodeServicer(node.app, lambda: [], rosters=node.rosters, authorizer=Authorizer(None))

    async def run() -> tuple[float, float, list[str]]:
        stream = servicer._pull(pb.PullRequest(follow=True), "")
        try:
            await stream.__anext__()  # the opening frontier
            await node.app.submit_async([own.next()])
            with_entry = await stream.__anext__()
            t_entry = asyncio.get_running_loop().time()
            assert len(with_entry.entries) == 1
            if with_entry.checkpoints:  # signed before the response was built
                return t_entry, t_entry, list(with_entry.checkpoints)
            alone = await asyncio.wait_for(stream.__anext__(), 5)
            assert list(alone.entries) == []
            return t_entry, asyncio.get_running_loop().time(), list(alone.checkpoints)
        finally:
            await stream.aclose()

    t_entry, t_checkpoint, checkpoints = loop.run(run())
    assert len(checkpoints) == 1 and checkpoints[0].startswith(log_name(BULK) + "\n1\n")
    if t_checkpoint != t_entry:  # it came alone: not before its turn
        assert t_checkpoint - t_entry >= ALONE_EVERY_S - 0.05
