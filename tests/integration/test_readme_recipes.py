"""The README's shell recipes, run as written (issue 15 item 9).

The fenced ``sh`` blocks of the recipe sections are extracted in order and
run by bash in an empty temporary directory, with this venv's ``ccnode`` on
PATH: real node processes, real mutual TLS, real rosters. Every ``sh`` block
in README.md is either run here or named as set-up, so a new block cannot
drift unnoticed. The nodes the recipes start in the background are stopped
at the end (SIGTERM to the recipe's process group, polled with a deadline),
and must have shut down gracefully (no ``node.addr`` left).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

README = Path(__file__).resolve().parents[2] / "README.md"
#: Sections whose sh blocks run, in this order (later ones continue earlier ones).
RECIPES = (
    "### Start two nodes by hand",
    "### Governments without a node: key-only submission",
)
#: Blocks that set up a checkout (venv, install, test run): not recipes.
SETUP = ("## The two commands", "## Installing")
RUN_TIMEOUT_S = 240.0
STOP_TIMEOUT_S = 20.0


def sh_blocks(text: str) -> list[tuple[str, str]]:
    """(heading above it, body) of every fenced ``sh`` block, in order."""
    out = []
    heading = ""
    for m in re.finditer(r"^(#{2,4} [^\n]+)$|^```sh\n(.*?)^```$", text, re.M | re.S):
        if m.group(1):
            heading = m.group(1).strip()
        else:
            out.append((heading, m.group(2)))
    return out


def test_every_sh_block_is_a_recipe_or_set_up() -> None:
    blocks = sh_blocks(README.read_text())
    unclassified = [h for h, _ in blocks if h not in RECIPES and h not in SETUP]
    assert unclassified == [], "add these README sections to RECIPES or SETUP"
    assert {h for h, _ in blocks} >= set(RECIPES)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _stop_group(pgid: int) -> None:
    """SIGTERM every process the recipe left (its background nodes), then
    wait for them with a deadline; SIGKILL only if that passes."""
    if not _group_alive(pgid):
        return
    os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while _group_alive(pgid):
        if time.monotonic() > deadline:
            os.killpg(pgid, signal.SIGKILL)
            raise AssertionError(f"recipe processes ignored SIGTERM for {STOP_TIMEOUT_S}s")
        time.sleep(0.05)


def test_readme_recipes_run_as_written(tmp_path: Path) -> None:
    blocks = dict.fromkeys(RECIPES, "")
    for heading, body in sh_blocks(README.read_text()):
        if heading in blocks:
            blocks[heading] += body
    script = "set -euo pipefail\n" + "".join(f"echo '>>> {h}'\n{b}" for h, b in blocks.items())
    (tmp_path / "recipe.sh").write_text(script)
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONUNBUFFERED": "1",
    }
    with (tmp_path / "out.txt").open("w") as out, (tmp_path / "err.txt").open("w") as err:
        proc = subprocess.Popen(
            ["bash", "recipe.sh"],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: the nodes it starts too
        )
        try:
            code = proc.wait(RUN_TIMEOUT_S)
        finally:
            _stop_group(proc.pid)
    stdout, stderr = (tmp_path / "out.txt").read_text(), (tmp_path / "err.txt").read_text()
    assert code == 0, f"recipe failed ({code})\n{stdout}\n{stderr}"
    assert "Traceback" not in stderr

    # Both directions: p1 matches gov's entry, gov matches p1's (the mesh).
    lines = stdout.splitlines()
    matches = [line for line in lines if "distance" in line]
    assert any("gov.example/ct (government" in m and "type:video" in m for m in matches)
    assert any("platform-one.example (platform" in m and "type:pdf" in m for m in matches)
    assert "ready at 127.0.0.1:" in stdout
    assert re.search(r"gov.example/ct +address read from ../gov/node.addr \(now: 127", stdout)
    # The desk's entry reached gov through p1, and the reports run over it.
    assert "| gov.example/desk | 1 |" in stdout
    assert "signed head entry (no checkpoint)" in stdout
    report = json.loads((tmp_path / "transparency.json").read_text())
    covered = {c["origin"]: c["covered_by"] for c in report["log"]}
    assert covered["gov.example/desk"] == "signed head entry (no checkpoint)"
    assert covered["gov.example/ct"] == "signed checkpoint"
    # The nodes shut down gracefully on SIGTERM.
    assert not list(tmp_path.glob("*/node.addr"))
