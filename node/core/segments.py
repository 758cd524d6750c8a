"""Framing checks shared by the segment encodings (VPDQ, CHROMAPRINT): a
count of fixed-size items after a header, capped, with nothing missing and
nothing after them."""

from __future__ import annotations

from node.errors import ValidationError


def check_items(
    what: str, items: str, one: str, *, count: int, cap: int, body: int, size: int
) -> None:
    """``body`` bytes after the header must be exactly ``count`` items of
    ``size`` bytes, ``1 <= count <= cap``. ``what``: "vPDQ segment";
    ``items``/``one``: "frames"/"frame" (for the messages)."""
    if not 1 <= count <= cap:
        raise ValidationError(f"{what} has {count} {items}: expected 1..{cap}")
    if body < count * size:
        whole, part = divmod(body, size)
        raise ValidationError(
            f"{what} is truncated: {count} {items} declared, {whole} present"
            + (f" and {part} bytes of a truncated {one}" if part else "")
        )
    if body > count * size:
        raise ValidationError(
            f"{what} has {body - count * size} trailing bytes after {count} {items}"
        )
