"""The CLI in process through main([...]), against real nodes; demo as a subprocess."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from node.cli import main
from node.config import PeerConfig, load_config
from node.server import Node
from tests.helpers import LoopThread, eventually

pytestmark = pytest.mark.integration

PDQ = "f" * 16 + "0" * 16 + "a5" * 16


def _init(root: Path, name: str, kind: str, *extra: str) -> Path:
    d = root / name.replace("/", "_")
    assert main(["init", str(d), "--id", name, "--kind", kind, "--jurisdiction", "FR", *extra]) == 0
    return d


def test_init_submit_match_status_across_two_nodes(
    tmp_path: Path, loop: LoopThread, capsys: pytest.CaptureFixture[str]
) -> None:
    gov = _init(tmp_path, "gov.fr/pharos", "government", "--genesis")
    plat = _init(tmp_path, "platform.example", "platform")
    for name in ("entry.pem", "checkpoint.pem", "tls.key", "governance.pem"):
        assert stat.S_IMODE((gov / "keys" / name).stat().st_mode) == 0o600

    # The founding member's governance adds the platform to the roster, signs
    # version 2 and installs it at both (stopped) nodes.
    draft = tmp_path / "roster-2.json"
    roster_1 = gov / "roster.json"
    assert (
        main(
            [
                "roster",
                "add-member",
                str(roster_1),
                "--card",
                str(plat / "member.json"),
                "--out",
                str(draft),
            ]
        )
        == 0
    )
    assert main(["roster", "sign", str(draft), "--key", str(gov / "keys" / "governance.pem")]) == 0
    assert main(["roster", "verify", str(draft), "--prev", str(gov)]) == 0
    assert main(["roster", "publish", str(draft), str(gov)]) == 0
    assert main(["roster", "publish", str(draft), str(plat)]) == 0
    assert load_config(plat).roster().version == 2

    nodes = [Node(load_config(gov))]
    loop.run(nodes[0].start())
    assert (
        main(["peers", "add", str(plat), "--id", "gov.fr/pharos", "--address", nodes[0].address])
        == 0
    )
    nodes.append(Node(load_config(plat)))
    loop.run(nodes[1].start())
    try:
        capsys.readouterr()
        assert (
            main(
                [
                    "submit",
                    str(gov),
                    "--algo",
                    "pdq",
                    "--hash",
                    PDQ,
                    "--label",
                    "behaviour:glorification",
                    "--label",
                    "type:image",
                    "--incident",
                    "christchurch-2019-03-15",
                    "--json",
                ]
            )
            == 0
        )
        out = json.loads(capsys.readouterr().out)
        assert out["outcome"] == "accepted"

        eventually(
            lambda: nodes[1].store.get(bytes.fromhex(out["entry_id"])) is not None,
            what="entry reached the platform",
        )
        assert main(["match", str(plat), "--algo", "PDQ", "--hash", PDQ, "--json"]) == 0
        (hit,) = json.loads(capsys.readouterr().out)[0]["matches"]
        assert hit["origin"] == "gov.fr/pharos"
        assert hit["origin_kind"] == "government"
        assert hit["jurisdiction"] == "FR"
        assert hit["labels"] == ["behaviour:glorification", "type:image"]
        assert hit["entry_id"] == out["entry_id"]

        # Retract, then the platform no longer matches it (unless asked).
        assert main(["submit", str(gov), "--retract", out["entry_id"]]) == 0
        eventually(lambda: nodes[1].store.head("gov.fr/pharos").next_seq == 2)
        capsys.readouterr()
        assert main(["match", str(plat), "--algo", "pdq", "--hash", PDQ]) == 0
        assert capsys.readouterr().out.strip() == f"PDQ {PDQ[:16]}: no match"
        assert (
            main(
                [
                    "match",
                    str(plat),
                    "--algo",
                    "pdq",
                    "--hash",
                    PDQ,
                    "--include-retracted",
                    "--json",
                ]
            )
            == 0
        )
        (hit,) = json.loads(capsys.readouterr().out)[0]["matches"]
        assert hit["retracted"] is True

        assert main(["status", str(plat), "--json"]) == 0
        status = json.loads(capsys.readouterr().out)
        assert status["heads"]["gov.fr/pharos"]["next_seq"] == 2
        assert status["peers"][0]["id"] == "gov.fr/pharos"
        assert status["peers"][0]["lag_entries"] == 0

        # Submitting straight to another member's node, as the government's
        # TLS identity (pinned in the roster): the platform verifies and stores.
        assert (
            main(
                [
                    "submit",
                    str(gov),
                    "--to",
                    nodes[1].address,
                    "--algo",
                    "md5",
                    "--hash",
                    "ab" * 16,
                ]
            )
            == 0
        )
        assert capsys.readouterr().out.startswith("accepted: entry ")
    finally:
        for n in nodes:
            loop.run(n.stop())


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (
            ["match", "--to", "127.0.0.1:1", "--algo", "pdq", "--hash", "zz" * 32],
            2,
            "ccnode: error: PDQ hash is not hex: expected 32 bytes (64 hex digits), "
            "got 'zzzzzzzzzzzzzzzz'",
        ),
        (
            ["match", "--to", "127.0.0.1:1", "--algo", "pdq", "--hash", "ab" * 31],
            2,
            "ccnode: error: PDQ hash has 31 bytes: expected 32 bytes (64 hex digits)",
        ),
        (
            ["match", "--to", "127.0.0.1:1", "--algo", "pdq", "--hash", "abc"],
            2,
            "ccnode: error: PDQ hash has 3 hex digits (odd): expected 32 bytes (64 hex digits)",
        ),
        (
            ["match", "--to", "127.0.0.1:1", "--algo", "whirlpool", "--hash", "ab"],
            2,
            "ccnode: error: unknown hash algorithm 'WHIRLPOOL': expected one of PDQ, MD5, "
            "SHA256, VIDEO_MD5, TMK_PDQF, VPDQ",
        ),
        (
            ["status", "/nonexistent/dir"],
            2,
            "ccnode: error: cannot read /nonexistent/dir/config.toml: No such file or directory "
            "(run `ccnode init` first?)",
        ),
        (
            ["init", "/tmp/x", "--id", "Not Valid", "--kind", "ngo"],
            2,
            "ccnode: error: bad member id 'Not Valid': expected lower-case '<domain>' or "
            "'<domain>/<unit>', e.g. 'gov.nz/dia'",
        ),
    ],
)
def test_user_errors_are_one_line_with_exit_codes(
    argv: list[str], code: int, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == code
    err = capsys.readouterr().err
    assert err.strip() == message
    assert "Traceback" not in err


def test_node_down_is_exit_3(capsys: pytest.CaptureFixture[str]) -> None:
    # Port 1 on loopback: nothing listens there, so the connection is refused.
    assert main(["status", "--to", "127.0.0.1:1", "--insecure"]) == 3
    err = capsys.readouterr().err
    assert err.startswith("ccnode: error: node at 127.0.0.1:1: UNAVAILABLE")
    assert len(err.strip().splitlines()) == 1


def test_submit_with_unknown_label_is_refused_locally(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = _init(tmp_path, "ngo.example", "ngo")
    (d / "node.addr").write_text("127.0.0.1:1\n")
    assert (
        main(["submit", str(d), "--algo", "md5", "--hash", "ab" * 16, "--label", "behaviour:memes"])
        == 2
    )
    assert "unknown label 'behaviour:memes'" in capsys.readouterr().err


def test_a_pre_roster_node_directory_is_told_how_to_migrate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "config.toml").write_text(
        'id = "ngo.example"\nkind = "ngo"\njurisdiction = "FR"\nmembers_file = "members.toml"\n'
    )
    assert main(["serve", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "'members_file' is retired: membership now comes from a signed roster" in err


def test_peer_config_round_trips(tmp_path: Path) -> None:
    d = _init(tmp_path, "ngo.example", "ngo", "--genesis")
    (d / "roster.json").write_text((_roster_with(tmp_path, "gov.fr/pharos", d)).read_text())
    assert main(["peers", "add", str(d), "--id", "gov.fr/pharos", "--address", "127.0.0.1:9"]) == 0
    assert load_config(d).peers == (PeerConfig("gov.fr/pharos", address="127.0.0.1:9"),)


def _roster_with(root: Path, other: str, d: Path) -> Path:
    """d's genesis roster plus ``other``'s card, signed: version 2."""
    o = _init(root, other, "government")
    out = root / "roster-2.json"
    roster = str(d / "roster.json")
    card = str(o / "member.json")
    assert main(["roster", "add-member", roster, "--card", card, "--out", str(out)]) == 0
    assert main(["roster", "sign", str(out), "--key", str(d / "keys" / "governance.pem")]) == 0
    return out


@pytest.mark.slow
def test_demo_runs_as_a_subprocess_and_leaves_nothing_running(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "node", "demo", "--dir", str(tmp_path / "mesh")],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.count("signature verified against the submitter's key; bytes identical: yes") == 3
    assert "All nodes stopped." in out
    assert not list((tmp_path / "mesh").rglob("node.addr"))  # every node shut down cleanly
