"""Hashing media files: PDQ for images, MD5 and SHA-256 for any file.

PDQ uses the ``pdqhash`` bindings of Meta's reference C++ over the RGB
pixels Pillow decodes, after applying the EXIF orientation (so a photo
hashes the way it is displayed). ``pdqhash`` and Pillow are imported inside
the functions that need them: importing this module stays cheap, and the
rest of the node runs without them.

Every failure to read or decode a file is a ``ValidationError`` with a
one-line message naming the file; nothing from Pillow or the OS leaks out.
The PDQ gates (:func:`check_pdq_quality`, :func:`check_pdq_not_degenerate`)
are pure functions so the submit path can apply them to hashes that arrive
without their image.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from node.errors import ValidationError

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "DEFAULT_QUALITY_FLOOR",
    "DIHEDRAL_NAMES",
    "IMAGE_FORMATS",
    "MIN_MINORITY_BITS",
    "FileDigests",
    "MediaHashes",
    "PdqHash",
    "check_pdq_not_degenerate",
    "check_pdq_quality",
    "file_digests",
    "hamming",
    "hash_file",
    "pdq_dihedral",
    "pdq_hash",
]

PDQ_BYTES = 32
DEFAULT_QUALITY_FLOOR = 50
# Formats Pillow may decode here. Files come from untrusted submitters, so the
# list is closed: no EPS/PDF (Pillow would run Ghostscript) or exotic plugins.
IMAGE_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF")
MIN_MINORITY_BITS = 32
_READ_CHUNK = 1 << 20

# The order pdqhash.compute_dihedral returns its eight hashes in.
DIHEDRAL_NAMES = (
    "original",
    "rotate90",
    "rotate180",
    "rotate270",
    "flip_x",
    "flip_y",
    "flip_plus1",
    "flip_minus1",
)

StrPath = str | os.PathLike[str]


@dataclass(frozen=True, slots=True)
class PdqHash:
    """A 256-bit PDQ hash (32 bytes, most significant bit first) and its quality 0..100."""

    value: bytes
    quality: int

    def __post_init__(self) -> None:
        if len(self.value) != PDQ_BYTES:
            raise ValidationError(f"PDQ hash has {len(self.value)} bytes: expected {PDQ_BYTES}")
        if not 0 <= self.quality <= 100:
            raise ValidationError(f"PDQ quality must be in 0..100: got {self.quality}")

    def hex(self) -> str:
        return self.value.hex()


@dataclass(frozen=True, slots=True)
class FileDigests:
    md5: bytes
    sha256: bytes


@dataclass(frozen=True, slots=True)
class MediaHashes:
    """What :func:`hash_file` found: digests always, PDQ for images."""

    md5: bytes
    sha256: bytes
    pdq: PdqHash | None


# ------------------------------------------------------------------- helpers


def hamming(a: bytes, b: bytes) -> int:
    """Bits that differ between two byte strings of equal length."""
    if len(a) != len(b):
        raise ValidationError(f"cannot compare hashes of {len(a)} and {len(b)} bytes")
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).bit_count()


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


@contextmanager
def _reading(path: Path) -> Iterator[None]:
    """Translate OS errors while reading ``path`` into ValidationError."""
    try:
        yield
    except OSError as e:
        reason = e.strerror or _one_line(e) or type(e).__name__
        raise ValidationError(f"{path}: cannot read file: {reason}") from None


def _nonempty(path: Path) -> None:
    with _reading(path):
        size = path.stat().st_size
        if not path.is_file():
            raise ValidationError(f"{path}: not a regular file")
    if size == 0:
        raise ValidationError(f"{path}: file is empty")


# ------------------------------------------------------------------- digests


def file_digests(path: StrPath) -> FileDigests:
    """MD5 and SHA-256 of the file's bytes, read in 1 MiB pieces.

    An empty file is refused: its digests would match every empty upload.
    """
    p = Path(path)
    _nonempty(p)
    md5 = hashlib.md5(usedforsecurity=False)
    sha = hashlib.sha256()
    with _reading(p), p.open("rb") as f:
        while piece := f.read(_READ_CHUNK):
            md5.update(piece)
            sha.update(piece)
    return FileDigests(md5=md5.digest(), sha256=sha.digest())


# ----------------------------------------------------------------------- PDQ


def _formats() -> list[str]:
    """:data:`IMAGE_FORMATS` that this Pillow build can open."""
    from PIL import Image

    Image.init()
    return [f for f in IMAGE_FORMATS if f in Image.OPEN]


def _decode_rgb(path: Path) -> Any:
    """The image at ``path`` as an (h, w, 3) uint8 array, EXIF orientation applied."""
    import numpy as np
    from PIL import Image, ImageOps, UnidentifiedImageError

    _nonempty(path)
    with _reading(path), path.open("rb") as f:
        try:
            with Image.open(f, formats=_formats()) as img:
                limit = Image.MAX_IMAGE_PIXELS
                if limit is not None and img.width * img.height > limit:
                    # Pillow refuses only past twice this (and warns below):
                    # a 140 KB PNG of 12000 x 12000 would decode to 432 MB
                    raise Image.DecompressionBombError(f"{img.width}x{img.height}")
                img.load()  # decode now: a truncated file fails here, not later
                upright = ImageOps.exif_transpose(img)
                rgb: Image.Image = upright.convert("RGB")
        except Image.DecompressionBombError:
            raise ValidationError(
                f"{path}: image has more than {Image.MAX_IMAGE_PIXELS} pixels"
            ) from None
        except UnidentifiedImageError:
            raise ValidationError(
                f"{path}: not an image in a supported format ({', '.join(IMAGE_FORMATS)})"
            ) from None
        except (OSError, SyntaxError, ValueError) as e:
            # Pillow reports corrupt or truncated data as OSError without an
            # errno (some format plugins as SyntaxError or ValueError); an
            # OSError with an errno is the OS failing to read: _reading says so.
            if isinstance(e, OSError) and e.errno is not None:
                raise
            raise ValidationError(f"{path}: cannot decode image: {_one_line(e)}") from None
    if rgb.width == 0 or rgb.height == 0:
        raise ValidationError(f"{path}: image has no pixels")
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))


def _bits_to_bytes(bits: Any) -> bytes:
    """pdqhash's 256 bits (most significant first) as 32 bytes."""
    import numpy as np

    packed: bytes = np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes()
    return packed


def pdq_hash(path: StrPath) -> PdqHash:
    """PDQ hash and quality of the image at ``path``."""
    import pdqhash

    p = Path(path)
    bits, quality = pdqhash.compute(_decode_rgb(p))
    return PdqHash(_bits_to_bytes(bits), int(quality))


def pdq_dihedral(path: StrPath) -> tuple[PdqHash, ...]:
    """The eight PDQ hashes of the image's rotations and flips, in
    :data:`DIHEDRAL_NAMES` order (the first is :func:`pdq_hash`'s)."""
    import pdqhash

    p = Path(path)
    variants, quality = pdqhash.compute_dihedral(_decode_rgb(p))
    return tuple(PdqHash(_bits_to_bytes(bits), int(quality)) for bits in variants)


def _is_image(path: Path) -> bool:
    """Whether Pillow recognises the file's format (reads the header only)."""
    from PIL import Image, UnidentifiedImageError

    with _reading(path), path.open("rb") as f:
        try:
            with Image.open(f, formats=_formats()):
                return True
        except Image.DecompressionBombError:
            return True  # recognised, but too large: pdq_hash refuses it
        except (UnidentifiedImageError, SyntaxError, ValueError):
            return False
        except OSError as e:
            if e.errno is not None:
                raise  # the OS failed to read: _reading says so
            return True  # recognised, but broken: pdq_hash will say how


def hash_file(path: StrPath, *, image: bool | None = None) -> MediaHashes:
    """Digests of any file, plus PDQ when it is an image.

    ``image=None`` decides by the file's header: a file Pillow does not
    recognise gets digests only, while a recognised image that fails to
    decode (e.g. truncated) is refused rather than passed off as non-image.
    ``image=True`` refuses anything that is not a decodable image.
    """
    p = Path(path)
    digests = file_digests(p)
    pdq = pdq_hash(p) if image or (image is None and _is_image(p)) else None
    return MediaHashes(md5=digests.md5, sha256=digests.sha256, pdq=pdq)


# --------------------------------------------------------------------- gates


def check_pdq_quality(quality: int, floor: int = DEFAULT_QUALITY_FLOOR) -> None:
    """Refuse a PDQ hash whose quality is below ``floor`` (default 50).

    PDQ's quality (0..100) grows with the image's gradient energy: a flat,
    tiny or heavily blurred image scores low, and its hash says little about
    its content, so it would collide with unrelated images. 50 is the floor
    commonly used with PDQ and the one this project's design sets.
    """
    if isinstance(quality, bool) or not isinstance(quality, int):
        raise ValidationError(f"PDQ quality must be an int: got {type(quality).__name__}")
    if not 0 <= quality <= 100:
        raise ValidationError(f"PDQ quality must be in 0..100: got {quality}")
    if quality < floor:
        raise ValidationError(f"PDQ quality {quality} is below the floor of {floor}")


def check_pdq_not_degenerate(hash32: bytes) -> None:
    """Refuse a PDQ hash with fewer than 32 set bits or fewer than 32 clear bits.

    A PDQ bit is set when its DCT coefficient exceeds the median of the 256
    coefficients, so the hash of an image with any structure has 128 set
    bits (a few fewer when coefficients tie the median; every hash in the
    test vectors has exactly 128). Flat images tie everywhere and give hashes
    such as all zeros. A hash with fewer than 32 set bits is within distance
    31, the default match radius, of the all-zeros hash, and one with fewer
    than 32 clear bits is within 31 of all ones: each would match every
    blank image. 32 is therefore the threshold that keeps the constant hashes
    out of every stored hash's match radius, while staying 96 bits away from
    the 128 set bits of a genuine hash.
    """
    if not isinstance(hash32, bytes | bytearray) or len(hash32) != PDQ_BYTES:
        got = len(hash32) if isinstance(hash32, bytes | bytearray) else type(hash32).__name__
        raise ValidationError(f"PDQ hash must be {PDQ_BYTES} bytes: got {got}")
    ones = int.from_bytes(hash32, "big").bit_count()
    zeros = 8 * PDQ_BYTES - ones
    if ones < MIN_MINORITY_BITS or zeros < MIN_MINORITY_BITS:
        raise ValidationError(
            f"PDQ hash is degenerate: {ones} of 256 bits set, expected "
            f"{MIN_MINORITY_BITS}..{8 * PDQ_BYTES - MIN_MINORITY_BITS}"
        )
