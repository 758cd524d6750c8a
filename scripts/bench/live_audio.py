"""Live soundtracks: time to detect by sound, and the CPU of fingerprinting a stream.

    python scripts/bench/live_audio.py [--seconds 60] [--repeat 3]

Time to detect. ``a.m4a`` (shared Chromaprint vectors, 20 s) is banked in
an :class:`~node.match.audio_index.AudioIndex`. Each soundtrack below is
muxed with 20 s of generated footage (nothing of ``a.mp4``'s picture) into
an MPEG-TS stream by tests/live_writer.py, and that stream is read as
``ccnode watch`` reads it (``LiveQuery`` with its soundtrack over the
growing-file reader, the watcher's 2 s windows of the newest 60 s of
sub-fingerprints, node/cli/watch_cmds.py); each window is searched in the
index with the default thresholds (0.8 over 7 s), as the node would answer
the watcher's audio query. Printed: the stream time decoded when the first
window matched, and the similarity and aligned seconds of that answer.
Baseline in the same run: ``a.m4a`` itself (an exact copy of the sound),
and ``unrelated-b.m4a`` (must never match). The watcher's gRPC hop is not
in it (~20 ms in tests/integration/test_live_watch_audio.py).

CPU. A stream of ``--seconds`` of ``a.mp4``'s picture (320x180, 25 fps)
with ``a.m4a`` looped as its soundtrack; one thread, best of ``--repeat``,
CPU seconds per stream-second of:

* decoding only (the floor): PyAV decodes every audio frame, nothing else;
* the whole finished file's fingerprint (``fingerprint_file``);
* the live path: ``LiveAudio`` fed the demuxed audio packets and asked for
  the new sub-fingerprints after each one, as the live decoder does.

Also the whole watcher (``LiveQuery`` over the growing reader) with and
without its soundtrack, so the share of the sound in a watcher's CPU shows.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import functools
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

VECTORS = ROOT.parent / "shared" / "vectors"
SOUNDS = VECTORS / "chromaprint"
COPIES = (
    "a.m4a",
    "a-mp3-64k.mp3",
    "a-quieter.m4a",
    "a-with-noise.m4a",
    "a-phone-band.m4a",
    "a-room-echo.m4a",
    "unrelated-b.m4a",
)


def stream_of(picture: Path, sound: Path, out: Path) -> Path:
    from tests import live_writer

    live_writer.main([str(picture), str(out), "--speed", "100000", "--audio", str(sound)])
    return out


def detect(ts: Path, bank: object) -> tuple[int, float, float] | None:
    """(stream ms decoded, similarity, aligned s) of the first matching window."""
    from node.cli.watch_cmds import WATCH_SEGMENT_S, _windows
    from node.media.live import GrowingSource, open_stream
    from node.media.video import LiveQuery

    source = GrowingSource(str(ts), stall_s=0.2)
    try:
        stream = open_stream(source, functools.partial(LiveQuery, audio=True))
        for w in _windows(stream, round(WATCH_SEGMENT_S * 1000)):
            if not w.audio_new or len(w.audio) < 57:
                continue
            found = [m for m in bank.search(w.audio) if m.is_match]  # type: ignore[attr-defined]
            if found:
                return w.consumed_ms, found[0].similarity, found[0].aligned_s
    finally:
        source.close()
    return None


def cpu(fn: Callable[[], object]) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    import av

    from node.match.audio_index import AudioIndex
    from node.media.audio import LiveAudio, fingerprint_file
    from node.media.live import GrowingSource, open_stream
    from node.media.video import LiveQuery
    from tests import live_writer, videos

    with tempfile.TemporaryDirectory(prefix="ccnode-bench-live-audio-") as tmp:
        d = Path(tmp)
        bank = AudioIndex()
        bank.add("a", 0, fingerprint_file(SOUNDS / "a.m4a").values)
        other = videos.write(
            d / "other.mp4", videos.synthetic(77, width=320, height=180, seconds=20)
        )
        print("time to detect by sound, 20 s of other footage with the soundtrack:")
        for name in COPIES:
            got = detect(stream_of(other, SOUNDS / name, d / f"{name}.ts"), bank)
            if got is None:
                print(f"  {name:18} no match")
            else:
                ms, sim, aligned = got
                print(
                    f"  {name:18} matched after {ms / 1000:5.2f} s of stream "
                    f"(similarity {sim:.3f} over {aligned:.1f} s)"
                )

        ts = d / "long.ts"
        loops = max(1, round(args.seconds / 12))
        picture, sound = VECTORS / "vpdq" / "a.mp4", SOUNDS / "a.m4a"
        argv = [str(picture), str(ts), "--speed", "100000", "--loop", str(loops)]
        live_writer.main([*argv, "--audio", str(sound)])
        seconds = 12.0 * loops

        def floor() -> None:
            with av.open(str(ts)) as c:
                for _ in c.decode(audio=0):
                    pass

        def whole() -> None:
            fingerprint_file(ts)

        def live() -> None:
            with av.open(str(ts)) as c:
                stream = c.streams.audio[0]
                heard = LiveAudio(stream, str(ts), 7200)
                for packet in c.demux(stream):
                    heard.decode(packet)
                    heard.take()
                heard.finish()
                heard.take()

        def watcher(audio: bool) -> Callable[[], None]:
            def run() -> None:
                source = GrowingSource(str(ts), stall_s=0.2)
                kind = functools.partial(LiveQuery, audio=audio)
                stream = open_stream(source, kind)
                for _ in stream.frames():
                    if stream.audio is not None:
                        stream.audio.take()
                source.close()

            return run

        runs = {
            "audio decode only (floor)": floor,
            "fingerprint_file, finished file": whole,
            "live: LiveAudio, packet by packet": live,
            "watcher, picture only": watcher(False),
            "watcher, picture and sound": watcher(True),
        }
        best = dict.fromkeys(runs, float("inf"))
        for _ in range(args.repeat):
            for name, fn in runs.items():
                best[name] = min(best[name], cpu(fn))
    print(f"\nCPU, {seconds:g} s of stream (320x180 25 fps + AAC 44.1 kHz mono), best of")
    print(f"{args.repeat}, one thread:")
    floor_s = best["audio decode only (floor)"]
    for name, s in best.items():
        per = s / seconds
        print(
            f"  {name:34} {per * 1000:6.2f} ms per stream-second, "
            f"{1 / per:7.1f}x real time, {s / floor_s:5.2f}x floor"
        )
    share = best["watcher, picture and sound"] - best["watcher, picture only"]
    print(f"  sound's share of the watcher: {share / seconds * 1000:.2f} ms per stream-second")


if __name__ == "__main__":
    main()
