"""vPDQ: PDQ hashes of video frames, decoded with PyAV (docs/video.md).

Three ways to hash a file, one decoder:

- :func:`reference_vpdq` is Meta's ``vpdq``: a frame is hashed when its index
  (counted in the order the decoder returns frames) is a multiple of
  ``int(seconds_per_hash * fps)``, fps being the stream's average rate; the
  frame is converted to RGB24 at its coded size and hashed with ``pdqhash``;
  its timestamp is ``index / fps``. Tests hold it to the reference's own
  output (tests/vectors/test_vpdq_vectors.py).
- :func:`bank_frames`, for a video being banked: the reference's 1-per-second
  frames at full size (so the 1/s export is the reference's), plus at most four
  more a second where the picture has moved, hashed downscaled and with
  uniform borders trimmed.
- :func:`query_frames`, for an upload being matched: every frame, downscaled,
  as itself, mirrored, and (when borders are found) trimmed and trimmed +
  mirrored; runs of near-identical frames are pruned.

Downscaled hashes come from a 128x128 grey image FFmpeg's area filter makes
(averaged 2x2 to PDQ's 64x64, or cropped and resampled when trimming), hashed
in batches by :func:`node.media.pdq64.pdq_64`.

Safety: a file is opened here and PyAV reads it through that file object, so
FFmpeg gets no file name, URL or ``concat:``/``subfile:``-style protocol string
to follow; only the container demuxers in :data:`CONTAINERS` may run (no
playlists, concat scripts or image sequences), and nested opens are refused by
an empty protocol whitelist. Work is capped by :class:`VideoLimits`. Every
failure is a one-line :class:`ValidationError` naming the file.

Everything here is synchronous and CPU-bound: callers run it off the event
loop (an executor or a process).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from node.core.vpdq import VideoFrame
from node.errors import ValidationError
from node.match.video import (
    VARIANT_MIRRORED,
    VARIANT_ORIGINAL,
    VARIANT_TRIMMED,
    VARIANT_TRIMMED_MIRRORED,
    QueryFrame,
)
from node.media._av import open_guarded
from node.media.image import StrPath, _bits_to_bytes, _nonempty, _one_line, _reading
from node.media.pdq64 import SIZE, pdq_64

if TYPE_CHECKING:
    from node.media.audio import LiveAudio

__all__ = [
    "CONTAINERS",
    "DEFAULT_LIMITS",
    "BankParams",
    "Borders",
    "QueryParams",
    "VideoHashes",
    "VideoLimits",
    "bank_frames",
    "query_frames",
    "reference_vpdq",
]

# The FFmpeg demuxers a video may be read with: the containers uploads come
# in. Anything else (HLS/DASH playlists, concat scripts, image sequences,
# raw streams, subtitle or "data" demuxers) is refused before it can open more.
CONTAINERS = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,flv,mpegts"
SUPPORTED = "MP4/MOV, WebM/Matroska, AVI, FLV or MPEG-TS"
# Headers of containers we support, to tell "damaged" from "not a video".
_SIGNATURES = (
    (4, b"ftyp", "MP4/MOV"),
    (4, b"moov", "MP4/MOV"),
    (4, b"mdat", "MP4/MOV"),
    (0, b"\x1a\x45\xdf\xa3", "WebM/Matroska"),
    (0, b"FLV", "FLV"),
    (8, b"AVI ", "AVI"),
)

GRID = 128  # the grey working image, in pixels a side
QUALITY_FLOOR = 50


@dataclass(frozen=True, slots=True)
class VideoLimits:
    """Caps on the work one file may cause; a file over any of them is refused.

    The defaults admit a 3-hour video of up to 4K UHD at up to 60 frames/s,
    well past what is uploaded as TVEC content, while refusing the files that
    would tie a worker up for hours or claim gigabytes (a 20,000-pixel-wide
    frame, a header claiming a year-long stream).
    """

    max_duration_s: float = 3 * 3600.0  # 3 hours (the issue: a 2-hour video can be banked)
    max_frames: int = 3 * 3600 * 60  # 648,000: 3 hours at 60 frames/s
    max_pixels: int = 3840 * 2160  # one 4K UHD frame (8.3 MP); a decoded frame is ~3 bytes/px
    max_side: int = 8192  # pixels, either dimension (the widest H.264/HEVC levels)
    max_fps: float = 240.0  # average frame rate (high-speed phone footage)
    threads: int = 1  # decoder and scaler threads per file: one core per job

    def __post_init__(self) -> None:
        for name in ("max_duration_s", "max_frames", "max_pixels", "max_side", "max_fps"):
            if not getattr(self, name) > 0:
                raise ValidationError(f"video limit {name} must be positive")
        if self.threads < 0:
            raise ValidationError("video limit threads must be >= 0 (0: FFmpeg decides)")


DEFAULT_LIMITS = VideoLimits()


@dataclass(frozen=True, slots=True)
class Borders:
    """Uniform borders found around the picture, in pixels of the coded frame."""

    top: int
    bottom: int
    left: int
    right: int


@dataclass(frozen=True, slots=True)
class VideoHashes:
    """What hashing one file gave.

    ``frames`` are in time order, ``frame_numbers[i]`` the decoder index of
    ``frames[i]``; ``duration_ms`` is ``frames_decoded / fps``.
    """

    path: str
    fps: float
    duration_ms: int
    width: int
    height: int
    frames_decoded: int
    frames: tuple[VideoFrame, ...]
    frame_numbers: tuple[int, ...]
    borders: Borders | None = None


@dataclass(frozen=True, slots=True)
class BankParams:
    """How :func:`bank_frames` picks frames (values measured in docs/video.md)."""

    extras_per_second: int = 4  # on top of the reference frame: at most 5 frames/s
    radius: int = 24  # keep an extra only if more than this many bits from the last kept frame


@dataclass(frozen=True, slots=True)
class QueryParams:
    """How :func:`query_frames` prunes (values measured in docs/video.md)."""

    prune_bits: int = 8  # drop a frame within this distance of the last one kept ...
    max_gap_ms: int = 200  # ... unless the last kept is this old: keeps still shots alignable


@dataclass(frozen=True, slots=True)
class _BorderRule:
    """Border detection (docs/video.md): a row (column) of the 128x128 grey
    image is border when its values vary by at most ``max_std`` and its mean is
    within ``max_step`` of the outermost row's; the frame's border is the run of
    such rows from the edge, and the video's the smallest over the frames of its
    first ``window_s`` seconds that are not blank, plus ``margin`` lines.
    Borders thinner than
    ``min_rows`` are ignored, and so are borders leaving less than
    ``min_content`` of either dimension."""

    max_std: float = 4.0
    max_step: float = 8.0
    min_rows: int = 3
    margin: int = 0
    min_content: float = 0.4
    window_s: float = 5.0
    window_frames: int = 300
    sample_frames: int = 20  # frames of the window looked at, evenly spaced


BORDER_RULE = _BorderRule()
_CHUNK = 256  # frames hashed per numpy batch


# ------------------------------------------------------------------ decoding


def _container_name(path: Path) -> str | None:
    with _reading(path), path.open("rb") as f:
        head = f.read(16)
    for offset, magic, name in _SIGNATURES:
        if head[offset : offset + len(magic)] == magic:
            return name
    return None


def _reason(e: BaseException) -> str:
    text = getattr(e, "strerror", None) or _one_line(e) or type(e).__name__
    return _one_line(text)


class _Video:
    """One open video stream: checks the limits, yields (index, frame)."""

    def __init__(self, path: StrPath, limits: VideoLimits, file: IO[bytes] | None = None) -> None:
        """``file``: read this stream instead of opening ``path`` (a live
        source, node/media/live.py); ``path`` then only names it in errors."""

        self.path = Path(path)
        self.limits = limits
        if file is None:
            _nonempty(self.path)
            with _reading(self.path):
                file = self.path.open("rb")
        self._file: IO[bytes] = file
        self.decoded = 0  # frames decoded so far
        self.audio: LiveAudio | None = None  # a live soundtrack decoded alongside
        self._container: Any = open_guarded(self._file, CONTAINERS.split(","), self._open_error)
        try:
            self._check()
        except BaseException:
            self.close()
            raise

    def _open_error(self) -> ValidationError:
        self._file.close()
        name = _container_name(self.path) if self.path.is_file() else None
        if name is not None:
            return ValidationError(
                f"{self.path}: cannot read this {name} file: truncated or damaged"
            )
        return ValidationError(f"{self.path}: not a video ({SUPPORTED} expected)")

    def _check(self) -> None:
        p, lim = self.path, self.limits
        streams = self._container.streams.video
        if not streams:
            raise ValidationError(f"{p}: has no video stream")
        self.stream = streams[0]
        rate = self.stream.average_rate or self.stream.guessed_rate
        if not rate or rate <= 0:
            raise ValidationError(f"{p}: video stream has no frame rate")
        self.rate = Fraction(rate)
        if self.rate > Fraction(lim.max_fps):
            raise ValidationError(
                f"{p}: frame rate {float(self.rate):g}/s is over the limit of {lim.max_fps:g}/s"
            )
        cc = self.stream.codec_context
        self.width, self.height = int(cc.width), int(cc.height)
        self._check_size(self.width, self.height)
        declared = self._declared_seconds()
        if declared is not None and declared > lim.max_duration_s:
            raise ValidationError(
                f"{p}: video lasts {declared:.0f} s: over the limit of {lim.max_duration_s:.0f} s"
            )
        cc.thread_count = lim.threads

    def _check_size(self, w: int, h: int) -> None:
        p, lim = self.path, self.limits
        if w <= 0 or h <= 0:
            raise ValidationError(f"{p}: video has no picture size ({w}x{h})")
        if max(w, h) > lim.max_side:
            raise ValidationError(
                f"{p}: video is {w}x{h}: over the limit of {lim.max_side} pixels a side"
            )
        if w * h > lim.max_pixels:
            raise ValidationError(
                f"{p}: video is {w}x{h} ({w * h} pixels a frame): "
                f"over the limit of {lim.max_pixels}"
            )

    def _declared_seconds(self) -> float | None:
        s = self.stream
        if s.duration is not None and s.time_base is not None:
            return float(s.duration * s.time_base)
        if self._container.duration is not None:
            return float(self._container.duration) / 1_000_000
        return None

    @property
    def fps(self) -> float:
        return float(self.rate)

    def ts_ms(self, index: int) -> int:
        """The reference's timestamp, index / fps, in whole milliseconds."""
        num, den = self.rate.numerator, self.rate.denominator
        return (2000 * index * den + num) // (2 * num)  # rounded half up

    def frames(self) -> Iterator[tuple[int, Any]]:
        """(index, av.VideoFrame) in the order the decoder returns them."""
        import av

        p, lim = self.path, self.limits
        max_index = min(lim.max_frames, math.floor(lim.max_duration_s * self.rate) + 1)
        tb = self.stream.time_base or Fraction(1, 1_000_000)
        max_pts = math.floor(Fraction(lim.max_duration_s) / tb)  # the limit in stream ticks
        decoding = self._decoding()
        index = 0
        while True:
            try:
                frame = next(decoding)
            except StopIteration:
                break
            except av.FFmpegError as e:
                raise ValidationError(
                    f"{p}: video data is damaged or truncated: decoding stopped after "
                    f"{index} frames ({_reason(e)})"
                ) from None
            if index >= lim.max_frames:
                raise ValidationError(
                    f"{p}: video has more than {lim.max_frames} frames: over the limit"
                )
            if index >= max_index or (frame.pts is not None and frame.pts > max_pts):
                raise ValidationError(
                    f"{p}: video runs past the limit of {lim.max_duration_s:.0f} s"
                )
            if (frame.width, frame.height) != (self.width, self.height):
                self._check_size(frame.width, frame.height)
            yield index, frame
            index += 1
            self.decoded = index
        if index == 0:
            raise ValidationError(f"{p}: video stream has no frames")
        self.frames_decoded = index

    def _decoding(self) -> Iterator[Any]:
        """The video stream's frames; with :attr:`audio` set, the audio
        stream's packets are demuxed in the same pass and handed to it (a
        live source is read once: node.media.audio.LiveAudio)."""
        audio = self.audio
        if audio is None:
            yield from self._container.decode(self.stream)
            return
        try:
            for packet in self._container.demux(self.stream, audio.stream):
                if packet.stream.index == audio.stream.index:
                    audio.decode(packet)
                else:
                    yield from packet.decode()
        finally:
            audio.finish()

    def close(self) -> None:
        with suppress(Exception):  # closing must not hide the error being raised
            self._container.close()
        self._file.close()

    def __enter__(self) -> _Video:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def hashes(
        self,
        frames: list[VideoFrame],
        numbers: list[int],
        borders: Borders | None = None,
    ) -> VideoHashes:
        return VideoHashes(
            path=str(self.path),
            fps=self.fps,
            duration_ms=self.ts_ms(self.frames_decoded),
            width=self.width,
            height=self.height,
            frames_decoded=self.frames_decoded,
            frames=tuple(frames),
            frame_numbers=tuple(numbers),
            borders=borders,
        )


def _full_pdq(frame: Any, reformatter: Any, threads: int) -> tuple[bytes, int]:
    """pdqhash of the frame as RGB24 at its coded size (the reference's input)."""
    import pdqhash

    rgb = reformatter.reformat(frame, format="rgb24", threads=threads).to_ndarray()
    bits, quality = pdqhash.compute(rgb)
    return _bits_to_bytes(bits), int(quality)


# ----------------------------------------------------------------- reference


def reference_vpdq(
    path: StrPath, seconds_per_hash: float = 1.0, limits: VideoLimits = DEFAULT_LIMITS
) -> VideoHashes:
    """Meta's vPDQ of the file: the same frames, hashes within a few bits.

    ``seconds_per_hash`` 0 hashes every frame; 1 is pytx's and HMA's default.
    """
    from av.video.reformatter import VideoReformatter

    if not seconds_per_hash >= 0:
        raise ValidationError(f"seconds_per_hash must be >= 0: got {seconds_per_hash}")
    reformatter = VideoReformatter()
    frames: list[VideoFrame] = []
    numbers: list[int] = []
    with _Video(path, limits) as video:
        step = max(1, int(seconds_per_hash * video.fps))
        for index, frame in video.frames():
            if index % step == 0:
                pdq, quality = _full_pdq(frame, reformatter, limits.threads)
                frames.append(VideoFrame(pdq, quality, video.ts_ms(index)))
                numbers.append(index)
        return video.hashes(frames, numbers)


# ------------------------------------------------------ the grey working image


class _Greys:
    """The decoded frames as small grey images, in batches.

    Frames come as ``size`` x ``size`` grey (FFmpeg's area filter): 128 (the
    border grid) until the consumer has looked at the first batch (the border
    window: the first ``window_s`` seconds, at most ``window_frames``), then
    64 if it found no borders to trim, which spares the 2x2 halving. Every
    ``full_step``-th frame also gets its full-size PDQ (the reference's).
    """

    def __init__(self, video: _Video, full_step: int | None, chunk: int = _CHUNK) -> None:
        self.video = video
        self.full_step = full_step
        self.size = GRID
        self.chunk = chunk  # frames a batch after the first (a live source: fewer)
        self.crop: Borders | None = None
        self.sides: tuple[int, int, int, int] | None = None

    def settle(self, sides: tuple[int, int, int, int] | None) -> None:
        """After the border window: 64x64 from now on, and the picture inside
        the borders (if any) cropped and scaled by FFmpeg too."""
        self.size = SIZE
        if sides is not None:
            self.crop = _borders_px(sides, self.video.width, self.video.height)

    def _crop_graph(self, frame: Any) -> Any:
        """buffer -> crop (the borders, scaled to this frame's size) -> 64x64 area -> grey."""
        import av.filter

        c = self.crop
        assert c is not None
        sx, sy = frame.width / self.video.width, frame.height / self.video.height
        left, top = round(c.left * sx), round(c.top * sy)
        w = max(1, frame.width - left - round(c.right * sx))
        h = max(1, frame.height - top - round(c.bottom * sy))
        graph = av.filter.Graph()
        graph.threads = self.video.limits.threads  # one core per job, as the decoder
        chain = [
            graph.add_buffer(template=self.video.stream)
            if (frame.width, frame.height) == (self.video.width, self.video.height)
            else graph.add_buffer(
                width=frame.width,
                height=frame.height,
                format=frame.format.name,
                time_base=self.video.stream.time_base,
            ),
            graph.add("crop", f"{w}:{h}:{left}:{top}"),
            graph.add("scale", f"w={SIZE}:h={SIZE}:flags=area"),
            graph.add("format", "gray"),
            graph.add("buffersink"),
        ]
        for a, b in itertools.pairwise(chain):
            a.link_to(b)
        graph.configure()
        return graph

    def _frames(self) -> Iterator[tuple[int, Any, Any, tuple[bytes, int] | None]]:
        from av.video.reformatter import Interpolation, VideoReformatter

        small, full = VideoReformatter(), VideoReformatter()
        threads = self.video.limits.threads
        step = self.full_step
        graph: Any = None
        size = (0, 0)
        for index, frame in self.video.frames():
            grey = small.reformat(
                frame,
                self.size,
                self.size,
                "gray",
                interpolation=Interpolation.AREA,
                threads=threads,
            ).to_ndarray()
            trimmed = None
            if self.crop is not None:
                if graph is None or size != (frame.width, frame.height):
                    graph, size = self._crop_graph(frame), (frame.width, frame.height)
                graph.push(frame)
                trimmed = graph.pull().to_ndarray()
            ref = _full_pdq(frame, full, threads) if step and index % step == 0 else None
            yield index, grey, trimmed, ref

    def chunks(
        self,
    ) -> Iterator[tuple[list[int], Any, Any, list[tuple[bytes, int] | None]]]:
        """(indices, (n, size, size) grey, (n, 64, 64) trimmed grey or None, refs);
        the first batch is the border window, later ones ``chunk`` frames."""
        video = self.video
        window_end = video.ts_ms(0) + BORDER_RULE.window_s * 1000
        indices: list[int] = []
        greys: list[Any] = []
        trims: list[Any] = []
        refs: list[tuple[bytes, int] | None] = []
        first = True
        for index, grey, trimmed, ref in self._frames():
            indices.append(index)
            greys.append(grey)
            if trimmed is not None:
                trims.append(trimmed)
            refs.append(ref)
            limit = BORDER_RULE.window_frames if first else self.chunk
            if len(indices) >= limit or (first and video.ts_ms(index) >= window_end):
                yield indices, np.stack(greys), np.stack(trims) if trims else None, refs
                indices, greys, trims, refs = [], [], [], []
                first = False
        if indices:
            yield indices, np.stack(greys), np.stack(trims) if trims else None, refs

    def batches(
        self,
    ) -> Iterator[tuple[list[int], Any, Any, list[tuple[bytes, int] | None]]]:
        """(indices, (n, 64, 64) grey, the same of the picture inside the
        borders or None, refs): borders are decided on the first batch."""
        for n, (indices, grey, cropped, refs) in enumerate(self.chunks()):
            trimmed = cropped
            if n == 0:
                self.sides = detect_borders(grey)
                trimmed = _Trim(self.sides)(grey) if self.sides else None
                self.settle(self.sides)
            yield indices, _half(grey), trimmed, refs

    def borders(self) -> Borders | None:
        if self.sides is None:
            return None
        return _borders_px(self.sides, self.video.width, self.video.height)


def _edge_run(std: Any, mean: Any, rule: _BorderRule) -> Any:
    """Per frame, how many lines from index 0 are uniform and of the edge's value."""
    flat = (std <= rule.max_std) & (np.abs(mean - mean[:, :1]) <= rule.max_step)
    run = np.argmin(flat, axis=1)
    return np.where(flat.all(axis=1), flat.shape[1], run)


def detect_borders(grey: Any, rule: _BorderRule | None = None) -> tuple[int, int, int, int] | None:
    """Uniform borders (top, bottom, left, right) of a (n, 128, 128) grey stack,
    in grid lines, or None. See :class:`_BorderRule`."""
    rule = rule or BORDER_RULE
    g = np.asarray(grey)
    g = g[:: max(1, len(g) // rule.sample_frames)].astype(np.float32)
    row_mean, row_std = g.mean(axis=2), g.std(axis=2)
    col_mean, col_std = g.mean(axis=1), g.std(axis=1)
    top = _edge_run(row_std, row_mean, rule)
    live = top < GRID  # a blank frame (fade, black) says nothing about borders
    if not live.any():
        return None
    bottom = _edge_run(row_std[:, ::-1], row_mean[:, ::-1], rule)
    left = _edge_run(col_std, col_mean, rule)
    right = _edge_run(col_std[:, ::-1], col_mean[:, ::-1], rule)
    sides = [int(s[live].min()) for s in (top, bottom, left, right)]
    sides = [s + rule.margin if s >= rule.min_rows else 0 for s in sides]
    t, b, left_, r = sides
    if not any(sides):
        return None
    if GRID - t - b < rule.min_content * GRID or GRID - left_ - r < rule.min_content * GRID:
        return None
    return t, b, left_, r


def _area_taps(n_in: int, n_out: int = SIZE) -> tuple[Any, Any]:
    """Area resampling of n_in samples to n_out as taps: for each output, the
    (up to k) inputs it covers and their weights, both (n_out, k)."""
    scale = n_in / n_out
    edges = np.arange(n_out + 1, dtype=np.float64) * scale
    first = np.floor(edges[:-1]).astype(np.int64)
    k = int(np.ceil(scale)) + 1
    idx = np.minimum(first[:, None] + np.arange(k)[None, :], n_in - 1)
    lo, hi = edges[:-1, None], edges[1:, None]
    j = (first[:, None] + np.arange(k)[None, :]).astype(np.float64)
    overlap = np.clip(np.minimum(hi, j + 1) - np.maximum(lo, j), 0, None)
    overlap[first[:, None] + np.arange(k)[None, :] >= n_in] = 0
    return idx, (overlap / scale).astype(np.float32)


@dataclass(slots=True)
class _Trim:
    """Crop + area resample of the 128 grid to PDQ's 64x64, for fixed borders.

    Each output pixel covers two or three grid lines a side, so the resample is
    a few weighted gathers per axis rather than a dense matrix product."""

    sides: tuple[int, int, int, int]
    rows: tuple[Any, Any] = field(init=False)
    cols: tuple[Any, Any] = field(init=False)

    def __post_init__(self) -> None:
        t, b, left, r = self.sides
        self.rows = _area_taps(GRID - t - b)
        self.cols = _area_taps(GRID - left - r)

    def __call__(self, grey: Any) -> Any:
        """(n, 128, 128) grey -> (n, 64, 64) uint8 of the picture inside the borders."""
        t, b, left, r = self.sides
        crop = grey[:, t : GRID - b, left : GRID - r]
        idx, wts = self.rows
        rows = sum(crop[:, idx[:, k], :] * wts[:, k, None] for k in range(idx.shape[1]))
        idx, wts = self.cols
        out = sum(rows[:, :, idx[:, k]] * wts[:, k] for k in range(idx.shape[1]))
        out += np.float32(0.5)
        return out.astype(np.uint8)


def _half(grey: Any) -> Any:
    """128x128 -> 64x64 by 2x2 means, rounded, as uint8 (64x64 passes through)."""
    if grey.shape[1] == SIZE:
        return grey
    rows = np.add(grey[:, 0::2, :], grey[:, 1::2, :], dtype=np.uint16)
    s = rows[:, :, 0::2] + rows[:, :, 1::2]
    s += 2
    s >>= 2
    return s.astype(np.uint8)


def _borders_px(sides: tuple[int, int, int, int], width: int, height: int) -> Borders:
    t, b, left, r = sides
    return Borders(
        top=round(t * height / GRID),
        bottom=round(b * height / GRID),
        left=round(left * width / GRID),
        right=round(r * width / GRID),
    )


def _hamming(a: bytes, b: bytes) -> int:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).bit_count()


# ----------------------------------------------------------------------- bank


def bank_frames(
    path: StrPath,
    limits: VideoLimits = DEFAULT_LIMITS,
    params: BankParams = BankParams(),
) -> VideoHashes:
    """The frames to bank for a video: at most 1 + ``extras_per_second`` a second.

    Every ``int(fps)``-th frame (the reference's 1/s frame) is kept with its
    full-size hash. Each second is cut into ``extras_per_second + 1`` equal
    slots of frames; in each slot after the first, the first frame of quality
    >= 50 whose downscaled (and border-trimmed) hash is more than ``radius``
    bits from the last kept frame's is kept too: still footage costs one
    frame a second, moving footage up to five.
    """
    with _Video(path, limits) as video:
        greys = _Greys(video, max(1, int(video.fps)))
        kept = list(_bank(greys, params))
        return video.hashes([f for _, f in kept], [i for i, _ in kept], greys.borders())


def _bank(greys: _Greys, params: BankParams) -> Iterator[tuple[int, VideoFrame]]:
    """:func:`bank_frames`' choice as it decodes: (decoder index, frame)."""
    video = greys.video
    slots = params.extras_per_second + 1
    step = max(1, int(video.fps))
    last = b""
    last_slot = (-1, -1)
    for indices, grey, trimmed, refs in greys.batches():
        small, quality, _ = pdq_64(trimmed if trimmed is not None else grey)
        for i, index in enumerate(indices):
            h = small[i].tobytes()
            second, phase = divmod(index, step)
            ref = refs[i]
            if ref is not None:
                yield index, VideoFrame(ref[0], ref[1], video.ts_ms(index))
                last, last_slot = h, (second, 0)
                continue
            slot = (second, phase * slots // step)
            if slot == last_slot or slot[1] == 0 or int(quality[i]) < QUALITY_FLOOR:
                continue
            if _hamming(h, last) > params.radius:
                yield index, VideoFrame(h, int(quality[i]), video.ts_ms(index))
                last, last_slot = h, slot


# ---------------------------------------------------------------------- query


def query_frames(
    path: StrPath,
    limits: VideoLimits = DEFAULT_LIMITS,
    params: QueryParams = QueryParams(),
) -> tuple[VideoHashes, tuple[QueryFrame, ...]]:
    """Every frame of an upload, downscaled and hashed, as query frames.

    Each kept frame gives variants original and mirrored, plus trimmed and
    trimmed + mirrored when the video has uniform borders. A frame whose
    original hash is within ``prune_bits`` of the last kept frame's is dropped
    (with its variants) unless it came ``max_gap_ms`` or more after it: a still
    shot costs five frames a second, not thirty, and every banked frame still
    has a query frame within ``max_gap_ms`` to align with.
    The :class:`VideoHashes` holds the kept frames' original hashes.
    """
    frames: list[VideoFrame] = []
    numbers: list[int] = []
    out: list[QueryFrame] = []
    with _Video(path, limits) as video:
        greys = _Greys(video, None)
        for index, frame, variants in _query(greys, params):
            frames.append(frame)
            numbers.append(index)
            out.extend(variants)
        return video.hashes(frames, numbers, greys.borders()), tuple(out)


def _query(
    greys: _Greys, params: QueryParams
) -> Iterator[tuple[int, VideoFrame, list[QueryFrame]]]:
    """:func:`query_frames`' frames as it decodes: (decoder index, the kept
    frame, its query variants)."""
    video = greys.video
    last: int | None = None
    last_ts = 0
    for indices, grey, trimmed, _ in greys.batches():
        h, q, m = pdq_64(grey, mirror=True)
        th = tq = tm = None
        if trimmed is not None:
            th, tq, tm = pdq_64(trimmed, mirror=True)
        hb, mb = h.tobytes(), m.tobytes()
        tb, tmb = (th.tobytes(), tm.tobytes()) if th is not None and tm is not None else (b"", b"")
        for i, index in enumerate(indices):
            pdq = hb[32 * i : 32 * i + 32]
            value = int.from_bytes(pdq, "big")
            ts = video.ts_ms(index)
            if (
                last is not None
                and (value ^ last).bit_count() <= params.prune_bits
                and ts - last_ts < params.max_gap_ms
            ):
                continue
            last, last_ts = value, ts
            quality = int(q[i])
            variants = [
                QueryFrame(pdq, quality, ts, VARIANT_ORIGINAL),
                QueryFrame(mb[32 * i : 32 * i + 32], quality, ts, VARIANT_MIRRORED),
            ]
            if tq is not None:
                tquality = int(tq[i])
                t_pdq, tm_pdq = tb[32 * i : 32 * i + 32], tmb[32 * i : 32 * i + 32]
                variants.append(QueryFrame(t_pdq, tquality, ts, VARIANT_TRIMMED))
                variants.append(QueryFrame(tm_pdq, tquality, ts, VARIANT_TRIMMED_MIRRORED))
            yield index, VideoFrame(pdq, quality, ts), variants


class _Live:
    """A growing source (node/media/live.py) decoded as it grows, in batches
    of ``chunk_s`` of stream time after the border window;
    ``duration_ms`` is the stream time decoded so far. With ``audio``, the
    source's best audio stream (if it has one) is decoded in the same pass
    and fingerprinted as it comes: :attr:`audio` (None without one)."""

    def __init__(
        self,
        file: IO[bytes],
        name: str,
        limits: VideoLimits = DEFAULT_LIMITS,
        chunk_s: float = 0.5,
        *,
        audio: bool = False,
    ) -> None:
        from node.media.audio import LiveAudio

        self.video = _Video(name, limits, file)
        self.fps = self.video.fps
        self.chunk = max(1, round(chunk_s * self.fps))
        track = self.video._container.streams.best("audio") if audio else None
        if track is not None:
            self.video.audio = LiveAudio(track, name, limits.max_duration_s)

    @property
    def audio(self) -> LiveAudio | None:
        return self.video.audio

    @property
    def duration_ms(self) -> int:
        return self.video.ts_ms(self.video.decoded)


class LiveBank(_Live):
    """:func:`bank_frames` over a growing source (``submit --live``)."""

    params = BankParams()

    def frames(self) -> Iterator[VideoFrame]:
        with self.video:
            greys = _Greys(self.video, max(1, int(self.fps)), self.chunk)
            for _, frame in _bank(greys, self.params):
                yield frame


class LiveQuery(_Live):
    """:func:`query_frames` over a growing source (``ccnode watch``): each
    kept frame's query variants as the stream is decoded."""

    params = QueryParams()

    def frames(self) -> Iterator[list[QueryFrame]]:
        with self.video:
            for _, _, variants in _query(_Greys(self.video, None, self.chunk), self.params):
                yield variants
