"""Ingest alone: what storing verified entries costs as a store grows.

    python scripts/bench/ingest.py [--entries 1000000] [--origins 20] [--batch 1024]

Signs ENTRIES entries from ORIGINS members, then ingests them into a fresh
LMDB store in BATCH-entry write transactions, in the order a catch-up Pull
delivers them (runs of 256 per origin in turn), and prints the cost per
entry for every 100k: wall time and CPU time of decoding plus the ingest
transaction (entry, tree hashes, id and hash indexes, heads, cursors, and
the commit with fsync). No verification, no network. Baseline in the same
run: decoding the same entries alone.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: F401 - puts the repository on sys.path
from catchup import origin_chain

from node.core.entry import SignedEntry
from node.store.lmdb_store import LmdbStore

STEP = 100_000


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--entries", type=int, default=200_000)
    p.add_argument("--origins", type=int, default=20)
    p.add_argument("--batch", type=int, default=1024)
    args = p.parse_args()
    per = args.entries // args.origins
    names = [f"member-{i:02}.example" for i in range(args.origins)]
    t0 = time.perf_counter()
    with multiprocessing.Pool(2) as pool:
        chains = pool.map(origin_chain, [(n, per) for n in names])
    print(f"signed {per * args.origins:,} entries in {time.perf_counter() - t0:.0f} s")
    order = [raw for start in range(0, per, 256) for c in chains for raw in c[start : start + 256]]

    c0 = time.process_time()
    for raw in order[: min(len(order), STEP)]:
        SignedEntry.from_bytes(raw)
    decode_us = (time.process_time() - c0) / min(len(order), STEP) * 1e6
    print(f"baseline: decoding alone {decode_us:.1f} us CPU per entry")

    with tempfile.TemporaryDirectory(prefix="ccnode-ingest-") as tmp:
        store = LmdbStore(Path(tmp) / "db")
        wall, cpu, done, mark = time.perf_counter(), time.process_time(), 0, STEP
        for lo in range(0, len(order), args.batch):
            entries = [SignedEntry.from_bytes(raw) for raw in order[lo : lo + args.batch]]
            result = store.write(
                lambda txn, e=entries: store.ingest_in(
                    txn, e, atomic=False, peer="source", now_ms=0
                )
            )
            if result.errors:
                print(f"refused: {result.errors[0][1]}")
                return 1
            done += len(entries)
            if done >= mark or done == len(order):
                n = done - (mark - STEP)
                now_wall, now_cpu = time.perf_counter(), time.process_time()
                print(
                    f"{done:>9,} stored: {(now_wall - wall) / n * 1e6:5.1f} us wall, "
                    f"{(now_cpu - cpu) / n * 1e6:5.1f} us CPU per entry (decode included)"
                )
                wall, cpu, mark = now_wall, now_cpu, mark + STEP
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
