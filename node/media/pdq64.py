"""PDQ of many 64x64 luma images at once, in numpy.

Meta's PDQ reduces an image to 64x64 luma (Jarosz box filters, then
decimation), takes the 16x16 lowest non-constant coefficients of its DCT-II,
and sets a bit where a coefficient exceeds their median; its quality is the
summed absolute neighbour difference of the 64x64 luma, scaled. When the input
is already 64x64 the filter window is one pixel and the decimation picks every
pixel, so the reduction is the identity: what is left is two small matrix
products and a median per image, which numpy does for a whole batch of video
frames in one call. ``pdqhash.compute`` takes ~0.3 ms a frame through
Python; this takes ~20 us, which is what lets a query hash every frame of an
upload for about the cost of decoding it (docs/video.md).

A left-right mirror of the image flips the sign of every odd-frequency
column coefficient, so the mirrored hash costs one more median, not another
transform.

The output is bit for bit ``pdqhash.compute`` of the same 64x64 image, and of
its mirror image (property tests check both), in this project's byte order:
32 bytes, the most significant bit first, as
:func:`node.media.image.pdq_hash` gives.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["SIZE", "luma_from_rgb", "pdq_64"]

SIZE = 64
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # PDQ's RGB -> luma (Rec. 601)


def _dct_matrix() -> Any:
    # PDQ's 16x64 DCT-II rows for frequencies 1..16 (0, the mean, is left out).
    i = np.arange(1, 17, dtype=np.float64)[:, None]
    j = np.arange(SIZE, dtype=np.float64)[None, :]
    return (np.sqrt(2.0 / SIZE) * np.cos(np.pi / 2 / SIZE * i * (2 * j + 1))).astype(np.float32)


_DCT = _dct_matrix()
# cos(pi/128 * f * (2 * (63 - k) + 1)) = (-1)^f cos(pi/128 * f * (2k + 1)): frequency f = col + 1
_MIRROR_SIGN = np.where(np.arange(1, 17) % 2 == 1, -1.0, 1.0).astype(np.float32)


def luma_from_rgb(rgb: Any) -> Any:
    """(..., 64, 64, 3) uint8 RGB as PDQ's float32 luma."""
    out: Any = np.asarray(rgb, dtype=np.float32) @ _LUMA
    return out


def _bits(coeffs: Any) -> Any:
    flat = coeffs.reshape(coeffs.shape[0], 256)
    mid = np.partition(flat, (127, 128), axis=1)
    median = (mid[:, 127:128] + mid[:, 128:129]) / 2
    # pdqhash numbers bit k = 16 * row + column from the least significant end
    return np.packbits((flat > median)[:, ::-1], axis=1)


def _quality(luma: Any) -> Any:
    """PDQ's quality: the sum of int(|difference| * 100 / 255) over vertical
    and horizontal neighbours, / 90, capped at 100."""
    if luma.dtype == np.uint8:  # the usual case, in int16: 255 * 100 fits
        total = np.zeros(luma.shape[0], np.int64)
        for a, b in ((luma[:, :-1, :], luma[:, 1:, :]), (luma[:, :, :-1], luma[:, :, 1:])):
            d = np.subtract(a, b, dtype=np.int16)
            np.abs(d, out=d)
            d *= 100
            d //= 255
            total += d.sum(axis=(1, 2), dtype=np.int64)
        return np.minimum(total // 90, 100)
    if np.issubdtype(luma.dtype, np.integer):
        x = luma.astype(np.int64)
        dv = (np.abs(x[:, :-1, :] - x[:, 1:, :]) * 100 // 255).sum(axis=(1, 2))
        dh = (np.abs(x[:, :, :-1] - x[:, :, 1:]) * 100 // 255).sum(axis=(1, 2))
    else:
        f = luma.astype(np.float32)
        dv = np.trunc(np.abs(f[:, :-1, :] - f[:, 1:, :]) * 100 / 255).sum(axis=(1, 2))
        dh = np.trunc(np.abs(f[:, :, :-1] - f[:, :, 1:]) * 100 / 255).sum(axis=(1, 2))
    return np.minimum((dv + dh).astype(np.int64) // 90, 100)


def pdq_64(luma: Any, *, mirror: bool = False) -> tuple[Any, Any, Any]:
    """PDQ hashes and qualities of a batch of 64x64 luma images.

    ``luma``: (n, 64, 64), uint8 grey or float luma. Returns ((n, 32) uint8
    hashes, (n,) int qualities 0..100, and with ``mirror`` the (n, 32) hashes
    of the left-right mirror images, else None). A mirror has the same quality.
    """
    x = np.asarray(luma)
    if x.ndim != 3 or x.shape[1:] != (SIZE, SIZE):
        raise ValueError(f"expected (n, {SIZE}, {SIZE}) luma, got {x.shape}")
    if x.shape[0] == 0:
        empty = np.zeros((0, 32), np.uint8)
        return empty, np.zeros(0, np.int64), (empty if mirror else None)
    n = x.shape[0]
    coeffs = _DCT @ x.astype(np.float32) @ _DCT.T
    if not mirror:
        return _bits(coeffs), _quality(x), None
    both = _bits(np.concatenate([coeffs, coeffs * _MIRROR_SIGN]))  # one partition for both
    return both[:n], _quality(x), both[n:]
