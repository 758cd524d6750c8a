"""Logging formats and key redaction; progress lines and bars."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from node.logs import REDACTED, setup_logging
from node.progress import Progress
from tests.helpers import signer_for


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in handlers:
        root.addHandler(h)
    root.setLevel(level)


def _pem() -> str:
    key = signer_for("gov.example/ct").private_key
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()


def test_json_lines_carry_fields_and_extras(restore_logging: None) -> None:
    out = io.StringIO()
    setup_logging("info", json_lines=True, stream=out)
    logging.getLogger("node.test").info("peer %s lagging", "p.example", extra={"lag": 3})
    logging.getLogger("node.test").debug("hidden at info")
    (line,) = out.getvalue().splitlines()
    doc = json.loads(line)
    assert doc["level"] == "info"
    assert doc["logger"] == "node.test"
    assert doc["msg"] == "peer p.example lagging"
    assert doc["lag"] == 3
    assert doc["ts"].endswith("Z") and "T" in doc["ts"]


def test_human_lines_by_default(restore_logging: None) -> None:
    out = io.StringIO()
    setup_logging("warning", stream=out)
    logging.getLogger("node.test").warning("map full")
    assert out.getvalue().rstrip().endswith("WARNING node.test: map full")


@pytest.mark.parametrize("json_lines", [False, True])
def test_private_keys_never_reach_the_log(restore_logging: None, json_lines: bool) -> None:
    pem = _pem()
    body = pem.splitlines()[1]
    out = io.StringIO()
    setup_logging("debug", json_lines=json_lines, stream=out)
    log = logging.getLogger("node.test")
    log.error("loaded %s", pem)
    log.error("inline " + pem)
    try:
        raise ValueError(pem)
    except ValueError:
        log.exception("failed")
    text = out.getvalue()
    assert body not in text
    assert "PRIVATE KEY" not in text
    assert text.count(REDACTED) >= 3


def test_cli_log_json_flag(restore_logging: None, capsys: pytest.CaptureFixture[str]) -> None:
    from node.cli import main

    # -v makes the CLI log at INFO; a status call to a dead port logs nothing
    # itself, so log one line through the configured root handler.
    assert main(["--log-json", "-v", "labels"]) == 0
    logging.getLogger("node.test").info("hello")
    err = capsys.readouterr().err.strip().splitlines()
    assert json.loads(err[-1])["msg"] == "hello"


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_progress_lines_when_not_a_tty() -> None:
    out = io.StringIO()
    clock = FakeClock()
    with Progress("import", 1000, stream=out, interval=2.0, unit="entries", clock=clock) as p:
        p.advance(100)  # within the interval: silent
        clock.now += 2.5
        p.advance(400)
        clock.now += 0.5
        p.advance(500)
    lines = out.getvalue().splitlines()
    assert lines == [
        "import: 500/1,000 entries (50%), 2.5s, 200 entries/s",
        "import: 1,000/1,000 entries (100%), 3.0s, 333 entries/s",
    ]


def test_progress_bar_on_a_tty() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Tty()
    clock = FakeClock()
    with Progress("export", 4, stream=out, clock=clock) as p:
        clock.now += 1
        p.advance(2)
    text = out.getvalue()
    assert "\rexport [" + "#" * 15 + "-" * 15 + "] 2/4 items" in text
    assert text.endswith("\n")


def test_progress_without_total_counts() -> None:
    out = io.StringIO()
    with Progress("catch-up", None, stream=out, clock=FakeClock()) as p:
        p.advance(7)
    assert out.getvalue().startswith("catch-up: 7 items, 0.0s")
