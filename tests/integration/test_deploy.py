"""The deployment recipes stay in step with the CLI (no container engine here)."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from node.config import load_config

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def _init(root: Path) -> None:
    env = {**os.environ, "CCNODE": f"{sys.executable} -m node"}
    proc = subprocess.run(
        ["sh", str(REPO / "deploy" / "mesh-init.sh"), str(root)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith(f"mesh initialised under {root}")


def test_compose_mesh_init_script_builds_a_consistent_line(tmp_path: Path) -> None:
    _init(tmp_path)
    gov, p1, p2 = (load_config(tmp_path / d) for d in ("gov", "platform-one", "platform-two"))
    assert [c.listen for c in (gov, p1, p2)] == [f"127.0.0.1:{p}" for p in (7001, 7002, 7003)]
    assert [p.id for p in gov.peers] == ["platform-one.example"]
    assert [p.id for p in p1.peers] == ["gov.example/ct-unit", "platform-two.example"]
    assert [(p.id, p.address) for p in p2.peers] == [("platform-one.example", "127.0.0.1:7002")]
    for c in (gov, p1, p2):
        ids = {m.id for m in c.members().members()}
        assert ids == {"gov.example/ct-unit", "platform-one.example", "platform-two.example"}
        signer = c.signer()
        mine = c.members().member(c.id)
        assert signer.key_id in {hashlib.sha256(k.public_key).digest() for k in mine.entry_keys}
        assert c.tls_identity().spki == mine.tls_spki  # pinned for mutual TLS
        assert c.signed_roster() == gov.signed_roster()  # one roster for all three
    keys = (tmp_path / "gov" / "keys" / "entry.pem").read_bytes()
    roster = (tmp_path / "roster.json").read_text()
    _init(tmp_path)  # idempotent: keys and roster kept, nothing listed twice
    assert (tmp_path / "gov" / "keys" / "entry.pem").read_bytes() == keys
    assert (tmp_path / "roster.json").read_text() == roster
    assert len(load_config(tmp_path / "platform-one").peers) == 2


def test_container_recipes_name_real_commands_and_paths() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    copied = [
        word
        for line in dockerfile.splitlines()
        if line.startswith("COPY ") and not line.startswith("COPY --from=")
        for word in line.split()[1:-1]
    ]
    assert copied == ["pyproject.toml", "README.md", "node", "deploy"]
    assert all((REPO / path).exists() for path in copied)
    # Multi-stage: the compiler (pdqhash builds from source) is in the build
    # stage only; the runtime stage installs its wheels offline.
    build, runtime = dockerfile.split("\nFROM python:3.11-slim\n")
    assert "FROM python:3.11-slim AS build" in build and "g++" in build
    assert "pip wheel --no-cache-dir --wheel-dir /wheels ." in build
    assert "g++" not in runtime and "apt-get" not in runtime
    assert "COPY --from=build /wheels /tmp/wheels" in runtime
    assert "pip install --no-cache-dir --no-index --find-links /tmp/wheels ccnode" in runtime
    assert "# 7001: gRPC, mutual TLS pinned to the roster" in runtime  # not "loopback-only"
    # The build context is only what is copied: never a .venv, keys or stores.
    ignore = (REPO / ".dockerignore").read_text().splitlines()
    assert ignore[ignore.index("*") :] [:5] == [
        "*", "!pyproject.toml", "!README.md", "!node/", "!deploy/"
    ]  # fmt: skip
    compose = (REPO / "deploy" / "compose.yaml").read_text()
    assert "/opt/ccnode/deploy/mesh-init.sh" in compose
    for needle in ('"health"', '"serve"', "CCNODE_METRICS_LISTEN", "stop_signal: SIGTERM"):
        assert needle in compose
    unit = (REPO / "deploy" / "ccnode.service").read_text()
    assert "ccnode serve /srv/ccnode/node" in unit and "KillSignal=SIGTERM" in unit


def test_no_doc_installs_ccnode_by_name_from_an_index() -> None:
    """ccnode is not on PyPI: a doc saying `pip install ccnode` would install
    whatever a stranger registered under that name (issue 15 item 6)."""
    by_name = re.compile(r"(?<!never `)pip install (?:-U )?(?:'|\")?ccnode(?:\[|\b(?![-./]))")
    texts = [REPO / "README.md", REPO / "Dockerfile", *REPO.glob("docs/*.md")]
    texts += [p for p in REPO.glob("deploy/**/*") if p.is_file()]
    texts += [*REPO.glob("node/**/*.py")]
    found = [
        f"{p.relative_to(REPO)}: {m.group(0)}"
        for p in texts
        for m in by_name.finditer(p.read_text())
    ]
    assert found == []
    assert "never `pip install ccnode` by name" in (REPO / "README.md").read_text()
    assert by_name.search("pip install 'ccnode[interop]'") and by_name.search("pip install ccnode")
    assert not by_name.search("pip install ccnode-0.1-py3-none-any.whl")
