"""Real video files for tests, made with PyAV and numpy.

:func:`synthetic` renders footage of varied content from a seed: a drifting
two-colour gradient, a few shapes (boxes and discs) moving at their own
speeds, sensor-like noise, and a new scene (new colours, shapes, speeds)
every ``scene_s`` seconds; ``texture`` adds a scrolling blocky pattern of
that amplitude (detail, which PDQ rates above its quality floor). Different
seeds give unrelated footage, which is what the negative corpus needs; the
same seed gives the same frames, which the edits below rely on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

Frame = Any  # (h, w, 3) uint8


def _scene(rng: np.random.Generator, bg: np.random.Generator, w: int, h: int) -> dict[str, Any]:
    n = int(rng.integers(2, 6))
    return {
        "c0": bg.integers(0, 256, 3),
        "c1": bg.integers(0, 256, 3),
        "angle": bg.uniform(0, 2 * np.pi),
        "drift": bg.uniform(-0.5, 0.5),
        "grain": bg.normal(0, 1, (h // 6 + 2, w // 6 + 2)).repeat(6, 0).repeat(6, 1)[:h, :w],
        "scroll": bg.uniform(-1, 1, 2) * (w, h) * 0.3,
        "shapes": [
            {
                "disc": bool(rng.integers(0, 2)),
                "colour": rng.integers(0, 256, 3),
                "pos": rng.uniform(0, 1, 2) * (w, h),
                "vel": rng.uniform(-1, 1, 2) * (w, h) * 0.4,  # frame widths a second
                "size": rng.uniform(0.08, 0.3) * min(w, h),
            }
            for _ in range(n)
        ],
    }


def synthetic(
    seed: int,
    *,
    width: int = 160,
    height: int = 96,
    seconds: float = 3.0,
    fps: float = 25.0,
    scene_s: float = 2.0,
    noise: float = 6.0,
    texture: float = 0.0,
    style: int | None = None,
) -> Iterator[Frame]:
    """Frames of seeded synthetic footage (see the module docstring).

    Footage of the same ``style`` shares its scenes' backgrounds (gradients,
    drift, texture) but not their shapes or motion: other footage shot in the
    same place, the hard case for a matcher.
    """
    rng = np.random.default_rng(seed)
    bg = rng if style is None else np.random.default_rng([style, 7])
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    scene: dict[str, Any] = {}
    n_frames = round(seconds * fps)
    for i in range(n_frames):
        t = i / fps
        if i == 0 or int(t / scene_s) != int((i - 1) / fps / scene_s):
            scene = _scene(rng, bg, width, height)
            start = t
        dt = t - start
        a = scene["angle"] + scene["drift"] * dt
        ramp = (np.cos(a) * xx / width + np.sin(a) * yy / height + 1) / 2
        img = scene["c0"] * (1 - ramp[..., None]) + scene["c1"] * ramp[..., None]
        if texture:
            dx, dy = (scene["scroll"] * dt).astype(int)
            img = img + texture * np.roll(scene["grain"], (dy, dx), axis=(0, 1))[..., None]
        for s in scene["shapes"]:
            cx, cy = (s["pos"] + s["vel"] * dt) % (width, height)
            r = s["size"]
            if s["disc"]:
                mask = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
            else:
                mask = (np.abs(xx - cx) <= r) & (np.abs(yy - cy) <= r * 0.6)
            img[mask] = s["colour"]
        img = img + rng.normal(0, noise, img.shape)
        yield np.clip(img, 0, 255).astype(np.uint8)


def write(
    path: Path,
    frames: Iterator[Frame],
    *,
    fps: float = 25.0,
    codec: str = "libx264",
    options: dict[str, str] | None = None,
    container_options: dict[str, str] | None = None,
) -> Path:
    """Encode RGB frames to ``path`` (the container from its suffix)."""
    from fractions import Fraction

    import av

    with av.open(str(path), "w", options=container_options or {}) as out:
        stream = out.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        stream.pix_fmt = "yuv420p"
        stream.options = options or ({"preset": "ultrafast"} if codec == "libx264" else {})
        started = False
        for frame in frames:
            if not started:
                stream.height, stream.width = frame.shape[:2]
                started = True
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def edited(frames: Iterator[Frame], edit: Callable[[Frame], Frame]) -> Iterator[Frame]:
    for f in frames:
        yield np.ascontiguousarray(edit(f))


def letterbox(frame: Frame, ratio: float = 4 / 3, value: int = 0) -> Frame:
    """Pad to ``ratio`` (width / height) with bars of ``value`` above and below."""
    h, w = frame.shape[:2]
    new_h = round(w / ratio / 2) * 2
    top = (new_h - h) // 2
    out = np.full((new_h, w, 3), value, np.uint8)
    out[top : top + h] = frame
    return out
