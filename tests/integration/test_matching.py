"""Matching end to end: media hashed locally, PDQ near matches with full
provenance through a real node, gates, never-match list, retraction, dihedral."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import grpc
import pytest

from node.cli import main
from node.config import PeerConfig
from node.core.entry import Kind
from node.core.trust import MemberKind, MembersFile
from node.media.image import hamming
from node.rpc._pb.consortium.v1 import node_pb2 as pb
from node.rpc._pb.consortium.v1 import node_pb2_grpc as pb_grpc
from node.server import Node
from tests.helpers import LoopThread, Origin, eventually, member, write_node_dir

pytestmark = pytest.mark.integration

VECTORS = Path(__file__).resolve().parents[2].parent / "shared" / "vectors" / "pdq"
GOV, PLAT = "gov.example/ct", "platform.example"
EDITS = [
    "blur-a-little.jpg",
    "blur-a-lot.jpg",
    "high-contrast.jpg",
    "high-saturation.jpg",
    "sharpen-a-little.jpg",
    "sharpen-a-lot.jpg",
    "shrink-a-little.jpg",
    "shrink-a-lot.jpg",
    "square-128x128.jpg",
    "square-256x256.jpg",
    "square-512x512.jpg",
]
UNRELATED = ["q0746.jpg", "q2821.jpg"]


def _expected() -> dict[str, Any]:
    return dict(json.loads((VECTORS / "expected.json").read_text()))


@pytest.fixture
def vectors() -> Path:
    if not (VECTORS / "expected.json").exists():
        pytest.skip(f"PDQ vectors not found at {VECTORS} (a clone outside the workspace)")
    return VECTORS


@pytest.fixture
def mesh(tmp_path: Path, loop: LoopThread):  # type: ignore[no-untyped-def]
    """A government node and a platform node that syncs from it."""
    members = MembersFile.of([member(GOV, MemberKind.GOVERNMENT), member(PLAT)])
    gov_cfg = write_node_dir(tmp_path, GOV, members, MemberKind.GOVERNMENT)
    gov = Node(gov_cfg, anti_entropy_s=0)
    loop.run(gov.start())
    plat_cfg = write_node_dir(tmp_path, PLAT, members, peers=(PeerConfig(GOV, gov.address),))
    plat = Node(plat_cfg, anti_entropy_s=0)
    loop.run(plat.start())
    yield gov, plat
    loop.run(plat.stop())
    loop.run(gov.stop())


def _json_out(capsys: pytest.CaptureFixture[str]) -> Any:
    return json.loads(capsys.readouterr().out)


def test_hash_command_matches_the_reference_hashes(
    vectors: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = sorted(p for p in vectors.glob("*.jpg"))
    assert main(["hash", *map(str, files), "--json"]) == 0
    got = {Path(d["file"]).name: d for d in _json_out(capsys)}
    for name, want in _expected().items():
        assert got[name]["pdq"] == want["pdq"], name
        assert got[name]["pdq_quality"] == want["quality"], name


def test_hash_reports_bad_files_one_line_each_and_goes_on(
    vectors: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes((vectors / "aaa-orig.jpg").read_bytes()[:2000])
    missing = tmp_path / "missing.png"
    code = main(["hash", str(empty), str(truncated), str(missing), str(vectors / "aaa-orig.jpg")])
    out, err = capsys.readouterr()
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith("ccnode: error: ") for line in lines)
    assert "empty.jpg" in lines[0] and "truncated.jpg" in lines[1] and "missing.png" in lines[2]
    assert "aaa-orig.jpg" in out and _expected()["aaa-orig.jpg"]["pdq"] in out


def test_edits_match_the_original_with_provenance_two_hops_away(
    vectors: Path, mesh: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    gov, plat = mesh
    orig = vectors / "aaa-orig.jpg"
    assert (
        main(
            [
                "submit",
                str(gov.config.dir),
                "--file",
                str(orig),
                "--label",
                "type:image",
                "--label",
                "behaviour:glorification",
                "--incident",
                "christchurch-2019-03-15",
                "--json",
            ]
        )
        == 0
    )
    entry_id = _json_out(capsys)["entry_id"]
    eventually(lambda: plat.store.get(bytes.fromhex(entry_id)) is not None, what="synced")
    files = [vectors / n for n in EDITS + UNRELATED]
    assert main(["match", *map(str, files), "--dir", str(plat.config.dir), "--json"]) == 0
    by_file = {Path(d["file"]).name: d for d in _json_out(capsys)}
    expected = _expected()
    for name in EDITS:
        (hit,) = by_file[name]["matches"]
        assert hit["entry_id"] == entry_id
        assert hit["distance"] == expected[name]["distance_to_aaa_orig"] <= 31
        assert (hit["origin"], hit["origin_kind"], hit["jurisdiction"]) == (GOV, "government", "NZ")
        assert hit["labels"] == ["behaviour:glorification", "type:image"]
        assert hit["incident"] == "christchurch-2019-03-15"
        assert hit["recommended_action"]
        assert hit["retracted"] is False
    for name in UNRELATED:
        assert by_file[name]["matches"] == []


def test_low_quality_image_is_refused_for_submission(
    vectors: Path, mesh: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    gov, _ = mesh
    assert main(["submit", str(gov.config.dir), "--file", str(vectors / "q0004.jpg")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"ccnode: error: {vectors / 'q0004.jpg'}: PDQ quality 4 is below the floor of 50; "
        "not submitted"
    )
    assert gov.store.head(GOV).next_seq == 0


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (bytes(32), "PDQ hash is degenerate: 0 of 256 bits set, expected 32..224"),
        (b"\xff" * 32, "PDQ hash is degenerate: 256 of 256 bits set, expected 32..224"),
        (b"\x01" * 31 + b"\x00", "PDQ hash is degenerate: 31 of 256 bits set, expected 32..224"),
        (b"\xfe" * 31 + b"\xff", "PDQ hash is degenerate: 225 of 256 bits set, expected 32..224"),
    ],
)
def test_degenerate_pdq_hashes_are_refused_on_submit(mesh: Any, value: bytes, message: str) -> None:
    gov, _ = mesh
    entry = Origin(GOV).next(algorithm="PDQ", hash=value)
    with grpc.insecure_channel(gov.address) as ch, pytest.raises(grpc.RpcError) as info:
        pb_grpc.NodeServiceStub(ch).Submit(
            pb.SubmitRequest(
                entries=[pb.SignedEntry(body=entry.body_bytes, signature=entry.signature)]
            ),
            timeout=5,
        )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details() == message
    assert gov.store.head(GOV).next_seq == 0


def _match(node: Node, queries: list[pb.HashQuery], **kw: Any) -> pb.MatchResponse:
    with grpc.insecure_channel(node.address) as ch:
        return pb_grpc.NodeServiceStub(ch).Match(pb.MatchRequest(queries=queries, **kw), timeout=5)


def test_retraction_dihedral_never_match_and_distance_cap(
    vectors: Path, mesh: Any, loop: LoopThread, tmp_path: Path
) -> None:
    from PIL import Image

    from node.media.image import pdq_dihedral, pdq_hash

    gov, plat = mesh
    expected = _expected()
    orig = bytes.fromhex(expected["aaa-orig.jpg"]["pdq"])
    edit = bytes.fromhex(expected["sharpen-a-lot.jpg"]["pdq"])  # distance 12
    origin = Origin(GOV)
    add = origin.next(algorithm="PDQ", hash=orig, labels=("type:image",))
    loop.run(gov.app.submit_async([add]))
    eventually(lambda: plat.store.get(add.entry_id) is not None)

    def hits(node: Node, value: bytes, **kw: Any) -> list[tuple[bytes, int, bool]]:
        r = _match(node, [pb.HashQuery(algorithm="PDQ", value=value)], **kw).results[0]
        return [(m.provenance.entry_id, m.distance, m.provenance.retracted) for m in r.matches]

    assert hits(plat, edit) == [(add.entry_id, 12, False)]
    assert hits(plat, edit, max_distance=11) == []

    # A rotated copy is far from the original, unless its dihedral set is sent.
    rotated = tmp_path / "rotated.png"
    Image.open(vectors / "aaa-orig.jpg").convert("RGB").rotate(90, expand=True).save(rotated)
    rot = pdq_hash(rotated).value
    assert hamming(rot, orig) > 31
    assert hits(plat, rot) == []
    variants = [h.value for h in pdq_dihedral(rotated)[1:]]
    r = _match(plat, [pb.HashQuery(algorithm="PDQ", value=rot, dihedral=variants)]).results[0]
    assert [m.provenance.entry_id for m in r.matches] == [add.entry_id]
    assert r.matches[0].distance <= 31

    with pytest.raises(grpc.RpcError) as info:
        _match(plat, [pb.HashQuery(algorithm="PDQ", value=edit)], max_distance=64)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details() == "PDQ distance 64: expected 0..63"

    # Retracted: no longer matches, but can be asked for, flagged.
    retract = origin.next(kind=Kind.RETRACT, algorithm="", hash=b"", labels=(), target=add.entry_id)
    loop.run(gov.app.submit_async([retract]))
    eventually(lambda: plat.store.head(GOV).next_seq == 2)
    assert hits(plat, edit) == []
    assert hits(plat, edit, include_retracted=True) == [(add.entry_id, 12, True)]


def test_never_match_list_suppresses_matches(
    vectors: Path, tmp_path: Path, loop: LoopThread
) -> None:
    expected = _expected()
    orig = bytes.fromhex(expected["aaa-orig.jpg"]["pdq"])
    members = MembersFile.of([member(GOV, MemberKind.GOVERNMENT)])
    cfg = write_node_dir(tmp_path, GOV, members, MemberKind.GOVERNMENT)
    (cfg.dir / "never_match.txt").write_text(
        f"# benign viral photo\npdq {expected['blur-a-lot.jpg']['pdq']}\nmd5 {'ab' * 16}\n"
    )
    node = Node(cfg, anti_entropy_s=0)
    loop.run(node.start())
    try:
        origin = Origin(GOV)
        loop.run(node.app.submit_async([origin.next(algorithm="PDQ", hash=orig)]))
        loop.run(
            node.app.submit_async([origin.next(algorithm="MD5", hash=bytes.fromhex("ab" * 16))])
        )
        r = _match(
            node,
            [
                pb.HashQuery(
                    algorithm="PDQ", value=bytes.fromhex(expected["sharpen-a-lot.jpg"]["pdq"])
                ),
                pb.HashQuery(algorithm="MD5", value=bytes.fromhex("ab" * 16)),
                pb.HashQuery(algorithm="PDQ", value=bytes.fromhex(expected["q0746.jpg"]["pdq"])),
            ],
        ).results
        assert [(list(q.matches), q.never_match) for q in r] == [
            ([], True),
            ([], True),
            ([], False),
        ]
    finally:
        loop.run(node.stop())


def test_bad_never_match_file_is_refused_at_start(tmp_path: Path) -> None:
    from node.errors import ValidationError

    members = MembersFile.of([member(GOV, MemberKind.GOVERNMENT)])
    cfg = write_node_dir(tmp_path, GOV, members, MemberKind.GOVERNMENT)
    (cfg.dir / "never_match.txt").write_text("pdq 1234\n")
    with pytest.raises(ValidationError) as info:
        Node(cfg)
    assert str(info.value) == (
        f"{cfg.dir / 'never_match.txt'}:1: PDQ hash has 2 bytes: expected 32 bytes (64 hex digits)"
    )


def test_index_is_rebuilt_from_lmdb_at_start_up(tmp_path: Path, loop: LoopThread) -> None:
    members = MembersFile.of([member(GOV, MemberKind.GOVERNMENT)])
    cfg = write_node_dir(tmp_path, GOV, members, MemberKind.GOVERNMENT)
    origin = Origin(GOV)
    from tests.helpers import pdq_value

    entries = [origin.next(algorithm="PDQ", hash=pdq_value(i)) for i in range(300)]
    node = Node(cfg, anti_entropy_s=0)
    loop.run(node.start())
    loop.run(node.app.submit_async(entries[:200]))
    loop.run(node.stop())
    node = Node(cfg, anti_entropy_s=0)
    loop.run(node.start())
    try:
        loop.run(node.app.submit_async(entries[200:]))
        assert len(node.app.matcher) == 300
        q = bytearray(pdq_value(250))
        q[0] ^= 0b111  # distance 3
        r = _match(node, [pb.HashQuery(algorithm="PDQ", value=bytes(q))]).results[0]
        assert [(m.provenance.entry_id, m.distance) for m in r.matches] == [
            (entries[250].entry_id, 3)
        ]
    finally:
        loop.run(node.stop())
