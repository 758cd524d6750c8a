"""Catch-up: a fresh node joins and syncs a large store from a peer.

    python scripts/bench/catchup.py [--entries 1000000] [--origins 20] [--keep DIR]

Builds a source node holding ENTRIES signed entries from ORIGINS members,
starts it and a fresh node that pulls from it (both real processes), and
reports verified-and-committed entries/s at the fresh node, plus Match
latency at the fresh node while it catches up. Baseline in the same run:
raw Ed25519 verifications/s with `cryptography` on 1 and 2 threads (the
physical limit of catch-up).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cpu_seconds, percentile, rss_kib, tree_cpu_seconds, verify_cost_us
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.config import NodeConfig, PeerConfig, load_identity, new_tls_identity
from node.core import ed25519
from node.core.entry import ZERO_ID, EntryBody, Kind, Signer
from node.core.roster import EntryKey, Member, MemberKind, default_roles, raw_public_key
from node.errors import PeerError
from node.member_dir import genesis_roster, install_roster
from node.mesh import Mesh, MeshNode
from node.store.lmdb_store import LmdbStore


def signer(name: str) -> Signer:
    return Signer(Ed25519PrivateKey.from_private_bytes(hashlib.sha256(name.encode()).digest()))


def origin_chain(args: tuple[str, int]) -> list[bytes]:
    name, count = args
    s = signer(name)
    prev, out = ZERO_ID, []
    for seq in range(count):
        body = EntryBody(
            origin=name,
            seq=seq,
            prev=prev,
            key_id=s.key_id,
            time_ms=1_700_000_000_000 + seq,
            kind=Kind.ADD,
            algorithm="MD5",
            hash=hashlib.md5(f"{name}/{seq}".encode()).digest(),
            labels=("behaviour:glorification", "type:video"),
        )
        e = s.sign(body)
        prev = e.entry_id
        out.append(e.to_bytes())
    return out


def verify_baseline(threads: int, n: int = 20000, *, lib: str = "cryptography") -> float:
    """Raw Ed25519 verifications/s on ``threads`` threads, with ``cryptography``
    (OpenSSL) or ``nacl`` (libsodium, what the node uses for entries)."""
    key = Ed25519PrivateKey.generate()
    pub = key.public_key()
    raw = raw_public_key(pub)
    msgs = [i.to_bytes(4, "big") * 50 for i in range(n)]
    sigs = [key.sign(m) for m in msgs]

    def work(lo: int, hi: int) -> None:
        if lib == "nacl":
            for i in range(lo, hi):
                if not ed25519.verify(raw, msgs[i], sigs[i]):
                    raise AssertionError("a good signature failed")
        else:
            for i in range(lo, hi):
                pub.verify(sigs[i], msgs[i])

    per = n // threads
    ts = [threading.Thread(target=work, args=(i * per, (i + 1) * per)) for i in range(threads)]
    t0 = time.perf_counter()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return per * threads / (time.perf_counter() - t0)


async def watch(
    sink: MeshNode, total: int, probe_hash: bytes
) -> tuple[float, list[float], list[int]]:
    match_ms: list[float] = []
    t0 = time.monotonic()
    async with sink.client(deadline_s=5) as c:
        while True:
            t = time.monotonic()
            await c.match([("MD5", probe_hash)])
            match_ms.append((time.monotonic() - t) * 1000)
            if len(match_ms) % 10 == 0 and int((await c.status()).entries) >= total:
                return time.monotonic() - t0, match_ms, []
            await asyncio.sleep(0.05)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--entries", type=int, default=1_000_000)
    p.add_argument("--origins", type=int, default=20)
    p.add_argument("--keep", type=Path, help="build/keep the source store here (reused if present)")
    args = p.parse_args()
    names = [f"member-{i:02}.example" for i in range(args.origins)]
    per = args.entries // args.origins
    total = per * args.origins
    root = args.keep or Path(tempfile.mkdtemp(prefix="ccnode-catchup-"))
    src_cfg = NodeConfig(
        dir=root / "source",
        id=names[0],
        kind=MemberKind.PLATFORM,
        jurisdiction="NZ",
        anti_entropy_s=0,
    )
    sink_cfg = NodeConfig(
        dir=root / "sink",
        id=names[1],
        kind=MemberKind.PLATFORM,
        jurisdiction="NZ",
        anti_entropy_s=0,
        peers=(PeerConfig(names[0], address_file="../source/node.addr"),),
    )
    certs: dict[str, bytes] = {}
    for cfg in (src_cfg, sink_cfg):
        (cfg.dir / "keys").mkdir(parents=True, exist_ok=True)
        tls_key, tls_cert = cfg.dir / cfg.tls_key_file, cfg.dir / cfg.tls_cert_file
        identity = (
            load_identity(tls_key, tls_cert)
            if tls_key.exists()
            else new_tls_identity(tls_key, tls_cert, cfg.id, time.time_ns() // 1_000_000)
        )
        certs[cfg.id] = identity.cert_der
        cfg.save()
        key = cfg.dir / cfg.key_file
        if not key.exists():
            from cryptography.hazmat.primitives.serialization import (
                Encoding,
                NoEncryption,
                PrivateFormat,
            )

            key.write_bytes(
                signer(cfg.id).private_key.private_bytes(
                    Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
                )
            )
            key.chmod(0o600)
    # The consortium: every origin's entry key; the two nodes' TLS keys (mutual TLS).
    members = [
        Member(
            n,
            MemberKind.PLATFORM,
            "NZ",
            (EntryKey(raw_public_key(signer(n).public_key)),),
            roles=default_roles(MemberKind.PLATFORM),
            tls_cert=certs.get(n, b""),
        )
        for n in names
    ]
    roster = genesis_roster(members, [Ed25519PrivateKey.generate()])
    for cfg in (src_cfg, sink_cfg):
        install_roster(cfg, roster)
    import shutil

    shutil.rmtree(sink_cfg.data_dir, ignore_errors=True)

    store = LmdbStore(src_cfg.data_dir)
    have = sum(h.next_seq for h in store.heads().values())
    if have != total:
        store.close()
        shutil.rmtree(src_cfg.data_dir)
        store = LmdbStore(src_cfg.data_dir)
        t0 = time.perf_counter()
        with multiprocessing.Pool(2) as pool:
            for chain in pool.imap_unordered(origin_chain, [(n, per) for n in names]):
                from node.core.entry import SignedEntry

                entries = [SignedEntry.from_bytes(raw) for raw in chain]
                for i in range(0, len(entries), 20000):
                    store.ingest(entries[i : i + 20000], atomic=True, now_ms=0)
        print(
            f"built source store: {total} entries from {args.origins} origins "
            f"in {time.perf_counter() - t0:.0f} s"
        )
    store.close()

    print(
        f"baseline: Ed25519 verify with cryptography: {verify_baseline(1):,.0f}/s on 1 thread, "
        f"{verify_baseline(2):,.0f}/s on 2 threads; with libsodium (the node's): "
        f"{verify_baseline(1, lib='nacl'):,.0f}/s on 1 thread, "
        f"{verify_baseline(2, lib='nacl'):,.0f}/s on 2 threads"
    )
    probe = hashlib.md5(f"{names[3]}/{per - 1}".encode()).digest()
    by_id = {m.id: m for m in members}
    mesh = Mesh(
        root,
        [
            MeshNode(src_cfg, signer(src_cfg.id), by_id[src_cfg.id]),
            MeshNode(sink_cfg, signer(sink_cfg.id), by_id[sink_cfg.id]),
        ],
    )
    src, sink = mesh.nodes
    try:
        mesh.start_node(src)
        mesh.nodes = [src]
        mesh.wait_ready(120)
        mesh.nodes = [src, sink]
        mesh.start_node(sink)
        t_start = time.monotonic()
        mesh.wait_ready(120)
        assert src.process is not None and sink.process is not None
        cpu_src0 = cpu_seconds(src.process.pid)
        cpu_sink0 = cpu_seconds(sink.process.pid)
        cpu_tree0 = tree_cpu_seconds(sink.process.pid)
        peak = [0]

        def sample() -> None:
            while sink.process and sink.process.poll() is None:
                peak[0] = max(peak[0], rss_kib(sink.process.pid))
                time.sleep(0.5)

        threading.Thread(target=sample, daemon=True).start()
        elapsed, match_ms, _ = asyncio.run(watch(sink, total, probe))
        elapsed = time.monotonic() - t_start
        # Measured at the end, while the verify workers are still alive.
        src_us = (cpu_seconds(src.process.pid) - cpu_src0) / total * 1e6
        sink_us = (cpu_seconds(sink.process.pid) - cpu_sink0) / total * 1e6
        workers_us = (tree_cpu_seconds(sink.process.pid) - cpu_tree0) / total * 1e6 - sink_us
        floor_us = verify_cost_us()
        all_us = src_us + sink_us + workers_us
        print(
            f"catch-up: {total:,} entries verified and committed in {elapsed:.1f} s = "
            f"{total / elapsed:,.0f} entries/s (goal >= 20,000/s)"
        )
        print(
            f"Match at the joining node during catch-up: p50 {percentile(match_ms, 50):.1f} ms, "
            f"p99 {percentile(match_ms, 99):.1f} ms, max {max(match_ms):.1f} ms "
            f"({len(match_ms)} queries)"
        )
        print(f"joining node peak RSS: {peak[0] / 1024:.0f} MiB")
        cores = os.cpu_count() or 1
        print(
            f"CPU per entry: joining node {sink_us:.0f} us + its verify workers "
            f"{workers_us:.0f} us + source node {src_us:.0f} us = {all_us:.0f} us "
            f"(floor: one signature check, {floor_us:.0f} us); at that cost {cores} cores "
            f"fully busy would commit {cores / all_us * 1e6:,.0f} entries/s"
        )
    except PeerError as exc:
        print(f"failed: {exc}")
        return 1
    finally:
        mesh.nodes = [src, sink]
        mesh.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
