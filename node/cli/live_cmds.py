"""Live incidents in the CLI: ``ccnode submit DIR --live SOURCE --incident ID``.

Publishes a video while it is still being streamed (docs/live.md): the
source is hashed as it grows (bank frames, node/media/video.py), cut into
segments of ``--segment-seconds`` of stream time (node/media/live.py), and
each complete segment is signed and submitted at once as an urgent VPDQ
entry of one video (a random video id for the stream); when the source
ends, the last segment goes out with the ``final`` flag. The source's
soundtrack, if it has one, is decoded in the same pass, fingerprinted as it
comes (node/media/audio.py, equal to the whole file's fingerprint) and
published the same way as urgent CHROMAPRINT segments of the same video,
on the same grid of stream time (node/media/live.py, AudioSegmenter), its
closing segment ``final`` too, before the video's.

Restarts. ``DIR/live/<incident>-<key>/state.json`` (key: a digest of the
incident and the source; the directory's ``node.lock`` admits one publisher
per stream) records the video id, the next segment to publish, where the last
published one ended, and, while a submission is in flight, the signed entry
itself (written before it is sent). A restarted publisher

- settles the in-flight entry first: if the node holds it, it counts as
  published; if the member's log has not moved since it was signed, the
  same bytes are sent again; otherwise its segment is signed anew on the
  log's current head. Never two entries for one seq, so the log cannot fork,
  and never two entries for one segment;
- a file source: is read again from its start; the segments already
  published are cut the same way (a fixed grid of stream time) and skipped;
- standard input: cannot be read again, so what comes now continues the
  same video after the last published segment (its timestamps shifted to
  start there): the same video id, a new run of segments.
A source published to its end is refused with the state file's name.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import hashlib
import json
import logging
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from node.cli import video_limits
from node.config import load_config, write_atomic
from node.core import labels
from node.core.chromaprint import SAMPLE_RATE as CHROMA_RATE
from node.core.chromaprint import ChromaprintSegment, item_ms, items_at
from node.core.entry import EntryBody, Kind, SignedEntry, Signer
from node.core.vpdq import VIDEO_ID_BYTES, VpdqSegment
from node.dirlock import DirLock
from node.errors import NodeError, NotFoundError, ValidationError
from node.media.live import (
    LIVE_SEGMENT_S,
    STDIN,
    AudioSegmenter,
    GrowingSource,
    HlsSource,
    Segmenter,
    check_segment_seconds,
    open_source,
    open_stream,
)
from node.rpc._pb.consortium.v1 import node_pb2 as pb
from node.rpc.client import NodeClient

if TYPE_CHECKING:
    from node.media.video import VideoLimits

log = logging.getLogger(__name__)

STATE_DIR = "live"


@dataclass(slots=True)
class LiveState:
    """What a publisher keeps in ``DIR/live/<incident>-<key>/state.json`` (module doc)."""

    source: str
    incident: str
    video_id: str  # hex
    segment_ms: int
    next_index: int = 0  # segments below this are published
    end_ms: int = 0  # where the last published segment ended (stream time)
    published: int = 0
    # the soundtrack's CHROMAPRINT segments, counted apart (node.media.live.AudioSegmenter)
    audio_next: int = 0  # audio segments below this are published
    audio_end_item: int = 0  # where the last published one ended (track position)
    audio_published: int = 0
    finished: bool = False
    pending: str = ""  # hex of the signed entry in flight (SignedEntry.to_bytes)

    @staticmethod
    def path_for(directory: Path, incident: str, source: str) -> Path:
        remote = source == STDIN or source.startswith(("http://", "https://"))
        where = source if remote else str(Path(source).resolve())
        key = hashlib.sha256(f"{incident}\0{where}".encode()).hexdigest()[:16]
        return directory / STATE_DIR / f"{incident}-{key}" / "state.json"

    @classmethod
    def load(cls, path: Path) -> LiveState | None:
        try:
            doc = json.loads(path.read_text())
            return cls(**doc)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError) as exc:
            raise ValidationError(
                f"{path}: unreadable live state ({exc}); remove it to start over"
            ) from None

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(asdict(self), indent=1) + "\n", mode=0o600)


Segment = VpdqSegment | ChromaprintSegment


@dataclass(slots=True)
class Published:
    segment: Segment
    entry_id: bytes
    outcome: str
    latency_ms: int  # from the segment's completion (hashed) to the node's answer


class Publisher:
    """Signs and submits one stream's segments in order, keeping the state file."""

    def __init__(
        self,
        client: NodeClient,
        *,
        origin: str,
        signer: Signer,
        state: LiveState,
        state_path: Path,
        labels_: tuple[str, ...],
    ) -> None:
        self.client = client
        self.origin = origin
        self.signer = signer
        self.state = state
        self.path = state_path
        self.labels = labels_

    async def _head(self) -> tuple[int, bytes]:
        status = await self.client.status()
        head = next((h for h in status.heads if h.origin == self.origin), None)
        return (head.next_seq, bytes(head.head_id)) if head else (0, bytes(32))

    def _sign(self, segment: Segment, seq: int, prev: bytes) -> SignedEntry:
        audio = isinstance(segment, ChromaprintSegment)
        body = EntryBody(
            origin=self.origin,
            seq=seq,
            prev=prev,
            key_id=self.signer.key_id,
            time_ms=time.time_ns() // 1_000_000,
            kind=Kind.ADD,
            algorithm="CHROMAPRINT" if audio else "VPDQ",
            hash=segment.encode(),
            labels=self.labels,
            incident=self.state.incident,
            urgent=True,
        )
        return self.signer.sign(body)

    async def settle_pending(self) -> Published | None:
        """After a restart: make the in-flight entry published, exactly once."""
        if not self.state.pending:
            return None
        entry = SignedEntry.from_bytes(bytes.fromhex(self.state.pending))
        kind = ChromaprintSegment if entry.body.algorithm == "CHROMAPRINT" else VpdqSegment
        segment: Segment = kind.decode(entry.body.hash)
        try:
            await self.client.get_entry(entry.entry_id)
            return self._done(segment, entry, "accepted (before the restart)", time.monotonic())
        except NotFoundError:
            pass
        seq, prev = await self._head()
        if (seq, prev) != (entry.body.seq, entry.body.prev):
            entry = self._sign(segment, seq, prev)  # the log moved on: sign it anew
        return await self._send(segment, entry, time.monotonic())

    async def publish(self, segment: Segment, completed: float) -> Published:
        seq, prev = await self._head()
        return await self._send(segment, self._sign(segment, seq, prev), completed)

    async def _send(self, segment: Segment, entry: SignedEntry, completed: float) -> Published:
        self.state.pending = entry.to_bytes().hex()
        self.state.save(self.path)  # written before it is sent: a crash cannot lose it
        response = await self.client.submit([entry])
        accepted = response.results[0].outcome == pb.OUTCOME_ACCEPTED
        outcome = "accepted" if accepted else "duplicate"
        return self._done(segment, entry, outcome, completed)

    def _done(
        self, segment: Segment, entry: SignedEntry, outcome: str, completed: float
    ) -> Published:
        s = self.state
        s.pending = ""
        if isinstance(segment, ChromaprintSegment):
            s.audio_next = segment.index + 1
            s.audio_end_item = segment.end_item
            s.audio_published += 1
        else:
            s.next_index = segment.index + 1
            s.end_ms = segment.end_ms
            s.published += 1
            s.finished = segment.final  # the video's closing segment goes out last
        s.save(self.path)
        latency = round((time.monotonic() - completed) * 1000)
        return Published(segment, entry.entry_id, outcome, latency)


def _segments(
    source: GrowingSource | HlsSource,
    state: LiveState,
    offset_ms: int,
    warn: Callable[[str], None],
    limits: VideoLimits,
) -> Iterator[tuple[Segment, float]]:
    """Hash the source as it grows; yield each complete segment not yet
    published (with the monotonic time it completed): the video's and its
    soundtrack's as they complete, then the soundtrack's final one and the
    video's final one."""
    from node.media.audio import MIN_SAMPLES
    from node.media.video import LiveBank

    stream = open_stream(source, functools.partial(LiveBank, limits=limits, audio=True))
    video_id = bytes.fromhex(state.video_id)
    segmenter = Segmenter(
        video_id, state.segment_ms, fps_milli=round(stream.fps * 1000), offset_ms=offset_ms
    )
    sound = AudioSegmenter(video_id, state.segment_ms)
    if offset_ms:  # a resumed pipe: the track goes on after what was published
        sound.first_item = max(state.audio_end_item, items_at(offset_ms))
    audio = stream.audio

    def heard() -> Iterator[tuple[Segment, float]]:
        if audio is not None:
            for piece in sound.add(audio.take().tolist()):
                if piece.index >= state.audio_next:
                    yield piece, time.monotonic()

    try:
        for frame in stream.frames():
            for segment in segmenter.add(frame):
                if segment.index >= state.next_index:
                    yield segment, time.monotonic()
            yield from heard()
    except ValidationError as exc:
        # A damaged or truncated stream: what was published stays valid; the
        # frames hashed so far close the video.
        warn(f"{source.error or exc}; closing the video with the frames hashed so far")
    else:
        if source.error is not None:
            warn(f"{source.error}; closing the video with the frames hashed so far")
    if source.stalled:
        warn(
            f"{source.name}: no new data for {source.stall_s:g} s: "
            "the stream is taken to have ended"
        )
    if audio is not None:
        audio.finish()
        yield from heard()
        if audio.error is not None:
            warn(f"{audio.error}; the soundtrack ends with what was fingerprinted before")
        closing = sound.finish()
        if closing is not None and closing.index >= state.audio_next:
            yield closing, time.monotonic()
        elif closing is None and sound.fed == 0 and state.audio_next == 0:
            warn(
                f"{source.name}: audio is too short to fingerprint: "
                f"{audio.fingerprint.samples / CHROMA_RATE:.2f} s, need at least "
                f"{MIN_SAMPLES / CHROMA_RATE:.2f} s: the soundtrack is not published"
            )
    final = segmenter.finish(stream.duration_ms)
    if final is not None and final.index >= state.next_index:
        yield final, time.monotonic()
    elif final is None and state.next_index == 0:
        raise ValidationError(f"{source.name}: no video frame could be hashed; nothing published")


def cmd_submit_live(args: argparse.Namespace) -> int:
    """``submit DIR --live SOURCE``: see the module doc."""
    from node.cli.node_cmds import _submitter

    if args.dir is None:
        raise ValidationError("--live needs the member directory (it keeps the stream's state)")
    if not args.incident:
        raise ValidationError("--live needs --incident: a live stream's entries are urgent")
    for other in ("file", "hash_hex", "retract"):
        if getattr(args, other, None):
            raise ValidationError(f"--live cannot be combined with --{other.replace('_hex', '')}")
    incident = labels.check_incident(args.incident)
    tags = labels.normalize_labels(args.label)
    seconds = LIVE_SEGMENT_S if args.segment_seconds is None else args.segment_seconds
    segment_ms = check_segment_seconds(seconds)
    load_config(args.dir)
    origin, signer = _submitter(args)
    path = LiveState.path_for(args.dir, incident, args.live)
    path.parent.mkdir(parents=True, exist_ok=True)
    # One publisher per stream: two would sign different entries for one seq.
    lock = DirLock.acquire(path.parent, f"publish {args.live}")
    try:
        return _publish_live(
            args,
            path,
            incident=incident,
            tags=tags,
            segment_ms=segment_ms,
            origin=origin,
            signer=signer,
        )
    finally:
        lock.release()


def _publish_live(
    args: argparse.Namespace,
    path: Path,
    *,
    incident: str,
    tags: tuple[str, ...],
    segment_ms: int,
    origin: str,
    signer: Signer,
) -> int:
    from node.cli.node_cmds import connect

    state = LiveState.load(path)
    if state is not None and state.finished:
        raise ValidationError(
            f"{args.live} was published to its end as video {state.video_id} "
            f"({state.published} segments; state in {path}); remove that file to publish it again"
        )
    if state is not None and state.segment_ms != segment_ms:
        raise ValidationError(
            f"{args.live} is being published with {state.segment_ms // 1000} s segments "
            f"(state in {path}): resume with --segment-seconds {state.segment_ms / 1000:g}"
        )
    resumed = state is not None
    if state is None:
        state = LiveState(
            source=args.live,
            incident=incident,
            video_id=secrets.token_bytes(VIDEO_ID_BYTES).hex(),
            segment_ms=segment_ms,
        )
        state.save(path)
    source = open_source(args.live, stall_s=args.stall_seconds)

    def say(doc: dict[str, Any], text: str) -> None:
        print(json.dumps(doc) if args.json else text, flush=True)

    def warn(text: str) -> None:
        print(f"ccnode: warning: {text}", file=sys.stderr, flush=True)

    def report(p: Published) -> None:
        s = p.segment
        if isinstance(s, ChromaprintSegment):
            end = item_ms(s.end_item)
            say(
                {
                    "video_id": state.video_id,
                    "algorithm": "CHROMAPRINT",
                    "segment": s.index,
                    "start_ms": s.start_ms,
                    "end_ms": end,
                    "items": len(s.values),
                    "final": s.final,
                    "entry_id": p.entry_id.hex(),
                    "outcome": p.outcome,
                    "latency_ms": p.latency_ms,
                },
                f"{p.outcome}: audio segment {s.index} "
                f"({s.start_ms / 1000:.1f}-{end / 1000:.1f} s, {len(s.values)} sub-fingerprints"
                f"{', final' if s.final else ''}) "
                f"entry {p.entry_id.hex()}",
            )
            return
        say(
            {
                "video_id": state.video_id,
                "algorithm": "VPDQ",
                "segment": s.index,
                "start_ms": s.start_ms,
                "end_ms": s.end_ms,
                "frames": len(s.frames),
                "final": s.final,
                "entry_id": p.entry_id.hex(),
                "outcome": p.outcome,
                "latency_ms": p.latency_ms,
            },
            f"{p.outcome}: segment {s.index} ({s.start_ms / 1000:.1f}-{s.end_ms / 1000:.1f} s, "
            f"{len(s.frames)} frames{', final' if s.final else ''}) entry {p.entry_id.hex()}",
        )

    async def run() -> None:
        loop = asyncio.get_running_loop()
        hashing = ThreadPoolExecutor(1, thread_name_prefix="live-hash")
        async with connect(args) as client:
            publisher = Publisher(
                client, origin=origin, signer=signer, state=state, state_path=path, labels_=tags
            )
            settled = await publisher.settle_pending()
            if settled is not None:
                report(settled)
            if resumed:
                warn(
                    f"resuming video {state.video_id} at segment {state.next_index} "
                    f"({state.end_ms / 1000:.1f} s published; state in {path})"
                )
            else:
                say(
                    {"video_id": state.video_id, "state": str(path)},
                    f"publishing video {state.video_id} of incident {incident} (state in {path})",
                )
            # A pipe cannot be read again: continue the video after what was
            # published (the settled entry included).
            offset = state.end_ms if resumed and args.live == STDIN else 0
            segments = _segments(source, state, offset, warn, video_limits.limits_of(args))
            try:
                while state.finished is False:
                    item = await loop.run_in_executor(hashing, next, segments, None)
                    if item is None:
                        break
                    report(await publisher.publish(*item))
            finally:
                source.close()
                hashing.shutdown(wait=False, cancel_futures=True)

    try:
        asyncio.run(run())
    except NodeError:
        raise
    finally:
        source.close()
    if not state.finished:
        raise ValidationError(f"{args.live}: the stream ended before its closing segment")
    say(
        {
            "video_id": state.video_id,
            "segments": state.published,
            "audio_segments": state.audio_published,
            "finished": True,
        },
        f"video {state.video_id} complete: {state.published} segments published"
        + (f" and {state.audio_published} audio segments" if state.audio_published else ""),
    )
    return 0
