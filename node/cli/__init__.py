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
PeerError (node down)  3
NotFoundError          4
ConflictError          5
OrderingError          6
=====================  ====
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from node.errors import (
    ConflictError,
    NodeError,
    NotFoundError,
    OrderingError,
    PeerError,
    ValidationError,
)

EXIT_CODES: tuple[tuple[type[NodeError], int], ...] = (
    (ValidationError, 2),
    (PeerError, 3),
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
    from node.cli import demo, node_cmds, policy_cmds, report_cmds

    parser = argparse.ArgumentParser(
        prog="ccnode",
        description="A consortium hash-sharing node: signed hashes, verified provenance.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    node_cmds.register(sub)
    demo.register(sub)
    policy_cmds.register(sub)
    report_cmds.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        code: int = args.func(args)
    except NodeError as exc:
        print(f"ccnode: error: {exc}", file=sys.stderr)
        return exit_code(exc)
    except KeyboardInterrupt:
        print("ccnode: interrupted", file=sys.stderr)
        return 130
    return code


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
