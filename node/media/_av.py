"""The one guarded way this package opens media with PyAV.

Every file is handed to FFmpeg as a Python file object, so FFmpeg sees the
file's own bytes and no name, URL or ``concat:``-style protocol string to
follow. Three guards on top, each independent of the others:

- ``format_whitelist``: only the demuxers the caller names may run (no HLS or
  DASH playlists, concat scripts or image sequences, which open other files);
- ``protocol_whitelist=none``: any nested open a demuxer attempts fails;
- ``enable_drefs=0``: mov never follows an external data reference (FFmpeg's
  default, said explicitly so no version's default can change it).

Metadata that is not valid UTF-8 is ignored rather than raised as a
``UnicodeDecodeError``. The caller turns an open failure into its own
one-line error (``error``), so no FFmpeg exception leaves this package.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import IO, Any

from node.errors import ValidationError

__all__ = ["open_guarded"]


def open_guarded(f: IO[bytes], formats: Iterable[str], error: Callable[[], ValidationError]) -> Any:
    """``av.open(f)`` for reading, with the guards above; ``error()`` is
    raised (without a traceback chain) when FFmpeg cannot open it."""
    import av

    try:
        return av.open(
            f,
            mode="r",
            options={
                "format_whitelist": ",".join(formats),
                "protocol_whitelist": "none",
                "enable_drefs": "0",
            },
            metadata_errors="ignore",
        )
    except av.FFmpegError:
        raise error() from None
