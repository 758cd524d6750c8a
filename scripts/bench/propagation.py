"""Propagation latency: submit at the government node, time until every node
has committed the entry (seen on that node's Pull follow stream).

    python scripts/bench/propagation.py [--sizes 4 8 16] [--topologies ring random]
                                        [--submissions 200] [--rate 20]

Prints p50/p95/p99 per (N, topology). Baseline in the same run: the
single-hop latency (submit -> committed at the submitting node itself), the
floor every multi-hop figure is built from. Goal: p99 < 500 ms at N = 16.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Publisher, Watcher, summary

from node.core.trust import MemberKind
from node.mesh import Mesh


def specs(n: int) -> list[tuple[str, MemberKind]]:
    return [("gov.example/ct", MemberKind.GOVERNMENT)] + [
        (f"platform-{i}.example", MemberKind.PLATFORM) for i in range(1, n)
    ]


async def run(mesh: Mesh, submissions: int, rate: float) -> tuple[list[float], list[float]]:
    gov = mesh.nodes[0]
    watcher = Watcher(mesh.nodes)
    await watcher.start({})
    pub = Publisher(gov)
    sent: dict[bytes, float] = {}
    async with gov.client() as client:
        for _ in range(submissions):
            entry = pub.next(urgent=True)
            sent[entry.entry_id] = time.monotonic()
            await client.submit([entry])
            await asyncio.sleep(1 / rate)
    deadline = time.monotonic() + 30
    n = len(mesh.nodes)
    while time.monotonic() < deadline:
        if all(len(watcher.seen.get(eid, {})) == n for eid in sent):
            break
        await asyncio.sleep(0.05)
    await watcher.stop()
    everywhere, local = [], []
    for eid, t0 in sent.items():
        seen = watcher.seen.get(eid, {})
        if len(seen) < n:
            everywhere.append(float("inf"))
            continue
        everywhere.append((max(seen.values()) - t0) * 1000)
        local.append((seen[0] - t0) * 1000)
    return everywhere, local


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[4, 8, 16])
    p.add_argument("--topologies", nargs="+", default=["ring", "random"])
    p.add_argument("--submissions", type=int, default=200)
    p.add_argument("--rate", type=float, default=20.0, help="submissions per second")
    args = p.parse_args()
    print(f"propagation: {args.submissions} urgent submissions at {args.rate}/s per config")
    for topology in args.topologies:
        for n in args.sizes:
            with (
                tempfile.TemporaryDirectory() as tmp,
                Mesh.create(Path(tmp), specs(n), topology, degree=3, seed=n) as mesh,
            ):
                mesh.start(60)
                everywhere, local = asyncio.run(run(mesh, args.submissions, args.rate))
                lost = sum(1 for v in everywhere if v == float("inf"))
                ok = [v for v in everywhere if v != float("inf")]
                print(f"N={n:2} {topology:6} all nodes ms: {summary(ok)}  missing {lost}")
                print(f"       {'':6} baseline, submitting node ms: {summary(local)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
