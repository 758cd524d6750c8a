"""A live incident across a real three-node line, publisher and watcher at
opposite ends: the government publishes a stream while it is live (``submit
--live``, a growing MPEG-TS file written by a PyAV process); as soon as its
first segment reaches the platform at the far end, a mirrored re-stream
starts there and ``ccnode watch`` must report it within 10 s of stream time,
while the platform's ``WatchIncidents`` stream tells it of each segment.
And the same with the stream's soundtrack: a re-stream whose pictures are
other footage is caught at the far end by its sound."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from node.core.chromaprint import ChromaprintSegment
from node.core.entry import SignedEntry
from node.core.vpdq import VpdqSegment
from node.rpc._pb.consortium.v1 import node_pb2 as pb
from node.rpc.client import NodeClient
from node.server import Node
from tests import videos
from tests.helpers import LoopThread, eventually, line_of_three
from tests.integration.test_live_publish import (
    INCIDENT,
    NODE,
    SOUNDTRACK,
    VECTORS,
    WRITER,
    _finish,
    _popen,
    _publish,
    _wait_file,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

GOV, P1, P2 = "gov.example/ct", "platform-one.example", "platform-two.example"


def _vpdq_at(node: Node) -> list[VpdqSegment]:
    head = node.store.heads().get(GOV)
    if head is None:
        return []
    raws = node.store.raw_entries_from(GOV, 0, 10_000, 1 << 30)
    entries = [SignedEntry.from_bytes(r) for r in raws]
    return [VpdqSegment.decode(e.body.hash) for e in entries if e.body.algorithm == "VPDQ"]


def test_a_live_stream_published_at_one_end_is_caught_at_the_other(
    tmp_path: Path, loop: LoopThread
) -> None:
    configs = line_of_three(tmp_path, GOV, P1, P2)
    nodes = [Node(c, anti_entropy_s=0) for c in configs]
    for n in nodes:
        loop.run(n.start())
    gov, _p1, p2 = nodes
    notes: list[pb.IncidentNotification] = []

    async def listen() -> None:
        async with NodeClient(p2.address) as c:
            async for note in c.watch_incidents([INCIDENT]):
                notes.append(note)

    listener = asyncio.run_coroutine_threadsafe(listen(), loop.loop)
    writers: list[subprocess.Popen[bytes]] = []
    try:
        eventually(lambda: p2.incidents.subscribers == 1, what="the platform listens")
        live = tmp_path / "live.ts"
        writers.append(_popen([*WRITER, str(VECTORS / "a.mp4"), str(live), "--speed", "1"]))
        _wait_file(live)
        publisher = _publish(gov, str(live))
        # The re-stream starts when the first segment has crossed the mesh.
        eventually(lambda: bool(_vpdq_at(p2)), timeout=60, what="a segment at the far end")
        restream = tmp_path / "restream.ts"
        mirrored = VECTORS / "a-mirrored.mp4"
        writers.append(_popen([*WRITER, str(mirrored), str(restream), "--speed", "1"]))
        _wait_file(restream)
        watcher = _popen(
            [
                *NODE,
                "watch",
                str(restream),
                "--dir",
                str(p2.config.dir),
                "--json",
                "--stall-seconds",
                "1.5",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        code, events, err = _finish(watcher, timeout=120)
        assert code == 0, err
        pcode, _out, perr = _finish(publisher, timeout=120)
        assert pcode == 0, perr
        # Every segment crosses the line; the far end's platform hears of each.
        eventually(lambda: len(_vpdq_at(p2)) == len(_vpdq_at(gov)), what="all segments")
        segs = _vpdq_at(p2)
        eventually(lambda: len(notes) == len(segs), what="a notification per segment")
    finally:
        for w in writers:
            w.kill()
            w.wait(10)
        listener.cancel()
        for n in nodes:
            loop.run(n.stop())
    matches = [e for e in events if e["event"] == "match"]
    assert len(matches) == 1, events
    m = matches[0]
    assert m["stream_ms"] <= 10_000  # time to detect: within 10 s of the re-stream
    assert m["match"]["origin"] == GOV and m["mirrored"] is True
    assert len({s.video_id for s in segs}) == 1 and m["video_id"] == segs[0].video_id.hex()
    # The far end's platform was told of every segment, each once, in order.
    ids = [VpdqSegment.decode(bytes(n.provenance.hash)).index for n in notes]
    assert ids == [s.index for s in segs] and segs[-1].final
    print(f"re-stream reported after {m['stream_ms']} ms of it, latency {m['latency_ms']} ms")


def _sound_at(node: Node) -> list[ChromaprintSegment]:
    raws = node.store.raw_entries_from(GOV, 0, 10_000, 1 << 30) if node.store.heads() else []
    entries = [SignedEntry.from_bytes(r) for r in raws]
    return [
        ChromaprintSegment.decode(e.body.hash) for e in entries if e.body.algorithm == "CHROMAPRINT"
    ]


def test_a_restream_with_other_pictures_is_caught_by_the_live_soundtrack_at_the_other_end(
    tmp_path: Path, loop: LoopThread
) -> None:
    """The government publishes a stream with its soundtrack; as soon as the
    first audio segment reaches the far end, a re-stream of other footage
    with the same soundtrack starts there, and the watcher reports it by
    sound alone, against the live video's audio segments."""
    other = videos.write(
        tmp_path / "other.mp4", videos.synthetic(77, width=320, height=180, seconds=20)
    )
    configs = line_of_three(tmp_path, GOV, P1, P2)
    nodes = [Node(c, anti_entropy_s=0) for c in configs]
    for n in nodes:
        loop.run(n.start())
    gov, _p1, p2 = nodes
    writers: list[subprocess.Popen[bytes]] = []
    try:
        live = tmp_path / "live.ts"
        sound = ["--audio", str(SOUNDTRACK)]
        writers.append(_popen([*WRITER, str(VECTORS / "a.mp4"), str(live), "--speed", "1", *sound]))
        _wait_file(live)
        publisher = _publish(gov, str(live))
        eventually(lambda: bool(_sound_at(p2)), timeout=60, what="audio at the far end")
        restream = tmp_path / "restream.ts"
        writers.append(_popen([*WRITER, str(other), str(restream), "--speed", "1", *sound]))
        _wait_file(restream)
        argv = [*NODE, "watch", str(restream), "--dir", str(p2.config.dir), "--json"]
        watcher = _popen(
            [*argv, "--stall-seconds", "1.5"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        code, events, err = _finish(watcher, timeout=120)
        assert code == 0, err
        pcode, _out, perr = _finish(publisher, timeout=120)
        assert pcode == 0, perr
        eventually(lambda: len(_sound_at(p2)) == len(_sound_at(gov)), what="all audio segments")
        segs = _sound_at(p2)
    finally:
        for w in writers:
            w.kill()
            w.wait(10)
        for n in nodes:
            loop.run(n.stop())
    matches = [e for e in events if e["event"] == "match"]
    assert [m["fired"] for m in matches] == ["audio"], events
    m = matches[0]
    assert m["stream_ms"] <= 12_000 and m["aligned_s"] >= 7.0
    assert m["match"]["origin"] == GOV and m["video_id"] == segs[0].video_id.hex()
    assert segs[-1].final
    print(
        f"re-stream with other pictures reported by sound after {m['stream_ms']} ms of it "
        f"(similarity {m['similarity']:.3f}), latency {m['latency_ms']} ms"
    )
