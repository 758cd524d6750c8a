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


from hypothesis import settings  # noqa: E402

# Shared 2-core machines: judge properties by examples, never by wall time.
settings.register_profile("default", deadline=None)
settings.load_profile("default")
