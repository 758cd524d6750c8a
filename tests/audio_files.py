"""Real audio (and video-with-audio) files written by PyAV for the tests.

Deterministic: a seeded melody of sine notes plus a little noise, encoded by
FFmpeg's own encoders (AAC, MP3, PCM, MPEG-4 video).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

RATE = 44100


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
) -> Path:
    """Write ``samples`` (or no audio stream when None) with ``codec``, plus
    an MPEG-4 video stream of ``video_seconds`` when that is > 0."""
    import av

    with av.open(str(path), "w") as out:
        video = audio = None
        if video_seconds > 0:
            video = out.add_stream("mpeg4", rate=25)
            video.width, video.height, video.pix_fmt = 64, 64, "yuv420p"
        layout = "mono" if samples is None or samples.shape[0] == 1 else "stereo"
        if samples is not None:
            audio = out.add_stream(codec, rate=rate, layout=layout)
        if video is not None:
            for i in range(int(video_seconds * 25)):
                pic = np.full((64, 64, 3), (i * 9) % 256, np.uint8)
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


def garble(src: Path, dst: Path, *, every: int = 7) -> Path:
    """A copy of ``src`` whose middle third has every ``every``-th byte inverted."""
    data = bytearray(src.read_bytes())
    for i in range(len(data) // 3, 2 * len(data) // 3, every):
        data[i] ^= 0xFF
    dst.write_bytes(bytes(data))
    return dst
