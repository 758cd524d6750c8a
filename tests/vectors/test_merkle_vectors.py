"""RFC 6962 proof vectors from transparency-dev/merkle (see ../shared/vectors/README.md).

The verifiers must accept exactly the files with ``wantErr: false`` and refuse
every other one with ``ValidationError``.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from node.core.merkle import verify_consistency, verify_inclusion
from node.errors import ValidationError

VECTORS = Path(__file__).resolve().parents[2].parent / "shared" / "vectors"
MERKLE = VECTORS / "merkle"


def _files(kind: str) -> list[Path]:
    return sorted((MERKLE / kind).glob("*/*.json")) if MERKLE.is_dir() else []


def _ids(paths: list[Path]) -> list[str]:
    return [f"{p.parent.name}/{p.stem}" for p in paths]


def _load(path: Path) -> dict[str, Any]:
    if not MERKLE.is_dir():
        pytest.skip(f"Merkle vectors not found at {MERKLE} (clone outside the workspace)")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _b64(value: str | None) -> bytes:
    return base64.b64decode(value or "")


def _proof(values: list[str] | None) -> list[bytes]:
    return [_b64(v) for v in values or []]


INCLUSION = _files("inclusion")
CONSISTENCY = _files("consistency")


def test_vectors_present() -> None:
    if not MERKLE.is_dir():
        pytest.skip(f"Merkle vectors not found at {MERKLE} (clone outside the workspace)")
    assert len(INCLUSION) >= 40
    assert len(CONSISTENCY) >= 40
    happy = [p for p in INCLUSION + CONSISTENCY if not _load(p)["wantErr"]]
    assert len(happy) == 6


@pytest.mark.parametrize("path", INCLUSION, ids=_ids(INCLUSION))
def test_inclusion_vector(path: Path) -> None:
    v = _load(path)
    args = (_b64(v["leafHash"]), v["leafIdx"], v["treeSize"], _proof(v["proof"]), _b64(v["root"]))
    if v["wantErr"]:
        with pytest.raises(ValidationError):
            verify_inclusion(*args)
    else:
        verify_inclusion(*args)


@pytest.mark.parametrize("path", CONSISTENCY, ids=_ids(CONSISTENCY))
def test_consistency_vector(path: Path) -> None:
    v = _load(path)
    args = (v["size1"], v["size2"], _proof(v["proof"]), _b64(v["root1"]), _b64(v["root2"]))
    if v["wantErr"]:
        with pytest.raises(ValidationError):
            verify_consistency(*args)
    else:
        verify_consistency(*args)
