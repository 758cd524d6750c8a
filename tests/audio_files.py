"""Real audio (and video-with-audio) files written by PyAV for the tests.

Deterministic: a seeded melody of sine notes plus a little noise, encoded by
FFmpeg's own encoders (AAC, MP3, PCM, MPEG-4 video). :func:`dub` puts a
file's soundtrack under other pictures: a copy no visual hash recognises
that keeps the soundtrack.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

RATE = 44100

#: The Chromaprint vectors (../shared/vectors/chromaprint, README there) and
#: the edited copies of their soundtrack `a`.
VECTORS = Path(__file__).resolve().parents[1].parent / "shared" / "vectors" / "chromaprint"
COPIES = (
    "a-mp3-64k.mp3",
    "a-quieter.m4a",
    "a-with-noise.m4a",
    "a-clip-4.3s-to-14.3s.m4a",
    "a-phone-band.m4a",
    "a-room-echo.m4a",
)


def melody(
    seconds: float, *, rate: int = RATE, channels: int = 1, seed: int = 1
) -> npt.NDArray[np.float32]:
    """(channels, n) float samples: four random notes a second and some noise."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    notes = 220.0 * 2 ** (rng.integers(0, 24, size=int(seconds * 4) + 1) / 12)
    freq = notes[(np.arange(n) * 4 // rate)]
    x = 0.3 * np.sin(2 * np.pi * np.cumsum(freq) / rate) + 0.05 * rng.standard_normal(n)
    return np.repeat(x[None, :], channels, axis=0).astype(np.float32)


def write(
    path: Path,
    samples: npt.NDArray[np.float32] | None,
    *,
    rate: int = RATE,
    codec: str = "aac",
    video_seconds: float = 0.0,
    picture: Iterable[Any] | None = None,
) -> Path:
    """Write ``samples`` (or no audio stream when None) with ``codec``, plus
    an MPEG-4 video stream: ``picture`` (RGB frames, 25 a second) when
    given, else ``video_seconds`` of flat 64x64 frames when that is > 0."""
    import av

    frames: Iterator[Any] | None = None
    if picture is not None:
        frames = iter(picture)
    elif video_seconds > 0:
        frames = (
            np.full((64, 64, 3), (i * 9) % 256, np.uint8) for i in range(int(video_seconds * 25))
        )
    with av.open(str(path), "w") as out:
        video = audio = None
        if frames is not None:
            first = next(frames)
            frames = itertools.chain([first], frames)
            video = out.add_stream("mpeg4", rate=25)
            video.height, video.width = first.shape[:2]
            video.pix_fmt = "yuv420p"
        layout = "mono" if samples is None or samples.shape[0] == 1 else "stereo"
        if samples is not None:
            audio = out.add_stream(codec, rate=rate, layout=layout)
        if video is not None and frames is not None:
            for pic in frames:
                for packet in video.encode(av.VideoFrame.from_ndarray(pic, format="rgb24")):
                    out.mux(packet)
            for packet in video.encode(None):
                out.mux(packet)
        if audio is not None and samples is not None:
            pcm = codec.startswith("pcm_")
            for start in range(0, samples.shape[1], 1024):
                chunk = samples[:, start : start + 1024]
                if pcm:
                    data = (chunk * 32767).astype(np.int16).T.reshape(1, -1)
                    frame = av.AudioFrame.from_ndarray(data, format="s16", layout=layout)
                else:
                    frame = av.AudioFrame.from_ndarray(
                        np.ascontiguousarray(chunk), format="fltp", layout=layout
                    )
                frame.sample_rate = rate
                frame.pts = start
                for packet in audio.encode(frame):
                    out.mux(packet)
            for packet in audio.encode(None):
                out.mux(packet)
    return path


def read(path: Path) -> tuple[npt.NDArray[np.float32], int]:
    """The first audio stream of ``path`` decoded: (channels, n) float
    samples (mono or stereo) and their rate."""
    import av

    with av.open(str(path)) as inp:
        stream = inp.streams.audio[0]
        layout = "mono" if stream.codec_context.channels == 1 else "stereo"
        to_float = av.AudioResampler(format="fltp", layout=layout, rate=stream.rate)
        chunks = [f.to_ndarray() for frame in inp.decode(stream) for f in to_float.resample(frame)]
        chunks += [f.to_ndarray() for f in to_float.resample(None)]
    return np.concatenate(chunks, axis=1).astype(np.float32), stream.rate


def pictures(path: Path) -> Iterator[Any]:
    """The RGB frames of the first video stream of ``path``."""
    import av

    with av.open(str(path)) as inp:
        for frame in inp.decode(video=0):
            yield frame.to_ndarray(format="rgb24")


def dub(dst: Path, picture: Iterable[Any], soundtrack: Path) -> Path:
    """A video (MPEG-4 picture, AAC sound) of ``picture`` with the sound of
    ``soundtrack`` decoded and encoded again: e.g. unrelated footage that
    keeps a banked video's soundtrack."""
    samples, rate = read(soundtrack)
    return write(dst, samples, rate=rate, picture=picture)


def garble(src: Path, dst: Path, *, every: int = 7) -> Path:
    """A copy of ``src`` whose middle third has every ``every``-th byte inverted."""
    data = bytearray(src.read_bytes())
    for i in range(len(data) // 3, 2 * len(data) // 3, every):
        data[i] ^= 0xFF
    dst.write_bytes(bytes(data))
    return dst
