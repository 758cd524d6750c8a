"""vPDQ segments: the hash field of a VPDQ entry, and how a video is cut into them.

A banked video is a sequence of *segment* entries that share a ``video_id``;
each segment carries its frames (PDQ hash, quality, timestamp) and its offset
in the video, so a segment means something on its own: a node that holds only
some segments of a video (a live stream still being published, a sync in
progress) matches against those, and a match aggregates every segment of one
video (same origin and video id) on absolute timestamps.

Encoding (all integers big-endian; docs/protocol.md)::

    magic        4 bytes   b"VPDQ"
    version      u8        1
    video_id     16 bytes  files: SHA-256(file)[:16]; live streams: random
    index        u32       segment number, from 0
    start_ms     u32       the segment's offset in the video (ms)
    duration_ms  u32       stream time the segment covers, 0..MAX_SEGMENT_MS
    fps_milli    u32       the video's average frame rate x 1000 (0: unknown)
    flags        u8        bit 0: final (last segment of the video); others zero
    count        u16       frames, 1..MAX_FRAMES
    count times:
      pdq        32 bytes
      quality    u8        0..100
      ts_ms      u32       relative to start_ms, 0..duration_ms, non-decreasing

A frame takes 37 bytes and the header 40, so a full segment is 40 + 37 * 1024 =
37,928 bytes
(:data:`MAX_ENCODED`). Files are cut into segments of at most
:data:`SEGMENT_MS` (60 s) and :data:`SEGMENT_FRAMES` frames; at the bank's
5 frames per second a minute is ~300 frames, ~11 KiB. A two-hour video is 120
segments (~1.3 MiB): one signed batch, well under the submit and message
limits. Each entry is far below the 2 MiB of one Pull response, so segments
travel like any other entry, and a live stream can publish each one (urgent)
as soon as its span ends.

``start_ms`` is a u32: a video (or a live stream) may run for up to 49 days.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from node.core.segments import check_items
from node.errors import ValidationError

MAGIC = b"VPDQ"
VERSION = 1
VIDEO_ID_BYTES = 16
PDQ_BYTES = 32
MAX_FRAMES = 1024  # per segment: 3.4 minutes at the bank's 5/s, 34 s of every frame at 30 fps
MAX_SEGMENT_MS = 10 * 60 * 1000  # one segment spans at most 10 minutes of stream time
MAX_FPS_MILLI = 1000 * 1000  # 1000 frames/s
MAX_QUALITY = 100
FLAG_FINAL = 0x01

SEGMENT_MS = 60 * 1000  # how files are cut: 60 s a segment ...
SEGMENT_FRAMES = 600  # ... or this many frames, whichever comes first

_HEADER = struct.Struct(">4sB16sIIIIBH")
_FRAME = struct.Struct(">32sBI")
HEADER_BYTES = _HEADER.size  # 40
FRAME_BYTES = _FRAME.size  # 37
MAX_ENCODED = HEADER_BYTES + MAX_FRAMES * FRAME_BYTES
_U32_MAX = 2**32 - 1


@dataclass(frozen=True, slots=True)
class VideoFrame:
    """One hashed frame: PDQ, its quality, and its time from the video's start."""

    pdq: bytes
    quality: int
    ts_ms: int

    def __post_init__(self) -> None:
        if not isinstance(self.pdq, bytes) or len(self.pdq) != PDQ_BYTES:
            got = len(self.pdq) if isinstance(self.pdq, bytes | bytearray) else self.pdq
            raise ValidationError(f"frame PDQ has {got} bytes: expected {PDQ_BYTES}")
        if not 0 <= self.quality <= MAX_QUALITY:
            raise ValidationError(f"frame quality {self.quality}: expected 0..{MAX_QUALITY}")
        if not 0 <= self.ts_ms <= _U32_MAX:
            raise ValidationError(f"frame timestamp {self.ts_ms} ms: expected 0..{_U32_MAX}")


@dataclass(frozen=True, slots=True)
class VpdqSegment:
    """The hash field of one VPDQ entry (frames carry absolute timestamps)."""

    video_id: bytes
    index: int
    start_ms: int
    duration_ms: int
    fps_milli: int
    final: bool
    frames: tuple[VideoFrame, ...]

    def __post_init__(self) -> None:
        if len(self.video_id) != VIDEO_ID_BYTES:
            raise ValidationError(
                f"vPDQ video id has {len(self.video_id)} bytes: expected {VIDEO_ID_BYTES}"
            )
        if not 0 <= self.index <= _U32_MAX:
            raise ValidationError(f"vPDQ segment index {self.index}: expected 0..{_U32_MAX}")
        if not 0 <= self.start_ms <= _U32_MAX:
            raise ValidationError(f"vPDQ segment start {self.start_ms} ms: expected 0..{_U32_MAX}")
        if not 0 <= self.duration_ms <= MAX_SEGMENT_MS:
            raise ValidationError(
                f"vPDQ segment duration {self.duration_ms} ms: expected 0..{MAX_SEGMENT_MS}"
            )
        if self.start_ms + self.duration_ms > _U32_MAX:
            raise ValidationError(
                f"vPDQ segment ends at {self.start_ms + self.duration_ms} ms: "
                f"expected at most {_U32_MAX}"
            )
        if not 0 <= self.fps_milli <= MAX_FPS_MILLI:
            raise ValidationError(
                f"vPDQ frame rate {self.fps_milli} mfps: expected 0..{MAX_FPS_MILLI} (0: unknown)"
            )
        if not 1 <= len(self.frames) <= MAX_FRAMES:
            raise ValidationError(
                f"vPDQ segment has {len(self.frames)} frames: expected 1..{MAX_FRAMES}"
            )
        end = self.start_ms + self.duration_ms
        last = self.start_ms
        for i, f in enumerate(self.frames):
            if not self.start_ms <= f.ts_ms <= end:
                raise ValidationError(
                    f"vPDQ frame {i}: timestamp {f.ts_ms} ms outside the segment "
                    f"{self.start_ms}..{end} ms"
                )
            if f.ts_ms < last:
                raise ValidationError(
                    f"vPDQ frame {i}: timestamp {f.ts_ms} ms before the previous frame's "
                    f"{last} ms: expected non-decreasing"
                )
            last = f.ts_ms

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.duration_ms

    def encode(self) -> bytes:
        out = bytearray(
            _HEADER.pack(
                MAGIC,
                VERSION,
                self.video_id,
                self.index,
                self.start_ms,
                self.duration_ms,
                self.fps_milli,
                FLAG_FINAL if self.final else 0,
                len(self.frames),
            )
        )
        for f in self.frames:
            out += _FRAME.pack(f.pdq, f.quality, f.ts_ms - self.start_ms)
        return bytes(out)

    @classmethod
    def decode(cls, data: bytes) -> VpdqSegment:
        """Strict decode: every field checked, exact length, canonical form."""
        video_id, index, start_ms, duration_ms, fps_milli, flags, _ = check_header(data)
        frames = []
        for i, (pdq, quality, ts) in enumerate(_FRAME.iter_unpack(data[HEADER_BYTES:])):
            if quality > MAX_QUALITY:
                raise ValidationError(
                    f"vPDQ frame {i}: quality {quality}: expected 0..{MAX_QUALITY}"
                )
            frames.append(VideoFrame(pdq, quality, start_ms + ts))
        return cls(video_id, index, start_ms, duration_ms, fps_milli, bool(flags), tuple(frames))


def check_header(data: bytes) -> tuple[bytes, int, int, int, int, int, int]:
    """The header fields of an encoded segment, after checking its framing:
    magic, version, flags, frame count and exact length."""
    if len(data) < HEADER_BYTES:
        raise ValidationError(
            f"vPDQ segment is truncated: {len(data)} bytes, expected a {HEADER_BYTES}-byte header"
        )
    magic, version, video_id, index, start_ms, duration_ms, fps_milli, flags, count = (
        _HEADER.unpack_from(data)
    )
    if magic != MAGIC:
        raise ValidationError("not a vPDQ segment: bad magic")
    if version != VERSION:
        raise ValidationError(f"vPDQ segment version {version}: expected {VERSION}")
    if flags & ~FLAG_FINAL:
        raise ValidationError(f"unknown vPDQ segment flags 0x{flags:02x}")
    if not 1 <= count <= MAX_FRAMES:  # before the end check, as the messages are ordered
        raise ValidationError(f"vPDQ segment has {count} frames: expected 1..{MAX_FRAMES}")
    if start_ms + duration_ms > _U32_MAX:
        raise ValidationError(
            f"vPDQ segment ends at {start_ms + duration_ms} ms: expected at most {_U32_MAX}"
        )
    check_items(
        "vPDQ segment",
        "frames",
        "frame",
        count=count,
        cap=MAX_FRAMES,
        body=len(data) - HEADER_BYTES,
        size=FRAME_BYTES,
    )
    return video_id, index, start_ms, duration_ms, fps_milli, flags, count


def check_segment(data: bytes) -> bytes:
    """Validate an encoded segment (the hash field of a VPDQ entry)."""
    VpdqSegment.decode(data)
    return data


def split(
    frames: Sequence[VideoFrame],
    video_id: bytes,
    *,
    duration_ms: int,
    fps_milli: int,
    max_frames: int = SEGMENT_FRAMES,
    max_ms: int = SEGMENT_MS,
) -> list[VpdqSegment]:
    """Cut a whole video's frames (absolute, non-decreasing timestamps) into segments.

    A segment closes when the next frame lies ``max_ms`` or more past its
    start, or when it holds ``max_frames``; the next one starts at that
    frame's timestamp (segment 0 at 0 unless its first frame is later), so
    segments never overlap and a stretch without frames belongs to none. A
    closed segment covers up to the next one's start (at most ``max_ms``); the last covers up to the
    video's ``duration_ms`` (at least its last frame) and is ``final``. A
    live publisher makes the same segments one at a time with
    :class:`VpdqSegment` directly (``final`` on the last).
    """
    if not frames:
        raise ValidationError("a video with no hashed frames cannot be banked")
    if not 1 <= max_frames <= MAX_FRAMES:
        raise ValidationError(f"max_frames {max_frames}: expected 1..{MAX_FRAMES}")
    if not 1 <= max_ms <= MAX_SEGMENT_MS:
        raise ValidationError(f"max_ms {max_ms}: expected 1..{MAX_SEGMENT_MS}")
    first = frames[0].ts_ms
    groups: list[tuple[int, list[VideoFrame]]] = [(0 if first < max_ms else first, [])]
    for f in frames:
        start, group = groups[-1]
        if group and (f.ts_ms >= start + max_ms or len(group) >= max_frames):
            groups.append((f.ts_ms, [f]))
        else:
            group.append(f)
    out = []
    for k, (start, group) in enumerate(groups):
        last = k == len(groups) - 1
        if last:
            end = max(min(duration_ms, start + max_ms), group[-1].ts_ms)
        else:
            end = min(groups[k + 1][0], start + max_ms)
        out.append(
            VpdqSegment(
                video_id=video_id,
                index=k,
                start_ms=start,
                duration_ms=end - start,
                fps_milli=fps_milli,
                final=last,
                frames=tuple(group),
            )
        )
    return out


def reference_frames(segments: Sequence[VpdqSegment]) -> list[VideoFrame]:
    """The frames the reference vPDQ samples at one hash per second.

    The bank keeps the reference's 1/s frames (frame index a multiple of
    ``int(fps)``) hashed at full size; their index is recovered from
    ``ts_ms`` and ``fps_milli`` (``index = round(ts_ms * fps / 1000)``).
    Without a known frame rate (``fps_milli`` 0, e.g. an import) every frame
    is returned: such a signal came in at the rate it goes out.
    """
    out: list[VideoFrame] = []
    for seg in segments:
        if not seg.fps_milli:
            out.extend(seg.frames)
            continue
        step = max(1, seg.fps_milli // 1000)
        for f in seg.frames:
            index = (f.ts_ms * seg.fps_milli + 500_000) // 1_000_000
            if index % step == 0 and (not out or out[-1].ts_ms != f.ts_ms):
                out.append(f)
    return out
