"""Real node processes: graceful shutdown loses no acknowledged entry; a hot
backup restored into a fresh node rejoins the mesh and catches up."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import shutil
import signal
import threading
from pathlib import Path

import grpc
import pytest

from node.cli import main
from node.config import load_config
from node.connect import credentials_for
from node.core.trust import MemberKind
from node.interop.feed import open_channel
from node.mesh import Mesh, MeshNode
from node.rpc import convert
from node.rpc._pb.consortium.v1 import node_pb2 as pb
from node.rpc._pb.consortium.v1 import node_pb2_grpc as pb_grpc
from node.store.lmdb_store import LmdbStore
from tests.helpers import Origin, eventually

pytestmark = pytest.mark.integration

GOV, P1 = "gov.example/ct", "platform-one.example"


def _origin(n: MeshNode) -> Origin:
    origin = Origin(n.config.id)
    origin.signer = n.signer
    return origin


def _heads(node: MeshNode) -> dict[str, int]:
    async def go() -> dict[str, int]:
        async with node.client() as c:
            status = await c.status()
        return {h.origin: h.next_seq for h in status.heads}

    return asyncio.run(go())


def _submit(node: MeshNode, entries: list) -> None:  # type: ignore[type-arg]
    async def go() -> None:
        async with node.client() as c:
            await c.submit(entries)

    asyncio.run(go())


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_no_acknowledged_entry_is_lost_across_shutdown(tmp_path: Path, sig: signal.Signals) -> None:
    with Mesh.create(tmp_path, [(GOV, MemberKind.GOVERNMENT)]) as mesh:
        node = mesh.nodes[0]
        # Debug-level JSON logs, so the key-material check below sees everything.
        node.config = dataclasses.replace(node.config, log_json=True, log_level="debug")
        node.config.save()
        mesh.start()
        origin = _origin(node)
        acked: list[bytes] = []
        failures: list[grpc.StatusCode] = []

        def submitter() -> None:
            # Mutual TLS, as the member itself (a synchronous channel).
            with open_channel(node.address, credentials_for(node.config)) as channel:
                stub = pb_grpc.NodeServiceStub(channel)
                while True:
                    batch = [origin.next() for _ in range(20)]
                    request = pb.SubmitRequest(entries=[convert.entry_to_pb(e) for e in batch])
                    try:
                        stub.Submit(request, timeout=10)
                    except grpc.RpcError as exc:
                        failures.append(exc.code())
                        return
                    acked.extend(e.entry_id for e in batch)  # acknowledged = committed

        thread = threading.Thread(target=submitter)
        thread.start()
        try:
            eventually(lambda: len(acked) >= 200, timeout=30, what="submissions flowing")
            assert node.process is not None
            node.process.send_signal(sig)  # mid-stream, with a write likely in flight
            assert node.process.wait(30) == 0
        finally:
            thread.join(30)
        assert failures, "the submitter never saw the node stop"
        # Refused once stopping (UNAVAILABLE), or cut off at the end (CANCELLED):
        # either way not acknowledged, so the client knows to retry.
        assert failures[0] in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)

    log = (node.config.dir / "node.log").read_text()
    records = [json.loads(line) for line in log.splitlines() if not line.startswith("ccnode: ")]
    messages = [r["msg"] for r in records]
    assert f"{sig.name}: shutting down gracefully" in messages
    assert f"node {GOV} stopped; store closed" in messages
    pem = (node.config.dir / "keys" / "entry.pem").read_text()
    tls_pem = (node.config.dir / "keys" / "tls.key").read_text()
    raw = node.signer.private_key.private_bytes_raw()
    secrets = (
        pem.splitlines()[1],
        tls_pem.splitlines()[1],
        raw.hex(),
        base64.b64encode(raw).decode(),
    )
    for secret in secrets:
        assert secret not in log  # no key material, even at debug level
    assert not node.config.addr_file.exists()
    store = LmdbStore(node.config.data_dir)
    try:
        missing = [e.hex()[:16] for e in acked if store.get(e) is None]
        assert not missing, f"{len(missing)} acknowledged entries lost: {missing[:3]}"
        assert store.head(GOV).next_seq >= len(acked)
    finally:
        store.close()


def test_backup_restored_into_a_fresh_node_rejoins_and_catches_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "mesh"
    with Mesh.create(root, [(GOV, MemberKind.GOVERNMENT), (P1, MemberKind.PLATFORM)]) as mesh:
        mesh.start()
        gov_node, p1_node = mesh.nodes
        gov, p1 = _origin(gov_node), _origin(p1_node)
        _submit(gov_node, [gov.next() for _ in range(5)])
        _submit(p1_node, [p1.next() for _ in range(2)])
        eventually(lambda: _heads(p1_node) == {GOV: 5, P1: 2}, what="P1 synced")

        # Hot backup of the running platform node.
        backup_dir = tmp_path / "backup"
        assert main(["backup", str(p1_node.config.dir), str(backup_dir)]) == 0
        assert "backed up platform-one.example: 7 entries from 2 origins" in (
            capsys.readouterr().out
        )

        # Life goes on after the backup: both publish more.
        _submit(gov_node, [gov.next() for _ in range(3)])
        _submit(p1_node, [p1.next()])
        eventually(lambda: _heads(gov_node) == {GOV: 8, P1: 3}, what="GOV has P1's 3")

        # P1's machine is lost. A fresh node directory gets the member's config
        # and keys (from the operator's key backup) and the store backup.
        mesh.stop_node(p1_node)
        lost = p1_node.config.dir.rename(root / "lost-machine")
        fresh = p1_node.config.dir
        fresh.mkdir()
        for name in ("config.toml", "roster.json", "member.json", "keys"):
            src = lost / name
            (shutil.copytree if src.is_dir() else shutil.copy2)(src, fresh / name)
        assert main(["restore", str(backup_dir), str(fresh)]) == 0
        assert "restored 7 entries and 0 match-log events of platform-one.example" in (
            capsys.readouterr().out
        )
        store = LmdbStore(load_config(fresh).data_dir)
        assert {o: h.next_seq for o, h in store.heads().items()} == {GOV: 5, P1: 2}
        store.close()

        # It rejoins and catches up, including its own entry made after the backup.
        mesh.start_node(p1_node)
        mesh.wait_ready()
        eventually(lambda: _heads(p1_node) == {GOV: 8, P1: 3}, timeout=30, what="caught up")
        # ... so it can publish again without forking its own log.
        _submit(p1_node, [p1.next()])
        eventually(lambda: _heads(gov_node) == {GOV: 8, P1: 4}, what="relayed")
        assert _evidence(gov_node) == 0


def _evidence(node: MeshNode) -> int:
    async def go() -> int:
        async with node.client() as c:
            return int((await c.status()).evidence)

    return asyncio.run(go())


@pytest.mark.parametrize(
    ("setup", "argv_tail", "message"),
    [
        ("none", [], "is not a ccnode backup"),
        ("corrupt", [], "is corrupt: SHA-256"),
        ("other", [], "pass --any-member"),
        ("existing", [], "already holds a store; pass --force"),
    ],
)
def test_restore_refusals(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    setup: str,
    argv_tail: list[str],
    message: str,
) -> None:
    src = tmp_path / "src"
    dst = tmp_path / "dst"
    assert main(["init", str(src), "--id", "ngo.example", "--kind", "ngo"]) == 0
    dst_id = "other.example" if setup == "other" else "ngo.example"
    assert main(["init", str(dst), "--id", dst_id, "--kind", "ngo"]) == 0
    LmdbStore(load_config(src).data_dir).close()
    backup_dir = tmp_path / "bk"
    if setup != "none":
        assert main(["backup", str(src), str(backup_dir)]) == 0
    if setup == "corrupt":
        with (backup_dir / "data.mdb").open("r+b") as f:
            f.seek(100)
            f.write(b"\xff")
    if setup == "existing":
        LmdbStore(load_config(dst).data_dir).close()
    capsys.readouterr()
    code = main(["restore", str(backup_dir), str(dst), *argv_tail])
    assert code in (1, 2)
    assert message in capsys.readouterr().err
    if setup == "existing":
        assert main(["restore", str(backup_dir), str(dst), "--force"]) == 0
        assert "moved the previous store aside" in capsys.readouterr().out
        assert list(tmp_path.glob("dst/data.before-restore-*"))
