"""`ccnode audit` judges each record by the roster versions the node held,
not only by the newest one (issue 14, item 2).

A government node stores: an entry of a member later revoked outright, a
vote of a member whose ENDORSE role is later removed for its whole log, and
its own checkpoint cosigned by a witness that later loses the WITNESS role.
Roster 2 makes all three changes. Each record was legitimate under roster
1, which the node still stores: the audit of the stopped node finds no
fault. Before, it reported three false ones (exit 7).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from node.cli import main
from node.core.entry import Kind
from node.core.roster import Role, SignedRoster
from node.core.tlog import roster_policy, verify_checkpoint
from node.core.trust import MemberKind, MembersFile
from node.rpc.client import NodeClient
from node.server import Node
from tests.helpers import (
    FAR_FUTURE_MS,
    GOVERNANCE,
    LoopThread,
    Origin,
    eventually,
    member,
    peer_file,
    sign,
    witnessed,
    write_node_dir,
)

pytestmark = pytest.mark.integration

GOV, WIT, WIT2 = "gov.example/ct", "ngo.example/witness", "ngo.example/second"
REVOKED, VOTER = "revoked.example", "ngo.example/voter"


def _members() -> MembersFile:
    return MembersFile.of(
        [
            member(GOV, MemberKind.GOVERNMENT),
            member(WIT, MemberKind.NGO),
            member(WIT2, MemberKind.NGO),
            member(REVOKED),
            member(VOTER, MemberKind.NGO),
        ]
    )


def _v2(v1: SignedRoster) -> SignedRoster:
    roster = v1.roster.next_draft(FAR_FUTURE_MS)
    roster = roster.with_member(dataclasses.replace(roster.member(REVOKED), revoked=True))
    voter = roster.member(VOTER)
    roster = roster.with_member(dataclasses.replace(voter, roles=voter.roles - {Role.ENDORSE}))
    wit = roster.member(WIT)
    roster = roster.with_member(dataclasses.replace(wit, roles=wit.roles - {Role.WITNESS}))
    return sign(SignedRoster.draft(roster), GOVERNANCE[:1])


def test_audit_judges_records_by_the_roster_that_applied(
    tmp_path: Path, loop: LoopThread, capsys: pytest.CaptureFixture[str]
) -> None:
    members = _members()
    v1 = witnessed(members, (WIT, WIT2), 1)
    gov_cfg = write_node_dir(tmp_path, GOV, v1, MemberKind.GOVERNMENT, (peer_file(WIT),))
    wit_cfg = write_node_dir(tmp_path, WIT, v1, MemberKind.NGO, (peer_file(GOV),))
    gov_node, wit_node = Node(gov_cfg), Node(wit_cfg)
    loop.run(gov_node.start())
    loop.run(wit_node.start())
    stopped = False
    try:
        gov, revoked, voter = Origin(GOV), Origin(REVOKED), Origin(VOTER)
        add = gov.next()
        vote = voter.next(kind=Kind.ENDORSE, algorithm="", hash=b"", labels=(), target=add.entry_id)

        async def submit() -> None:
            async with NodeClient(gov_node.address) as c:
                await c.submit([add])
                await c.submit([revoked.next()])
                await c.submit([vote])

        loop.run(submit())
        keys = roster_policy(v1.roster).witness_keys(members)

        def cosigned() -> bool:
            found = gov_node.store.tlog.latest_checkpoint(GOV)
            return found is not None and verify_checkpoint(found[1], members, keys).cosigners == (
                WIT,
            )

        eventually(cosigned, timeout=20, what="GOV's checkpoint cosigned by the witness")

        async def offer() -> None:
            async with NodeClient(gov_node.address) as c:
                await c.offer_roster([_v2(v1)])

        loop.run(offer())
        assert gov_node.rosters.version == 2
        loop.run(gov_node.stop())
        loop.run(wit_node.stop())
        stopped = True

        capsys.readouterr()
        code = main(["audit", str(gov_cfg.dir)])
        out = capsys.readouterr().out
        assert "FAULT" not in out, out
        assert code == 0
        assert "0 fault(s)" in out
    finally:
        if not stopped:
            loop.run(gov_node.stop())
            loop.run(wit_node.stop())
