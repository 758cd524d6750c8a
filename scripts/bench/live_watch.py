"""What ``ccnode watch`` costs on a 720p live stream: CPU per stream-second.

    python scripts/bench/live_watch.py [--seconds 24] [--size 1280x720]

Makes a 25 fps MPEG-TS stream of ``a.mp4`` (shared vectors) scaled to
``--size`` and played in a loop for ``--seconds``, then hashes it, one
thread, three ways, in the same run:

* floor: PyAV decoding every frame and nothing else;
* ``query_frames`` on the finished file (what ``match VIDEO`` does);
* the watcher's path: ``LiveQuery`` over a ``GrowingSource`` (0.5 s batches,
  the unbuffered live reader), as ``ccnode watch`` runs it.

Prints CPU seconds per stream-second and the x-real-time each sustains on
one core (> 1 keeps up). The node's side (one Match call per segment) is
not in it: see "Match under load" and the video frame index figures.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
SRC = ROOT.parent / "shared" / "vectors" / "vpdq" / "a.mp4"


def make_stream(path: Path, seconds: float, width: int, height: int) -> None:
    import av

    rate = Fraction(25)
    with av.open(str(path), "w", format="mpegts") as out:
        vs = out.add_stream("mpeg2video", rate=rate)
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        vs.bit_rate = 6_000_000
        vs.codec_context.time_base = 1 / rate
        i = 0
        while i < seconds * 25:
            with av.open(str(SRC)) as src:
                for frame in src.decode(video=0):
                    if i >= seconds * 25:
                        break
                    f = frame.reformat(width, height, "yuv420p")
                    f.pts, f.time_base = i, 1 / rate
                    for packet in vs.encode(f):
                        out.mux(packet)
                    i += 1
        for packet in vs.encode(None):
            out.mux(packet)


def cpu(fn: object) -> float:
    start = time.process_time()
    fn()  # type: ignore[operator]
    return time.process_time() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=24.0)
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    width, height = (int(x) for x in args.size.split("x"))

    import av

    from node.media.live import GrowingSource, open_stream
    from node.media.video import DEFAULT_LIMITS, LiveQuery, query_frames

    assert DEFAULT_LIMITS.threads == 1
    with tempfile.TemporaryDirectory(prefix="ccnode-bench-watch-") as tmp:
        path = Path(tmp) / "stream.ts"
        make_stream(path, args.seconds, width, height)

        def floor() -> None:
            with av.open(str(path)) as c:
                c.streams.video[0].thread_count = 1
                for _ in c.decode(video=0):
                    pass

        def whole() -> None:
            query_frames(path)

        def live() -> None:
            source = GrowingSource(str(path), stall_s=0.2)
            for _ in open_stream(source, LiveQuery).frames():
                pass
            source.close()

        best = {"floor": float("inf"), "query_frames": float("inf"), "watch": float("inf")}
        for _ in range(args.repeat):
            for name, fn in (("floor", floor), ("query_frames", whole), ("watch", live)):
                best[name] = min(best[name], cpu(fn))
    print(f"{args.size} at 25 fps, {args.seconds:g} s of stream, best of {args.repeat}, one thread")
    for name, seconds in best.items():
        per = seconds / args.seconds
        ratio = "" if name == "floor" else f", {seconds / best['floor']:.2f}x floor"
        print(
            f"  {name:13} {per * 1000:6.1f} ms CPU per stream-second, "
            f"{1 / per:5.1f}x real time{ratio}"
        )


if __name__ == "__main__":
    main()
