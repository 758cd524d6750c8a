"""Audio fingerprints of real files written by PyAV: what they give, and a
table of bad inputs, each with its exact one-line error."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("av", reason="PyAV is not installed (audio fingerprints need it)")

from node.errors import ValidationError
from node.match.audio import align
from node.media.audio import (
    CLASSIFIERS,
    FRAME_STEP,
    MIN_SAMPLES,
    SAMPLE_RATE,
    AudioLimits,
    fingerprint_file,
    fingerprint_pcm,
)
from tests.audio_files import garble, melody, write


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("audio")
    write(d / "melody.m4a", melody(8))
    write(d / "melody.mp3", melody(8), codec="mp3")
    write(d / "stereo-48k.wav", melody(8, rate=48000, channels=2), rate=48000, codec="pcm_s16le")
    write(d / "video.mp4", melody(8), video_seconds=8)
    write(d / "video-no-audio.mp4", None, video_seconds=4)
    write(d / "silence.wav", np.zeros((1, 5 * 44100), np.float32), codec="pcm_s16le")
    write(d / "short.m4a", melody(2))
    garble(d / "melody.m4a", d / "corrupt.m4a")
    (d / "truncated.m4a").write_bytes((d / "melody.m4a").read_bytes()[:3000])
    (d / "empty.m4a").write_bytes(b"")
    (d / "notes.txt").write_text("not audio\n" * 20)
    (d / "list.m3u8").write_text(
        "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:8,\nmelody.m4a\n#EXT-X-ENDLIST\n"
    )
    (d / "list.ffconcat").write_text("ffconcat version 1.0\nfile 'melody.m4a'\n")
    return d


# ------------------------------------------------------------- good files


@pytest.mark.parametrize("name", ["melody.m4a", "melody.mp3", "stereo-48k.wav", "video.mp4"])
def test_every_container_gives_the_same_soundtrack(files: Path, name: str) -> None:
    """AAC, MP3, 48 kHz stereo PCM and a video's AAC track of one melody all
    fingerprint alike; the lossless WAV is the reference."""
    fp = fingerprint_file(files / name)
    assert 7.9 < fp.duration_s < 8.2
    assert len(fp.values) == (int(fp.duration_s * SAMPLE_RATE) - 4096) // FRAME_STEP + 1 - 19
    assert fp.silent_fraction == 0.0
    ref = fingerprint_file(files / "stereo-48k.wav")
    got = align(ref.values, fp.values, max_offset=2)
    assert got.offset == 0
    assert got.similarity >= 0.9, (name, got)


def _without_id3(data: bytes) -> bytes:
    """MP3 bytes without their leading ID3v2 tag (size: 4 syncsafe bytes)."""
    assert data[:3] == b"ID3"
    size = (data[6] << 21) | (data[7] << 14) | (data[8] << 7) | data[9]
    return data[10 + size :]


def test_a_stream_that_changes_rate_and_channels_midway(tmp_path: Path) -> None:
    """Two MP3s joined (44.1 kHz mono, then 22.05 kHz stereo) decode into
    frames of both kinds; each part is converted as itself and found where
    it lies, rather than the change being called corruption."""
    first = write(tmp_path / "1.mp3", melody(6, seed=3), codec="mp3")
    second = write(
        tmp_path / "2.mp3", melody(6, rate=22050, channels=2, seed=4), rate=22050, codec="mp3"
    )
    joined = tmp_path / "joined.mp3"
    joined.write_bytes(first.read_bytes() + _without_id3(second.read_bytes()))
    whole = fingerprint_file(joined)
    assert 11.9 < whole.duration_s < 12.3
    a, b = fingerprint_file(first), fingerprint_file(second)
    head, tail = align(whole.values, a.values), align(whole.values, b.values)
    assert head.offset == 0 and head.similarity >= 0.9, head
    assert abs(tail.offset - 6.0 / 0.1238) <= 2 and tail.similarity >= 0.85, tail


def test_source_properties_are_reported(files: Path) -> None:
    fp = fingerprint_file(files / "stereo-48k.wav")
    assert (fp.codec, fp.source_rate, fp.source_channels) == ("pcm_s16le", 48000, 2)
    doc = fp.json()
    assert doc["fingerprint"] == list(fp.values)
    assert doc["algorithm"] == "chromaprint"


def test_unrelated_melodies_do_not_align(tmp_path: Path) -> None:
    a = fingerprint_file(write(tmp_path / "a.wav", melody(8, seed=1), codec="pcm_s16le"))
    b = fingerprint_file(write(tmp_path / "b.wav", melody(8, seed=2), codec="pcm_s16le"))
    assert align(a.values, b.values).similarity < 0.75


def test_pcm_pipeline_needs_min_samples() -> None:
    rng = np.random.default_rng(0)
    pcm = (rng.standard_normal(MIN_SAMPLES) * 3000).astype(np.int16)
    assert len(fingerprint_pcm(pcm)) == 1
    assert len(fingerprint_pcm(pcm[:-1])) == 0


def test_classifier_table_is_chromaprints_default() -> None:
    """16 classifiers x 2 bits, windows inside 12 bands and 16 frames."""
    assert len(CLASSIFIERS) == 16
    for c in CLASSIFIERS:
        assert 0 <= c.kind <= 5 and c.band + c.bands <= 12 and 1 <= c.frames <= 16
        assert c.t0 <= c.t1 <= c.t2


# --------------------------------------------------------------- bad input

BAD: list[tuple[str, Callable[[Path], str]]] = [
    ("video-no-audio.mp4", lambda p: f"{p}: no audio stream"),
    ("silence.wav", lambda p: f"{p}: audio is silence only (no frame above -60 dBFS)"),
    (
        "short.m4a",
        lambda p: f"{p}: audio is too short to fingerprint: 2.02 s, need at least 2.72 s",
    ),
    ("corrupt.m4a", lambda p: f"{p}: corrupt audio stream (decoding failed at 2.7 s)"),
    ("truncated.m4a", lambda p: f"{p}: not an audio or video file in a supported format"),
    ("empty.m4a", lambda p: f"{p}: file is empty"),
    ("missing.m4a", lambda p: f"{p}: cannot read file: No such file or directory"),
    ("notes.txt", lambda p: f"{p}: not an audio or video file in a supported format"),
    # These two would make FFmpeg open melody.m4a (and could name any URL):
    # only the file's own bytes are read, so they are refused.
    ("list.m3u8", lambda p: f"{p}: not an audio or video file in a supported format"),
    ("list.ffconcat", lambda p: f"{p}: not an audio or video file in a supported format"),
]


@pytest.mark.parametrize(("name", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_gets_one_exact_line(
    files: Path, name: str, message: Callable[[Path], str]
) -> None:
    path = files / name
    with pytest.raises(ValidationError) as err:
        fingerprint_file(path)
    assert str(err.value) == message(path)


def test_duration_cap_refuses_longer_audio(files: Path) -> None:
    path = files / "melody.m4a"
    with pytest.raises(ValidationError) as err:
        fingerprint_file(path, AudioLimits(max_duration_s=5))
    assert str(err.value) == f"{path}: audio is longer than the 5 s limit"


def _claim_duration(data: bytes, box: bytes, units: int) -> bytes:
    """``data`` (an MP4) with the version-0 ``box`` (mvhd or mdhd) claiming
    ``units`` of its timescale as the duration."""
    at = data.index(box) + 4 + 4 + 8 + 4  # type, version+flags, two times, timescale
    assert data[data.index(box) + 4] == 0, "version-0 box expected"
    return data[:at] + units.to_bytes(4, "big") + data[at + 4 :]


def test_duration_cap_counts_decoded_samples_not_the_header(files: Path, tmp_path: Path) -> None:
    """A file whose header says it is 1/1000 of its length is stopped by the
    decoded-sample count, not let through by the header."""
    data = (files / "melody.m4a").read_bytes()
    liar = tmp_path / "liar.m4a"
    liar.write_bytes(_claim_duration(_claim_duration(data, b"mvhd", 8), b"mdhd", 350))
    import av

    with av.open(str(liar)) as c:
        assert c.streams.audio[0].duration is not None
        assert float(c.streams.audio[0].duration * c.streams.audio[0].time_base) < 0.1
    with pytest.raises(ValidationError) as err:
        fingerprint_file(liar, AudioLimits(max_duration_s=5))
    assert str(err.value) == f"{liar}: audio is longer than the 5 s limit"


def test_limits_validate() -> None:
    with pytest.raises(ValidationError, match="max_duration_s must be > 0: got 0"):
        AudioLimits(max_duration_s=0)


# --------------------------------------------------------------------- CLI


def test_ccnode_hash_fingerprints_audio_and_soundtracks(
    files: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Each bad file gets its one line on stderr and the others go on; a
    video without audio is still hashed, with a note."""
    import json

    from node.cli import main

    names = [
        "melody.m4a",
        "silence.wav",
        "video.mp4",
        "video-no-audio.mp4",
        "short.m4a",
        "corrupt.m4a",
    ]
    paths = [files / n for n in names]
    assert main(["hash", *map(str, paths), "--json"]) == 2
    out, err = capfd.readouterr()
    assert err.splitlines() == [
        f"ccnode: error: {paths[1]}: audio is silence only (no frame above -60 dBFS)",
        f"ccnode: error: {paths[4]}: audio is too short to fingerprint: 2.02 s, "
        "need at least 2.72 s",
        # nothing from FFmpeg's own log (written to fd 2) reaches the user
        f"ccnode: error: {paths[5]}: corrupt audio stream (decoding failed at 2.7 s)",
    ]
    docs = {Path(d["file"]).name: d for d in json.loads(out)}
    assert sorted(docs) == ["melody.m4a", "video-no-audio.mp4", "video.mp4"]
    for name in ("melody.m4a", "video.mp4"):
        assert docs[name]["chromaprint"]["fingerprint"] == list(
            fingerprint_file(files / name).values
        )
    assert docs["video-no-audio.mp4"]["chromaprint"] is None
    assert docs["video-no-audio.mp4"]["chromaprint_note"] == "no audio stream"

    assert main(["hash", str(paths[0]), str(paths[3])]) == 0
    out, err = capfd.readouterr()
    fp = fingerprint_file(paths[0])
    head = " ".join(f"{v:08x}" for v in fp.values[:4])
    lines = out.splitlines()
    assert lines[1] == (
        f"  chromaprint {len(fp.values)} x 32 bits over {fp.duration_s:.2f} s "
        f"(aac 44100 Hz 1 ch, 0% silent): {head} ..."
    )
    assert lines[3] == "  note: no audio fingerprint: no audio stream"
    assert err == ""
