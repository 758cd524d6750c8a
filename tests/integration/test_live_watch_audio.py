"""Live soundtracks end to end: ``ccnode watch`` catches a re-stream by its
sound when its picture is unrecognisable, ``MatchAudioStream`` answers
sub-fingerprints sent as they come, and a live publisher's audio segments
are announced on WatchIncidents.

Real processes and media: the writer (tests/live_writer.py) plays generated
footage with the shared Chromaprint vector ``a.m4a`` as its soundtrack; the
banked video is ``a.mp4`` with the same soundtrack, banked by ``submit
--file`` (its frames and its sound as one video).
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from node.core.chromaprint import ITEM_SECONDS, item_ms
from node.core.trust import MemberKind, MembersFile
from node.errors import LimitError
from node.media.audio import fingerprint_file
from node.rpc import service
from node.rpc._pb.consortium.v1 import node_pb2 as pb
from node.rpc.client import NodeClient
from node.server import Node
from tests import videos
from tests.helpers import LoopThread, member, write_node_dir
from tests.integration.test_live_publish import (
    INCIDENT,
    NODE,
    ROOT,
    SOUNDTRACK,
    VECTORS,
    WRITER,
    _finish,
    _popen,
    _publish,
    _wait_file,
)

pytestmark = pytest.mark.integration

GOV = "gov.example/ct"
UNRELATED_SOUND = SOUNDTRACK.parent / "unrelated-b.m4a"


def _write(src: Path, out: Path, sound: Path) -> Path:
    """``src``'s picture with ``sound`` as its soundtrack, as MPEG-TS."""
    argv = [*WRITER, str(src), str(out), "--speed", "1000", "--audio", str(sound)]
    subprocess.run(argv, cwd=ROOT, check=True)
    return out


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not VECTORS.is_dir():
        pytest.skip("../shared/vectors is absent")
    d = tmp_path_factory.mktemp("sound")
    _write(VECTORS / "a.mp4", d / "banked.ts", SOUNDTRACK)
    # Other footage, 20 s (a.m4a's length): nothing of a.mp4's picture.
    videos.write(d / "other.mp4", videos.synthetic(77, width=320, height=180, seconds=20))
    return d


@pytest.fixture
def node(tmp_path: Path, loop: LoopThread, media: Path) -> Iterator[Node]:
    members = MembersFile.of([member(GOV, MemberKind.GOVERNMENT)])
    n = Node(write_node_dir(tmp_path, GOV, members, kind=MemberKind.GOVERNMENT), anti_entropy_s=0)
    loop.run(n.start())
    try:
        argv = [*NODE, "submit", str(n.config.dir), "--file", str(media / "banked.ts")]
        argv += ["--label", "type:video", "--incident", INCIDENT, "--json"]
        subprocess.run(argv, cwd=ROOT, check=True, capture_output=True)
        yield n
    finally:
        loop.run(n.stop())


def _watch(node: Node, tmp_path: Path, src: Path, sound: Path) -> tuple[int, list[Any], str]:
    ts = tmp_path / "restream.ts"
    writer = _popen([*WRITER, str(src), str(ts), "--speed", "2", "--audio", str(sound)])
    try:
        _wait_file(ts)
        argv = [*NODE, "watch", str(ts), "--dir", str(node.config.dir), "--json"]
        watcher = _popen(
            [*argv, "--stall-seconds", "1.5"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        return _finish(watcher, timeout=120)
    finally:
        writer.wait(60)


@pytest.mark.slow
def test_a_restream_with_other_pictures_is_caught_by_its_soundtrack(
    node: Node, tmp_path: Path, media: Path
) -> None:
    code, events, err = _watch(node, tmp_path, media / "other.mp4", SOUNDTRACK)
    assert code == 0, err
    matches = [e for e in events if e["event"] == "match"]
    assert [m["fired"] for m in matches] == ["audio"]  # the picture matched nothing
    m = matches[0]
    assert m["is_match"] and m["match"]["origin"] == GOV
    assert m["similarity"] >= 0.8 and m["aligned_s"] >= 7.0
    assert m["stream_ms"] <= 12_000  # 7 s aligned + an item's 2.7 s window, on the 2 s grid
    # the upload's range is in the stream's time, and lines up with the bank's
    start, end = m["upload_range_ms"]
    assert abs(start - m["banked_range_ms"][0]) <= 125 and end <= m["evidence_ms"]
    end_event = events[-1]
    assert end_event["event"] == "end" and end_event["matches"] == 1
    (video,) = end_event["videos"]
    assert video["audio_match"] is True and video["is_match"] is False
    print(
        f"caught by its soundtrack after {m['stream_ms']} ms of stream (similarity "
        f"{m['similarity']:.3f} over {m['aligned_s']:.1f} s, upload {m['upload_range_ms']} ~ "
        f"banked {m['banked_range_ms']}), latency {m['latency_ms']} ms"
    )


@pytest.mark.slow
def test_an_unrelated_restream_with_its_own_sound_raises_nothing(
    node: Node, tmp_path: Path
) -> None:
    code, events, err = _watch(node, tmp_path, VECTORS / "unrelated-b.mp4", UNRELATED_SOUND)
    assert code == 0, err
    assert [e for e in events if e["event"] == "match"] == []
    assert events[-1] == {"event": "end", "matches": 0, "videos": events[-1]["videos"]}
    assert not any(v["audio_match"] or v["is_match"] for v in events[-1]["videos"])


async def _stream_audio(
    address: str, chunks: list[list[int]], pause_after: int = -1, pause_s: float = 0
) -> list[list[pb.AudioMatch]]:
    async def send() -> AsyncIterator[list[int]]:
        for i, c in enumerate(chunks):
            yield c
            if i == pause_after:
                await asyncio.sleep(pause_s)  # a silent client, to test the idle limit

    async with NodeClient(address) as c:
        return [answer async for answer in c.match_audio_stream(send())]


def _seconds(values: tuple[int, ...]) -> list[list[int]]:
    """Sub-fingerprints cut per second of sound, as a live fingerprinter gives them."""
    per = round(1 / ITEM_SECONDS)
    return [list(values[i : i + per]) for i in range(0, len(values), per)]


def test_match_audio_stream_answers_each_chunk_and_holds_the_newest_sound(
    node: Node, loop: LoopThread, media: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = fingerprint_file(SOUNDTRACK.parent / "a-room-echo.m4a").values
    chunks = _seconds(copy)
    answers = loop.run(_stream_audio(node.address, chunks))
    assert len(answers) == len(chunks)
    first = next(i for i, a in enumerate(answers) if any(m.is_match for m in a))
    assert 7 <= first <= 9  # once 7 s of sound are aligned
    m = next(m for m in answers[-1] if m.is_match)
    assert m.match.provenance.origin == GOV and m.similarity >= 0.8
    # The last answer equals one Match of the whole (the stream is under 60 s).
    assert len(copy) < service.MATCH_STREAM_AUDIO_ITEMS

    async def whole() -> list[pb.AudioMatch]:
        async with NodeClient(node.address) as c:
            return await c.match_audio(copy)

    once = [(x.video_id, x.similarity, x.query_start_ms) for x in loop.run(whole())]
    assert once == [(x.video_id, x.similarity, x.query_start_ms) for x in answers[-1]]
    # A call holds only the newest values; ranges stay in the stream's time.
    # (the bank holds a's first 12 s, items 0..74: the last 70 of 400 other
    # values and the copy's first 80 leave the copy's items 10..79 held)
    monkeypatch.setattr(service, "MATCH_STREAM_AUDIO_ITEMS", 70)
    noise = [(0x9E3779B9 * (i + 1)) & 0xFFFFFFFF for i in range(400)]
    answers = loop.run(_stream_audio(node.address, [noise, *chunks[:10]]))
    assert sum(len(c) for c in chunks[:10]) == 80
    m = next(m for m in answers[-1] if m.is_match)
    assert m.query_start_ms >= item_ms(400 + 10)  # the stream's time, past what was dropped
    assert abs(m.query_start_ms - item_ms(400) - m.banked_start_ms) <= 125


def test_an_idle_audio_stream_is_ended(
    node: Node, loop: LoopThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "MATCH_STREAM_IDLE_S", 0.3)
    with pytest.raises(LimitError) as e:
        loop.run(_stream_audio(node.address, [[1, 2, 3]] * 3, pause_after=1, pause_s=5))
    assert str(e.value) == "MatchAudioStream idle for 0.3 s: call ended"


def test_bad_audio_stream_thresholds_get_the_exact_error(node: Node, loop: LoopThread) -> None:
    import grpc

    async def go() -> grpc.aio.AioRpcError:
        async def send() -> AsyncIterator[pb.AudioQuery]:
            yield pb.AudioQuery(values=[1, 2, 3], min_similarity=0.2)

        async with NodeClient(node.address) as c:
            with pytest.raises(grpc.aio.AioRpcError) as e:
                async for _ in c.stub.MatchAudioStream(send()):
                    pass
            return e.value

    err = loop.run(go())
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details() == "audio thresholds: audio min_similarity must be in (0.5, 1]: got 0.2"


def test_a_live_soundtrack_is_announced_on_watch_incidents(
    node: Node, loop: LoopThread, media: Path
) -> None:
    from node.core.chromaprint import ChromaprintSegment
    from tests.integration.test_incident_alerts import _collect, _wait_subscribers

    notes = asyncio.run_coroutine_threadsafe(_collect(node.address, [INCIDENT], 11), loop.loop)
    _wait_subscribers(node, 1)
    code, _lines, err = _finish(_publish(node, str(media / "banked.ts")))
    assert code == 0, err
    got = notes.result(30)
    kinds = [n.provenance.algorithm for n in got]
    assert kinds.count("CHROMAPRINT") == 5 and kinds.count("VPDQ") == 6
    assert kinds[-1] == "VPDQ"  # the video's closing segment comes last
    sound = [n for n in got if n.provenance.algorithm == "CHROMAPRINT"]
    for n in sound:
        assert n.provenance.urgent and n.provenance.incident == INCIDENT
        assert n.recommended_action == node.app.get(bytes(n.provenance.entry_id)).action != ""
    segs = [ChromaprintSegment.decode(bytes(n.provenance.hash)) for n in sound]
    assert [s.index for s in segs] == list(range(5)) and segs[-1].final
    assert tuple(v for s in segs for v in s.values) == fingerprint_file(media / "banked.ts").values
