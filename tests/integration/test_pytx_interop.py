"""python-threatexchange fetches from a running node through our extension.

Uses the real ``threatexchange`` package (the ``interop`` extra) and its
own CLI entry point, with its state in tmp_path: configure the extension and
a collaboration, fetch, and match a planted PDQ hash, computed from a real
image by python-threatexchange itself.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

tx_main = pytest.importorskip(
    "threatexchange.cli.main",
    reason="python-threatexchange is not installed: pip install -e '.[interop]'",
)

from node.core.trust import MemberKind, MembersFile  # noqa: E402
from node.rpc.client import NodeClient  # noqa: E402
from node.server import Node  # noqa: E402
from tests.helpers import LoopThread, Origin, member, write_node_dir  # noqa: E402

pytestmark = pytest.mark.integration

GOV, NGO = "gov.example/ct", "ngo.example"


def _image(path: Path) -> Path:
    """A deterministic, textured image (PDQ needs more than a flat colour)."""
    from PIL import Image

    size = 128
    data = bytearray()
    for y in range(size):
        for x in range(size):
            h = hashlib.sha256(f"{x // 8},{y // 8}".encode()).digest()
            data += bytes((h[0], h[1], (x * 2) % 256))
    Image.frombytes("RGB", (size, size), bytes(data)).save(path)
    return path


def _tx(args: list[str], state: Path) -> None:
    tx_main.inner_main(args, state_dir=state)


def _flip(hex_hash: str, bits: int) -> str:
    value = int(hex_hash, 16)
    for i in range(bits):
        value ^= 1 << (i * 13 % 256)
    return f"{value:064x}"


def test_threatexchange_fetches_matches_and_deletes_retracted(
    tmp_path: Path, loop: LoopThread, capsys: pytest.CaptureFixture[str]
) -> None:
    from threatexchange.signal_type.pdq.signal import PdqSignal

    photo = _image(tmp_path / "upload.png")
    planted = PdqSignal.hash_from_file(photo)
    other = _flip(planted, 80)  # an unrelated hash, far beyond PDQ's threshold

    members = MembersFile.of([member(GOV, MemberKind.GOVERNMENT), member(NGO, MemberKind.NGO)])
    config = write_node_dir(tmp_path, GOV, members, MemberKind.GOVERNMENT)
    gov, ngo = Origin(GOV), Origin(NGO)
    first = gov.next(
        algorithm="PDQ",
        hash=bytes.fromhex(planted),
        labels=("behaviour:glorification", "type:image"),
    )
    doomed = ngo.next(algorithm="PDQ", hash=bytes.fromhex(other), labels=("type:image",))
    # python-threatexchange 1.2's PDQ index finds nothing once it holds a single
    # hash and was saved and reloaded, so one more entry stays in the index.
    keeper = ngo.next(algorithm="PDQ", hash=bytes.fromhex(_flip(planted, 160)))
    node = Node(config)
    address = loop.run(node.start())

    async def submit(entries: list) -> None:  # type: ignore[type-arg]
        async with NodeClient(address) as c:
            await c.submit(entries)

    state = tmp_path / "tx-state"
    try:
        loop.run(submit([first]))
        loop.run(submit([doomed, keeper]))
        _tx(["config", "extensions", "add", "node.interop.pytx"], state)
        _tx(
            ["config", "collab", "edit", "ccnode", "consortium", "--create", "--address", address],
            state,
        )
        _tx(["fetch"], state)
        capsys.readouterr()

        # The photo itself, hashed by python-threatexchange, matches the planted hash.
        _tx(["match", "photo", str(photo)], state)
        out = capsys.readouterr().out
        assert out.startswith("pdq 0 (consortium) POSITIVE_CLASS"), out
        assert "behaviour:glorification" in out and "type:image" in out

        # A near-duplicate (7 bits off) matches by Hamming distance, in pytx's index.
        _tx(["match", "--hashes", "photo", _file(tmp_path, _flip(planted, 7))], state)
        assert capsys.readouterr().out.startswith("pdq 7 (consortium)")

        # The other member's hash matches too, until it is retracted ...
        _tx(["match", "--hashes", "photo", _file(tmp_path, other)], state)
        assert "(consortium)" in capsys.readouterr().out
        loop.run(submit([ngo.next(kind=_retract(), target=doomed.entry_id, **_no_hash())]))
        # ... and an incremental fetch (from the stored checkpoint) deletes it.
        _tx(["fetch"], state)
        capsys.readouterr()
        _tx(["match", "--hashes", "photo", _file(tmp_path, other)], state)
        assert "(consortium)" not in capsys.readouterr().out
        _tx(["match", "photo", str(photo)], state)
        assert capsys.readouterr().out.startswith("pdq 0 (consortium)")
    finally:
        loop.run(node.stop())


def test_checkpoint_resumes_from_cursors(tmp_path: Path, loop: LoopThread) -> None:
    from node.interop.pytx import CcnodeCollabConfig, CcnodeSignalExchangeAPI

    members = MembersFile.of([member(GOV, MemberKind.GOVERNMENT)])
    node = Node(write_node_dir(tmp_path, GOV, members, MemberKind.GOVERNMENT))
    address = loop.run(node.start())
    gov = Origin(GOV)

    async def submit(n: int) -> None:
        async with NodeClient(address) as c:
            await c.submit([gov.next() for _ in range(n)])

    try:
        loop.run(submit(3))
        api = CcnodeSignalExchangeAPI.for_collab(
            CcnodeCollabConfig(name="c", api="ccnode", enabled=True, address=address)
        )
        deltas = list(api.fetch_iter([], None))
        assert sum(len(d.updates) for d in deltas) == 3
        checkpoint = deltas[-1].checkpoint
        assert checkpoint.cursors == {GOV: 3}
        loop.run(submit(2))
        again = list(api.fetch_iter([], checkpoint))
        assert sum(len(d.updates) for d in again) == 2  # only the new ones
        assert again[-1].checkpoint.cursors == {GOV: 5}
        (last,) = api.fetch_iter([], again[-1].checkpoint)
        assert last.updates == {}  # up to date: one empty delta with a checkpoint
    finally:
        loop.run(node.stop())


def _file(tmp_path: Path, text: str) -> str:
    path = tmp_path / f"hash-{text[:8]}.txt"
    path.write_text(text + "\n")
    return str(path)


def _retract():  # type: ignore[no-untyped-def]
    from node.core.entry import Kind

    return Kind.RETRACT


def _no_hash() -> dict[str, object]:
    return {"algorithm": "", "hash": b"", "labels": (), "incident": ""}
