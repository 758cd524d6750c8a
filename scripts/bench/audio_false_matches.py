"""Audio false matches on a generated negative corpus, and recall on the vectors.

    python scripts/bench/audio_false_matches.py [--tracks 240] [--seed 0]
                                                [--no-brute-force] [--no-videos]

1. Corpus: TRACKS generated tracks (tests/audio_corpus.py: music, speech-like,
   noise, silence and near silence, tones; 10-18 s each), each written as a
   WAV file by PyAV and fingerprinted by ``fingerprint_file``.
2. Index: every fingerprint and the Chromaprint vectors' ``a`` banked in one
   ``AudioIndex``; each asked of the bank with the default thresholds. A match
   of any track but the query itself is a false match. The baseline in the
   same run: the same queries with ``min_beyond_chance = 0`` (similarity,
   length and distinct values alone, the rule before this benchmark).
3. Brute force: for every pair of distinct fingerprints, every offset, the
   best 7-s window (57 sub-fingerprints): its similarity (1 - bit error
   rate) and, for windows of 0.8 or more, its agreement beyond chance.
4. Vectors: each edited copy of ``a`` and ``unrelated-b`` asked of the bank.
5. Picture replaced: each copy's soundtrack under 20 s of unrelated
   generated footage (a video made with PyAV), fingerprinted from the video.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import collections
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np
import numpy.typing as npt

from node.match.audio import beyond_chance
from node.match.audio_index import AudioThresholds
from node.media.audio import fingerprint_file
from tests.audio_corpus import bank, distinct_per_item, fingerprint_corpus, query_all, specs
from tests.audio_files import COPIES, VECTORS

U32 = npt.NDArray[np.uint32]


def vector(name: str) -> U32:
    return np.asarray(fingerprint_file(VECTORS / name).values, dtype=np.uint32)


def quantiles(xs: list[float]) -> str:
    if not xs:
        return "none"
    q = np.quantile(xs, [0.5, 0.9, 0.99, 1.0])
    return f"p50 {q[0]:.3f}  p90 {q[1]:.3f}  p99 {q[2]:.3f}  max {q[3]:.3f}  (n={len(xs)})"


def best_windows(x: U32, y: U32, w: int) -> tuple[float, list[tuple[int, int]]]:
    """The best similarity of any ``w``-item window of ``x`` against any of
    ``y`` (every offset), and the (i, j) starts of windows of 0.8 or more."""
    n, m = len(x) - w + 1, len(y) - w + 1
    if n < 1 or m < 1:
        return 0.0, []
    errors = np.bitwise_count(x[:, None] ^ y[None, :]).astype(np.int32)
    window = np.zeros((n, m), dtype=np.int32)
    for t in range(w):
        window += errors[t : t + n, t : t + m]
    sim = 1.0 - window / (32 * w)
    return float(sim.max()), [(int(i), int(j)) for i, j in np.argwhere(sim >= 0.8)]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tracks", type=int, default=240)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-brute-force", action="store_true")
    p.add_argument("--no-videos", action="store_true")
    args = p.parse_args()
    if not (VECTORS / "a.m4a").exists():
        print(f"Chromaprint vectors not found at {VECTORS}", file=sys.stderr)
        return 2
    th = AudioThresholds()
    kinds = {s.name: s.kind for s in specs(args.tracks, seed=args.seed)}
    kinds["vector:a"] = "vector"

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        fps, refused = fingerprint_corpus(Path(tmp), args.tracks, seed=args.seed)
        took = time.perf_counter() - started
    print(
        f"corpus: {args.tracks} tracks (seed {args.seed}), "
        f"generated and fingerprinted in {took:.1f} s"
    )
    print(
        "  kinds: "
        + ", ".join(
            f"{k} {v}" for k, v in collections.Counter(kinds.values()).items() if k != "vector"
        )
    )
    for reason, count in collections.Counter(refused.values()).items():
        print(f"  refused: {count} ({reason})")
    items = [len(v) for v in fps.values()]
    print(
        f"  fingerprinted: {len(fps)}, {sum(items)} sub-fingerprints "
        f"({min(items)}..{max(items)} a track)"
    )

    held = {**fps, "vector:a": vector("a.m4a")}
    index = bank(held)
    started = time.perf_counter()
    out = query_all(index, held)
    took = time.perf_counter() - started
    print(f"\nindex: {out.queries} queries against {len(held)} banked tracks in {took:.2f} s")
    print(f"  candidate (query, track) pairs scored: {out.scored}")
    print(f"  false matches: {len(out.false_matches)}")
    for q, t, sim, secs in out.false_matches[:10]:
        print(f"    {q} ~ {t}: similarity {sim:.4f} over {secs:.1f} s")
    selfs = sum(1 for q, got in out.matched.items() if got == (q,))
    print(f"  matched only itself: {selfs}; matched nothing: {len(out.unmatched)}")
    by_kind = collections.Counter(kinds[q] for q in out.unmatched)
    distinct = [distinct_per_item(held[q]) for q in out.unmatched]
    if out.unmatched:
        print(
            f"    nothing: {dict(by_kind)}, distinct values per item "
            f"{min(distinct):.2f}..{max(distinct):.2f} "
            f"(the rule needs {th.min_distinct})"
        )
    others = [s for s, _ in out.best_other.values()]
    print(f"  best other-track candidate per query, similarity: {quantiles(others)}")

    loose = AudioThresholds(min_beyond_chance=0)
    baseline = [
        (q, str(m.track), m.similarity)
        for q, v in held.items()
        for m in index.search(v, loose)
        if m.track != q
    ]
    pairs = {tuple(sorted((q, t))) for q, t, _ in baseline}
    print(
        f"  baseline (min_beyond_chance 0): {len(baseline)} false matches, "
        f"{len(pairs)} pairs, kinds "
        + str(dict(collections.Counter(kinds[q] + "~" + kinds[t] for q, t in pairs)))
    )

    if not args.no_brute_force:
        names = list(held)
        started = time.perf_counter()
        best: list[float] = []
        high: list[tuple[str, str]] = []  # pairs with a window of 0.8 or more
        varied: list[tuple[float, float, str, str]] = []  # (beyond chance, similarity, a, b)
        passed = 0  # windows that pass all three rules: a match by brute force
        w = th.min_items
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                x, y = held[a], held[b]
                top, hits = best_windows(x, y, w)
                best.append(top)
                if hits:
                    high.append((a, b))
                for p, q in hits:
                    xs, ys = x[p : p + w], y[q : q + w]
                    # either side may be the query: the distinct-values rule reads the query's
                    if max(distinct_per_item(xs), distinct_per_item(ys)) < th.min_distinct:
                        continue
                    sim = 1 - int(np.bitwise_count(xs ^ ys).sum()) / (32 * w)
                    kappa = beyond_chance(xs, ys, sim)
                    varied.append((kappa, sim, a, b))
                    passed += kappa >= th.min_beyond_chance
        took = time.perf_counter() - started
        print(
            f"\nbrute force: {len(best)} pairs of distinct tracks, every offset, "
            f"best 7-s window ({took:.1f} s)"
        )
        print(f"  best window similarity: {quantiles(best)}")
        bins = [0.0, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 1.01]
        hist, _ = np.histogram(best, bins=bins)
        print(
            "  distribution: "
            + ", ".join(
                f"[{lo:.2f}, {min(hi, 1):.2f}{']' if hi > 1 else ')'} {c}"
                for lo, hi, c in zip(bins, bins[1:], hist, strict=False)
            )
        )
        print(
            f"  pairs with a window >= 0.8: {len(high)}, kinds "
            + str(
                dict(collections.Counter("~".join(sorted((kinds[a], kinds[b]))) for a, b in high))
            )
        )
        pairs_varied = {(a, b) for _, _, a, b in varied}
        print(
            f"  of them with >= {th.min_distinct} distinct values per item on a side: "
            f"{len(pairs_varied)} pairs ({len(varied)} windows), kinds "
            + str(
                dict(
                    collections.Counter(
                        "~".join(sorted((kinds[a], kinds[b]))) for a, b in pairs_varied
                    )
                )
            )
        )
        if varied:
            k, sim, a, b = max(varied)
            print(
                f"  their best agreement beyond chance: {k:.3f} ({a} ~ {b}, similarity "
                f"{sim:.3f}); the rule needs {th.min_beyond_chance}"
            )
        print(f"  windows passing all three rules (a brute-force match): {passed}")

    print("\nvectors against the bank:")
    for name in (*COPIES, "unrelated-b.m4a"):
        values = vector(name)
        got = index.search(values, matches_only=False)
        matches = [m for m in got if m.is_match]
        if matches:
            m = matches[0]
            q = values[m.query_items[0] : m.query_items[1]]
            k = beyond_chance(
                q, held[str(m.track)][m.banked_items[0] : m.banked_items[1]], m.similarity
            )
            print(
                f"  {name}: matches {[str(x.track) for x in matches]}, "
                f"similarity {m.similarity:.4f} "
                f"over {m.aligned_s:.1f} s, beyond chance {k:.3f}"
            )
        else:
            top = max((m.similarity for m in got), default=0.0)
            print(
                f"  {name}: no match (best candidate similarity {top:.4f}, {len(got)} candidates)"
            )

    if not args.no_videos:
        from tests.audio_files import dub
        from tests.videos import synthetic

        print("\npicture replaced by unrelated footage (20 s, 160x96), soundtrack kept:")
        with tempfile.TemporaryDirectory() as tmp:
            for i, name in enumerate(("a.m4a", *COPIES, "unrelated-b.m4a")):
                video = dub(
                    Path(tmp) / f"v{i}.mp4",
                    synthetic(300 + i, seconds=20, texture=20),
                    VECTORS / name,
                )
                values = fingerprint_file(video).values
                matches = index.search(values)
                if matches:
                    m = matches[0]
                    print(
                        f"  {name} soundtrack: matches {[str(x.track) for x in matches]}, "
                        f"similarity {m.similarity:.4f} over {m.aligned_s:.1f} s"
                    )
                else:
                    print(f"  {name} soundtrack: no match")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
