"""MatchVideoStream: frames sent in chunks as they are hashed, an answer after
each; the state a call holds is bounded and an idle call is ended."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import pytest

from node.errors import LimitError
from node.match.video import QueryFrame
from node.media.video import query_frames
from node.rpc import service
from node.rpc._pb.consortium.v1 import node_pb2 as pb
from node.rpc.client import NodeClient
from node.server import Node
from tests.helpers import LoopThread
from tests.integration.test_live_publish import VECTORS
from tests.integration.test_live_watch import banked_a

pytestmark = pytest.mark.integration

GOV = "gov.example/ct"


@pytest.fixture(scope="module")
def mirrored() -> list[QueryFrame]:
    return list(query_frames(VECTORS / "a-mirrored.mp4")[1])


@pytest.fixture
def node(tmp_path: Path, loop: LoopThread) -> Iterator[Node]:
    with banked_a(tmp_path, loop) as n:
        yield n


def _seconds(frames: Sequence[QueryFrame]) -> list[list[QueryFrame]]:
    """The frames cut per second of the upload (as a hasher would send them)."""
    out: dict[int, list[QueryFrame]] = {}
    for f in frames:
        out.setdefault(f.ts_ms // 1000, []).append(f)
    return [out[k] for k in sorted(out)]


async def _stream(
    address: str, chunks: list[list[QueryFrame]], pause_after: int = -1, pause_s: float = 0
) -> list[list[pb.VideoMatch]]:
    async def send() -> AsyncIterator[Sequence[QueryFrame]]:
        for i, c in enumerate(chunks):
            yield c
            if i == pause_after:
                await asyncio.sleep(pause_s)  # a silent client, to test the idle limit

    async with NodeClient(address) as c:
        return [answer async for answer in c.match_video_stream(send())]


def test_an_answer_per_chunk_and_the_match_as_soon_as_the_evidence_is_in(
    node: Node, loop: LoopThread, mirrored: list[QueryFrame]
) -> None:
    chunks = _seconds(mirrored)
    answers = loop.run(_stream(node.address, chunks))
    assert len(answers) == len(chunks)
    first = next(i for i, a in enumerate(answers) if any(v.is_match for v in a))
    assert first < 6  # within the first 6 s of the upload
    v = next(v for v in answers[-1] if v.is_match)
    assert v.mirrored and v.match.provenance.origin == GOV

    # The answer for the whole upload equals one Match of every frame.
    async def whole() -> list[pb.VideoMatch]:
        async with NodeClient(node.address) as c:
            return await c.match_video(mirrored)

    once = loop.run(whole())
    assert [(x.video_id, x.matched_frames) for x in once if x.is_match] == [
        (x.video_id, x.matched_frames) for x in answers[-1] if x.is_match
    ]


def test_a_call_holds_only_the_newest_frames(
    node: Node, loop: LoopThread, mirrored: list[QueryFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "match_stream_frames", lambda limits, t: 200)
    answers = loop.run(_stream(node.address, _seconds(mirrored)))
    starts = [v.query_start_ms for a in answers for v in a if v.is_match]
    assert starts and max(starts) >= 6000  # the first seconds were dropped


def test_an_idle_call_is_ended(
    node: Node, loop: LoopThread, mirrored: list[QueryFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "MATCH_STREAM_IDLE_S", 0.3)
    with pytest.raises(LimitError) as e:
        loop.run(_stream(node.address, _seconds(mirrored)[:3], pause_after=1, pause_s=5))
    assert str(e.value) == "MatchVideoStream idle for 0.3 s: call ended"
