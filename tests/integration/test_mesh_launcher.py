"""The mesh launcher: topologies, real processes, and no orphans."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from node.errors import ValidationError
from node.mesh import edges

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("topology", "n", "expected"),
    [
        ("line", 4, {(0, 1), (1, 2), (2, 3)}),
        ("ring", 4, {(0, 1), (1, 2), (2, 3), (0, 3)}),
        ("full", 3, {(0, 1), (0, 2), (1, 2)}),
    ],
)
def test_fixed_topologies(topology: str, n: int, expected: set[tuple[int, int]]) -> None:
    assert edges(topology, n) == expected


@pytest.mark.parametrize("n", [4, 8, 16])
def test_random_regular_is_regular_and_connected(n: int) -> None:
    links = edges("random", n, degree=3, seed=n)
    degree = {i: 0 for i in range(n)}
    for a, b in links:
        assert a != b
        degree[a] += 1
        degree[b] += 1
    assert set(degree.values()) == {3}


def test_impossible_regular_graph_is_refused() -> None:
    with pytest.raises(ValidationError, match="no 3-regular graph on 5 nodes"):
        edges("random", 5, degree=3)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is dead for our purposes.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def _children(pid: int) -> list[int]:
    out = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False
    )
    return [int(x) for x in out.stdout.split()]


def _wait(pred, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out: {what}")
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.parametrize("how", ["SIGINT", "SIGKILL"])
def test_launcher_leaves_no_orphans(tmp_path: Path, how: str) -> None:
    ready = tmp_path / "ready"
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "scripts" / "mesh.py"),
            "--n",
            "3",
            "--topology",
            "ring",
            "--dir",
            str(tmp_path / "mesh"),
            "--ready-file",
            str(ready),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait(lambda: ready.exists() or proc.poll() is not None, 60, "mesh ready")
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        kids = _children(proc.pid)
        assert len(kids) == 3
        proc.send_signal(getattr(signal, how))
        proc.wait(30)
        # Ctrl-C: the launcher stops them; kill -9: each notices its parent is gone.
        _wait(lambda: not any(_alive(k) for k in kids), 30, "children gone")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()
