"""``ccnode watch``: a growing re-stream is matched within seconds of stream time.

Real processes: the writer (tests/live_writer.py) plays a shared vector as a
live MPEG-TS file; ``python -m node watch`` hashes it as it grows and asks a
real node. The banked video is ``a.mp4``, submitted with ``submit --file``.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from node.core.trust import MemberKind, MembersFile
from node.server import Node
from tests.helpers import LoopThread, member, write_node_dir
from tests.integration.test_live_publish import (
    NODE,
    ROOT,
    VECTORS,
    WRITER,
    _finish,
    _popen,
    _wait_file,
)

pytestmark = pytest.mark.integration

GOV, PLATFORM = "gov.example/ct", "platform.example"
STALL = ("--stall-seconds", "1.5")


@contextlib.contextmanager
def banked_a(tmp_path: Path, loop: LoopThread) -> Iterator[Node]:
    """A node holding a.mp4, banked with ``submit --file``."""
    members = MembersFile.of([member(GOV, MemberKind.GOVERNMENT)])
    n = Node(write_node_dir(tmp_path, GOV, members, kind=MemberKind.GOVERNMENT), anti_entropy_s=0)
    loop.run(n.start())
    try:
        argv = [*NODE, "submit", str(n.config.dir), "--file", str(VECTORS / "a.mp4")]
        argv += ["--label", "type:video", "--incident", "test-stream-2026-12-01", "--json"]
        subprocess.run(argv, cwd=ROOT, check=True, capture_output=True)
        yield n
    finally:
        loop.run(n.stop())


@pytest.fixture
def node(tmp_path: Path, loop: LoopThread) -> Iterator[Node]:
    with banked_a(tmp_path, loop) as n:
        yield n


def _watch(node: Node, tmp_path: Path, name: str) -> tuple[int, list[dict[str, Any]], str]:
    ts = tmp_path / f"{name}.ts"
    writer = _popen([*WRITER, str(VECTORS / name), str(ts), "--speed", "2"])
    try:
        _wait_file(ts)
        watcher = _popen(
            [*NODE, "watch", str(ts), "--dir", str(node.config.dir), "--json", *STALL],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        return _finish(watcher, timeout=90)
    finally:
        writer.wait(60)


#: Every edit of a.mp4 in the shared vectors, played as a live source.
EDITS = sorted(p.name for p in VECTORS.glob("a-*"))


@pytest.mark.slow
@pytest.mark.parametrize("name", EDITS)
def test_a_restream_is_reported_within_ten_seconds_of_stream(
    node: Node, tmp_path: Path, name: str
) -> None:
    code, events, err = _watch(node, tmp_path, name)
    assert code == 0, err
    matches = [e for e in events if e["event"] == "match"]
    assert len(matches) == 1, events
    m = matches[0]
    assert m["stream_ms"] <= 10_000
    assert m["is_match"] is True
    assert m["match"]["origin"] == GOV
    assert m["latency_ms"] >= 0
    assert m["banked_range_ms"][1] > m["banked_range_ms"][0]
    end = events[-1]
    assert end["event"] == "end" and end["matches"] == 1
    assert [v["is_match"] for v in end["videos"]] == [True]
    print(f"{name}: matched after {m['stream_ms']} ms of stream, latency {m['latency_ms']} ms")


@pytest.mark.slow
def test_an_unrelated_stream_raises_no_alarm(node: Node, tmp_path: Path) -> None:
    code, events, err = _watch(node, tmp_path, "unrelated-b.mp4")
    assert code == 0, err
    assert [e for e in events if e["event"] == "match"] == []
    assert events[-1]["event"] == "end" and events[-1]["matches"] == 0


def test_watch_needs_a_node() -> None:
    proc = _popen(
        [*NODE, "watch", "-"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    code, _events, err = _finish(proc)
    assert code == 2
    assert err.strip() == "ccnode: error: watch needs one of --dir DIR or --to ADDR"
