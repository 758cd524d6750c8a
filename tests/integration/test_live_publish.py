"""``ccnode submit DIR --live SOURCE``: real processes and real sources.

A writer process (tests/live_writer.py, PyAV) re-encodes a shared vector into
a growing MPEG-TS file or a pipe; the publisher is ``python -m node`` in its
own process; the node is a real grpc.aio node on 127.0.0.1 with LMDB.
"""

from __future__ import annotations

import functools
import itertools
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler
from pathlib import Path
from typing import IO, Any

import pytest

from node.cli.live_cmds import LiveState, Publisher
from node.core.chromaprint import ChromaprintSegment, items_at
from node.core.entry import SignedEntry
from node.core.trust import MemberKind, MembersFile
from node.core.vpdq import VpdqSegment
from node.errors import ValidationError
from node.media import live
from node.media.audio import fingerprint_file
from node.media.live import open_source, open_stream
from node.media.video import LiveBank, bank_frames
from node.rpc.client import NodeClient
from node.server import Node
from tests.helpers import LoopThread, Origin, http_server, member, signer_for, write_node_dir

pytestmark = pytest.mark.integration

VECTORS = Path(__file__).resolve().parents[2].parent / "shared" / "vectors" / "vpdq"
SRC = VECTORS / "a.mp4"
#: A soundtrack for the stream (tests/live_writer.py --audio): the shared
#: Chromaprint vector, so a copy's audio can be matched to it.
SOUNDTRACK = VECTORS.parent / "chromaprint" / "a.m4a"
GOV = "gov.example/ct"
INCIDENT = "test-stream-2026-12-01"
WRITER = [sys.executable, "-m", "tests.live_writer"]
NODE = [sys.executable, "-m", "node"]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def node(tmp_path: Path, loop: LoopThread) -> Iterator[Node]:
    members = MembersFile.of([member(GOV, MemberKind.GOVERNMENT)])
    n = Node(write_node_dir(tmp_path, GOV, members, kind=MemberKind.GOVERNMENT), anti_entropy_s=0)
    loop.run(n.start())
    yield n
    loop.run(n.stop())


def _popen(argv: list[str], **kw: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, cwd=ROOT, **kw)


def _publish(node: Node, source: str, *extra: str, stdin: Any = None) -> subprocess.Popen[bytes]:
    return _popen(
        [
            *NODE,
            "submit",
            str(node.config.dir),
            "--live",
            source,
            "--incident",
            INCIDENT,
            "--label",
            "type:video",
            "--segment-seconds",
            "2",
            "--stall-seconds",
            "1.5",
            "--json",
            *extra,
        ],
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _finish(proc: subprocess.Popen[bytes], timeout: float = 60) -> tuple[int, list[Any], str]:
    out, err = proc.communicate(timeout=timeout)
    lines = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
    return proc.returncode, lines, err.decode()


def _entries(node: Node) -> list[SignedEntry]:
    return [SignedEntry.from_bytes(r) for r in node.store.raw_entries_from(GOV, 0, 10_000, 1 << 30)]


def _segments(node: Node) -> list[tuple[SignedEntry, VpdqSegment]]:
    return [
        (e, VpdqSegment.decode(e.body.hash)) for e in _entries(node) if e.body.algorithm == "VPDQ"
    ]


def _sound(node: Node) -> list[tuple[SignedEntry, ChromaprintSegment]]:
    return [
        (e, ChromaprintSegment.decode(e.body.hash))
        for e in _entries(node)
        if e.body.algorithm == "CHROMAPRINT"
    ]


def _check_soundtrack(node: Node, final_file: Path) -> list[ChromaprintSegment]:
    """The soundtrack as CHROMAPRINT segments of the video's id: 0..n once
    each, contiguous, the last final, urgent; together exactly the whole
    file's fingerprint; and the video's closing segment is the log's last."""
    got = _sound(node)
    segs = [s for _e, s in got]
    assert {s.video_id for s in segs} == {_segments(node)[0][1].video_id}
    assert [s.index for s in segs] == list(range(len(segs)))
    assert [s.final for s in segs] == [False] * (len(segs) - 1) + [True]
    assert [s.start_item for s in segs] == [0] + [s.end_item for s in segs[:-1]]
    assert all(e.body.urgent and e.body.incident == INCIDENT for e, _s in got)
    values = tuple(v for s in segs for v in s.values)
    assert values == fingerprint_file(final_file).values
    last = _entries(node)[-1]
    assert last.body.algorithm == "VPDQ" and VpdqSegment.decode(last.body.hash).final
    return segs


def _wait_file(path: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.stat().st_size > 0):
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def _check_whole_video(node: Node, final_file: Path) -> list[VpdqSegment]:
    """One video, segments 0..n once each, in the log's order, the last final,
    and together exactly the frames bank_frames gives the finished file."""
    got = _segments(node)
    segs = [s for _e, s in got]
    assert len({s.video_id for s in segs}) == 1
    assert [s.index for s in segs] == list(range(len(segs)))
    assert [s.final for s in segs] == [False] * (len(segs) - 1) + [True]
    assert all(e.body.urgent and e.body.incident == INCIDENT for e, _s in got)
    frames = [f for s in segs for f in s.frames]
    assert tuple(frames) == bank_frames(final_file).frames
    heads = node.store.heads()
    assert heads[GOV].next_seq == len(_entries(node))  # one chain: no fork
    return segs


@pytest.mark.slow
def test_a_growing_file_is_published_segment_by_segment_while_it_is_written(
    node: Node, tmp_path: Path
) -> None:
    ts = tmp_path / "stream.ts"
    writer = _popen([*WRITER, str(SRC), str(ts), "--speed", "2"])
    _wait_file(ts)
    publisher = _publish(node, str(ts))
    writer.wait(60)
    writer_done_ms = time.time() * 1000
    code, lines, err = _finish(publisher)
    assert code == 0, err
    assert "no new data for 1.5 s: the stream is taken to have ended" in err
    segs = _check_whole_video(node, ts)
    assert len(segs) == 6  # 12 s in 2 s segments
    assert lines[0]["video_id"] == segs[0].video_id.hex()
    published = [d for d in lines if "segment" in d]
    assert [d["segment"] for d in published] == list(range(6))
    assert lines[-1] == {
        "video_id": segs[0].video_id.hex(),
        "segments": 6,
        "audio_segments": 0,
        "finished": True,
    }
    assert _sound(node) == []  # no audio stream: no soundtrack, as before
    # Live: the first segments were committed before the writer had finished.
    first = _segments(node)[0][0]
    assert node.store.get(first.entry_id).arrival_ms < writer_done_ms  # type: ignore[union-attr]
    # The same source again: refused, nothing published twice.
    again = _publish(node, str(ts))
    code, _lines, err = _finish(again)
    assert code == 2
    state = LiveState.path_for(node.config.dir, INCIDENT, str(ts))
    assert err.strip() == (
        f"ccnode: error: {ts} was published to its end as video {segs[0].video_id.hex()} "
        f"(6 segments; state in {state}); remove that file to publish it again"
    )
    assert len(_segments(node)) == 6


@pytest.mark.slow
def test_standard_input_is_published_until_the_pipe_closes(node: Node, tmp_path: Path) -> None:
    writer = _popen([*WRITER, str(SRC), "-", "--speed", "4"], stdout=subprocess.PIPE)
    publisher = _publish(node, "-", stdin=writer.stdout)
    assert writer.stdout is not None
    writer.stdout.close()  # the publisher holds the read end
    code, _lines, err = _finish(publisher)
    assert writer.wait(30) == 0
    assert code == 0, err
    assert "no new data" not in err  # the pipe's end, not a stall
    # The same frames as the file the writer makes.
    ts = tmp_path / "same.ts"
    subprocess.run([*WRITER, str(SRC), str(ts), "--speed", "100"], cwd=ROOT, check=True)
    assert len(_check_whole_video(node, ts)) == 6


def test_a_soundtrack_is_published_as_audio_segments_of_the_same_video(
    node: Node, tmp_path: Path
) -> None:
    ts = tmp_path / "stream.ts"
    writer = _popen([*WRITER, str(SRC), str(ts), "--speed", "3", "--audio", str(SOUNDTRACK)])
    _wait_file(ts)
    publisher = _publish(node, str(ts))
    writer.wait(60)
    code, lines, err = _finish(publisher)
    assert code == 0, err
    assert len(_check_whole_video(node, ts)) == 6
    audio = _check_soundtrack(node, ts)
    # 12 s of sound give 75 sub-fingerprints, the last starting at 9.2 s (an
    # item's window is 2.72 s), cut on the 2 s grid (an item every 0.1238 s)
    assert [len(s.values) for s in audio] == [17, 16, 16, 16, 10]
    assert len(_entries(node)) == 6 + 5
    reported = [d for d in lines if d.get("algorithm") == "CHROMAPRINT"]
    assert [(d["segment"], d["items"], d["final"]) for d in reported] == [
        (s.index, len(s.values), s.final) for s in audio
    ]
    assert reported[1]["start_ms"] == 2105 and reported[1]["end_ms"] == 4086
    assert lines[-1]["audio_segments"] == 5
    assert err.count("ccnode: warning:") == 1  # the stall that ends a file, nothing else


def test_a_damaged_soundtrack_closes_with_a_warning_and_the_picture_goes_on(
    node: Node, tmp_path: Path
) -> None:
    from tests.unit.test_live_audio import garble_audio

    clean = tmp_path / "clean.ts"
    subprocess.run(
        [*WRITER, str(SRC), str(clean), "--speed", "1000", "--audio", str(SOUNDTRACK)],
        cwd=ROOT,
        check=True,
    )
    ts = garble_audio(clean, tmp_path / "stream.ts")
    code, lines, err = _finish(_publish(node, str(ts)))
    assert code == 0, err
    assert (
        f"ccnode: warning: {ts}: corrupt audio stream (decoding failed at 6.0 s); "
        "the soundtrack ends with what was fingerprinted before\n"
    ) in err
    assert len(_check_whole_video(node, ts)) == 6  # every frame, as from the clean file
    audio = [s for _e, s in _sound(node)]
    assert audio[-1].final and 20 < sum(len(s.values) for s in audio) < 75
    assert lines[-1]["finished"] is True


def test_a_soundtrack_too_short_to_fingerprint_is_not_published(node: Node, tmp_path: Path) -> None:
    ts = tmp_path / "stream.ts"
    argv = [*WRITER, str(SRC), str(ts), "--speed", "1000", "--stop-after-s", "2"]
    subprocess.run([*argv, "--audio", str(SOUNDTRACK)], cwd=ROOT, check=True)
    code, lines, err = _finish(_publish(node, str(ts)))
    assert code == 0, err
    assert (
        f"ccnode: warning: {ts}: audio is too short to fingerprint: 2.02 s, need at least "
        "2.72 s: the soundtrack is not published\n"
    ) in err
    assert _sound(node) == [] and len(_segments(node)) == 1
    assert lines[-1]["audio_segments"] == 0 and lines[-1]["finished"] is True


def _read_line(stream: IO[bytes], timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    line = b""
    while not line.endswith(b"\n"):
        assert time.monotonic() < deadline, "no output from the publisher"
        line += stream.readline()
    doc: dict[str, Any] = json.loads(line)
    return doc


@pytest.mark.slow
def test_a_publisher_killed_mid_stream_resumes_without_forking_or_repeating(
    node: Node, tmp_path: Path
) -> None:
    ts = tmp_path / "stream.ts"
    writer = _popen([*WRITER, str(SRC), str(ts), "--speed", "1", "--audio", str(SOUNDTRACK)])
    _wait_file(ts)
    first = _publish(node, str(ts))
    assert first.stdout is not None
    assert "video_id" in _read_line(first.stdout, 30)
    seg0 = _read_line(first.stdout, 30)
    assert seg0["segment"] == 0 and seg0["outcome"] == "accepted"
    # Killed once an audio segment is out too (the soundtrack runs ~2.6 s
    # behind: an item's window), so both kinds resume.
    while (line := _read_line(first.stdout, 30))["algorithm"] != "CHROMAPRINT":
        assert line["final"] is False
    before = {(e.body.algorithm, e.body.hash) for e in _entries(node)}
    # A second publisher of the same stream is refused while the first runs.
    code, _lines, err = _finish(_publish(node, str(ts)))
    stream_dir = LiveState.path_for(node.config.dir, INCIDENT, str(ts)).parent
    assert code == 5  # ConflictError
    assert err.strip() == (
        f"ccnode: error: cannot publish {ts}: {stream_dir} is in use by process {first.pid} "
        f"(it holds {stream_dir / 'node.lock'}); stop that process first"
    )
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    assert first.stdout is not None
    first.stdout.close()
    assert first.stderr is not None
    first.stderr.close()
    second = _publish(node, str(ts))
    code, lines, err = _finish(second, timeout=90)
    writer.wait(30)
    assert code == 0, err
    assert "resuming video" in err
    segs = _check_whole_video(node, ts)
    assert len(segs) == 6
    assert segs[0].video_id.hex() == seg0["video_id"]
    audio = _check_soundtrack(node, ts)
    assert len(audio) == 5
    # Nothing published before the kill was sent again, of either kind.
    again = {(d["algorithm"], d["segment"]) for d in lines if "segment" in d}
    assert ("VPDQ", 0) not in again and ("CHROMAPRINT", 0) not in again
    assert len(_entries(node)) == 6 + 5
    assert before <= {(e.body.algorithm, e.body.hash) for e in _entries(node)}


@pytest.mark.slow
def test_a_piped_stream_resumed_after_a_kill_continues_picture_and_sound(
    node: Node, tmp_path: Path
) -> None:
    """Standard input cannot be read again: after a SIGKILL, what a new pipe
    brings continues the same video after what was published, the sound on
    its own positions after the last published audio segment, nothing twice."""
    sound = ["--audio", str(SOUNDTRACK)]
    writer = _popen([*WRITER, str(SRC), "-", "--speed", "1", *sound], stdout=subprocess.PIPE)
    first = _publish(node, "-", stdin=writer.stdout)
    assert writer.stdout is not None and first.stdout is not None
    writer.stdout.close()
    while _read_line(first.stdout, 30).get("algorithm") != "CHROMAPRINT":
        pass
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    writer.kill()
    writer.wait(10)
    for pipe in (first.stdout, first.stderr):
        assert pipe is not None
        pipe.close()
    state = LiveState.load(LiveState.path_for(node.config.dir, INCIDENT, "-"))
    assert state is not None and state.audio_next >= 1
    before = len(_entries(node))
    writer = _popen([*WRITER, str(SRC), "-", "--speed", "4", *sound], stdout=subprocess.PIPE)
    second = _publish(node, "-", stdin=writer.stdout)
    assert writer.stdout is not None
    writer.stdout.close()
    code, _lines, err = _finish(second, timeout=90)
    writer.wait(30)
    assert code == 0, err
    assert "resuming video" in err
    video = [s for _e, s in _segments(node)]
    audio = [s for _e, s in _sound(node)]
    assert len({s.video_id for s in video + audio}) == 1
    for segs in (video, audio):
        index = [s.index for s in segs]
        assert index == sorted(set(index)) and segs[-1].final
        assert [s.final for s in segs].count(True) == 1
    assert all(b.start_item >= a.end_item for a, b in itertools.pairwise(audio))
    # the new run's sound: exactly the second stream's fingerprint, placed
    # at or after the picture's restart point and after the published sound
    # (an audio entry in flight at the kill is settled first: the first run's)
    settled = state.pending and SignedEntry.from_bytes(bytes.fromhex(state.pending))
    first_new = state.audio_next + bool(settled and settled.body.algorithm == "CHROMAPRINT")
    later = [s for s in audio if s.index >= first_new]
    assert later[0].start_item >= max(state.audio_end_item, items_at(state.end_ms))
    again = tmp_path / "again.ts"
    subprocess.run([*WRITER, str(SRC), str(again), "--speed", "1000", *sound], cwd=ROOT, check=True)
    assert tuple(v for s in later for v in s.values) == fingerprint_file(again).values
    assert len(_entries(node)) > before
    assert node.store.heads()[GOV].next_seq == len(_entries(node))  # one chain: no fork


def test_a_pipe_resumed_with_an_entry_in_flight_continues_after_that_entry(
    node: Node, loop: LoopThread, tmp_path: Path
) -> None:
    """The new run's timestamps start where the settled entry ended, not where
    the segment before it did (whose span the settled entry already holds:
    the new stream's first seconds would fall into a published segment and
    be dropped)."""
    hashed = bank_frames(VECTORS / "a-resized-160x90.mp4").frames[:2]
    video = bytes(range(16))
    segs = [
        VpdqSegment(video, i, 2000 * i, 2000, 25000, False, (type(f)(f.pdq, f.quality, 2000 * i),))
        for i, f in enumerate(hashed)
    ]
    path = LiveState.path_for(node.config.dir, INCIDENT, "-")

    async def crash() -> None:
        async with NodeClient(node.address) as client:
            state = LiveState("-", INCIDENT, video.hex(), 2000)
            pub = Publisher(
                client,
                origin=GOV,
                signer=signer_for(GOV),
                state=state,
                state_path=path,
                labels_=("type:video",),
            )
            await pub.publish(segs[0], 0.0)
            state.pending = pub._sign(segs[1], 1, node.store.head(GOV).head_id).to_bytes().hex()
            state.save(path)  # killed with segment 1 signed and not sent

    loop.run(crash())
    writer = _popen([*WRITER, str(SRC), "-", "--speed", "100"], stdout=subprocess.PIPE)
    publisher = _publish(node, "-", stdin=writer.stdout)
    assert writer.stdout is not None
    writer.stdout.close()
    code, _lines, err = _finish(publisher)
    writer.wait(30)
    assert code == 0, err
    got = [s for _e, s in _segments(node)]
    assert [s.index for s in got[:2]] == [0, 1] and got[1].frames == segs[1].frames
    new = got[2:]
    assert new[0].start_ms == 4000 and new[0].frames[0].ts_ms == 4000
    ts = tmp_path / "same.ts"
    subprocess.run([*WRITER, str(SRC), str(ts), "--speed", "100"], cwd=ROOT, check=True)
    frames = [f for s in new for f in s.frames]
    assert [f.ts_ms - 4000 for f in frames] == [f.ts_ms for f in bank_frames(ts).frames]


def test_an_entry_in_flight_at_a_crash_is_settled_exactly_once(
    node: Node, loop: LoopThread, tmp_path: Path
) -> None:
    """The three cases of ``settle_pending``, against a real node."""
    hashed = bank_frames(VECTORS / "a-resized-160x90.mp4").frames[:3]
    video = bytes(range(16))
    segs = [
        VpdqSegment(video, i, 2000 * i, 2000, 25000, False, (type(f)(f.pdq, f.quality, 2000 * i),))
        for i, f in enumerate(hashed)
    ]
    path = tmp_path / "state.json"

    async def go() -> list[str]:
        outcomes = []
        async with NodeClient(node.address) as client:
            state = LiveState("x.ts", INCIDENT, video.hex(), 2000)
            pub = Publisher(
                client,
                origin=GOV,
                signer=signer_for(GOV),
                state=state,
                state_path=path,
                labels_=("type:video",),
            )
            # 1. committed before the crash: counted, not sent again.
            entry = pub._sign(segs[0], 0, bytes(32))
            await client.submit([entry])
            state.pending = entry.to_bytes().hex()
            outcomes.append((await pub.settle_pending()).outcome)  # type: ignore[union-attr]
            # 2. not committed, the log as it was: the same bytes are sent.
            entry = pub._sign(segs[1], 1, node.store.head(GOV).head_id)
            state.pending = entry.to_bytes().hex()
            done = await pub.settle_pending()
            assert done is not None and done.entry_id == entry.entry_id
            outcomes.append(done.outcome)
            # 3. not committed, and the log moved on meanwhile: signed anew.
            stale = pub._sign(segs[2], 2, node.store.head(GOV).head_id)
            other = Origin(GOV)
            other.seq, other.prev = 2, node.store.head(GOV).head_id
            await client.submit([other.next(urgent=False)])
            state.pending = stale.to_bytes().hex()
            done = await pub.settle_pending()
            assert done is not None and done.entry_id != stale.entry_id
            outcomes.append(done.outcome)
        return outcomes

    assert loop.run(go()) == ["accepted (before the restart)", "accepted", "accepted"]
    got = [(e.body.seq, s.index) for e, s in _segments(node)]
    assert got == [(0, 0), (1, 1), (3, 2)]
    assert LiveState.load(path) is not None and LiveState.load(path).next_index == 3  # type: ignore[union-attr]
    assert node.app.tlog.forked(GOV) is False


@pytest.mark.slow
def test_a_stalled_source_closes_the_video_with_a_warning(node: Node, tmp_path: Path) -> None:
    ts = tmp_path / "stream.ts"
    writer = _popen([*WRITER, str(SRC), str(ts), "--speed", "4", "--stop-after-s", "6", "--hang"])
    try:
        _wait_file(ts)
        code, lines, err = _finish(_publish(node, str(ts)))
    finally:
        writer.kill()
        writer.wait(10)
    assert code == 0, err
    assert f"ccnode: warning: {ts}: no new data for 1.5 s: the stream is taken to have ended" in err
    segs = [s for _e, s in _segments(node)]
    assert [s.index for s in segs] == list(range(len(segs)))
    assert segs[-1].final and 2 <= len(segs) <= 3  # ~6 s of stream, 2 s segments
    assert lines[-1]["finished"] is True


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            b"not a video at all\n" * 100,
            "not a video (MP4/MOV, WebM/Matroska, AVI, FLV or MPEG-TS expected)",
        ),
    ],
)
def test_a_source_that_is_not_video_publishes_nothing(
    node: Node, tmp_path: Path, content: bytes, message: str
) -> None:
    bad = tmp_path / "bad.ts"
    bad.write_bytes(content)
    code, _lines, err = _finish(_publish(node, str(bad)))
    assert code == 2
    assert err.strip().splitlines()[-1] == f"ccnode: error: {bad}: {message}"
    assert _segments(node) == []


def test_live_needs_an_incident(node: Node, tmp_path: Path) -> None:
    proc = _popen(
        [*NODE, "submit", str(node.config.dir), "--live", "-"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    code, _lines, err = _finish(proc)
    assert code == 2
    assert (
        err.strip() == "ccnode: error: --live needs --incident: a live stream's entries are urgent"
    )
    assert node.store.heads() == {}  # nothing published


# -- HLS: a playlist over HTTP from a loopback server --------------------------------


class _Files(SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def http_dir(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    root = tmp_path / "www"
    root.mkdir()
    with http_server(functools.partial(_Files, directory=root)) as base:
        yield root, base


def test_a_live_hls_playlist_is_published_as_it_grows(
    node: Node, tmp_path: Path, http_dir: tuple[Path, str]
) -> None:
    root, base = http_dir
    playlist = root / "stream.m3u8"
    writer = _popen([*WRITER, str(SRC), str(playlist), "--speed", "2"])
    _wait_file(playlist)
    code, lines, err = _finish(_publish(node, f"{base}/stream.m3u8"))
    assert writer.wait(30) == 0
    assert code == 0, err
    assert "no new data" not in err  # #EXT-X-ENDLIST ended it
    # What the publisher read: the playlist's segments, in order.
    whole = tmp_path / "whole.ts"
    uris = [u for u in playlist.read_text().splitlines() if u and not u.startswith("#")]
    whole.write_bytes(b"".join((root / u).read_bytes() for u in uris))
    assert len(_check_whole_video(node, whole)) == 6
    assert lines[-1]["finished"] is True


def test_an_hls_segment_outside_the_playlists_host_is_refused(
    node: Node, http_dir: tuple[Path, str]
) -> None:
    root, base = http_dir
    (root / "p.m3u8").write_text(
        "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:0\n"
        "#EXTINF:1,\nhttp://192.0.2.1/s0.ts\n"
    )
    code, _lines, err = _finish(_publish(node, f"{base}/p.m3u8"))
    assert code == 2
    assert err.strip() == (
        f"ccnode: error: {base}/p.m3u8: segment 'http://192.0.2.1/s0.ts' is outside the "
        f"playlist's host {base}: refused"
    )
    assert node.store.heads() == {}


@pytest.fixture
def scripted_hls() -> Iterator[tuple[str, list[str], dict[str, bytes]]]:
    """A server whose playlist the test scripts: each fetch serves the next
    of ``playlists`` (the last one again when they run out)."""
    playlists: list[str] = []
    files: dict[str, bytes] = {}
    served = [0]

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            if self.path.endswith(".m3u8"):
                body = playlists[min(served[0], len(playlists) - 1)].encode()
                served[0] += 1
            else:
                body = files[self.path.lstrip("/")]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    with http_server(Handler) as base:
        yield base, playlists, files


def _hls(seq: int, uris: list[str], ended: bool = False) -> str:
    body = "".join(f"#EXTINF:1,\n{u}\n" for u in uris)
    end = "#EXT-X-ENDLIST\n" if ended else ""
    return f"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:{seq}\n{body}{end}"


def _ts_segments(tmp_path: Path, n: int) -> list[bytes]:
    playlist = tmp_path / "src" / "s.m3u8"
    playlist.parent.mkdir()
    subprocess.run([*WRITER, str(SRC), str(playlist), "--speed", "100"], cwd=ROOT, check=True)
    return [(playlist.parent / f"s{i}.ts").read_bytes() for i in range(n)]


def test_hls_segments_out_of_order_end_the_stream_with_an_exact_error(
    tmp_path: Path, scripted_hls: tuple[str, list[str], dict[str, bytes]]
) -> None:
    base, playlists, files = scripted_hls
    segs = _ts_segments(tmp_path, 3)
    files.update({f"s{i}.ts": b for i, b in enumerate(segs)})
    playlists += [_hls(0, ["s0.ts", "s1.ts", "s2.ts"]), _hls(0, ["s0.ts"])]
    source = open_source(f"{base}/p.m3u8", stall_s=5)
    frames = list(open_stream(source, LiveBank).frames())
    assert frames  # the segments read before the fault were hashed
    assert str(source.error) == (
        f"{base}/p.m3u8: the playlist went back to segments 0..0 after it had listed "
        "segment 2: segments out of order"
    )


def test_an_hls_segment_over_the_cap_is_refused(
    tmp_path: Path,
    scripted_hls: tuple[str, list[str], dict[str, bytes]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base, playlists, files = scripted_hls
    files["big.ts"] = b"\x47" * 5000
    playlists.append(_hls(7, ["big.ts"], ended=True))
    monkeypatch.setattr(live, "MAX_HLS_SEGMENT_BYTES", 4096)
    with pytest.raises(ValidationError) as e:
        open_source(f"{base}/p.m3u8", stall_s=5)
    assert str(e.value) == f"{base}/big.ts: segment of 5000 bytes: over the 4096-byte cap"


def test_hls_playlist_errors() -> None:
    with pytest.raises(ValidationError) as e:
        open_source("http://127.0.0.1:9/none.m3u8", stall_s=1)
    assert str(e.value).startswith("http://127.0.0.1:9/none.m3u8: cannot fetch the playlist: ")
    with pytest.raises(ValidationError) as e:
        live.Playlist.parse("u", "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n")
    assert str(e.value) == "u: a master playlist: give the URL of one variant's media playlist"
    with pytest.raises(ValidationError) as e:
        live.Playlist.parse("u", "<html>")
    assert str(e.value) == "u: not an HLS playlist (no #EXTM3U first line)"
