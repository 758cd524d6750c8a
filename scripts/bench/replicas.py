"""Match throughput with match replicas against the member's node alone.

    python scripts/bench/replicas.py [--entries 100000] [--batch 100] [--callers 8]
                                     [--seconds 8] [--hit-rate 0.01]

A member node process holds ENTRIES signed MD5/SHA-256 entries (built
offline, as scripts/bench/exact.py does). Then, each for SECONDS, CALLERS
concurrent callers send Match batches of BATCH queries (HIT_RATE of them
stored hashes) over one gRPC channel with the round_robin policy, to:

1. the member node alone (the baseline, measured in the same run);
2. one replica;
3. two replicas (round_robin over both).

It also reports how long a fresh replica took to catch up (start to
SERVING), the CPU each process used, so the figures can be read against
this machine's two cores (every process, the client included, shares
them), and freshness: FRESH entries submitted one at a time at the member
node, each timed from Submit's answer until a Match finds it on each
replica (polled every 2 ms), beside the same time on the member node
itself (the baseline: its index is updated when Submit commits).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import tree_cpu_seconds
from catchup import signer
from exact import ORIGIN, member_node, queries

from node.connect import credentials_for
from node.core.entry import EntryBody, Kind
from node.core.tlscert import TLS_NAME
from node.member_dir import init_replica_dir
from node.mesh import Mesh, MeshNode
from node.rpc._pb.consortium.v1 import node_pb2 as pb
from node.rpc._pb.consortium.v1 import node_pb2_grpc as pb_grpc
from node.rpc.convert import entry_to_pb
from node.server import SERVICE_NAME
from node.store.lmdb_store import LmdbStore


def _config() -> str:
    return json.dumps(
        {
            "loadBalancingConfig": [{"round_robin": {}}],
            "healthCheckConfig": {"serviceName": SERVICE_NAME},
        }
    )


async def throughput(
    node: MeshNode, addresses: list[str], requests: list[pb.MatchRequest], callers: int, s: float
) -> tuple[float, float]:
    """(lookups/s, calls/s) over a round_robin channel to ADDRESSES."""
    import grpc

    creds = credentials_for(node.config)
    assert creds is not None
    options = [("grpc.ssl_target_name_override", TLS_NAME), ("grpc.service_config", _config())]
    target = "ipv4:" + ",".join(addresses)
    async with grpc.aio.secure_channel(target, creds, options=options) as channel:
        stub = pb_grpc.NodeServiceStub(channel)
        for r in requests[:4]:
            await stub.Match(r, timeout=30)  # warm up every subchannel
        lookups = calls = 0
        end = time.perf_counter() + s

        async def caller(k: int) -> None:
            nonlocal lookups, calls
            i = k
            while time.perf_counter() < end:
                answer = await stub.Match(requests[i % len(requests)], timeout=30)
                lookups += len(answer.results)
                calls += 1
                i += callers

        t0 = time.perf_counter()
        await asyncio.gather(*(caller(k) for k in range(callers)))
        took = time.perf_counter() - t0
    return lookups / took, calls / took


async def caught_up(node: MeshNode, timeout: float) -> float:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    creds = credentials_for(node.config)
    assert creds is not None
    t0 = time.perf_counter()
    options = [("grpc.ssl_target_name_override", TLS_NAME)]
    async with grpc.aio.secure_channel(node.address, creds, options=options) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        while time.perf_counter() - t0 < timeout:
            try:
                answer = await stub.Check(
                    health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=2
                )
                if answer.status == health_pb2.HealthCheckResponse.SERVING:
                    return time.perf_counter() - t0
            except grpc.aio.AioRpcError:
                pass
            await asyncio.sleep(0.05)
    raise SystemExit(f"replica {node.config.dir} not SERVING within {timeout} s")


async def _found_after(
    stub: pb_grpc.NodeServiceStub, query: pb.MatchRequest, since: float, what: str
) -> float:
    """Seconds from SINCE until a Match through STUB finds QUERY's hash."""
    while time.perf_counter() - since < 30:
        answer = await stub.Match(query, timeout=10)
        if answer.results[0].matches:
            return time.perf_counter() - since
        await asyncio.sleep(0.002)
    raise SystemExit(f"{what} not matchable in 30 s")


async def freshness(
    primary: MeshNode, replicas: list[MeshNode], count: int
) -> dict[str, list[float]]:
    """Per node: seconds from each Submit's answer until a Match finds the entry there."""
    import grpc

    store = LmdbStore(primary.config.data_dir, readonly=True)
    head = store.head(ORIGIN)
    store.close()
    creds = credentials_for(primary.config)
    assert creds is not None
    options = [("grpc.ssl_target_name_override", TLS_NAME)]
    nodes = [primary, *replicas]
    channels = [grpc.aio.secure_channel(n.address, creds, options=options) for n in nodes]
    stubs = [pb_grpc.NodeServiceStub(ch) for ch in channels]
    out: dict[str, list[float]] = {n.config.dir.name: [] for n in nodes}
    seq, prev = head.next_seq, head.head_id
    try:
        for k in range(count):
            value = hashlib.md5(f"fresh/{k}".encode()).digest()
            entry = primary.signer.sign(
                EntryBody(
                    origin=ORIGIN,
                    seq=seq,
                    prev=prev,
                    key_id=primary.signer.key_id,
                    time_ms=int(time.time() * 1000),
                    kind=Kind.ADD,
                    algorithm="MD5",
                    hash=value,
                    labels=("type:video",),
                )
            )
            seq, prev = seq + 1, entry.entry_id
            query = pb.MatchRequest(queries=[pb.HashQuery(algorithm="MD5", value=value)])
            await stubs[0].Submit(pb.SubmitRequest(entries=[entry_to_pb(entry)]), timeout=10)
            acked = time.perf_counter()

            took = await asyncio.gather(
                *(
                    _found_after(s, query, acked, f"{n.config.dir.name}: entry {k}")
                    for n, s in zip(nodes, stubs, strict=True)
                )
            )
            for n, t in zip(nodes, took, strict=True):
                out[n.config.dir.name].append(t)
    finally:
        for ch in channels:
            await ch.close()
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--entries", type=int, default=100_000)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--callers", type=int, default=8)
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--hit-rate", type=float, default=0.01)
    p.add_argument("--fresh", type=int, default=100, help="entries timed for freshness")
    args = p.parse_args()
    root = Path(tempfile.mkdtemp(prefix="ccnode-replicas-"))
    cfg, me, keys = member_node(root, args.entries)
    rng = random.Random(1)
    requests = [
        pb.MatchRequest(
            queries=[
                pb.HashQuery(algorithm=a, value=v)
                for a, v in queries(keys, args.batch, args.hit_rate, rng)
            ]
        )
        for _ in range(50)
    ]
    print(
        f"{args.entries:,} entries; Match batches of {args.batch}, {args.hit_rate:.0%} hits; "
        f"{args.callers} callers; {os.cpu_count()} cores; load average "
        f"{os.getloadavg()[0]:.1f} at start"
    )
    primary = MeshNode(cfg, signer(ORIGIN), me)
    mesh = Mesh(root, [primary])
    try:
        mesh.start(60)
        replicas = []
        for i in range(2):
            rcfg = init_replica_dir(cfg.dir, root / f"replica-{i}", primary.address)
            replicas.append(MeshNode(rcfg, primary.signer, me))
        mesh.nodes.extend(replicas)
        for r in replicas:
            t0 = time.perf_counter()
            mesh.start_node(r)
            mesh.wait_ready(120, [r])
            took = time.perf_counter() - t0 + asyncio.run(caught_up(r, 600))
            print(
                f"{r.config.dir.name}: caught up {args.entries:,} entries in {took:.1f} s "
                f"({args.entries / took:,.0f} entries/s, start to SERVING)"
            )
        runs = [
            ("member node alone (baseline)", [primary]),
            ("1 replica", replicas[:1]),
            ("2 replicas, round_robin", replicas),
        ]
        base = 0.0
        for name, targets in runs:
            cpu0 = {n.config.dir.name: tree_cpu_seconds(n.process.pid) for n in mesh.nodes}  # type: ignore[union-attr]
            client0 = time.process_time()
            rate, calls = asyncio.run(
                throughput(
                    primary, [n.address for n in targets], requests, args.callers, args.seconds
                )
            )
            cpu = {
                n.config.dir.name: tree_cpu_seconds(n.process.pid) - cpu0[n.config.dir.name]  # type: ignore[union-attr]
                for n in mesh.nodes
            }
            base = base or rate
            used = ", ".join(f"{k} {v / args.seconds:.2f}" for k, v in cpu.items())
            print(
                f"{name}: {rate:,.0f} lookups/s ({calls:,.0f} calls/s), "
                f"{rate / base:.2f}x the baseline; CPU cores used: {used}, client "
                f"{(time.process_time() - client0) / args.seconds:.2f}"
            )
        if args.fresh:
            times = asyncio.run(freshness(primary, replicas, args.fresh))
            for name, ts in times.items():
                ms = sorted(t * 1000 for t in ts)
                role = "member node (baseline)" if name == primary.config.dir.name else name
                print(
                    f"freshness, Submit answered to matchable on {role}: p50 "
                    f"{ms[len(ms) // 2]:.1f} p99 {ms[min(len(ms) - 1, int(len(ms) * 0.99))]:.1f}"
                    f" max {ms[-1]:.1f} ms (n={len(ms)})"
                )
    finally:
        mesh.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
