"""A restored node learns its own log's head from a peer before it signs
anything new (issue 14, item 4).

Real processes: P1 is backed up, publishes more, loses its machine and is
restored from the old backup while its only peer is down. Before, its next
`ccnode submit` signed the backup's next seq again and every node recorded
an equivocation. Now the node refuses with a clear message and says so in
`ccnode status`; once the peer is back it catches up its own log, the alert
clears, and the next submission takes the right seq: no evidence anywhere.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from node.cli import main
from node.core.trust import MemberKind
from node.mesh import Mesh, MeshNode
from tests.helpers import eventually

pytestmark = [pytest.mark.integration, pytest.mark.slow]

GOV, P1 = "gov.example/ct", "platform-one.example"
MD5 = "00112233445566778899aabbccddee{:02x}"


def _status(node: MeshNode) -> dict:  # type: ignore[type-arg]
    async def go() -> dict:  # type: ignore[type-arg]
        async with node.client() as c:
            s = await c.status()
        return {
            "heads": {h.origin: h.next_seq for h in s.heads},
            "evidence": s.evidence,
            "alerts": [(a.kind, a.origin, a.detail) for a in s.alerts],
        }

    return asyncio.run(go())


def _submit(directory: Path, i: int, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["submit", str(directory), "--algo", "md5", "--hash", MD5.format(i), "--json"])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_a_restored_node_catches_up_its_own_log_before_signing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "mesh"
    with Mesh.create(root, [(GOV, MemberKind.GOVERNMENT), (P1, MemberKind.PLATFORM)]) as mesh:
        mesh.start()
        gov_node, p1_node = mesh.nodes
        p1_dir = p1_node.config.dir
        assert _submit(p1_dir, 0, capsys)[0] == 0
        assert _submit(p1_dir, 1, capsys)[0] == 0
        backup = tmp_path / "backup"
        assert main(["backup", str(p1_dir), str(backup)]) == 0
        assert _submit(p1_dir, 2, capsys)[0] == 0  # after the backup
        eventually(lambda: _status(gov_node)["heads"].get(P1) == 3, what="GOV holds P1's 3")

        # P1's machine is lost while GOV is down; it is restored from the backup.
        mesh.stop_node(gov_node)
        mesh.stop_node(p1_node)
        lost = p1_dir.rename(root / "lost-machine")
        p1_dir.mkdir()
        for name in ("config.toml", "roster.json", "member.json", "keys"):
            src = lost / name
            (shutil.copytree if src.is_dir() else shutil.copy2)(src, p1_dir / name)
        assert main(["restore", str(backup), str(p1_dir)]) == 0
        mesh.start_node(p1_node)
        mesh.wait_ready(nodes=[p1_node])

        # No peer has told it its own log's head: it signs nothing.
        status = _status(p1_node)
        assert status["heads"].get(P1) == 2
        assert (
            "restored",
            P1,
            "restored from a backup: holds 2 entries of its own log and no peer has "
            "confirmed its head yet; its own submissions are refused until one does",
        ) in status["alerts"]
        code, out = _submit(p1_dir, 3, capsys)
        assert code == 3
        assert out.strip() == (
            f"ccnode: error: node at {p1_node.address}: UNAVAILABLE: {P1} was restored from a "
            "backup and holds 2 entries of its own log: it signs nothing new until a peer "
            "has told it its log's head (see `ccnode status`), so that it cannot fork its "
            "own log"
        )

        # The peer comes back: P1 catches up its own log, then submits at seq 3.
        mesh.start_node(gov_node)
        mesh.wait_ready()
        eventually(lambda: _status(p1_node)["heads"].get(P1) == 3, timeout=30, what="caught up")
        eventually(
            lambda: not [a for a in _status(p1_node)["alerts"] if a[0] == "restored"],
            timeout=30,
            what="the restored alert clears",
        )
        code, out = _submit(p1_dir, 3, capsys)
        assert code == 0, out
        assert json.loads(out)["outcome"] == "accepted"
        eventually(lambda: _status(gov_node)["heads"].get(P1) == 4, what="relayed")
        assert _status(gov_node)["evidence"] == 0
        assert _status(p1_node)["evidence"] == 0
