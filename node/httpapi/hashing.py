"""Hashing an uploaded file, in a worker process (never on the event loop).

The HTTP API streams an upload to a temporary file (capped in size), then
hands its path to :func:`hash_upload` in a ``spawn`` worker process: FFmpeg
and Pillow decode attacker-supplied bytes there, so a decoder that crashes
or leaks takes down a worker the node replaces, not the node. The worker
applies the same limits as the CLI (node/media/video.py ``VideoLimits``,
node/media/audio.py ``AudioLimits``), and what it returns is small: digests,
a PDQ hash, query frames (a video's every kept frame with its variants, as
``ccnode match VIDEO`` sends) and audio sub-fingerprints.

What an upload is comes from its multipart field name, HMA's convention
(``photo``, ``video``), plus ``audio``; a field named ``file`` is sniffed:
an image if Pillow recognises it, else a video if it has a picture, else
audio if it has a usable soundtrack, else any file (MD5 and SHA-256 only).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from node.errors import ValidationError
from node.match.video import QueryFrame

if TYPE_CHECKING:
    from node.media.image import MediaHashes

KINDS = ("photo", "video", "audio")
FIELDS = (*KINDS, "file")


@dataclass(frozen=True, slots=True)
class UploadHashes:
    kind: str  # photo | video | audio | file (none of those: digests only)
    md5: bytes
    sha256: bytes
    pdq: bytes | None = None  # photos whose quality is at least the floor
    pdq_quality: int | None = None
    frames: tuple[QueryFrame, ...] = field(default=(), repr=False)  # videos
    frames_hashed: int = 0  # kept frames (without their variants)
    duration_ms: int = 0
    audio: tuple[int, ...] = field(default=(), repr=False)  # sub-fingerprints
    audio_note: str = ""  # why a video has no soundtrack fingerprint


def warm_up() -> None:
    """Import and initialise the decoders once, when the worker starts (the
    first file through them costs ~0.1 s more than the next)."""
    import tempfile

    with tempfile.NamedTemporaryFile(prefix="ccnode-warm-up-") as f:
        f.write(b"not media: warms up the image, video and audio probes")
        f.flush()
        hash_upload(Path(f.name), "file")


def _clean(exc: ValidationError, path: Path, name: str) -> ValidationError:
    """The media error with the temporary path replaced by the upload's name."""
    return ValidationError(str(exc).replace(str(path), name))


def hash_upload(path: Path, kind: str, name: str = "upload") -> UploadHashes:
    """The hashes of the file at ``path`` as a ``kind`` (or ``file``: sniffed).
    Every failure is a one-line :class:`ValidationError` naming ``name``."""
    try:
        return _hash(path, kind)
    except ValidationError as exc:
        raise _clean(exc, path, name) from None


def _hash(path: Path, kind: str) -> UploadHashes:
    from node.media import image

    if kind not in FIELDS:
        raise ValidationError(f"upload field {kind!r}: expected one of {', '.join(FIELDS)}")
    if kind == "photo":
        return _photo(image.hash_file(path, image=True))
    digests = image.hash_file(path, image=None if kind == "file" else False)
    if digests.pdq is not None:  # a file Pillow recognises: a photo
        return _photo(digests)
    if kind == "audio":
        return _audio(path, digests)
    if kind == "file":
        try:
            return _video(path, digests)
        except ValidationError as exc:
            if "has no video stream" not in str(exc) and "not a video" not in str(exc):
                raise
        try:
            return _audio(path, digests)
        except ValidationError as exc:  # any other file: matched by its digests
            note = str(exc).removeprefix(f"{path}: ")
            return UploadHashes("file", digests.md5, digests.sha256, audio_note=note)
    return _video(path, digests)


def _photo(h: MediaHashes) -> UploadHashes:
    from node.media.image import DEFAULT_QUALITY_FLOOR

    assert h.pdq is not None
    usable = h.pdq.quality >= DEFAULT_QUALITY_FLOOR
    return UploadHashes(
        "photo",
        h.md5,
        h.sha256,
        pdq=h.pdq.value if usable else None,
        pdq_quality=h.pdq.quality,
    )


def _video(path: Path, h: MediaHashes) -> UploadHashes:
    from node.media.audio import fingerprint_file
    from node.media.video import DEFAULT_LIMITS, query_frames

    hashed, frames = query_frames(path, DEFAULT_LIMITS)
    try:
        audio, note = fingerprint_file(path).values, ""
    except ValidationError as exc:
        audio, note = (), str(exc).removeprefix(f"{path}: ")
    return UploadHashes(
        "video",
        h.md5,
        h.sha256,
        frames=frames,
        frames_hashed=len(hashed.frames),
        duration_ms=hashed.duration_ms,
        audio=audio,
        audio_note=note,
    )


def _audio(path: Path, h: MediaHashes) -> UploadHashes:
    from node.media.audio import fingerprint_file

    fp = fingerprint_file(path)
    return UploadHashes(
        "audio", h.md5, h.sha256, audio=fp.values, duration_ms=round(fp.duration_s * 1000)
    )
