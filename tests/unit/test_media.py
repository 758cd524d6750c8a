"""Media hashing against ThreatExchange's PDQ test images, plus bad-input tables."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from node.errors import ValidationError
from node.media.image import (
    DIHEDRAL_NAMES,
    check_pdq_not_degenerate,
    check_pdq_quality,
    file_digests,
    hamming,
    hash_file,
    pdq_dihedral,
    pdq_hash,
)

pytest.importorskip("pdqhash", reason="pdqhash is not installed (PDQ hashing needs it)")
pytest.importorskip("PIL", reason="Pillow is not installed (PDQ hashing needs it)")

from PIL import Image  # after the importorskip guards

VECTORS = Path(__file__).resolve().parents[2].parent / "shared" / "vectors" / "pdq"
needs_vectors = pytest.mark.skipif(
    not (VECTORS / "expected.json").is_file(),
    reason=f"PDQ test vectors not found at {VECTORS} (a clone outside the workspace)",
)
EXPECTED: dict[str, dict[str, Any]] = (
    json.loads((VECTORS / "expected.json").read_text())
    if (VECTORS / "expected.json").is_file()
    else {}
)
ORIGINAL = "aaa-orig.jpg"
EDITS = sorted(n for n in EXPECTED if n != ORIGINAL and not n.startswith("q"))
UNRELATED = sorted(n for n in EXPECTED if n.startswith("q"))


def _ones(n: int) -> bytes:
    """A 32-byte hash with its n lowest bits set."""
    return ((1 << n) - 1).to_bytes(32, "big")


# ------------------------------------------------------------ test vectors


@needs_vectors
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_pdq_hash_and_quality_match_expected(name: str) -> None:
    got = pdq_hash(VECTORS / name)
    assert got.hex() == EXPECTED[name]["pdq"]
    assert got.quality == EXPECTED[name]["quality"]


@needs_vectors
def test_every_edit_is_within_31_of_the_original() -> None:
    assert EDITS, "no edited images in the vectors"
    original = pdq_hash(VECTORS / ORIGINAL).value
    for name in EDITS:
        d = hamming(pdq_hash(VECTORS / name).value, original)
        assert d <= 31, name
        assert d == EXPECTED[name]["distance_to_aaa_orig"], name


@needs_vectors
def test_unrelated_images_are_not_within_31() -> None:
    assert UNRELATED, "no unrelated images in the vectors"
    original = pdq_hash(VECTORS / ORIGINAL).value
    for name in UNRELATED:
        assert hamming(pdq_hash(VECTORS / name).value, original) > 31, name


@needs_vectors
def test_low_quality_image_is_refused() -> None:
    low = pdq_hash(VECTORS / "q0004.jpg")
    assert low.quality < 50
    with pytest.raises(ValidationError, match="below the floor of 50"):
        check_pdq_quality(low.quality)
    check_pdq_quality(pdq_hash(VECTORS / ORIGINAL).quality)


@needs_vectors
def test_vector_hashes_are_not_degenerate() -> None:
    for entry in EXPECTED.values():
        check_pdq_not_degenerate(bytes.fromhex(entry["pdq"]))


@needs_vectors
def test_dihedral_variants(tmp_path: Path) -> None:
    variants = pdq_dihedral(VECTORS / ORIGINAL)
    assert len(variants) == len(DIHEDRAL_NAMES) == 8
    assert variants[0] == pdq_hash(VECTORS / ORIGINAL)
    assert len({v.value for v in variants}) == 8
    # a rotated copy of the photo matches one of the variants of the original
    rotated = tmp_path / "rotated.png"
    with Image.open(VECTORS / ORIGINAL) as img:
        img.convert("RGB").transpose(Image.Transpose.ROTATE_90).save(rotated)
    h = pdq_hash(rotated).value
    assert hamming(h, variants[0].value) > 31
    assert min(hamming(h, v.value) for v in variants) <= 8


@needs_vectors
def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    # Stored sideways with Orientation=6 ("rotate 90 clockwise to display"):
    # hashing what is displayed gives the original's hash.
    sideways = tmp_path / "sideways.png"
    with Image.open(VECTORS / ORIGINAL) as img:
        pixels = img.convert("RGB").transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    pixels.save(sideways, exif=exif)
    assert pdq_hash(sideways) == pdq_hash(VECTORS / ORIGINAL)


@needs_vectors
def test_hash_file_of_an_image() -> None:
    path = VECTORS / ORIGINAL
    got = hash_file(path)
    data = path.read_bytes()
    assert got.md5 == hashlib.md5(data, usedforsecurity=False).digest()
    assert got.sha256 == hashlib.sha256(data).digest()
    assert got.pdq is not None
    assert got.pdq.hex() == EXPECTED[ORIGINAL]["pdq"]


# ---------------------------------------------------------------- digests


def test_digests_stream_large_files(tmp_path: Path) -> None:
    data = bytes(range(256)) * (10 * 1024 + 3)  # > 2 MiB, not a multiple of the read size
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    got = file_digests(path)
    assert got.md5 == hashlib.md5(data, usedforsecurity=False).digest()
    assert got.sha256 == hashlib.sha256(data).digest()


def test_hash_file_of_a_non_image_has_no_pdq(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not an image\n")
    got = hash_file(path)
    assert got.pdq is None
    assert got.sha256 == hashlib.sha256(b"not an image\n").digest()
    with pytest.raises(ValidationError, match="not an image"):
        hash_file(path, image=True)


# -------------------------------------------------------------- bad files


def _empty(tmp: Path) -> Path:
    p = tmp / "empty.jpg"
    p.write_bytes(b"")
    return p


def _text(tmp: Path) -> Path:
    p = tmp / "notes.jpg"
    p.write_text("hello, I am not a JPEG\n")
    return p


def _jpeg_bytes(tmp: Path) -> bytes:
    img = Image.new("RGB", (64, 64))
    img.putdata([(x * 4, y * 4, (x + y) * 2) for y in range(64) for x in range(64)])
    full = tmp / "full.jpg"
    img.save(full, "JPEG")
    return full.read_bytes()


def _truncated(tmp: Path) -> Path:
    data = _jpeg_bytes(tmp)
    p = tmp / "truncated.jpg"
    p.write_bytes(data[: len(data) // 2])
    return p


def _header_only(tmp: Path) -> Path:
    p = tmp / "header.jpg"
    p.write_bytes(_jpeg_bytes(tmp)[:2])
    return p


def _eps(tmp: Path) -> Path:
    # a format Pillow knows but that is not on the list (decoding runs Ghostscript)
    p = tmp / "drawing.eps"
    p.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n")
    return p


def _missing(tmp: Path) -> Path:
    return tmp / "no-such-file.jpg"


def _directory(tmp: Path) -> Path:
    p = tmp / "a-directory.jpg"
    p.mkdir()
    return p


BAD_FILES = [
    (_empty, "file is empty"),
    (_text, "not an image in a supported format"),
    (_truncated, "cannot decode image"),
    (_header_only, "not an image in a supported format"),
    (_eps, "not an image in a supported format"),
    (_missing, "cannot read file"),
    (_directory, "not a regular file"),
]


@pytest.mark.parametrize(("make", "message"), BAD_FILES, ids=[m.__name__ for m, _ in BAD_FILES])
def test_bad_files_are_refused(tmp_path: Path, make: Any, message: str) -> None:
    path = make(tmp_path)
    for hasher in (pdq_hash, pdq_dihedral):
        with pytest.raises(ValidationError, match=message) as info:
            hasher(path)
        text = str(info.value)
        assert str(path) in text
        assert "\n" not in text


def test_truncated_image_is_refused_by_hash_file(tmp_path: Path) -> None:
    # a recognised image that fails to decode is not passed off as "not an image"
    with pytest.raises(ValidationError, match="cannot decode image"):
        hash_file(_truncated(tmp_path))


@pytest.mark.parametrize(
    ("make", "message"),
    [(_empty, "file is empty"), (_missing, "cannot read file"), (_directory, "not a regular")],
)
def test_bad_files_are_refused_by_digests(tmp_path: Path, make: Any, message: str) -> None:
    path = make(tmp_path)
    for hasher in (file_digests, hash_file):
        with pytest.raises(ValidationError, match=message):
            hasher(path)


# ------------------------------------------------------------------ gates

DEGENERATE = [
    (bytes(32), "0 of 256 bits set"),
    (b"\xff" * 32, "256 of 256 bits set"),
    (_ones(1), "1 of 256"),
    (_ones(31), "31 of 256"),
    (_ones(225), "225 of 256"),
    (_ones(255), "255 of 256"),
    (bytes(31), "must be 32 bytes"),
    (bytes(33), "must be 32 bytes"),
    (b"", "must be 32 bytes"),
    ("00" * 32, "must be 32 bytes"),
]


@pytest.mark.parametrize(("value", "message"), DEGENERATE)
def test_degenerate_hashes_are_refused(value: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        check_pdq_not_degenerate(value)


@pytest.mark.parametrize("ones", [32, 64, 127, 128, 192, 224])
def test_balanced_hashes_pass(ones: int) -> None:
    check_pdq_not_degenerate(_ones(ones))
    check_pdq_not_degenerate(_ones(ones)[::-1])


@pytest.mark.parametrize(
    ("quality", "floor", "message"),
    [
        (0, 50, "below the floor"),
        (49, 50, "below the floor"),
        (79, 80, "below the floor of 80"),
        (-1, 50, "0..100"),
        (101, 50, "0..100"),
        (True, 50, "must be an int"),
        (50.0, 50, "must be an int"),
    ],
)
def test_quality_gate_refuses(quality: Any, floor: int, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        check_pdq_quality(quality, floor)


@pytest.mark.parametrize(("quality", "floor"), [(50, 50), (100, 50), (0, 0), (80, 80)])
def test_quality_gate_accepts(quality: int, floor: int) -> None:
    check_pdq_quality(quality, floor)


def test_hamming() -> None:
    assert hamming(bytes(32), bytes(32)) == 0
    assert hamming(bytes(32), b"\xff" * 32) == 256
    assert hamming(b"\x0f", b"\xf0") == 8
    assert hamming(b"\x01\x00", b"\x00\x01") == 2
    with pytest.raises(ValidationError, match="32 and 31 bytes"):
        hamming(bytes(32), bytes(31))
