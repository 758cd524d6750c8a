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

The stream's soundtrack, if it has one, is decoded in the same pass and
fingerprinted as it comes (node/media/audio.py, LiveAudio); each window
whose sound has grown also sends the newest :data:`AUDIO_WINDOW_ITEMS`
sub-fingerprints (the same 60 s) as one audio query, once there are
enough to make the minimum aligned duration. An audio match is reported
once per banked video, apart from a visual one ("fired": "audio", with the
similarity and the aligned seconds), so a copy whose picture no visual hash
catches is still reported by its sound.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from node.cli import video_limits
from node.core.chromaprint import ITEM_SAMPLES, SAMPLE_RATE, item_ms, items_at
from node.errors import ValidationError
from node.match.audio_index import AudioThresholds
from node.match.video import QueryFrame
from node.media.live import check_segment_seconds, open_source, open_stream

if TYPE_CHECKING:
    from node.media.audio import LiveAudio
    from node.rpc.client import NodeClient

#: Stream time each query covers (the newest part): long enough for the
#: thresholds' evidence (minimum matched duration, coverage), short enough
#: that a query stays small however long the stream runs.
WINDOW_MS = 60_000
WATCH_SEGMENT_S = 2.0
#: The newest sub-fingerprints each audio query carries (the same 60 s: 485).
AUDIO_WINDOW_ITEMS = items_at(WINDOW_MS)


def _item_of(ms: int) -> int:
    """The item position whose start ``item_ms`` gives as ``ms`` (exact:
    items are 123.8 ms apart, so rounding to the millisecond loses nothing)."""
    return (2 * ms * SAMPLE_RATE + 1000 * ITEM_SAMPLES) // (2000 * ITEM_SAMPLES)


@dataclass(slots=True)
class Seen:
    """Running counts for one banked video."""

    hits: int = 0  # segments whose query hit it
    best_frames: int = 0
    reported: bool = False
    audio_hits: int = 0  # windows whose audio query hit it
    best_similarity: float = 0.0
    heard: bool = False  # an audio match was reported


@dataclass(frozen=True, slots=True)
class Window:
    evidence_ms: int  # the query covers the stream up to here (a segment's end)
    consumed_ms: int  # stream time decoded when it was sent
    frames: list[QueryFrame]
    completed: float  # monotonic time the segment was complete (hashed)
    last: bool
    audio: list[int] = field(default_factory=list)  # the newest sub-fingerprints
    audio_start: int = 0  # the stream position of audio[0]
    audio_new: bool = False  # the sound grew since the last window


@dataclass(slots=True)
class _Heard:
    """The soundtrack's newest sub-fingerprints (at most AUDIO_WINDOW_ITEMS)."""

    audio: LiveAudio | None
    values: list[int] = field(default_factory=list)
    start: int = 0
    new: bool = False

    def take(self) -> None:
        if self.audio is None:
            return
        got = self.audio.take().tolist()
        if got:
            self.values += got
            self.new = True
            excess = len(self.values) - AUDIO_WINDOW_ITEMS
            if excess > 0:
                del self.values[:excess]
                self.start += excess

    def window(self) -> dict[str, Any]:
        new, self.new = self.new, False
        return {"audio": list(self.values), "audio_start": self.start, "audio_new": new}


def _windows(stream: Any, segment_ms: int) -> Iterator[Window]:
    """One query window per completed segment of stream time, and one at the end."""
    frames: list[QueryFrame] = []
    heard = _Heard(stream.audio)
    boundary = segment_ms
    for variants in stream.frames():
        ts = variants[0].ts_ms
        while ts >= boundary:
            now = time.monotonic()
            recent = _recent(frames, boundary)
            yield Window(boundary, stream.duration_ms, recent, now, False, **heard.window())
            boundary += segment_ms
        frames.extend(variants)
        heard.take()
    if stream.audio is not None:
        stream.audio.finish()
        heard.take()
    end = stream.duration_ms
    yield Window(end, end, _recent(frames, end), time.monotonic(), True, **heard.window())


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
    from node.cli.media_cmds import audio_json, describe_audio
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

    min_items = AudioThresholds().min_items

    def announce(fired: str, item: Window, hits: int, doc: dict[str, Any], line: str) -> None:
        """Report a banked video's first match by one kind of evidence."""
        nonlocal matches
        matches += 1
        latency = time.monotonic() - item.completed
        by = " by soundtrack" if fired == "audio" else ""
        say(
            {
                "event": "match",
                "fired": fired,
                "stream_ms": item.consumed_ms,
                "evidence_ms": item.evidence_ms,
                "latency_ms": round(latency * 1000),
                "segments_hit": hits,
                **doc,
            },
            f"MATCH{by} after {item.consumed_ms / 1000:.1f} s of stream "
            f"(latency {latency:.2f} s): {line}",
        )

    async def see(client: NodeClient, item: Window) -> None:
        """The window's frames as one video query."""
        for v in await client.match_video(item.frames):
            s = seen.setdefault((v.match.provenance.origin, bytes(v.video_id)), Seen())
            s.hits += 1
            s.best_frames = max(s.best_frames, v.matched_frames)
            if v.is_match and not s.reported:
                s.reported = True
                announce("visual", item, s.hits, video_json(v), describe(v))

    async def hear(client: NodeClient, item: Window) -> None:
        """The window's sound as one audio query."""
        for m in await client.match_audio(item.audio):
            s = seen.setdefault((m.match.provenance.origin, bytes(m.video_id)), Seen())
            s.audio_hits += 1
            s.best_similarity = max(s.best_similarity, m.similarity)
            if m.is_match and not s.heard:
                s.heard = True
                # the window's ranges in the stream's time
                for name in ("query_start_ms", "query_end_ms"):
                    setattr(m, name, item_ms(item.audio_start + _item_of(getattr(m, name))))
                announce("audio", item, s.audio_hits, audio_json(m), describe_audio(m))

    async def run() -> None:
        loop = asyncio.get_running_loop()
        hashing = ThreadPoolExecutor(1, thread_name_prefix="watch-hash")
        try:
            kind = functools.partial(LiveQuery, limits=video_limits.limits_of(args), audio=True)
            stream = await loop.run_in_executor(hashing, open_stream, source, kind)
            windows = _windows(stream, segment_ms)
            hashed = functools.partial(loop.run_in_executor, hashing, next, windows, None)
            async with connect(args) as client:
                while (item := await hashed()) is not None:
                    if item.audio_new and len(item.audio) >= min_items:
                        await hear(client, item)
                    if item.frames:
                        await see(client, item)
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
                    "audio_hits": s.audio_hits,
                    "best_similarity": round(s.best_similarity, 4),
                    "audio_match": s.heard,
                }
                for (origin, vid), s in seen.items()
            ],
        },
        f"stream ended: {matches} matching video{'s' if matches != 1 else ''}; "
        + (
            ", ".join(
                f"{vid.hex()[:16]} by {origin}: hit in {s.hits} segment(s), "
                f"best {s.best_frames} frames{' (match)' if s.reported else ''}"
                + (
                    f", sound hit in {s.audio_hits} window(s), best similarity "
                    f"{s.best_similarity:.3f}{' (match)' if s.heard else ''}"
                    if s.audio_hits
                    else ""
                )
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
