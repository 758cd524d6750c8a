"""Match under load: does the node stay responsive while a member sends the
costliest Match request the limits allow, over and over?

    python scripts/bench/match_load.py [--hashes 100000] [--seconds 20]
                                       [--shape 10000x1@31] [--interval-ms 20]

One real node process (mutual TLS) with ``--hashes`` random PDQ hashes
stored. Member A sends the largest Match allowed (``--shape QxH@D``: Q
queries of H hashes each, a query and its H-1 dihedral variants, at
distance D; the default is the budget's worth at distance 31) back to back.
Member B meanwhile sends a Status and a one-hash PDQ Match every
``--interval-ms`` and records each answer's latency. The baseline is B's
same probes with A idle, measured first in the same run; the figures are
p50/p95/p99/max in ms, and A's request time. Latency here is the node's
event loop answering B, not how fast matching is: a stalled loop shows as
B's p99 reaching A's request time.

``tests/integration/test_match_load.py`` runs a short version and asserts
the property; docs/benchmarks.md records a run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import percentile, store_adds, summary

from node.core.trust import MemberKind
from node.errors import PeerError
from node.mesh import Mesh, MeshNode
from node.rpc.client import NodeClient

A, B = "platform-a.example", "platform-b.example"


@dataclass
class Figures:
    baseline_status: list[float] = field(default_factory=list)
    baseline_match: list[float] = field(default_factory=list)
    status: list[float] = field(default_factory=list)
    match: list[float] = field(default_factory=list)
    big: list[float] = field(default_factory=list)  # A's request times, ms
    hashes_per_request: int = 0

    def report(self) -> str:
        return "\n".join(
            [
                f"B Status ms, A idle:      {summary(self.baseline_status)}",
                f"B Match ms, A idle:       {summary(self.baseline_match)}",
                f"B Status ms, A loading:   {summary(self.status)}",
                f"B Match ms, A loading:    {summary(self.match)}",
                f"A's Match ms ({self.hashes_per_request:,} hashes): {summary(self.big)}",
                f"B p99 / A's median request: {self.ratio():.3f}",
            ]
        )

    def ratio(self) -> float:
        worst = max(percentile(self.status, 99), percentile(self.match, 99))
        return worst / percentile(self.big, 50)


def fill(node: MeshNode, n: int) -> None:
    """``n`` random (non-degenerate) PDQ ADDs by the node's member, straight
    into its store before it starts."""
    store_adds(node, (("PDQ", os.urandom(32)) for _ in range(n)))  # uniform: never degenerate


async def _probe(
    b: NodeClient, until: float, interval: float, status: list[float], match: list[float]
) -> None:
    one = [("PDQ", os.urandom(32))]
    while time.monotonic() < until:
        t = time.perf_counter()
        await b.status()
        status.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        await b.match(one)
        match.append((time.perf_counter() - t) * 1000)
        await asyncio.sleep(interval)


async def _load(a: NodeClient, until: float, shape: tuple[int, int, int], big: list[float]) -> None:
    q, h, d = shape
    while time.monotonic() < until:
        queries = [("PDQ", os.urandom(32)) for _ in range(q)]
        dihedral = [[os.urandom(32) for _ in range(h - 1)] for _ in range(q)]
        t = time.perf_counter()
        await a.match(queries, max_distance=d, dihedral=dihedral)
        big.append((time.perf_counter() - t) * 1000)


async def measure(
    a_node: MeshNode,
    b_node: MeshNode,
    address: str,
    shape: tuple[int, int, int],
    seconds: float,
    interval_ms: float,
) -> Figures:
    fig = Figures(hashes_per_request=shape[0] * shape[1])
    interval = interval_ms / 1000
    async with (
        a_node.client(address, deadline_s=120) as a,
        b_node.client(address, deadline_s=30) as b,
    ):
        deadline = time.monotonic() + 120
        while True:  # the PDQ index is built after start-up
            try:
                await b.match([("PDQ", os.urandom(32))])
                break
            except PeerError:  # UNAVAILABLE: the index is still being built
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)
        await _probe(
            b,
            time.monotonic() + min(5.0, seconds / 2),
            interval,
            fig.baseline_status,
            fig.baseline_match,
        )
        until = time.monotonic() + seconds
        loader = asyncio.create_task(_load(a, until, shape, fig.big))
        await asyncio.sleep(0.2)  # A's first request is under way
        await _probe(b, until, interval, fig.status, fig.match)
        await loader
    return fig


def run(
    root: Path, hashes: int, shape: tuple[int, int, int], seconds: float, interval_ms: float
) -> Figures:
    with Mesh.create(root, [(A, MemberKind.PLATFORM)], key_only=[(B, MemberKind.PLATFORM)]) as mesh:
        (a_node,), (b_node,) = mesh.nodes, mesh.submitters
        fill(a_node, hashes)
        mesh.start(120)
        try:
            return asyncio.run(measure(a_node, b_node, a_node.address, shape, seconds, interval_ms))
        except PeerError as exc:
            raise SystemExit(f"match_load: {exc}; see {a_node.config.dir / 'node.log'}") from None


def parse_shape(text: str) -> tuple[int, int, int]:
    counts, _, distance = text.partition("@")
    q, _, h = counts.partition("x")
    return int(q), int(h or 1), int(distance or 31)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--hashes", type=int, default=100_000, help="PDQ hashes stored")
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--shape", default="10000x1@31", help="A's request: QUERIESxHASHES@DISTANCE")
    p.add_argument("--interval-ms", type=float, default=20.0)
    args = p.parse_args()
    shape = parse_shape(args.shape)
    print(
        f"match_load: {args.hashes:,} PDQ hashes stored; A sends {shape[0]:,} queries x "
        f"{shape[1]} hashes at distance {shape[2]} back to back for {args.seconds:.0f} s"
    )
    with tempfile.TemporaryDirectory() as tmp:
        fig = run(Path(tmp), args.hashes, shape, args.seconds, args.interval_ms)
    print(fig.report())
    return 0


if __name__ == "__main__":
    sys.exit(main())
