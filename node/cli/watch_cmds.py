"""``ccnode watch SOURCE (--dir DIR | --to ADDR) [--json]``: match a live stream as it grows.

A platform puts this in front of its live ingest (docs/live.md,
"Watching"). The source (a growing file or ``-``, as for ``submit --live``)
is hashed as it is decoded, as an upload is for ``match VIDEO`` (every
frame, mirrored and border-trimmed variants: node/media/video.py); each
time ``--segment-seconds`` of stream time complete, the query frames of the
last :data:`WINDOW_MS` of stream go to the node as one video query, so
the node's state stays per call and bounded. Per banked video the watcher
keeps running counts (segments that hit it, the most aligned frames) and
reports a match the first time the node's decision says so, with:

- the stream seconds consumed (decoded) when the evidence crossed the
  thresholds, and the stream time the evidence covers (a segment's end;
  border detection looks at the first 5 s, so the first query goes out
  once 5 s are decoded);
- the wall-clock latency from the moment the matching segment was complete
  (its last frame decoded) to the answer;
- the banked video, its submitter and the matched ranges.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from node.cli import video_limits
from node.errors import ValidationError
from node.match.video import QueryFrame
from node.media.live import check_segment_seconds, open_source, open_stream

#: Stream time each query covers (the newest part): long enough for the
#: thresholds' evidence (minimum matched duration, coverage), short enough
#: that a query stays small however long the stream runs.
WINDOW_MS = 60_000
WATCH_SEGMENT_S = 2.0


@dataclass(slots=True)
class Seen:
    """Running counts for one banked video."""

    hits: int = 0  # segments whose query hit it
    best_frames: int = 0
    reported: bool = False


@dataclass(frozen=True, slots=True)
class Window:
    evidence_ms: int  # the query covers the stream up to here (a segment's end)
    consumed_ms: int  # stream time decoded when it was sent
    frames: list[QueryFrame]
    completed: float  # monotonic time the segment was complete (hashed)
    last: bool


def _windows(stream: Any, segment_ms: int) -> Iterator[Window]:
    """One query window per completed segment of stream time, and one at the end."""
    frames: list[QueryFrame] = []
    boundary = segment_ms
    for variants in stream.frames():
        ts = variants[0].ts_ms
        while ts >= boundary:
            now = time.monotonic()
            yield Window(boundary, stream.duration_ms, _recent(frames, boundary), now, False)
            boundary += segment_ms
        frames.extend(variants)
    end = stream.duration_ms
    yield Window(end, end, _recent(frames, end), time.monotonic(), True)


def _recent(frames: list[QueryFrame], now_ms: int) -> list[QueryFrame]:
    """The frames of the last WINDOW_MS of stream (dropping older ones), and
    at most what one Match request may carry (the newest; a frame's variants
    stay together)."""
    from node.cli.video_cmds import window_frames

    cut = now_ms - WINDOW_MS
    cap = window_frames(0)
    i = 0
    while i < len(frames) and frames[i].ts_ms < cut:
        i += 1
    excess = len(frames) - i - cap
    if excess > 0:
        i += excess
        while i < len(frames) and frames[i].ts_ms == frames[i - 1].ts_ms:
            i += 1  # never split one frame's variants
    del frames[:i]
    return list(frames)


def cmd_watch(args: argparse.Namespace) -> int:
    from node.cli.node_cmds import connect
    from node.cli.video_cmds import describe, video_json
    from node.media.video import LiveQuery

    if (args.node_dir is None) == (args.to is None):
        raise ValidationError("watch needs one of --dir DIR or --to ADDR")
    args.dir = args.node_dir
    segment_ms = check_segment_seconds(args.segment_seconds)
    source = open_source(args.source, stall_s=args.stall_seconds)
    seen: dict[tuple[str, bytes], Seen] = {}
    matches = 0

    def say(doc: dict[str, Any], text: str) -> None:
        print(json.dumps(doc) if args.json else text, flush=True)

    async def run() -> None:
        nonlocal matches
        loop = asyncio.get_running_loop()
        hashing = ThreadPoolExecutor(1, thread_name_prefix="watch-hash")
        try:
            kind = functools.partial(LiveQuery, limits=video_limits.limits_of(args))
            stream = await loop.run_in_executor(hashing, open_stream, source, kind)
            windows = _windows(stream, segment_ms)
            async with connect(args) as client:
                while True:
                    item = await loop.run_in_executor(hashing, next, windows, None)
                    if item is None:
                        break
                    if not item.frames:
                        continue
                    answers = await client.match_video(item.frames)
                    latency = time.monotonic() - item.completed
                    for v in answers:
                        key = (v.match.provenance.origin, bytes(v.video_id))
                        s = seen.setdefault(key, Seen())
                        s.hits += 1
                        s.best_frames = max(s.best_frames, v.matched_frames)
                        if not v.is_match or s.reported:
                            continue
                        s.reported = True
                        matches += 1
                        say(
                            {
                                "event": "match",
                                "stream_ms": item.consumed_ms,
                                "evidence_ms": item.evidence_ms,
                                "latency_ms": round(latency * 1000),
                                "segments_hit": s.hits,
                                **video_json(v),
                            },
                            f"MATCH after {item.consumed_ms / 1000:.1f} s of stream "
                            f"(latency {latency:.2f} s): {describe(v)}",
                        )
                    if item.last:
                        break
        finally:
            source.close()
            hashing.shutdown(wait=False, cancel_futures=True)
        if source.error is not None:
            print(f"ccnode: warning: {source.error}; the stream ended there", file=sys.stderr)

    asyncio.run(run())
    if source.stalled:
        print(
            f"ccnode: warning: {source.name}: no new data for {source.stall_s:g} s: "
            "the stream is taken to have ended",
            file=sys.stderr,
        )
    say(
        {
            "event": "end",
            "matches": matches,
            "videos": [
                {
                    "origin": origin,
                    "video_id": vid.hex(),
                    "segments_hit": s.hits,
                    "best_matched_frames": s.best_frames,
                    "is_match": s.reported,
                }
                for (origin, vid), s in seen.items()
            ],
        },
        f"stream ended: {matches} matching video{'s' if matches != 1 else ''}; "
        + (
            ", ".join(
                f"{vid.hex()[:16]} by {origin}: hit in {s.hits} segment(s), "
                f"best {s.best_frames} frames{' (match)' if s.reported else ''}"
                for (origin, vid), s in seen.items()
            )
            or "no banked video hit"
        ),
    )
    return 0


def register(sub: Any) -> None:
    from node.cli.node_cmds import stall_option

    p = sub.add_parser(
        "watch",
        help="match a live stream (growing file or -) against a node as it grows, "
        "reporting a match within seconds (docs/live.md)",
    )
    p.add_argument("source", help="a video file still being written, or - for standard input")
    p.add_argument("--dir", dest="node_dir", type=Path, help="node directory (its running node)")
    p.add_argument("--to", help="node address host:port")
    p.add_argument("--insecure", action="store_true", help="plaintext connection (dev only)")
    p.add_argument(
        "--segment-seconds",
        type=float,
        default=WATCH_SEGMENT_S,
        help=f"query the node every this many seconds of stream (default {WATCH_SEGMENT_S:g})",
    )
    stall_option(p)
    p.add_argument("--json", action="store_true")
    video_limits.add_options(p)
    p.set_defaults(func=cmd_watch)
