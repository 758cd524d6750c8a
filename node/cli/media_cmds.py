"""Media commands: ``ccnode hash FILE...`` and ``ccnode match FILE...``.

Files are hashed here, on the member's machine: PDQ (images, with quality),
MD5 and SHA-256 (any file), VIDEO_MD5 (videos, by extension), for ``hash``
Meta's vPDQ of videos (docs/video.md) and a Chromaprint-compatible audio
fingerprint of audio files and of videos' soundtracks (docs/audio.md), and
for ``match`` every frame's PDQ of a video with its variants
(node/cli/video_cmds.py). Only hashes go to the node, and a node only ever
answers from its own replica. A bad file
gets one line on stderr and the others go on; the exit code is 2 if any
file failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from node.app import MAX_AUDIO_QUERY_ITEMS
from node.cli import video_cmds, video_limits
from node.errors import ValidationError
from node.match.video import QueryFrame
from node.media import image as media
from node.media.audio import AudioFingerprint, fingerprint_file
from node.media.video import VideoHashes, VideoLimits
from node.rpc._pb.consortium.v1 import node_pb2 as pb

VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".m4v", ".webm", ".mkv", ".avi", ".flv", ".ts"})
AUDIO_SUFFIXES = frozenset(
    {".m4a", ".mp3", ".aac", ".wav", ".flac", ".ogg", ".oga", ".opus", ".wma", ".aif", ".aiff"}
)


def register(sub: Any) -> None:
    p = sub.add_parser(
        "hash", help="hash media files locally: PDQ + quality, MD5, SHA-256, audio fingerprint"
    )
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--dihedral", action="store_true", help="also the 8 rotation/flip PDQ hashes")
    p.add_argument(
        "--vpdq-seconds",
        type=float,
        default=1.0,
        metavar="S",
        help="videos: one vPDQ frame hash every S seconds, Meta's rule (default 1, as pytx and "
        "HMA; 0: every frame)",
    )
    p.add_argument("--json", action="store_true", help="everything, with each vPDQ frame")
    video_limits.add_options(p)
    p.set_defaults(func=cmd_hash)


@dataclass(frozen=True, slots=True)
class Hashed:
    path: Path
    hashes: media.MediaHashes
    dihedral: tuple[media.PdqHash, ...] = ()
    audio: AudioFingerprint | None = None
    audio_note: str | None = None  # why a video has no audio fingerprint
    video: VideoHashes | None = None  # vPDQ, Meta's reference rule
    vpdq_seconds: float = 1.0

    def queries(self) -> list[tuple[str, bytes]]:
        out = [("MD5", self.hashes.md5), ("SHA256", self.hashes.sha256)]
        if self.path.suffix.lower() in VIDEO_SUFFIXES:
            out.append(("VIDEO_MD5", self.hashes.md5))
        pdq = self.hashes.pdq
        if pdq is not None and pdq.quality >= media.DEFAULT_QUALITY_FLOOR:
            out.append(("PDQ", pdq.value))
        return out

    def json(self) -> dict[str, Any]:
        pdq = self.hashes.pdq
        doc: dict[str, Any] = {
            "file": str(self.path),
            "md5": self.hashes.md5.hex(),
            "sha256": self.hashes.sha256.hex(),
            "pdq": pdq.hex() if pdq else None,
            "pdq_quality": pdq.quality if pdq else None,
        }
        if self.path.suffix.lower() in VIDEO_SUFFIXES:
            doc["video_md5"] = self.hashes.md5.hex()
        if self.dihedral:
            doc["pdq_dihedral"] = {
                name: h.hex() for name, h in zip(media.DIHEDRAL_NAMES, self.dihedral, strict=True)
            }
        if self.video is not None:
            doc["vpdq"] = vpdq_json(self.video, self.vpdq_seconds)
        if self.audio is not None or self.audio_note is not None:
            doc["chromaprint"] = self.audio.json() if self.audio is not None else None
        if self.audio_note is not None:
            doc["chromaprint_note"] = self.audio_note
        return doc


def _audio(path: Path) -> tuple[AudioFingerprint | None, str | None]:
    """The audio fingerprint of an audio file (its errors are the file's) or
    of a video's soundtrack (a video without usable audio gets a note)."""
    suffix = path.suffix.lower()
    if suffix in AUDIO_SUFFIXES:
        return fingerprint_file(path), None
    if suffix in VIDEO_SUFFIXES:
        try:
            return fingerprint_file(path), None
        except ValidationError as exc:
            return None, str(exc).removeprefix(f"{path}: ")
    return None, None


def hash_files(
    paths: list[Path],
    *,
    dihedral: bool,
    audio: bool = False,
    vpdq_seconds: float | None = None,
    limits: VideoLimits | None = None,
) -> tuple[list[Hashed], int]:
    """Hash each file; report each failure on one line and go on. With
    ``vpdq_seconds``, files named as videos also get Meta's vPDQ, and a video
    that does not decode is a failed file."""
    from node.media.video import DEFAULT_LIMITS, reference_vpdq

    done: list[Hashed] = []
    failed = 0
    for path in paths:
        try:
            hashes = media.hash_file(path)
            variants = media.pdq_dihedral(path) if dihedral and hashes.pdq is not None else ()
            video = None
            if vpdq_seconds is not None and path.suffix.lower() in VIDEO_SUFFIXES:
                video = reference_vpdq(
                    path, seconds_per_hash=vpdq_seconds, limits=limits or DEFAULT_LIMITS
                )
            fingerprint, note = _audio(path) if audio else (None, None)
        except ValidationError as exc:
            print(f"ccnode: error: {exc}", file=sys.stderr)
            failed += 1
            continue
        done.append(Hashed(path, hashes, variants, fingerprint, note, video, vpdq_seconds or 0.0))
    return done, failed


def cmd_hash(args: argparse.Namespace) -> int:
    if not args.vpdq_seconds >= 0:
        raise ValidationError(f"--vpdq-seconds must be >= 0: got {args.vpdq_seconds}")
    done, failed = hash_files(
        args.files,
        dihedral=args.dihedral,
        audio=True,
        vpdq_seconds=args.vpdq_seconds,
        limits=video_limits.limits_of(args),
    )
    if args.json:
        print(json.dumps([h.json() for h in done], indent=2))
    else:
        for h in done:
            pdq = h.hashes.pdq
            pdq_text = f"pdq {pdq.hex()} q{pdq.quality:<3}" if pdq else f"pdq {'-':64}     "
            print(f"{h.path}  {pdq_text}  md5 {h.hashes.md5.hex()}  sha256 {h.hashes.sha256.hex()}")
            if pdq is not None and pdq.quality < media.DEFAULT_QUALITY_FLOOR:
                print(
                    f"  note: PDQ quality {pdq.quality} is below {media.DEFAULT_QUALITY_FLOOR}: "
                    "not used for matching or submission"
                )
            if h.audio is not None:
                print(f"  {audio_summary(h.audio)}")
            elif h.audio_note is not None:
                print(f"  note: no audio fingerprint: {h.audio_note}")
            if h.video is not None:
                print(f"  {vpdq_summary(h.video, h.vpdq_seconds)}")
    return 2 if failed else 0


QUALITY_BANDS = ((0, 49), (50, 69), (70, 89), (90, 100))


def _quality_histogram(v: VideoHashes) -> dict[str, int]:
    return {
        f"{lo}-{hi}": sum(1 for f in v.frames if lo <= f.quality <= hi) for lo, hi in QUALITY_BANDS
    }


def _every(seconds: float) -> str:
    if seconds == 0:
        return "every frame"
    return "1 a second" if seconds == 1 else f"1 every {seconds:g} s"


def vpdq_summary(v: VideoHashes, seconds: float) -> str:
    """One line: frames hashed, duration, stream, and the quality histogram."""
    bands = "  ".join(f"{k}: {n}" for k, n in _quality_histogram(v).items())
    return (
        f"vpdq {len(v.frames)} frames ({_every(seconds)}) of {v.frames_decoded} over "
        f"{v.duration_ms / 1000:.2f} s, {v.fps:g} fps, {v.width}x{v.height}; quality {bands}"
        f" (frames below 50 are not matched)"
    )


def vpdq_json(v: VideoHashes, seconds: float) -> dict[str, Any]:
    return {
        "seconds_per_hash": seconds,
        "fps": v.fps,
        "duration_ms": v.duration_ms,
        "width": v.width,
        "height": v.height,
        "frames_decoded": v.frames_decoded,
        "quality_histogram": _quality_histogram(v),
        "frames": [
            {"frame": n, "ts_ms": f.ts_ms, "pdq": f.pdq.hex(), "quality": f.quality}
            for n, f in zip(v.frame_numbers, v.frames, strict=True)
        ],
    }


def audio_summary(fp: AudioFingerprint) -> str:
    """One line: what was fingerprinted and the first sub-fingerprints."""
    head = " ".join(f"{v:08x}" for v in fp.values[:4])
    return (
        f"chromaprint {len(fp.values)} x 32 bits over {fp.duration_s:.2f} s "
        f"({fp.codec} {fp.source_rate} Hz {fp.source_channels} ch, "
        f"{fp.silent_fraction:.0%} silent): {head} ..."
    )


def hash_for_submission(path: Path, algo: str | None) -> tuple[str, bytes, int | None]:
    """The hash to submit for a file hashed here, and its PDQ quality. PDQ is
    the default for an image and must meet the quality floor: a low-quality
    hash says little about the image and would match unrelated ones."""
    from node.core import hashes

    hashed = media.hash_file(path)
    name = hashes.normalize_name(algo) if algo else ("PDQ" if hashed.pdq else "SHA256")
    if name == "PDQ":
        if hashed.pdq is None:
            raise ValidationError(f"{path}: not an image, so it has no PDQ hash")
        try:
            media.check_pdq_quality(hashed.pdq.quality)
        except ValidationError as exc:
            raise ValidationError(f"{path}: {exc}; not submitted") from None
        return name, hashed.pdq.value, hashed.pdq.quality
    if name in ("MD5", "VIDEO_MD5", "SHA256"):
        value = hashed.sha256 if name == "SHA256" else hashed.md5
        try:
            hashes.check_not_trivial(name, value)
        except ValidationError as exc:
            raise ValidationError(f"{path}: {exc}; not submitted") from None
        return name, value, None
    if name == "VPDQ":  # a video is banked before this: the file is not one
        raise ValidationError(f"{path}: --algo vpdq needs a video file ({_names(VIDEO_SUFFIXES)})")
    if name == "CHROMAPRINT":  # likewise an audio file or a video
        raise ValidationError(
            f"{path}: --algo chromaprint needs an audio file ({_names(AUDIO_SUFFIXES)}) "
            "or a video file"
        )
    raise ValidationError(f"--file computes PDQ, MD5, VIDEO_MD5 or SHA256, not {name}")


def _names(suffixes: frozenset[str]) -> str:
    return ", ".join(sorted(s.removeprefix(".") for s in suffixes))


def fired(found: Sequence[pb.VideoMatch], heard: Sequence[pb.AudioMatch]) -> list[str]:
    """Which evidence made a match decision: "visual" (frames), "audio" (soundtrack)."""
    out = ["visual"] if any(v.is_match for v in found) else []
    return out + (["audio"] if any(m.is_match for m in heard) else [])


def describe_audio(m: pb.AudioMatch) -> str:
    """One line: the decision, the banked soundtrack, its submitter and the ranges."""
    p = m.match.provenance
    state = "RETRACTED" if p.retracted else m.match.recommended_action
    if not m.is_match:
        state = "no-match"
    tags = ",".join(p.current_labels or p.labels) or "-"
    return (
        f"{state:9} banked soundtrack {m.video_id.hex()[:16]} by {p.origin} "
        f"({p.origin_kind}, {p.jurisdiction}): upload {video_cmds.clock(m.query_start_ms)}-"
        f"{video_cmds.clock(m.query_end_ms)} ~ banked {video_cmds.clock(m.banked_start_ms)}-"
        f"{video_cmds.clock(m.banked_end_ms)}  (similarity {m.similarity:.3f}, "
        f"aligned {m.aligned_s:.1f} s)  labels {tags}  incident {p.incident or '-'}  "
        f"rule {m.match.rule or '-'}  segments {len(m.segments)}, "
        f"first {m.segments[0].hex()[:16] if m.segments else '-'}"
    )


def print_audio(label: str, heard: Sequence[pb.AudioMatch]) -> None:
    hits = sum(1 for m in heard if m.is_match)
    if hits:
        print(f"{label}: {hits} audio match{'es' if hits != 1 else ''}")
    for m in heard:
        print("  " + describe_audio(m))


def audio_json(m: pb.AudioMatch) -> dict[str, Any]:
    from node.cli.node_cmds import match_json

    return {
        "video_id": m.video_id.hex(),
        "is_match": m.is_match,
        "similarity": m.similarity,
        "aligned_s": m.aligned_s,
        "upload_range_ms": [m.query_start_ms, m.query_end_ms],
        "banked_range_ms": [m.banked_start_ms, m.banked_end_ms],
        "segments": [s.hex() for s in m.segments],
        "match": match_json(m.match),
    }


def match_files(args: argparse.Namespace) -> int:
    """``ccnode match FILE...``: hash locally, then one batch Match."""
    from node.cli.node_cmds import QueryAnswer, _address, connect

    if not args.paths:
        raise ValidationError("give FILEs to hash and match, or --algo and --hash")
    args.dir = args.node_dir
    _address(args)  # a node to ask, before hashing the files
    done, failed = hash_files(list(args.paths), dihedral=args.dihedral, audio=True)
    queries: list[tuple[str, bytes]] = []
    variants: list[list[bytes]] = []
    owner: list[int] = []
    for i, h in enumerate(done):
        for algo, value in h.queries():
            queries.append((algo, value))
            variants.append([v.value for v in h.dihedral[1:]] if algo == "PDQ" else [])
            owner.append(i)
    frames: dict[int, list[QueryFrame]] = {}  # videos: every frame and its variants
    for i, h in enumerate(done):
        if h.path.suffix.lower() in VIDEO_SUFFIXES:
            try:
                frames[i] = video_cmds.hash_query(h.path, video_limits.limits_of(args))
            except ValidationError as exc:
                print(f"ccnode: error: {exc}", file=sys.stderr)
                failed += 1
    results: list[pb.QueryResult] = []
    videos: dict[int, list[pb.VideoMatch]] = {i: [] for i in frames}
    # audio files and videos' soundtracks: the fingerprint from the start
    tracks = {i: h.audio.values for i, h in enumerate(done) if h.audio is not None}
    sounds: dict[int, list[pb.AudioMatch]] = {i: [] for i in tracks}
    thresholds = video_cmds.thresholds_of(args)

    async def go() -> None:
        async with connect(args) as client:  # as DIR's member (mutual TLS)
            if queries:
                response = await client.match(
                    queries,
                    include_retracted=args.include_retracted,
                    record=args.record,
                    max_distance=args.max_distance,
                    dihedral=variants,
                )
                results.extend(response.results)
            for i, fs in frames.items():
                answers = []
                size = video_cmds.window_frames(args.max_distance)
                for window in video_cmds.query_windows(fs, size):
                    answers += await client.match_video(
                        window,
                        thresholds,
                        include_retracted=args.include_retracted,
                        record=args.record,
                        report_all=args.report_all,
                    )
                videos[i] = video_cmds.best_per_video(answers)
            for i, values in tracks.items():
                sounds[i] = await client.match_audio(
                    values[:MAX_AUDIO_QUERY_ITEMS],
                    include_retracted=args.include_retracted,
                    record=args.record,
                    report_all=args.report_all,
                )

    if queries or frames or tracks:
        asyncio.run(go())
    per_file: list[dict[bytes, pb.Match]] = [{} for _ in done]
    never: list[bool] = [False for _ in done]
    truncated: list[bool] = [False for _ in done]
    for i, result in zip(owner, results, strict=True):
        never[i] |= result.never_match
        truncated[i] |= result.truncated
        for m in result.matches:
            seen = per_file[i].get(m.provenance.entry_id)
            if seen is None or m.distance < seen.distance:
                per_file[i][m.provenance.entry_id] = m
    answers = [
        QueryAnswer(
            str(h.path),
            dict(h.queries()),
            [] if never[i] else sorted(per_file[i].values(), key=lambda m: m.distance),
            never[i],
            truncated=truncated[i],
        )
        for i, h in enumerate(done)
    ]
    if args.json:
        docs = []
        for i, a in enumerate(answers):
            doc = a.json()
            if i in videos:
                doc["videos"] = [video_cmds.video_json(v) for v in videos[i]]
            if i in sounds:
                doc["audio"] = [audio_json(m) for m in sounds[i]]
            if i in videos or i in sounds:
                doc["fired"] = fired(videos.get(i, []), sounds.get(i, []))
            if i in videos and done[i].audio_note is not None:
                doc["audio_note"] = done[i].audio_note  # why its soundtrack was not asked
            docs.append(doc)
        print(json.dumps(docs, indent=2))
    else:
        for i, a in enumerate(answers):
            found, heard = videos.get(i, []), sounds.get(i, [])
            media_hit = any(v.is_match for v in found) or any(m.is_match for m in heard)
            if a.matches or a.never_match or not media_hit:
                a.print(str(a.file))
            video_cmds.print_videos(str(a.file), found)
            print_audio(str(a.file), heard)
            if i in videos:  # a video says which evidence fired, and why no audio
                if done[i].audio_note is not None:
                    print(f"{a.file}: note: no audio fingerprint: {done[i].audio_note}")
                evidence = fired(found, heard)
                print(f"{a.file}: fired: {', '.join(evidence) if evidence else 'neither'}")
    return 2 if failed else 0
