"""Transparency-log commands: audit, prove, verify-bundle (docs/transparency.md)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from node.cli.node_cmds import connect, resolve_entry_id
from node.cli.roster_cmds import load_roster, roster_to_trust
from node.config import CONFIG_NAME, load_config, write_atomic
from node.core.bundle import ProofBundle, verify_bundle
from node.core.checkpoint import Checkpoint, SignedNote
from node.core.entry import check_id_text
from node.core.roster import Roster, dumps_file
from node.core.tlog import TlogPolicy, is_witness, roster_policy
from node.core.trust import MembersFile
from node.errors import NotFoundError, ValidationError

#: ``ccnode audit`` found at least one fault (see node/cli/__init__.py).
EXIT_AUDIT_FAULTS = 7


def register(sub: Any) -> None:
    p = sub.add_parser(
        "audit", help="re-verify a stopped node's data (or a backup) offline; name every fault"
    )
    p.add_argument("dir", type=Path, help="node directory, or an LMDB directory with --roster")
    p.add_argument("--roster", type=Path, help="roster file (default: the node's)")
    p.add_argument(
        "--witness",
        action="append",
        default=None,
        help="witness member id (default: the roster's witnesses)",
    )
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser("prove", help="write a self-contained proof bundle for one entry")
    p.add_argument("entry_id", help="entry id, hex (or a unique prefix of 8+ digits)")
    p.add_argument("dir", type=Path, nargs="?", help="node directory (address, roster)")
    p.add_argument("--to", help="node address host:port")
    p.add_argument("--insecure", action="store_true", help="plaintext connection (dev only)")
    p.add_argument("--roster", type=Path, help="roster file to embed (default: the node's)")
    p.add_argument("--out", type=Path, help="write here instead of stdout")
    p.set_defaults(func=cmd_prove)

    p = sub.add_parser("verify-bundle", help="check a proof bundle offline against a roster")
    p.add_argument("file", type=Path)
    p.add_argument("--roster", type=Path, required=True, help="the roster file to trust")
    p.add_argument(
        "--witness",
        action="append",
        default=None,
        help="witness member id (default: every WITNESS member of the roster but the origin)",
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
        roster = roster_to_trust(args.roster if args.roster is not None else directory)
        from node.dirlock import running

        pid = running(directory)
        if pid is not None:
            print(
                f"ccnode: warning: a node (process {pid}) is serving {directory}: "
                "audit a stopped node or a copy",
                file=sys.stderr,
            )
    else:
        if args.roster is None:
            raise ValidationError(f"{directory} is not a node directory: pass --roster FILE")
        data = directory
        roster = roster_to_trust(args.roster)
    members = MembersFile.of(list(roster.members))
    witnesses = args.witness if args.witness is not None else roster_policy(roster).witnesses
    keys = TlogPolicy(frozenset(witnesses)).witness_keys(members)
    report = audit(data, members, keys)
    for fault in report.faults:
        print(f"FAULT {fault}")
    print(report.summary())
    return EXIT_AUDIT_FAULTS if report.faults else 0


# -- prove / verify-bundle ------------------------------------------------------------


def cmd_prove(args: argparse.Namespace) -> int:
    entry_id = check_id_text(args.entry_id)
    if args.roster is None and args.dir is None:
        raise ValidationError("give a node directory, or --roster FILE with --to")
    where = args.roster if args.roster is not None else args.dir
    roster = roster_to_trust(where)
    roster_text = dumps_file(load_roster(where))
    bundle = asyncio.run(_prove(args, entry_id, roster_text))
    members = MembersFile.of(list(roster.members))
    report = verify_bundle(bundle, members, _witness_keys(roster, None, bundle))
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


async def _prove(args: argparse.Namespace, entry_id: str, roster_text: str) -> ProofBundle:
    async with connect(args) as client:
        got = await client.get_entry(await resolve_entry_id(client, entry_id))
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
        newest, newest_size = checkpoints.checkpoint, 0
        if newest:
            newest_size = Checkpoint.parse(SignedNote.parse(newest).body).size
        consistency: tuple[bytes, ...] = ()
        why = ""
        if newest_size > size:
            consistency = tuple(await client.consistency_proof(origin, size, newest_size))
        else:
            newest = ""
            why = f"the bundle's checkpoint (size {size}) is the newest the node held"
    n = len(got.entry.body)
    raw = n.to_bytes(4, "big") + got.entry.body + got.entry.signature
    return ProofBundle(raw, chosen, tuple(proof), roster_text, newest, consistency, why)


def _witness_keys(
    roster: Roster, witnesses: list[str] | None, bundle: ProofBundle
) -> dict[str, bytes]:
    if witnesses is None:
        origin = bundle.signed_entry.body.origin
        witnesses = [m.id for m in roster.members if is_witness(m) and m.id != origin]
    members = MembersFile.of(list(roster.members))
    return TlogPolicy(frozenset(witnesses)).witness_keys(members) if witnesses else {}


def cmd_verify_bundle(args: argparse.Namespace) -> int:
    bundle = ProofBundle.from_json(_read(args.file, "bundle"))
    roster = roster_to_trust(args.roster)
    members = MembersFile.of(list(roster.members))
    report = verify_bundle(
        bundle, members, _witness_keys(roster, args.witness, bundle), args.threshold
    )
    print(
        f"OK: entry {report.entry_id.hex()} is {report.origin} seq {report.seq}, "
        f"signed by its origin and included in its log of size {report.tree_size}"
    )
    cosigners = ", ".join(report.cosigners) or "none"
    print(f"witness cosignatures: {len(report.cosigners)} ({cosigners})")
    if report.newest_size:
        print(
            f"consistent with the newest checkpoint in the bundle (size {report.newest_size}): "
            "the log did not fork in between"
        )
    else:
        print(f"no consistency proof: {report.consistency}")
    if not report.members_match:
        print("note: the bundle's roster names other keys for the origin than yours")
    return 0
