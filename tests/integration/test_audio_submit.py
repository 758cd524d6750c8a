"""`ccnode submit DIR --file AUDIO`: an audio-only file is banked as
CHROMAPRINT segments under one track id (the first 16 bytes of the file's
SHA-256), on a real node, from real files written by PyAV in five formats;
the same file again is the existing entry; bad input gets one exact line
and writes nothing."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from node.core import chromaprint
from node.media.audio import fingerprint_file
from node.server import Node
from tests.audio_files import garble, melody, write
from tests.helpers import run_cli
from tests.integration import test_audio_match
from tests.integration.test_audio_match import GOV

pytestmark = pytest.mark.integration

node = test_audio_match.node  # the fixture: one real node, GOV its member


def _submit(capsys: pytest.CaptureFixture[str], *args: str, code: int = 0) -> tuple[str, str]:
    return run_cli(capsys, "submit", *args, code=code)


def _track(node: Node, entry_ids: list[bytes]) -> list[chromaprint.ChromaprintSegment]:
    out = []
    for e in entry_ids:
        stored = node.store.get(e)
        assert stored is not None and stored.entry.body.algorithm == "CHROMAPRINT"
        out.append(chromaprint.ChromaprintSegment.decode(stored.entry.body.hash))
    return out


def test_an_audio_file_is_banked_as_one_track_and_matches(
    node: Node, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """70 s of MP3: two segments (60 s + 10 s) under the file's id, in one
    batch, holding exactly the file's fingerprint; a WAV of the same melody
    matches the whole track."""
    d = str(node.config.dir)
    mp3 = write(tmp_path / "long.mp3", melody(70, seed=5), codec="mp3")
    out, _ = _submit(capsys, d, "--file", str(mp3), "--label", "type:audio", "--json")
    docs = json.loads(out)
    assert [x["outcome"] for x in docs] == ["accepted", "accepted"]
    added = [bytes.fromhex(x["entry_id"]) for x in docs]
    segs = _track(node, added)
    track_id = hashlib.sha256(mp3.read_bytes()).digest()[:16]
    assert [(s.video_id, s.index, s.start_item, s.final) for s in segs] == [
        (track_id, 0, 0, False),
        (track_id, 1, 485, True),
    ]
    values = fingerprint_file(mp3).values
    assert [v for s in segs for v in s.values] == list(values)
    bodies = [node.store.get(e).entry.body for e in added]  # type: ignore[union-attr]
    assert [b.seq for b in bodies] == [0, 1] and all(b.labels == ("type:audio",) for b in bodies)
    # the same melody as lossless PCM matches the whole banked track
    wav = write(tmp_path / "same.wav", melody(70, seed=5), codec="pcm_s16le")
    (h,) = node.app.match_audio(fingerprint_file(wav).values)
    assert h.video_id == track_id and h.segments == tuple(added)
    assert h.score.is_match and h.score.aligned_s > 65
    # every segment of the track is one "video": retracting one retracts both
    assert node.app.video_segments(node.store.get(added[1]).entry) == tuple(added)  # type: ignore[union-attr]
    out, _ = _submit(capsys, d, "--retract", added[1].hex(), "--json")
    assert [x["outcome"] for x in json.loads(out)] == ["accepted", "accepted"]
    assert node.app.match_audio(fingerprint_file(wav).values) == []


@pytest.mark.parametrize(
    ("name", "codec", "rate"),
    [
        ("x.m4a", "aac", 44100),
        ("x.wav", "pcm_s16le", 44100),
        ("x.flac", "flac", 44100),
        ("x.ogg", "libopus", 48000),
        ("x.mp3", "mp3", 44100),
    ],
)
def test_every_audio_format_is_banked_and_the_same_file_again_is_the_existing_entry(
    node: Node,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    codec: str,
    rate: int,
) -> None:
    d = str(node.config.dir)
    path = write(tmp_path / name, melody(12, rate=rate, seed=7), rate=rate, codec=codec)
    out, _ = _submit(capsys, d, "--file", str(path), "--label", "type:audio", "--json")
    doc = json.loads(out)
    assert doc["outcome"] == "accepted"  # 12 s: one segment
    (seg,) = _track(node, [bytes.fromhex(doc["entry_id"])])
    assert seg.final and seg.values == tuple(fingerprint_file(path).values)
    # the same file, the same labels: the entry already held, nothing signed
    out, _ = _submit(capsys, d, "--file", str(path), "--label", "type:audio", "--json")
    assert json.loads(out) == {"entry_id": doc["entry_id"], "outcome": "existing"}
    # other labels: refused, pointing at relabel
    _, err = _submit(capsys, d, "--file", str(path), "--label", "type:video", code=5)
    assert err == (
        f"ccnode: error: {GOV} already submitted this CHROMAPRINT hash as entry "
        f"{doc['entry_id'][:16]} with labels type:audio; not submitted again. To change its "
        f"labels: ccnode feedback relabel DIR --entry {doc['entry_id'][:16]} --label type:video\n"
    )
    assert node.store.heads()[GOV].next_seq == 1


def test_a_video_with_algo_chromaprint_banks_its_soundtrack_only(
    node: Node, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = str(node.config.dir)
    video = write(tmp_path / "v.mp4", melody(10, seed=8), video_seconds=10)
    out, _ = _submit(capsys, d, "--file", str(video), "--algo", "chromaprint", "--json")
    (seg,) = _track(node, [bytes.fromhex(json.loads(out)["entry_id"])])
    assert seg.video_id == hashlib.sha256(video.read_bytes()).digest()[:16]
    assert node.store.heads()[GOV].next_seq == 1  # no VPDQ segment


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("bad-audio")
    write(d / "video-only.m4a", None, video_seconds=2)
    write(d / "video-no-audio.mp4", None, video_seconds=2)
    write(d / "silence.wav", np.zeros((1, 5 * 44100), np.float32), codec="pcm_s16le")
    write(d / "short.mp3", melody(2), codec="mp3")
    write(d / "melody.m4a", melody(8))
    garble(d / "melody.m4a", d / "corrupt.m4a")
    (d / "empty.flac").write_bytes(b"")
    (d / "text.ogg").write_text("not audio\n" * 20)
    (d / "notes.txt").write_text("not audio\n" * 20)
    return d


BAD = [
    (("video-only.m4a",), "{p}: no audio stream"),
    (("video-no-audio.mp4", "--algo", "chromaprint"), "{p}: no audio stream"),
    (("silence.wav",), "{p}: audio is silence only (no frame above -60 dBFS)"),
    (("short.mp3",), "{p}: audio is too short to fingerprint: 2.00 s, need at least 2.72 s"),
    (("corrupt.m4a",), "{p}: corrupt audio stream (decoding failed at 2.7 s)"),
    (("empty.flac",), "{p}: file is empty"),
    (("text.ogg",), "{p}: not an audio or video file in a supported format"),
    (
        ("melody.m4a", "--algo", "vpdq"),
        "{p}: --algo vpdq needs a video file (avi, flv, m4v, mkv, mov, mp4, ts, webm)",
    ),
    (
        ("notes.txt", "--algo", "chromaprint"),
        "{p}: --algo chromaprint needs an audio file "
        "(aac, aif, aiff, flac, m4a, mp3, oga, ogg, opus, wav, wma) or a video file",
    ),
    (
        ("melody.m4a", "--segment-seconds", "10"),
        "--segment-seconds is for a video's frames: audio is banked in segments of 60 s "
        "(485 sub-fingerprints)",
    ),
]


@pytest.mark.parametrize(("args", "message"), BAD, ids=[" ".join(b[0]) for b in BAD])
def test_bad_audio_files_get_one_exact_line_and_write_nothing(
    node: Node,
    bad_files: Path,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    message: str,
) -> None:
    path = bad_files / args[0]
    _, err = _submit(capsys, str(node.config.dir), "--file", str(path), *args[1:], code=2)
    assert err == f"ccnode: error: {message.format(p=path)}\n"
    assert GOV not in node.store.heads()
