"""The audio index at scale: search time, build time and memory against brute force.

    python scripts/bench/audio_index.py [--tracks 100000] [--items 1450]
        [--queries 400] [--brute-queries 40] [--brute-tracks 60]
        [--baseline-rev REV] [--baseline-queries 40] [--seed 1] [--calibrate]
        [--search key_bits=24,anchor_stride=2,...]

The bank is generated, not fingerprinted (5,000 hours of audio cannot be
decoded here): TRACKS tracks of ITEMS Chromaprint sub-fingerprints each
(1,450 = 3 minutes), from a model calibrated on the real sub-fingerprints in
../shared/vectors/chromaprint/reference (``fpcalc -raw`` output). The model
and its numbers (``--calibrate`` prints them beside the vectors'):

- **Items.** Each of the 32 bits is a two-state Markov chain: it flips
  between consecutive items at the rate measured on ``a`` and
  ``unrelated-b`` (0.01-0.43 a bit, 4.7 bits an item), and its long-run
  share of ones is a per-track bias: the vectors' mean share of that bit
  plus a track-class deviation (normal, the spread measured between ``a``
  and ``b``; 16 classes), so keys are skewed as real ones are.
- **Structure.** Choruses: 40% of tracks repeat a passage of 8-20 s of
  their own later, at a 6% bit error rate. Shared passages: 5% of tracks
  hold 10-30 s copied from another track (a jingle, a sample, the same
  news clip) at 3%. Duplicates: 1% of tracks are another track banked
  again (another upload of the same audio) at 2%. Silence: 25% of tracks
  start and 15% end with 1-5 s of digital silence (its sub-fingerprint,
  0x256df977, every item); 5% hold a 2-8 s held tone (one value) inside.
- **Edits** (queries). Per-bit error rates measured between ``a`` and each
  copy at their best alignment (``mp3-64k``, ``with-noise``, the 4.3 s
  clip whose frames fall between ``a``'s, ``phone-band``, ``room-echo``),
  scaled per item by a log-normal AR(1) intensity fitted to each copy's
  per-item error spread and lag-1 autocorrelation (errors come in bursts:
  phone-band's autocorrelation is 0.64).

Queries: copies of banked tracks with one of those edits each, as a whole
track (dropping 0-40 leading items, some with 0-10 s of other audio in
front), a 10-60 s clip, or a 10-30 s passage inside 3 minutes of other
audio; and non-matching queries (fresh tracks from the model, 3 minutes).

Timed: ``AudioIndex.search`` per query, wall and CPU time of this thread,
on one core (BLAS/OpenMP threads 1; run under ``taskset -c 0`` to pin the
process). Brute force, same run: every offset of a track scored as the
index scores one (the aligned stretch and the thresholds), for
BRUTE_QUERIES queries against the tracks the generator related to the query
(its source, duplicates, shared passages) plus BRUTE_TRACKS random tracks
and every track the index answered; its time per track extrapolates to the
whole bank. The script fails when the index's matches (track, offset,
similarity, is_match) differ from brute force's on those tracks.
``--baseline-rev REV`` also builds the index as it was at git revision REV
(the same bank) and times BASELINE_QUERIES of the same queries with it.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import importlib.util
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from node.match.audio import beyond_chance
from node.match.audio_index import (
    AudioIndex,
    AudioMatch,
    AudioSearch,
    AudioThresholds,
    aligned_stretch,
)
from scripts.bench._common import percentile, rss_kib

U32 = npt.NDArray[np.uint32]
F64 = npt.NDArray[np.float64]
REFERENCE = ROOT.parent / "shared" / "vectors" / "chromaprint" / "reference"
SILENCE = 0x256DF977  # node.media.audio.fingerprint_pcm of digital silence, every item
WEIGHTS = (np.uint64(1) << np.arange(31, -1, -1, dtype=np.uint64)).astype(np.uint32)
EDITS = ("mp3-64k", "with-noise", "clip-4.3s-to-14.3s", "phone-band", "room-echo")
CLASSES = 16
POOL = 1 << 14
TH = AudioThresholds()

# ------------------------------------------------------------ calibration


def reference(name: str) -> U32:
    for line in (REFERENCE / f"{name}.txt").read_text().splitlines():
        if line.startswith("FINGERPRINT="):
            return np.array([int(x) for x in line[12:].split(",")], dtype=np.uint32)
    raise SystemExit(f"{name}: no FINGERPRINT line")


def bits(values: U32) -> npt.NDArray[np.int8]:
    """(n, 32) bits, the top bit (the first classifier's) first."""
    return ((values[:, None] >> np.arange(31, -1, -1, dtype=np.uint32)) & 1).astype(np.int8)


def aligned_pair(a: U32, c: U32) -> tuple[U32, U32]:
    from node.match.audio import align

    al = align(a, c)
    ai, ci = max(0, al.offset), max(0, -al.offset)
    return a[ai : ai + al.overlap], c[ci : ci + al.overlap]


def lag1(x: F64) -> float:
    return float(np.corrcoef(x[1:], x[:-1])[0, 1])


@dataclass(frozen=True)
class Edit:
    rates: F64  # per bit, top bit first
    sigma: float  # log-normal spread of the per-item intensity
    rho: float  # its AR(1) coefficient
    measured: tuple[float, float, float, float]  # BER, item-error std, lag-1, key-within-1 share


@dataclass(frozen=True)
class Model:
    flip: F64  # per bit, between consecutive items
    bias: F64  # share of ones per bit
    spread: float  # per-track deviation of the bias
    edits: dict[str, Edit]
    measured: dict[str, float] = field(default_factory=dict)


def intensity(rng: np.random.Generator, n: int, sigma: float, rho: float) -> F64:
    z = np.empty(n)
    z[0] = rng.standard_normal()
    eps = rng.standard_normal(n) * np.sqrt(1 - rho * rho)
    for i in range(1, n):
        z[i] = rho * z[i - 1] + eps[i]
    out: F64 = np.exp(sigma * z - sigma * sigma / 2)
    return out


def error_masks(rng: np.random.Generator, n: int, edit: Edit) -> U32:
    p = np.minimum(0.5, edit.rates[None, :] * intensity(rng, n, edit.sigma, edit.rho)[:, None])
    flips = rng.random((n, 32)) < p
    out: U32 = (flips.astype(np.uint32) * WEIGHTS).sum(axis=1, dtype=np.uint32)
    return out


def key_within_one(x: U32, y: U32) -> float:
    return float(np.mean(np.bitwise_count((x ^ y) >> np.uint32(12)) <= 1))


def calibrate() -> Model:
    a, b = reference("a"), reference("unrelated-b")
    ba, bb = bits(a), bits(b)
    flip = ((ba[1:] != ba[:-1]).mean(0) + (bb[1:] != bb[:-1]).mean(0)) / 2
    bias = (ba.mean(0) + bb.mean(0)) / 2
    spread = float(np.std(ba.mean(0) - bb.mean(0)) / np.sqrt(2))
    measured = {
        "flips_per_item": float(
            (np.bitwise_count(a[1:] ^ a[:-1]).mean() + np.bitwise_count(b[1:] ^ b[:-1]).mean()) / 2
        ),
        "flips_std": float(np.bitwise_count(a[1:] ^ a[:-1]).std()),
    }
    edits = {}
    rng = np.random.default_rng(0)
    for name in EDITS:
        x, y = aligned_pair(a, reference(f"a-{name}"))
        e = bits(x ^ y)
        rates = e.mean(0).astype(np.float64)
        per_item = e.sum(1).astype(np.float64)
        target = (float(per_item.std()), lag1(per_item) if per_item.std() else 0.0)
        best: tuple[float, float, float] | None = None
        for sigma in np.arange(0.0, 1.61, 0.1):
            for rho in np.arange(0.0, 0.96, 0.05):
                trial = Edit(rates, float(sigma), float(rho), (0, 0, 0, 0))
                sim = np.bitwise_count(error_masks(rng, 4000, trial)).astype(np.float64)
                got = (float(sim.std()), lag1(sim) if sim.std() else 0.0)
                cost = (got[0] - target[0]) ** 2 / max(target[0], 0.5) ** 2 + (
                    got[1] - target[1]
                ) ** 2
                if best is None or cost < best[0]:
                    best = (cost, float(sigma), float(rho))
        assert best is not None
        edits[name] = Edit(
            rates,
            round(best[1], 2),
            round(best[2], 2),
            (float(e.mean()), target[0], target[1], key_within_one(x, y)),
        )
    return Model(flip, bias, spread, edits, measured)


# ------------------------------------------------------------ the bank


@dataclass
class Bank:
    values: U32  # (tracks, items)
    related: dict[int, set[int]]  # track -> tracks sharing audio with it


def mask_pool(rng: np.random.Generator, rates: F64) -> U32:
    flips = rng.random((POOL, 32)) < rates[None, :]
    out: U32 = (flips.astype(np.uint32) * WEIGHTS).sum(axis=1, dtype=np.uint32)
    return out


class Generator:
    """Markov sub-fingerprint streams, in 16 bias classes."""

    def __init__(self, model: Model, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.model = model
        rng = self.rng
        self.bias = np.clip(
            model.bias[None, :] + rng.normal(0, model.spread, (CLASSES, 32)), 0.05, 0.95
        )
        f = model.flip[None, :]
        up = np.minimum(1.0, f / (2 * (1 - self.bias)))  # P(0 -> 1)
        down = np.minimum(1.0, f / (2 * self.bias))  # P(1 -> 0)
        self.up = np.stack([mask_pool(rng, up[c]) for c in range(CLASSES)])
        self.down = np.stack([mask_pool(rng, down[c]) for c in range(CLASSES)])
        self.start = np.stack([mask_pool(rng, self.bias[c]) for c in range(CLASSES)])

    def streams(self, n: int, items: int) -> U32:
        rng = self.rng
        cls = rng.integers(0, CLASSES, n)
        out = np.empty((n, items), dtype=np.uint32)
        x = self.start[cls, rng.integers(0, POOL, n)]
        for i in range(items):
            out[:, i] = x
            up = self.up[cls, rng.integers(0, POOL, n)]
            down = self.down[cls, rng.integers(0, POOL, n)]
            x = x ^ ((~x & up) | (x & down))
        return out

    def noisy(self, values: U32, ber: float) -> U32:
        flips = self.rng.random((len(values), 32)) < ber
        out: U32 = values ^ (flips.astype(np.uint32) * WEIGHTS).sum(axis=1, dtype=np.uint32)
        return out

    def bank(self, n: int, items: int) -> Bank:
        rng = self.rng
        v = self.streams(n, items)
        related: dict[int, set[int]] = {}

        def relate(x: int, y: int) -> None:
            related.setdefault(x, set()).add(y)
            related.setdefault(y, set()).add(x)

        for t in np.flatnonzero(rng.random(n) < 0.40):  # choruses
            length = int(rng.integers(65, 162))
            if items < 3 * length:
                continue
            src = int(rng.integers(0, items // 2 - length))
            dst = int(rng.integers(src + length, items - length))
            v[t, dst : dst + length] = self.noisy(v[t, src : src + length], 0.06)
        for t in np.flatnonzero(rng.random(n) < 0.05):  # shared passages
            other = int(rng.integers(0, n))
            length = min(items, int(rng.integers(81, 243)))
            if other == t:
                continue
            src, dst = (int(rng.integers(0, items - length + 1)) for _ in range(2))
            v[t, dst : dst + length] = self.noisy(v[other, src : src + length], 0.03)
            relate(int(t), other)
        for t in np.flatnonzero(rng.random(n) < 0.01):  # duplicates
            other = int(rng.integers(0, n))
            if other != t:
                v[t] = self.noisy(v[other], 0.02)
                relate(int(t), other)
        for t in np.flatnonzero(rng.random(n) < 0.25):  # silence at the start
            v[t, : int(rng.integers(8, 41))] = SILENCE
        for t in np.flatnonzero(rng.random(n) < 0.15):  # and at the end
            v[t, items - int(rng.integers(8, 41)) :] = SILENCE
        for t in np.flatnonzero(rng.random(n) < 0.05):  # a held tone
            length = int(rng.integers(16, 65))
            at = int(rng.integers(0, items - length))
            v[t, at : at + length] = v[t, at]
        return Bank(v, related)


# ------------------------------------------------------------ queries


@dataclass(frozen=True)
class Query:
    kind: str
    edit: str
    source: int  # -1: not banked
    values: U32


def make_queries(gen: Generator, bank: Bank, n: int, model: Model) -> list[Query]:
    rng = gen.rng
    tracks, items = bank.values.shape
    out = []
    kinds = ("whole", "clip", "passage", "negative")
    for k in range(n):
        kind = kinds[k % len(kinds)]
        edit = EDITS[(k // len(kinds)) % len(EDITS)]
        if kind == "negative":
            out.append(Query(kind, "-", -1, gen.streams(1, items)[0]))
            continue
        src = int(rng.integers(0, tracks))
        v = bank.values[src]
        if kind == "whole":
            q = v[int(rng.integers(0, 41)) :]
            if rng.random() < 0.3:
                q = np.concatenate([gen.streams(1, int(rng.integers(8, 81)))[0], q])
        elif kind == "clip":
            length = min(items, int(rng.integers(81, 485)))
            at = int(rng.integers(0, items - length + 1))
            q = v[at : at + length]
        else:
            length = int(rng.integers(81, 243))
            at = int(rng.integers(0, items - length + 1))
            q = gen.streams(1, items)[0]
            put = int(rng.integers(0, items - length + 1))
            q[put : put + length] = v[at : at + length]
        q = q ^ error_masks(rng, len(q), model.edits[edit])
        out.append(Query(kind, edit, src, q))
    return out


# ------------------------------------------------------------ brute force


@dataclass(frozen=True)
class Found:
    offset: int
    similarity: float
    items: int
    is_match: bool


def brute_force(query: U32, banked: U32) -> Found | None:
    """The best matching stretch of ``query`` against ``banked`` over every
    offset (banked item = query item + offset), as the index scores one;
    None when no offset matches."""
    n, m = len(query), len(banked)
    pad = np.zeros(m + 2 * (n - 1), dtype=np.uint32)
    held = np.zeros(len(pad), dtype=np.bool_)
    pad[n - 1 : n - 1 + m] = banked
    held[n - 1 : n - 1 + m] = True
    windows = np.lib.stride_tricks.sliding_window_view(pad, n)  # row r: offset r - (n - 1)
    inside = np.lib.stride_tricks.sliding_window_view(held, n)
    errors = np.where(inside, np.bitwise_count(windows ^ query[None, :]), 32).astype(np.int32)
    gain = TH.stretch_bits - errors
    sums = np.concatenate([np.zeros((len(gain), 1), np.int32), np.cumsum(gain, axis=1)], axis=1)
    lows = np.minimum.accumulate(sums, axis=1)
    rows_all = np.arange(len(sums))
    j = np.argmax(sums - lows, axis=1)
    # each row's stretch [i, j) as aligned_stretch finds it, for all rows at once
    # (sums first reaches lows[j] where the running minimum does)
    i = np.argmax(lows <= lows[rows_all, j][:, None], axis=1)
    k = j - i
    err = TH.stretch_bits * k - (sums[rows_all, j] - sums[rows_all, i])
    sim = 1.0 - err / np.maximum(1, 32 * k)
    # only rows that can match are scored again, exactly as the index scores an offset
    rows = np.flatnonzero((k >= TH.min_items) & (sim >= TH.min_similarity - 1e-9))
    found: Found | None = None
    rank: tuple[int, float, int, int] | None = None
    for r in rows.tolist():
        e = errors[r].astype(np.int64)
        i, j = aligned_stretch(e, TH.stretch_bits)
        k = j - i
        if k < TH.min_items:
            continue
        sim = 1.0 - int(e[i:j].sum()) / (32 * k)
        offset = r - (n - 1)
        distinct = len(np.unique(query[i:j])) / k
        if sim < TH.min_similarity or distinct < TH.min_distinct:
            continue
        if beyond_chance(query[i:j], banked[i + offset : j + offset], sim) < TH.min_beyond_chance:
            continue
        key = (TH.stretch_bits * k - int(e[i:j].sum()), sim, k, -abs(offset))
        if rank is None or key > rank:
            rank, found = key, Found(offset, sim, k, True)
    return found


def as_found(m: AudioMatch) -> Found:
    return Found(m.offset, m.similarity, m.items, m.is_match)


# ------------------------------------------------------------ running


def baseline_module(rev: str) -> ModuleType:
    src = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{rev}:node/match/audio_index.py"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    path = Path(tempfile.mkdtemp(prefix="audio-index-base-")) / "audio_index_base.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("audio_index_base", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def build(cls: Any, bank: Bank) -> tuple[Any, float, float]:
    """(index, build seconds including the first search's lazy part, RSS MiB added)."""
    before = rss_kib(os.getpid())
    t0 = time.perf_counter()
    index = cls()
    for t in range(len(bank.values)):
        index.add(t, 0, bank.values[t])
    index.search(bank.values[0][:8])  # builds the posting arrays
    took = time.perf_counter() - t0
    return index, took, (rss_kib(os.getpid()) - before) / 1024


def timed(index: Any, queries: list[Query]) -> tuple[list[float], list[float], list[Any]]:
    wall, cpu, answers = [], [], []
    for q in queries:
        c0, w0 = time.thread_time(), time.perf_counter()
        got = index.search(q.values)
        wall.append((time.perf_counter() - w0) * 1000)
        cpu.append((time.thread_time() - c0) * 1000)
        answers.append(got)
    return wall, cpu, answers


def line(name: str, ms: list[float]) -> str:
    return (
        f"{name:34} p50 {percentile(ms, 50):7.2f}  p95 {percentile(ms, 95):7.2f}  "
        f"p99 {percentile(ms, 99):7.2f}  max {max(ms):7.2f} ms (n={len(ms)})"
    )


def print_model(model: Model, bank: Bank) -> None:
    v = bank.values
    steps = np.bitwise_count(v[:, 1:] ^ v[:, :-1])
    moving = steps[steps > 0]
    print(
        f"bits flipped between consecutive items: vectors {model.measured['flips_per_item']:.2f} "
        f"(std {model.measured['flips_std']:.2f}), model {moving.mean():.2f} "
        f"(std {moving.std():.2f}); per-track bias spread {model.spread:.3f}"
    )
    print("per-bit flip rate (top bit first):", " ".join(f"{x:.2f}" for x in model.flip))
    print("per-bit share of ones:            ", " ".join(f"{x:.2f}" for x in model.bias))
    bits_ = AudioSearch().key_bits
    posted = np.ones(v.shape, dtype=np.bool_)
    posted[:, 1:] = v[:, 1:] != v[:, :-1]  # run starts, what the index posts
    keys = (v[posted] >> np.uint32(32 - bits_)).astype(np.int64)
    counts = np.bincount(keys, minlength=1 << bits_)
    used = counts[counts > 0]
    print(
        f"keys (top {bits_} bits) posted: {len(keys):,} postings under {len(used):,} of "
        f"{1 << bits_:,} keys; a used key holds mean {used.mean():.1f}, p99 "
        f"{np.percentile(used, 99):.0f}, max {used.max():,} postings (silence "
        f"{counts[SILENCE >> (32 - bits_)]:,}); a posting's key holds "
        f"{counts[keys].astype(np.float64).mean():.0f} postings on average"
    )
    rng = np.random.default_rng(5)
    sample = v[rng.integers(0, len(v), 2000)]
    a, b = reference("a"), reference("unrelated-b")
    pairs_vectors = np.mean(np.bitwise_count((a[:, None] ^ b[None, :]) >> np.uint32(12)) <= 1)
    x = sample[:1000, ::10].reshape(-1)[:3000]
    y = sample[1000:, ::10].reshape(-1)[:3000]
    pairs_model = np.mean(np.bitwise_count((x[:, None] ^ y[None, :]) >> np.uint32(12)) <= 1)
    print(
        f"unrelated items whose keys are within 1 bit: vectors (a x unrelated-b) "
        f"{pairs_vectors:.2e}, model {pairs_model:.2e}, uniform keys {21 / (1 << 20):.2e}"
    )
    print(
        f"{'edit':22} {'BER':>6} {'item std':>8} {'lag-1':>6} {'key<=1':>7}   "
        f"model: {'BER':>6} {'item std':>8} {'lag-1':>6} {'key<=1':>7}  sigma  rho"
    )
    for name, e in model.edits.items():
        masks = error_masks(rng, 20000, e)
        per = np.bitwise_count(masks).astype(np.float64)
        within = float(np.mean(np.bitwise_count(masks >> np.uint32(12)) <= 1))
        print(
            f"{name:22} {e.measured[0]:6.3f} {e.measured[1]:8.2f} {e.measured[2]:6.2f} "
            f"{e.measured[3]:7.2f}          {per.mean() / 32:6.3f} {per.std():8.2f} "
            f"{lag1(per):6.2f} {within:7.2f}  {e.sigma:5.2f} {e.rho:4.2f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--tracks", type=int, default=100_000)
    ap.add_argument("--items", type=int, default=1450)
    ap.add_argument("--queries", type=int, default=400)
    ap.add_argument("--brute-queries", type=int, default=40)
    ap.add_argument("--brute-tracks", type=int, default=60)
    ap.add_argument("--baseline-rev", default="")
    ap.add_argument("--baseline-queries", type=int, default=40)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--search",
        default="",
        help="AudioSearch overrides, e.g. key_bits=22,anchor_stride=3 (defaults otherwise)",
    )
    ap.add_argument("--calibrate", action="store_true", help="print the model's fit and stop")
    args = ap.parse_args()

    model = calibrate()
    gen = Generator(model, args.seed)
    t0 = time.perf_counter()
    bank = gen.bank(args.tracks, args.items)
    print(
        f"bank: {args.tracks:,} tracks x {args.items:,} items = {bank.values.size:,} "
        f"sub-fingerprints, generated in {time.perf_counter() - t0:.1f} s"
    )
    print_model(model, bank)
    if args.calibrate:
        return
    queries = make_queries(gen, bank, args.queries, model)
    load = os.getloadavg()
    print(
        f"queries: {len(queries)} ({', '.join(sorted({q.kind for q in queries}))}); "
        f"CPUs allowed {len(os.sched_getaffinity(0))}; load average {load[0]:.1f}"
    )

    overrides = {k: int(v) for k, v in (x.split("=") for x in args.search.split(",") if x)}
    search = AudioSearch(**overrides)
    print(f"search parameters: {search}")
    index, took, rss = build(lambda: AudioIndex(search), bank)
    nbytes = getattr(index, "nbytes", 0)
    print(
        f"build: {took:.1f} s; process RSS +{rss:,.0f} MiB"
        + (f"; index arrays {nbytes / 2**20:,.0f} MiB" if nbytes else "")
        + f"; peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB"
    )
    index.search(queries[0].values)  # warm
    wall, cpu, answers = timed(index, queries)
    print(line("search, all queries (wall)", wall))
    print(line("search, all queries (CPU)", cpu))
    for kind in ("whole", "clip", "passage", "negative"):
        sel = [i for i, q in enumerate(queries) if q.kind == kind]
        if sel:
            print(line(f"  {kind} (wall)", [wall[i] for i in sel]))
    full = [i for i, q in enumerate(queries) if len(q.values) >= args.items * 0.97]
    if full:
        print(line("  3-minute queries (wall)", [wall[i] for i in full]))
        print(line("  3-minute queries (CPU)", [cpu[i] for i in full]))
    for kind in ("whole", "clip", "passage"):
        for edit in EDITS:
            sel = [i for i, q in enumerate(queries) if q.kind == kind and q.edit == edit]
            hit = sum(any(m.track == queries[i].source for m in answers[i]) for i in sel)
            if sel:
                print(f"  recall {kind:8} {edit:20} {hit}/{len(sel)}")
    neg = [i for i, q in enumerate(queries) if q.kind == "negative"]
    print(f"  negative queries with a match: {sum(bool(answers[i]) for i in neg)}/{len(neg)}")

    # brute force on a sample
    rng = np.random.default_rng(args.seed + 1)
    checked = agree = 0
    tracks_scored = 0
    brute_s = 0.0
    for qi in range(min(args.brute_queries, len(queries))):
        q = queries[qi]
        got = {m.track: as_found(m) for m in answers[qi]}
        sample = set(rng.integers(0, args.tracks, args.brute_tracks).tolist()) | set(got)
        if q.source >= 0:
            sample |= {q.source} | bank.related.get(q.source, set())
        want = {}
        t0 = time.perf_counter()
        for t in sample:
            f = brute_force(q.values, bank.values[t])
            if f is not None:
                want[t] = f
        brute_s += time.perf_counter() - t0
        tracks_scored += len(sample)
        mine = {t: f for t, f in got.items() if t in sample}
        checked += 1
        if mine == want:
            agree += 1
        else:
            print(f"  DIFFERS query {qi} ({q.kind}, {q.edit}): index {mine} brute force {want}")
    per_track = brute_s / max(1, tracks_scored)
    print(
        f"brute force: {agree}/{checked} queries give the index's matches exactly "
        f"(track, offset, similarity, items, is_match) over {tracks_scored:,} scored tracks; "
        f"{per_track * 1000:.1f} ms a track, so ~{per_track * args.tracks:,.0f} s a query "
        f"over all {args.tracks:,} tracks (extrapolated)"
    )

    if args.baseline_rev:
        del index
        base = baseline_module(args.baseline_rev)
        bindex, btook, brss = build(base.AudioIndex, bank)
        sub = queries[: args.baseline_queries]
        bindex.search(sub[0].values)
        bwall, bcpu, banswers = timed(bindex, sub)
        differ = [
            i
            for i, (x, y) in enumerate(zip(banswers, answers, strict=False))
            if {(m.track, m.offset, m.similarity) for m in x}
            != {(m.track, m.offset, m.similarity) for m in y}
        ]
        print(
            f"baseline {args.baseline_rev}: build {btook:.1f} s, RSS +{brss:,.0f} MiB; "
            f"same matches as this index on {len(sub) - len(differ)}/{len(sub)} queries"
            + "".join(
                f"; query {i} ({queries[i].kind}, {queries[i].edit}): baseline "
                f"{[(m.track, m.offset, round(m.similarity, 4)) for m in banswers[i]]}, "
                f"this index {[(m.track, m.offset, round(m.similarity, 4)) for m in answers[i]]}"
                for i in differ
            )
        )
        print(line("baseline search (wall)", bwall))
        print(line("baseline search (CPU)", bcpu))
        print(line("this index, same queries (wall)", wall[: len(sub)]))
        print(line("this index, same queries (CPU)", cpu[: len(sub)]))
        print(
            "p99 speed-up over the baseline on the same queries: "
            f"{percentile(bwall, 99) / percentile(wall[: len(sub)], 99):.0f}x wall, "
            f"{percentile(bcpu, 99) / percentile(cpu[: len(sub)], 99):.0f}x CPU"
        )
    if agree != checked:
        raise SystemExit("the index differs from brute force")


if __name__ == "__main__":
    main()
