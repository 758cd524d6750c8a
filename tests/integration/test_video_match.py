"""Video matching through a real node: banked vPDQ segments, the frame index
built at start-up and kept current on commit, the Match RPC's video query,
retraction of a whole video, include_retracted, the never-match list and the
policy's video conditions. Frames come from the reference vPDQ vectors."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest

from node.core import vpdq
from node.core.entry import Kind, SignedEntry
from node.core.trust import MemberKind, MembersFile
from node.core.vpdq import VideoFrame
from node.match.video import QueryFrame, VideoThresholds
from node.rpc import convert
from node.rpc._pb.consortium.v1 import node_pb2 as pb
from node.rpc._pb.consortium.v1 import node_pb2_grpc as pb_grpc
from node.server import Node
from tests.helpers import LoopThread, Origin, member, write_node_dir

pytestmark = pytest.mark.integration

VECTORS = Path(__file__).resolve().parents[2].parent / "shared" / "vectors" / "vpdq"
GOV = "gov.example/ct"
VIDEO_ID = bytes(range(16))


def reference(name: str, every: str = "every-frame") -> list[tuple[int, int, bytes, float]]:
    path = VECTORS / "reference" / every / f"{name}.json"
    if not path.exists():
        pytest.skip(f"vPDQ vectors not found at {VECTORS}")
    return [(n, q, bytes.fromhex(h), ts) for n, q, h, ts in json.loads(path.read_text())]


def banked(name: str) -> list[VideoFrame]:
    return [VideoFrame(h, q, round(ts * 1000)) for _, q, h, ts in reference(name)]


def query(name: str, variant: int = 0) -> list[QueryFrame]:
    return [QueryFrame(h, q, round(ts * 1000), variant) for _, q, h, ts in reference(name)]


def bank(origin: Origin, frames: list[VideoFrame], **fields: object) -> list[SignedEntry]:
    segs = vpdq.split(frames, VIDEO_ID, duration_ms=12_000, fps_milli=25_000, max_ms=4_000)
    return [origin.next(algorithm="VPDQ", hash=s.encode(), **fields) for s in segs]


def retract(origin: Origin, target: bytes) -> SignedEntry:
    return origin.next(kind=Kind.RETRACT, target=target, algorithm="", hash=b"", labels=())


async def _match(address: str, frames: list[QueryFrame], **fields: object) -> pb.MatchResponse:
    report_all = bool(fields.pop("report_all", False))
    thresholds = fields.pop("thresholds", None)
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.NodeServiceStub(channel)
        request = pb.MatchRequest(
            video=convert.video_query_to_pb(frames, thresholds, report_all),  # type: ignore[arg-type]
            **fields,  # type: ignore[arg-type]
        )
        response: pb.MatchResponse = await stub.Match(request)
        return response


@pytest.fixture
def node(tmp_path: Path, loop: LoopThread):  # type: ignore[no-untyped-def]
    cfg = write_node_dir(tmp_path, GOV, MembersFile.of([member(GOV, MemberKind.GOVERNMENT)]))
    n = Node(cfg, anti_entropy_s=0)
    loop.run(n.start())
    yield n
    loop.run(n.stop())


def test_a_trimmed_copy_matches_the_banked_video_with_its_ranges(
    node: Node, loop: LoopThread
) -> None:
    gov = Origin(GOV)
    entries = bank(gov, banked("a"), labels=("type:video",))
    assert len(entries) == 3  # 12 s in 4-s segments
    loop.run(node.app.submit_async(entries))
    # the trimmed clip starts 3.4 s into the original
    r = loop.run(_match(node.address, query("a-clip-3.4s-to-9.4s")))
    assert not r.results
    (v,) = r.videos
    assert v.is_match and not v.mirrored and not v.trimmed
    assert v.video_id == VIDEO_ID
    assert list(v.segments) == [e.entry_id for e in entries]
    assert abs(v.offset_ms - 3400) <= 80
    assert v.query_start_ms <= 200 and v.query_end_ms >= 5_600
    assert abs(v.banked_start_ms - 3_400) <= 200 and abs(v.banked_end_ms - 9_400) <= 200
    assert v.query_pct >= 80
    # provenance of the first matched segment, as for any match
    p = v.match.provenance
    assert p.origin == GOV and p.algorithm == "VPDQ" and list(p.labels) == ["type:video"]
    assert p.entry_id == entries[0].entry_id
    assert p.hash == b""  # a segment's frames are not repeated in answers (GetEntry has them)
    assert v.match.recommended_action == "REVIEW"
    # unrelated footage does not match, even reported in full
    assert not loop.run(_match(node.address, query("unrelated-b"))).videos


def test_retracting_every_segment_removes_the_video_and_include_retracted_flags_it(
    node: Node, loop: LoopThread
) -> None:
    gov = Origin(GOV)
    entries = bank(gov, banked("a"))
    loop.run(node.app.submit_async(entries))
    retracts = [retract(gov, e.entry_id) for e in entries]
    loop.run(node.app.submit_async(retracts))
    assert not loop.run(_match(node.address, query("a"))).videos
    (v,) = loop.run(_match(node.address, query("a"), include_retracted=True)).videos
    assert v.is_match
    assert v.match.provenance.retracted
    assert v.match.recommended_action == "IGNORE" and v.match.rule == "(retracted)"


def test_the_frame_index_is_rebuilt_from_the_store_at_start(
    tmp_path: Path, loop: LoopThread
) -> None:
    cfg = write_node_dir(tmp_path, GOV, MembersFile.of([member(GOV, MemberKind.GOVERNMENT)]))
    gov = Origin(GOV)
    entries = bank(gov, banked("a"))
    first = Node(cfg, anti_entropy_s=0)
    loop.run(first.start())
    loop.run(first.app.submit_async(entries))
    loop.run(first.app.submit_async([retract(gov, entries[2].entry_id)]))
    loop.run(first.stop())
    again = Node(cfg, anti_entropy_s=0)
    loop.run(again.start())
    try:
        assert again.app.frames.ready
        (v,) = loop.run(_match(again.address, query("a"))).videos
        assert list(v.segments) == [e.entry_id for e in entries[:2]]  # the third is retracted
        assert v.banked_last_ms < 8_000
    finally:
        loop.run(again.stop())


def test_never_match_frames_are_left_out_of_a_video_query(tmp_path: Path, loop: LoopThread) -> None:
    cfg = write_node_dir(tmp_path, GOV, MembersFile.of([member(GOV, MemberKind.GOVERNMENT)]))
    benign = reference("a")
    (cfg.dir / "never_match.txt").write_text("".join(f"pdq {h.hex()}\n" for _, _, h, _ in benign))
    n = Node(cfg, anti_entropy_s=0)
    loop.run(n.start())
    try:
        loop.run(n.app.submit_async(bank(Origin(GOV), banked("a"))))
        assert not loop.run(_match(n.address, query("a"))).videos
    finally:
        loop.run(n.stop())


def test_policy_video_conditions_decide_the_action(tmp_path: Path, loop: LoopThread) -> None:
    cfg = write_node_dir(tmp_path, GOV, MembersFile.of([member(GOV, MemberKind.GOVERNMENT)]))
    (cfg.dir / "policy.toml").write_text(
        'version = 1\ndefault = "review"\n\n[[rule]]\nname = "whole-copies"\n'
        'action = "block"\nmin_query_pct = 90\nmin_matched_seconds = 8\n'
    )
    n = Node(cfg, anti_entropy_s=0)
    loop.run(n.start())
    try:
        loop.run(n.app.submit_async(bank(Origin(GOV), banked("a"))))
        (whole,) = loop.run(_match(n.address, query("a"))).videos
        assert (whole.match.recommended_action, whole.match.rule) == ("BLOCK", "whole-copies")
        (clip,) = loop.run(_match(n.address, query("a-clip-3.4s-to-9.4s"))).videos
        assert (clip.match.recommended_action, clip.match.rule) == ("REVIEW", "(default)")
    finally:
        loop.run(n.stop())


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda q: q.ClearField("variant"), "video query columns disagree: "),
        (
            lambda q: q.quality.__setitem__(0, 101),
            "video query frame 0: frame quality 101: expected 0..100",
        ),
        (
            lambda q: setattr(q.thresholds, "min_coverage", 1.5),
            "video thresholds: min_coverage must be in 0..1: got 1.5",
        ),
        (
            lambda q: setattr(q.thresholds, "max_distance", 64),
            "PDQ distance 64: expected 0..63",
        ),
    ],
)
def test_bad_video_queries_are_refused_exactly(
    node: Node, loop: LoopThread, mutate: object, message: str
) -> None:
    msg = convert.video_query_to_pb(query("a")[:10])
    mutate(msg)  # type: ignore[operator]

    async def go() -> None:
        async with grpc.aio.insecure_channel(node.address) as channel:
            await pb_grpc.NodeServiceStub(channel).Match(pb.MatchRequest(video=msg))

    with pytest.raises(grpc.aio.AioRpcError) as err:
        loop.run(go())
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (err.value.details() or "").startswith(message)


def test_thresholds_are_per_request(node: Node, loop: LoopThread) -> None:
    loop.run(node.app.submit_async(bank(Origin(GOV), banked("a"))))
    strict = VideoThresholds(min_matched_ms=20_000)
    assert not loop.run(_match(node.address, query("a"), thresholds=strict)).videos
    (v,) = loop.run(_match(node.address, query("a"), thresholds=strict, report_all=True)).videos
    assert not v.is_match and v.matched_frames > 100


def test_a_vpdq_imported_from_pytx_matches_uploads_here(node: Node, loop: LoopThread) -> None:
    from node.interop.formats import Row, parse_rows

    # python-threatexchange's signal for a.mp4 at its default one hash a second
    signal = json.dumps([f"{h.hex()},{q},{ts:.3}" for _, q, h, ts in reference("a", "every-1s")])
    rows = [r for r in parse_rows([f"vpdq {signal}\n"], "pytx") if isinstance(r, Row)]
    gov = Origin(GOV)
    loop.run(node.app.submit_async([gov.next(algorithm="VPDQ", hash=r.value) for r in rows]))
    for copy in ("a-reencoded-crf38", "a-fps30", "a-clip-3.4s-to-9.4s"):
        (v,) = loop.run(_match(node.address, query(copy))).videos
        assert v.is_match, copy
    assert not loop.run(_match(node.address, query("unrelated-b"))).videos


def test_video_frames_count_in_the_match_budget(node: Node, loop: LoopThread) -> None:
    frames = query("a")
    many = [QueryFrame(f.pdq, f.quality, k, 0) for k, f in enumerate(frames * 34)][:10_001]
    msg = convert.video_query_to_pb(many)

    async def go(request: pb.MatchRequest) -> None:
        async with grpc.aio.insecure_channel(node.address) as channel:
            await pb_grpc.NodeServiceStub(channel).Match(request)

    with pytest.raises(grpc.aio.AioRpcError) as err:
        loop.run(go(pb.MatchRequest(video=msg)))
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert (err.value.details() or "").startswith(
        "Match would probe 2,720,272 index buckets (10,001 PDQ hashes at distance 31"
    )
    # one frame fewer is within it
    loop.run(go(pb.MatchRequest(video=convert.video_query_to_pb(many[:10_000]))))
    both = pb.MatchRequest(video=msg, queries=[pb.HashQuery(algorithm="MD5", value=b"\x01" * 16)])
    with pytest.raises(grpc.aio.AioRpcError) as err:
        loop.run(go(both))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details() == "a Match request carries hash queries or a video query, not both"
