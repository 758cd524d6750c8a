"""Audio Match over gRPC and through `ccnode match FILE`: a real node with
the soundtrack banked as signed CHROMAPRINT segments (of the file decoded by
PyAV), edited copies fingerprinted locally, only the sub-fingerprints sent."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from node.match.audio_index import AudioThresholds
from node.media.audio import fingerprint_file
from node.rpc import convert
from node.rpc._pb.consortium.v1 import node_pb2 as pb
from node.rpc._pb.consortium.v1 import node_pb2_grpc as pb_grpc
from node.rpc.client import NodeClient
from node.server import Node
from tests.helpers import LoopThread, Origin
from tests.integration import test_audio_match
from tests.integration.test_audio_match import GOV, REFERENCE, bank
from tests.unit.test_policy import AUDIO_POLICY

pytestmark = pytest.mark.integration

node = test_audio_match.node  # the fixture: one real node, GOV its member


def vector(name: str) -> Path:
    path = REFERENCE / name
    if not path.exists():
        pytest.skip(f"Chromaprint vectors not found at {REFERENCE}")
    return path


def test_an_edited_copy_matches_over_grpc_and_the_cli_and_unrelated_audio_does_not(
    node: Node,
    loop: LoopThread,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from node.cli import main

    d = str(node.config.dir)
    entries = bank(Origin(GOV), list(fingerprint_file(vector("a.m4a")).values))
    loop.run(node.app.submit_async(entries))
    banked = [e.entry_id for e in entries]
    edited = fingerprint_file(vector("a-room-echo.m4a")).values
    unrelated = fingerprint_file(vector("unrelated-b.m4a")).values

    async def go() -> tuple[list[pb.AudioMatch], list[pb.AudioMatch], list[pb.AudioMatch]]:
        async with NodeClient(node.address) as client:
            hit = await client.match_audio(edited)
            miss = await client.match_audio(unrelated, report_all=True)
            strict = await client.match_audio(
                edited, AudioThresholds(min_similarity=1.0), report_all=True
            )
            return hit, miss, strict

    hit, miss, strict = loop.run(go())
    (m,) = hit
    assert m.is_match and m.similarity >= 0.8 and m.aligned_s >= 7.0
    assert m.match.provenance.entry_id == banked[0] and m.match.provenance.origin == GOV
    assert m.match.provenance.algorithm == "CHROMAPRINT" and m.match.provenance.hash == b""
    assert list(m.segments) == banked[: len(m.segments)]
    assert m.query_end_ms > m.query_start_ms and m.banked_end_ms > m.banked_start_ms
    assert miss == []
    assert all(not s.is_match for s in strict)  # the request's thresholds decide

    # the CLI: human output and --json
    assert main(["match", "--dir", d, str(vector("a-room-echo.m4a"))]) == 0
    text = capsys.readouterr().out
    assert f"{vector('a-room-echo.m4a')}: 1 audio match" in text
    assert "banked soundtrack" in text and f"by {GOV}" in text
    assert main(["match", "--dir", d, str(vector("unrelated-b.m4a")), "--json"]) == 0
    (doc,) = json.loads(capsys.readouterr().out)
    assert doc["audio"] == [] and doc["fired"] == []
    assert main(["match", "--dir", d, str(vector("a-phone-band.m4a")), "--json"]) == 0
    (doc,) = json.loads(capsys.readouterr().out)
    (a,) = doc["audio"]
    assert a["is_match"] and doc["fired"] == ["audio"]
    assert a["match"]["entry_id"] == banked[0].hex() and a["match"]["origin"] == GOV


def test_a_video_reports_visual_and_audio_evidence_separately(
    node: Node,
    loop: LoopThread,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The soundtrack of a banked melody under a different picture: the
    audio fires, the frames do not."""
    from node.cli import main
    from tests.audio_files import melody, write

    d = str(node.config.dir)
    track = fingerprint_file(write(tmp_path / "s.m4a", melody(20))).values
    loop.run(node.app.submit_async(bank(Origin(GOV), list(track))))
    video = write(tmp_path / "v.mp4", melody(20), video_seconds=20)
    assert main(["match", "--dir", d, str(video), "--json"]) == 0
    (doc,) = json.loads(capsys.readouterr().out)
    assert doc["videos"] == [] and doc["fired"] == ["audio"]
    assert [a["is_match"] for a in doc["audio"]] == [True]
    assert main(["match", "--dir", d, str(video)]) == 0
    text = capsys.readouterr().out
    assert f"{video}: 1 audio match" in text and f"{video}: fired: audio" in text
    # a video whose soundtrack cannot be asked says why, and still which evidence fired
    mute = write(tmp_path / "mute.mp4", None, video_seconds=4)
    hush = write(tmp_path / "hush.mp4", melody(8) * 0, video_seconds=8)
    assert main(["match", "--dir", d, str(mute), str(hush)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{mute}: no match",
        f"{mute}: note: no audio fingerprint: no audio stream",
        f"{mute}: fired: neither",
        f"{hush}: no match",
        f"{hush}: note: no audio fingerprint: audio is silence only (no frame above -60 dBFS)",
        f"{hush}: fired: neither",
    ]
    assert main(["match", "--dir", d, str(mute), "--json"]) == 0
    (doc,) = json.loads(capsys.readouterr().out)
    assert (doc["fired"], doc["chromaprint_note"]) == ([], "no audio stream")


@pytest.mark.parametrize(
    ("request_of", "message"),
    [
        (
            lambda: pb.MatchRequest(audio=pb.AudioQuery()),
            "empty audio query: expected 1..90000 sub-fingerprints",
        ),
        (
            lambda: pb.MatchRequest(audio=pb.AudioQuery(values=[1] * 90_001)),
            "audio query of 90001 sub-fingerprints: expected at most 90000 "
            "(match a long upload in windows)",
        ),
        (
            lambda: pb.MatchRequest(audio=pb.AudioQuery(values=[1], min_similarity=0.4)),
            "audio thresholds: audio min_similarity must be in (0.5, 1]: got 0.4",
        ),
        (
            lambda: pb.MatchRequest(audio=pb.AudioQuery(values=[1], min_aligned_s=0)),
            "audio thresholds: audio min_aligned_s must be in (0, 3600]: got 0.0",
        ),
        (
            lambda: pb.MatchRequest(
                audio=pb.AudioQuery(values=[1]), queries=[pb.HashQuery(algorithm="MD5")]
            ),
            "a Match request carries hash queries, a video query or an audio query: one kind only",
        ),
        (
            lambda: pb.MatchRequest(
                audio=pb.AudioQuery(values=[1]), video=convert.video_query_to_pb([])
            ),
            "a Match request carries hash queries, a video query or an audio query: one kind only",
        ),
    ],
)
def test_bad_audio_queries_are_refused_exactly(
    node: Node,
    loop: LoopThread,
    request_of: Callable[[], pb.MatchRequest],
    message: str,
) -> None:
    async def go() -> None:
        async with grpc.aio.insecure_channel(node.address) as channel:
            await pb_grpc.NodeServiceStub(channel).Match(request_of())

    with pytest.raises(grpc.aio.AioRpcError) as err:
        loop.run(go())
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details() == message


def test_the_policy_decides_audio_matches_on_audio_facts_not_on_distance(
    node: Node,
    loop: LoopThread,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A PDQ distance rule and a video rule ahead of the audio rules: an
    audio hit (distance 0 on the wire) never fires them; the audio rules see the similarity and
    the aligned seconds of each hit; a hash match still gets the distance
    rule. A bad audio condition is refused on reload, the policy kept."""
    from node.cli import main

    d = str(node.config.dir)
    policy = node.config.dir / "policy.toml"
    policy.write_text(AUDIO_POLICY)
    assert main(["policy", "reload", d]) == 0
    out = capsys.readouterr().out
    assert (
        "  3. close-soundtrack: BLOCK when an audio match with a similarity of at least 0.9, "
        "and an audio match aligned over at least 10 s"
    ) in out.splitlines()
    entries = bank(Origin(GOV), list(fingerprint_file(vector("a.m4a")).values))
    loop.run(node.app.submit_async(entries))
    pdq = "5a" * 32
    assert main(["submit", d, "--algo", "pdq", "--hash", pdq, "--json"]) == 0
    capsys.readouterr()

    async def go(name: str) -> pb.AudioMatch:
        async with NodeClient(node.address) as client:
            (m,) = await client.match_audio(fingerprint_file(vector(name)).values)
            return m

    close = loop.run(go("a-mp3-64k.mp3"))  # similarity 0.9895 over 17 s
    assert (close.match.recommended_action, close.match.rule) == ("BLOCK", "close-soundtrack")
    echo = loop.run(go("a-room-echo.m4a"))  # similarity 0.8679
    assert echo.is_match and echo.similarity < 0.9
    assert (echo.match.recommended_action, echo.match.rule) == ("LOG_ONLY", "any-soundtrack")
    # the CLI shows the same per hit, and the hash match gets the distance rule
    assert main(["match", "--dir", d, str(vector("a-phone-band.m4a")), "--json"]) == 0
    (doc,) = json.loads(capsys.readouterr().out)
    (a,) = doc["audio"]
    assert (a["match"]["recommended_action"], a["match"]["rule"]) == (
        "LOG_ONLY",
        "any-soundtrack",
    )
    assert main(["match", d, "--algo", "pdq", "--hash", pdq, "--json"]) == 0
    (doc,) = json.loads(capsys.readouterr().out)
    assert doc["verdict"]["action"] == "BLOCK" and doc["verdict"]["rule"] == "near-hash"
    # explained without a query, the soundtrack's entry is no hash at distance 0
    assert main(["policy", "explain", entries[0].entry_id.hex(), d]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2] == "recommended action: REVIEW (rule (default))"
    assert lines[3:5] == [
        "  1. near-hash -> BLOCK: does not match",
        "       [ ] the match is at distance 10 or less "
        "(got: a soundtrack (CHROMAPRINT) entry, no distance)",
    ]

    policy.write_text(
        AUDIO_POLICY.replace("min_audio_similarity = 0.9", "min_audio_similarity = 95")
    )
    assert main(["policy", "reload", d]) == 2
    err = capsys.readouterr().err
    assert (
        f"{policy}: rule #3 'close-soundtrack': min_audio_similarity must be a number 0..1, got 95"
        in err
    )
    assert loop.run(go("a-mp3-64k.mp3")).match.rule == "close-soundtrack"  # the old policy stays
