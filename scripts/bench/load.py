"""Sustained load: many members submit continuously into an N-node mesh.

    python scripts/bench/load.py [--nodes 16] [--rate 1000] [--minutes 10]
                                 [--seconds S] [--topology random]

Every node's member publishes its own signed entries at RATE/NODES per
second. Every 10 s (and at the end) it reports, for a 2% sample of entries,
the propagation latency (signed time -> committed at each node, from the
nodes' own arrival stamps) and each node's resident memory. Baseline in the
same run: the latency to the submitting node itself. At the end it checks
that every node holds every entry.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Publisher, rss_kib, summary, tree_cpu_seconds, verify_cost_us

from node.core.trust import MemberKind
from node.mesh import Mesh


def specs(n: int) -> list[tuple[str, MemberKind]]:
    return [("gov.example/ct", MemberKind.GOVERNMENT)] + [
        (f"platform-{i}.example", MemberKind.PLATFORM) for i in range(1, n)
    ]


async def latencies(
    mesh: Mesh, sample: list[tuple[int, bytes, int]]
) -> tuple[list[float], list[float]]:
    everywhere: list[float] = []
    local: list[float] = []
    clients = [n.client() for n in mesh.nodes]
    try:
        for origin_node, eid, signed_ms in sample:
            arrivals = []
            for i, c in enumerate(clients):
                try:
                    got = await c.get_entry(eid)
                except Exception:
                    arrivals = []
                    break
                arrivals.append(got.provenance.arrival_ms)
                if i == origin_node:
                    local.append(float(got.provenance.arrival_ms - signed_ms))
            if arrivals:
                everywhere.append(float(max(arrivals) - signed_ms))
    finally:
        for c in clients:
            await c.close()
    return everywhere, local


async def run(mesh: Mesh, rate: float, seconds: float) -> int:
    pubs = [Publisher(n) for n in mesh.nodes]
    clients = [n.client() for n in mesh.nodes]
    rng = random.Random(1)
    sample: list[tuple[int, bytes, int]] = []
    sent = 0
    tick = 0.1
    per_tick = rate * tick
    carry = 0.0
    # A member's entries form a chain: one Submit in flight per member, the
    # entries signed meanwhile go in its next batch (as a real publisher).
    queues: list[list] = [[] for _ in pubs]  # type: ignore[type-arg]
    wake = [asyncio.Event() for _ in pubs]
    stopping = False

    async def publisher(i: int) -> None:
        while True:
            if not queues[i]:
                if stopping:
                    return
                await wake[i].wait()
                wake[i].clear()
                continue
            batch, queues[i] = queues[i][:1000], queues[i][1000:]
            await clients[i].submit(batch)

    pids = [n.process.pid for n in mesh.nodes if n.process]
    cpu0 = cpu_last = sum(tree_cpu_seconds(p) for p in pids)
    tasks = [asyncio.ensure_future(publisher(i)) for i in range(len(pubs))]
    t0 = time.monotonic()
    next_report = t0 + 10
    while time.monotonic() - t0 < seconds:
        carry += per_tick
        n_now, carry = int(carry), carry - int(carry)
        for _ in range(n_now):
            i = rng.randrange(len(pubs))
            e = pubs[i].next()
            queues[i].append(e)
            wake[i].set()
            sent += 1
            if rng.random() < 0.02:
                sample.append((i, e.entry_id, e.body.time_ms))
        for t in tasks:
            if t.done():
                t.result()  # a failed publisher fails the run
        if time.monotonic() >= next_report:
            next_report += 10
            anon = [rss_kib(p, "RssAnon") // 1024 for p in pids]
            files = [rss_kib(p, "RssFile") // 1024 for p in pids]
            backlog = sum(len(q) for q in queues)
            cpu_now = sum(tree_cpu_seconds(p) for p in pids)
            print(
                f"t={time.monotonic() - t0:5.0f}s offered {sent:7}  not yet submitted "
                f"{backlog:6}  node heap (RssAnon) MiB {min(anon)}-{max(anon)}, LMDB pages "
                f"(RssFile) {min(files)}-{max(files)}  "
                f"node CPU {(cpu_now - cpu_last) / 10:.2f} cores",
                flush=True,
            )
            cpu_last = cpu_now
        await asyncio.sleep(max(0.0, tick - (time.monotonic() - t0) % tick))
    stopping = True
    for w in wake:
        w.set()
    await asyncio.gather(*tasks)
    elapsed = time.monotonic() - t0
    print(f"offered {sent} entries in {elapsed:.1f} s = {sent / elapsed:.0f}/s")
    # Drain: every node must end up with every entry.
    want = {p.node.config.id: p.seq for p in pubs if p.seq}
    deadline = time.monotonic() + 120
    behind = len(mesh.nodes)
    while time.monotonic() < deadline:
        behind = 0
        for c in clients:
            s = await c.status()
            heads = {h.origin: h.next_seq for h in s.heads}
            behind += any(heads.get(o, 0) < n for o, n in want.items())
        if not behind:
            break
        await asyncio.sleep(0.2)
    drained = time.monotonic() - t0 - elapsed
    cpu = sum(tree_cpu_seconds(p) for p in pids) - cpu0
    responses = duplicates = received = 0
    for c in clients:
        for peer in (await c.status()).peers:
            responses += peer.responses
            duplicates += peer.duplicates
            received += peer.received
    for c in clients:
        await c.close()
    everywhere, local = await latencies(mesh, sample)
    print(
        f"all nodes hold all {sent} entries: {'yes' if not behind else f'NO ({behind} behind)'}"
        f" (drained {drained:.1f} s after the load stopped)"
    )
    print(f"propagation ms, sampled, signed -> committed at every node: {summary(everywhere)}")
    print(f"baseline ms, signed -> committed at the submitting node:    {summary(local)}")
    anon = [rss_kib(p, "RssAnon") // 1024 for p in pids]
    files = [rss_kib(p, "RssFile") // 1024 for p in pids]
    print(
        f"final node heap (RssAnon) MiB: {min(anon)}-{max(anon)}; LMDB and other file pages"
        f" (RssFile): {min(files)}-{max(files)}"
    )
    hops = sent * (len(pids) - 1)
    print(
        f"sync traffic: {responses} Pull responses received in all = {responses / max(1, sent):.1f}"
        f" per entry; {received} entries relayed (floor: {hops}, each entry once to each other"
        f" node), {duplicates} duplicates dropped"
    )
    # Cost, independent of what else the machine runs: CPU the nodes used
    # until every node held every entry, per entry. Baseline: the signature
    # checks alone (every node verifies every entry once).
    per_entry = cpu / max(1, sent) * 1000
    floor = verify_cost_us() * len(pids) / 1000
    print(
        f"node CPU {cpu:.1f} s for {sent} entries: {per_entry:.2f} ms per entry across the mesh"
        f" ({per_entry / len(pids):.3f} ms per node); baseline, {len(pids)} signature checks"
        f" per entry: {floor:.2f} ms ({per_entry / floor:.1f}x)"
    )
    return 0 if not behind else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--nodes", type=int, default=16)
    p.add_argument("--rate", type=float, default=1000.0, help="submissions/s across members")
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--seconds", type=float, help="overrides --minutes (short runs)")
    p.add_argument("--topology", default="random")
    args = p.parse_args()
    seconds = args.seconds if args.seconds is not None else args.minutes * 60
    print(f"load: {args.nodes} nodes ({args.topology}), {args.rate}/s for {seconds:.0f} s")
    with (
        tempfile.TemporaryDirectory() as tmp,
        Mesh.create(Path(tmp), specs(args.nodes), args.topology, degree=3, seed=args.nodes) as mesh,
    ):
        mesh.start(120)
        return asyncio.run(run(mesh, args.rate, seconds))


if __name__ == "__main__":
    sys.exit(main())
