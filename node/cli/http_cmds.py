"""``ccnode http-key add|list|revoke DIR``: the HTTP API's keys (docs/http.md).

Keys live in ``DIR/http_keys.json`` as SHA-256 hashes with scopes
(node/httpapi/keys.py); ``add`` prints the token once, and nothing can show
it again. A running node picks up every change on its next request.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from node.errors import ValidationError


def register(sub: Any) -> None:
    from node.httpapi.keys import SCOPES

    p = sub.add_parser("http-key", help="API keys for the HTTP API: add, list, revoke")
    ksub = p.add_subparsers(dest="http_key_cmd", required=True)

    q = ksub.add_parser("add", help="a new key; prints its token once")
    q.add_argument("dir", type=Path, help="the node directory")
    q.add_argument(
        "--scope",
        action="append",
        required=True,
        help=f"what the key may do (repeat for several): {', '.join(SCOPES)}",
    )
    q.add_argument("--name", default="", help="who holds it (shown by list)")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_add)

    q = ksub.add_parser("list", help="the keys (ids, scopes, names; never tokens)")
    q.add_argument("dir", type=Path)
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_list)

    q = ksub.add_parser("revoke", help="remove a key: its token stops working at once")
    q.add_argument("dir", type=Path)
    q.add_argument("--id", dest="key_id", required=True, help="the key id (from list)")
    q.set_defaults(func=cmd_revoke)


def _node_dir(path: Path) -> Path:
    from node.config import CONFIG_NAME

    if not (path / CONFIG_NAME).is_file():
        raise ValidationError(f"{path} is not a node directory (no {CONFIG_NAME})")
    return path


def cmd_add(args: argparse.Namespace) -> int:
    from node.httpapi.keys import add_key

    key, token = add_key(_node_dir(args.dir), args.scope, args.name)
    if args.json:
        print(json.dumps({"id": key.id, "scopes": list(key.scopes), "token": token}))
    else:
        print(f"API key {key.id} ({', '.join(key.scopes)}) added to {args.dir}.")
        print("Its token, shown this once (send it as 'Authorization: Bearer <token>'):")
        print(token)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from node.cli.render import fmt_time
    from node.httpapi.keys import load_keys

    keys = load_keys(_node_dir(args.dir))
    if args.json:
        print(json.dumps([{k: v for k, v in key.json().items() if k != "sha256"} for key in keys]))
        return 0
    if not keys:
        print(f"no API keys in {args.dir}")
    for key in keys:
        print(f"{key.id}  {','.join(key.scopes):18}  {fmt_time(key.created_ms)}  {key.name or '-'}")
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    from node.httpapi.keys import revoke_key

    key = revoke_key(_node_dir(args.dir), args.key_id)
    print(f"API key {key.id} ({key.name or 'unnamed'}) revoked in {args.dir}")
    return 0
