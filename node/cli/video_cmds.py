"""Video in the CLI: ``ccnode match VIDEO...`` and ``ccnode submit DIR --file VIDEO``.

A video to match is hashed here (every frame, with its mirrored and
border-trimmed variants: node/media/video.py ``query_frames``) and sent as one
video query per window of at most what a Match request's budget holds
(10,000 frames at distance 31: :func:`window_frames`); the node
answers per banked video. A video to bank is hashed with ``bank_frames`` (at
most 5 frames a second, the reference's 1/s frames at full size), cut into
segments (node/core/vpdq.py) that share the video's id, the first 16 bytes of
the file's SHA-256; its soundtrack's Chromaprint fingerprint is cut into
CHROMAPRINT segments (node/core/chromaprint.py) under the same id, and all
are submitted as one signed batch. An audio file (``submit --file AUDIO``)
is banked the same way, as CHROMAPRINT segments alone under its own id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from node.app import MAX_VIDEO_QUERY_FRAMES
from node.core import chromaprint, vpdq
from node.errors import ValidationError
from node.match.limits import MatchLimits
from node.match.pdq_index import DEFAULT_RADIUS, probes
from node.match.video import QueryFrame, VideoThresholds
from node.rpc._pb.consortium.v1 import node_pb2 as pb

if TYPE_CHECKING:
    from node.media.video import VideoLimits


def clock(ms: int) -> str:
    """``m:ss`` (``h:mm:ss`` from an hour): how the ranges are printed."""
    s = max(0, ms) // 1000
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return f"{h}:{m:02}:{sec:02}" if h else f"{m}:{sec:02}"


def video_id_of(path: Path) -> bytes:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.digest()[: vpdq.VIDEO_ID_BYTES]


def bank_segments(
    path: Path, segment_ms: int = vpdq.SEGMENT_MS, limits: VideoLimits | None = None
) -> list[vpdq.VpdqSegment]:
    """The VPDQ segments that bank the video at ``path``."""
    if not 1000 <= segment_ms <= vpdq.MAX_SEGMENT_MS:
        raise ValidationError(
            f"segment length {segment_ms // 1000} s: expected 1..{vpdq.MAX_SEGMENT_MS // 1000}"
        )
    from node.media.video import DEFAULT_LIMITS, bank_frames

    hashed = bank_frames(path, limits or DEFAULT_LIMITS)
    if not hashed.frames:
        raise ValidationError(f"{path}: no frame could be hashed; nothing to bank")
    return vpdq.split(
        hashed.frames,
        video_id_of(path),
        duration_ms=hashed.duration_ms,
        fps_milli=round(hashed.fps * 1000),
        max_ms=segment_ms,
    )


def track_segments(path: Path) -> list[chromaprint.ChromaprintSegment]:
    """The CHROMAPRINT segments that bank the audio of the file at ``path``
    (an audio file, or a video's soundtrack) under the file's id, the first
    16 bytes of its SHA-256; a ValidationError, one line naming the file,
    when it cannot be fingerprinted (no audio stream, silence only, too
    short, a corrupt stream: docs/audio.md)."""
    from node.media.audio import fingerprint_file

    return chromaprint.split(fingerprint_file(path).values, video_id_of(path))


def soundtrack_segments(path: Path) -> tuple[list[chromaprint.ChromaprintSegment], str]:
    """The CHROMAPRINT segments that bank the soundtrack of the video at
    ``path`` under the video's own id (linking them to its VPDQ segments),
    or none and the one-line reason (no audio stream, silence only, too
    short, a corrupt stream): the video's frames are banked either way."""
    try:
        return track_segments(path), ""
    except ValidationError as exc:
        return [], str(exc)


def window_frames(max_distance: int) -> int:
    """Query frames a request may hold: within the default Match budget (each
    frame costs a PDQ query's probes at the distance) and the message cap."""
    each = probes(max_distance or DEFAULT_RADIUS)
    return min(MAX_VIDEO_QUERY_FRAMES, MatchLimits().max_probes // each)


def query_windows(frames: Sequence[QueryFrame], size: int) -> list[list[QueryFrame]]:
    """The query frames cut into requests of at most ``size`` frames, never
    splitting one frame's variants (they share a timestamp; at most 4)."""
    out: list[list[QueryFrame]] = [[]]
    for f in frames:
        window = out[-1]
        if len(window) >= size - 3 and window[-1].ts_ms != f.ts_ms:
            out.append([])
        out[-1].append(f)
    return [w for w in out if w]


def hash_query(path: Path, limits: VideoLimits | None = None) -> list[QueryFrame]:
    from node.media.video import DEFAULT_LIMITS, query_frames

    _, frames = query_frames(path, limits or DEFAULT_LIMITS)
    return list(frames)


def best_per_video(answers: Sequence[pb.VideoMatch]) -> list[pb.VideoMatch]:
    """One answer per banked video over the windows: a match before a near
    miss, then the one with the most aligned frames."""
    best: dict[tuple[str, bytes], pb.VideoMatch] = {}
    for v in answers:
        key = (v.match.provenance.origin, v.video_id)
        seen = best.get(key)
        if seen is None or (v.is_match, v.matched_frames) > (seen.is_match, seen.matched_frames):
            best[key] = v
    return sorted(best.values(), key=lambda v: (not v.is_match, -v.matched_frames))


def describe(v: pb.VideoMatch) -> str:
    """One line: the decision, the banked video, its submitter and the ranges."""
    p = v.match.provenance
    state = "RETRACTED" if p.retracted else v.match.recommended_action
    if not v.is_match:
        state = "no-match"
    variant = ", mirrored" if v.mirrored else ""
    variant += ", border-trimmed" if v.trimmed else ""
    tags = ",".join(p.current_labels or p.labels) or "-"
    return (
        f"{state:9} banked video {v.video_id.hex()[:16]} by {p.origin} "
        f"({p.origin_kind}, {p.jurisdiction}): upload {clock(v.query_start_ms)}-"
        f"{clock(v.query_end_ms)} ~ banked {clock(v.banked_start_ms)}-{clock(v.banked_end_ms)}"
        f"  (query {v.query_pct:.0f}%, banked {v.banked_pct:.0f}%, {v.matched_frames} frames, "
        f"coverage {v.coverage:.2f}{variant})  labels {tags}"
        f"  incident {p.incident or '-'}  rule {v.match.rule or '-'}  "
        f"segments {len(v.segments)}, first {v.segments[0].hex()[:16] if v.segments else '-'}"
    )


def print_videos(label: str, found: Sequence[pb.VideoMatch]) -> None:
    hits = sum(1 for v in found if v.is_match)
    if hits:
        print(f"{label}: {hits} video match{'es' if hits != 1 else ''}")
    for v in found:
        print("  " + describe(v))


def video_json(v: pb.VideoMatch) -> dict[str, Any]:
    from node.cli.node_cmds import match_json

    return {
        "video_id": v.video_id.hex(),
        "is_match": v.is_match,
        "query_pct": v.query_pct,
        "banked_pct": v.banked_pct,
        "matched_frames": v.matched_frames,
        "offset_ms": v.offset_ms,
        "coverage": v.coverage,
        "upload_range_ms": [v.query_start_ms, v.query_end_ms],
        "banked_range_ms": [v.banked_start_ms, v.banked_end_ms],
        "banked_held_ms": [v.banked_first_ms, v.banked_last_ms],
        "mirrored": v.mirrored,
        "trimmed": v.trimmed,
        "segments": [s.hex() for s in v.segments],
        "match": match_json(v.match),
    }


def thresholds_of(args: Any) -> VideoThresholds | None:
    """The per-request thresholds given on the command line (None: the node's)."""
    fields = {
        name: getattr(args, name)
        for name in ("min_coverage", "min_matched_ms")
        if getattr(args, name, None) is not None
    }
    if getattr(args, "max_distance", 0):
        fields["max_distance"] = args.max_distance
    return VideoThresholds(**fields) if fields else None
