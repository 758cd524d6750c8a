"""Large batches are verified in worker processes; the answers are exactly
those of the in-process path, entry for entry."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.app import PROCESS_VERIFY_MIN
from node.core.entry import SignedEntry
from node.core.trust import MemberKind, MembersFile
from node.server import Node
from tests.helpers import LoopThread, Origin, member, signer_for, write_node_dir

pytestmark = pytest.mark.integration

GOV, PLAT = "gov.example/ct", "platform.example"


def _forged(e: SignedEntry) -> SignedEntry:
    sig = bytearray(e.signature)
    sig[7] ^= 0x40
    return SignedEntry.parse(e.body_bytes, bytes(sig))


def test_process_verification_equals_in_process_verification(
    tmp_path: Path, loop: LoopThread
) -> None:
    members = MembersFile.of([member(GOV, MemberKind.GOVERNMENT), member(PLAT)])
    node = Node(write_node_dir(tmp_path, PLAT, members), anti_entropy_s=0)
    loop.run(node.start())
    try:
        gov, plat, stranger = Origin(GOV), Origin(PLAT), Origin("stranger.example")
        impostor = Origin(GOV)
        impostor.signer = signer_for(PLAT)
        batch: list[SignedEntry] = []
        for i in range(PROCESS_VERIFY_MIN + 44):
            e = (gov if i % 2 else plat).next()
            batch.append(_forged(e) if i % 37 == 5 else e)
        batch[10] = stranger.next()
        batch[20] = impostor.next()
        assert len(batch) >= PROCESS_VERIFY_MIN

        in_process = node.app.verify(batch)
        in_workers = loop.run(node.app.verify_async(batch))
        assert node.app._process_pool is not None  # the worker path really ran
        as_text = [None if e is None else (type(e), str(e)) for e in in_workers]
        assert as_text == [None if e is None else (type(e), str(e)) for e in in_process]
        bad = [i for i, e in enumerate(in_workers) if e is not None]
        assert bad == sorted({10, 20} | {i for i in range(len(batch)) if i % 37 == 5})
        assert str(in_workers[5]).startswith("bad signature on ")
        assert str(in_workers[10]) == "unknown origin 'stranger.example': not a member"
    finally:
        loop.run(node.stop())
