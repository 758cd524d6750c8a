"""Architecture rules: node/core is pure, generated code does not drift."""

from __future__ import annotations

import ast
import filecmp
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN_IN_CORE = {"grpc", "lmdb", "asyncio", "grpc_health", "grpc_reflection"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
            if node.module.startswith("node.") and not node.module.startswith(
                ("node.core", "node.errors")
            ):
                names.add(node.module)
    return names


@pytest.mark.parametrize(
    "path", sorted((ROOT / "node" / "core").glob("*.py")), ids=lambda p: p.name
)
def test_core_imports_nothing_impure(path: Path) -> None:
    imported = _imports(path)
    bad = {n for n in imported if n in FORBIDDEN_IN_CORE or n.startswith("node.")}
    assert not bad, f"{path.name} imports {sorted(bad)}"


DECODERS = {"av", "PIL", "pdqhash"}


@pytest.mark.parametrize(
    "path",
    sorted(p for p in (ROOT / "node").rglob("*.py") if "media" not in p.relative_to(ROOT).parts),
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_media_decoding_happens_only_in_node_media(path: Path) -> None:
    bad = _imports(path) & DECODERS
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}: decode in node/media only"


def test_checker_catches_a_forbidden_import(tmp_path: Path) -> None:
    sample = tmp_path / "x.py"
    sample.write_text("import lmdb\nfrom node.store import base\n")
    assert {"lmdb", "node.store"} <= _imports(sample)


@pytest.mark.skipif(
    importlib.util.find_spec("grpc_tools") is None, reason="grpcio-tools not installed"
)
def test_generated_protobuf_code_matches_the_protos(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_protos.py"), "--out", str(tmp_path)],
        check=True,
    )
    fresh = tmp_path / "node" / "rpc" / "_pb"
    checked_in = ROOT / "node" / "rpc" / "_pb"
    fresh_files = sorted(p.relative_to(fresh) for p in fresh.rglob("*") if p.is_file())
    ours = sorted(
        p.relative_to(checked_in)
        for p in checked_in.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    )
    assert fresh_files == ours
    drifted = [str(f) for f in fresh_files if not filecmp.cmp(fresh / f, checked_in / f, False)]
    assert not drifted, f"regenerate with scripts/gen_protos.py: {drifted} differ"
