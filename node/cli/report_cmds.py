"""Feedback and accountability commands.

``ccnode feedback endorse|dispute|relabel``, ``ccnode record-action``,
``ccnode report-actions``, ``ccnode matchlog prune``,
``ccnode incident report`` and ``ccnode transparency-report``
(docs/policy.md).

Reports are computed here, not at the node: the command pulls every signed
entry the node holds, verifies each against the roster and each origin's
hash chain, and computes the report from those entries alone. Entries of
members revoked since still count if their signature verifies under a key
the roster lists (revocation stops new entries; it does not rewrite history).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from node.cli import render
from node.cli.node_cmds import _submitter, connect, resolve_entry_id
from node.config import load_config
from node.core import labels
from node.core.entry import (
    EntryBody,
    Kind,
    SignedEntry,
    Signer,
    check_id_text,
    verify_signature,
)
from node.core.payloads import DisputeReason, encode_dispute
from node.core.report import Ledger, incident_report, platforms_of, transparency_report
from node.core.tlog import verify_checkpoint
from node.core.trust import Member, MembersFile, Standing, TrustView, check_provenance, standing_of
from node.errors import NodeError, NotFoundError, ProvenanceError, ValidationError
from node.rpc import convert
from node.rpc._pb.consortium.v1 import node_pb2 as pb
from node.rpc.client import NodeClient

MAX_BATCH = 1000
_ACTIONS = {
    "blocked-at-upload": pb.ACTION_TAKEN_BLOCKED_AT_UPLOAD,
    "removed": pb.ACTION_TAKEN_REMOVED,
    "reviewed": pb.ACTION_TAKEN_REVIEWED,
}


def _node_args(p: Any, *, signing: bool = False) -> None:
    p.add_argument("--to", help="node address host:port (default: DIR's running node)")
    p.add_argument("--insecure", action="store_true", help="plaintext connection (dev only)")
    if signing:
        p.add_argument("--key", type=Path, help="key file (key-only submitters, with --origin)")
        p.add_argument("--origin", help="member id the key speaks for (with --key)")


def register(sub: Any) -> None:
    p = sub.add_parser("feedback", help="endorse, dispute or relabel an entry (signed)")
    fsub = p.add_subparsers(dest="feedback_cmd", required=True)
    q = fsub.add_parser("endorse", help="endorse another member's entry")
    q.add_argument("dir", type=Path, nargs="?")
    q.add_argument("--entry", required=True, help="the entry id, hex")
    q.add_argument("--reason", default="", help="free text, at most 1024 bytes")
    _node_args(q, signing=True)
    q.set_defaults(func=cmd_vote, vote=Kind.ENDORSE)
    q = fsub.add_parser("dispute", help="dispute another member's entry")
    q.add_argument("dir", type=Path, nargs="?")
    q.add_argument("--entry", required=True, help="the entry id, hex")
    q.add_argument(
        "--code", required=True, choices=[r.text for r in DisputeReason], help="dispute reason"
    )
    q.add_argument("--reason", default="", help="free text, at most 1024 bytes")
    _node_args(q, signing=True)
    q.set_defaults(func=cmd_vote, vote=Kind.DISPUTE)
    q = fsub.add_parser("relabel", help="replace the labels of one of your own entries")
    q.add_argument("dir", type=Path, nargs="?")
    q.add_argument("--entry", required=True, help="the entry id, hex")
    q.add_argument("--label", action="append", required=True, help="new label (repeat)")
    q.add_argument("--reason", default="", help="free text, at most 1024 bytes")
    _node_args(q, signing=True)
    q.set_defaults(func=cmd_vote, vote=Kind.RELABEL)

    p = sub.add_parser("record-action", help="log what this platform did about a match")
    p.add_argument("dir", type=Path, nargs="?")
    p.add_argument(
        "--entry", required=True, help="the matched entry id, hex (or a unique 8+ digit prefix)"
    )
    p.add_argument("--action", required=True, choices=sorted(_ACTIONS))
    p.add_argument("--count", type=int, default=1, help="how many items (default 1)")
    p.add_argument(
        "--at",
        help="when the action was taken: YYYY-MM-DD or ISO 8601 time (UTC unless it says); "
        "default now",
    )
    _node_args(p)
    p.set_defaults(func=cmd_record_action)

    p = sub.add_parser(
        "report-actions", help="sign and publish ACTION_REPORT entries from the match log"
    )
    p.add_argument("dir", type=Path, help="node directory (its key signs the reports)")
    p.add_argument("--to", help="node address host:port (default: DIR's running node)")
    p.add_argument("--insecure", action="store_true", help="plaintext connection (dev only)")
    p.add_argument("--dry-run", action="store_true", help="show what would be reported")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_report_actions)

    p = sub.add_parser("matchlog", help="the node's local match log")
    msub = p.add_subparsers(dest="matchlog_cmd", required=True)
    q = msub.add_parser("prune", help="drop match-log events before a date (totals stay)")
    q.add_argument("dir", type=Path, nargs="?")
    q.add_argument("--before", required=True, help="YYYY-MM-DD or ISO 8601 time (UTC)")
    _node_args(q)
    q.set_defaults(func=cmd_prune)

    p = sub.add_parser("incident", help="incident reports")
    isub = p.add_subparsers(dest="incident_cmd", required=True)
    q = isub.add_parser("report", help="who acted on an incident's hashes, and when")
    q.add_argument("incident")
    q.add_argument("dir", type=Path, nargs="?", help="node directory (roster, address)")
    _report_args(q)
    q.set_defaults(func=cmd_incident_report)

    p = sub.add_parser(
        "transparency-report", help="counts, rates and latencies since a date, verifiable"
    )
    p.add_argument("dir", type=Path, nargs="?", help="node directory (roster, address)")
    p.add_argument("--since", required=True, help="YYYY-MM-DD or ISO 8601 time (UTC)")
    p.add_argument("--until", help="YYYY-MM-DD or ISO 8601 time (UTC); default now")
    _report_args(p)
    p.set_defaults(func=cmd_transparency_report)


def _report_args(p: Any) -> None:
    p.add_argument("--to", help="node address host:port")
    p.add_argument("--insecure", action="store_true", help="plaintext connection (dev only)")
    p.add_argument("--roster", type=Path, help="roster file to verify with (with --to)")
    p.add_argument("--format", choices=render.FORMATS, default="md")
    p.add_argument("--out", type=Path, help="write here instead of stdout")


def parse_date(text: str) -> int:
    """A UTC date or ISO 8601 time to ms since the epoch."""
    try:
        if len(text) == 10:
            t = dt.datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=dt.UTC)
        else:
            t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            if t.tzinfo is None:
                t = t.replace(tzinfo=dt.UTC)
    except ValueError:
        raise ValidationError(
            f"date {text!r}: expected YYYY-MM-DD or an ISO 8601 time such as 2019-03-15T01:40:00Z"
        ) from None
    return int(t.timestamp() * 1000)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


# -- signing and submitting a chain of entries -----------------------------------------


async def sign_and_submit(
    client: NodeClient, origin: str, signer: Signer, contents: Sequence[dict[str, Any]]
) -> list[SignedEntry]:
    """Sign ``contents`` as the next entries of ``origin``'s log and submit them."""
    entries = await sign_chain(client, origin, signer, contents)
    for i in range(0, len(entries), MAX_BATCH):
        await client.submit(entries[i : i + MAX_BATCH])
    return entries


async def sign_chain(
    client: NodeClient, origin: str, signer: Signer, contents: Sequence[dict[str, Any]]
) -> list[SignedEntry]:
    """Sign ``contents`` as the next entries of ``origin``'s log (after the
    head the node holds)."""
    status = await client.status()
    head = next((h for h in status.heads if h.origin == origin), None)
    seq, prev = (head.next_seq, head.head_id) if head else (0, bytes(32))
    entries: list[SignedEntry] = []
    for fields in contents:
        body = EntryBody(
            origin=origin, seq=seq, prev=prev, key_id=signer.key_id, time_ms=_now_ms(), **fields
        )
        entry = signer.sign(body)
        entries.append(entry)
        seq, prev = seq + 1, entry.entry_id
    return entries


def cmd_vote(args: argparse.Namespace) -> int:
    origin, signer = _submitter(args)
    check_id_text(args.entry)
    kind: Kind = args.vote
    fields: dict[str, Any] = {"kind": kind, "reason": args.reason}
    if kind == Kind.DISPUTE:
        fields["payload"] = encode_dispute(DisputeReason.parse(args.code))
    elif kind == Kind.RELABEL:
        fields["labels"] = labels.normalize_labels(args.label)

    async def go() -> list[SignedEntry]:
        async with connect(args) as client:
            target = await resolve_entry_id(client, args.entry)
            # a video's segment: the vote is on the video, so on each of its segments
            try:
                video = (await client.get_entry(target)).video_segments or [target]
            except ProvenanceError:  # a submitter without the read role: just this entry
                video = [target]
            return await sign_and_submit(
                client, origin, signer, [{**fields, "target": t} for t in video]
            )

    for entry in asyncio.run(go()):
        print(f"{kind.name.lower()} {entry.body.target.hex()[:16]}: entry {entry.entry_id.hex()}")
    return 0


def cmd_record_action(args: argparse.Namespace) -> int:
    check_id_text(args.entry)
    if not 1 <= args.count <= 1_000_000:
        raise ValidationError(f"--count {args.count}: expected 1..1000000")
    at_ms = parse_date(args.at) if args.at else 0

    async def go() -> tuple[bytes, pb.RecordActionResponse]:
        async with connect(args) as client:
            entry_id = await resolve_entry_id(client, args.entry)
            action = _ACTIONS[args.action]
            return entry_id, await client.record_action(entry_id, action, args.count, at_ms)

    entry_id, r = asyncio.run(go())
    print(
        f"logged {args.action} x{args.count} for {entry_id.hex()[:16]} "
        f"at {render.fmt_time(r.time_ms)}"
    )
    return 0


def cmd_report_actions(args: argparse.Namespace) -> int:
    config = load_config(args.dir)
    signer = config.signer()

    async def go() -> tuple[list[pb.ActionSummary], list[SignedEntry]]:
        async with connect(args) as client:
            pending = list((await client.action_summaries(unreported_only=True)).summaries)
            if args.dry_run or not pending:
                return pending, []
            contents = [
                {
                    "kind": Kind.ACTION_REPORT,
                    "target": s.entry_id,
                    "incident": s.incident,
                    "payload": convert.counts_from_pb(s.counts).encode(),
                }
                for s in pending
            ]
            return pending, await sign_and_submit(client, config.id, signer, contents)

    pending, entries = asyncio.run(go())
    filed: list[str | None] = [e.entry_id.hex() for e in entries] or [None] * len(pending)
    if args.json:
        rows = [
            {
                "target": s.entry_id.hex(),
                "incident": s.incident,
                "entry_id": eid,
                "matches": s.counts.matches,
                "blocked_at_upload": s.counts.blocked_at_upload,
                "removals": s.counts.removals,
                "reviews": s.counts.reviews,
                "first_action_ms": s.counts.first_action_ms or None,
            }
            for s, eid in zip(pending, filed, strict=True)
        ]
        print(json.dumps(rows, indent=2))
        return 0
    if not pending:
        print("nothing new to report")
        return 0
    verb = "would report" if args.dry_run else "reported"
    for s, eid in zip(pending, filed, strict=True):
        c = s.counts
        print(
            f"{verb} {s.entry_id.hex()[:16]}: {c.matches} matches, "
            f"{c.blocked_at_upload} blocked at upload, {c.removals} removals, "
            f"{c.reviews} reviews" + (f" (entry {eid[:16]})" if eid else "")
        )
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    before = parse_date(args.before)

    async def go() -> pb.PruneMatchLogResponse:
        async with connect(args) as client:
            return await client.prune_match_log(before)

    r = asyncio.run(go())
    print(f"pruned {r.removed} match-log events; {r.kept} kept (per-entry totals unchanged)")
    return 0


# -- reports -------------------------------------------------------------------


def _trust(args: argparse.Namespace) -> TrustView:
    from node.cli.roster_cmds import roster_to_trust

    if args.roster is None and args.dir is None:
        raise ValidationError("give a node directory, or --to HOST:PORT --roster FILE")
    roster = roster_to_trust(args.roster if args.roster is not None else args.dir)
    return MembersFile.of(list(roster.members))


def check_held(trust: TrustView, entry: SignedEntry) -> None:
    """A stored entry is its origin's: the provenance rules, or, for an origin
    or key revoked since, a good signature by a key the roster still lists."""
    try:
        check_provenance(trust, entry)
    except ProvenanceError:
        if standing_of(trust, entry) is Standing.ACTIVE:
            raise
        member = trust.member(entry.body.origin)
        verify_signature(entry, member.key(entry.body.key_id).key)


async def pull_verified(client: NodeClient, trust: TrustView) -> tuple[str, list[SignedEntry]]:
    """Every entry the node holds, each verified against its origin's key."""
    node_id, entries, _ = await pull_checkpointed(client, trust)
    return node_id, entries


CHECKPOINT_WAIT_S = 3.0


async def pull_checkpointed(
    client: NodeClient, trust: TrustView
) -> tuple[str, list[SignedEntry], dict[str, tuple[int, bytes, str]]]:
    """Each origin's log up to its latest signed checkpoint (all of it for an
    origin that signs none), every entry verified against its origin's key,
    and the verified checkpoints: (size, root, note) by origin."""
    # Members sign checkpoints at most every half second: give the newest
    # entries a moment to be covered, so the report is as fresh as the node.
    deadline = time.monotonic() + CHECKPOINT_WAIT_S
    while True:
        status = await client.status()
        checkpoints: dict[str, tuple[int, bytes, str]] = {}
        for head in status.heads:
            try:
                note = (await client.get_checkpoint(head.origin)).checkpoint
            except NotFoundError:
                continue  # signs no checkpoints (a key-only submitter): its root alone
            if note:
                verified = verify_checkpoint(note, trust, {})
                cp = verified.checkpoint
                checkpoints[head.origin] = (cp.size, cp.root, note)
        behind = any(
            checkpoints[h.origin][0] < h.next_seq for h in status.heads if h.origin in checkpoints
        )
        if not behind or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    entries: list[SignedEntry] = []
    async for response in client.pull({}, follow=False, max_batch=2048):
        for e in convert.entries_from_pb(response.entries):
            cp_entry = checkpoints.get(e.body.origin)
            if cp_entry is not None and e.body.seq >= cp_entry[0]:
                continue  # newer than the signed checkpoint: next report
            check_held(trust, e)
            entries.append(e)
    return status.node_id, entries, checkpoints


async def _pull_verified(args: argparse.Namespace, trust: TrustView) -> Any:
    async with connect(args) as client:
        return await pull_checkpointed(client, trust)


def _lookup(trust: TrustView) -> Any:
    def lookup(member_id: str) -> Member | None:
        try:
            return trust.member(member_id)
        except NodeError:
            return None

    return lookup


def _emit(args: argparse.Namespace, text: str) -> None:
    if args.out is None:
        print(text, end="")
        return
    args.out.write_text(text)
    print(f"wrote {args.out}")


def cmd_incident_report(args: argparse.Namespace) -> int:
    incident = labels.check_incident(args.incident)
    if not incident:
        raise ValidationError("incident id is empty")
    trust = _trust(args)
    node_id, entries, checkpoints = asyncio.run(_pull_verified(args, trust))
    report = incident_report(
        Ledger(entries, _lookup(trust), checkpoints),
        incident,
        node_id=node_id,
        generated_ms=_now_ms(),
        platforms=platforms_of(trust.members()),
    )
    if args.format == "json":
        _emit(args, render.dumps_json(render.incident_json(report)))
    elif args.format == "html":
        _emit(args, render.incident_html(report))
    else:
        _emit(args, render.incident_md(report))
    return 0


def cmd_transparency_report(args: argparse.Namespace) -> int:
    since = parse_date(args.since)
    now = _now_ms()
    until = parse_date(args.until) if args.until else now + 1
    if until <= since:
        raise ValidationError(f"--until {args.until} is not after --since {args.since}")
    trust = _trust(args)
    node_id, entries, checkpoints = asyncio.run(_pull_verified(args, trust))
    report = transparency_report(
        Ledger(entries, _lookup(trust), checkpoints),
        since_ms=since,
        until_ms=until,
        node_id=node_id,
        generated_ms=now,
    )
    if args.format == "json":
        _emit(args, render.dumps_json(render.transparency_json(report)))
    elif args.format == "html":
        _emit(args, render.transparency_html(report))
    else:
        _emit(args, render.transparency_md(report))
    return 0
