from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers import LoopThread


@pytest.fixture
def loop() -> Iterator[LoopThread]:
    lt = LoopThread()
    try:
        yield lt
    finally:
        lt.close()
