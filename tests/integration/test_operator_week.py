"""What a new operator hit in the first week (issue 15, items 1-10), each
fixed and pinned here: reports over key-only submitters, one process per
directory, liveness by lock, start-up checks, peers, credential hints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from node.cli import main
from node.core.trust import MemberKind, MembersFile
from node.server import Node
from tests.helpers import LoopThread, Origin, eventually, member, write_node_dir

pytestmark = pytest.mark.integration

GOV, DESK = "gov.example/ct", "gov.example/desk"
INCIDENT = "christchurch-2019-03-15"


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    capsys.readouterr()
    assert main(list(argv)) == 0, capsys.readouterr().err
    return capsys.readouterr().out


def test_reports_cover_a_key_only_submitter_by_its_signed_head(
    tmp_path: Path, loop: LoopThread, capsys: pytest.CaptureFixture[str]
) -> None:
    """Item 1: a desk with keys and no node signs no checkpoints; reports still
    run, and say the desk's entries are covered by its signed head entry."""
    members = MembersFile.of(
        [
            member(GOV, MemberKind.GOVERNMENT),
            member(DESK, MemberKind.GOVERNMENT, checkpoint_key=b""),
        ]
    )
    config = write_node_dir(tmp_path, GOV, members, MemberKind.GOVERNMENT)
    node = Node(config)
    loop.run(node.start())
    gov = str(config.dir)
    try:
        desk = Origin(DESK)
        entries = [desk.next(incident=INCIDENT) for _ in range(2)]
        loop.run(node.app.submit_async(entries))
        _run(capsys, "submit", gov, "--algo", "md5", "--hash", "ab" * 16, "--incident", INCIDENT)
        eventually(lambda: node.app.tlog.sizes()[GOV][0] == 1, what="gov signed a checkpoint")

        doc = json.loads(_run(capsys, "incident", "report", INCIDENT, gov, "--format", "json"))
        log = {c["origin"]: c for c in doc["log"]}
        assert log[DESK]["size"] == 2 and log[DESK]["checkpoint"] is None
        assert log[DESK]["covered_by"] == "signed head entry (no checkpoint)"
        assert log[DESK]["head_id"] == entries[-1].entry_id.hex()
        assert log[GOV]["covered_by"] == "signed checkpoint"
        assert {h["entry_id"] for h in doc["hashes"]} >= {e.entry_id.hex() for e in entries}

        md = _run(capsys, "transparency-report", gov, "--since", "2000-01-01")
        assert f"| {DESK} | 2 |" in md
        assert "signed head entry (no checkpoint)" in md
        assert "covered by its head entry" in md
    finally:
        loop.run(node.stop())
