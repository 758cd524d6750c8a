from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import settings

from tests.helpers import LoopThread

# Shared 2-core machines: judge properties by examples, never by wall time.
settings.register_profile("default", deadline=None)
settings.load_profile("default")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--long", action="store_true", help="run the long versions of crash and soak tests"
    )


@pytest.fixture
def long_run(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--long"))


@pytest.fixture
def loop() -> Iterator[LoopThread]:
    lt = LoopThread()
    try:
        yield lt
    finally:
        lt.close()
