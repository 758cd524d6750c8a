"""``--video-max-seconds``, ``--video-max-frames``, ``--video-max-pixels``:
the caps on the work one video may cause (node/media/video.py
``VideoLimits``; docs/video.md, "Limits"), for every command that decodes
video: ``hash``, ``match``, ``submit --file``/``--live`` and ``watch``.

Registering them imports nothing heavy (``ccnode --help`` stays cheap).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from node.media.video import VideoLimits

#: option, VideoLimits field, type, metavar, what it caps
OPTIONS: tuple[tuple[str, str, type, str, str], ...] = (
    ("--video-max-seconds", "max_duration_s", float, "S", "longest video, in seconds"),
    ("--video-max-frames", "max_frames", int, "N", "most frames in one video"),
    ("--video-max-pixels", "max_pixels", int, "N", "largest frame, width x height"),
)


def add_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "video limits", "a video over any of them is refused (defaults: docs/video.md, 'Limits')"
    )
    for option, field, kind, metavar, what in OPTIONS:
        g.add_argument(option, dest=f"video_{field}", type=kind, metavar=metavar, help=what)


def limits_of(args: Any) -> VideoLimits:
    """The default limits, with those given on the command line."""
    from dataclasses import replace

    from node.media.video import DEFAULT_LIMITS

    given = {
        field: getattr(args, f"video_{field}")
        for _, field, _, _, _ in OPTIONS
        if getattr(args, f"video_{field}", None) is not None
    }
    return replace(DEFAULT_LIMITS, **given)  # VideoLimits checks them
