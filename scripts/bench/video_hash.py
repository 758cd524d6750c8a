"""Cost of hashing a video, against decoding it alone (the floor).

    python scripts/bench/video_hash.py [--seconds 10] [--fps 30] [--repeat 3]
                                       [--sizes 320x180,640x360,1280x720] [--no-naive]

Generates one H.264 clip per size (synthetic footage from tests/videos.py:
moving shapes on drifting gradients with sensor noise, a scene change every
2 s; libx264 "veryfast", B-frames on, as phones and editors write), then
times on one core, interleaved and best of --repeat, in CPU seconds of this
process (the machine is shared: wall time is noisier):

- floor: PyAV decoding every frame and nothing else (one decoder thread);
- query: node.media.video.query_frames (every frame: downscale, PDQ,
  mirror, prune; the budget is 1.5x the floor);
- bank: bank_frames (reference 1/s frames at full size + extras);
- reference 1/s: reference_vpdq, Meta's rule;
- naive dense: full-size pdqhash of every frame (what hashing every frame the
  reference's way would cost), unless --no-naive.

A last clip is the 640x360 one letterboxed to 640x480: its borders are
found, so the query also hashes trimmed and trimmed + mirrored variants
(FFmpeg crops and scales them after the border window).

Reports frames/s, x-realtime (video seconds per CPU second) and the ratio to
the floor.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from node.media.video import bank_frames, query_frames, reference_vpdq
from tests.videos import edited, letterbox, synthetic, write


def floor(path: Path) -> int:
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.codec_context.thread_count = 1
        return sum(1 for _ in c.decode(s))


def naive(path: Path) -> int:
    import av
    import pdqhash

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.codec_context.thread_count = 1
        n = 0
        for frame in c.decode(s):
            pdqhash.compute(frame.to_ndarray(format="rgb24"))
            n += 1
        return n


def cpu(fn: Callable[[Path], object], path: Path) -> float:
    t = time.process_time()
    fn(path)
    return time.process_time() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sizes", default="320x180,640x360,1280x720")
    ap.add_argument("--no-naive", action="store_true")
    args = ap.parse_args()
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    runs: dict[str, Callable[[Path], object]] = {
        "floor (decode only)": floor,
        "query_frames": query_frames,
        "bank_frames": bank_frames,
        "reference_vpdq 1/s": reference_vpdq,
    }
    if not args.no_naive:
        runs["naive dense (full-size PDQ every frame)"] = naive
    with tempfile.TemporaryDirectory() as tmp:
        clips = [(w, h, False) for w, h in sizes] + [(640, 360, True)]
        for w, h, boxed in clips:
            path = Path(tmp) / f"clip-{w}x{h}{'-letterboxed' if boxed else ''}.mp4"
            frames = synthetic(7, width=w, height=h, seconds=args.seconds, fps=args.fps)
            shown = f"{w}x{h}"
            if boxed:  # black bars to 4:3: the query adds trimmed variants
                frames = edited(frames, lambda f: letterbox(f, 4 / 3))
                shown = f"{w}x{w * 3 // 4} (letterboxed {w}x{h})"
            write(path, frames, fps=args.fps, options={"preset": "veryfast"})
            n = floor(path)
            best = {name: float("inf") for name in runs}
            for _ in range(args.repeat):  # interleaved: drift on the shared machine hits all alike
                for name, fn in runs.items():
                    best[name] = min(best[name], cpu(fn, path))
            base = best["floor (decode only)"]
            print(
                f"\n{shown}, {n} frames, {n / args.fps:.1f} s of video, {path.stat().st_size} bytes"
            )
            print(f"  {'':42} {'CPU s':>7} {'frames/s':>9} {'x realtime':>11} {'x floor':>8}")
            for name, secs in best.items():
                print(
                    f"  {name:42} {secs:7.3f} {n / secs:9.0f} {n / args.fps / secs:11.1f} "
                    f"{secs / base:8.2f}"
                )


if __name__ == "__main__":
    main()
