"""Exact lookups: batch Match of MD5/SHA-256 over gRPC against a real node.

    python scripts/bench/exact.py [--entries 200000] [--batch 1000] [--seconds 10]
                                  [--hit-rate 0.01]

A node process holds ENTRIES signed MD5/SHA-256 entries. The client sends
batches of BATCH queries (HIT_RATE of them stored hashes, the rest unknown,
as at a platform's upload gate) for SECONDS and reports lookups/s.
Baselines in the same run: the same lookups straight on the LMDB store
(no gRPC, no provenance), and a batch where every query hits (full
provenance and policy for each answer). Goal: >= 100k lookups/s.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from catchup import signer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.config import NodeConfig, new_tls_identity
from node.core.entry import ZERO_ID, EntryBody, Kind
from node.core.roster import EntryKey, Member, MemberKind, default_roles, raw_public_key
from node.member_dir import genesis_roster, install_roster
from node.mesh import Mesh, MeshNode
from node.store.lmdb_store import LmdbStore

ORIGIN = "gov.example/ct"


def build(cfg: NodeConfig, n: int) -> list[tuple[str, bytes]]:
    s = signer(ORIGIN)
    store = LmdbStore(cfg.data_dir)
    prev, batch, keys = ZERO_ID, [], []
    for seq in range(n):
        algo = "MD5" if seq % 2 else "SHA256"
        raw = hashlib.sha256(seq.to_bytes(8, "big")).digest()
        value = raw[:16] if algo == "MD5" else raw
        e = s.sign(
            EntryBody(
                origin=ORIGIN,
                seq=seq,
                prev=prev,
                key_id=s.key_id,
                time_ms=0,
                kind=Kind.ADD,
                algorithm=algo,
                hash=value,
                labels=("type:video",),
            )
        )
        prev = e.entry_id
        batch.append(e)
        keys.append((algo, value))
        if len(batch) == 10_000:
            store.ingest(batch, atomic=True, now_ms=0)
            batch = []
    if batch:
        store.ingest(batch, atomic=True, now_ms=0)
    store.close()
    return keys


def queries(
    keys: list[tuple[str, bytes]], batch: int, hit_rate: float, rng: random.Random
) -> list[tuple[str, bytes]]:
    out = []
    for _ in range(batch):
        if rng.random() < hit_rate:
            out.append(rng.choice(keys))
        else:
            out.append(
                ("MD5", os.urandom(16)) if rng.random() < 0.5 else ("SHA256", os.urandom(32))
            )
    return out


async def over_grpc(
    node: MeshNode, batches: list[list[tuple[str, bytes]]], seconds: float
) -> tuple[float, int]:
    from node.rpc._pb.consortium.v1 import node_pb2 as pb

    # Requests are built once, as an upload gate batching hashes would, so the
    # client's protobuf work does not take the server's share of 2 cores.
    requests = [
        pb.MatchRequest(queries=[pb.HashQuery(algorithm=a, value=v) for a, v in b]) for b in batches
    ]
    async with node.client(deadline_s=30) as c:  # mutual TLS, as the member
        await c.stub.Match(requests[0], timeout=30)  # warm up
        n = 0
        t0 = time.perf_counter()
        i = 0
        while time.perf_counter() - t0 < seconds:
            r = await c.stub.Match(requests[i % len(requests)], timeout=30)
            n += len(r.results)
            i += 1
        return n / (time.perf_counter() - t0), i


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--entries", type=int, default=200_000)
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--hit-rate", type=float, default=0.01)
    args = p.parse_args()
    root = Path(tempfile.mkdtemp(prefix="ccnode-exact-"))
    t0 = time.perf_counter()
    cfg, me, keys = member_node(root, args.entries)
    print(f"store: {args.entries:,} MD5/SHA-256 entries built in {time.perf_counter() - t0:.1f} s")
    rng = random.Random(1)
    batches = [queries(keys, args.batch, args.hit_rate, rng) for _ in range(20)]

    store = LmdbStore(cfg.data_dir)
    t0 = time.perf_counter()
    n = 0
    while time.perf_counter() - t0 < 2:
        for b in batches:
            store.lookup_many(b)
            n += len(b)
    print(f"baseline, LMDB lookup_many in process: {n / (time.perf_counter() - t0):,.0f} lookups/s")
    store.close()

    mesh = Mesh(root, [MeshNode(cfg, signer(ORIGIN), me)])
    try:
        mesh.start(60)
        rate, calls = asyncio.run(over_grpc(mesh.nodes[0], batches, args.seconds))
        print(
            f"Match over gRPC, batches of {args.batch}, {args.hit_rate:.0%} hits: "
            f"{rate:,.0f} lookups/s ({calls} calls; goal >= 100,000/s)"
        )
        all_hits = [queries(keys, args.batch, 1.0, rng) for _ in range(5)]
        rate, calls = asyncio.run(over_grpc(mesh.nodes[0], all_hits, args.seconds / 2))
        print(
            f"Match over gRPC, batches of {args.batch}, every query a hit (full provenance "
            f"and policy per answer): {rate:,.0f} lookups/s ({calls} calls)"
        )
    finally:
        mesh.stop()
    return 0


def member_node(root: Path, entries: int) -> tuple[NodeConfig, Member, list[tuple[str, bytes]]]:
    """A TLS member directory under ROOT whose store holds ENTRIES signed
    MD5/SHA-256 entries (built offline); returns it, its card and the keys."""
    cfg = NodeConfig(
        dir=root / "node",
        id=ORIGIN,
        kind=MemberKind.GOVERNMENT,
        jurisdiction="NZ",
        anti_entropy_s=0,
    )
    (cfg.dir / "keys").mkdir(parents=True)
    cfg.save()
    identity = new_tls_identity(
        cfg.dir / cfg.tls_key_file, cfg.dir / cfg.tls_cert_file, ORIGIN, time.time_ns() // 1_000_000
    )
    me = Member(
        ORIGIN,
        MemberKind.GOVERNMENT,
        "NZ",
        (EntryKey(raw_public_key(signer(ORIGIN).public_key)),),
        roles=default_roles(MemberKind.GOVERNMENT),
        tls_cert=identity.cert_der,
    )
    install_roster(cfg, genesis_roster([me], [Ed25519PrivateKey.generate()]))
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
    )

    key = cfg.dir / cfg.key_file
    key.write_bytes(
        signer(ORIGIN).private_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    )
    key.chmod(0o600)
    return cfg, me, build(cfg, entries)


if __name__ == "__main__":
    sys.exit(main())
