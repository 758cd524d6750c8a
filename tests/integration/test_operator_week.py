"""What a new operator hit in the first week (issue 15, items 1-10), each
fixed and pinned here: reports over key-only submitters, one process per
directory, liveness by lock, start-up checks, peers, credential hints."""

from __future__ import annotations

import dataclasses
import json
import logging
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import grpc
import pytest

from node.cli import main
from node.config import load_config, new_tls_identity
from node.core.trust import MemberKind, MembersFile
from node.logs import HANDSHAKE_EVENT, HANDSHAKE_LOG_EVERY_S, RateLimit
from node.mesh import Mesh
from node.rpc._pb.consortium.v1 import node_pb2 as pb
from node.rpc._pb.consortium.v1 import node_pb2_grpc as pb_grpc
from node.server import Node
from tests.helpers import LoopThread, Origin, eventually, member, peer_file, write_node_dir

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


def _ccnode(*argv: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """A real ``ccnode`` process (``python -m node``), bounded."""
    return subprocess.run(
        [sys.executable, "-m", "node", *argv],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def test_one_process_per_directory_and_liveness_by_the_lock(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Items 2 and 3, with real processes: a second `serve` on a served
    directory is refused naming the first's pid, and leaves it serving; after
    kill -9 the left-behind node.addr no longer blocks `restore`."""
    with Mesh.create(tmp_path / "mesh", [(GOV, MemberKind.GOVERNMENT)]) as mesh:
        mesh.start()
        (node,) = mesh.nodes
        assert node.process is not None
        directory = node.config.dir
        addr = node.config.addr_file.read_text()

        second = _ccnode("serve", str(directory))
        assert second.returncode == 5, second.stderr
        assert second.stderr.strip() == (
            f"ccnode: error: cannot serve {directory}: {directory} is in use by process "
            f"{node.process.pid} (it holds {directory / 'node.lock'}); stop that process first"
        )
        assert node.config.addr_file.read_text() == addr  # not deleted by the second
        assert main(["status", str(directory)]) == 0  # the first still serves

        assert main(["backup", str(directory), str(tmp_path / "bk")]) == 0
        refused = _ccnode("restore", str(tmp_path / "bk"), str(directory), "--force")
        assert refused.returncode == 5
        assert f"cannot restore into {directory}: {directory} is in use by process" in (
            refused.stderr
        )

        mesh.stop_node(node, kill=True)
        assert node.process.returncode == -signal.SIGKILL
        assert node.config.addr_file.exists()  # what a crash leaves behind
        capsys.readouterr()
        assert main(["status", str(directory)]) == 2
        assert capsys.readouterr().err.strip() == (
            f"ccnode: error: no running node for {directory} (its node.addr is left from a "
            "process that exited); start it with `ccnode serve` or pass --to"
        )
        restored = _ccnode("restore", str(tmp_path / "bk"), str(directory), "--force")
        assert restored.returncode == 0, restored.stderr
        assert not node.config.addr_file.exists()
        mesh.start()  # and it serves again
        assert main(["status", str(directory)]) == 0


def _break_entry_key_mode(d: Path) -> None:
    (d / "keys" / "entry.pem").chmod(0o644)


def _remove_entry_key(d: Path) -> None:
    (d / "keys" / "entry.pem").unlink()


def _break_tls_key_mode(d: Path) -> None:
    (d / "keys" / "tls.key").chmod(0o640)


def _other_roster(d: Path) -> None:
    other = d.parent / "other"
    assert main(["init", str(other), "--id", "other.example", "--kind", "ngo", "--genesis"]) == 0
    (d / "roster.json").write_text((other / "roster.json").read_text())


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (_break_entry_key_mode, "key file {d}/keys/entry.pem is readable by others: chmod 600 it"),
        (_remove_entry_key, "cannot read key file {d}/keys/entry.pem: No such file or directory"),
        (_break_tls_key_mode, "key file {d}/keys/tls.key is readable by others: chmod 600 it"),
        (
            _other_roster,
            "ngo.example is not in roster version 1 ({d}/roster.json) and the node has no "
            "peers to learn a newer roster from: have governance add {d}/member.json to the "
            "roster, then `ccnode roster publish ROSTER DIR`",
        ),
    ],
)
def test_serve_refuses_what_check_config_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fault: Any, message: str
) -> None:
    """Item 4: one set of start-up checks (NodeConfig.preflight), the same
    message from `check-config` and from `serve`, which never starts."""
    d = tmp_path / "n"
    assert main(["init", str(d), "--id", "ngo.example", "--kind", "ngo", "--genesis"]) == 0
    fault(d)
    want = "ccnode: error: " + message.format(d=d)
    capsys.readouterr()
    assert main(["check-config", str(d)]) == 2
    assert capsys.readouterr().err.strip() == want
    served = _ccnode("serve", str(d), timeout=30)  # a real process: bounded if it started
    assert (served.returncode, served.stderr.strip()) == (2, want)
    assert not (d / "node.addr").exists() and not (d / "data").exists()


def test_a_member_not_yet_in_the_roster_but_with_peers_is_warned(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Item 4: a node that has just joined starts (its peers will deliver the
    roster that lists it), and both commands say why its entries are refused."""
    d = tmp_path / "n"
    assert main(["init", str(d), "--id", "ngo.example", "--kind", "ngo", "--genesis"]) == 0
    _other_roster(d)
    (d / "config.toml").write_text(
        (d / "config.toml").read_text() + '\n[[peer]]\nid = "other.example"\n'
        'address = "127.0.0.1:7443"\n'
    )
    capsys.readouterr()
    assert main(["check-config", str(d)]) == 0
    assert capsys.readouterr().err.strip() == (
        f"ccnode: warning: ngo.example is not in roster version 1 ({d}/roster.json): other "
        "nodes refuse its entries until a roster listing it arrives"
    )


def test_peers_add_validates_and_peers_list_and_remove(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Item 7: `peers add` refuses what would break the node later, each with
    a message; `peers list` and `peers remove` round-trip."""
    members = MembersFile.of(
        [
            member(GOV, MemberKind.GOVERNMENT),
            member("platform-one.example"),
            member("gone.example", revoked=True),
        ]
    )
    d = write_node_dir(tmp_path, "platform-one.example", members).dir
    cfg = d / "config.toml"

    def refused(*argv: str) -> str:
        before = cfg.read_text()
        capsys.readouterr()
        code = main(["peers", *argv])
        assert cfg.read_text() == before  # nothing written
        err = capsys.readouterr().err.strip()
        assert code in (2, 4), err
        return err.removeprefix("ccnode: error: ")

    add = ("add", str(d))
    assert refused(*add, "--id", GOV, "--address", "") == (
        "--address: expected host:port with a port 1..65535, got ''"
    )
    assert refused(*add, "--id", GOV, "--address", "127.0.0.1") == (
        "--address: expected host:port with a port 1..65535, got '127.0.0.1'"
    )
    assert refused(*add, "--id", GOV, "--address", "127.0.0.1:0") == (
        "--address: expected host:port with a port 1..65535, got '127.0.0.1:0'"
    )
    assert refused(*add, "--id", "stranger.example", "--address", "127.0.0.1:9") == (
        f"stranger.example is not a member in roster version 1 ({d}/roster.json): "
        "a node accepts peers the roster lists (`ccnode roster show DIR`)"
    )
    assert refused(*add, "--id", "gone.example", "--address", "127.0.0.1:9") == (
        f"gone.example is revoked in roster version 1 ({d}/roster.json): "
        "a node accepts peers the roster lists (`ccnode roster show DIR`)"
    )
    assert refused(*add, "--id", "platform-one.example", "--address", "127.0.0.1:9") == (
        "platform-one.example is this node: a node does not sync from itself"
    )
    gov_addr = tmp_path / "gov.example_ct" / "node.addr"
    assert _run(capsys, *("peers", *add), "--id", GOV, "--address-file", str(gov_addr)) == (
        f"added peer {GOV} (address read from ../gov.example_ct/node.addr); "
        "restart the node to apply\n"
    )
    assert refused(*add, "--id", GOV, "--address", "127.0.0.1:9") == (
        f"{GOV} is already a peer (address read from ../gov.example_ct/node.addr): "
        f"`ccnode peers remove {d} --id {GOV}` first to change it"
    )
    assert _run(capsys, "peers", "list", str(d)) == (
        f"{GOV:34} address read from ../gov.example_ct/node.addr (now: not running)\n"
    )
    assert json.loads(_run(capsys, "peers", "list", str(d), "--json")) == [
        {
            "id": GOV,
            "address": None,
            "address_file": "../gov.example_ct/node.addr",
            "current_address": None,
        }
    ]
    assert refused("remove", str(d), "--id", "ngo.example") == (
        f"ngo.example is not a peer of platform-one.example (peers: {GOV})"
    )
    assert _run(capsys, "peers", "remove", str(d), "--id", GOV) == (
        f"removed peer {GOV}; restart the node to apply\n"
    )
    assert _run(capsys, "peers", "list", str(d)) == f"no peers configured in {cfg}\n"


def test_a_peer_followed_by_its_node_addr_is_found_after_a_restart_on_a_new_port(
    tmp_path: Path, loop: LoopThread, capsys: pytest.CaptureFixture[str]
) -> None:
    """Item 7: a peer restarted on another port is not lost: --address-file
    re-reads its node.addr at every connect."""
    members = MembersFile.of([member(GOV, MemberKind.GOVERNMENT), member("p1.example")])
    gov_cfg = write_node_dir(tmp_path, GOV, members, MemberKind.GOVERNMENT)
    p1_cfg = write_node_dir(tmp_path, "p1.example", members)
    _run(capsys, "peers", "add", str(p1_cfg.dir), "--id", GOV, "--address-file",
         str(gov_cfg.addr_file))  # fmt: skip
    gov, p1 = Node(gov_cfg), Node(load_config(p1_cfg.dir))
    loop.run(gov.start())
    loop.run(p1.start())
    origin = Origin(GOV)
    try:
        loop.run(gov.app.submit_async([origin.next()]))
        eventually(lambda: p1.store.head(GOV).next_seq == 1, what="p1 pulled from gov")
        first = gov.address
        loop.run(gov.stop())
        gov = Node(gov_cfg)
        loop.run(gov.start())
        assert gov.address != first  # port 0: a new free port
        loop.run(gov.app.submit_async([origin.next()]))
        eventually(lambda: p1.store.head(GOV).next_seq == 2, timeout=30, what="p1 found gov again")
    finally:
        loop.run(p1.stop())
        loop.run(gov.stop())


def test_wrong_or_missing_credentials_say_what_is_likely_wrong(
    tmp_path: Path, loop: LoopThread, capsys: pytest.CaptureFixture[str]
) -> None:
    """Item 10: each way of failing the mutual-TLS handshake gets its likely
    cause; a revoked member is told it is revoked, by every call and by an
    alert in its own node's status."""
    gov, p1, other = member(GOV, MemberKind.GOVERNMENT), member("p1.example"), member("x.example")
    gov_roster = [gov, dataclasses.replace(p1, revoked=True), member("stranger.example")]
    gov_cfg = write_node_dir(tmp_path, GOV, gov_roster, MemberKind.GOVERNMENT, insecure=False)
    # p1 has not heard of its revocation; it pulls from gov.
    p1_cfg = write_node_dir(
        tmp_path, "p1.example", [gov, p1], peers=(peer_file(GOV),), insecure=False
    )
    stranger = write_node_dir(tmp_path, "stranger.example", [gov, member("stranger.example")],
                              insecure=False)  # fmt: skip
    # gov's roster pins stranger.example with another certificate than this one's:
    stranger_cert = tmp_path / "stranger.example" / "keys"
    for name in ("tls.key", "tls.crt"):
        (stranger_cert / name).unlink()
    new_tls_identity(stranger_cert / "tls.key", stranger_cert / "tls.crt", "stranger.example", 0)
    alien = write_node_dir(tmp_path, "x.example", [other], insecure=False)
    plain = write_node_dir(tmp_path, "plain.example", [member("plain.example")])
    nodes = [Node(c) for c in (gov_cfg, p1_cfg, plain)]
    for n in nodes:
        loop.run(n.start())
    address, plain_address = nodes[0].address, nodes[2].address

    def fails(*argv: str, code: int = 3) -> str:
        capsys.readouterr()
        assert main(list(argv)) == code
        # The nodes run in this process, so their log records share stderr
        # (and may hit capsys's swapped streams); the command's own output is
        # exactly one error line.
        err = capsys.readouterr().err
        (line,) = [line for line in err.splitlines() if line.startswith("ccnode: error: ")]
        return line

    try:
        err = fails("status", "--to", address, "--insecure")
        assert err.startswith(f"ccnode: error: node at {address}: UNAVAILABLE: ")
        assert err.endswith(
            ". Likely: the node requires mutual TLS: pass the member directory whose key to "
            "connect with (DIR or --dir DIR); --insecure is for plaintext development nodes "
            "only (for grpcurl: -cert DIR/keys/tls.crt -key DIR/keys/tls.key -cacert "
            "NODE_CERT -servername ccnode.member)"
        )
        err = fails("status", str(stranger.dir), "--to", address)
        assert err.startswith(f"ccnode: error: node at {address}: UNAVAILABLE: ")
        assert err.endswith(
            ". Likely: the node did not accept your certificate: your member is not pinned "
            "in that node's roster (not yet added, or its roster is older than yours: "
            "`ccnode roster publish`)"
        )
        err = fails("status", str(alien.dir), "--to", address)
        assert err.endswith(
            ". Likely: that node's certificate is not one your roster pins (a node of "
            "another consortium, or your roster is older than its: `ccnode roster publish`)"
        )
        err = fails("status", str(p1_cfg.dir), "--to", plain_address)
        assert err.endswith(
            ". Likely: that node speaks plaintext (an --insecure development node): use "
            "--insecure without a member directory"
        )
        err = fails("health", "--to", "127.0.0.1:1", "--insecure")
        assert err.endswith(". Likely: nothing listens at that address: is the node running?")

        # The revoked member completes the handshake and is told why, every call:
        err = fails("status", str(p1_cfg.dir), "--to", address, code=2)
        assert err == "ccnode: error: caller p1.example is revoked in roster version 1"

        # and its own node raises an alert from what its peer answers.
        def alerts() -> list[dict[str, str]]:
            status = json.loads(_run(capsys, "status", str(p1_cfg.dir), "--json"))
            return [a for a in status["alerts"] if a["kind"] == "revoked"]

        eventually(lambda: bool(alerts()), timeout=20, what="p1 alerts that gov refuses it")
        (alert,) = alerts()
        assert alert["peer"] == GOV and alert["origin"] == "p1.example"
        assert alert["detail"].startswith(f"peer {GOV} refuses this member as revoked: ") and alert[
            "detail"
        ].endswith("caller p1.example is revoked in roster version 1")
        human = _run(capsys, "status", str(p1_cfg.dir))
        assert f"ALERT revoked: peer {GOV} refuses this member as revoked: " in human
    finally:
        for n in nodes:
            loop.run(n.stop())


def test_handshake_failure_lines_are_rate_limited() -> None:
    """Item 10: one "Handshake failed" record per HANDSHAKE_LOG_EVERY_S; the
    next one after that says how many were held back. Other records pass."""
    now = [100.0]
    limit = RateLimit(HANDSHAKE_EVENT, HANDSHAKE_LOG_EVERY_S, clock=lambda: now[0])

    def record(event: str | None = HANDSHAKE_EVENT) -> logging.LogRecord:
        r = logging.LogRecord(
            "grpc.native", logging.WARNING, "", 0, "%s", ("Handshake failed",), None
        )
        if event:
            r.event = event
        return r

    first = record()
    assert limit.filter(first) and first.suppressed == 0
    assert first.getMessage() == "Handshake failed"
    for _ in range(263):  # what one revoked member produced
        now[0] += 0.1
        assert not limit.filter(record())
    assert limit.filter(record(None))  # not a handshake record: untouched
    now[0] = 100.0 + HANDSHAKE_LOG_EVERY_S
    later = record()
    assert limit.filter(later) and later.suppressed == 263
    assert later.getMessage() == (
        "Handshake failed (and 263 more like it in the last 60 s, not logged)"
    )
    assert not limit.filter(record())


def test_a_node_logs_one_line_for_a_burst_of_failed_handshakes(tmp_path: Path) -> None:
    """Item 10, a real process: five plaintext clients fail the handshake at a
    mutual-TLS node logging JSON; one record says so, not five."""
    with Mesh.create(tmp_path / "mesh", [(GOV, MemberKind.GOVERNMENT)]) as mesh:
        (n,) = mesh.nodes
        dataclasses.replace(n.config, log_json=True).save()
        mesh.start()
        for _ in range(5):
            channel = grpc.insecure_channel(n.address)
            with channel, pytest.raises(grpc.RpcError):
                pb_grpc.NodeServiceStub(channel).Status(pb.StatusRequest(), timeout=5)
        log = n.config.dir / "node.log"

        def failures() -> list[dict[str, Any]]:
            records = [json.loads(x) for x in log.read_text().splitlines() if x.startswith("{")]
            return [r for r in records if r.get("event") == HANDSHAKE_EVENT]

        eventually(lambda: bool(failures()), what="the failed handshakes were logged")
        mesh.stop_node(n)
    (only,) = failures()
    assert only["msg"].startswith("Handshake failed") and only["suppressed"] == 0


def test_wait_ready_gives_up_at_its_deadline_saying_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Item 7: `wait-ready` (the recipe's replacement for `sleep 1`) is bounded."""
    d = tmp_path / "n"
    assert main(["init", str(d), "--id", "ngo.example", "--kind", "ngo", "--genesis"]) == 0
    (d / "node.addr").write_text("127.0.0.1:1\n")  # left by a crash: not a running node
    capsys.readouterr()
    assert main(["wait-ready", str(d), "--timeout", "0.2"]) == 3
    assert capsys.readouterr().err == (
        f"ccnode: error: {d} not ready within 0.2s: no process serves it\n"
    )
