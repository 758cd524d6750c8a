"""`ccnode audit`, `prove` and `verify-bundle` in process, on real node data.

GOV (origin) and NGO (witness) run, GOV publishes and gets its checkpoints
cosigned; then the nodes stop and the audit runs on their data and on
compact copies of it with one flipped byte each.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import stat
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import lmdb
import pytest

from node.cli import main
from node.config import load_config
from node.core import merkle
from node.core.checkpoint import SignedNote, open_cosignature
from node.core.entry import SignedEntry
from node.core.roster import SignedRoster, dumps_file
from node.core.trust import MemberKind, MembersFile, raw_public_key
from node.rpc.client import NodeClient
from node.server import Node
from tests.helpers import (
    LoopThread,
    Origin,
    eventually,
    genesis,
    member,
    peer_file,
    signer_for,
    witnessed,
    write_node_dir,
)

pytestmark = pytest.mark.integration

GOV, NGO, PLAT = "gov.example/ct", "ngo.example", "platform.example"


@dataclass
class Published:
    root: Path
    gov_dir: Path
    ngo_dir: Path
    roster: Path
    entries: list[SignedEntry]
    checkpoint: str  # GOV's latest stored checkpoint note


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Published]:
    root = tmp_path_factory.mktemp("tlog-cli")
    members = MembersFile.of(
        [member(GOV, MemberKind.GOVERNMENT), member(NGO, MemberKind.NGO), member(PLAT)]
    )
    roster = witnessed(members, (NGO,), 1)  # NGO witnesses; one cosignature settles
    gov_cfg = write_node_dir(root, GOV, roster, MemberKind.GOVERNMENT, (peer_file(NGO),))
    ngo_cfg = write_node_dir(root, NGO, roster, MemberKind.NGO, (peer_file(GOV),))
    roster_path = root / "roster.json"
    roster_path.write_text(dumps_file(roster))
    loop = LoopThread()
    nodes = [Node(gov_cfg), Node(ngo_cfg)]
    try:
        for n in nodes:
            loop.run(n.start())
        gov, plat = Origin(GOV), Origin(PLAT)
        entries = [gov.next() for _ in range(5)]

        async def submit(batch: list[SignedEntry]) -> None:
            async with NodeClient(nodes[0].address) as c:
                await c.submit(batch)

        loop.run(submit(entries[:3]))
        loop.run(submit([plat.next(), plat.next()]))
        loop.run(submit(entries[3:]))
        eventually(
            lambda: nodes[0].app.tlog.settled_sizes().get(GOV) == 5,
            what="GOV's size-5 checkpoint cosigned by NGO",
        )
        found = nodes[0].store.tlog.latest_checkpoint(GOV)
        assert found is not None
    finally:
        for n in nodes:
            if n._server is not None:
                loop.run(n.stop())
        loop.close()
    yield Published(root, gov_cfg.dir, ngo_cfg.dir, roster_path, entries, found[1])


def test_audit_of_clean_data_passes(
    published: Published, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", str(published.gov_dir)]) == 0
    out = capsys.readouterr().out
    assert "FAULT" not in out
    assert out.strip().endswith("0 fault(s)")
    assert "2 origins, 7 entries" in out
    assert main(["audit", str(published.ngo_dir)]) == 0
    assert "1 witness states" in capsys.readouterr().out


def _compact_copy(src: Path, dst: Path) -> Path:
    dst.mkdir()
    env = lmdb.open(str(src), readonly=True, lock=False, max_dbs=32)
    try:
        env.copy(str(dst), compact=True)  # a backup: no free pages, one copy of each value
    finally:
        env.close()
    return dst


def _flip(data_dir: Path, needle: bytes, offset: int) -> None:
    path = data_dir / "data.mdb"
    blob = bytearray(path.read_bytes())
    assert blob.count(needle) == 1, "the value must occur once in a compact copy"
    blob[blob.index(needle) + offset] ^= 0x01
    path.write_bytes(bytes(blob))


def _audit_copy(published: Published, tmp_path: Path, needle: bytes, offset: int) -> int:
    copy = _compact_copy(published.gov_dir / "data", tmp_path / "copy")
    _flip(copy, needle, offset)
    return main(["audit", str(copy), "--roster", str(published.roster), "--witness", NGO])


def test_audit_names_a_flipped_byte_in_an_entry(
    published: Published, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    signed = published.entries[3].to_bytes()
    assert _audit_copy(published, tmp_path, signed, len(signed) - 5) == 7  # in the signature
    faults = [line for line in capsys.readouterr().out.splitlines() if line.startswith("FAULT")]
    assert faults[0] == (
        f"FAULT entry {GOV} seq 3: signature: bad signature on {GOV} seq 3: "
        "not signed by the key it names"
    )
    # The leaf no longer matches its stored tree hash either.
    assert any(f.startswith(f"FAULT tree hash {GOV} level 0 index 3: stored ") for f in faults)


def test_audit_names_a_flipped_byte_in_a_tree_hash(
    published: Published, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    leaf = merkle.leaf_hash(published.entries[2].to_bytes())
    assert _audit_copy(published, tmp_path, leaf, 7) == 7
    out = capsys.readouterr().out
    faults = [line for line in out.splitlines() if line.startswith("FAULT")]
    flipped = bytearray(leaf)
    flipped[7] ^= 1
    assert faults == [
        f"FAULT tree hash {GOV} level 0 index 2: stored {bytes(flipped).hex()[:16]}, "
        f"recomputed from the entries {leaf.hex()[:16]}"
    ]
    assert out.strip().endswith("1 fault(s)")


def test_audit_names_a_flipped_byte_in_a_checkpoint(
    published: Published, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    note = published.checkpoint.encode()
    root_line = note.split(b"\n")[2]
    assert _audit_copy(published, tmp_path, note, note.index(root_line) + 3) == 7
    faults = [line for line in capsys.readouterr().out.splitlines() if line.startswith("FAULT")]
    assert len(faults) == 1
    assert faults[0].startswith(f"FAULT checkpoint {GOV} size 5: does not verify: ")


def test_audit_refusals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", str(tmp_path)]) == 2
    assert "is not a node directory: pass --roster FILE" in capsys.readouterr().err
    roster = tmp_path / "roster.json"
    roster.write_text(dumps_file(genesis([member(GOV)])))
    assert main(["audit", str(tmp_path), "--roster", str(roster)]) == 2
    assert "holds no LMDB environment (no data.mdb)" in capsys.readouterr().err
    # An offline check trusts only a roster signed by its own governance threshold.
    roster.write_text(dumps_file(SignedRoster.draft(genesis([member(GOV)]).roster)))
    assert main(["audit", str(tmp_path), "--roster", str(roster)]) == 2
    assert (
        f"{roster}: roster version 1 is signed by 0/1 governance keys of version 1 "
        "(its own): needs 1"
    ) in capsys.readouterr().err


def test_prove_and_verify_bundle(
    published: Published, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The nodes are stopped; bring GOV back up to serve the proof.
    loop = LoopThread()
    node = Node(load_config(published.gov_dir))
    try:
        loop.run(node.start())
        assert node.app.tlog.settled_sizes() == {GOV: 5}  # recomputed from the store
        bundle = tmp_path / "bundle.json"
        target = published.entries[1]
        assert (
            main(["prove", target.entry_id.hex(), str(published.gov_dir), "--out", str(bundle)])
            == 0
        )
        assert "cosigned by 1 witness(es)" in capsys.readouterr().out
    finally:
        loop.run(node.stop())
        loop.close()
    # Offline from here on.
    roster = str(published.roster)
    assert main(["verify-bundle", str(bundle), "--roster", roster, "--threshold", "1"]) == 0
    out = capsys.readouterr().out
    assert f"OK: entry {target.entry_id.hex()} is {GOV} seq 1" in out
    assert f"witness cosignatures: 1 ({NGO})" in out
    assert (
        "no consistency proof: the bundle's checkpoint (size 5) is the newest the node held" in out
    )

    doc = json.loads(bundle.read_text())

    def tampered(**changes: object) -> Path:
        path = tmp_path / f"bad-{len(list(tmp_path.glob('bad-*')))}.json"
        path.write_text(json.dumps({**doc, **changes}))
        return path

    other = published.entries[2]
    proof = list(doc["inclusion_proof"])
    proof[0] = proof[1]
    cases = [
        (tampered(inclusion_proof=proof), ["--threshold", "1"], "gives root"),
        (tampered(inclusion_proof=proof[:-1]), [], "inclusion proof must have 3 hashes, got 2"),
        (
            tampered(entry=__import__("base64").b64encode(other.to_bytes()).decode()),
            [],
            "bundle entry_id, origin or seq do not match its entry",
        ),
        (tampered(format="other"), [], "bundle format must be 'ccnode-proof-bundle/v1'"),
        (bundle, ["--threshold", "2"], "bundle checkpoint has 1 of the 2 required witness"),
        (
            # Not the witness's cosignature/v1 key: ignored (C2SP), and named.
            tampered(checkpoint=_old_format_cosignature(doc["checkpoint"])),
            ["--threshold", "1"],
            "bundle checkpoint has 0 of the 1 required witness cosignatures (ignored: "
            f"cosignature by {NGO!r} is a plain Ed25519 note signature (type 0x01): "
            "expected a C2SP cosignature/v1 (type 0x04))",
        ),
    ]
    for path, extra, message in cases:
        assert main(["verify-bundle", str(path), "--roster", roster, *extra]) == 2, message
        assert message in capsys.readouterr().err

    # A roster that does not know the origin's key refuses the bundle.
    stranger = tmp_path / "other-roster.json"
    stranger.write_text(dumps_file(genesis([member(NGO, MemberKind.NGO)])))
    assert main(["verify-bundle", str(bundle), "--roster", str(stranger)]) == 2
    assert f"unknown origin '{GOV}': not a member" in capsys.readouterr().err


def test_bundle_proves_consistency_with_the_newest_checkpoint(
    published: Published, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The bundle's checkpoint is the settled one (size 5); GOV's node has since
    signed size 7 (its witness is down). The bundle carries the newest
    checkpoint and a consistency proof 5 -> 7, and verify-bundle checks it."""
    gov_dir = tmp_path / "gov"
    shutil.copytree(published.gov_dir, gov_dir, ignore=shutil.ignore_patterns("node.addr"))
    loop = LoopThread()
    node = Node(load_config(gov_dir))
    gov = Origin(GOV)
    gov.seq, gov.prev = 5, published.entries[-1].entry_id
    try:
        loop.run(node.start())

        async def submit() -> None:
            async with NodeClient(node.address) as c:
                await c.submit([gov.next(), gov.next()])

        loop.run(submit())

        def signed_seven() -> bool:
            found = node.store.tlog.latest_checkpoint(GOV)
            return found is not None and found[0] == 7

        eventually(signed_seven, what="GOV's node signs size 7")
        assert node.app.tlog.settled_sizes() == {GOV: 5}
        bundle = tmp_path / "bundle.json"
        target = published.entries[1]
        assert main(["prove", target.entry_id.hex(), str(gov_dir), "--out", str(bundle)]) == 0
        capsys.readouterr()
    finally:
        loop.run(node.stop())
        loop.close()
    roster = str(published.roster)
    assert main(["verify-bundle", str(bundle), "--roster", roster, "--threshold", "1"]) == 0
    out = capsys.readouterr().out
    assert "included in its log of size 5" in out
    assert (
        "consistent with the newest checkpoint in the bundle (size 7): the log did not fork "
        "in between"
    ) in out
    doc = json.loads(bundle.read_text())
    assert "consistency" not in doc and len(doc["consistency_proof"]) >= 1

    def bad(**changes: object) -> str:
        path = tmp_path / f"bad-{len(list(tmp_path.glob('bad-*')))}.json"
        path.write_text(json.dumps({k: v for k, v in {**doc, **changes}.items() if v is not None}))
        assert main(["verify-bundle", str(path), "--roster", roster]) == 2
        return capsys.readouterr().err

    proof = list(doc["consistency_proof"])
    proof[0] = doc["inclusion_proof"][0]
    assert "ccnode: error: consistency proof 5->7 gives root1 " in bad(consistency_proof=proof)
    assert bad(consistency_proof=None) == (
        "ccnode: error: bundle fields 'newest_checkpoint' and 'consistency_proof' go together\n"
    )
    # A "newest" checkpoint that is not the one the proof leads to.
    assert bad(newest_checkpoint=doc["checkpoint"]) == (
        f"ccnode: error: consistency proof must have 0 hashes, got {len(proof)}\n"
    )


def _old_format_cosignature(text: str) -> str:
    """The note with NGO's cosignature/v1 swapped for a plain note signature."""
    note = SignedNote.parse(text)
    origin_only = SignedNote(note.body, note.signatures[:1])
    return origin_only.add_signature(NGO, signer_for(NGO).private_key).to_text()


def test_stored_cosignatures_are_cosignature_v1(published: Published) -> None:
    note = SignedNote.parse(published.checkpoint)
    (cosig,) = note.signatures[1:]
    raw = raw_public_key(signer_for(NGO).public_key)
    assert cosig.key_name == NGO
    assert cosig.key_hash == hashlib.sha256(NGO.encode() + b"\n\x04" + raw).digest()[:4]
    assert len(cosig.signature) == 72
    assert open_cosignature(cosig, raw, note.body) == struct.unpack(">Q", cosig.signature[:8])[0]


def test_audit_names_an_old_format_cosignature(
    published: Published, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = _compact_copy(published.gov_dir / "data", tmp_path / "copy")
    env = lmdb.open(str(copy), max_dbs=32)
    try:
        with env.begin(write=True) as txn:
            db = env.open_db(b"checkpoints", txn=txn)
            key = GOV.encode() + b"\x00" + (5).to_bytes(8, "big")
            text = bytes(txn.get(key, db=db)).decode()
            txn.put(key, _old_format_cosignature(text).encode(), db=db)
    finally:
        env.close()
    assert main(["audit", str(copy), "--roster", str(published.roster), "--witness", NGO]) == 7
    faults = [line for line in capsys.readouterr().out.splitlines() if line.startswith("FAULT")]
    assert faults == [
        f"FAULT checkpoint {GOV} size 5: 1 stored cosignature(s) are not by a witness's "
        f"cosignature key: cosignature by {NGO!r} is a plain Ed25519 note signature "
        "(type 0x01): expected a C2SP cosignature/v1 (type 0x04)"
    ]


def test_init_creates_a_checkpoint_key_named_in_the_roster(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = tmp_path / "n"
    assert (
        main(
            [
                "init",
                str(d),
                "--id",
                GOV,
                "--kind",
                "government",
                "--jurisdiction",
                "NZ",
                "--genesis",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    key_file = d / "keys" / "checkpoint.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    config = load_config(d)
    public = raw_public_key(config.checkpoint_key().public_key())
    assert config.members().member(GOV).checkpoint_key == public
    assert f"checkpoint public key: {public.hex()}" in out
    assert public != raw_public_key(config.signer().public_key)
    # The node starts: its key matches the roster.
    loop = LoopThread()
    try:
        node = Node(config)
        loop.run(node.start())
        loop.run(node.stop())
    finally:
        loop.close()
    shutil.rmtree(d)
