"""Benchmark the video frame index against python-threatexchange's vPDQ method, on one core.

    nice python scripts/bench/video.py --videos 2000            # 1M frame hashes
    nice python scripts/bench/video.py --videos 20000 --faiss-uploads 2   # 10M

A synthetic bank: ``--videos`` videos of ``--frames`` frame hashes each
(default 500: 100 s at the bank's 5 frames/s), made with numpy rather than by
decoding video. Frames are correlated as in footage: a scene (``--scene``
frames, 5 s) has a random 256-bit base hash and each of its frames is the
base with 0..24 random bits flipped. Each video is banked as 60-s segments.

Uploads are 10 minutes of query frames at ``--query-fps`` (5/s) with a
mirrored variant per frame (so 6,000 query hashes an upload); half the
uploads are near copies (each frame of 6 banked videos with 0..20 bits
flipped, the mirrored variant unrelated), half unrelated footage.

Per upload, the same query hashes go through:

* ours: ``FrameIndex.search`` (one batched multi-index lookup of every
  frame, then the per-video aggregation with pytx's percentages);
* python-threatexchange's vPDQ method: faiss ``IndexBinaryFlat``
  ``range_search`` of the upload's frames with radius 32 (distance <= 31;
  one call for all frames, as pytx's ``VPDQHashIndex`` does), then the same
  aggregation (``FrameIndex.aggregate``).

Both must give the same videos with identical query% and banked%; the run
fails otherwise. faiss runs on the first ``--faiss-uploads`` uploads (half
near copies): at 10M one upload takes it minutes. Everything is pinned to one
thread (OMP variables before numpy and faiss load, ``omp_set_num_threads(1)``).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse
import gc
import sys
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from node.match.frames import FrameIndex, QueryArrays, SegmentRows, VideoHits

RADIUS = 31
U8 = npt.NDArray[np.uint8]


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def flip_bits(h: U8, max_bits: int, rng: np.random.Generator) -> U8:
    """Each row of ``h`` with 0..max_bits random bits flipped."""
    out = np.empty_like(h)
    step = 1 << 18
    for lo in range(0, len(h), step):
        part = h[lo : lo + step]
        m = len(part)
        k = rng.integers(0, max_bits + 1, m)
        pos = rng.integers(0, 256, (m, max(1, max_bits)))
        bits = np.zeros((m, 256), dtype=np.bool_)
        rows = np.repeat(np.arange(m), pos.shape[1])
        keep = (np.arange(pos.shape[1])[None, :] < k[:, None]).reshape(-1)
        bits[rows[keep], pos.reshape(-1)[keep]] = True
        out[lo : lo + m] = part ^ np.packbits(bits, axis=1)
    return out


def footage(n: int, scene: int, rng: np.random.Generator) -> U8:
    """``n`` correlated frame hashes: scenes of ``scene`` frames around a base."""
    bases = rng.integers(0, 256, ((n + scene - 1) // scene, 32), dtype=np.uint8)
    return flip_bits(np.repeat(bases, scene, axis=0)[:n], 24, rng)


def build_bank(
    videos: int, frames: int, scene: int, rng: np.random.Generator
) -> tuple[U8, list[SegmentRows]]:
    pdq = footage(videos * frames, scene, rng)
    ts = (np.arange(frames, dtype=np.int64) * 200)[None, :].repeat(videos, 0).reshape(-1)
    quality = np.full(len(pdq), 100, dtype=np.uint8)
    segs = []
    per_seg = 300  # 60 s at 5/s
    for v in range(videos):
        vid = v.to_bytes(16, "big")
        for k, lo in enumerate(range(v * frames, (v + 1) * frames, per_seg)):
            hi = min(lo + per_seg, (v + 1) * frames)
            segs.append(
                SegmentRows(
                    vid + k.to_bytes(16, "big"),
                    "bank.example",
                    vid,
                    pdq[lo:hi],
                    quality[lo:hi],
                    ts[lo:hi],
                )
            )
    return pdq, segs


def make_upload(
    near: bool, bank: U8, videos: int, frames: int, n: int, scene: int, rng: np.random.Generator
) -> QueryArrays:
    if near:
        picked = rng.choice(videos, size=(n + frames - 1) // frames, replace=False)
        rows = (picked[:, None] * frames + np.arange(frames)[None, :]).reshape(-1)[:n]
        original = flip_bits(bank[rows], 20, rng)
    else:
        original = footage(n, scene, rng)
    mirrored = footage(n, scene, rng)  # a mirrored frame's hash is unrelated to the bank
    ts = np.arange(n, dtype=np.int64) * 200
    return QueryArrays(
        np.concatenate([original, mirrored]),
        np.full(2 * n, 100, dtype=np.int64),
        np.concatenate([ts, ts]),
        np.repeat(np.arange(2, dtype=np.int64), n),
    )


def percentages(hits: list[VideoHits]) -> dict[tuple[str, bytes], tuple[float, float, int]]:
    return {h.key: (h.query_pct, h.banked_pct, h.variant) for h in hits}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--videos", type=int, default=2000)
    ap.add_argument("--frames", type=int, default=500, help="frame hashes per banked video")
    ap.add_argument("--scene", type=int, default=25, help="frames per scene")
    ap.add_argument("--uploads", type=int, default=6)
    ap.add_argument("--faiss-uploads", type=int, default=6)
    ap.add_argument("--query-fps", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    n_frames = args.videos * args.frames
    per_upload = 600 * args.query_fps

    print(f"bank: {args.videos:,} videos x {args.frames} frames = {n_frames:,} frame hashes")
    t = time.perf_counter()
    bank, segs = build_bank(args.videos, args.frames, args.scene, rng)
    print(f"  generated in {time.perf_counter() - t:.1f} s")

    gc.collect()
    before = rss_mib()
    t = time.perf_counter()
    index = FrameIndex()
    index.add_segments(segs)
    build_s = time.perf_counter() - t
    del segs
    gc.collect()
    ours_mib = rss_mib() - before
    assert len(index) == n_frames, "every synthetic frame is indexable"
    print(
        f"ours : build {build_s:.1f} s ({n_frames / build_s / 1e6:.2f} M frames/s), "
        f"{index.bytes_per_frame():.0f} bytes/frame by its arrays, "
        f"RSS +{ours_mib:,.0f} MiB ({ours_mib * 2**20 / n_frames:.0f} bytes/frame)"
    )

    import faiss

    faiss.omp_set_num_threads(1)
    t = time.perf_counter()
    flat = faiss.IndexBinaryFlat(256)
    flat.add(bank)
    flat_build = time.perf_counter() - t
    print(
        f"faiss: build {flat_build:.1f} s, {flat.code_size} bytes/frame (its codes; "
        "pytx keeps a Python list per video beside them)"
    )

    uploads = [
        make_upload(k % 2 == 0, bank, args.videos, args.frames, per_upload, args.scene, rng)
        for k in range(args.uploads)
    ]
    print(
        f"uploads: {args.uploads} of 10 min, {per_upload:,} frames + a mirrored variant "
        f"each ({2 * per_upload:,} query hashes), every other one a near copy"
    )
    ratios = []
    ours_all = []
    for k, q in enumerate(uploads):
        t = time.perf_counter()
        ours = index.search(q, RADIUS)
        ours_s = time.perf_counter() - t
        ours_all.append(ours_s)
        matched = sum(1 for h in ours if h.query_pct > 0)
        kind = "near copy" if k % 2 == 0 else "unrelated"
        line = f"  upload {k} ({kind}): ours {ours_s * 1000:7.0f} ms"
        if k < args.faiss_uploads:
            t = time.perf_counter()
            lims, dist, ids = flat.range_search(q.pdq, RADIUS + 1)
            qid = np.repeat(np.arange(len(q), dtype=np.int64), np.diff(lims).astype(np.int64))
            theirs = index.aggregate(q, qid, ids.astype(np.int64), dist.astype(np.int64))
            flat_s = time.perf_counter() - t
            if percentages(ours) != percentages(theirs):
                print(line + "  DIFFERENT per-video percentages from faiss")
                return 1
            ratios.append(flat_s / ours_s)
            line += (
                f", faiss flat {flat_s * 1000:8.0f} ms, {flat_s / ours_s:5.1f}x; same percentages"
            )
        print(line + f"; {len(ours)} videos hit, {matched} matched")
    print(
        f"per upload: ours median {np.median(ours_all) * 1000:.0f} ms; "
        f"speed-up over faiss flat: min {min(ratios):.1f}x, median {np.median(ratios):.1f}x "
        f"({len(ratios)} uploads compared)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
