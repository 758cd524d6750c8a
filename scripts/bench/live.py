"""Time to matchable for a live stream: from the end of a stream segment at
the publisher to that segment committed (so matchable) at a node 8 hops away.

    python scripts/bench/live.py [--nodes 16] [--loops 5] [--segment-seconds 2]

A ring of ``--nodes`` real node processes (mutual TLS); the government node
0 publishes with ``ccnode submit --live`` (its own process, hashing
included) a stream written at real-time speed by ``tests/live_writer.py``
(``a.mp4`` of the shared vectors, played ``--loops`` times: 12 s each).
Node ``nodes // 2`` is the farthest, ``nodes // 2`` hops away. For each
segment: due = the writer's first-frame time + the segment's end in stream
time; latency = when the far node served the entry on its Pull stream (it
serves only committed entries) - due. Baseline in the same run: the same
figure at the publisher's own node (0 hops), which holds the hashing and
signing; the difference is the federation's. Segments that end inside the
first 5 s wait for border detection (docs/live.md) and are reported apart.
Goal (issue 16): p99 < 2 s at 8 hops.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Watcher, summary

from node.core.trust import MemberKind
from node.mesh import Mesh

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT.parent / "shared" / "vectors" / "vpdq" / "a.mp4"
BORDER_WINDOW_MS = 5000


def specs(n: int) -> list[tuple[str, MemberKind]]:
    return [("gov.example/ct", MemberKind.GOVERNMENT)] + [
        (f"platform-{i}.example", MemberKind.PLATFORM) for i in range(1, n)
    ]


Rows = list[tuple[int, list[float]]]


async def run(mesh: Mesh, work: Path, loops: int, segment_s: float) -> Rows:
    gov, far = mesh.nodes[0], mesh.nodes[len(mesh.nodes) // 2]
    watcher = Watcher([gov, far])
    await watcher.start({})
    stream, start_file = work / "live.ts", work / "live.start"
    write = [str(SRC), str(stream), "--loop", str(loops), "--start-file", str(start_file)]
    writer = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.live_writer", *write, cwd=ROOT
    )
    while not (stream.exists() and start_file.exists() and start_file.read_text().strip()):
        await asyncio.sleep(0.01)
    publish = [str(gov.config.dir), "--live", str(stream), "--incident", "bench-2026-12-01"]
    publish += ["--label", "type:video", "--json", "--segment-seconds", f"{segment_s:g}"]
    publisher = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "node",
        "submit",
        *publish,
        "--stall-seconds",
        "2",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(publisher.communicate(), 12 * loops + 120)
    await asyncio.wait_for(writer.wait(), 30)
    if publisher.returncode != 0:
        raise SystemExit(f"publisher failed: {err.decode()}")
    start = float(start_file.read_text())
    segs = [d for d in map(json.loads, out.decode().splitlines()) if "segment" in d]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if all(len(watcher.seen.get(bytes.fromhex(d["entry_id"]), {})) == 2 for d in segs):
            break
        await asyncio.sleep(0.05)
    await watcher.stop()
    rows = []
    for d in segs:
        seen = watcher.seen.get(bytes.fromhex(d["entry_id"]), {})
        due = start + d["end_ms"] / 1000
        rows.append(
            (d["end_ms"], [(seen[i] - due) * 1000 if i in seen else float("inf") for i in (0, 1)])
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=16)
    ap.add_argument("--loops", type=int, default=5)
    ap.add_argument("--segment-seconds", type=float, default=2.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="ccnode-bench-live-") as tmp:
        root = Path(tmp)
        with Mesh.create(root / "mesh", specs(args.nodes), "ring") as mesh:
            mesh.start(timeout=120)
            rows = asyncio.run(run(mesh, root, args.loops, args.segment_seconds))
    hops = args.nodes // 2
    final = rows[-1][0]
    steady = [r for end, r in rows if BORDER_WINDOW_MS < end < final]
    early = [r for end, r in rows if end <= BORDER_WINDOW_MS]
    print(
        f"{args.nodes}-node ring, {len(rows)} segments of {args.segment_seconds:g} s "
        f"({args.loops * 12} s stream at real time)"
    )
    print("segment end -> committed, ms (p50 / p95 / p99 / max):")
    print(f"  0 hops (publisher's node, baseline): {summary([r[0] for r in steady])}")
    print(f"  {hops} hops:                          {summary([r[1] for r in steady])}")
    print(
        f"  first {BORDER_WINDOW_MS // 1000} s (border window), {hops} hops: "
        f"{', '.join(f'{r[1]:.0f}' for r in early)}"
    )
    print(f"  closing segment (stall timeout 2 s included), {hops} hops: {rows[-1][1][1]:.0f}")


if __name__ == "__main__":
    main()
