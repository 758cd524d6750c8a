"""Transparency-log commands: audit, prove, verify-bundle (docs/transparency.md)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from node.config import CONFIG_NAME, load_config, write_atomic
from node.core.bundle import ProofBundle, verify_bundle
from node.core.checkpoint import Checkpoint, SignedNote
from node.core.tlog import WITNESS_KINDS, TlogPolicy
from node.core.trust import MembersFile
from node.errors import NotFoundError, ValidationError
from node.rpc.client import NodeClient

#: ``ccnode audit`` found at least one fault (see node/cli/__init__.py).
EXIT_AUDIT_FAULTS = 7


def register(sub: Any) -> None:
    p = sub.add_parser(
        "audit", help="re-verify a stopped node's data (or a backup) offline; name every fault"
    )
    p.add_argument("dir", type=Path, help="node directory, or an LMDB directory with --members")
    p.add_argument("--members", type=Path, help="members file (default: the node's)")
    p.add_argument(
        "--witness", action="append", default=None, help="witness member id (default: config)"
    )
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser("prove", help="write a self-contained proof bundle for one entry")
    p.add_argument("entry_id", help="entry id, hex")
    p.add_argument("dir", type=Path, nargs="?", help="node directory (address, members file)")
    p.add_argument("--to", help="node address host:port")
    p.add_argument("--members", type=Path, help="members file to embed (default: the node's)")
    p.add_argument("--out", type=Path, help="write here instead of stdout")
    p.set_defaults(func=cmd_prove)

    p = sub.add_parser("verify-bundle", help="check a proof bundle offline against a roster")
    p.add_argument("file", type=Path)
    p.add_argument("--roster", type=Path, required=True, help="members file (the roster) to trust")
    p.add_argument(
        "--witness",
        action="append",
        default=None,
        help="witness member id (default: every member of a witness kind but the origin)",
    )
    p.add_argument("--threshold", type=int, default=0, help="cosignatures required (default 0)")
    p.set_defaults(func=cmd_verify_bundle)


def _read(path: Path, what: str) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise ValidationError(f"cannot read {what} {path}: {exc.strerror}") from None


# -- audit --------------------------------------------------------------------------


def cmd_audit(args: argparse.Namespace) -> int:
    from node.store.audit import audit

    directory: Path = args.dir
    if (directory / CONFIG_NAME).exists():
        config = load_config(directory)
        data = config.data_dir
        members = (
            MembersFile.loads(_read(args.members, "members file"))
            if args.members
            else config.members()
        )
        witnesses = tuple(args.witness) if args.witness is not None else config.tlog.witnesses
        if config.addr_file.exists():
            print(
                f"ccnode: warning: {config.addr_file} exists: audit a stopped node or a copy",
                file=sys.stderr,
            )
    else:
        if args.members is None:
            raise ValidationError(f"{directory} is not a node directory: pass --members FILE")
        data = directory
        members = MembersFile.loads(_read(args.members, "members file"))
        witnesses = tuple(args.witness or ())
    keys = TlogPolicy(frozenset(witnesses)).witness_keys(members)
    report = audit(data, members, keys)
    for fault in report.faults:
        print(f"FAULT {fault}")
    print(report.summary())
    return EXIT_AUDIT_FAULTS if report.faults else 0


# -- prove / verify-bundle ------------------------------------------------------------


def _address(args: argparse.Namespace) -> str:
    if args.to:
        return str(args.to)
    if args.dir is None:
        raise ValidationError("give a node directory or --to HOST:PORT")
    config = load_config(args.dir)
    try:
        return config.addr_file.read_text().strip()
    except OSError:
        raise ValidationError(
            f"no running node for {args.dir} (no {config.addr_file.name}); pass --to"
        ) from None


def cmd_prove(args: argparse.Namespace) -> int:
    try:
        entry_id = bytes.fromhex(args.entry_id)
    except ValueError:
        raise ValidationError("ENTRY_ID must be hex") from None
    if args.members is not None:
        members_text = _read(args.members, "members file")
    elif args.dir is not None:
        config = load_config(args.dir)
        members_text = _read(config.dir / config.members_file, "members file")
    else:
        raise ValidationError("give a node directory, or --members FILE with --to")
    bundle = asyncio.run(_prove(_address(args), entry_id, members_text))
    members = MembersFile.loads(members_text)
    report = verify_bundle(bundle, members, _witness_keys(members, None, bundle))
    text = bundle.to_json()
    if args.out is not None:
        write_atomic(args.out, text)
        print(
            f"wrote {args.out}: {report.origin} seq {report.seq} in a checkpoint of size "
            f"{report.tree_size} cosigned by {len(report.cosigners)} witness(es)"
        )
    else:
        sys.stdout.write(text)
    return 0


async def _prove(address: str, entry_id: bytes, members_text: str) -> ProofBundle:
    async with NodeClient(address) as client:
        got = await client.get_entry(entry_id)
        origin, seq = got.provenance.origin, got.provenance.seq
        checkpoints = await client.get_checkpoint(origin)
        chosen = ""
        for text in (checkpoints.settled_checkpoint, checkpoints.checkpoint):
            if text and Checkpoint.parse(SignedNote.parse(text).body).size > seq:
                chosen = text
                break
        if not chosen:
            raise NotFoundError(
                f"no checkpoint of {origin} covers seq {seq} yet: try again once its "
                "node has signed one"
            )
        size = Checkpoint.parse(SignedNote.parse(chosen).body).size
        proof = await client.inclusion_proof(origin, seq, size)
    n = len(got.entry.body)
    raw = n.to_bytes(4, "big") + got.entry.body + got.entry.signature
    return ProofBundle(raw, chosen, tuple(proof), members_text)


def _witness_keys(
    members: MembersFile, witnesses: list[str] | None, bundle: ProofBundle
) -> dict[str, bytes]:
    if witnesses is None:
        origin = bundle.signed_entry.body.origin
        witnesses = [m.id for m in members.members() if m.kind in WITNESS_KINDS and m.id != origin]
    return TlogPolicy(frozenset(witnesses)).witness_keys(members) if witnesses else {}


def cmd_verify_bundle(args: argparse.Namespace) -> int:
    bundle = ProofBundle.from_json(_read(args.file, "bundle"))
    members = MembersFile.loads(_read(args.roster, "roster"))
    report = verify_bundle(
        bundle, members, _witness_keys(members, args.witness, bundle), args.threshold
    )
    print(
        f"OK: entry {report.entry_id.hex()} is {report.origin} seq {report.seq}, "
        f"signed by its origin and included in its log of size {report.tree_size}"
    )
    cosigners = ", ".join(report.cosigners) or "none"
    print(f"witness cosignatures: {len(report.cosigners)} ({cosigners})")
    if not report.members_match:
        print("note: the bundle's members data names other keys for the origin than the roster")
    return 0
