"""Policy commands in process, policy reload by RPC and by SIGHUP (a real process)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from node.core.trust import MemberKind, MembersFile
from node.mesh import Mesh
from node.rpc.operator import is_operator_peer
from node.server import Node
from tests.helpers import LoopThread, eventually, member, write_node_dir
from tests.helpers import run_cli as _run
from tests.unit.test_policy import EXAMPLE

pytestmark = pytest.mark.integration

GOV, P1 = "gov.example/ct", "platform.example"
MD5 = "00112233445566778899aabbccddeeff"
BLOCK_ALL = 'version = 1\ndefault = "review"\n[[rule]]\nname = "block-all"\naction = "block"\n'


def test_policy_check_explains_each_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "policy.toml"
    good.write_text(EXAMPLE)
    out, _ = _run(capsys, "policy", "check", str(good))
    assert out.splitlines()[0] == f"{good}: valid, 5 rule(s); the first rule that matches decides:"
    assert (
        "  3. government-plus-two-platforms: BLOCK when it was submitted by a government member, "
        "and at least 2 distinct members of kind platform endorse it"
    ) in out.splitlines()
    assert "  otherwise: REVIEW" in out.splitlines()

    bad = tmp_path / "bad.toml"
    bad.write_text('version = 1\n[[rule]]\nname = "x"\naction = "block"\nmin_endorsement = 2\n')
    _, err = _run(capsys, "policy", "check", str(bad), code=2)
    assert err.startswith(f"ccnode: error: {bad}: rule #1 'x': unknown key 'min_endorsement'")
    _, err = _run(capsys, "policy", "check", str(tmp_path / "missing.toml"), code=2)
    assert err == f"ccnode: error: cannot read policy file {tmp_path / 'missing.toml'}: " + (
        "No such file or directory\n"
    )


def test_reload_applies_without_restart_and_a_bad_file_keeps_the_old_policy(
    tmp_path: Path, loop: LoopThread, capsys: pytest.CaptureFixture[str]
) -> None:
    members = MembersFile.of([member(GOV, MemberKind.GOVERNMENT), member(P1)])
    config = write_node_dir(tmp_path, P1, members)
    node = Node(config)
    loop.run(node.start())
    d = str(config.dir)
    try:
        out, _ = _run(capsys, "submit", d, "--algo", "md5", "--hash", MD5, "--json")
        entry_id = json.loads(out)["entry_id"]

        def action() -> tuple[str, str]:
            out, _ = _run(capsys, "match", d, "--algo", "md5", "--hash", MD5, "--json")
            (hit,) = json.loads(out)[0]["matches"]
            return hit["recommended_action"], hit["rule"]

        assert action() == ("REVIEW", "(default)")  # no policy file: built-in default
        (config.dir / "policy.toml").write_text(BLOCK_ALL)
        assert action() == ("REVIEW", "(default)")  # not yet reloaded
        out, _ = _run(capsys, "policy", "reload", d)
        assert out.splitlines()[:2] == [
            f"policy reloaded from {config.dir / 'policy.toml'}:",
            "  1. block-all: BLOCK every entry",
        ]
        assert action() == ("BLOCK", "block-all")

        (config.dir / "policy.toml").write_text('version = 1\ndefault = "nuke"\n')
        _, err = _run(capsys, "policy", "reload", d, code=2)
        assert "default: action 'nuke': expected one of block, review, log_only, ignore" in err
        assert action() == ("BLOCK", "block-all")  # the old policy stays

        out, _ = _run(capsys, "policy", "explain", entry_id, d)
        assert "recommended action: BLOCK (rule block-all)" in out
        assert "  1. block-all -> BLOCK: FIRES" in out
    finally:
        loop.run(node.stop())


def test_sighup_reloads_the_policy_of_a_running_process(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Mesh.create(tmp_path / "mesh", [(P1, MemberKind.PLATFORM)]) as mesh:
        (n,) = mesh.nodes
        policy = n.config.dir / "policy.toml"
        policy.write_text(BLOCK_ALL)
        mesh.start()
        assert n.process is not None
        d = str(n.config.dir)
        _run(capsys, "submit", d, "--algo", "md5", "--hash", MD5)

        def action() -> str:
            out, _ = _run(capsys, "match", d, "--algo", "md5", "--hash", MD5, "--json")
            return str(json.loads(out)[0]["matches"][0]["recommended_action"])

        assert action() == "BLOCK"
        policy.write_text(BLOCK_ALL.replace('"block"', '"log_only"'))
        os.kill(n.process.pid, signal.SIGHUP)
        eventually(lambda: action() == "LOG_ONLY", what="SIGHUP reloaded the policy")

        policy.write_text("version = 3\n")
        os.kill(n.process.pid, signal.SIGHUP)
        log = n.config.dir / "node.log"
        eventually(lambda: "policy not reloaded" in log.read_text(), what="bad policy was logged")
        assert n.process.poll() is None
        assert action() == "LOG_ONLY"


@pytest.mark.parametrize(
    ("peer", "operator"),
    [
        ("ipv4:127.0.0.1:5000", True),
        ("ipv4:127.8.9.10:1", True),
        ("ipv6:[::1]:5000", True),
        ("unix:/run/ccnode.sock", True),
        ("ipv4:10.0.0.7:5000", False),
        ("ipv6:[2001:db8::1]:443", False),
        ("ipv4:localhost:5000", False),  # gRPC reports addresses, never names
        ("", False),
        ("garbage", False),
    ],
)
def test_operator_calls_come_from_the_nodes_own_host(peer: str, operator: bool) -> None:
    assert is_operator_peer(peer) is operator


def test_record_action_and_prune_errors(
    tmp_path: Path, loop: LoopThread, capsys: pytest.CaptureFixture[str]
) -> None:
    members = MembersFile.of([member(P1)])
    config = write_node_dir(tmp_path, P1, members)
    node = Node(config)
    loop.run(node.start())
    d = str(config.dir)
    try:
        missing = "ab" * 32
        _, err = _run(capsys, "record-action", d, "--entry", missing, "--action", "removed", code=4)
        assert err == f"ccnode: error: entry {missing} is not stored here\n"
        _, err = _run(capsys, "record-action", d, "--entry", "abc", "--action", "removed", code=2)
        assert err == (
            "ccnode: error: entry id 'abc': expected 8 to 64 hex digits "
            "(the full id or a unique prefix of it)\n"
        )
        out, _ = _run(capsys, "submit", d, "--algo", "md5", "--hash", MD5, "--json")
        entry_id = json.loads(out)["entry_id"]
        _run(capsys, "match", d, "--algo", "md5", "--hash", MD5, "--record")
        _run(capsys, "record-action", d, "--entry", entry_id, "--action", "reviewed")
        out, _ = _run(capsys, "report-actions", d, "--dry-run")
        assert out == f"would report {entry_id[:16]}: 1 matches, 0 blocked at upload, " + (
            "0 removals, 1 reviews\n"
        )
        out, _ = _run(capsys, "matchlog", "prune", d, "--before", "2999-01-01")
        assert out == "pruned 2 match-log events; 0 kept (per-entry totals unchanged)\n"
        out, _ = _run(capsys, "report-actions", d, "--json")
        (row,) = json.loads(out)
        assert (row["matches"], row["reviews"]) == (1, 1)  # totals survive pruning
        _, err = _run(capsys, "matchlog", "prune", d, "--before", "yesterday", code=2)
        assert err.startswith("ccnode: error: date 'yesterday': expected YYYY-MM-DD")
    finally:
        loop.run(node.stop())
