"""Four real node processes over mutual TLS adopt roster N+1 with a fifth member.

The launcher holds the consortium's three governance keys (threshold 2). A
key-only government desk (keys, no node) submits to a platform's node; a
fifth platform starts with roster 1 as its anchor, is refused by the mesh
until governance signs roster 2 listing it (two separate key holders, their
signatures merged), then fetches roster 2, syncs everything, and the
others accept its entries.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from node.cli import main
from node.core.roster import MemberKind, loads_file
from node.core.trust import check_provenance
from node.mesh import Mesh, MeshNode
from node.rpc import convert
from tests.helpers import eventually

pytestmark = pytest.mark.integration

NODES = [
    ("gov.example/ct", MemberKind.GOVERNMENT),
    ("platform-one.example", MemberKind.PLATFORM),
    ("platform-two.example", MemberKind.PLATFORM),
    ("ngo.example", MemberKind.NGO),
]
DESK = "gov.example/desk"
FIFTH = "platform-five.example"


def _status(node: MeshNode) -> Any:
    async def go() -> Any:
        async with node.client(deadline_s=5.0) as c:
            return await c.status()

    return asyncio.run(go())


def _heads(node: MeshNode) -> dict[str, int]:
    return {h.origin: h.next_seq for h in _status(node).heads}


def _submit(member_dir: Path, *extra: str, capsys: pytest.CaptureFixture[str], i: int) -> str:
    value = hashlib.md5(f"{member_dir.name}/{i}".encode()).hexdigest()
    capsys.readouterr()
    args = ["submit", str(member_dir), *extra, "--algo", "md5", "--hash", value, "--json"]
    assert main([*args, "--label", "type:video"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["outcome"] == "accepted"
    return str(out["entry_id"])


def _verified_everywhere(nodes: list[MeshNode], entry_ids: list[str]) -> None:
    """Each node serves each entry byte-identical, and it verifies against
    that node's own roster, independently of the node."""

    async def check(node: MeshNode) -> None:
        trust = node.config.members()
        async with node.client(deadline_s=5.0) as c:
            for eid in entry_ids:
                got = await c.get_entry(bytes.fromhex(eid))
                entry = convert.entry_from_pb(got.entry)
                assert entry.entry_id.hex() == eid
                check_provenance(trust, entry)
                assert got.provenance.origin_status == "active"

    for node in nodes:
        asyncio.run(check(node))


def test_mesh_adopts_roster_n_plus_1_and_a_fifth_member_joins(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "mesh"
    with Mesh.create(root, NODES, "line", key_only=[(DESK, MemberKind.GOVERNMENT)]) as mesh:
        mesh.start()
        four = list(mesh.nodes)
        desk = mesh.submitters[0]

        # The key-only desk submits at platform-two's node; the government at its own.
        desk_ids = [
            _submit(desk.config.dir, "--to", four[2].address, capsys=capsys, i=i) for i in range(3)
        ]
        gov_ids = [_submit(four[0].config.dir, capsys=capsys, i=i) for i in range(2)]
        for node in four:
            eventually(
                lambda node=node: (
                    _heads(node).get(DESK) == 3 and _heads(node).get(NODES[0][0]) == 2
                ),
                timeout=30,
                interval=0.1,
                what=f"{node.config.id} has the desk's and the government's entries",
            )
        _verified_everywhere(four, desk_ids + gov_ids)

        # A fifth platform starts with roster 1: the mesh refuses its handshakes.
        roster_1 = four[0].config.signed_roster()
        assert roster_1 is not None and roster_1.version == 1
        fifth = mesh.add_node(FIFTH, MemberKind.PLATFORM, peers=[NODES[3][0]], roster=roster_1)
        mesh.start_node(fifth)
        mesh.wait_ready()
        assert _heads(fifth) == {}

        # Governance drafts roster 2 with the fifth's card and address; two
        # separate key holders sign copies of the draft; the copies merge.
        draft = tmp_path / "roster-2.json"
        g = sorted((root / "governance").glob("g*.pem"))
        card = fifth.config.dir / "member.json"
        assert (
            main(
                [
                    "roster",
                    "add-member",
                    str(four[0].config.roster_path),
                    "--card",
                    str(card),
                    "--address",
                    fifth.address,
                    "--out",
                    str(draft),
                ]
            )
            == 0
        )
        copy = tmp_path / "roster-2-copy.json"
        shutil.copy(draft, copy)
        assert main(["roster", "sign", str(draft), "--key", str(g[0])]) == 0
        assert main(["roster", "verify", str(draft), "--prev", str(four[0].config.dir)]) == 2
        assert "signed by 1/3 governance keys of version 1: needs 2" in capsys.readouterr().err
        assert main(["roster", "sign", str(copy), "--key", str(g[2])]) == 0
        assert main(["roster", "sign", str(draft), "--merge", str(copy)]) == 0
        assert main(["roster", "verify", str(draft), "--prev", str(four[0].config.dir)]) == 0

        # Published at one node; the others hear of it on their streams.
        assert main(["roster", "publish", str(draft), str(four[0].config.dir)]) == 0
        assert "adopted roster version 2" in capsys.readouterr().out
        for node in [*four, fifth]:
            eventually(
                lambda node=node: _status(node).roster_version == 2,
                timeout=30,
                interval=0.1,
                what=f"{node.config.id} adopted roster 2",
            )
            assert loads_file(node.config.roster_path.read_text()).version == 2

        # The fifth syncs everything; its own entries reach all four.
        eventually(
            lambda: _heads(fifth) == _heads(four[0]),
            timeout=30,
            interval=0.1,
            what="the fifth member synced everything",
        )
        _verified_everywhere([fifth], desk_ids + gov_ids)
        fifth_ids = [_submit(fifth.config.dir, capsys=capsys, i=i) for i in range(2)]
        more_desk = [_submit(desk.config.dir, "--to", four[1].address, capsys=capsys, i=9)]
        for node in [*four, fifth]:
            eventually(
                lambda node=node: _heads(node).get(FIFTH) == 2 and _heads(node).get(DESK) == 4,
                timeout=30,
                interval=0.1,
                what=f"{node.config.id} has the fifth's and the desk's new entries",
            )
        _verified_everywhere([*four, fifth], fifth_ids + more_desk)
