"""A catch-up stays exact when batches verified while the writer is busy
are committed together (node/sync/engine.py, COMMIT_MAX): every entry once,
in chain order, nothing lost. What the coalescing gains is measured by
scripts/bench/catchup.py, not here."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from node.config import PeerConfig
from node.core.entry import SignedEntry
from node.core.trust import MemberKind, MembersFile
from node.server import Node
from tests.helpers import LoopThread, Origin, eventually, member, write_node_dir

pytestmark = pytest.mark.integration

GOV, SOURCE, SINK = "gov.example/ct", "platform-one.example", "platform-two.example"
ENTRIES = 3000  # a Pull response carries at most 256 of one origin's entries


def test_batches_verified_while_the_writer_is_busy_commit_together(
    tmp_path: Path, loop: LoopThread
) -> None:
    members = MembersFile.of([member(GOV, MemberKind.GOVERNMENT), member(SOURCE), member(SINK)])
    source_cfg = write_node_dir(tmp_path, SOURCE, members)
    sink_cfg = write_node_dir(
        tmp_path, SINK, members, peers=(PeerConfig(SOURCE, address_file=f"../{SOURCE}/node.addr"),)
    )
    gov = Origin(GOV)
    entries = [gov.next() for _ in range(ENTRIES)]
    source = Node(source_cfg, anti_entropy_s=0)
    sink = Node(sink_cfg, anti_entropy_s=0)
    assert source.store.ingest(entries, atomic=True, now_ms=0).errors == []
    release = threading.Event()
    committed: list[bytes] = []

    def note(batch: Sequence[SignedEntry]) -> None:
        committed.extend(e.entry_id for e in batch)

    async def start_sink_with_its_writer_busy() -> None:
        await sink.start()
        # Queued before the stream's first batch can have been verified.
        sink.app.writer.submit(lambda txn: release.wait(30))

    loop.run(source.start())
    try:
        sink.app.on_commit(note)
        loop.run(start_sink_with_its_writer_busy())
        # A second batch arrives while the first waits behind the held writer.
        eventually(
            lambda: sink.sync.states[SOURCE].responses >= 2, what="a second response arrived"
        )
        release.set()
        eventually(lambda: len(committed) >= ENTRIES, what="the sink committed every entry")
        assert committed == [e.entry_id for e in entries]  # each once, in chain order
        assert list(sink.store.heads().values()) == [source.store.head(GOV)]
        assert sink.sync.states[SOURCE].last_error == ""
    finally:
        release.set()
        loop.run(sink.stop())
        loop.run(source.stop())
