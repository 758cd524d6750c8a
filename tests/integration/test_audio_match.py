"""Audio matching through a real node: CHROMAPRINT segment entries banked in
its LMDB store, the audio index kept current on commit and rebuilt at
start-up, retraction and include_retracted, and the provenance of a hit.
Fingerprints are the Chromaprint vectors' fpcalc references."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from node.core import chromaprint, vpdq
from node.core.entry import Kind, SignedEntry
from node.core.trust import MemberKind, MembersFile
from node.errors import ValidationError
from node.server import Node
from tests.helpers import LoopThread, Origin, member, write_node_dir

pytestmark = pytest.mark.integration

REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "vectors" / "chromaprint"
GOV = "gov.example/ct"
VIDEO_ID = bytes(range(16))


def fingerprint(name: str) -> list[int]:
    path = REFERENCE / "reference" / f"{name}.txt"
    if not path.exists():
        pytest.skip(f"Chromaprint vectors not found at {REFERENCE}")
    fields = dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return [int(v) for v in fields["FINGERPRINT"].split(",")]


def bank(origin: Origin, values: list[int], **fields: object) -> list[SignedEntry]:
    # 140 items in segments of 50: 0..50, 50..100, 100..140
    segs = chromaprint.split(values, VIDEO_ID, max_items=50)
    return [origin.next(algorithm="CHROMAPRINT", hash=s.encode(), **fields) for s in segs]


def retract(origin: Origin, target: bytes) -> SignedEntry:
    return origin.next(kind=Kind.RETRACT, target=target, algorithm="", hash=b"", labels=())


@pytest.fixture
def node(tmp_path: Path, loop: LoopThread):  # type: ignore[no-untyped-def]
    cfg = write_node_dir(tmp_path, GOV, MembersFile.of([member(GOV, MemberKind.GOVERNMENT)]))
    n = Node(cfg, anti_entropy_s=0)
    loop.run(n.start())
    yield n
    loop.run(n.stop())


def test_edited_copies_match_the_banked_soundtrack_with_provenance(
    node: Node, loop: LoopThread
) -> None:
    gov = Origin(GOV)
    entries = bank(gov, fingerprint("a"), labels=("type:video",))
    loop.run(node.app.submit_async(entries))
    assert node.app.audio.ready
    for name in ("a-phone-band", "a-room-echo", "a-mp3-64k"):
        (h,) = node.app.match_audio(fingerprint(name))
        assert h.score.is_match and h.score.similarity >= 0.86, name
        assert h.video_id == VIDEO_ID
        assert h.segments == tuple(e.entry_id for e in entries)
        assert h.hit.entry.entry_id == entries[0].entry_id
        assert h.hit.entry.body.algorithm == "CHROMAPRINT"
    # the 10-s clip starts 4.3 s in: its stretch lies in the first two segments
    (clip,) = node.app.match_audio(fingerprint("a-clip-4.3s-to-14.3s"))
    assert clip.score.banked_items == (35, 94)
    assert clip.segments == (entries[0].entry_id, entries[1].entry_id)
    assert node.app.match_audio(fingerprint("unrelated-b")) == []
    assert node.app.match_audio(fingerprint("unrelated-b"), report_all=True) == []


def test_retracted_segments_stop_matching_and_include_retracted_flags_them(
    node: Node, loop: LoopThread
) -> None:
    gov = Origin(GOV)
    entries = bank(gov, fingerprint("a"))
    loop.run(node.app.submit_async(entries))
    loop.run(node.app.submit_async([retract(gov, entries[0].entry_id)]))
    # the first 50 items are gone: the stretch starts at the second segment
    (h,) = node.app.match_audio(fingerprint("a"))
    assert h.score.banked_items == (50, 140)
    assert h.segments == (entries[1].entry_id, entries[2].entry_id)
    loop.run(node.app.submit_async([retract(gov, e.entry_id) for e in entries[1:]]))
    assert node.app.match_audio(fingerprint("a")) == []
    (h,) = node.app.match_audio(fingerprint("a"), include_retracted=True)
    assert h.score.banked_items == (0, 140) and h.hit.retracted_by


def test_the_audio_index_is_rebuilt_from_the_store_at_start(
    tmp_path: Path, loop: LoopThread
) -> None:
    cfg = write_node_dir(tmp_path, GOV, MembersFile.of([member(GOV, MemberKind.GOVERNMENT)]))
    gov = Origin(GOV)
    entries = bank(gov, fingerprint("a"))
    first = Node(cfg, anti_entropy_s=0)
    loop.run(first.start())
    loop.run(first.app.submit_async(entries))
    loop.run(first.app.submit_async([retract(gov, entries[2].entry_id)]))
    loop.run(first.stop())
    again = Node(cfg, anti_entropy_s=0)
    loop.run(again.start())
    try:
        assert again.app.audio.ready
        (h,) = again.app.match_audio(fingerprint("a"))
        assert h.score.banked_items == (0, 100)  # the third segment is retracted
        assert h.segments == (entries[0].entry_id, entries[1].entry_id)
    finally:
        loop.run(again.stop())


def test_bad_audio_queries_get_exact_errors(node: Node) -> None:
    with pytest.raises(ValidationError) as err:
        node.app.match_audio([])
    assert str(err.value) == "empty audio query: expected 1..90000 sub-fingerprints"
    with pytest.raises(ValidationError) as err:
        node.app.match_audio([1] * 90_001)
    assert str(err.value) == (
        "audio query of 90001 sub-fingerprints: expected at most 90000 "
        "(match a long upload in windows)"
    )
    with pytest.raises(ValidationError) as err:
        node.app.match_audio([2**32])
    assert str(err.value) == "sub-fingerprints must be integers in 0..2**32-1"


def test_submit_file_banks_the_soundtrack_beside_the_vpdq_as_one_video(
    node: Node, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`ccnode submit --file VIDEO` banks the frames and the soundtrack under
    the video's id; the soundtrack matches a copy whose picture is gone (the
    audio alone); retracting the video by one segment retracts both kinds."""
    from node.cli import main
    from node.media.audio import fingerprint_file
    from tests.audio_files import melody, write

    video = write(tmp_path / "v.mp4", melody(20), video_seconds=20)
    silent = write(tmp_path / "silent.mp4", None, video_seconds=4)
    d = str(node.config.dir)
    assert main(["submit", d, "--file", str(video), "--segment-seconds", "10", "--json"]) == 0
    added = [bytes.fromhex(x["entry_id"]) for x in json.loads(capsys.readouterr().out)]
    kinds = [node.store.get(e).entry.body.algorithm for e in added]  # type: ignore[union-attr]
    assert kinds == ["VPDQ", "VPDQ", "CHROMAPRINT"]  # 2 x 10 s of frames; 20 s of audio: 1
    vpdq_id = vpdq.VpdqSegment.decode(node.store.get(added[0]).entry.body.hash).video_id  # type: ignore[union-attr]
    audio_seg = chromaprint.ChromaprintSegment.decode(node.store.get(added[2]).entry.body.hash)  # type: ignore[union-attr]
    assert audio_seg.video_id == vpdq_id
    # the soundtrack alone (an m4a of the same melody) matches the banked video
    track = write(tmp_path / "sound.m4a", melody(20))
    (h,) = node.app.match_audio(fingerprint_file(track).values)
    assert h.video_id == vpdq_id and h.segments == (added[2],)
    assert node.app.video_segments(node.store.get(added[0]).entry) == tuple(added)  # type: ignore[union-attr]
    # a video without audio banks its frames, with a note
    assert main(["submit", d, "--file", str(silent), "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["outcome"] == "accepted"  # one VPDQ segment, nothing else
    assert f"ccnode: note: {silent}: no audio stream: the soundtrack is not banked" in err
    # retracting the video by its soundtrack segment retracts the frames too
    assert main(["submit", d, "--retract", added[2].hex(), "--json"]) == 0
    assert [x["outcome"] for x in json.loads(capsys.readouterr().out)] == ["accepted"] * 3
    assert all(node.store.get(e).retracted_by for e in added)  # type: ignore[union-attr]
    assert node.app.match_audio(fingerprint_file(track).values) == []
