"""``ccnode demo``: a local three-node mesh, end to end, in a temp dir."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import tempfile
import time
from pathlib import Path
from typing import Any

from node.core.entry import EntryBody, Kind, SignedEntry
from node.core.trust import MemberKind, check_provenance
from node.errors import NotFoundError, PeerError
from node.mesh import Mesh, MeshNode
from node.rpc import convert

GOV = "gov.example/ct-unit"
PLATFORMS = ("video-platform.example", "forum.example")
INCIDENT = "christchurch-2019-03-15"


def register(sub: Any) -> None:
    p = sub.add_parser(
        "demo", help="start a 3-node local mesh, share hashes end to end, report, stop"
    )
    p.add_argument("--dir", type=Path, help="keep the mesh here instead of a temp dir")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for arrival")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    if args.dir is not None:
        return _run(args.dir, args.timeout)
    with tempfile.TemporaryDirectory(prefix="ccnode-demo-") as tmp:
        return _run(Path(tmp), args.timeout)


def _run(root: Path, timeout: float) -> int:
    specs = [(GOV, MemberKind.GOVERNMENT)] + [(p, MemberKind.PLATFORM) for p in PLATFORMS]
    print(f"Starting 3 nodes (line: {GOV} - {PLATFORMS[0]} - {PLATFORMS[1]}) in {root}")
    print("  mutual TLS between nodes, each pinned in a genesis roster signed 2-of-3")
    with Mesh.create(root, specs, "line") as mesh:
        mesh.start()
        for n in mesh.nodes:
            print(f"  {n.config.id:26} {n.config.kind.value:10} listening on {n.address}")
        asyncio.run(_scenario(mesh.nodes[0], mesh.nodes[-1], timeout))
    print("All nodes stopped.")
    return 0


def _demo_hashes() -> list[tuple[str, bytes, tuple[str, ...]]]:
    seed = b"ccnode demo: synthetic, not real content"
    return [
        (
            "PDQ",
            hashlib.sha256(seed + b"pdq").digest(),
            ("behaviour:graphic-violence-defenceless", "entity:attacker", "type:livestream"),
        ),
        (
            "MD5",
            hashlib.md5(seed).digest(),  # noqa: S324 - MD5 is the shared format
            ("behaviour:manifesto", "entity:attacker", "type:pdf"),
        ),
        ("SHA256", hashlib.sha256(seed).digest(), ("behaviour:glorification", "type:video")),
    ]


async def _scenario(gov: MeshNode, far: MeshNode, timeout: float) -> None:
    submitted: list[tuple[SignedEntry, float]] = []
    async with gov.client() as client:
        status = await client.status()
        head = next((h for h in status.heads if h.origin == GOV), None)
        seq, prev = (head.next_seq, head.head_id) if head else (0, bytes(32))
        for algo, value, labels in _demo_hashes():
            body = EntryBody(
                origin=GOV,
                seq=seq,
                prev=prev,
                key_id=gov.signer.key_id,
                time_ms=time.time_ns() // 1_000_000,
                kind=Kind.ADD,
                algorithm=algo,
                hash=value,
                labels=labels,
                incident=INCIDENT,
                urgent=True,
            )
            entry = gov.signer.sign(body)
            await client.submit([entry])
            submitted.append((entry, time.monotonic()))
            seq, prev = seq + 1, entry.entry_id
    print(f"\nSubmitted {len(submitted)} signed hashes at {GOV} (incident {INCIDENT}).")

    trust = far.config.members()
    deadline = time.monotonic() + timeout
    async with far.client() as client:
        arrived: dict[bytes, float] = {}
        while len(arrived) < len(submitted):
            for entry, _ in submitted:
                if entry.entry_id in arrived:
                    continue
                try:
                    await client.get_entry(entry.entry_id)
                except NotFoundError:
                    continue  # not there yet
                arrived[entry.entry_id] = time.monotonic()
            if time.monotonic() > deadline:
                raise PeerError(f"entries did not reach {far.config.id} within {timeout}s")
            await asyncio.sleep(0.01)

        print(f"\nAt {far.config.id} (two hops away):")
        for entry, sent in submitted:
            got = await client.get_entry(entry.entry_id)
            relayed = convert.entry_from_pb(got.entry)
            check_provenance(trust, relayed)  # verify independently, here
            identical = relayed.to_bytes() == entry.to_bytes()
            resp = await client.match([(entry.body.algorithm, entry.body.hash)])
            m = resp.results[0].matches[0]
            p = m.provenance
            ms = (arrived[entry.entry_id] - sent) * 1000
            print(
                f"  {p.algorithm:6} {p.hash.hex()[:16]}…  submitted by {p.origin} "
                f"({p.origin_kind}, {p.jurisdiction})\n"
                f"         signature verified against the submitter's key; "
                f"bytes identical: {'yes' if identical else 'NO'}; "
                f"arrived in {ms:.0f} ms; match -> {m.recommended_action}, "
                f"labels {', '.join(p.labels)}"
            )
