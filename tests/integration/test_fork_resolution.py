"""A forked origin resolved by a newer roster, with real nodes.

ROGUE (a key-only submitter) signs two seq-3 entries and shows A to X and B
to Y while Z, the middle of the line X - Z - Y, is down. Z comes back: all
three hold the evidence and refuse ROGUE from seq 4. Governance then
publishes roster version 2 resolving ROGUE's log to branch A (X's root at
size 4), offered to X alone; roster gossip carries it to Z and Y. After
adoption ROGUE publishes more entries and every node converges on branch A:
identical frontiers and roots, Y's branch-B entry in its `voided` table, the
evidence still held everywhere, match answers no longer flagging ROGUE, and
`ccnode audit` clean on every node's data.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from node.cli import main
from node.core import evidence as ev
from node.core.roster import ForkResolution, SignedRoster
from node.core.trust import MembersFile
from node.errors import ConflictError
from node.rpc.client import NodeClient
from node.server import Node
from tests.helpers import (
    FAR_FUTURE_MS,
    GOVERNANCE,
    LoopThread,
    Origin,
    eventually,
    genesis,
    member,
    peer_file,
    sign,
    write_node_dir,
)

pytestmark = pytest.mark.integration

X, Y, Z = "x.example", "y.example", "z.example"
ROGUE = "rogue.example"


def test_a_newer_roster_resolves_a_fork(tmp_path: Path, loop: LoopThread) -> None:
    v1 = genesis(MembersFile.of([member(X), member(Y), member(Z), member(ROGUE)]))
    configs = {
        X: write_node_dir(tmp_path, X, v1, peers=(peer_file(Z),)),
        Z: write_node_dir(tmp_path, Z, v1, peers=(peer_file(X), peer_file(Y))),
        Y: write_node_dir(tmp_path, Y, v1, peers=(peer_file(Z),)),
    }
    # No periodic anti-entropy: the re-sync after voiding must not need it.
    nodes = {name: Node(c, anti_entropy_s=0) for name, c in configs.items()}
    for n in nodes.values():
        loop.run(n.start())

    async def call(name: str, fn: Any) -> Any:
        async with NodeClient(nodes[name].address) as c:
            return await fn(c)

    def flags(name: str, entry: Any) -> list[bool]:
        response = loop.run(
            call(name, lambda c: c.match([(entry.body.algorithm, entry.body.hash)]))
        )
        return [m.provenance.origin_equivocated for m in response.results[0].matches]

    def alerts(name: str) -> list[tuple[str, str]]:
        status = loop.run(call(name, lambda c: c.status()))
        return [(a.kind, a.origin) for a in status.alerts]

    try:
        rogue = Origin(ROGUE)
        common = [rogue.next() for _ in range(3)]
        loop.run(call(X, lambda c: c.submit(common)))
        eventually(
            lambda: all(n.store.head(ROGUE).next_seq == 3 for n in nodes.values()),
            what="every node holds ROGUE's first 3 entries",
        )
        fork = Origin(ROGUE)
        fork.seq, fork.prev = rogue.seq, rogue.prev
        branch_a = rogue.next(reason="shown to X")
        branch_b = fork.next(reason="shown to Y", hash=hashlib.md5(b"branch B").digest())
        loop.run(nodes[Z].stop())
        loop.run(call(X, lambda c: c.submit([branch_a])))
        loop.run(call(Y, lambda c: c.submit([branch_b])))
        nodes[Z] = Node(configs[Z], anti_entropy_s=0)
        loop.run(nodes[Z].start())
        eventually(
            lambda: all(n.app.tlog.fork_points() == {ROGUE: 4} for n in nodes.values()),
            timeout=10,
            what="X, Y and Z hold the fork evidence",
        )
        assert nodes[X].store.get(branch_a.entry_id) is not None
        assert nodes[Y].store.get(branch_b.entry_id) is not None
        assert flags(Y, common[0]) == [True]
        with pytest.raises(ConflictError, match="forked its log"):
            loop.run(call(X, lambda c: c.submit([rogue.next()])))
        rogue.seq, rogue.prev = 4, branch_a.entry_id  # that one was refused

        # Governance resolves the fork to branch A: X's log at size 4.
        canonical = nodes[X].store.tlog.root(ROGUE, 4)
        draft = v1.roster.next_draft(FAR_FUTURE_MS).with_resolution(
            ForkResolution(ROGUE, 4, canonical)
        )
        v2 = sign(SignedRoster.draft(draft), GOVERNANCE[:1])
        loop.run(call(X, lambda c: c.offer_roster([v2])))
        eventually(
            lambda: all(n.rosters.version == 2 for n in nodes.values()),
            timeout=10,
            what="roster version 2 reaches Z and Y by gossip",
        )
        eventually(
            lambda: all(n.app.tlog.fork_points() == {} for n in nodes.values()),
            what="no node refuses ROGUE any more",
        )

        # ROGUE goes on, on branch A; every node converges on it.
        more = [rogue.next() for _ in range(3)]
        loop.run(call(X, lambda c: c.submit(more)))

        def frontiers() -> list[tuple[dict[str, int], bytes]]:
            return [
                (
                    {o: h.next_seq for o, h in n.store.heads().items()},
                    n.store.tlog.root(ROGUE, n.store.tlog.size(ROGUE)),
                )
                for n in nodes.values()
            ]

        eventually(
            lambda: (
                all(f == frontiers()[0] for f in frontiers()) and frontiers()[0][0] == {ROGUE: 7}
            ),
            timeout=15,
            what="identical frontiers and roots on branch A at every node",
        )
        expected = nodes[X].store.tlog.root(ROGUE, 7)
        for name, n in nodes.items():
            assert n.store.tlog.root(ROGUE, 4) == canonical, name
            assert n.store.tlog.root(ROGUE, 7) == expected, name
            assert n.store.get(branch_a.entry_id) is not None, name
            assert n.store.get(branch_b.entry_id) is None, name
            # The evidence stays, everywhere.
            proofs = [ev.ForkProof.decode(r.data) for r in n.app.tlog.evidence()]
            assert any({p.a, p.b} == {branch_a.to_bytes(), branch_b.to_bytes()} for p in proofs)
            assert ("resolved-fork", ROGUE) in alerts(name), name
            assert ("equivocation", ROGUE) not in alerts(name), name
        # Y held branch B: it sits in Y's voided table, not in its live log.
        voided = nodes[Y].store.resolutions.voided_entries(ROGUE)
        assert [(v, e.entry_id) for v, e in voided] == [(2, branch_b.entry_id)]
        assert nodes[X].store.resolutions.voided_entries(ROGUE) == []
        # Match answers stop flagging ROGUE.
        assert flags(Y, common[0]) == [False]
        assert flags(Y, branch_a) == [False]
        assert flags(Z, more[-1]) == [False]
        assert flags(Y, branch_b) == []  # voided: out of the hash index
        assert flags(X, branch_b) == []
    finally:
        for n in nodes.values():
            if n._server is not None:
                loop.run(n.stop())

    # `ccnode audit` on every node's stopped data: clean, resolution included.
    for name, config in configs.items():
        assert main(["audit", str(config.dir)]) == 0, name
