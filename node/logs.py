"""Logging set-up: human-readable lines by default, JSON lines on request.

Both formats go to stderr, one record per line. JSON lines carry ``ts``
(UTC, ISO 8601 with milliseconds), ``level``, ``logger``, ``msg``, any
``extra={...}`` fields a call site adds, and ``exc`` for tracebacks.

With JSON lines, what native code writes to stderr (gRPC's C core: its
"Handshake failed ..." lines, in absl's ``I1201 14:23:05.98 1234 file.cc:99]``
form) is routed too: :func:`capture_native_stderr` points fd 2 at a pipe and
re-logs each line through the logger ``grpc.native`` (its level from the
line's first letter; a failed TLS handshake, a peer that could not prove its
membership, as a warning with ``event: tls_handshake_failed``), so every line
a ``--log-json`` node writes is one JSON object.

No key material is ever logged: nothing in the package logs keys, and as a
second line of defence a filter on the handler replaces anything shaped like
a PEM private-key block with ``[redacted private key]`` before either
formatter sees it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import threading
import time
from typing import Any, TextIO

_PEM_PRIVATE = re.compile(
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)",
    re.DOTALL,
)
REDACTED = "[redacted private key]"

#: Attributes every LogRecord has; anything else came from ``extra=``.
_STANDARD = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys() | {"message", "asctime"}
)
HUMAN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def redact(text: str) -> str:
    return _PEM_PRIVATE.sub(REDACTED, text)


class RedactKeys(logging.Filter):
    """Render the message once, scrub private-key blocks, keep the record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message or record.args:
            record.msg, record.args = clean, ()
        if record.exc_info and not record.exc_text:
            # Formatters reuse a cached exc_text: fill it, scrubbed, first.
            record.exc_text = _PLAIN.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


_PLAIN = logging.Formatter()


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                doc[key] = value if isinstance(value, str | int | float | bool) else str(value)
        if record.exc_text:
            doc["exc"] = redact(record.exc_text)
        elif record.exc_info:
            doc["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(doc, ensure_ascii=False)


def setup_logging(
    level: str | int = "warning", *, json_lines: bool = False, stream: TextIO | None = None
) -> logging.Handler:
    """Configure the root logger (replacing earlier handlers); return the handler."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.addFilter(RedactKeys())
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter(HUMAN_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    # grpc's own logger is chatty at INFO; keep it to warnings unless debugging.
    logging.getLogger("grpc").setLevel(logging.DEBUG if root.level <= logging.DEBUG else "WARNING")
    return handler


def json_line(logger: str, level: int, msg: str) -> str:
    """One record as a JSON line, for output that bypasses logging (stdout)."""
    record = logging.LogRecord(logger, level, __file__, 0, msg, None, None)
    return JsonFormatter().format(record)


# absl's prefix, as gRPC's C core writes it: level letter, MMDD, time, thread,
# source file:line, then "] " and the message.
_NATIVE = re.compile(r"^([IWEF])\d{4} [\d:.]+\s+\d+ ([^\]\s]+)\] ?(.*)$")
_NATIVE_LEVELS = {
    "I": logging.INFO,
    "W": logging.WARNING,
    "E": logging.ERROR,
    "F": logging.CRITICAL,
}
NATIVE_LOGGER = "grpc.native"


def native_record(line: str) -> tuple[int, str, dict[str, str]]:
    """(level, message, extra fields) for one line native code wrote to stderr."""
    m = _NATIVE.match(line)
    if m is None:
        return logging.WARNING, line, {}
    letter, source, msg = m.groups()
    extra = {"source": source}
    level = _NATIVE_LEVELS[letter]
    if msg.startswith("Handshake failed"):
        level = max(level, logging.WARNING)
        extra["event"] = HANDSHAKE_EVENT
    return level, msg, extra


#: At most one "Handshake failed" line per this many seconds: one misconfigured
#: or revoked client retrying produced hundreds (issue 15); the line after a
#: quiet spell says how many were held back (``suppressed``).
HANDSHAKE_LOG_EVERY_S = 60.0
HANDSHAKE_EVENT = "tls_handshake_failed"


class RateLimit(logging.Filter):
    """Pass the first record of ``event``, then at most one per ``every_s``
    seconds; a passed record carries ``suppressed``, how many were held back
    since the last one. Records of other events pass untouched."""

    def __init__(self, event: str, every_s: float, clock: Any = time.monotonic) -> None:
        super().__init__()
        self.event, self.every_s, self._clock = event, every_s, clock
        self._last: float | None = None
        self._held = 0
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "event", None) != self.event:
            return True
        now = self._clock()
        with self._lock:
            if self._last is not None and now - self._last < self.every_s:
                self._held += 1
                return False
            record.suppressed = self._held
            if self._held:
                record.msg = (
                    f"{record.getMessage()} (and {self._held} more like it in the last "
                    f"{now - (self._last or now):.0f} s, not logged)"
                )
                record.args = ()
            self._last, self._held = now, 0
        return True


def capture_native_stderr() -> TextIO:
    """Point fd 2 at a pipe whose lines are re-logged as ``grpc.native``
    records; returns a stream on the real stderr for the log handler.

    A daemon thread reads the pipe (a line at a time; it never blocks the
    event loop). Python's own writes to ``sys.stderr`` go through the pipe
    too, so nothing reaches the real stderr except formatted records.
    """
    real = os.fdopen(os.dup(2), "w", buffering=1, encoding="utf-8", errors="replace")
    read_fd, write_fd = os.pipe()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    native = logging.getLogger(NATIVE_LOGGER)
    native.addFilter(RateLimit(HANDSHAKE_EVENT, HANDSHAKE_LOG_EVERY_S))

    def pump() -> None:
        with os.fdopen(read_fd, "r", encoding="utf-8", errors="replace") as pipe:
            for raw in pipe:
                line = raw.rstrip("\n")
                if line.strip():
                    level, msg, extra = native_record(line)
                    native.log(level, "%s", msg, extra=extra)

    threading.Thread(target=pump, name="native-stderr", daemon=True).start()
    return real
