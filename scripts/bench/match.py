"""Benchmark the exact PDQ index against faiss and python-threatexchange, on one core.

    nice python scripts/bench/match.py --n 1000000 [--clustered] [--queries 1000]

Builds a synthetic store of 256-bit hashes (uniform random, or with
``--clustered`` noisy copies of n/1000 centres), replaces 1% of it with
near-duplicates (1..31 bits) of other stored hashes, and draws queries: 80%
near copies (0..40 bits) of stored hashes, 20% random. The same data and
queries then go through:

* ours: ``node.match.pdq_index.PdqIndex``, single queries and one batch;
* faiss ``IndexBinaryFlat`` ``range_search`` (single and batch);
* faiss ``IndexBinaryMultiHash(256, 16, 16)`` with ``nflip = radius // 16``;
* python-threatexchange's PDQ index (``PdqSignal.get_index_cls()``; its
  threshold is fixed at 31 and it answers one query at a time).

Every comparator's (query, item) pairs are checked against ours, and ours
against a numpy brute-force scan on a sample of queries (recall). A
comparator whose package is missing is skipped with the reason printed.
Everything runs on one thread: the OpenMP/BLAS variables are set before
numpy and faiss load, faiss gets ``omp_set_num_threads(1)``, and
threadpoolctl (if installed) limits any other pool. Timings are the best
of ``--repeat`` runs.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse
import gc
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from node.match.pdq_index import DEFAULT_RADIUS, PdqIndex

Pairs = set[tuple[int, int]]


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def best_of(repeat: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


# ------------------------------------------------------------------- data


def flip_rows(rows: np.ndarray, ks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``rows`` (m, 32) uint8 with exactly ``ks[i]`` random bits flipped in row i."""
    out = rows.copy()
    step = 1 << 15
    for lo in range(0, len(rows), step):
        k = ks[lo : lo + step]
        keys = rng.random((len(k), 256))
        kth = np.sort(keys, axis=1)[np.arange(len(k)), np.maximum(k, 1) - 1]
        mask = (keys <= kth[:, None]) & (k[:, None] > 0)
        out[lo : lo + step] ^= np.packbits(mask, axis=1)
    return out


def make_store(n: int, clustered: bool, rng: np.random.Generator) -> np.ndarray:
    if clustered:
        centres = rng.integers(0, 256, (max(1, n // 1000), 32), dtype=np.uint8)
        which = rng.integers(0, len(centres), n)
        store = flip_rows(centres[which], rng.integers(0, 49, n), rng)
    else:
        store = rng.integers(0, 256, (n, 32), dtype=np.uint8)
    planted = n // 100
    src = rng.integers(0, n, planted)
    dst = rng.integers(0, n, planted)
    store[dst] = flip_rows(store[src], rng.integers(1, 32, planted), rng)
    return store


def make_queries(store: np.ndarray, m: int, rng: np.random.Generator) -> np.ndarray:
    near = int(m * 0.8)
    src = rng.integers(0, len(store), near)
    q_near = flip_rows(store[src], rng.integers(0, 41, near), rng)
    q_rand = rng.integers(0, 256, (m - near, 32), dtype=np.uint8)
    q = np.concatenate([q_near, q_rand])
    return q[rng.permutation(m)]


class BruteForce:
    """Exact numpy scan over column-major words: the recall oracle."""

    def __init__(self, store: np.ndarray) -> None:
        words = store.view(np.uint64)
        self.cols = [np.ascontiguousarray(words[:, w]) for w in range(4)]

    def rows(self, q: np.ndarray, radius: int) -> set[int]:
        qw = q.view(np.uint64)
        d = np.bitwise_count(self.cols[0] ^ qw[0]).astype(np.uint16)
        for w in range(1, 4):
            d += np.bitwise_count(self.cols[w] ^ qw[w])
        return set(np.flatnonzero(d <= radius).tolist())


# ------------------------------------------------------------ contenders


def trim() -> None:
    """Collect garbage and hand freed heap back to the OS, so RSS deltas mean something."""
    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


@dataclass
class Contender:
    """One index under test: how to build it, and how to answer queries."""

    key: str
    name: str
    build: Callable[[], Any]
    single: Callable[[Any], list[set[int]]]
    batch: Callable[[Any], list[set[int]]] | None
    bytes_per_hash: Callable[[Any], float] | None = None
    note: str = ""
    index: Any = None
    build_s: float = float("nan")
    rss_mib: float = float("nan")
    single_s: float = float("inf")
    batch_s: float = float("inf")
    pairs: Pairs = field(default_factory=set)


def pairs_of(per_query: list[set[int]]) -> Pairs:
    return {(qi, item) for qi, items in enumerate(per_query) for item in items}


def ours(store: np.ndarray, queries: list[bytes], radius: int) -> Contender:
    def build() -> PdqIndex:
        index = PdqIndex()
        index.add_many(np.arange(len(store)), store)
        return index

    return Contender(
        "ours",
        "ours (PdqIndex)",
        build,
        lambda ix: [{i for i, _ in ix.search(q, radius)} for q in queries],
        lambda ix: [{i for i, _ in hits} for hits in ix.search_batch(queries, radius)],
        lambda ix: ix.bytes_per_hash(),
    )


def faiss_contender(key: str, store: np.ndarray, qarr: np.ndarray, radius: int) -> Contender:
    import faiss

    faiss.omp_set_num_threads(1)

    def build() -> Any:
        if key == "faiss-flat":
            index = faiss.IndexBinaryFlat(256)
        else:
            index = faiss.IndexBinaryMultiHash(256, 16, 16)
            index.nflip = radius // 16
        index.add(store)
        return index

    def per_query(lims: np.ndarray, ids: np.ndarray) -> list[set[int]]:
        return [set(ids[lims[i] : lims[i + 1]].tolist()) for i in range(len(lims) - 1)]

    def single(index: Any) -> list[set[int]]:
        out = []
        for i in range(len(qarr)):
            # faiss keeps distances strictly below the threshold
            _, _, ids = index.range_search(qarr[i : i + 1], radius + 1)
            out.append(set(ids.tolist()))
        return out

    def batch(index: Any) -> list[set[int]]:
        lims, _, ids = index.range_search(qarr, radius + 1)
        return per_query(lims, ids)

    name = (
        "faiss IndexBinaryFlat"
        if key == "faiss-flat"
        else f"faiss IndexBinaryMultiHash(256,16,16) nflip={radius // 16}"
    )
    return Contender(key, name, build, single, batch)


def threatexchange(store: np.ndarray, queries: list[bytes], radius: int) -> Contender:
    from threatexchange.signal_type.pdq.signal import PdqSignal

    cls = PdqSignal.get_index_cls()
    if radius != cls.get_match_threshold():
        raise RuntimeError(f"its threshold is fixed at {cls.get_match_threshold()}, not {radius}")
    hexes = [h.hex() for h in queries]

    def build() -> Any:
        return cls.build((bytes(h).hex(), i) for i, h in enumerate(store))

    return Contender(
        "threatexchange",
        f"threatexchange {cls.__name__}",
        build,
        lambda ix: [{int(m.metadata) for m in ix.query(h)} for h in hexes],
        None,
        note="no batch API; its build time includes making and parsing hex strings",
    )


# ------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=1_000_000, help="stored hashes")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--clustered", action="store_true", help="noisy copies of n/1000 centres")
    ap.add_argument("--radius", type=int, default=DEFAULT_RADIUS)
    ap.add_argument("--recall-sample", type=int, default=100, help="queries checked by brute force")
    ap.add_argument("--repeat", type=int, default=3, help="timing rounds; the best is kept")
    ap.add_argument(
        "--skip", default="", help="comma list of: faiss-flat, faiss-mih, threatexchange"
    )
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}

    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:
        pass

    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    store = make_store(args.n, args.clustered, rng)
    qarr = make_queries(store, args.queries, rng)
    queries = [bytes(q) for q in qarr]
    print(
        f"# n={args.n:,} {'clustered' if args.clustered else 'uniform'} "
        f"queries={args.queries} radius={args.radius} one thread; "
        f"data made in {time.perf_counter() - t0:.1f}s",
        flush=True,
    )

    makers: list[tuple[str, Callable[[], Contender]]] = [
        ("ours", lambda: ours(store, queries, args.radius)),
        ("faiss-flat", lambda: faiss_contender("faiss-flat", store, qarr, args.radius)),
        ("faiss-mih", lambda: faiss_contender("faiss-mih", store, qarr, args.radius)),
        ("threatexchange", lambda: threatexchange(store, queries, args.radius)),
    ]
    contenders: list[Contender] = []
    for key, make in makers:
        if key in skip:
            print(f"  {key}: skipped (--skip)", flush=True)
            continue
        try:
            c = make()
        except ImportError as e:
            print(f"  {key}: skipped, package missing: {e}", flush=True)
            continue
        except RuntimeError as e:
            print(f"  {key}: skipped: {e}", flush=True)
            continue
        trim()
        before = rss_mib()
        t = time.perf_counter()
        c.index = c.build()
        c.build_s = time.perf_counter() - t
        trim()
        c.rss_mib = rss_mib() - before
        contenders.append(c)
        print(f"  built {c.name} in {c.build_s:.1f}s (+{c.rss_mib:.0f} MiB RSS)", flush=True)

    # timing rounds interleave the contenders, so load from other processes
    # on the machine hits them alike; the best round counts
    for _ in range(args.repeat):
        for c in contenders:
            t = time.perf_counter()
            out = c.single(c.index)
            c.single_s = min(c.single_s, time.perf_counter() - t)
            c.pairs = pairs_of(out)
            if c.batch is not None:
                t = time.perf_counter()
                out = c.batch(c.index)
                c.batch_s = min(c.batch_s, time.perf_counter() - t)
                if pairs_of(out) != c.pairs:
                    print(f"  {c.name}: batch and single answers differ", flush=True)
                    c.pairs = set()

    me = contenders[0]
    if me.key != "ours":
        print("ours was skipped: nothing to compare")
        return 1
    nq = len(queries)

    # recall against a brute-force scan, on a sample of queries
    bf = BruteForce(store)
    sample = range(min(args.recall_sample, nq))
    truth = {(qi, r) for qi in sample for r in bf.rows(qarr[qi], args.radius)}
    got = {(qi, r) for qi, r in me.pairs if qi < len(sample)}
    recall = len(truth & got) / len(truth) if truth else 1.0
    extra = len(got - truth)

    print()
    print(
        f"{'index':<44} {'build s':>7} {'+RSS MiB':>8} {'B/hash':>6} {'single q/s':>10} "
        f"{'batch q/s':>9} {'same':>4} {'ours/it single':>14} {'ours/it batch':>13}"
    )
    for c in contenders:
        single_qps = nq / c.single_s
        batch_qps = nq / c.batch_s if c.batch is not None else float("nan")
        bph = c.bytes_per_hash(c.index) if c.bytes_per_hash else c.rss_mib * 2**20 / len(store)
        same = "-" if c is me else ("yes" if c.pairs == me.pairs else "NO")
        r1 = c.single_s / me.single_s
        rb = (c.batch_s if c.batch is not None else c.single_s) / me.batch_s
        print(
            f"{c.name:<44} {c.build_s:>7.2f} {c.rss_mib:>8.0f} {bph:>6.0f} {single_qps:>10,.0f} "
            f"{batch_qps:>9,.0f} {same:>4} {r1:>14.2f} {rb:>13.2f}"
        )
        if c is not me and c.pairs != me.pairs:
            only_it, only_me = len(c.pairs - me.pairs), len(me.pairs - c.pairs)
            print(f"    differs: {only_it} pairs only in it, {only_me} only in ours")
    print()
    print(
        f"ours: recall vs brute force on {len(sample)} queries = {recall:.4f} "
        f"({len(truth)} true pairs, {extra} extra); {len(me.pairs)} pairs over {nq} queries"
    )
    print("B/hash: ours from its arrays (bytes_per_hash); others from the RSS growth of the build")
    print("ours/it batch: its batch time (its single time if it has no batch API) / our batch time")
    for c in contenders:
        if c.note:
            print(f"{c.name}: {c.note}")

    # incremental adds (with buffer merges) on top of the bulk load, and the
    # single-query rate with a part-full buffer
    index = me.index
    extra_hashes = [bytes(h) for h in rng.integers(0, 256, (20000, 32), dtype=np.uint8)]
    t = time.perf_counter()
    for k, h in enumerate(extra_hashes):
        index.add(len(store) + k, h)
    t_add = time.perf_counter() - t
    t = time.perf_counter()
    for q in queries:
        index.search(q, args.radius)
    t_q = time.perf_counter() - t
    print(
        f"ours: 20,000 single adds at {len(extra_hashes) / t_add:,.0f}/s including merges; "
        f"then {nq / t_q:,.0f} single q/s with {index._buf_n} hashes in the buffer"
    )
    t = time.perf_counter()
    for k in range(0, len(store), 9):
        index.remove(k)
    t_rm = time.perf_counter() - t
    print(
        f"ours: {len(range(0, len(store), 9)):,} removes in {t_rm:.1f}s "
        f"(including purges); {index.bytes_per_hash():.1f} B/hash after"
    )
    ok = recall == 1.0 and extra == 0 and all(c.pairs == me.pairs for c in contenders)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
