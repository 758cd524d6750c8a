"""``ccnode roster``: draft, sign, verify, show and publish the roster.

A roster file (JSON: the exact body bytes in base64 and the signatures) is
edited by the drafting commands (init, add-member, set-role, rotate-key,
revoke-key, remove-member, resolve-fork). Editing a roster that its own governance
threshold has signed starts the next version (chained to it, signatures
cleared); editing an unfinished draft keeps its version and drops its
signatures, because they no longer cover the body.

k-of-n signing with separate key holders: each holder runs
``ccnode roster sign FILE --key THEIR_KEY`` on a copy of the same draft;
``ccnode roster sign FILE --merge COPY...`` gathers the signatures (the
bodies must be byte-identical). ``verify`` checks a roster as a trust
anchor, or with ``--prev`` as the successor of the previous version.
``publish`` hands it to a node: over ``OfferRoster`` if the node runs, else
into its directory, where the node adopts it at start if it chains.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from node.config import load_config, load_signer, new_key, write_atomic
from node.core import tlscert
from node.core.roster import (
    ENTRY_ROLES,
    EntryKey,
    ForkResolution,
    Member,
    MemberKind,
    Role,
    Roster,
    SignedRoster,
    TrustedRoster,
    check_threshold,
    default_roles,
    dumps_file,
    loads_file,
    member_from_json,
    raw_public_key,
    roles_text,
    roster_to_json,
    short,
    verify_anchor,
    when,
)
from node.core.tlog import checkpoint_vkey
from node.errors import NodeError, NotFoundError, ValidationError

DAY_MS = 86_400_000


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def register(sub: Any) -> None:
    p = sub.add_parser("roster", help="draft, sign, verify, show and publish the roster")
    rs = p.add_subparsers(dest="roster_cmd", required=True, metavar="ROSTER_COMMAND")

    q = rs.add_parser("keygen", help="make a governance key, or with --entry an entry key")
    q.add_argument("key", type=Path)
    q.add_argument(
        "--entry",
        action="store_true",
        help="a member's new entry key, for `roster rotate-key --entry-key` (Ed25519, 0600)",
    )
    q.set_defaults(func=cmd_keygen)

    q = rs.add_parser("init", help="draft version 1 of a new consortium's roster")
    q.add_argument("file", type=Path)
    q.add_argument(
        "--governance",
        action="append",
        required=True,
        help="governance public key: 64 hex digits or a PEM key file (repeat)",
    )
    q.add_argument("--threshold", type=int, required=True, help="k: signatures needed")
    q.add_argument("--witness-threshold", type=int, default=0)
    q.add_argument("--member", action="append", default=[], type=Path, help="member card")
    q.add_argument("--expires-days", type=float, default=365.0)
    q.add_argument("--force", action="store_true", help="overwrite FILE")
    q.set_defaults(func=cmd_init)

    q = _edit_parser(rs, "add-member", "add a member from its card (or fields)")
    q.add_argument("--card", type=Path, help="member.json written by `ccnode init`")
    q.add_argument("--id")
    q.add_argument("--kind", choices=[k.value for k in MemberKind])
    q.add_argument("--jurisdiction")
    q.add_argument("--entry-key", help="raw Ed25519 public key, hex")
    q.add_argument("--checkpoint-key", default="", help="raw Ed25519 public key, hex")
    q.add_argument("--tls-cert", type=Path, help="the member's TLS certificate (PEM)")
    q.add_argument("--address", help="where its node listens, host:port")
    q.add_argument("--name", help="display name")
    q.add_argument("--roles", help="comma-separated: submit,endorse,witness,read")
    q.set_defaults(func=cmd_add_member)

    q = _edit_parser(rs, "set-role", "set a member's roles (or the thresholds)")
    q.add_argument("--id", help="member id")
    q.add_argument("--roles", help="comma-separated: submit,endorse,witness,read")
    q.add_argument(
        "--until-seq",
        type=int,
        help="removed roles still cover the member's entries up to this seq",
    )
    q.add_argument(
        "--whole-log",
        action="store_true",
        help="removed roles cover none of its entries, even stored ones (nodes that lack "
        "them then refuse them)",
    )
    q.add_argument("--witness-threshold", type=int)
    q.set_defaults(func=cmd_set_role)

    q = _edit_parser(rs, "rotate-key", "add a member key or replace the governance keys")
    q.add_argument("--id", help="member id")
    q.add_argument(
        "--entry-key", help="new entry public key: hex or a key file (`roster keygen --entry`)"
    )
    q.add_argument("--retire", help="old entry key (hex or key file) to cut off, with --until-seq")
    q.add_argument("--until-seq", type=int, help="last seq the retired key may sign")
    q.add_argument("--checkpoint-key", help="new checkpoint public key, hex")
    q.add_argument("--tls-cert", type=Path, help="new TLS certificate (PEM)")
    q.add_argument("--address", help="new node address")
    q.add_argument("--governance", action="append", help="new governance key set (repeat)")
    q.add_argument("--threshold", type=int, help="new governance threshold")
    q.set_defaults(func=cmd_rotate_key)

    q = _edit_parser(rs, "revoke-key", "cut off or remove a member's entry key")
    q.add_argument("--id", required=True)
    q.add_argument("--key", required=True, help="entry public key, hex")
    q.add_argument(
        "--until-seq",
        type=int,
        help="entries up to this seq stay valid; without it the key is removed",
    )
    q.set_defaults(func=cmd_revoke_key)

    q = _edit_parser(rs, "remove-member", "revoke a member: no new entries, old ones flagged")
    q.add_argument("--id", required=True)
    q.add_argument("--until-seq", type=int, help="its entries up to this seq stay valid")
    q.add_argument(
        "--refuse-unstored",
        action="store_true",
        help="no cut-off (its key may be compromised): nodes that lack its entries refuse them",
    )
    q.set_defaults(func=cmd_remove_member)

    q = _edit_parser(rs, "resolve-fork", "name the canonical history of a forked member's log")
    q.add_argument("--id", required=True, help="the member whose log forked")
    q.add_argument("--size", type=int, help="canonical tree size (at least the fork point)")
    q.add_argument("--root", help="canonical root at that size: 64 hex digits or base64")
    q.add_argument("--drop", action="store_true", help="remove its resolution from the draft")
    q.set_defaults(func=cmd_resolve_fork)

    q = rs.add_parser("sign", help="add your signature, and/or merge other copies' signatures")
    q.add_argument("file", type=Path)
    q.add_argument("--key", action="append", default=[], type=Path, help="governance key file")
    q.add_argument("--merge", action="append", default=[], type=Path, help="signed copy")
    q.add_argument("--out", type=Path, help="write here instead of FILE")
    q.set_defaults(func=cmd_sign)

    q = rs.add_parser("verify", help="check signatures, chain and expiry")
    q.add_argument("file", type=Path)
    q.add_argument("--prev", type=Path, help="the previous version (file or node directory)")
    q.set_defaults(func=cmd_verify)

    q = rs.add_parser("show", help="print a roster (file or node directory)")
    q.add_argument("file", type=Path)
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_show)

    q = rs.add_parser("publish", help="give a signed roster to a node (running or not)")
    q.add_argument("file", type=Path)
    q.add_argument("dir", type=Path, help="the member directory (node or key-only)")
    q.add_argument("--to", help="offer it to the node at this address, as DIR's member")
    q.set_defaults(func=cmd_publish)


def _edit_parser(rs: Any, name: str, help_text: str) -> Any:
    q = rs.add_parser(name, help=help_text)
    q.add_argument("file", type=Path)
    q.add_argument("--out", type=Path, help="write the draft here instead of FILE")
    q.add_argument(
        "--expires-days",
        type=float,
        help="expiry from now (default 365 when starting a new version)",
    )
    return q


# -- files and keys -------------------------------------------------------------


def load_roster(path: Path) -> SignedRoster:
    """A roster file, or a member directory's roster file."""
    if path.is_dir():
        signed = load_config(path).signed_roster()
        if signed is None:
            raise NotFoundError(f"no roster in {path}")
        return signed
    try:
        text = path.read_text()
    except OSError as exc:
        raise ValidationError(f"cannot read roster file {path}: {exc.strerror}") from None
    try:
        return loads_file(text)
    except ValidationError as exc:
        raise ValidationError(f"{path}: {exc}") from None


def roster_to_trust(path: Path) -> Roster:
    """A roster file (or a member directory's) to check data against offline:
    signed by its own governance threshold; it may have expired since (old
    data is checked against the roster of its day)."""
    signed = load_roster(path)
    try:
        check_threshold(signed, signed.roster)
    except NodeError as exc:
        raise type(exc)(f"{path}: {exc}") from None
    return signed.roster


def _save(path: Path, signed: SignedRoster) -> None:
    write_atomic(path, dumps_file(signed))


def _public_key(text: str, what: str = "") -> bytes:
    """A public key given as hex, or as a PEM file (private or public)."""
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) == 32:
        return raw
    path = Path(text)
    if not path.is_file():
        if what:
            raise ValidationError(
                f"{what}: expected 64 hex digits (a raw Ed25519 public key) or a PEM key file"
            )
        raise ValidationError(f"key {text!r}: expected 64 hex digits or a PEM key file")
    data = path.read_bytes()
    if b"PRIVATE KEY" in data:
        return raw_public_key(load_signer(path).public_key)
    try:
        key = load_pem_public_key(data)
    except ValueError:
        raise ValidationError(f"{path} is not a PEM key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ValidationError(f"{path} is not an Ed25519 key")
    return raw_public_key(key)


def _hex_key(text: str, what: str) -> bytes:
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise ValidationError(f"{what}: expected 64 hex digits (a raw Ed25519 public key)")
    return raw


def _cert(path: Path) -> bytes:
    try:
        return tlscert.pem_to_der(path.read_bytes())
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc.strerror}") from None


def _member(roster: Roster, member_id: str | None) -> Member:
    if not member_id:
        raise ValidationError("--id is required")
    member = roster.get(member_id)
    if member is None:
        raise NotFoundError(f"member {member_id} is not in roster version {roster.version}")
    return member


# -- drafting -----------------------------------------------------------------


def cmd_keygen(args: argparse.Namespace) -> int:
    if args.key.exists():
        raise ValidationError(f"{args.key} exists: not overwriting a key")
    signer = new_key(args.key)
    public = raw_public_key(signer.public_key)
    what = "entry" if args.entry else "governance"
    print(f"{what} key {args.key}: public key {public.hex()} (shown as {short(public)})")
    if args.entry:
        print(
            f"next: `ccnode roster rotate-key ROSTER --id MEMBER --entry-key {args.key}`, "
            "sign and publish the roster, then point the member's key_file at this key"
        )
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    if args.file.exists() and not args.force:
        raise ValidationError(f"{args.file} exists (use --force to overwrite)")
    members = []
    for card in args.member:
        members.append(member_from_json(_read_json(card), where=str(card)))
    roster = Roster(
        version=1,
        expires_ms=now_ms() + int(args.expires_days * DAY_MS),
        governance_keys=tuple(_public_key(g) for g in args.governance),
        governance_threshold=args.threshold,
        members=tuple(members),
        witness_threshold=args.witness_threshold,
    )
    _save(args.file, SignedRoster.draft(roster))
    print(f"draft roster version 1 in {args.file}: {_summary(roster)}")
    print(f"next: each governance key holder runs `ccnode roster sign {args.file} --key KEY`")
    return 0


def _read_json(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc.strerror}") from None
    except ValueError:
        raise ValidationError(f"{path} is not JSON") from None
    if not isinstance(doc, dict):
        raise ValidationError(f"{path}: expected a JSON object")
    return doc


def _edit(args: argparse.Namespace, change: Callable[[Roster], tuple[Roster, str]]) -> int:
    signed = load_roster(args.file)
    roster = signed.roster
    notes = []
    r0 = signed.version
    complete = len(signed.valid_signers(roster.governance_keys)) >= roster.governance_threshold
    if complete:
        days = 365.0 if args.expires_days is None else args.expires_days
        roster = roster.next_draft(now_ms() + int(days * DAY_MS))
        notes.append(f"started draft version {roster.version} after signed version {r0}")
    else:
        if args.expires_days is not None:
            roster = dataclasses.replace(
                roster, expires_ms=now_ms() + int(args.expires_days * DAY_MS)
            )
        if signed.signatures:
            notes.append(f"dropped {len(signed.signatures)} signature(s): the draft changed")
    roster, what = change(roster)
    out = args.out or args.file
    _save(out, SignedRoster.draft(roster))
    for note in notes:
        print(note)
    print(f"draft roster version {roster.version} in {out}: {what}")
    print(f"next: sign it (`ccnode roster sign {out} --key KEY`), by the threshold of the")
    print("previous version's governance keys and of its own")
    return 0


def cmd_add_member(args: argparse.Namespace) -> int:
    if args.card is not None:
        member = member_from_json(_read_json(args.card), where=str(args.card))
    else:
        if not (args.id and args.kind and args.jurisdiction and args.entry_key):
            raise ValidationError(
                "add-member needs --card CARD, or --id, --kind, --jurisdiction and --entry-key"
            )
        kind = MemberKind.parse(args.kind)
        member = Member(
            id=args.id,
            kind=kind,
            jurisdiction=args.jurisdiction,
            entry_keys=(EntryKey(_hex_key(args.entry_key, "--entry-key")),),
            roles=default_roles(kind),
            checkpoint_key=_hex_key(args.checkpoint_key, "--checkpoint-key")
            if args.checkpoint_key
            else b"",
            tls_cert=_cert(args.tls_cert) if args.tls_cert else b"",
        )
    changes: dict[str, Any] = {}
    if args.address is not None:
        changes["address"] = args.address
    if args.name is not None:
        changes["display_name"] = args.name
    if args.roles is not None:
        changes["roles"] = Role.parse_list(args.roles)
    member = dataclasses.replace(member, **changes)

    def change(roster: Roster) -> tuple[Roster, str]:
        if roster.get(member.id) is not None:
            raise ValidationError(
                f"member {member.id} is already in the roster: use set-role or rotate-key"
            )
        return roster.with_member(member), (
            f"added {member.id} ({member.kind.value}, {member.jurisdiction}, "
            f"roles {roles_text(member.roles)})"
        )

    return _edit(args, change)


def cmd_set_role(args: argparse.Namespace) -> int:
    def change(roster: Roster) -> tuple[Roster, str]:
        done = []
        if args.roles is not None:
            member = _member(roster, args.id)
            roles = Role.parse_list(args.roles)
            removed = (member.roles - roles) & ENTRY_ROLES
            if removed and args.until_seq is None and not args.whole_log:
                raise ValidationError(
                    f"set-role removes {roles_text(removed)} from {member.id}: give "
                    "--until-seq S (its entries up to seq S keep the old roles: S is its "
                    "next_seq in `ccnode status` minus 1), or --whole-log"
                )
            until = None if args.whole_log or not removed else args.until_seq
            member = member.with_roles(roles, until)
            roster = roster.with_member(member)
            after = f" after seq {until}" if until is not None else ""
            done.append(f"{member.id} now has roles {roles_text(member.roles)}{after}")
        if args.witness_threshold is not None:
            roster = dataclasses.replace(roster, witness_threshold=args.witness_threshold)
            done.append(f"witness threshold {args.witness_threshold}")
        if not done:
            raise ValidationError("set-role needs --id ID --roles R,... and/or --witness-threshold")
        return roster, "; ".join(done)

    return _edit(args, change)


def cmd_rotate_key(args: argparse.Namespace) -> int:
    def change(roster: Roster) -> tuple[Roster, str]:
        done = []
        if args.governance or args.threshold is not None:
            keys = (
                tuple(_public_key(g) for g in args.governance)
                if args.governance
                else roster.governance_keys
            )
            threshold = args.threshold or roster.governance_threshold
            roster = dataclasses.replace(
                roster, governance_keys=keys, governance_threshold=threshold
            )
            done.append(f"governance: {threshold} of {len(keys)} keys")
        if args.id:
            member = _member(roster, args.id)
            mine: list[str] = []
            keys_ = list(member.entry_keys)
            if args.retire:
                old = _public_key(args.retire, "--retire")
                if args.until_seq is None:
                    raise ValidationError("--retire needs --until-seq (the last seq it signed)")
                keys_ = [
                    EntryKey(k.public_key, _min_cutoff(k, args.until_seq))
                    if k.public_key == old
                    else k
                    for k in keys_
                ]
                if all(k.public_key != old for k in keys_):
                    raise NotFoundError(f"{short(old)} is not an entry key of {member.id}")
                mine.append(f"entry key {short(old)} valid until seq {args.until_seq}")
            if args.entry_key:
                new = _public_key(args.entry_key, "--entry-key")
                keys_.append(EntryKey(new))
                mine.append(f"new entry key {short(new)}")
            changes: dict[str, Any] = {"entry_keys": tuple(keys_)}
            if args.checkpoint_key:
                changes["checkpoint_key"] = _hex_key(args.checkpoint_key, "--checkpoint-key")
                mine.append("new checkpoint key")
            if args.tls_cert:
                changes["tls_cert"] = _cert(args.tls_cert)
                mine.append("new TLS certificate")
            if args.address is not None:
                changes["address"] = args.address
                mine.append(f"address {args.address or '-'}")
            roster = roster.with_member(dataclasses.replace(member, **changes))
            done += [f"{member.id}: {d}" for d in mine]
        if not done:
            raise ValidationError(
                "rotate-key needs --id ID with --entry-key/--retire/--checkpoint-key/--tls-cert/"
                "--address, or --governance KEY... [--threshold K]"
            )
        return roster, "; ".join(done)

    return _edit(args, change)


def _min_cutoff(key: EntryKey, until: int) -> int:
    return until if key.valid_until_seq is None else min(key.valid_until_seq, until)


def cmd_revoke_key(args: argparse.Namespace) -> int:
    key = _hex_key(args.key, "--key")

    def change(roster: Roster) -> tuple[Roster, str]:
        member = _member(roster, args.id)
        if all(k.public_key != key for k in member.entry_keys):
            raise NotFoundError(f"{short(key)} is not an entry key of {member.id}")
        if args.until_seq is None:
            keys = tuple(k for k in member.entry_keys if k.public_key != key)
            if not keys:
                raise ValidationError(
                    f"{member.id} would have no entry key left: add one with rotate-key first, "
                    "or cut this one off with --until-seq"
                )
            what = f"removed entry key {short(key)} of {member.id}"
        else:
            keys = tuple(
                EntryKey(k.public_key, _min_cutoff(k, args.until_seq)) if k.public_key == key else k
                for k in member.entry_keys
            )
            what = f"entry key {short(key)} of {member.id} valid until seq {args.until_seq}"
        return roster.with_member(dataclasses.replace(member, entry_keys=keys)), what

    return _edit(args, change)


def _root(text: str) -> bytes:
    try:
        raw = bytes.fromhex(text) if len(text) == 64 else base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error):
        raise ValidationError(f"--root {text[:70]!r}: expected 64 hex digits or base64") from None
    if len(raw) != 32:
        raise ValidationError(f"--root has {len(raw)} bytes: expected 32")
    return raw


def cmd_resolve_fork(args: argparse.Namespace) -> int:
    """docs/transparency.md, "Fork resolution"."""

    def change(roster: Roster) -> tuple[Roster, str]:
        member = _member(roster, args.id)
        if args.drop:
            if roster.resolution(member.id) is None:
                raise NotFoundError(f"the draft resolves no fork of {member.id}")
            return roster.without_resolution(member.id), f"dropped the resolution of {member.id}"
        if args.size is None or args.root is None:
            raise ValidationError("resolve-fork needs --size and --root (or --drop)")
        res = ForkResolution(member.id, args.size, _root(args.root))
        return roster.with_resolution(res), (
            f"{member.id}'s canonical log: size {res.size} root {res.root.hex()}"
        )

    return _edit(args, change)


def cmd_remove_member(args: argparse.Namespace) -> int:
    def change(roster: Roster) -> tuple[Roster, str]:
        member = _member(roster, args.id)
        keys = member.entry_keys
        if (args.until_seq is not None) == bool(args.refuse_unstored):
            raise ValidationError(
                f"remove-member needs --until-seq S (its entries up to seq S stay valid on "
                f"every node: S is {member.id}'s next_seq in `ccnode status` minus 1) or "
                "--refuse-unstored (its key may be compromised: nodes that lack its "
                "entries refuse them)"
                if args.until_seq is None
                else "remove-member: --until-seq and --refuse-unstored exclude each other"
            )
        if args.until_seq is not None:
            keys = tuple(EntryKey(k.public_key, _min_cutoff(k, args.until_seq)) for k in keys)
        revoked = dataclasses.replace(member, revoked=True, entry_keys=keys)
        witnesses = len(roster.with_member(revoked).witnesses())
        if roster.witness_threshold > witnesses:
            roster = dataclasses.replace(roster, witness_threshold=witnesses)
        after = f" after seq {args.until_seq}" if args.until_seq is not None else ""
        return roster.with_member(revoked), (
            f"revoked {member.id}: no new entries{after}; its earlier entries stay, flagged"
        )

    return _edit(args, change)


# -- signing and checking -----------------------------------------------------


def cmd_sign(args: argparse.Namespace) -> int:
    if not args.key and not args.merge:
        raise ValidationError("sign needs --key KEY and/or --merge COPY")
    signed = load_roster(args.file)
    for other in args.merge:
        signed = signed.merged(load_roster(other))
    roster = signed.roster
    for path in args.key:
        key: Ed25519PrivateKey = load_signer(path).private_key
        signed = signed.signed_by(key)
        public = raw_public_key(key.public_key())
        if public not in roster.governance_keys:
            print(
                f"note: {path} is not a governance key of version {roster.version}; its "
                "signature counts only as one of the previous version's keys"
            )
    out = args.out or args.file
    _save(out, signed)
    own = len(signed.valid_signers(roster.governance_keys))
    print(
        f"roster version {roster.version} in {out}: {len(signed.signatures)} signature(s); "
        f"{own}/{len(roster.governance_keys)} of its own governance keys "
        f"(needs {roster.governance_threshold})"
    )
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    signed = load_roster(args.file)
    now = now_ms()
    if args.prev is None:
        verify_anchor(signed, now)
        how = "valid as a trust anchor"
    else:
        prev = load_roster(args.prev)
        check_threshold(prev, prev.roster)
        update = TrustedRoster(prev).update([signed], now)
        if not update.adopted:
            raise ValidationError(
                f"roster version {signed.version} is the held version {prev.version}: nothing new"
            )
        how = f"chains from version {prev.version} ({_signers(signed, prev.roster)} of its keys)"
    r = signed.roster
    print(
        f"roster version {r.version} (id {short(signed.roster_id)}): {how}; "
        f"signed by {_signers(signed, r)} of its own governance keys; "
        f"expires {when(r.expires_ms)}"
    )
    return 0


def _signers(signed: SignedRoster, of: Roster) -> str:
    return f"{len(signed.valid_signers(of.governance_keys))}/{len(of.governance_keys)}"


def _summary(roster: Roster) -> str:
    return (
        f"{len(roster.members)} members, governance {roster.governance_threshold} of "
        f"{len(roster.governance_keys)} keys, expires {when(roster.expires_ms)}"
    )


def cmd_show(args: argparse.Namespace) -> int:
    signed = load_roster(args.file)
    if args.json:
        doc = roster_to_json(signed)
        for m, out in zip(signed.roster.members, doc["members"], strict=True):
            out["checkpoint_vkey"] = checkpoint_vkey(m)
        print(json.dumps(doc, indent=2))
        return 0
    r = signed.roster
    print(
        f"roster version {r.version}  id {short(signed.roster_id)}  prev {short(r.prev)}  "
        f"expires {when(r.expires_ms)}"
    )
    signers = signed.valid_signers(r.governance_keys)
    print(
        f"governance: {r.governance_threshold} of {len(r.governance_keys)} keys; "
        f"signed by {len(signers)} of them; witness threshold {r.witness_threshold}"
    )
    for k in r.governance_keys:
        print(f"  governance key {short(k)}  {'signed' if k in signers else '-'}")
    print(f"members ({len(r.members)}):")
    for m in r.members:
        keys = ", ".join(
            short(k.public_key)
            + ("" if k.valid_until_seq is None else f" (until seq {k.valid_until_seq})")
            for k in m.entry_keys
        )
        flag = "  REVOKED" if m.revoked else ""
        history = "".join(
            f" (up to seq {until}: {roles_text(roles)})" for until, roles in m.earlier_roles
        )
        print(
            f"  {m.id:32} {m.kind.value:10} {m.jurisdiction}  roles {roles_text(m.roles)}"
            f"{history}{flag}\n"
            f"  {'':32} entry keys {keys}; tls {short(m.tls_spki) if m.tls_spki else '-'}; "
            f"address {m.address or '-'}" + (f"; name {m.display_name}" if m.display_name else "")
        )
        print(f"  {'':32} checkpoint vkey {checkpoint_vkey(m)}")
    for res in r.resolutions:
        print(
            f"fork resolution: {res.origin}'s canonical log is size {res.size} "
            f"root {res.root.hex()}"
        )
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    signed = load_roster(args.file)
    config = load_config(args.dir)
    address = args.to
    if address is None and not config.key_only:
        from node.dirlock import running_address

        address = running_address(config.dir, config.addr_file)
    if address:
        return _offer(config, address, signed)
    held = config.signed_roster()
    if held is None:
        verify_anchor(signed, now_ms())
        how = "as its trust anchor"
    else:
        update = TrustedRoster(held).update([signed], now_ms())
        if not update.adopted:
            print(f"{args.dir} already holds roster version {held.version}")
            return 0
        how = f"after version {held.version}"
    _save(config.roster_path, signed)
    where = "" if config.key_only else " (the node adopts it when it starts)"
    print(f"installed roster version {signed.version} in {args.dir} {how}{where}")
    return 0


def _offer(config: Any, address: str, signed: SignedRoster) -> int:
    from node.connect import client_for

    async def go() -> Any:
        async with client_for(config, address) as client:
            return await client.offer_roster([signed])

    response = asyncio.run(go())
    if response.adopted:
        print(f"node at {address} adopted roster version {response.version}")
    else:
        print(f"node at {address} holds roster version {response.version}: nothing new")
    if response.refused:
        print(f"stopped short: {response.refused}")
    return 0
