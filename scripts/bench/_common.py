"""Shared pieces for the benchmarks: meshes, follow-stream watchers, percentiles."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from node.core.entry import EntryBody, Kind, SignedEntry
from node.mesh import MeshNode


def store_adds(node: MeshNode, items: Iterable[tuple[str, bytes]]) -> None:
    """ADD entries of these (algorithm, hash) by the node's member, after
    what its store holds, straight into its store before it starts (in
    batches of 1000, one transaction each)."""
    from node.store.lmdb_store import LmdbStore

    store = LmdbStore(node.config.data_dir)
    try:
        head = store.head(node.config.id)
        seq, prev = head.next_seq, head.head_id
        batch: list[SignedEntry] = []

        def flush() -> None:
            assert store.ingest(batch, atomic=True, now_ms=0).errors == []
            batch.clear()

        for algorithm, value in items:
            body = EntryBody(
                origin=node.config.id,
                seq=seq,
                prev=prev,
                key_id=node.signer.key_id,
                time_ms=0,
                kind=Kind.ADD,
                algorithm=algorithm,
                hash=value,
            )
            entry = node.signer.sign(body)
            batch.append(entry)
            seq, prev = seq + 1, entry.entry_id
            if len(batch) == 1000:
                flush()
        if batch:
            flush()
    finally:
        store.close()


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))
    return s[k]


def summary(values: list[float]) -> str:
    if not values:
        return "no samples"
    return (
        f"p50 {percentile(values, 50):7.1f}  p95 {percentile(values, 95):7.1f}  "
        f"p99 {percentile(values, 99):7.1f}  max {max(values):7.1f}  (n={len(values)})"
    )


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    """Resident memory of a process in KiB: ``VmRSS`` (all), ``RssAnon`` (heap,
    what a leak grows) or ``RssFile`` (mapped file pages: LMDB's, which grow
    with the stored data and the kernel may drop)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process (and its reaped children) has used."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # After the command: state is field 3; utime, stime, cutime, cstime are 14-17.
    ticks = sum(int(f) for f in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """:func:`cpu_seconds` of a process plus its live children (verify workers)."""
    total = cpu_seconds(pid)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid:
            total += cpu_seconds(int(stat.parent.name))
    return total


def verify_cost_us(n: int = 2000) -> float:
    """One Ed25519 verification as the node does it (libsodium), in CPU µs."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from node.core import ed25519
    from node.core.trust import raw_public_key

    key = Ed25519PrivateKey.generate()
    msg = b"x" * 200
    sig = key.sign(msg)
    raw = raw_public_key(key.public_key())
    t0 = time.process_time()
    for _ in range(n):
        ed25519.verify(raw, msg, sig)
    return (time.process_time() - t0) / n * 1e6


class Watcher:
    """Follow streams to every node; records when each entry id is served.

    A node serves an entry on its Pull streams only after the transaction
    that stored it committed, so "seen on node i's stream" means "committed
    (and matchable) at node i".
    """

    def __init__(self, nodes: list[MeshNode]) -> None:
        self.nodes = nodes
        self.seen: dict[bytes, dict[int, float]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.ready = 0

    async def start(self, cursors: dict[str, int]) -> None:
        for i, n in enumerate(self.nodes):
            self._tasks.append(asyncio.create_task(self._follow(i, n, dict(cursors))))
        while self.ready < len(self.nodes):
            await asyncio.sleep(0.01)

    async def _follow(self, i: int, node: MeshNode, cursors: dict[str, int]) -> None:
        import hashlib

        async with node.client() as c:  # as that member (mutual TLS)
            first = True
            async for resp in c.pull(cursors, follow=True):
                now = time.monotonic()
                if first:
                    self.ready += 1
                    first = False
                for e in resp.entries:
                    self.seen.setdefault(hashlib.sha256(e.body).digest(), {})[i] = now

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


class Publisher:
    """Signs and submits a member's entries to its own node."""

    def __init__(self, node: MeshNode) -> None:
        self.node = node
        self.seq = 0
        self.prev = bytes(32)
        self.counter = 0

    def next(self, *, urgent: bool = False) -> SignedEntry:
        self.counter += 1
        body = EntryBody(
            origin=self.node.config.id,
            seq=self.seq,
            prev=self.prev,
            key_id=self.node.signer.key_id,
            time_ms=time.time_ns() // 1_000_000,
            kind=Kind.ADD,
            algorithm="SHA256",
            hash=os.urandom(32),
            labels=("behaviour:glorification", "type:video"),
            urgent=urgent,
        )
        entry = self.node.signer.sign(body)
        self.seq += 1
        self.prev = entry.entry_id
        return entry
