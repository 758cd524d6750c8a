"""Operations commands: backup, restore, config check."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

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
    config.members()
    config.signer()
    config.checkpoint_key()
    if not config.insecure:
        config.tls_identity()
    path = args.dir / "config.toml"
    if args.json:
        doc = {
            "config": str(path),
            "ok": True,
            "id": config.id,
            "listen": config.listen,
            "metrics": config.metrics_listen or None,
            "peers": len(config.peers),
        }
        print(json.dumps(doc, indent=2))
        return 0
    print(
        f"{path}: ok ({config.id}, listen {config.listen}, "
        f"metrics {config.metrics_listen or 'off'}, {len(config.peers)} peers)"
    )
    return 0


def cmd_health(args: argparse.Namespace) -> int:
    """For container HEALTHCHECKs and scripts: 0 SERVING, 1 otherwise, 3 unreachable."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from node.cli.node_cmds import _address
    from node.connect import credentials_for
    from node.errors import PeerError, ValidationError
    from node.interop.feed import open_channel

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
    with open_channel(address, credentials) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=5
            )
        except grpc.RpcError as exc:
            raise PeerError(f"node at {address}: {exc.code().name}") from None
    name = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    if args.json:
        print(json.dumps({"address": address, "status": name}))
    else:
        print(f"{address}: {name}")
    return 0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1
