"""Policy commands: ``ccnode policy check|explain|reload`` (docs/policy.md)."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from node.cli.node_cmds import connect, match_json, resolve_entry_id
from node.core.entry import check_id_text
from node.core.policy import REVOKED_VOTE, Policy
from node.errors import ValidationError
from node.rpc._pb.consortium.v1 import node_pb2 as pb


def register(sub: Any) -> None:
    p = sub.add_parser("policy", help="check, explain and reload the node's action policy")
    psub = p.add_subparsers(dest="policy_cmd", required=True)

    q = psub.add_parser("check", help="validate a policy file and say what each rule does")
    q.add_argument("file", type=Path)
    q.set_defaults(func=cmd_check)

    q = psub.add_parser("explain", help="which rule fires for a stored entry, and why")
    q.add_argument("entry_id", help="entry id, hex (or a unique prefix of 8+ digits)")
    q.add_argument("dir", type=Path, nargs="?", help="node directory (its running node)")
    q.add_argument("--to", help="node address host:port")
    q.add_argument("--insecure", action="store_true", help="plaintext connection (dev only)")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_explain)

    q = psub.add_parser(
        "reload", help="make a running node re-read DIR/policy.toml and DIR/never_match.txt"
    )
    q.add_argument("dir", type=Path, nargs="?")
    q.add_argument("--to", help="node address host:port")
    q.add_argument("--insecure", action="store_true", help="plaintext connection (dev only)")
    q.set_defaults(func=cmd_reload)


def cmd_check(args: argparse.Namespace) -> int:
    path: Path = args.file
    try:
        text = path.read_text()
    except OSError as exc:
        raise ValidationError(f"cannot read policy file {path}: {exc.strerror}") from None
    policy = Policy.loads(text, source=str(path))
    print(f"{path}: valid, {len(policy.rules)} rule(s); the first rule that matches decides:")
    for line in policy.describe():
        print(f"  {line}")
    print("  (a retracted entry is always IGNORE)")
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    check_id_text(args.entry_id)

    async def go() -> pb.ExplainPolicyResponse:
        async with connect(args) as client:
            return await client.explain_policy(await resolve_entry_id(client, args.entry_id))

    r = asyncio.run(go())
    m = r.match
    if args.json:
        doc = {
            "match": match_json(m),
            "policy": r.policy_source,
            "default_action": r.default_action,
            "rules": [
                {
                    "name": t.name,
                    "action": t.action,
                    "reached": t.reached,
                    "matched": t.matched,
                    "conditions": [{"holds": c.holds, "text": c.text} for c in t.reasons],
                }
                for t in r.rules
            ],
        }
        print(json.dumps(doc, indent=2))
        return 0
    p = m.provenance
    print(f"entry {p.entry_id.hex()} by {p.origin} ({p.origin_kind}, {p.jurisdiction})")
    print(f"policy: {r.policy_source}")
    print(f"recommended action: {m.recommended_action or '-'} (rule {m.rule or '-'})")
    for v in p.votes:
        flag = f" ({REVOKED_VOTE})" if v.revoked else ""
        print(f"  vote: {v.vote} by {v.member}{flag}")
    if m.rule == "(retracted)":
        print("  the entry is retracted by its submitter: no rule is consulted")
    for i, t in enumerate(r.rules, 1):
        if not t.reached:
            print(f"  {i}. {t.name} -> {t.action}: not reached")
            continue
        verdict = "FIRES" if t.matched else "does not match"
        print(f"  {i}. {t.name} -> {t.action}: {verdict}")
        for c in t.reasons:
            print(f"       [{'x' if c.holds else ' '}] {c.text}")
    if m.rule == "(default)":
        print(f"  no rule matched: the default action {r.default_action} applies")
    return 0


def cmd_reload(args: argparse.Namespace) -> int:
    async def go() -> pb.ReloadPolicyResponse:
        async with connect(args) as client:
            return await client.reload_policy()

    r = asyncio.run(go())
    print(f"policy reloaded from {r.source}:")
    for line in r.rules:
        print(f"  {line}")
    if r.never_match_source:
        print(f"never-match list reloaded from {r.never_match_source}: {r.never_match} hashes")
    else:
        print("never-match list: none (no never_match.txt)")
    return 0
