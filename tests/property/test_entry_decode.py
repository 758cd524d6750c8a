"""Decoding never raises anything but ValidationError, whatever the bytes."""

from __future__ import annotations

import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st

from node.core.entry import EntryBody
from node.errors import ValidationError
from tests.helpers import Origin

VALID = Origin("platform.example").next().body_bytes


@settings(max_examples=300)
@given(st.integers(0, len(VALID) - 1), st.binary(max_size=8))
def test_truncated_or_spliced_bodies_raise_validation_error_only(cut: int, junk: bytes) -> None:
    for data in (VALID[:cut], VALID[:cut] + junk, VALID + junk if junk else b"x"):
        with contextlib.suppress(ValidationError):
            EntryBody.decode(data)


@given(st.binary(max_size=400))
def test_random_bytes_raise_validation_error_only(data: bytes) -> None:
    with contextlib.suppress(ValidationError):
        EntryBody.decode(b"CCE1\x01" + data)
