"""Three real nodes in a line A-B-C: entries submitted at A reach C via B."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.config import NodeConfig
from node.rpc.client import NodeClient
from node.server import Node
from tests.helpers import LoopThread, Origin, eventually, line_of_three

pytestmark = pytest.mark.integration

GOV, P1, P2 = "gov.example/ct", "platform-one.example", "platform-two.example"


def _line(tmp_path: Path) -> list[NodeConfig]:
    return line_of_three(tmp_path, GOV, P1, P2)


async def _heads(address: str) -> dict[str, int]:
    async with NodeClient(address) as c:
        status = await c.status()
    return {h.origin: h.next_seq for h in status.heads}


def test_line_relays_verified_bytes_and_survives_restart(tmp_path: Path, loop: LoopThread) -> None:
    configs = _line(tmp_path)
    nodes = [Node(c) for c in configs]
    addrs = [loop.run(n.start()) for n in nodes]
    try:
        gov = Origin(GOV)
        entries = [gov.next() for _ in range(5)]

        async def submit(batch: list) -> None:  # type: ignore[type-arg]
            async with NodeClient(addrs[0]) as c:
                await c.submit(batch)

        loop.run(submit(entries))
        eventually(lambda: loop.run(_heads(addrs[2])).get(GOV) == 5, what="C has A's 5 entries")

        async def peers_of_c() -> list:  # type: ignore[type-arg]
            async with NodeClient(addrs[2]) as c:
                return list((await c.status()).peers)

        (b_seen_by_c,) = loop.run(peers_of_c())
        assert b_seen_by_c.peer_id == P1
        assert b_seen_by_c.received == 5
        assert b_seen_by_c.responses >= 1  # the relay's messages, counted
        assert b_seen_by_c.duplicates == 0  # C has one neighbour: nothing arrives twice

        # Byte-identical at C, and matchable there with provenance.
        for e in entries:
            stored = nodes[2].store.get(e.entry_id)
            assert stored is not None
            assert stored.entry.to_bytes() == e.to_bytes()

        async def match_at_c() -> list:  # type: ignore[type-arg]
            async with NodeClient(addrs[2]) as c:
                resp = await c.match([(e.body.algorithm, e.body.hash) for e in entries])
            return [list(r.matches) for r in resp.results]

        results = loop.run(match_at_c())
        assert [len(r) for r in results] == [1] * 5
        prov = results[0][0].provenance
        assert (prov.origin, prov.origin_kind, prov.jurisdiction) == (GOV, "government", "NZ")
        assert prov.entry_id == entries[0].entry_id

        # Restart C on the same LMDB dir while A publishes more.
        loop.run(nodes[2].stop())
        more = [gov.next() for _ in range(3)]
        loop.run(submit(more))
        eventually(lambda: loop.run(_heads(addrs[1])).get(GOV) == 8, what="B has 8")
        nodes[2] = Node(configs[2])
        assert nodes[2].store.head(GOV).next_seq == 5  # kept what it acknowledged
        addrs[2] = loop.run(nodes[2].start())
        eventually(lambda: loop.run(_heads(addrs[2])).get(GOV) == 8, what="C caught up")
    finally:
        for n in nodes:
            if n._server is not None:
                loop.run(n.stop())
