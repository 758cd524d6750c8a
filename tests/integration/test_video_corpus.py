"""False matches and bank size on generated footage (real PyAV encoding and decoding).

200 videos of varied synthetic content (sizes, frame rates, lengths, noise,
scene lengths; tests/videos.py) are banked with :func:`bank_frames` and each
queried with :func:`query_frames` against all the others: no pair may match.
A few of them also get an edited copy (mirrored, letterboxed, trimmed,
halved in size, greyed), which must match its source and nothing else, so the
test would notice a scorer that never says yes; and at least 90% of the
videos must match themselves (the rest are flat, below PDQ's quality floor,
or too short for the minimum matched duration). The queries `ccnode watch`
sends while such an upload plays live (its windows) raise no false alarm
either and find every copy. The bank's size over these videos and the
shared vectors is printed (docs/benchmarks.md) and must stay
within 5 frames a second (300 a minute).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from node.cli.watch_cmds import WATCH_SEGMENT_S, WINDOW_MS
from node.core.vpdq import FRAME_BYTES, VideoFrame
from node.match.video import FrameHits, QueryFrame, brute_force_hits, score_video
from node.media.video import VideoHashes, bank_frames, query_frames
from tests.videos import edited, letterbox, synthetic, write

pytestmark = pytest.mark.slow
N = 200
VECTORS = Path(__file__).resolve().parents[2].parent / "shared" / "vectors" / "vpdq"
SIZES = [(96, 64), (128, 72), (160, 96), (112, 112), (144, 80)]
FPS = [15.0, 24.0, 25.0, 30.0]


def _params(i: int) -> dict[str, float | int]:
    rng = np.random.default_rng(i)
    w, h = SIZES[i % len(SIZES)]
    if i <= len(EDITS):  # the sources of the edited copies: detailed, 3.5 s
        return {
            "width": w,
            "height": h,
            "fps": FPS[i % len(FPS)],
            "seconds": 3.5,
            "scene_s": 1.5,
            "noise": 4.0,
            "texture": 25.0,
            "style": i // 4,
        }
    return {
        "width": w,
        "height": h,
        "fps": FPS[i % len(FPS)],
        "seconds": float(rng.uniform(2.0, 3.5)),
        "scene_s": float(rng.uniform(0.8, 3.0)),
        "noise": float(rng.uniform(0.0, 10.0)),
        "texture": float(rng.uniform(0.0, 40.0)),
        "style": i // 4,  # families of four share their backgrounds
    }


EDITS = {
    "mirrored": lambda f: f[:, ::-1],
    "letterboxed": lambda f: letterbox(f, ratio=1.0),
    "grey": lambda f: np.repeat((f @ [0.299, 0.587, 0.114])[..., None].astype(np.uint8), 3, axis=2),
    "halved": lambda f: f[::2, ::2],
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("corpus")
    paths: dict[str, Path] = {}
    for i in range(N):
        p = _params(i)
        paths[f"n{i}"] = write(d / f"n{i}.mp4", synthetic(10_000 + i, **p), fps=p["fps"])  # type: ignore[arg-type]
    # edited copies of the first few
    for k, (name, edit) in enumerate(EDITS.items()):
        p = _params(k)
        frames = edited(synthetic(10_000 + k, **p), edit)  # type: ignore[arg-type]
        paths[f"n{k}-{name}"] = write(d / f"n{k}-{name}.mp4", frames, fps=p["fps"])  # type: ignore[arg-type]
    p = _params(len(EDITS))
    clip = list(synthetic(10_000 + len(EDITS), **p))[int(p["fps"] * 0.7) :]  # type: ignore[arg-type]
    paths[f"n{len(EDITS)}-trimmed"] = write(
        d / f"n{len(EDITS)}-trimmed.mp4", iter(clip), fps=p["fps"]
    )  # type: ignore[arg-type]
    return paths


def _watch_reports(
    query: Sequence[QueryFrame], banked: Sequence[VideoFrame], hits: FrameHits
) -> bool:
    """Whether any query `ccnode watch` sends for this upload played live
    matches: every WATCH_SEGMENT_S of stream, the frames of the last WINDOW_MS
    (these videos are shorter than a window, so each query is a prefix)."""
    ts = np.array([f.ts_ms for f in query], np.int64)
    step = int(WATCH_SEGMENT_S * 1000)
    for end in [*range(step, int(ts.max()) + 1, step), int(ts.max()) + 1]:
        keep = (ts < end) & (ts >= end - WINDOW_MS)
        new_index = np.cumsum(keep) - 1
        sel = keep[hits.query_index]
        window = FrameHits(
            new_index[hits.query_index[sel]], hits.banked_index[sel], hits.distance[sel]
        )
        if score_video([f for f, k in zip(query, keep, strict=True) if k], banked, window).is_match:
            return True
    return False


def test_no_false_matches_and_every_copy_found(corpus: dict[str, Path]) -> None:
    originals = [n for n in corpus if "-" not in n]
    banks: dict[str, VideoHashes] = {n: bank_frames(corpus[n]) for n in originals}
    queries: dict[str, tuple[QueryFrame, ...]] = {n: query_frames(corpus[n])[1] for n in corpus}

    # every query frame against every banked frame, in one batch
    b_names = list(banks)
    b_frames = [f for n in b_names for f in banks[n].frames]
    b_owner = np.repeat(np.arange(len(b_names)), [len(banks[n].frames) for n in b_names])
    b_start = np.concatenate([[0], np.cumsum([len(banks[n].frames) for n in b_names])])
    q_names = list(queries)
    q_frames = [f for n in q_names for f in queries[n]]
    q_owner = np.repeat(np.arange(len(q_names)), [len(queries[n]) for n in q_names])
    q_start = np.concatenate([[0], np.cumsum([len(queries[n]) for n in q_names])])
    hits = brute_force_hits(q_frames, b_frames)
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    for k, (qi, bi) in enumerate(zip(hits.query_index, hits.banked_index, strict=True)):
        groups[(int(q_owner[qi]), int(b_owner[bi]))].append(k)

    matches = set()
    watched = set()  # what `ccnode watch` would report, window by window
    for (qv, bv), ks in groups.items():
        sel = np.array(ks)
        pair_hits = FrameHits(
            hits.query_index[sel] - q_start[qv],
            hits.banked_index[sel] - b_start[bv],
            hits.distance[sel],
        )
        s = score_video(queries[q_names[qv]], banks[b_names[bv]].frames, pair_hits)
        if s.is_match:
            matches.add((q_names[qv], b_names[bv]))
        if _watch_reports(queries[q_names[qv]], banks[b_names[bv]].frames, pair_hits):
            watched.add((q_names[qv], b_names[bv]))
    selves = {(n, n) for n in originals}
    copies = {(n, n.split("-")[0]) for n in corpus if "-" in n}
    others = len(q_names) * len(b_names) - len(selves) - len(copies)
    hit_others = sum(1 for q, b in groups if (q_names[q], b_names[b]) not in selves | copies)
    print(
        f"{others} pairs of different videos, {hit_others} with any frame pair within 31, "
        f"{len(matches - selves - copies)} matches; copies found {len(matches & copies)} of "
        f"{len(copies)}; videos matching themselves {len(matches & selves)} of {len(selves)}"
    )
    assert matches - selves - copies == set(), "false matches"
    assert watched - selves - copies == set(), "false alarms from watch's windows"
    assert copies - watched == set(), "copies missed by watch's windows"
    assert copies - matches == set(), "copies missed"
    # The rest are too short (a 2-s video spans < 1.5 s of aligned frames) or too flat.
    assert len(matches & selves) >= 0.9 * len(selves)


def test_bank_size_per_minute(corpus: dict[str, Path]) -> None:
    banked = [bank_frames(corpus[n]) for n in corpus if "-" not in n]
    if VECTORS.is_dir():
        banked += [bank_frames(VECTORS / "a.mp4"), bank_frames(VECTORS / "unrelated-b.mp4")]
    frames = sum(len(b.frames) for b in banked)
    minutes = sum(b.duration_ms for b in banked) / 60_000
    per_minute = frames / minutes
    print(
        f"{len(banked)} videos, {minutes:.2f} min: {per_minute:.0f} frames per banked minute, "
        f"{per_minute * FRAME_BYTES / 1024:.1f} KiB/min in entries ({FRAME_BYTES} B a frame)"
    )
    assert per_minute <= 300
