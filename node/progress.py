"""Progress for long work (import, export, index build, audit, catch-up).

On a terminal it draws one bar that redraws in place; otherwise (logs, CI,
pipes) it writes a plain progress line every ``interval`` seconds and a last
one when the work ends, so a long job is never silent and never floods::

    with Progress("import", total=len(rows)) as progress:
        for batch in batches:
            ...
            progress.advance(len(batch))

``total`` may be None when unknown (a count is shown instead of a percent).
Progress goes to stderr so stdout stays clean for data.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import TextIO

BAR_WIDTH = 30
DEFAULT_INTERVAL_S = 2.0


class Progress:
    def __init__(
        self,
        what: str,
        total: int | None = None,
        *,
        stream: TextIO | None = None,
        interval: float = DEFAULT_INTERVAL_S,
        unit: str = "items",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what = what
        self.total = total
        self.done = 0
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval
        self._clock = clock
        self._started = clock()
        self._last_line = self._started
        isatty = getattr(self.stream, "isatty", None)
        self.tty = bool(isatty and isatty())

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = self._clock()
        if self.tty:
            self._draw(now)
        elif now - self._last_line >= self.interval:
            self._line(now)

    def finish(self) -> None:
        now = self._clock()
        if self.tty:
            self._draw(now)
            self.stream.write("\n")
        else:
            self._line(now)
        self.stream.flush()

    def _rate(self, now: float) -> str:
        elapsed = max(now - self._started, 1e-9)
        return f"{self.done / elapsed:,.0f} {self.unit}/s"

    def _line(self, now: float) -> None:
        self._last_line = now
        if self.total:
            pct = 100 * self.done / self.total
            count = f"{self.done:,}/{self.total:,} {self.unit} ({pct:.0f}%)"
        else:
            count = f"{self.done:,} {self.unit}"
        elapsed = now - self._started
        self.stream.write(f"{self.what}: {count}, {elapsed:.1f}s, {self._rate(now)}\n")
        self.stream.flush()

    def _draw(self, now: float) -> None:
        if self.total:
            filled = min(BAR_WIDTH, BAR_WIDTH * self.done // max(self.total, 1))
            bar = "#" * filled + "-" * (BAR_WIDTH - filled)
            text = f"{self.what} [{bar}] {self.done:,}/{self.total:,} {self.unit}"
        else:
            text = f"{self.what}: {self.done:,} {self.unit}"
        self.stream.write(f"\r{text}  {self._rate(now)}\x1b[K")
        self.stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.finish()
