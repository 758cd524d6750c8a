"""Interop commands: export and import hash lists (pytx, CSV, JSONL)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from node.config import load_config, load_signer
from node.core.entry import ZERO_ID, EntryBody, Kind, SignedEntry, Signer, check_member_id
from node.errors import ValidationError
from node.interop.formats import (
    FORMATS,
    BadRow,
    ExportCounts,
    Record,
    Row,
    SkippedRow,
    export_lines,
)
from node.progress import Progress
from node.rpc.client import NodeClient

IMPORT_BATCH = 500
#: Exit code of an import in which some rows could not be read (each was
#: reported; the rest were imported). Rows skipped by design exit 0.
EXIT_BAD_ROWS = 8


def register(sub: Any) -> None:
    p = sub.add_parser("export", help="write a node's hashes as a pytx signal file, CSV or JSONL")
    p.add_argument("out", help="output file ('-' for stdout)")
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument("--dir", type=Path, help="node directory: read its store (running or not)")
    p.add_argument("--to", help="or read a node over gRPC at HOST:PORT")
    p.add_argument("--insecure", action="store_true", help="plaintext connection (dev only)")
    p.add_argument(
        "--include-retracted",
        action="store_true",
        help="csv/jsonl: also rows for retracted entries (flagged)",
    )
    p.add_argument("--json", action="store_true", help="the summary as JSON on stderr")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("import", help="sign and submit the hashes in a file as this member")
    p.add_argument("file", help="input file ('-' for stdin)")
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument("--dir", type=Path, help="node directory (key, member id, running node)")
    p.add_argument("--to", help="node address host:port (default: DIR's running node)")
    p.add_argument("--insecure", action="store_true", help="plaintext connection (dev only)")
    p.add_argument("--key", type=Path, help="key file (key-only submitters, with --origin)")
    p.add_argument("--origin", help="member id the key speaks for (with --key)")
    p.add_argument(
        "--label",
        action="append",
        default=[],
        help="label for every row (repeat); a type: label the row's signal type contradicts "
        "is not applied to it",
    )
    p.add_argument("--json", action="store_true", help="the summary as JSON")
    p.set_defaults(func=cmd_import)


# -- export ----------------------------------------------------------------------


def _local_records(directory: Path) -> tuple[Iterator[Record], int, Any]:
    from node.store.lmdb_store import LmdbStore

    config = load_config(directory)
    members = {m.id: m for m in config.members().members()}
    store = LmdbStore(config.data_dir, readonly=True)

    def records() -> Iterator[Record]:
        for stored in store.iter_entries():
            m = members.get(stored.entry.body.origin)
            yield Record(
                stored.entry,
                stored.arrival_ms,
                stored.retracted_by,
                m.kind.value if m else "",
                m.jurisdiction if m else "",
            )

    return records(), store.count(), store


def _remote_records(address: str, directory: Path | None, insecure: bool) -> Iterator[Record]:
    from node.connect import credentials_for
    from node.interop import feed

    config = load_config(directory) if directory else None
    members = {m.id: m for m in config.members().members()} if config else {}
    if config is not None and not insecure:
        credentials = credentials_for(config)
    elif insecure:
        credentials = None
    else:
        raise ValidationError(
            "--to without --dir has no TLS identity: give the member directory whose key "
            "to connect with, or --insecure for a plaintext dev node"
        )
    for rec in feed.records(address, credentials=credentials):
        m = members.get(rec.entry.body.origin)
        yield Record(
            rec.entry,
            rec.arrival_ms,
            rec.retracted_by,
            m.kind.value if m else "",
            m.jurisdiction if m else "",
        )


def cmd_export(args: argparse.Namespace) -> int:
    if not args.dir and not args.to:
        raise ValidationError("export needs --dir DIR or --to HOST:PORT")
    store = None
    if args.to:
        records, total = _remote_records(str(args.to), args.dir, args.insecure), None
    else:
        records, total, store = _local_records(args.dir)
    counts = ExportCounts()
    try:
        with Progress("export", total, unit="entries") as progress:

            def counted() -> Iterator[Record]:
                for rec in records:
                    progress.advance()
                    yield rec

            lines = export_lines(
                counted(), args.format, counts, include_retracted=args.include_retracted
            )
            _write_out(args.out, lines)
    finally:
        if store is not None:
            store.close()
    if args.json:
        doc = {
            "format": args.format,
            "out": args.out,
            "rows": counts.written,
            "retracted_left_out": counts.retracted,
            "repeated_merged": counts.duplicate,
            "no_pytx_form": counts.unsupported,
            "unread_by_pytx": counts.unread_by_pytx,
            "labels_not_carried": counts.labelled,
            "pytx_pdq": counts.pdq,
        }
        print(json.dumps(doc), file=sys.stderr)
        return 0
    notes = []
    if counts.retracted:
        notes.append(f"{counts.retracted} retracted left out")
    if counts.duplicate:
        notes.append(f"{counts.duplicate} repeated hashes merged")
    if counts.unsupported:
        notes.append(
            f"{counts.unsupported} left out with no pytx form (TMK+PDQF; videos without 1/s frames)"
        )
    more = f" ({'; '.join(notes)})" if notes else ""
    print(f"exported {counts.written} {args.format} rows to {args.out}{more}", file=sys.stderr)
    for note in _pytx_notes(counts):
        print(f"note: {note}", file=sys.stderr)
    return 0


def _pytx_notes(counts: ExportCounts) -> list[str]:
    """What a pytx signal file cannot say, and what python-threatexchange will
    make of it."""
    notes = []
    if counts.labelled:
        notes.append(
            f"{counts.labelled} rows have labels or an incident, which a pytx signal file "
            "cannot carry (pytx lists them as INVESTIGATION_SEED without tags); the exchange "
            "extension node.interop.pytx, csv and jsonl carry them"
        )
    if counts.unread_by_pytx:
        notes.append(
            f"{counts.unread_by_pytx} md5/sha256 rows of content not labelled as video: "
            "python-threatexchange skips these types (it has video_md5 and video_sha256); "
            "ccnode import reads them"
        )
    if counts.pdq == 1:
        notes.append(
            "exactly one PDQ hash: python-threatexchange's PDQ index matches nothing when it "
            "holds a single hash (facebook/ThreatExchange#1318); it works from two"
        )
    return notes


def _write_out(out: str, lines: Iterator[str]) -> None:
    if out == "-":
        for line in lines:
            sys.stdout.write(line)
        sys.stdout.flush()
        return
    path = Path(out)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with tmp.open("w", encoding="utf-8", newline="") as f:
            for line in lines:
                f.write(line)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        raise ValidationError(f"cannot write {path}: {exc.strerror}") from None
    os.replace(tmp, path)


# -- import ----------------------------------------------------------------------


@dataclass(slots=True)
class ImportSummary:
    imported: int = 0
    already: int = 0  # published by this member before (idempotent re-runs)
    retracted: int = 0  # published and retracted by this member: not re-added
    repeated: int = 0  # the same hash earlier in the file
    first_seq: int = -1
    last_seq: int = -1


def _open_input(name: str) -> TextIO:
    if name == "-":
        return sys.stdin
    try:
        return Path(name).open(encoding="utf-8", newline="")
    except OSError as exc:
        raise ValidationError(f"cannot read {name}: {exc.strerror}") from None


def cmd_import(args: argparse.Namespace) -> int:
    from node.cli.node_cmds import _address, connect
    from node.interop.formats import parse_rows

    if args.key is not None:
        if not args.origin:
            raise ValidationError("--key needs --origin (the member id the key speaks for)")
        origin, signer = check_member_id(args.origin), load_signer(args.key)
    elif args.dir is not None:
        config = load_config(args.dir)
        origin, signer = config.id, config.signer()
    else:
        raise ValidationError("give --dir DIR, or --key KEY --origin ID --to ADDR --insecure")
    target = argparse.Namespace(to=args.to, dir=args.dir, insecure=args.insecure)
    _address(target)  # a node to reach, before reading the input
    stream = _open_input(args.file)
    try:
        parsed = list(parse_rows(stream, args.format, args.label))
    except UnicodeDecodeError:
        raise ValidationError(f"{args.file} is not UTF-8 text") from None
    finally:
        if stream is not sys.stdin:
            stream.close()
    bad = [r for r in parsed if isinstance(r, BadRow)]
    skipped = [r for r in parsed if isinstance(r, SkippedRow)]
    rows = [r for r in parsed if isinstance(r, Row)]
    for b in bad:
        print(f"ccnode: {args.file}: {b}", file=sys.stderr)
    for s in skipped:
        print(f"ccnode: warning: {args.file}: {s}", file=sys.stderr)
    summary = asyncio.run(_import(lambda: connect(target), origin, signer, rows))
    code = EXIT_BAD_ROWS if bad else 0
    if args.json:
        doc = {
            "origin": origin,
            "imported": summary.imported,
            "first_seq": summary.first_seq if summary.imported else None,
            "last_seq": summary.last_seq if summary.imported else None,
            "already": summary.already,
            "retracted_earlier": summary.retracted,
            "repeated": summary.repeated,
            "skipped": [{"line": s.line, "why": s.why} for s in skipped],
            "bad": [{"line": b.line, "error": b.error} for b in bad],
            "exit": code,
        }
        print(json.dumps(doc, indent=2))
        return code
    seqs = f" (seq {summary.first_seq}..{summary.last_seq})" if summary.imported else ""
    withdrawn = (
        f"; {summary.retracted} retracted earlier (not re-added; submit them one by one "
        "to publish again)"
        if summary.retracted
        else ""
    )
    print(
        f"imported {summary.imported} new entries{seqs}; {summary.already} already published "
        f"by {origin}; {summary.repeated} repeated in the file; {len(skipped)} skipped; "
        f"{len(bad)} bad rows{withdrawn}"
    )
    return code


async def _import(
    connect: Callable[[], NodeClient], origin: str, signer: Signer, rows: Sequence[Row]
) -> ImportSummary:
    from node.rpc import convert

    summary = ImportSummary()
    client = connect()  # in this event loop
    client.deadline_s = 60.0
    async with client:
        # Read this member's own log from the node: what is already published
        # (and not retracted), and where the log's head is.
        status = await client.status()
        cursors = {h.origin: h.next_seq for h in status.heads if h.origin != origin}
        cursors[origin] = 0
        adds: dict[bytes, tuple[str, bytes]] = {}
        retracted: set[bytes] = set()
        seq, prev = 0, ZERO_ID
        async for response in client.pull(cursors, follow=False, max_batch=1024):
            for entry in convert.entries_from_pb(response.entries):
                body = entry.body
                if body.origin != origin:
                    continue
                seq, prev = body.seq + 1, entry.entry_id
                if body.kind == Kind.ADD:
                    adds[entry.entry_id] = (body.algorithm, body.hash)
                elif body.kind == Kind.RETRACT:
                    retracted.add(body.target)
        published = {v for k, v in adds.items() if k not in retracted}
        withdrawn = {v for k, v in adds.items() if k in retracted} - published
        todo: list[Row] = []
        seen: set[tuple[str, bytes]] = set()
        for row in rows:
            key = (row.algorithm, row.value)
            if key in published:
                summary.already += 1
            elif key in withdrawn:
                summary.retracted += 1  # a re-run must not undo a retraction
            elif key in seen:
                summary.repeated += 1
            else:
                seen.add(key)
                todo.append(row)
        with Progress("import", len(todo), unit="entries") as progress:
            for start in range(0, len(todo), IMPORT_BATCH):
                batch: list[SignedEntry] = []
                for row in todo[start : start + IMPORT_BATCH]:
                    entry = signer.sign(
                        EntryBody(
                            origin=origin,
                            seq=seq,
                            prev=prev,
                            key_id=signer.key_id,
                            time_ms=time.time_ns() // 1_000_000,
                            kind=Kind.ADD,
                            algorithm=row.algorithm,
                            hash=row.value,
                            labels=row.labels,
                            incident=row.incident,
                            reason=row.reason,
                            urgent=row.urgent,
                        )
                    )
                    batch.append(entry)
                    seq, prev = seq + 1, entry.entry_id
                await client.submit(batch)  # all-or-nothing; acknowledged = committed
                if summary.first_seq < 0:
                    summary.first_seq = batch[0].body.seq
                summary.last_seq = batch[-1].body.seq
                summary.imported += len(batch)
                progress.advance(len(batch))
    return summary
