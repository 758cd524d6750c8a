"""Operations commands: backup, restore, config check."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, cast

from node.config import load_config


def register(sub: Any) -> None:
    p = sub.add_parser("backup", help="hot, consistent, compacted copy of a node's store")
    p.add_argument("dir", type=Path, help="node directory (the node may be running)")
    p.add_argument("out", type=Path, help="new or empty directory for the backup")
    p.set_defaults(func=cmd_backup)

    p = sub.add_parser("restore", help="install a backup as a (stopped) node's store")
    p.add_argument("backup", type=Path, help="a directory made by `ccnode backup`")
    p.add_argument("dir", type=Path, help="node directory (config and keys in place)")
    p.add_argument("--force", action="store_true", help="move an existing store aside")
    p.add_argument(
        "--any-member", action="store_true", help="allow a backup of another member's node"
    )
    p.set_defaults(func=cmd_restore)

    p = sub.add_parser("health", help="ask a node's gRPC health service; exit 0 if SERVING")
    p.add_argument("dir", type=Path, nargs="?")
    p.add_argument("--to", help="node address host:port")
    p.add_argument("--insecure", action="store_true", help="plaintext connection (dev only)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_health)

    p = sub.add_parser(
        "wait-ready",
        help="wait until DIR's node serves (health SERVING), and optionally until it "
        "holds everything another local node held when the wait began",
    )
    p.add_argument("dir", type=Path)
    p.add_argument("--timeout", type=float, default=30.0, help="seconds (default 30)")
    p.add_argument(
        "--caught-up-with",
        type=Path,
        metavar="OTHER_DIR",
        help="also wait until DIR's node holds every entry OTHER_DIR's running node holds now",
    )
    p.set_defaults(func=cmd_wait_ready)

    p = sub.add_parser("check-config", help="validate DIR/config.toml (and the environment)")
    p.add_argument("dir", type=Path)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_check_config)


def cmd_backup(args: argparse.Namespace) -> int:
    from node.backup import backup

    manifest = backup(load_config(args.dir), args.out)
    log = (
        f"; match log {manifest.matchlog_events} events, {manifest.matchlog_size:,} bytes"
        if manifest.matchlog_events >= 0
        else "; no match log"
    )
    print(
        f"backed up {manifest.node_id}: {manifest.entries} entries from "
        f"{len(manifest.heads)} origins, {manifest.size:,} bytes, sha256 {manifest.sha256[:16]}…"
        f"{log} to {args.out}"
    )
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from node.backup import restore

    manifest, moved = restore(
        args.backup, load_config(args.dir), force=args.force, any_member=args.any_member
    )
    if moved is not None:
        print(f"moved the previous store aside to {moved}")
    log = (
        f" and {manifest.matchlog_events} match-log events" if manifest.matchlog_events >= 0 else ""
    )
    print(
        f"restored {manifest.entries} entries{log} of {manifest.node_id} into {args.dir}; "
        "start the node and let it catch up from its peers before submitting"
    )
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    import os

    from node.config import apply_env

    config = apply_env(load_config(args.dir), os.environ)
    warnings = config.preflight()  # the checks `serve` runs at start-up
    if config.http_listen:
        from node.httpapi.keys import check_exposure

        check_exposure(config)  # an open HTTP API beyond loopback is refused
    path = args.dir / "config.toml"
    if args.json:
        doc = {
            "config": str(path),
            "ok": True,
            "id": config.id,
            "listen": config.listen,
            "metrics": config.metrics_listen or None,
            "http": config.http_listen or None,
            "peers": len(config.peers),
            "warnings": list(warnings),
        }
        print(json.dumps(doc, indent=2))
        return 0
    for warning in warnings:
        print(f"ccnode: warning: {warning}", file=sys.stderr)
    print(
        f"{path}: ok ({config.id}, listen {config.listen}, "
        f"metrics {config.metrics_listen or 'off'}, http {config.http_listen or 'off'}, "
        f"{len(config.peers)} peers)"
    )
    return 0


def cmd_health(args: argparse.Namespace) -> int:
    """For container HEALTHCHECKs and scripts: 0 SERVING, 1 otherwise, 3 unreachable."""
    from node.cli.node_cmds import _address
    from node.connect import credentials_for
    from node.errors import ValidationError

    address = _address(args)
    config = load_config(args.dir) if args.dir is not None else None
    if args.insecure:
        credentials = None
    elif config is not None:
        credentials = credentials_for(config)
    else:
        raise ValidationError(
            "--to without a member directory has no TLS identity: give the directory, "
            "or --insecure for a plaintext dev node"
        )
    serving, name = _health(address, credentials)
    if args.json:
        print(json.dumps({"address": address, "status": name}))
    else:
        print(f"{address}: {name}")
    return 0 if serving else 1


def _health(address: str, credentials: Any) -> tuple[bool, str]:
    """Ask a node's gRPC health service: (SERVING?, the status's name)."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from node.interop.feed import open_channel
    from node.rpc.client import error_from_rpc

    with open_channel(address, credentials) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=5
            )
        except grpc.RpcError as exc:
            raise error_from_rpc(cast(Any, exc), address, plaintext=credentials is None) from None
    name = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    return reply.status == health_pb2.HealthCheckResponse.SERVING, name


WAIT_POLL_S = 0.05


def cmd_wait_ready(args: argparse.Namespace) -> int:
    """For scripts (and the README's recipes): no `sleep`, no race.

    Polls until a process holds DIR's lock, has published its address and
    answers health SERVING; with --caught-up-with, then until its heads reach
    what OTHER_DIR's node held when the wait began. Exit 0, or 3 at the
    deadline naming what was still missing.
    """
    import time

    from node.connect import credentials_for
    from node.errors import PeerError, UnavailableError

    deadline = time.monotonic() + args.timeout
    config = load_config(args.dir)
    credentials = credentials_for(config)
    why = "no process serves it"
    while True:
        address = _served_address(config)
        if address is not None:
            try:
                serving, name = _health(address, credentials)
                why = f"health at {address} is {name}"
            except PeerError as exc:
                serving, why = False, str(exc)
            if serving:
                break
        if time.monotonic() > deadline:
            raise UnavailableError(f"{args.dir} not ready within {args.timeout:g}s: {why}")
        time.sleep(WAIT_POLL_S)
    if args.caught_up_with is None:
        print(f"{config.id} ready at {address}")
        return 0
    want = _heads(args.caught_up_with)
    while True:
        have = _heads(args.dir)
        missing = {o: n - have.get(o, 0) for o, n in want.items() if have.get(o, 0) < n}
        if not missing:
            break
        if time.monotonic() > deadline:
            lacks = ", ".join(f"{n} of {o}" for o, n in sorted(missing.items()))
            raise UnavailableError(
                f"{args.dir} has not caught up with {args.caught_up_with} within "
                f"{args.timeout:g}s: it lacks {lacks} entries"
            )
        time.sleep(WAIT_POLL_S)
    total = sum(want.values())
    print(f"{config.id} holds the {total} entries {args.caught_up_with} held")
    return 0


def _served_address(config: Any) -> str | None:
    from node.dirlock import running_address

    return running_address(config.dir, config.addr_file)


def _heads(directory: Path) -> dict[str, int]:
    """Next seq per origin at DIR's running node, asked as DIR's operator."""
    import asyncio

    from node.connect import client_for
    from node.errors import UnavailableError

    config = load_config(directory)
    address = _served_address(config)
    if address is None:
        raise UnavailableError(f"no running node for {directory}")

    async def go() -> dict[str, int]:
        async with client_for(config, address) as client:
            status = await client.status()
        return {h.origin: h.next_seq for h in status.heads}

    return asyncio.run(go())
