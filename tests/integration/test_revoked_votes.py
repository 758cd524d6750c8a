"""Votes of a member revoked since (issue 14, item 3).

Rule (docs/policy.md): a vote counts only if the current roster still
accepts it, judged by its seq like any entry. A revoked member's votes up
to its cut-off count and are flagged ``revoked`` in the vote record; its
later ones, and every vote of a member revoked with no cut-off, do not.
Checked through the real Match answer and `ccnode policy explain`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from node.cli import main
from node.core.entry import Kind, SignedEntry
from node.core.payloads import DisputeReason, encode_dispute
from node.core.roster import SignedRoster
from node.core.trust import MemberKind, MembersFile
from node.rpc._pb.consortium.v1 import node_pb2 as pb
from node.rpc.client import NodeClient
from node.server import Node
from tests.helpers import (
    FAR_FUTURE_MS,
    GOVERNANCE,
    LoopThread,
    Origin,
    genesis,
    member,
    sign,
    write_node_dir,
)

pytestmark = pytest.mark.integration

GOV, P1 = "gov.example/ct", "platform-one.example"
CUT, GONE = "platform-cut.example", "platform-gone.example"
POLICY = """version = 1
default = "review"
[[rule]]
name = "two-endorsements"
action = "block"
min_endorsements = 2
"""


def _members() -> MembersFile:
    return MembersFile.of(
        [member(GOV, MemberKind.GOVERNMENT), member(P1), member(CUT), member(GONE)]
    )


def _v2(v1: SignedRoster) -> SignedRoster:
    """CUT revoked after its seq 0; GONE revoked with no cut-off."""
    roster = v1.roster.next_draft(FAR_FUTURE_MS)
    cut = roster.member(CUT)
    keys = tuple(dataclasses.replace(k, valid_until_seq=0) for k in cut.entry_keys)
    roster = roster.with_member(dataclasses.replace(cut, revoked=True, entry_keys=keys))
    roster = roster.with_member(dataclasses.replace(roster.member(GONE), revoked=True))
    return sign(SignedRoster.draft(roster), GOVERNANCE[:1])


def _vote(o: Origin, kind: Kind, target: SignedEntry) -> SignedEntry:
    payload = encode_dispute(DisputeReason.OTHER) if kind == Kind.DISPUTE else b""
    return o.next(
        kind=kind, algorithm="", hash=b"", labels=(), target=target.entry_id, payload=payload
    )


def test_revoked_members_votes_count_only_before_the_cut_off(
    tmp_path: Path, loop: LoopThread, capsys: pytest.CaptureFixture[str]
) -> None:
    v1 = genesis(_members())
    config = write_node_dir(tmp_path, P1, v1)
    (config.dir / "policy.toml").write_text(POLICY)
    node = Node(config)
    loop.run(node.start())
    try:
        gov, p1, cut, gone = Origin(GOV), Origin(P1), Origin(CUT), Origin(GONE)
        first, second = gov.next(), gov.next()
        entries = [
            first,
            second,
            _vote(cut, Kind.ENDORSE, first),  # CUT seq 0: before its cut-off
            _vote(cut, Kind.DISPUTE, second),  # CUT seq 1: after it
            _vote(gone, Kind.ENDORSE, first),  # GONE: no cut-off
            _vote(gone, Kind.DISPUTE, second),
            _vote(p1, Kind.ENDORSE, second),
        ]

        async def submit_and_revoke() -> None:
            async with NodeClient(node.address) as c:
                for e in entries:
                    await c.submit([e])
                await c.offer_roster([_v2(v1)])

        loop.run(submit_and_revoke())
        assert node.rosters.version == 2

        async def provenance(e: SignedEntry) -> pb.Provenance:
            async with NodeClient(node.address) as c:
                response = await c.match([("MD5", e.body.hash)])
            (m,) = response.results[0].matches
            return m.provenance

        p = loop.run(provenance(first))
        assert [(v.member, v.vote, v.revoked) for v in p.votes] == [(CUT, "endorse", True)]
        assert [(t.member_kind, t.count) for t in p.endorsements] == [("platform", 1)]
        p = loop.run(provenance(second))
        assert [(v.member, v.vote, v.revoked) for v in p.votes] == [(P1, "endorse", False)]
        assert list(p.disputes) == []

        capsys.readouterr()
        assert main(["policy", "explain", first.entry_id.hex(), str(config.dir)]) == 0
        out = capsys.readouterr().out
        assert "recommended action: REVIEW (rule (default))" in out
        assert (
            f"at least 2 distinct members endorse it (got: 1 counted: {CUT} (platform, NZ, "
            "revoked: signed before its cut-off))"
        ) in out
        assert f"  vote: endorse by {CUT} (revoked: signed before its cut-off)" in out
        assert GONE not in out
    finally:
        loop.run(node.stop())
