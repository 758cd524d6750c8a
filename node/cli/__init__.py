"""The ``ccnode`` command line: ``main(argv) -> int``.

Exit codes (the one table; messages are one line, no tracebacks):

=====================  ====
outcome                code
=====================  ====
success                0
StorageError, other    1
ValidationError (incl.
ProvenanceError), bad
usage                  2
PeerError (node down),
UnavailableError       3
NotFoundError          4
ConflictError          5
OrderingError          6
audit found faults     7
import: bad rows (the
rest imported)         8
stdout's reader gone
(``status | head``)    141
=====================  ====
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from node.errors import (
    ConflictError,
    NodeError,
    NotFoundError,
    OrderingError,
    PeerError,
    UnavailableError,
    ValidationError,
)

EXIT_CODES: tuple[tuple[type[NodeError], int], ...] = (
    (ValidationError, 2),
    (PeerError, 3),
    (UnavailableError, 3),
    (NotFoundError, 4),
    (ConflictError, 5),
    (OrderingError, 6),
)


def exit_code(exc: NodeError) -> int:
    for cls, code in EXIT_CODES:
        if isinstance(exc, cls):
            return code
    return 1


def build_parser() -> argparse.ArgumentParser:
    from node.cli import (
        demo,
        http_cmds,
        interop_cmds,
        media_cmds,
        node_cmds,
        ops_cmds,
        policy_cmds,
        report_cmds,
        roster_cmds,
        tlog_cmds,
        watch_cmds,
    )

    parser = argparse.ArgumentParser(
        prog="ccnode",
        description="A consortium hash-sharing node: signed hashes, verified provenance.",
    )
    from node import __version__

    parser.add_argument("--version", action="version", version=f"ccnode {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    parser.add_argument(
        "--log-json", action="store_true", help="log JSON lines (default: human-readable)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    node_cmds.register(sub)
    demo.register(sub)
    ops_cmds.register(sub)
    interop_cmds.register(sub)
    media_cmds.register(sub)
    tlog_cmds.register(sub)
    policy_cmds.register(sub)
    report_cmds.register(sub)
    roster_cmds.register(sub)
    watch_cmds.register(sub)
    http_cmds.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from node.config import TRUE_WORDS
    from node.logs import setup_logging

    setup_logging(
        logging.INFO if args.verbose else logging.WARNING,
        json_lines=args.log_json or os.environ.get("CCNODE_LOG_JSON", "").lower() in TRUE_WORDS,
    )
    try:
        code: int = args.func(args)
    except NodeError as exc:
        print(f"ccnode: error: {exc}", file=sys.stderr)
        return exit_code(exc)
    except KeyboardInterrupt:
        print("ccnode: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return _reader_went_away()
    return code


def _reader_went_away() -> int:
    """stdout's reader closed early (``ccnode status | head``): stop quietly.

    Python would report the failed flush at exit; pointing stdout at
    /dev/null first lets it exit without a traceback (the recipe from the
    ``signal`` module's documentation). Exit 141 as a shell does (128 + SIGPIPE).
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 141


def run() -> None:
    """Console-script entry point."""
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        code = _reader_went_away()
    sys.exit(code)
