"""Chromaprint-compatible audio fingerprints, in numpy.

The default algorithm of Chromaprint (``CHROMAPRINT_ALGORITHM_TEST2``, the
one behind ``fpcalc`` and AcoustID), written here from its published
description and constants (docs/audio.md lists them and their sources; no
Chromaprint code is used or copied):

1. decode the best audio stream with PyAV and convert it with libswresample
   to 16-bit mono at 11025 Hz, with the options ``fpcalc`` gives it
   (filter size 16, phase shift 8, linear interpolation, cutoff 0.8,
   16-bit internal format);
2. frames of 4096 samples every 1365 (an overlap of 4096 - 4096 // 3),
   a Hamming window scaled by 1/32767, the power spectrum;
3. chroma: the energy of each FFT bin from 28 Hz to 3520 Hz added to one of
   12 pitch classes (octaves folded, base 440/16 Hz);
4. a 5-tap filter over time (0.25, 0.75, 1, 0.75, 0.25), then each
   12-value row scaled to unit Euclidean norm (rows with norm < 0.01 become
   zero);
5. 16 classifiers, each a Haar-like filter over a window of up to 16 rows
   of that image (sums from its integral image, compared as
   ``log(1 + a) - log(1 + b)``) quantized by three thresholds into 0..3 and
   Gray-coded into 2 bits: 32 bits per sub-fingerprint, one per row, about
   8.08 per second.

Against ``fpcalc -raw`` (Chromaprint 1.5.1) on the project's vectors this
gives identical sub-fingerprints (tests/vectors/test_chromaprint_vectors.py).

Files are read through a Python file object, so FFmpeg sees the file's own
bytes and nothing else (no URLs, no protocols), and only the demuxers in
:data:`CONTAINER_FORMATS` may open it (no playlists, concat lists or image
sequences that would make FFmpeg open other files). Every failure is a
``ValidationError`` with one line naming the file.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from node.errors import ValidationError
from node.media._av import open_guarded
from node.media.image import StrPath, _nonempty, _reading

if TYPE_CHECKING:
    import av
    import av.audio.stream
    import av.container
    import av.filter

__all__ = [
    "CLASSIFIERS",
    "CONTAINER_FORMATS",
    "FRAME_SIZE",
    "FRAME_STEP",
    "MIN_SAMPLES",
    "SAMPLE_RATE",
    "AudioFingerprint",
    "AudioLimits",
    "Classifier",
    "StreamFingerprint",
    "chroma_image",
    "fingerprint_file",
    "fingerprint_pcm",
    "subfingerprints",
]

# --------------------------------------------------------------- constants

SAMPLE_RATE = 11025  # Hz, mono
FRAME_SIZE = 4096  # samples per FFT frame
FRAME_STEP = FRAME_SIZE // 3  # 1365: Chromaprint's overlap is 4096 - 4096 // 3
MIN_FREQ_HZ = 28
MAX_FREQ_HZ = 3520
CHROMA_BANDS = 12
CHROMA_BASE_HZ = 440.0 / 16.0  # pitch class 0 starts at A0 (27.5 Hz)
CHROMA_FILTER = (0.25, 0.75, 1.0, 0.75, 0.25)
NORM_FLOOR = 0.01  # a filtered chroma row with a smaller norm becomes all zeros
GRAY_CODE = (0, 1, 3, 2)
ITEM_SECONDS = FRAME_STEP / SAMPLE_RATE  # time between sub-fingerprints (0.1238 s)

# A frame whose RMS is below this (-60 dBFS of 16-bit full scale) is silent
# here; a file with no frame above it is refused as "silence only".
SILENCE_RMS = 32767 * 10 ** (-60 / 20)

# libswresample options as fpcalc sets them (its "compatible mode"), so the
# 11025 Hz samples are the ones fpcalc feeds to Chromaprint.
RESAMPLER_OPTIONS = (
    f"{SAMPLE_RATE}:resampler=swr:filter_size=16:phase_shift=8:linear_interp=1"
    ":internal_sample_fmt=s16p:cutoff=0.8"
)

# Demuxers allowed to open a file (FFmpeg's names): containers that carry
# their own media. Playlists (hls, dash), concat lists, image sequences and
# the like are absent because they make FFmpeg open other files or URLs.
CONTAINER_FORMATS = (
    "mov",  # mp4, m4a, mov, 3gp (external data references off: node.media._av)
    "matroska",  # mkv, webm
    "mp3",
    "aac",
    "wav",
    "flac",
    "ogg",
    "avi",
    "flv",
    "mpegts",
    "asf",
    "aiff",
)


@dataclass(frozen=True, slots=True)
class Classifier:
    """One of the 16 classifiers: a filter over the chroma image and the
    thresholds that quantize its output.

    ``kind`` is the filter shape (0: the whole window; 1: upper half of the
    bands against the lower; 2: later half of the frames against the earlier;
    3: diagonal quarters; 4: the middle third of the bands against the outer
    thirds; 5: the middle third of the frames against the outer thirds).
    The window covers bands ``band .. band + bands - 1`` and ``frames``
    consecutive rows from the sub-fingerprint's own row.
    """

    kind: int
    band: int
    bands: int
    frames: int
    t0: float
    t1: float
    t2: float

    def rects(self) -> tuple[list[tuple[int, int, int, int]], list[tuple[int, int, int, int]]]:
        """The rectangles (row0, row1, band0, band1; ends exclusive) summed
        into the filter's two sides, ``a`` and ``b``."""
        y, h, w = self.band, self.bands, self.frames
        if self.kind == 0:
            return [(0, w, y, y + h)], []
        if self.kind == 1:
            h2 = h // 2
            return [(0, w, y + h2, y + h)], [(0, w, y, y + h2)]
        if self.kind == 2:
            w2 = w // 2
            return [(w2, w, y, y + h)], [(0, w2, y, y + h)]
        if self.kind == 3:
            w2, h2 = w // 2, h // 2
            return (
                [(0, w2, y + h2, y + h), (w2, w, y, y + h2)],
                [(0, w2, y, y + h2), (w2, w, y + h2, y + h)],
            )
        if self.kind == 4:
            h3 = h // 3
            return [(0, w, y + h3, y + 2 * h3)], [(0, w, y, y + h3), (0, w, y + 2 * h3, y + h)]
        if self.kind == 5:
            w3 = w // 3
            return [(w3, 2 * w3, y, y + h)], [(0, w3, y, y + h), (2 * w3, w, y, y + h)]
        raise ValueError(f"filter kind must be 0..5: got {self.kind}")


# The default configuration's classifiers, in bit order (the first gives the
# two most significant bits): Chromaprint's published constants.
CLASSIFIERS = (
    Classifier(0, 4, 3, 15, 1.98215, 2.35817, 2.63523),
    Classifier(4, 4, 6, 15, -1.03809, -0.651211, -0.282167),
    Classifier(1, 0, 4, 16, -0.298702, 0.119262, 0.558497),
    Classifier(3, 8, 2, 12, -0.105439, 0.0153946, 0.135898),
    Classifier(3, 4, 4, 8, -0.142891, 0.0258736, 0.200632),
    Classifier(4, 0, 3, 5, -0.826319, -0.590612, -0.368214),
    Classifier(1, 2, 2, 9, -0.557409, -0.233035, 0.0534525),
    Classifier(2, 7, 3, 4, -0.0646826, 0.00620476, 0.0784847),
    Classifier(2, 6, 2, 16, -0.192387, -0.029699, 0.215855),
    Classifier(2, 1, 3, 2, -0.0397818, -0.00568076, 0.0292026),
    Classifier(5, 10, 1, 15, -0.53823, -0.369934, -0.190235),
    Classifier(3, 6, 2, 10, -0.124877, 0.0296483, 0.139239),
    Classifier(2, 1, 1, 14, -0.101475, 0.0225617, 0.231971),
    Classifier(3, 5, 6, 4, -0.0799915, -0.00729616, 0.063262),
    Classifier(1, 9, 2, 12, -0.272556, 0.019424, 0.302559),
    Classifier(3, 4, 2, 14, -0.164292, -0.0321188, 0.0846339),
)
WINDOW_ROWS = max(c.frames for c in CLASSIFIERS)  # 16

# The shortest audio that gives one sub-fingerprint: the chroma filter and
# the classifiers' window together need 5 - 1 + 16 = 20 frames (2.72 s).
MIN_SAMPLES = FRAME_SIZE + (len(CHROMA_FILTER) - 1 + WINDOW_ROWS - 1) * FRAME_STEP

_BLOCK_FRAMES = 256  # frames per FFT batch: bounds memory (8 MiB) whatever the length


@dataclass(frozen=True, slots=True)
class AudioLimits:
    """Bounds on what one file may cost.

    ``max_duration_s`` (default 2 hours) refuses longer audio rather than
    fingerprinting a prefix: at this module's speed (docs/benchmarks.md) two
    hours is under a minute of one core, and a silently truncated
    fingerprint would miss what comes later. The stream's declared duration
    is checked before decoding and the decoded samples while decoding, so a
    file that lies about its length costs no more.
    """

    max_duration_s: float = 7200.0

    def __post_init__(self) -> None:
        if not self.max_duration_s > 0:
            raise ValidationError(f"max_duration_s must be > 0: got {self.max_duration_s}")


@dataclass(frozen=True, slots=True)
class AudioFingerprint:
    """A file's fingerprint: unsigned 32-bit sub-fingerprints, one every
    :data:`ITEM_SECONDS` (sub-fingerprint ``i`` starts at ``i * 1365``
    samples of the 11025 Hz audio), as ``fpcalc -raw`` prints them."""

    values: tuple[int, ...] = field(repr=False)
    duration_s: float  # decoded audio at 11025 Hz
    silent_fraction: float  # frames below -60 dBFS RMS
    codec: str = ""
    source_rate: int = 0
    source_channels: int = 0

    def array(self) -> npt.NDArray[np.uint32]:
        return np.array(self.values, dtype=np.uint32)

    def json(self) -> dict[str, Any]:
        return {
            "algorithm": "chromaprint",
            "duration_s": round(self.duration_s, 3),
            "item_seconds": ITEM_SECONDS,
            "silent_fraction": round(self.silent_fraction, 4),
            "codec": self.codec,
            "source_rate": self.source_rate,
            "source_channels": self.source_channels,
            "fingerprint": list(self.values),
        }


# ------------------------------------------------------------ pure numpy


def _hamming_window() -> npt.NDArray[np.float64]:
    n = np.arange(FRAME_SIZE)
    window: npt.NDArray[np.float64] = (
        0.54 - 0.46 * np.cos(2.0 * np.pi * n / (FRAME_SIZE - 1))
    ) / 32767.0
    return window


def _chroma_bins() -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The FFT bins that feed the chroma, grouped by pitch class (in bin
    order within each), and where each class's group starts."""
    lo = max(1, round(FRAME_SIZE * MIN_FREQ_HZ / SAMPLE_RATE))
    hi = min(FRAME_SIZE // 2, round(FRAME_SIZE * MAX_FREQ_HZ / SAMPLE_RATE))
    bins = np.arange(lo, hi)
    octave = np.log2(bins * SAMPLE_RATE / FRAME_SIZE / CHROMA_BASE_HZ)
    note = (CHROMA_BANDS * (octave - np.floor(octave))).astype(np.int64)
    order = np.argsort(note, kind="stable")
    starts = np.searchsorted(note[order], np.arange(CHROMA_BANDS))
    return bins[order], starts


def _chroma(power: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """(frames, bins) power -> (frames, 12) chroma energies. Each class's
    bins are summed within the row by one reduction (not a matrix product,
    whose rounding depends on how many rows it is given), so a frame's
    chroma is the same bits whether it is computed alone or in a batch: a
    stream fingerprinted piece by piece equals the whole file's."""
    summed: npt.NDArray[np.float64] = np.add.reduceat(power[:, _BINS], _STARTS, axis=1)
    return summed


_WINDOW = _hamming_window()
_BINS, _STARTS = _chroma_bins()


class _Framer:
    """Streams 16-bit samples into per-frame chroma energies and RMS levels,
    holding at most one batch of frames in memory."""

    def __init__(self) -> None:
        self._pending: list[npt.NDArray[np.int16]] = []
        self._pending_len = 0
        self.samples = 0
        self.chroma: list[npt.NDArray[np.float64]] = []
        self.rms: list[npt.NDArray[np.float64]] = []

    def feed(self, pcm: npt.NDArray[np.int16]) -> None:
        self._pending.append(pcm)
        self._pending_len += len(pcm)
        self.samples += len(pcm)
        if self._pending_len >= FRAME_SIZE + _BLOCK_FRAMES * FRAME_STEP:
            self._run(final=False)

    def finish(self) -> None:
        self._run(final=True)

    def drain(self) -> None:
        """Every complete frame now (a live stream cannot wait for a batch)."""
        if self._pending_len >= FRAME_SIZE:
            self._run(final=True)

    def _run(self, *, final: bool) -> None:
        if not self._pending:
            return
        buf = np.concatenate(self._pending) if len(self._pending) > 1 else self._pending[0]
        n = (len(buf) - FRAME_SIZE) // FRAME_STEP + 1 if len(buf) >= FRAME_SIZE else 0
        if not final:
            n = min(n, _BLOCK_FRAMES)
        for start in range(0, n, _BLOCK_FRAMES):
            count = min(_BLOCK_FRAMES, n - start)
            frames = np.lib.stride_tricks.sliding_window_view(
                buf[start * FRAME_STEP : (start + count - 1) * FRAME_STEP + FRAME_SIZE],
                FRAME_SIZE,
            )[::FRAME_STEP].astype(np.float64)
            self.rms.append(np.sqrt(np.mean(frames * frames, axis=1)))
            power = np.abs(np.fft.rfft(frames * _WINDOW, axis=1)) ** 2
            self.chroma.append(_chroma(power))
        rest = buf[n * FRAME_STEP :]
        self._pending = [rest] if len(rest) else []
        self._pending_len = len(rest)


def chroma_image(chroma: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Per-frame chroma energies (n, 12) -> the filtered, normalised image
    (n - 4, 12) that the classifiers read."""
    taps = len(CHROMA_FILTER)
    rows = len(chroma) - taps + 1
    if rows <= 0:
        return np.zeros((0, CHROMA_BANDS))
    smooth = sum(k * chroma[j : j + rows] for j, k in enumerate(CHROMA_FILTER))
    assert isinstance(smooth, np.ndarray)
    norm = np.sqrt(np.sum(smooth * smooth, axis=1))
    keep = norm >= NORM_FLOOR
    image: npt.NDArray[np.float64] = np.where(
        keep[:, None], smooth / np.where(keep, norm, 1.0)[:, None], 0.0
    )
    return image


def subfingerprints(image: npt.NDArray[np.float64]) -> npt.NDArray[np.uint32]:
    """The 32-bit sub-fingerprints of a chroma image: one per row that has
    :data:`WINDOW_ROWS` rows from it on (none for a shorter image)."""
    count = len(image) - WINDOW_ROWS + 1
    if count <= 0:
        return np.zeros(0, dtype=np.uint32)
    integral = np.zeros((len(image) + 1, CHROMA_BANDS + 1))
    integral[1:, 1:] = image.cumsum(axis=0).cumsum(axis=1)
    return _classify(integral, count)


def _classify(integral: npt.NDArray[np.float64], count: int) -> npt.NDArray[np.uint32]:
    """``count`` sub-fingerprints from an integral image whose row ``k``
    holds the sums of the image rows before the ``k``-th sub-fingerprint's
    (zero column first)."""
    at = np.arange(count)

    def side(rects: list[tuple[int, int, int, int]]) -> npt.NDArray[np.float64]:
        total = np.zeros(count)
        for r0, r1, b0, b1 in rects:
            if r1 > r0 and b1 > b0:
                total += (
                    integral[at + r1, b1]
                    - integral[at + r0, b1]
                    - integral[at + r1, b0]
                    + integral[at + r0, b0]
                )
        return total

    gray = np.array(GRAY_CODE, dtype=np.uint32)
    bits = np.zeros(count, dtype=np.uint32)
    for c in CLASSIFIERS:
        a, b = c.rects()
        value = np.log1p(side(a)) - np.log1p(side(b))
        level = (value >= c.t0).astype(np.int64) + (value >= c.t1) + (value >= c.t2)
        bits = (bits << np.uint32(2)) | gray[level]
    return bits


class StreamFingerprint:
    """Sub-fingerprints of 16-bit mono 11025 Hz samples fed piece by piece
    (a live stream's soundtrack), each given out as soon as the audio its
    window covers is in: the newest starts 2.72 s before the newest sample.

    Equal, value for value, to :func:`fingerprint_pcm` of all the samples at
    once however they are cut (tested): a frame's chroma does not depend on
    the frames computed with it (:func:`_chroma`), the 5-tap filter and the
    normalisation are per row, and the integral image is continued from its
    last row with the same running sums the whole image would have (a
    cumulative sum is a sequence of additions, so starting it from the
    previous total gives the same bits). Memory stays bounded: what is kept
    is the 4 chroma rows the next filtered row needs, the 16 integral rows
    the next sub-fingerprint needs, and one RMS value per frame.
    """

    def __init__(self) -> None:
        self._framer = _Framer()
        self._raw = np.zeros((0, CHROMA_BANDS))  # chroma rows not yet filtered
        self._sums = np.zeros(CHROMA_BANDS)  # column sums of every image row so far
        # integral rows from the next sub-fingerprint's on (row 0: the rows before it)
        self._integral = np.zeros((1, CHROMA_BANDS + 1))
        self.items = 0  # sub-fingerprints given out

    @property
    def samples(self) -> int:
        return self._framer.samples

    @property
    def silent_frames(self) -> tuple[int, int]:
        """(silent frames, frames) so far (RMS below -60 dBFS)."""
        rms = np.concatenate(self._framer.rms) if self._framer.rms else np.zeros(0)
        return int((rms < SILENCE_RMS).sum()), len(rms)

    def feed(self, pcm: npt.NDArray[np.int16]) -> npt.NDArray[np.uint32]:
        """Take samples; the sub-fingerprints they complete (often none)."""
        self._framer.feed(np.asarray(pcm, dtype=np.int16))
        self._framer.drain()
        return self._take()

    def finish(self) -> npt.NDArray[np.uint32]:
        """The end of the audio: the last sub-fingerprints."""
        self._framer.finish()
        return self._take()

    def _take(self) -> npt.NDArray[np.uint32]:
        chroma, self._framer.chroma = self._framer.chroma, []
        raw = np.concatenate([self._raw, *chroma]) if chroma else self._raw
        image = chroma_image(raw)
        self._raw = raw[len(image) :]
        if len(image):
            sums = np.cumsum(np.concatenate([self._sums[None, :], image]), axis=0)[1:]
            self._sums = sums[-1]
            rows = np.zeros((len(image), CHROMA_BANDS + 1))
            rows[:, 1:] = sums.cumsum(axis=1)
            self._integral = np.concatenate([self._integral, rows])
        count = len(self._integral) - WINDOW_ROWS
        if count <= 0:
            return np.zeros(0, dtype=np.uint32)
        values = _classify(self._integral, count)
        self._integral = self._integral[count:]
        self.items += count
        return values


def fingerprint_pcm(pcm: npt.NDArray[np.int16]) -> npt.NDArray[np.uint32]:
    """Sub-fingerprints of 16-bit mono samples at 11025 Hz (no checks)."""
    framer = _Framer()
    framer.feed(np.asarray(pcm, dtype=np.int16))
    framer.finish()
    if not framer.chroma:
        return np.zeros(0, dtype=np.uint32)
    return subfingerprints(chroma_image(np.concatenate(framer.chroma)))


# ---------------------------------------------------------------- decoding


def _open(path: Path, f: Any) -> av.container.InputContainer:
    container: av.container.InputContainer = open_guarded(
        f,
        CONTAINER_FORMATS,
        lambda: ValidationError(f"{path}: not an audio or video file in a supported format"),
    )
    return container


def _audio_stream(container: av.container.InputContainer) -> av.audio.stream.AudioStream | None:
    import av.audio.stream

    stream = container.streams.best("audio")
    return stream if isinstance(stream, av.audio.stream.AudioStream) else None


class _Converter:
    """libswresample (an ``aresample`` filter) to 16-bit mono 11025 Hz, with
    fpcalc's options. The filter graph is built from the decoded frames, not
    from the stream's header (which can disagree, e.g. implicit HE-AAC), and
    rebuilt when a stream changes rate or channels midway (concatenated MP3s
    do): the old graph is flushed first, so no audio is lost."""

    def __init__(self) -> None:
        self._graph: av.filter.Graph | None = None
        self._params: tuple[str, int, str] | None = None

    def push(self, frame: av.AudioFrame) -> Iterator[npt.NDArray[np.int16]]:
        import av.filter

        params = (frame.format.name, frame.sample_rate, frame.layout.name)
        if params != self._params:
            yield from self.flush()
            graph = av.filter.Graph()
            chain = [
                graph.add_abuffer(
                    format=params[0],
                    sample_rate=params[1],
                    layout=params[2],
                    time_base=frame.time_base,
                ),
                graph.add("aresample", RESAMPLER_OPTIONS),
                graph.add("aformat", "sample_fmts=s16:channel_layouts=mono"),
                graph.add("abuffersink"),
            ]
            for a, b in itertools.pairwise(chain):
                a.link_to(b)
            graph.configure()
            self._graph, self._params = graph, params
        assert self._graph is not None
        self._graph.push(frame)
        yield from self._drain()

    def flush(self) -> Iterator[npt.NDArray[np.int16]]:
        if self._graph is not None:
            self._graph.push(None)
            yield from self._drain()
            self._graph = self._params = None

    def _drain(self) -> Iterator[npt.NDArray[np.int16]]:
        import av

        assert self._graph is not None
        while True:
            try:
                out = self._graph.pull()
            except (av.BlockingIOError, av.EOFError):
                return
            assert isinstance(out, av.AudioFrame)
            yield out.to_ndarray().reshape(-1).astype(np.int16, copy=False)


def _decoded(
    path: Path, container: av.container.InputContainer, limits: AudioLimits
) -> Iterator[npt.NDArray[np.int16]]:
    """The best audio stream as 16-bit mono 11025 Hz pieces, as fpcalc converts it."""
    import av

    stream = _audio_stream(container)
    if stream is None:
        raise ValidationError(f"{path}: no audio stream")
    declared = (
        float(stream.duration * stream.time_base)
        if stream.duration is not None and stream.time_base is not None
        else (container.duration / 1e6 if container.duration is not None else 0.0)
    )
    too_long = f"{path}: audio is longer than the {limits.max_duration_s:g} s limit"
    if declared > limits.max_duration_s:
        raise ValidationError(too_long)
    max_samples = math.ceil(limits.max_duration_s * SAMPLE_RATE)
    produced = 0
    converter = _Converter()

    def counted(pieces: Iterator[npt.NDArray[np.int16]]) -> Iterator[npt.NDArray[np.int16]]:
        nonlocal produced
        for pcm in pieces:
            produced += len(pcm)
            if produced > max_samples:
                raise ValidationError(too_long)
            yield pcm

    at = 0.0
    try:
        for packet in container.demux(stream):
            if packet.pts is not None and packet.time_base is not None:
                at = float(packet.pts * packet.time_base)
            for frame in packet.decode():
                assert isinstance(frame, av.AudioFrame)
                yield from counted(converter.push(frame))
        yield from counted(converter.flush())
    except (av.error.FFmpegError, ValueError):
        # ValueError: PyAV refusing a frame it cannot describe (no layout)
        raise ValidationError(
            f"{path}: corrupt audio stream (decoding failed at {at:.1f} s)"
        ) from None


def fingerprint_file(path: StrPath, limits: AudioLimits = AudioLimits()) -> AudioFingerprint:
    """The Chromaprint fingerprint of the best audio stream in ``path`` (an
    audio file or a video's soundtrack)."""
    p = Path(path)
    _nonempty(p)
    framer = _Framer()
    with _reading(p), p.open("rb") as f:
        container = _open(p, f)
        with container:
            for pcm in _decoded(p, container, limits):
                framer.feed(pcm)
            stream = _audio_stream(container)
            assert stream is not None
            codec = stream.codec_context.name
            rate = int(stream.rate or 0)
            channels = int(stream.channels or 0)
    seconds = framer.samples / SAMPLE_RATE
    if framer.samples < MIN_SAMPLES:
        raise ValidationError(
            f"{p}: audio is too short to fingerprint: {seconds:.2f} s, "
            f"need at least {MIN_SAMPLES / SAMPLE_RATE:.2f} s"
        )
    framer.finish()
    rms = np.concatenate(framer.rms)
    silent = rms < SILENCE_RMS
    if silent.all():
        raise ValidationError(f"{p}: audio is silence only (no frame above -60 dBFS)")
    values = subfingerprints(chroma_image(np.concatenate(framer.chroma)))
    return AudioFingerprint(
        values=tuple(int(v) for v in values),
        duration_s=seconds,
        silent_fraction=float(silent.mean()),
        codec=codec,
        source_rate=rate,
        source_channels=channels,
    )


#: Samples a live soundtrack gathers before they are fingerprinted (4 frame
#: steps, 0.495 s at 11025 Hz): LiveAudio.
LIVE_BATCH = 4 * FRAME_STEP


class LiveAudio:
    """A live stream's soundtrack, decoded beside its picture (``submit
    --live``, ``ccnode watch``; docs/live.md): the video decoder hands over
    the audio stream's packets (:meth:`decode`), and :meth:`take` gives the
    sub-fingerprints completed since the last call. Converted exactly as
    :func:`fingerprint_file` converts (fpcalc's libswresample options), and
    fingerprinted by :class:`StreamFingerprint`, so the values equal the
    whole file's.

    Samples are fingerprinted in batches of :data:`LIVE_BATCH` (half a
    second: per packet, the fixed cost of each small computation would
    make it 2.5 times slower), so a value can come up to that much later.

    A damaged audio stream never stops the picture: decoding ends there,
    :attr:`error` says where, and what was fingerprinted stays. Past
    ``max_duration_s`` of audio nothing more is decoded (the video decoder
    has the same limit and ends the stream).
    """

    def __init__(self, stream: Any, name: str, max_duration_s: float) -> None:
        self.stream = stream
        self.name = name
        self.codec = stream.codec_context.name
        self.fingerprint = StreamFingerprint()
        self.error: str | None = None
        self.finished = False
        self._converter = _Converter()
        self._ready: list[npt.NDArray[np.uint32]] = []
        self._batch: list[npt.NDArray[np.int16]] = []
        self._batched = 0  # samples in _batch
        self._taken = 0  # samples decoded (the fingerprint's and the batch's)
        self._max_samples = math.ceil(max_duration_s * SAMPLE_RATE)
        self._at = 0.0

    def decode(self, packet: Any) -> None:
        """One demuxed packet of the audio stream (an empty one flushes)."""
        import av

        if self.error is not None or self.finished:
            return
        if packet.pts is not None and packet.time_base is not None:
            self._at = float(packet.pts * packet.time_base)
        try:
            for frame in packet.decode():
                assert isinstance(frame, av.AudioFrame)
                self._feed(self._converter.push(frame))
        except (av.error.FFmpegError, ValueError):
            self._fail(f"corrupt audio stream (decoding failed at {self._at:.1f} s)")

    def finish(self) -> None:
        """The stream's end (or the picture's damage): the last values."""
        import av

        if self.finished:
            return
        self.finished = True
        # a converter that fails to flush loses what it held; the rest stays
        with contextlib.suppress(av.error.FFmpegError, ValueError):
            self._feed(self._converter.flush())
        self._run()
        self._ready.append(self.fingerprint.finish())

    def take(self) -> npt.NDArray[np.uint32]:
        """The sub-fingerprints completed since the last call, in order."""
        ready, self._ready = self._ready, []
        return np.concatenate(ready) if ready else np.zeros(0, dtype=np.uint32)

    def _feed(self, pieces: Iterator[npt.NDArray[np.int16]]) -> None:
        for pcm in pieces:
            room = max(0, self._max_samples - self._taken)
            if room:
                self._batch.append(pcm[:room])
                self._batched += len(self._batch[-1])
                self._taken += len(self._batch[-1])
        if self._batched >= LIVE_BATCH:
            self._run()

    def _run(self) -> None:
        if self._batch:
            self._ready.append(self.fingerprint.feed(np.concatenate(self._batch)))
            self._batch, self._batched = [], 0

    def _fail(self, reason: str) -> None:
        self.error = f"{self.name}: {reason}"
        self.finish()
