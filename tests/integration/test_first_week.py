"""Issue 15 (an operator's first week), items 11-23: what misled new users."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from node.cli import main
from node.config import load_config
from node.core.roster import Roster

pytestmark = pytest.mark.integration


# -- item 13: init sets no jurisdiction it was not given ---------------------------


def test_init_government_needs_a_jurisdiction(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = tmp_path / "gov"
    assert main(["init", str(d), "--id", "gov.example/ct", "--kind", "government"]) == 2
    assert capsys.readouterr().err.strip() == (
        "ccnode: error: a government member needs --jurisdiction CC (ISO 3166-1 alpha-2, "
        "e.g. NZ): policy rules and reports group governments by it"
    )
    assert not d.exists()


def test_init_leaves_a_platforms_jurisdiction_empty(tmp_path: Path) -> None:
    d = tmp_path / "plat"
    argv = ["init", str(d), "--id", "platform.example", "--kind", "platform", "--genesis"]
    assert main(argv) == 0
    assert load_config(d).jurisdiction == ""
    assert json.loads((d / "member.json").read_text())["jurisdiction"] == ""
    # The signed roster carries "no jurisdiction" and reads it back as such.
    roster = load_config(d).roster()
    (member,) = roster.members
    assert member.jurisdiction == ""
    assert Roster.decode(roster.encode()).members[0].jurisdiction == ""
    assert main(["roster", "verify", str(d / "roster.json")]) == 0
