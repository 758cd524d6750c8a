"""Node commands: init, serve, peers, submit, match, status, labels."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from node.cli import video_limits
from node.config import (
    NodeConfig,
    PeerConfig,
    load_config,
    load_signer,
)
from node.core import hashes, labels, payloads
from node.core.entry import Kind, Signer, check_id_text, check_member_id
from node.core.policy import QueryVerdict, overall
from node.core.roster import MemberKind, when
from node.errors import ConflictError, NodeError, NotFoundError, ProvenanceError, ValidationError
from node.media.live import LIVE_SEGMENT_S, STALL_S
from node.rpc._pb.consortium.v1 import node_pb2 as pb
from node.rpc.client import NodeClient


def register(sub: Any) -> None:
    p = sub.add_parser(
        "init", help="create a member directory: keys, TLS certificate, member card, config"
    )
    p.add_argument("dir", type=Path)
    p.add_argument("--id", required=True, help="member id, e.g. gov.nz/dia")
    p.add_argument("--kind", required=True, choices=[k.value for k in MemberKind])
    p.add_argument(
        "--jurisdiction",
        default="",
        help="ISO 3166-1 alpha-2, e.g. NZ; required for a government, optional otherwise",
    )
    p.add_argument("--listen", default="127.0.0.1:0", help="host:port (default 127.0.0.1:0)")
    p.add_argument("--name", default="", help="display name for the roster")
    p.add_argument("--address", default="", help="the address peers reach this node at")
    p.add_argument(
        "--genesis",
        action="store_true",
        help="also start a new consortium: a governance key and a version-1 roster "
        "listing this member",
    )
    p.add_argument(
        "--key-only", action="store_true", help="a submitter with keys but no node of its own"
    )
    p.add_argument(
        "--insecure", action="store_true", help="plaintext, no authentication (loopback dev only)"
    )
    p.set_defaults(func=cmd_init)

    p = sub.add_parser(
        "init-replica",
        help="make a match replica's directory from its member's (roster and TLS key; "
        "no signing key)",
    )
    p.add_argument("dir", type=Path, help="the new replica directory")
    p.add_argument("--from", dest="member_dir", type=Path, required=True, help="member dir")
    p.add_argument("--replica-of", required=True, metavar="HOST:PORT", help="the member's node")
    p.add_argument("--listen", help="host:port for the replica (default: the member's)")
    p.set_defaults(func=cmd_init_replica)

    p = sub.add_parser("serve", help="run a node until SIGTERM/SIGINT")
    p.add_argument("dir", type=Path)
    p.add_argument(
        "--insecure", action="store_true", help="plaintext, no authentication (loopback only)"
    )
    p.add_argument("--parent-pid", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--metrics", metavar="HOST:PORT", help="serve Prometheus /metrics here")
    p.add_argument(
        "--replica-of",
        metavar="HOST:PORT",
        help="serve as a match replica of this member's node at HOST:PORT (read-only; "
        "docs/operators.md, Match replicas)",
    )
    p.add_argument(
        "--http-listen",
        metavar="HOST:PORT",
        help="serve the HTTP API here (docs/http.md; off by default)",
    )
    p.add_argument("--log-json", dest="serve_log_json", action="store_true", help="JSON logs")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("peers", help="the peers this node syncs from: add, list, remove")
    psub = p.add_subparsers(dest="peers_cmd", required=True)
    q = psub.add_parser("add", help="sync from a roster member's node")
    q.add_argument("dir", type=Path)
    q.add_argument("--id", required=True, help="the peer's member id (in the roster)")
    where = q.add_mutually_exclusive_group(required=True)
    where.add_argument("--address", help="host:port where it listens (a fixed port)")
    where.add_argument(
        "--address-file",
        type=Path,
        help="its node.addr, re-read at every connect: follows a node on this host "
        "across restarts on new ports",
    )
    q.set_defaults(func=cmd_peers_add)
    q = psub.add_parser("list", help="the configured peers and where each is now")
    q.add_argument("dir", type=Path)
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_peers_list)
    q = psub.add_parser("remove", help="stop syncing from a peer")
    q.add_argument("dir", type=Path)
    q.add_argument("--id", required=True)
    q.set_defaults(func=cmd_peers_remove)

    p = sub.add_parser("submit", help="sign a hash with the member key and submit it")
    p.add_argument("dir", type=Path, nargs="?", help="node directory (key, id, address)")
    p.add_argument("--to", help="node address host:port (default: DIR's running node)")
    p.add_argument("--key", type=Path, help="entry key file (with --origin; plaintext dev only)")
    p.add_argument("--origin", help="member id the key speaks for (with --key)")
    p.add_argument("--insecure", action="store_true", help="plaintext connection (dev only)")
    p.add_argument("--algo", help="hash algorithm: " + ", ".join(hashes.ALGORITHMS))
    p.add_argument("--hash", dest="hash_hex", help="hash value, hex")
    p.add_argument(
        "--file",
        type=Path,
        help="hash this file here instead of --hash (PDQ for images, with the quality "
        "floor; a video is banked as VPDQ segments plus its soundtrack's CHROMAPRINT "
        "segments; an audio file as CHROMAPRINT segments; SHA-256 otherwise, or the --algo "
        "given: --algo vpdq a video's frames only, --algo chromaprint its soundtrack only)",
    )
    p.add_argument(
        "--quality",
        type=int,
        help="PDQ with --hash: the hash's quality (0..100) from your hasher; recorded in the "
        "signed entry, and refused below 50",
    )
    p.add_argument("--label", action="append", default=[], help="taxonomy label (repeat)")
    p.add_argument(
        "--incident",
        default="",
        help="incident id: lower-case words joined by '-' ending in the date it began, "
        "e.g. christchurch-2019-03-15",
    )
    p.add_argument("--reason", default="", help="free text, at most 1024 bytes")
    p.add_argument("--urgent", action="store_true", help="flag as part of a live incident")
    p.add_argument(
        "--retract",
        metavar="ENTRY_ID",
        help="retract one of your entries (id or 8+ digit prefix; a video's segment: "
        "every segment of the video)",
    )
    p.add_argument(
        "--live",
        metavar="SOURCE",
        help="publish a live stream as it grows: a video file still being written, - for "
        "standard input, or an HLS playlist URL; one urgent VPDQ segment entry per "
        "--segment-seconds, a final one at the end (needs DIR and --incident; docs/live.md)",
    )
    p.add_argument(
        "--segment-seconds",
        type=float,
        default=None,
        help=f"--live: stream seconds per segment entry (1..600; default {LIVE_SEGMENT_S:g}); "
        "--file VIDEO: the same (default 60)",
    )
    stall_option(p)
    p.add_argument("--json", action="store_true")
    video_limits.add_options(p)
    p.set_defaults(func=cmd_submit)

    p = sub.add_parser(
        "match",
        help="look hashes up in a node's replica: `match DIR --algo A --hash H` or "
        "`match FILE... --to ADDR|--dir DIR` (hashes the files locally first)",
    )
    p.add_argument("paths", nargs="*", type=Path, help="node DIR (with --hash), or FILEs")
    p.add_argument("--dir", dest="node_dir", type=Path, help="node directory (with FILEs)")
    p.add_argument("--to", help="node address host:port")
    p.add_argument("--algo")
    p.add_argument("--hash", dest="hash_hex")
    p.add_argument("--max-distance", type=int, default=0, help="PDQ: 0..63 (default 31)")
    p.add_argument("--dihedral", action="store_true", help="files: also match rotations/flips")
    p.add_argument("--include-retracted", action="store_true")
    p.add_argument("--insecure", action="store_true", help="plaintext connection (dev only)")
    p.add_argument("--record", action="store_true", help="log hits in the node's match log")
    p.add_argument(
        "--min-coverage",
        type=float,
        help="videos: share of the overlapped banked frames that must align (default 0.5)",
    )
    p.add_argument(
        "--min-matched-ms",
        type=int,
        help="videos: banked time the aligned frames must span (default 1500)",
    )
    p.add_argument(
        "--report-all", action="store_true", help="videos: also banked videos hit without a match"
    )
    p.add_argument("--json", action="store_true")
    video_limits.add_options(p)
    p.set_defaults(func=cmd_match)

    p = sub.add_parser("status", help="a node's id, heads, peers and roster version")
    p.add_argument("dir", type=Path, nargs="?")
    p.add_argument("--to", help="node address host:port")
    p.add_argument("--insecure", action="store_true", help="plaintext connection (dev only)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("labels", help="list the label taxonomy")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_labels)


# -- init / serve / members / peers -----------------------------------------


def cmd_init(args: argparse.Namespace) -> int:
    from node.config import new_key
    from node.member_dir import genesis_roster, init_member_dir, install_roster

    kind = MemberKind.parse(args.kind)
    if kind is MemberKind.GOVERNMENT and not args.jurisdiction:
        raise ValidationError(
            "a government member needs --jurisdiction CC (ISO 3166-1 alpha-2, e.g. NZ): "
            "policy rules and reports group governments by it"
        )
    config, me = init_member_dir(
        args.dir,
        args.id,
        kind,
        jurisdiction=args.jurisdiction,
        listen=args.listen,
        display_name=args.name,
        address=args.address,
        key_only=args.key_only,
        insecure=args.insecure,
    )
    what = "key-only member" if args.key_only else "node"
    print(f"initialised {what} {args.id} in {args.dir}")
    print(f"entry public key: {me.entry_keys[0].public_key.hex()}")
    if me.checkpoint_key:
        print(f"checkpoint public key: {me.checkpoint_key.hex()}")
    print(f"TLS key pin (SPKI SHA-256): {me.tls_spki.hex()}")
    print(f"member card for the roster: {args.dir / 'member.json'}")
    if args.genesis:
        governance = new_key(args.dir / "keys" / "governance.pem")
        install_roster(config, genesis_roster([me], [governance.private_key]))
        print(
            "started a new consortium: roster version 1 in "
            f"{config.roster_path}, governance key {args.dir / 'keys' / 'governance.pem'}"
        )
    else:
        print(
            "next: have the consortium add the card to its roster, then install the "
            "roster with `ccnode roster publish ROSTER DIR`"
        )
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from node.logs import capture_native_stderr, setup_logging
    from node.server import serve, serve_config

    config = serve_config(
        args.dir,
        metrics_listen=args.metrics,
        log_json=True if (args.log_json or args.serve_log_json) else None,
        log_level=args.log_level or ("debug" if args.verbose else None),
        insecure=True if args.insecure else None,
        replica_of=args.replica_of,
        http_listen=args.http_listen,
    )
    # JSON lines: gRPC's C core writes to fd 2 itself; route that through logging too.
    stream = capture_native_stderr() if config.log_json else None
    setup_logging(config.log_level, json_lines=config.log_json, stream=stream)
    asyncio.run(serve(args.dir, parent_pid=args.parent_pid, config=config))
    return 0


def cmd_init_replica(args: argparse.Namespace) -> int:
    from node.config import with_overrides
    from node.member_dir import init_replica_dir

    config = init_replica_dir(args.member_dir, args.dir, args.replica_of)
    if args.listen is not None:
        config = with_overrides(config, listen=args.listen)
        config.save()
    print(
        f"initialised a match replica of {config.id} in {args.dir}, following "
        f"{config.replica_of}; start it with `ccnode serve {args.dir}`"
    )
    return 0


RESTART = "restart the node to apply"


def cmd_peers_add(args: argparse.Namespace) -> int:
    """Add a peer after checking it: a member of the roster, not revoked, not
    this node, not already a peer, and an address that parses (or a file)."""
    from node.config import check_address

    config = load_config(args.dir)
    peer_id = check_member_id(args.id)
    if peer_id == config.id:
        raise ValidationError(f"{peer_id} is this node: a node does not sync from itself")
    roster = config.roster()
    listed = roster.get(peer_id)
    if listed is None or listed.revoked:
        state = "is revoked in" if listed is not None else "is not a member in"
        raise ValidationError(
            f"{peer_id} {state} roster version {roster.version} ({config.roster_path}): "
            "a node accepts peers the roster lists (`ccnode roster show DIR`)"
        )
    held = next((p for p in config.peers if p.id == peer_id), None)
    if held is not None:
        raise ValidationError(
            f"{peer_id} is already a peer ({_where(held)}): "
            f"`ccnode peers remove {args.dir} --id {peer_id}` first to change it"
        )
    if args.address is not None:
        peer = PeerConfig(peer_id, address=check_address("--address", args.address))
    else:
        target = args.address_file.resolve()
        peer = PeerConfig(peer_id, address_file=os.path.relpath(target, config.dir.resolve()))
    NodeConfig(**{**_fields(config), "peers": (*config.peers, peer)}).save()
    print(f"added peer {peer_id} ({_where(peer)}); {RESTART}")
    return 0


def _where(peer: PeerConfig) -> str:
    return f"at {peer.address}" if peer.address else f"address read from {peer.address_file}"


def cmd_peers_list(args: argparse.Namespace) -> int:
    config = load_config(args.dir)
    rows = []
    for p in config.peers:
        now = p.resolver(config.dir)()
        rows.append(
            {
                "id": p.id,
                "address": p.address or None,
                "address_file": p.address_file or None,
                "current_address": now,
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print(f"no peers configured in {config.dir / 'config.toml'}")
    for p, row in zip(config.peers, rows, strict=True):
        now = "" if p.address else f" (now: {row['current_address'] or 'not running'})"
        print(f"{p.id:34} {_where(p)}{now}")
    return 0


def cmd_peers_remove(args: argparse.Namespace) -> int:
    config = load_config(args.dir)
    peer_id = check_member_id(args.id)
    kept = tuple(p for p in config.peers if p.id != peer_id)
    if len(kept) == len(config.peers):
        have = ", ".join(p.id for p in config.peers) or "none"
        raise NotFoundError(f"{peer_id} is not a peer of {config.id} (peers: {have})")
    NodeConfig(**{**_fields(config), "peers": kept}).save()
    print(f"removed peer {peer_id}; {RESTART}")
    return 0


def _fields(config: NodeConfig) -> dict[str, Any]:
    return {f: getattr(config, f) for f in config.__dataclass_fields__}


# -- client commands --------------------------------------------------------


def _address(args: argparse.Namespace) -> str:
    if args.to:
        return str(args.to)
    if args.dir is None:
        raise ValidationError("give a node directory or --to HOST:PORT")
    from node.dirlock import running_address

    config = load_config(args.dir)
    address = running_address(config.dir, config.addr_file)
    if address is None:
        stale = " (its node.addr is left from a process that exited)"
        raise ValidationError(
            f"no running node for {args.dir}{stale if config.addr_file.exists() else ''}; "
            "start it with `ccnode serve` or pass --to"
        )
    return address


def connect(args: argparse.Namespace) -> NodeClient:
    """A client for the command's node, speaking as DIR's TLS identity.

    Without a member directory there is no TLS identity: plaintext only,
    and only when asked for with --insecure.
    """
    from node.connect import client_for

    address = _address(args)
    if args.dir is not None:
        config = load_config(args.dir)
        if getattr(args, "insecure", False) and not config.insecure:
            import dataclasses

            config = dataclasses.replace(config, insecure=True)
        return client_for(config, address)
    if not getattr(args, "insecure", False):
        raise ValidationError(
            "--to without a member directory has no TLS identity: give the directory "
            "(ccnode init) whose key to connect with, or --insecure for a plaintext dev node"
        )
    return NodeClient(address)


async def resolve_entry_id(client: NodeClient, text: str) -> bytes:
    """An entry id as typed: 64 hex digits, or a unique prefix of at least 8
    that the node resolves (an ambiguous one is refused with the candidates)."""
    typed = check_id_text(text)
    if len(typed) == 64:
        return bytes.fromhex(typed)
    return bytes((await client.get_entry(typed)).provenance.entry_id)


def _submitter(args: argparse.Namespace) -> tuple[str, Signer]:
    if args.key is not None:
        if not args.origin:
            raise ValidationError("--key needs --origin (the member id the key speaks for)")
        return check_member_id(args.origin), load_signer(args.key)
    if args.dir is None:
        raise ValidationError(
            "give a member directory (a node's, or a key-only one: `ccnode init --key-only`), "
            "or --key KEY --origin ID --to ADDR --insecure"
        )
    config = load_config(args.dir)
    return config.id, config.signer()


def stall_option(p: argparse.ArgumentParser) -> None:
    """``--stall-seconds``, for the commands that read a live source."""
    p.add_argument(
        "--stall-seconds",
        type=float,
        default=STALL_S,
        help="a live source: no new data for this long ends the stream, with a warning "
        f"(default {STALL_S:g})",
    )


def cmd_submit(args: argparse.Namespace) -> int:
    if args.live is not None:
        from node.cli.live_cmds import cmd_submit_live

        return cmd_submit_live(args)
    origin, signer = _submitter(args)
    if args.retract:
        check_id_text(args.retract)
        fields: dict[str, Any] = {"kind": Kind.RETRACT, "target": args.retract}
    elif args.file is not None and _banks_track(args.file, args.algo):
        from node.cli.video_cmds import track_segments

        if args.segment_seconds is not None:
            raise ValidationError(
                "--segment-seconds is for a video's frames: audio is banked in segments "
                "of 60 s (485 sub-fingerprints)"
            )
        fields = _segments_fields(
            args, [("CHROMAPRINT", s.encode()) for s in track_segments(args.file)]
        )
    elif args.file is not None and _is_video(args.file) and args.algo in (None, "vpdq", "VPDQ"):
        from node.cli.video_cmds import bank_segments, soundtrack_segments

        seconds = args.segment_seconds if args.segment_seconds is not None else 60
        segments = bank_segments(args.file, round(seconds * 1000), video_limits.limits_of(args))
        batch = [("VPDQ", s.encode()) for s in segments]
        if args.algo is None:  # the soundtrack too, unless only vPDQ was asked for
            audio, why = soundtrack_segments(args.file)
            if why:
                print(f"ccnode: note: {why}: the soundtrack is not banked", file=sys.stderr)
            batch += [("CHROMAPRINT", s.encode()) for s in audio]
        fields = _segments_fields(args, batch)
    else:
        algo, value, quality = _hash_to_submit(args)
        fields = {
            "kind": Kind.ADD,
            "algorithm": algo,
            "hash": value,
            "labels": labels.normalize_labels(args.label),
            "incident": labels.check_incident(args.incident),
            "payload": b"" if quality is None else payloads.encode_quality(quality),
        }
    response = asyncio.run(_submit(origin, signer, fields, args))
    if isinstance(response, pb.Match):
        p = response.provenance
        if args.json:
            print(json.dumps({"entry_id": p.entry_id.hex(), "outcome": "existing"}))
        else:
            print(
                f"existing: entry {p.entry_id.hex()} (submitted by {origin} on "
                f"{when(p.time_ms)} with the same labels; not submitted again)"
            )
        return 0
    rows = [
        (r.entry_id.hex(), pb.Outcome.Name(r.outcome).removeprefix("OUTCOME_").lower())
        for r in response.results
    ]
    if args.json:
        docs = [{"entry_id": e, "outcome": o} for e, o in rows]
        print(json.dumps(docs[0] if len(docs) == 1 else docs))
    else:
        for entry_id, outcome in rows:
            print(f"{outcome}: entry {entry_id}")
        if len(rows) > 1:
            what = "retractions" if args.retract else "segments of the video"
            print(f"{len(rows)} {what} in one batch")
    return 0


def _segments_fields(args: argparse.Namespace, batch: list[tuple[str, bytes]]) -> dict[str, Any]:
    """An ADD of a video or an audio track: its segments ``(algorithm,
    hash)`` signed as one batch, the first standing for the whole when
    asking whether it was submitted already."""
    return {
        "kind": Kind.ADD,
        "algorithm": batch[0][0],
        "hash": batch[0][1],
        "labels": labels.normalize_labels(args.label),
        "incident": labels.check_incident(args.incident),
        "segments": batch,
    }


def _banks_track(path: Path, algo: str | None) -> bool:
    """``submit --file``: an audio file (unless a file digest is asked for),
    or a video with ``--algo chromaprint``, is banked as CHROMAPRINT segments."""
    from node.cli.media_cmds import AUDIO_SUFFIXES

    wanted = algo.upper() if algo else None
    if path.suffix.lower() in AUDIO_SUFFIXES:
        return wanted in (None, "CHROMAPRINT")
    return _is_video(path) and wanted == "CHROMAPRINT"


def _is_video(path: Path) -> bool:
    from node.cli.media_cmds import VIDEO_SUFFIXES

    return path.suffix.lower() in VIDEO_SUFFIXES


async def _video_retractions(client: NodeClient, target: bytes) -> list[dict[str, Any]]:
    """RETRACTs for every not yet retracted segment (vPDQ and soundtrack) of
    the video ``target`` is a segment of; none if it is not a VPDQ or
    CHROMAPRINT segment held there."""
    try:
        found = await client.get_entry(target)
    except NodeError:
        return []  # unknown there: the single RETRACT says so itself
    out = []
    for entry_id in found.video_segments:
        segment = found if entry_id == target else await client.get_entry(entry_id)
        if not segment.provenance.retracted:
            out.append({"kind": Kind.RETRACT, "target": entry_id})
    return out


def _hash_to_submit(args: argparse.Namespace) -> tuple[str, bytes, int | None]:
    """(algorithm, value, PDQ quality if known), through the submission gates:
    a PDQ quality below the floor and trivial digests are refused here, as
    the node would refuse them."""
    if args.file is not None:
        from node.cli.media_cmds import hash_for_submission

        if args.quality is not None:
            raise ValidationError("--quality is for --hash: --file computes the quality")
        return hash_for_submission(args.file, args.algo)
    if not args.algo or not args.hash_hex:
        raise ValidationError("submit needs --algo and --hash, or --file (or --retract ENTRY_ID)")
    algo = hashes.normalize_name(args.algo)
    value = hashes.parse_hex(algo, args.hash_hex)
    if args.quality is not None:
        if algo != "PDQ":
            raise ValidationError(f"--quality is for PDQ hashes, not {algo}")
        from node.media.image import check_pdq_quality

        check_pdq_quality(args.quality)
    hashes.check_not_trivial(algo, value)
    return algo, value, args.quality


async def _already_submitted(
    client: NodeClient, origin: str, fields: dict[str, Any]
) -> pb.Match | None:
    """This origin's live ADD of the same hash, if the node holds one.

    The same labels: that entry is the answer (a second would only be a
    duplicate in every list). Other labels: refused, pointing at RELABEL,
    which changes them on the entry everyone already holds. A submitter
    without the READ role cannot ask; then the node takes the entry.
    """
    algo, value = fields["algorithm"], fields["hash"]
    try:
        result = (await client.match([(algo, value)], include_retracted=False)).results[0]
    except ProvenanceError:
        return None
    for m in result.matches:
        p = m.provenance
        if p.origin != origin or p.algorithm != algo or p.hash != value:
            continue
        have = tuple(sorted(p.current_labels or p.labels))
        if have == tuple(fields["labels"]):
            return m
        short_id = p.entry_id.hex()[:16]
        raise ConflictError(
            f"{origin} already submitted this {algo} hash as entry {short_id} with labels "
            f"{','.join(have) or '(none)'}; not submitted again. To change its labels: "
            f"ccnode feedback relabel DIR --entry {short_id} "
            + " ".join(f"--label {label}" for label in fields["labels"])
        )
    return None


async def _submit(
    origin: str,
    signer: Signer,
    fields: dict[str, Any],
    args: argparse.Namespace,
) -> pb.SubmitResponse | pb.Match:
    """Sign the entry (a video: its segments; a video's segment retracted: every
    segment) as one chained batch after the origin's head and submit it (a
    two-hour video is 120 segments; the submit cap is 1000 entries)."""
    from node.cli.report_cmds import sign_chain

    async with connect(args) as client:
        if isinstance(fields.get("target"), str):
            fields = {**fields, "target": await resolve_entry_id(client, fields["target"])}
        segments = fields.pop("segments", None)
        batch = [fields]
        if fields["kind"] == Kind.ADD:
            # a video: is its first segment live already? (same labels: it is the answer)
            existing = await _already_submitted(client, origin, fields)
            if existing is not None:
                return existing
            if segments is not None:  # (algorithm, hash): vPDQ, then the soundtrack
                batch = [{**fields, "algorithm": a, "hash": h} for a, h in segments]
        else:  # a video's segment: retract the whole video, in one batch
            batch = await _video_retractions(client, fields["target"]) or batch
        common = {"reason": args.reason, "urgent": args.urgent}
        entries = await sign_chain(client, origin, signer, [{**common, **f} for f in batch])
        return await client.submit(entries)


def cmd_match(args: argparse.Namespace) -> int:
    if args.hash_hex is None:
        from node.cli.media_cmds import match_files

        return match_files(args)
    if not args.algo:
        raise ValidationError("--hash needs --algo")
    if len(args.paths) > 1:
        raise ValidationError("with --hash, give at most one node directory")
    args.dir = args.paths[0] if args.paths else args.node_dir
    algo = hashes.normalize_name(args.algo)
    value = hashes.parse_hex(algo, args.hash_hex)

    async def go() -> pb.MatchResponse:
        async with connect(args) as client:
            return await client.match(
                [(algo, value)],
                include_retracted=args.include_retracted,
                record=args.record,
                max_distance=args.max_distance,
            )

    result = asyncio.run(go()).results[0]
    answer = QueryAnswer(
        None,
        {algo: value},
        list(result.matches),
        result.never_match,
        truncated=result.truncated,
        total=result.total,
    )
    if args.json:
        print(json.dumps([answer.json()], indent=2))
    else:
        answer.print(f"{algo} {value.hex()[:16]}")
    return 0


@dataclass(frozen=True, slots=True)
class QueryAnswer:
    """What one query got from Match: a ``--hash``, or a file (every hash of
    it asked together). ``ccnode match`` prints one of these per query, in
    the same shape for both (docs: README "Matching")."""

    file: str | None  # the file hashed here, or None for --hash
    hashes: dict[str, bytes]  # algorithm -> the value asked
    matches: list[pb.Match]  # one per entry, nearest first
    never_match: bool = False  # on the node's never-match list: no matches given
    truncated: bool = False  # the node listed only the best of the matches
    total: int = 0  # how many entries matched, when known (a --hash query)

    def verdict(self) -> QueryVerdict | None:
        return overall((m.recommended_action, m.rule, m.provenance.entry_id) for m in self.matches)

    def json(self) -> dict[str, Any]:
        v = self.verdict()
        return {
            "file": self.file,
            "query": {algo: value.hex() for algo, value in self.hashes.items()},
            "never_match": self.never_match,
            "verdict": None
            if v is None
            else {"action": v.action, "rule": v.rule, "entry_id": v.entry_id.hex()},
            "matches": [match_json(m) for m in self.matches],
            "truncated": self.truncated,
            "total": self.total or len(self.matches),
        }

    def print(self, label: str) -> None:
        if self.never_match:
            print(f"{label}: no match (on this node's never-match list)")
            return
        v = self.verdict()
        if v is None:
            print(f"{label}: no match")
            return
        n = len(self.matches)
        count = f"{n} match{'es' if n != 1 else ''}"
        if self.truncated:  # docs/protocol.md, "Match answers"
            count = f"the best {n} of {self.total}" if self.total else f"the best {n}; more matched"
        print(f"{label}: {v.action} (rule {v.rule or '-'}, entry {v.entry_id.hex()[:16]}; {count})")
        print_matches(self.matches)


def variant_name(m: pb.Match) -> str:
    """Which of the query's PDQ hashes matched: original, rotate90, flip_x, ..."""
    from node.media.image import DIHEDRAL_NAMES

    if 0 <= m.variant < len(DIHEDRAL_NAMES):
        return DIHEDRAL_NAMES[m.variant]
    return f"variant {m.variant}"


def print_matches(matches: list[pb.Match]) -> None:
    for m in matches:
        p = m.provenance
        state = "RETRACTED" if p.retracted else m.recommended_action
        flags = ["URGENT"] if p.urgent else []
        flags.append("settled" if p.settled else "not yet settled")
        if p.origin_equivocated:
            flags.append("ORIGIN EQUIVOCATED")
        if p.origin_status not in ("", "active"):
            flags.append(p.origin_status.upper())
        how = f"{p.algorithm} distance {m.distance}"
        if p.algorithm == "PDQ":
            how += f" ({variant_name(m)})"
        else:
            how += " (exact)"
        print(
            f"  {state:9} {how}  {p.origin} ({p.origin_kind}, {p.jurisdiction or '-'})  "
            f"labels {','.join(p.current_labels or p.labels) or '-'}  "
            f"incident {p.incident or '-'}  entry {p.entry_id.hex()[:16]}  "
            f"rule {m.rule or '-'}  endorsed {sum(t.count for t in p.endorsements)}  "
            f"disputed {sum(t.count for t in p.disputes)}  "
            f"[{', '.join(flags)}]"
        )


def match_json(m: pb.Match) -> dict[str, Any]:
    p = m.provenance
    return {
        "entry_id": p.entry_id.hex(),
        "distance": m.distance,
        "variant": variant_name(m) if p.algorithm == "PDQ" else None,
        "quality": p.quality or None,
        "recommended_action": m.recommended_action,
        "origin": p.origin,
        "origin_kind": p.origin_kind,
        "jurisdiction": p.jurisdiction,
        "algorithm": p.algorithm,
        "hash": p.hash.hex(),
        "labels": list(p.labels),
        "incident": p.incident,
        "time_ms": p.time_ms,
        "arrival_ms": p.arrival_ms,
        "seq": p.seq,
        "retracted": p.retracted,
        "urgent": p.urgent,
        "origin_status": p.origin_status,
        "origin_name": p.origin_name,
        "settled": p.settled,
        "origin_equivocated": p.origin_equivocated,
        "rule": m.rule,
        "current_labels": list(p.current_labels),
        "relabelled_by": p.relabelled_by.hex() or None,
        "endorsements": [tally_json(t) for t in p.endorsements],
        "disputes": [tally_json(t) for t in p.disputes],
        "votes": [
            {
                "member": v.member,
                "kind": v.member_kind,
                "jurisdiction": v.jurisdiction,
                "vote": v.vote,
                "reason": v.reason or None,
                "entry_id": v.entry_id.hex(),
                "revoked": v.revoked,
            }
            for v in p.votes
        ],
    }


def tally_json(t: pb.VoteTally) -> dict[str, Any]:
    return {"member_kind": t.member_kind, "jurisdiction": t.jurisdiction, "count": t.count}


def cmd_status(args: argparse.Namespace) -> int:
    address = _address(args)

    async def go() -> pb.StatusResponse:
        async with connect(args) as client:
            return await client.status()

    s = asyncio.run(go())
    if args.json:
        doc = {
            "node_id": s.node_id,
            "version": s.version,
            "entries": s.entries,
            "evidence": s.evidence,
            "roster_version": s.roster_version,
            "roster_expires": when(s.roster_expires_ms),
            "roster_id": s.roster_id.hex(),
            "checkpoint_vkey": s.checkpoint_vkey,
            "heads": {
                h.origin: {
                    "next_seq": h.next_seq,
                    "head_id": h.head_id.hex(),
                    "checkpoint_size": h.checkpoint_size,
                    "settled_size": h.settled_size,
                }
                for h in s.heads
            },
            "alerts": [
                {"kind": a.kind, "origin": a.origin, "peer": a.peer, "detail": a.detail}
                for a in s.alerts
            ],
            "peers": [
                {
                    "id": p.peer_id,
                    "address": p.address,
                    "state": p.state,
                    "lag_entries": p.lag_entries,
                    "received": p.received,
                    "refused": p.refused,
                    "last_error": p.last_error,
                    "withholding": p.withholding,
                }
                for p in s.peers
            ],
        }
        print(json.dumps(doc, indent=2))
        return 0
    print(f"node {s.node_id} (ccnode {s.version}) at {address}: {s.entries} entries")
    print(f"  roster version {s.roster_version}, expires {when(s.roster_expires_ms)}")
    if s.checkpoint_vkey:
        print(f"  checkpoint verifier key (C2SP vkey): {s.checkpoint_vkey}")
    if s.evidence:
        print(f"ALERT: {s.evidence} equivocation evidence record(s) held")
    for a in s.alerts:
        print(f"ALERT {a.kind}: {a.detail}")
    for h in s.heads:
        print(
            f"  origin {h.origin:32} {h.next_seq:8} entries  head {h.head_id.hex()[:16]}  "
            f"checkpoint {h.checkpoint_size} settled {h.settled_size}"
        )
    for p in s.peers:
        err = f"  last error: {p.last_error}" if p.last_error else ""
        flag = "  WITHHOLDING" if p.withholding else ""
        print(f"  peer {p.peer_id:34} {p.state:10} lag {p.lag_entries}{flag}{err}")
    return 0


def cmd_labels(args: argparse.Namespace) -> int:
    if args.json:
        doc = [
            {"label": f"{dim}:{value}", "dimension": dim, "value": value, "meaning": meaning}
            for dim, values in labels.TAXONOMY.items()
            for value, meaning in values.items()
        ]
        print(json.dumps(doc, indent=2))
        return 0
    for dim, values in labels.TAXONOMY.items():
        for value, meaning in values.items():
            print(f"{dim}:{value:42} {meaning}")
    return 0


def _unused() -> None:  # keep imports honest for type checkers
    _ = (os, sys)
