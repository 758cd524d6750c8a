"""Checkpoints, witnesses and "settled" across real nodes.

GOV publishes; NGO and P1 witness (the roster gives them the WITNESS role,
threshold 2); P2 only reads. GOV's node
signs a checkpoint after each submission, asks both witnesses to cosign it,
and the cosigned note travels with Pull to everyone.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from node.core import merkle
from node.core.tlog import log_name, roster_policy, verify_checkpoint
from node.core.trust import MemberKind, MembersFile
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

GOV, NGO, P1, P2 = "gov.example/ct", "ngo.example", "platform-one.example", "platform-two.example"


def _members() -> MembersFile:
    return MembersFile.of(
        [
            member(GOV, MemberKind.GOVERNMENT),
            member(NGO, MemberKind.NGO),
            member(P1),
            member(P2),
        ]
    )


def test_witness_cosignatures_settle_entries_everywhere(tmp_path: Path, loop: LoopThread) -> None:
    members = _members()
    roster = witnessed(members, (NGO, P1), 2)
    configs = {
        GOV: write_node_dir(
            tmp_path, GOV, roster, MemberKind.GOVERNMENT, (peer_file(NGO), peer_file(P1))
        ),
        NGO: write_node_dir(tmp_path, NGO, roster, MemberKind.NGO, (peer_file(GOV),)),
        P1: write_node_dir(tmp_path, P1, roster, peers=(peer_file(GOV),)),
        P2: write_node_dir(tmp_path, P2, roster, peers=(peer_file(GOV),)),
    }
    nodes = {name: Node(c) for name, c in configs.items()}
    for name in (GOV, NGO, P2):  # P1, the second witness, starts later
        loop.run(nodes[name].start())
    gov = Origin(GOV)
    entries = [gov.next() for _ in range(5)]
    witness_keys = roster_policy(roster.roster).witness_keys(members)
    assert set(witness_keys) == {NGO, P1}

    async def submit(batch: list) -> None:  # type: ignore[type-arg]
        async with NodeClient(nodes[GOV].address) as c:
            await c.submit(batch)

    async def provenance(name: str, index: int) -> tuple[bool, bool]:
        e = entries[index]
        async with NodeClient(nodes[name].address) as c:
            response = await c.match([(e.body.algorithm, e.body.hash)])
        (m,) = response.results[0].matches
        return m.provenance.settled, m.provenance.origin_equivocated

    def cosigners(name: str) -> tuple[str, ...]:
        found = nodes[name].store.tlog.latest_checkpoint(GOV)
        if found is None:
            return ()
        return verify_checkpoint(found[1], members, witness_keys).cosigners

    try:
        loop.run(submit(entries))
        # One witness of two: P2 holds the entries and the checkpoint, not settled.
        eventually(
            lambda: cosigners(P2) == (NGO,), what="P2 holds GOV's checkpoint cosigned by NGO"
        )
        assert nodes[P2].store.tlog.latest_checkpoint(GOV) is not None
        assert loop.run(provenance(P2, 4)) == (False, False)

        loop.run(nodes[P1].start())
        eventually(lambda: cosigners(P2) == (NGO, P1), what="both cosignatures reach P2")
        assert loop.run(provenance(P2, 4)) == (True, False)
        assert loop.run(provenance(GOV, 0)) == (True, False)
        assert nodes[NGO].store.tlog.witnessed(GOV).size == 5

        # Grow the log: the witnesses check consistency 5 -> 8 and cosign again.
        more = [gov.next() for _ in range(3)]
        entries.extend(more)
        loop.run(submit(more))
        eventually(
            lambda: (
                nodes[P2].store.tlog.latest_checkpoint(GOV) is not None
                and nodes[P2].store.tlog.latest_checkpoint(GOV)[0] == 8  # type: ignore[index]
                and cosigners(P2) == (NGO, P1)
            ),
            what="P2 holds the cosigned checkpoint of size 8",
        )
        assert loop.run(provenance(P2, 7)) == (True, False)
        assert nodes[P1].store.tlog.witnessed(GOV).size == 8

        # Proofs served by a third node verify against the origin-signed roots.
        async def proofs() -> None:
            async with NodeClient(nodes[P2].address) as c:
                got = await c.get_checkpoint(GOV)
                new = verify_checkpoint(got.checkpoint, members, witness_keys)
                assert got.settled_checkpoint == got.checkpoint
                assert (new.size, new.cosigners) == (8, (NGO, P1))
                assert new.checkpoint.origin == log_name(GOV)
                for seq in range(8):
                    path = await c.inclusion_proof(GOV, seq, 8)
                    leaf = merkle.leaf_hash(entries[seq].to_bytes())
                    merkle.verify_inclusion(leaf, seq, 8, path, new.root)
                old_text = nodes[P2].store.tlog.checkpoint_at(GOV, 5)
                assert old_text is not None
                old = verify_checkpoint(old_text, members, witness_keys)
                path = await c.consistency_proof(GOV, 5, 8)
                merkle.verify_consistency(5, 8, path, old.root, new.root)
                status = await c.status()
                (head,) = [h for h in status.heads if h.origin == GOV]
                assert (head.next_seq, head.checkpoint_size, head.settled_size) == (8, 8, 8)
                assert list(status.alerts) == []

        loop.run(proofs())
    finally:
        for n in nodes.values():
            if n._server is not None:
                loop.run(n.stop())
