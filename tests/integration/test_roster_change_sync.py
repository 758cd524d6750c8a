"""A routine roster change must not partition the federation (issue 14, item 1).

Node A stores entries legitimately: votes from a member that then loses its
ENDORSE role, entries of a member then revoked with a cut-off, and of one
revoked outright. Governance publishes roster 2. Node B, which lacked all
of it, starts later on roster 1 and syncs from A: it fetches roster 2, takes
every entry roster 2 still allows (judged by each entry's seq against the
change's recorded cut-off), skips the revoked member's unstored entries
without calling A a bad peer, and gets A's own later entries too.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from node.config import PeerConfig
from node.core.entry import Kind, SignedEntry
from node.core.roster import EntryKey, Role, SignedRoster, raw_public_key
from node.core.trust import MemberKind, MembersFile
from node.errors import ProvenanceError
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
    sign,
    signer_for,
    write_node_dir,
)

pytestmark = pytest.mark.integration

GOV, P1 = "gov.example/ct", "platform-one.example"
VOTER, CUT, GONE = "ngo.example/voter", "platform-cut.example", "platform-gone.example"
ROTATED = "platform-rotated.example"


def _members() -> MembersFile:
    return MembersFile.of(
        [
            member(GOV, MemberKind.GOVERNMENT),
            member(P1),
            member(VOTER, MemberKind.NGO),
            member(CUT),
            member(GONE),
            member(ROTATED),
        ]
    )


def _v2(v1: SignedRoster) -> SignedRoster:
    """VOTER loses ENDORSE after its seq 2; CUT is revoked after its seq 1;
    GONE is revoked with no cut-off (nothing a node lacks is taken);
    ROTATED's key is removed (revoke-key without a cut-off) for a new one."""
    roster = v1.roster.next_draft(FAR_FUTURE_MS)
    voter = roster.member(VOTER)
    roster = roster.with_member(
        dataclasses.replace(
            voter, roles=voter.roles - {Role.ENDORSE}, earlier_roles=((2, voter.roles),)
        )
    )
    cut = roster.member(CUT)
    keys = tuple(dataclasses.replace(k, valid_until_seq=1) for k in cut.entry_keys)
    roster = roster.with_member(dataclasses.replace(cut, revoked=True, entry_keys=keys))
    roster = roster.with_member(dataclasses.replace(roster.member(GONE), revoked=True))
    new_key = EntryKey(raw_public_key(signer_for(ROTATED + "#2").public_key))
    roster = roster.with_member(dataclasses.replace(roster.member(ROTATED), entry_keys=(new_key,)))
    return sign(SignedRoster.draft(roster), GOVERNANCE[:1])


async def _submit(address: str, entries: list[SignedEntry]) -> None:
    async with NodeClient(address) as c:
        await c.submit(entries)


def test_a_roster_change_does_not_partition_nodes(tmp_path: Path, loop: LoopThread) -> None:
    v1 = genesis(_members())
    a = Node(write_node_dir(tmp_path, GOV, v1, MemberKind.GOVERNMENT))
    loop.run(a.start())
    b: Node | None = None
    try:
        gov, voter, cut, gone = Origin(GOV), Origin(VOTER), Origin(CUT), Origin(GONE)
        adds = [gov.next() for _ in range(5)]
        loop.run(_submit(a.address, adds))
        votes = [
            voter.next(kind=Kind.ENDORSE, algorithm="", hash=b"", labels=(), target=e.entry_id)
            for e in adds[:3]
        ]
        loop.run(_submit(a.address, votes))
        loop.run(_submit(a.address, [cut.next() for _ in range(2)]))
        loop.run(_submit(a.address, [gone.next() for _ in range(2)]))
        loop.run(_submit(a.address, [Origin(ROTATED).next()]))

        v2 = _v2(v1)
        loop.run(_offer(a.address, v2))
        assert a.rosters.version == 2
        later = [gov.next() for _ in range(2)]
        loop.run(_submit(a.address, later))  # A's own entries after the change

        b = Node(write_node_dir(tmp_path, P1, v1, peers=(PeerConfig(GOV, a.address),)))
        loop.run(b.start())
        node_b = b
        want = {GOV: 7, VOTER: 3, CUT: 2}
        eventually(
            lambda: {o: node_b.store.head(o).next_seq for o in want} == want,
            timeout=20,
            what="B holds everything roster 2 still allows",
        )
        assert b.rosters.version == 2
        assert b.store.head(GONE).next_seq == 0  # revoked outright: not taken
        assert b.store.head(ROTATED).next_seq == 0  # its key was removed: not taken
        state = b.sync.states[GOV]
        assert state.refused == 0  # A was never taken for a bad peer
        eventually(lambda: state.withheld >= 2, what="GONE's and ROTATED's entries held back")
        assert b.store.evidence() == []

        # The change still applies to new entries: VOTER's next vote is refused.
        late_vote = voter.next(
            kind=Kind.ENDORSE, algorithm="", hash=b"", labels=(), target=adds[4].entry_id
        )
        with pytest.raises(ProvenanceError, match="ENDORSE entries need the ENDORSE role"):
            loop.run(_submit(a.address, [late_vote]))
    finally:
        if b is not None:
            loop.run(b.stop())
        loop.run(a.stop())


async def _offer(address: str, signed: SignedRoster) -> None:
    async with NodeClient(address) as c:
        await c.offer_roster([signed])
