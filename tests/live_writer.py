"""A live source for tests: re-encode a video into a growing MPEG-TS stream.

    python -m tests.live_writer SRC OUT [--speed X] [--stop-after-s S] [--hang] [--audio A]

Decodes SRC and writes its frames to OUT (a file, ``-`` for standard
output, or ``DIR/NAME.m3u8`` for a live HLS playlist of 1 s segments) as
MPEG-TS (MPEG-2 video), paced at ``--speed`` times real time and
flushed as it goes, so a reader sees the file grow as a recorder would make
it. ``--stop-after-s`` ends the stream early (the file is left as it is, cut
mid-stream); ``--hang`` then keeps the process (and a pipe) open without
writing, to make a stalled source. ``--loop N`` plays SRC N times in a row (a
longer stream); ``--start-file F`` records when the first frame was due
(``time.monotonic()``, one clock for every process on the machine).
``--audio A`` adds a soundtrack: the audio of file A (mono AAC at 44.1 kHz),
played along with the frames from the stream's start (repeated if it is
shorter, cut where the picture ends). Prints nothing; exits 0.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any


def main(argv: list[str] | None = None) -> int:
    import av

    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("out")
    ap.add_argument("--speed", type=float, default=1.0)
    ap.add_argument("--stop-after-s", type=float, default=0.0)
    ap.add_argument("--hang", action="store_true")
    ap.add_argument("--loop", type=int, default=1, help="play SRC this many times in a row")
    ap.add_argument(
        "--start-file", help="write the monotonic clock of the first frame's due time here"
    )
    ap.add_argument("--audio", help="add this file's audio as the stream's soundtrack")
    args = ap.parse_args(argv)
    sound = _samples(av, args.audio) if args.audio else None

    hls = args.out.endswith(".m3u8")
    raw: Any = sys.stdout.buffer if args.out == "-" else None
    if raw is None and not hls:
        raw = open(args.out, "wb")  # noqa: SIM115
    with av.open(args.src) as src:
        stream = src.streams.video[0]
        rate = Fraction(stream.average_rate or 25)
        if hls:  # a live HLS playlist: 1 s MPEG-TS segments, the playlist updated per segment
            out = av.open(
                args.out,
                "w",
                format="hls",
                options={"hls_time": "1", "hls_list_size": "0", "hls_flags": "temp_file"},
            )
        else:
            out = av.open(raw, "w", format="mpegts")
        vs = out.add_stream("mpeg2video", rate=rate)
        vs.width = stream.codec_context.width
        vs.height = stream.codec_context.height
        vs.pix_fmt = "yuv420p"
        vs.bit_rate = 2_000_000
        vs.codec_context.gop_size = max(1, int(rate) // 2)
        vs.codec_context.time_base = 1 / rate
        track = _Soundtrack(out, sound) if sound is not None else None
        start = time.monotonic()
        if args.start_file:
            Path(args.start_file).write_text(f"{start!r}\n")
        for i, decoded in enumerate(_frames(av, args.src, args.loop)):
            t = float(i / rate)
            if args.stop_after_s and t >= args.stop_after_s:
                break
            due = start + t / args.speed
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)  # pacing the source at its frame rate
            frame = decoded.reformat(format="yuv420p")
            frame.pts = i
            frame.time_base = 1 / rate
            for packet in vs.encode(frame):
                out.mux(packet)
            if track is not None:
                track.play_to(float((i + 1) / rate))
            if raw is not None:
                raw.flush()
        if args.stop_after_s and args.hang:
            if raw is not None:
                raw.flush()
            while True:  # a stalled source: open, silent
                time.sleep(3600)
        for packet in vs.encode(None):
            out.mux(packet)
        if track is not None:
            track.close()
        out.close()
    if raw is not None:
        raw.flush()
        if raw is not sys.stdout.buffer:
            raw.close()
    return 0


def _frames(av: Any, src: str, loop: int) -> Iterator[Any]:
    for _ in range(loop):
        with av.open(src) as again:
            yield from again.decode(again.streams.video[0])


AUDIO_RATE = 44100


def _samples(av: Any, path: str) -> Any:
    """The audio of ``path`` as mono float samples at AUDIO_RATE."""
    import numpy as np

    resampler = av.AudioResampler(format="flt", layout="mono", rate=AUDIO_RATE)
    parts = []
    with av.open(path) as src:
        for frame in src.decode(src.streams.audio[0]):
            parts.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(frame))
    parts.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(None))
    return np.concatenate(parts).astype(np.float32)


class _Soundtrack:
    """An AAC stream muxed beside the picture, fed up to each frame's end."""

    def __init__(self, out: Any, samples: Any) -> None:
        self.out = out
        self.samples = samples
        self.stream = out.add_stream("aac", rate=AUDIO_RATE, layout="mono")
        self.sent = 0

    def play_to(self, seconds: float) -> None:
        import av
        import numpy as np

        due = int(seconds * AUDIO_RATE)
        while self.sent + 1024 <= due:
            at = np.arange(self.sent, self.sent + 1024) % len(self.samples)
            frame = av.AudioFrame.from_ndarray(
                self.samples[at][None, :], format="fltp", layout="mono"
            )
            frame.sample_rate = AUDIO_RATE
            frame.pts = self.sent
            frame.time_base = Fraction(1, AUDIO_RATE)
            for packet in self.stream.encode(frame):
                self.out.mux(packet)
            self.sent += 1024

    def close(self) -> None:
        for packet in self.stream.encode(None):
            self.out.mux(packet)


if __name__ == "__main__":
    sys.exit(main())
