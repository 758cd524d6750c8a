"""Crash and partition tolerance with real node processes."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import replace
from pathlib import Path

import pytest

from node.config import PeerConfig, load_config
from node.core.trust import MemberKind, MembersFile
from node.errors import PeerError
from node.mesh import Mesh, MeshNode
from node.store.lmdb_store import LmdbStore
from tests.helpers import Origin, member, signer_for, write_node_dir

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _status_heads(node: MeshNode) -> dict[str, int] | None:
    async def go() -> dict[str, int]:
        async with node.client(deadline_s=2.0) as c:
            s = await c.status()
        return {h.origin: h.next_seq for h in s.heads}

    try:
        return asyncio.run(go())
    except PeerError:
        return None


def _poll(pred, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s: {what}")
        time.sleep(0.01)


def test_kill_9_during_catch_up_never_loses_acknowledged_entries(
    tmp_path: Path, long_run: bool
) -> None:
    rounds = 100 if long_run else 20
    names = [f"platform-{i}.example" for i in range(5)]
    members = MembersFile.of([member(n) for n in names])
    src_cfg = write_node_dir(tmp_path, names[0], members)
    # The source holds a large store before it starts (30k entries, 5 origins).
    store = LmdbStore(src_cfg.data_dir)
    origins = [Origin(n) for n in names]
    for _ in range(6):
        batch = [o.next() for o in origins for _ in range(1000)]
        assert store.ingest(batch, atomic=True, now_ms=0).errors == []
    want = store.heads()
    store.close()
    total = sum(h.next_seq for h in want.values())
    sink_cfg = write_node_dir(
        tmp_path,
        names[1],
        members,
        peers=(PeerConfig(names[0], address_file=f"../{names[0]}/node.addr"),),
    )
    mesh = Mesh(
        tmp_path,
        [
            MeshNode(src_cfg, signer_for(names[0]), members.member(names[0])),
            MeshNode(sink_cfg, signer_for(names[1]), members.member(names[1])),
        ],
    )
    src, sink = mesh.nodes
    rng = random.Random(7)
    try:
        mesh.start_node(src)
        acknowledged: dict[str, int] = {}
        killed_mid_ingest = 0
        for _ in range(rounds):
            mesh.start_node(sink)
            mesh.wait_ready(30)
            after = _status_heads(sink)
            assert after is not None, "sink did not answer after restart"
            for origin, n in acknowledged.items():
                assert after.get(origin, 0) >= n, f"lost acknowledged entries of {origin}"
            before = sum(after.values())
            # Let it ingest a little (a random amount), then kill -9 mid-stream.
            target = before + rng.randint(1, 400)
            seen: dict[str, int] = {}

            def progressed(target: int = target) -> bool:
                nonlocal seen
                seen = _status_heads(sink) or seen
                return sum(seen.values()) >= min(target, total)

            _poll(progressed, 30, "sink ingesting")
            acknowledged = seen
            mesh.stop_node(sink, kill=True)
            killed_mid_ingest += sum(seen.values()) < total
        assert killed_mid_ingest >= rounds // 2, "most kills should land mid-catch-up"
        mesh.start_node(sink)
        mesh.wait_ready(30)
        _poll(
            lambda: _status_heads(sink) == {o: h.next_seq for o, h in want.items()},
            60,
            "sink converged with the source",
        )
    finally:
        mesh.stop()
    # Offline: what the sink holds is byte-identical to the source.
    a, b = LmdbStore(src_cfg.data_dir), LmdbStore(sink_cfg.data_dir)
    try:
        for origin in want:
            assert [e.to_bytes() for e in a.entries_from(origin, 0, 10**6)] == [
                e.to_bytes() for e in b.entries_from(origin, 0, 10**6)
            ]
    finally:
        a.close()
        b.close()


def _submit(node: MeshNode, count: int, tag: str) -> None:
    from node.core.entry import EntryBody, Kind

    async def go() -> None:
        async with node.client() as c:  # as that member, over mutual TLS
            s = await c.status()
            head = next((h for h in s.heads if h.origin == node.config.id), None)
            seq, prev = (head.next_seq, head.head_id) if head else (0, bytes(32))
            for i in range(count):
                body = EntryBody(
                    origin=node.config.id,
                    seq=seq,
                    prev=prev,
                    key_id=node.signer.key_id,
                    time_ms=0,
                    kind=Kind.ADD,
                    algorithm="SHA256",
                    hash=(tag.encode() + i.to_bytes(4, "big")).ljust(32, b"\x01"),
                )
                entry = node.signer.sign(body)
                await c.submit([entry])
                seq, prev = seq + 1, entry.entry_id

    asyncio.run(go())


def test_partitioned_mesh_converges_after_healing(tmp_path: Path) -> None:
    specs = [("gov.example/ct", MemberKind.GOVERNMENT)] + [
        (f"platform-{i}.example", MemberKind.PLATFORM) for i in range(1, 8)
    ]
    with Mesh.create(tmp_path, specs, "ring") as mesh:
        for n in mesh.nodes:
            n.config = replace(n.config, anti_entropy_s=0.5)
            n.config.save()
        mesh.start()
        halves = ({0, 1, 2, 3}, {4, 5, 6, 7})
        side = {i: 0 if i in halves[0] else 1 for i in range(8)}
        healed = {i: n.config for i, n in enumerate(mesh.nodes)}
        ids = {n.config.id: i for i, n in enumerate(mesh.nodes)}

        # Partition: the border nodes restart without their cross-border peers.
        border = [
            i
            for i, n in enumerate(mesh.nodes)
            if any(side[ids[p.id]] != side[i] for p in n.config.peers)
        ]
        assert sorted(border) == [0, 3, 4, 7]
        for i in border:
            n = mesh.nodes[i]
            mesh.stop_node(n)
            n.config = replace(
                n.config, peers=tuple(p for p in n.config.peers if side[ids[p.id]] == side[i])
            )
            n.config.save()
            mesh.start_node(n)
        mesh.wait_ready(30)

        _submit(mesh.nodes[0], 15, "west")
        _submit(mesh.nodes[5], 15, "east")
        west, east = mesh.nodes[0].config.id, mesh.nodes[5].config.id
        for i, n in enumerate(mesh.nodes):
            mine = west if side[i] == 0 else east
            _poll(
                lambda n=n, mine=mine: (_status_heads(n) or {}).get(mine) == 15,
                20,
                f"{n.config.id} has its own side's entries",
            )
        for i, n in enumerate(mesh.nodes):
            other = east if side[i] == 0 else west
            assert (_status_heads(n) or {}).get(other, 0) == 0, "partition leaked"

        # Heal: original peer sets back; every node converges.
        for i in border:
            n = mesh.nodes[i]
            mesh.stop_node(n)
            n.config = healed[i]
            n.config.save()
            mesh.start_node(n)
        mesh.wait_ready(30)
        started = time.monotonic()
        want = {west: 15, east: 15}
        for n in mesh.nodes:
            _poll(
                lambda n=n: _status_heads(n) == want,
                15,
                f"{n.config.id} converged after healing",
            )
        assert time.monotonic() - started < 15
        assert load_config(mesh.nodes[0].config.dir).peers == healed[0].peers
