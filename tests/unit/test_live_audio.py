"""A live stream's soundtrack fingerprinted as it comes equals the whole file's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.media.audio import SAMPLE_RATE, StreamFingerprint, fingerprint_file, fingerprint_pcm
from node.media.video import LiveBank, LiveQuery
from tests import live_writer
from tests.audio_files import melody

VECTORS = Path(__file__).resolve().parents[2].parent / "shared" / "vectors"
PCM = (melody(12.0, rate=SAMPLE_RATE, seed=5)[0] * 32767).astype(np.int16)
WHOLE = fingerprint_pcm(PCM)


def _streamed(pcm: np.ndarray, cuts: list[int]) -> list[int]:
    fp, out, at = StreamFingerprint(), [], 0
    for n in cuts:
        out += fp.feed(pcm[at : at + n]).tolist()
        at += n
    out += fp.feed(pcm[at:]).tolist()
    out += fp.finish().tolist()
    assert fp.items == len(out)
    return out


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 20_000), max_size=40))
def test_pieces_of_any_size_give_the_whole_fingerprint_value_for_value(cuts: list[int]) -> None:
    assert len(WHOLE) == 75
    assert _streamed(PCM, cuts) == WHOLE.tolist()


def test_values_come_as_soon_as_their_window_is_in() -> None:
    fp = StreamFingerprint()
    # item k needs samples up to 1365 k + 4096 + 19 x 1365 (its 20 frames)
    need = 4096 + 19 * 1365
    assert len(fp.feed(PCM[: need - 1])) == 0
    assert fp.feed(PCM[need - 1 : need]).tolist() == WHOLE[:1].tolist()
    assert fp.feed(PCM[need : need + 1365]).tolist() == WHOLE[1:2].tolist()


@pytest.fixture(scope="module")
def streams(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not VECTORS.is_dir():
        pytest.skip("../shared/vectors is absent")
    d = tmp_path_factory.mktemp("live-audio")
    src, sound = VECTORS / "vpdq" / "a.mp4", VECTORS / "chromaprint" / "a.m4a"
    live_writer.main([str(src), str(d / "with.ts"), "--speed", "1000", "--audio", str(sound)])
    live_writer.main([str(src), str(d / "without.ts"), "--speed", "1000"])
    return d


@pytest.mark.parametrize("kind", [LiveBank, LiveQuery])
def test_a_live_soundtrack_is_decoded_beside_the_picture(streams: Path, kind: type) -> None:
    ts = streams / "with.ts"
    with ts.open("rb") as f:
        stream = kind(f, str(ts), audio=True)
        assert stream.audio is not None and stream.audio.codec == "aac"
        got, frames = [], 0
        for _ in stream.frames():
            got += stream.audio.take().tolist()
            frames += 1
        got += stream.audio.take().tolist()
    assert frames > 0 and stream.audio.finished and stream.audio.error is None
    assert tuple(got) == fingerprint_file(ts).values  # value for value
    assert len(got) == 75


def test_a_stream_without_sound_has_no_soundtrack(streams: Path) -> None:
    ts = streams / "without.ts"
    with ts.open("rb") as f:
        stream = LiveBank(f, str(ts), audio=True)
        assert stream.audio is None
        assert sum(1 for _ in stream.frames()) > 0


def garble_audio(ts: Path, out: Path) -> Path:
    """A copy of MPEG-TS ``ts`` whose audio packets in its second half have
    their payload inverted (PES headers kept): the picture is intact."""
    import av

    with av.open(str(ts)) as c:
        pid = c.streams.audio[0].id
    data = bytearray(ts.read_bytes())
    count = len(data) // 188
    for k in range(count // 2, count):
        at = 188 * k
        if ((data[at + 1] & 0x1F) << 8 | data[at + 2]) == pid and not data[at + 1] & 0x40:
            for i in range(at + 4, at + 188, 3):
                data[i] ^= 0xFF
    out.write_bytes(bytes(data))
    return out


def test_a_damaged_soundtrack_ends_there_and_the_picture_goes_on(streams: Path) -> None:
    ts = garble_audio(streams / "with.ts", streams / "bad-audio.ts")
    clean = fingerprint_file(streams / "with.ts").values
    with ts.open("rb") as f:
        stream = LiveBank(f, str(ts), audio=True)
        frames = sum(1 for _ in stream.frames())
        assert stream.audio is not None
        got = stream.audio.take().tolist()
    assert frames == 60  # every banked frame of the 12 s picture
    assert stream.audio.error == f"{ts}: corrupt audio stream (decoding failed at 6.0 s)"
    assert 20 < len(got) < len(clean)
    assert got[:20] == list(clean[:20])  # what came before the damage stays
