"""Live sources: a video that is still growing, read as it grows, cut into segments.

Used by ``ccnode submit DIR --live SOURCE`` (publish an incident's stream
while it is live) and ``ccnode watch SOURCE`` (docs/live.md).

- :class:`GrowingSource` is a read-only, non-seekable byte stream over a
  file still being written, or standard input (``-``). At the end of what
  is there it waits for more, polling a file every :data:`POLL_S`, and
  gives end-of-file when nothing new came for ``stall_s`` seconds (a file
  cannot say it is complete; a pipe can: its writer closes it). Being
  non-seekable, it admits only containers that stream: MPEG-TS,
  Matroska/WebM, FLV, and MP4 with its index first ("faststart").
- :class:`Segmenter` (pure) cuts frames with absolute timestamps into
  :class:`~node.core.vpdq.VpdqSegment` spans of ``segment_ms`` of stream
  time on a fixed grid (segment ``i`` covers ``[i*segment_ms,
  (i+1)*segment_ms)``), so a restarted publisher re-hashing the same file
  cuts the same segments; a segment is complete when a frame at or past its
  end arrives, and the source's end closes the last one as ``final``.
"""

from __future__ import annotations

import io
import os
import select
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from node.core.chromaprint import ITEM_SAMPLES, ChromaprintSegment
from node.core.chromaprint import SAMPLE_RATE as CHROMA_RATE
from node.core.vpdq import MAX_FRAMES, MAX_SEGMENT_MS, VideoFrame, VpdqSegment
from node.errors import ValidationError

#: Default segment length: short enough that a watcher has evidence within
#: seconds (a segment is published when its span ends), long enough that a
#: 17-minute stream is ~250 entries, not thousands.
LIVE_SEGMENT_S = 4.0
STALL_S = 10.0  # default: no new bytes for this long ends a file source
POLL_S = 0.05  # how often a growing file is looked at for new bytes
STDIN = "-"


class _Stalling:
    """Stall accounting shared by the sources."""

    stall_s: float
    stalled: bool
    received: int
    last_data: float
    #: An error met while reading: the decoder only sees the stream end
    #: (PyAV cannot carry it), so the caller reports it from here.
    error: ValidationError | None = None

    def _got(self, n: int) -> None:
        self.received += n
        self.last_data = time.monotonic()

    def _stalled_now(self) -> bool:
        if time.monotonic() - self.last_data >= self.stall_s:
            self.stalled = True
        return self.stalled


class GrowingSource(io.RawIOBase, _Stalling):
    """A file being written (or stdin), read to its end and then waited on.

    ``stalled`` is set when reading ended because nothing new arrived for
    ``stall_s`` seconds (rather than a pipe's end-of-file); ``received`` is
    the byte count so far and ``last_data`` the monotonic time of the last
    bytes.
    """

    def __init__(self, source: str, *, stall_s: float = 10.0) -> None:
        super().__init__()
        if not stall_s > 0:
            raise ValidationError(f"stall timeout {stall_s} s: expected > 0")
        self.name = "standard input" if source == STDIN else source
        self.stall_s = stall_s
        self.stalled = False
        self.received = 0
        self.last_data = time.monotonic()
        self._pipe = source == STDIN
        if self._pipe:
            self._fd = sys.stdin.buffer.fileno()
            self._file: BinaryIO | None = None
        else:
            try:
                self._file = Path(source).open("rb")  # noqa: SIM115 (closed in close())
            except OSError as exc:
                raise ValidationError(f"{source}: cannot read: {exc.strerror}") from None
            self._fd = self._file.fileno()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self.stalled:
            return 0
        want = len(buffer)
        while True:
            if self._pipe:
                ready, _, _ = select.select([self._fd], [], [], POLL_S)
                data = os.read(self._fd, want) if ready else None
                if data == b"":
                    return 0  # the writer closed the pipe: the stream's end
            else:
                assert self._file is not None
                data = self._file.read(want) or None
            if data:
                buffer[: len(data)] = data
                self._got(len(data))
                return len(data)
            if self._stalled_now():
                return 0
            if not self._pipe:
                time.sleep(POLL_S)  # a file has no "more data" event: poll it

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        super().close()


def check_segment_seconds(seconds: float) -> int:
    ms = round(seconds * 1000)
    if not 1000 <= ms <= MAX_SEGMENT_MS:
        raise ValidationError(
            f"--segment-seconds {seconds:g}: expected 1..{MAX_SEGMENT_MS // 1000}"
        )
    return ms


@dataclass(slots=True)
class Segmenter:
    """Frames in, complete segments out, on a fixed grid of ``segment_ms``.

    ``offset_ms`` shifts every timestamp (a stdin stream resumed after a
    restart continues the video's clock). A segment holding
    :data:`~node.core.vpdq.MAX_FRAMES` frames before its span ends is an error
    (a stream whose frame rate the cap cannot carry): say so, never split
    unevenly.
    """

    video_id: bytes
    segment_ms: int
    fps_milli: int = 0
    offset_ms: int = 0
    index: int = -1  # the segment being filled; -1 before the first frame
    frames: list[VideoFrame] = field(default_factory=list)
    last_ms: int = 0

    def add(self, frame: VideoFrame) -> Iterator[VpdqSegment]:
        """Take one frame; yield the segments it completes (normally 0 or 1)."""
        ts = frame.ts_ms + self.offset_ms
        if self.offset_ms:
            frame = VideoFrame(frame.pdq, frame.quality, ts)
        if ts < self.last_ms:
            raise ValidationError(
                f"frame at {ts} ms comes after one at {self.last_ms} ms: timestamps out of order"
            )
        self.last_ms = ts
        index = ts // self.segment_ms
        if self.index >= 0 and index > self.index and self.frames:
            yield self._cut(final=False, end_ms=(self.index + 1) * self.segment_ms)
        if index != self.index:
            self.index, self.frames = index, []
        if len(self.frames) >= MAX_FRAMES:
            raise ValidationError(
                f"segment {self.index} has more than {MAX_FRAMES} frames in "
                f"{self.segment_ms // 1000} s: use a shorter --segment-seconds"
            )
        self.frames.append(frame)

    def finish(self, end_ms: int) -> VpdqSegment | None:
        """The closing (``final``) segment at the source's end, covering up to
        ``end_ms`` (the stream's duration, plus the offset); None if no frame
        is pending."""
        if not self.frames:
            return None
        end = max(end_ms + self.offset_ms, self.frames[-1].ts_ms)
        return self._cut(final=True, end_ms=end)

    def _cut(self, *, final: bool, end_ms: int) -> VpdqSegment:
        start = self.index * self.segment_ms
        segment = VpdqSegment(
            video_id=self.video_id,
            index=self.index,
            start_ms=start,
            duration_ms=min(end_ms - start, MAX_SEGMENT_MS),
            fps_milli=self.fps_milli,
            final=final,
            frames=tuple(self.frames),
        )
        self.frames = []
        return segment


#: Audio segments never span more than this (a CHROMAPRINT segment holds at
#: most 2,048 sub-fingerprints, 253 s): with a longer ``--segment-seconds``
#: the soundtrack is cut every 240 s.
MAX_AUDIO_SEGMENT_MS = 240_000


@dataclass(slots=True)
class AudioSegmenter:
    """Sub-fingerprints in, complete CHROMAPRINT segments out, on a fixed
    grid of stream time as :class:`Segmenter` cuts frames: segment ``i``
    holds the items that start in ``[i*span, (i+1)*span)`` ms of the
    soundtrack, ``span`` being ``segment_ms`` (at most
    :data:`MAX_AUDIO_SEGMENT_MS`). A segment is complete when an item past
    its end arrives (about 3 s of stream after its span ends: an item's
    2.72 s window and the live decoder's half-second batches); the source's
    end closes the last one as ``final``.

    ``first_item`` places the first value fed (a stdin stream resumed after
    a restart continues the track after what was published).
    """

    video_id: bytes
    segment_ms: int
    first_item: int = 0
    index: int = -1  # the segment being filled; -1 before the first item
    start: int = 0  # the track position of values[0]
    values: list[int] = field(default_factory=list)
    fed: int = 0

    @property
    def span_ms(self) -> int:
        return min(self.segment_ms, MAX_AUDIO_SEGMENT_MS)

    def segment_of(self, item: int) -> int:
        return item * ITEM_SAMPLES * 1000 // (CHROMA_RATE * self.span_ms)

    def add(self, values: Iterable[int]) -> Iterator[ChromaprintSegment]:
        """Take sub-fingerprints in track order; yield the segments they complete."""
        for value in values:
            item = self.first_item + self.fed
            self.fed += 1
            index = self.segment_of(item)
            if index != self.index:
                if self.values:
                    yield self._cut(final=False)
                self.index, self.start, self.values = index, item, []
            self.values.append(int(value))

    def finish(self) -> ChromaprintSegment | None:
        """The closing (``final``) segment; None if no item is pending."""
        return self._cut(final=True) if self.values else None

    def _cut(self, *, final: bool) -> ChromaprintSegment:
        segment = ChromaprintSegment(
            self.video_id, self.index, self.start, final, tuple(self.values)
        )
        self.values = []
        return segment


#: An HLS media segment larger than this is refused (a 10 s 1080p segment is
#: a few MB; this bounds the memory one bad server can make us use).
MAX_HLS_SEGMENT_BYTES = 64 << 20
MAX_PLAYLIST_BYTES = 1 << 20
HTTP_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class Playlist:
    """The parts of an HLS media playlist a live reader needs."""

    sequence: int  # EXT-X-MEDIA-SEQUENCE: the number of the first segment listed
    uris: tuple[str, ...]
    ended: bool  # EXT-X-ENDLIST
    target_s: float

    @classmethod
    def parse(cls, url: str, text: str) -> Playlist:
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if not lines or lines[0] != "#EXTM3U":
            raise ValidationError(f"{url}: not an HLS playlist (no #EXTM3U first line)")
        sequence, target, ended, uris = 0, 2.0, False, []
        for line in lines[1:]:
            tag, _, value = line.partition(":")
            if tag == "#EXT-X-STREAM-INF":
                raise ValidationError(
                    f"{url}: a master playlist: give the URL of one variant's media playlist"
                )
            if tag == "#EXT-X-KEY" and value.split(",")[0] != "METHOD=NONE":
                raise ValidationError(f"{url}: encrypted HLS segments are not supported")
            if tag == "#EXT-X-MAP":
                raise ValidationError(
                    f"{url}: fragmented-MP4 HLS is not supported (MPEG-TS segments expected)"
                )
            if tag == "#EXT-X-MEDIA-SEQUENCE":
                sequence = _int_tag(url, tag, value)
            elif tag == "#EXT-X-TARGETDURATION":
                target = float(_int_tag(url, tag, value))
            elif tag == "#EXT-X-ENDLIST":
                ended = True
            elif not line.startswith("#"):
                uris.append(line)
        return cls(sequence, tuple(uris), ended, max(target, 0.1))


def _int_tag(url: str, tag: str, value: str) -> int:
    if not value.isdigit():
        raise ValidationError(f"{url}: {tag}:{value[:20]!r}: expected a whole number")
    return int(value)


class HlsSource(io.RawIOBase, _Stalling):
    """A live HLS media playlist of MPEG-TS segments, read over HTTP(S).

    The playlist is fetched again every half target duration; each new
    segment (by media sequence number) is fetched once and its bytes
    appended to the stream (MPEG-TS segments concatenate into one stream).
    Only the playlist's own scheme, host and port are fetched: a segment
    elsewhere is refused. The stream ends at ``#EXT-X-ENDLIST``, or when no
    new segment arrived for ``stall_s`` (a stall: warned by the caller).
    """

    def __init__(self, url: str, *, stall_s: float = 10.0) -> None:
        super().__init__()
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValidationError(f"{url}: an HLS playlist URL must be http:// or https://")
        self.name = url
        self.url = url
        self.origin = (parts.scheme, parts.netloc)
        self.stall_s = stall_s
        self.stalled = False
        self.received = 0
        self.last_data = time.monotonic()
        self.next_seq: int | None = None
        self.listed = 0  # one past the newest segment number a playlist listed
        self.ended = False
        self.segments = 0
        self._pending = b""
        self._wait_s = 0.0
        self.error = None
        self._fill()  # the first playlist now: a bad URL, host or playlist fails here

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._pending:
            if self.ended or self.stalled or self.error:
                return 0
            try:
                self._fill()
            except ValidationError as exc:
                self.error = exc
                return 0
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def _fill(self) -> None:
        """Fetch the playlist, then the next new segment (or wait a while)."""
        if self._wait_s:
            time.sleep(self._wait_s)  # HLS has no push: poll at half the target duration
        playlist = self._playlist()
        if playlist is None:  # the server is unreachable for now
            self._wait_s = POLL_S * 4
            self._stalled_now()
            return
        self._wait_s = playlist.target_s / 2
        if self.next_seq is None:
            self.next_seq = playlist.sequence
            for uri in playlist.uris:
                self._check_host(uri)
        if playlist.sequence > self.next_seq:
            raise ValidationError(
                f"{self.url}: segments {self.next_seq}..{playlist.sequence - 1} left the "
                "playlist before they were read"
            )
        end = playlist.sequence + len(playlist.uris)
        if end < self.listed:
            raise ValidationError(
                f"{self.url}: the playlist went back to segments {playlist.sequence}.."
                f"{end - 1} after it had listed segment {self.listed - 1}: "
                "segments out of order"
            )
        self.listed = end
        i = self.next_seq - playlist.sequence
        if i < len(playlist.uris):
            self._pending = self._segment(playlist.uris[i])
            self.next_seq += 1
            self.segments += 1
            self._got(len(self._pending))
            self._wait_s = 0.0
        elif playlist.ended:
            self.ended = True
        else:
            self._stalled_now()

    def _fetch(self, url: str, cap: int, what: str) -> bytes:
        import urllib.request

        request = urllib.request.Request(url, headers={"User-Agent": "ccnode-live"})  # noqa: S310
        with _HTTP.open(request, timeout=HTTP_TIMEOUT_S) as response:
            declared = response.headers.get("Content-Length")
            if declared is not None and declared.isdigit() and int(declared) > cap:
                raise ValidationError(f"{url}: {what} of {declared} bytes: over the {cap}-byte cap")
            data: bytes = response.read(cap + 1)
        if len(data) > cap:
            raise ValidationError(f"{url}: {what} over the {cap}-byte cap")
        return data

    def _playlist(self) -> Playlist | None:
        import urllib.error

        try:
            text = self._fetch(self.url, MAX_PLAYLIST_BYTES, "playlist")
        except urllib.error.HTTPError as exc:
            if self.next_seq is None:
                raise ValidationError(f"{self.url}: HTTP {exc.code}") from None
            return None
        except (urllib.error.URLError, OSError) as exc:
            if self.next_seq is None:
                reason = getattr(exc, "reason", exc)
                raise ValidationError(f"{self.url}: cannot fetch the playlist: {reason}") from None
            return None
        try:
            return Playlist.parse(self.url, text.decode())
        except UnicodeDecodeError:
            raise ValidationError(f"{self.url}: not an HLS playlist (not UTF-8 text)") from None

    def _check_host(self, uri: str) -> str:
        from urllib.parse import urljoin, urlsplit

        url = urljoin(self.url, uri)
        parts = urlsplit(url)
        if (parts.scheme, parts.netloc) != self.origin:
            raise ValidationError(
                f"{self.url}: segment {uri!r} is outside the playlist's host "
                f"{self.origin[0]}://{self.origin[1]}: refused"
            )
        return url

    def _segment(self, uri: str) -> bytes:
        import urllib.error

        url = self._check_host(uri)
        try:
            return self._fetch(url, MAX_HLS_SEGMENT_BYTES, "segment")
        except urllib.error.HTTPError as exc:
            raise ValidationError(f"{url}: HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ValidationError(f"{url}: cannot fetch the segment: {reason}") from None


def _opener() -> Any:
    import urllib.request

    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


_HTTP = _opener()


def open_source(source: str, *, stall_s: float) -> GrowingSource | HlsSource:
    """The live source SOURCE names: an http(s) URL is an HLS playlist, ``-``
    standard input, anything else a file."""
    if source.startswith(("http://", "https://")):
        return HlsSource(source, stall_s=stall_s)
    return GrowingSource(source, stall_s=stall_s)


def open_stream(source: GrowingSource | HlsSource, kind: Any) -> Any:
    """``kind(source, name)`` (node.media.video's LiveBank or LiveQuery),
    with the source's own error, if it had one, instead of the decoder's."""
    try:
        return kind(source, source.name)
    except ValidationError:
        if source.error is not None:
            raise source.error from None
        raise
