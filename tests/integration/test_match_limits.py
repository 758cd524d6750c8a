"""Match and Submit limits through the real gRPC service (issue 14 items 5, 6):
a request over the cost budget is refused before any work, with a message
naming the limit and what was asked; a flooded hash stays matchable, its
answer ranked, capped and counted."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from node.cli import main
from node.config import NodeConfig
from node.core.trust import MemberKind, MembersFile
from node.rpc import convert
from node.rpc._pb.consortium.v1 import node_pb2 as pb
from node.rpc._pb.consortium.v1 import node_pb2_grpc as pb_grpc
from node.rpc.client import CHANNEL_OPTIONS
from node.server import Node
from tests.helpers import LoopThread, Origin, member, write_node_dir

pytestmark = pytest.mark.integration

GOV, PLAT, NGO = "gov.example/ct", "platform.example", "ngo.example"


@pytest.fixture
def node(tmp_path: Path, loop: LoopThread) -> Iterator[tuple[Node, Any]]:
    members = MembersFile.of(
        [member(GOV, MemberKind.GOVERNMENT), member(PLAT), member(NGO, MemberKind.NGO)]
    )
    config: NodeConfig = write_node_dir(tmp_path, PLAT, members)
    n = Node(config)
    address = loop.run(n.start())
    channel = grpc.insecure_channel(address, options=CHANNEL_OPTIONS)
    try:
        yield n, pb_grpc.NodeServiceStub(channel)
    finally:
        channel.close()
        loop.run(n.stop())


def _pdq_queries(n: int, dihedral: int, seed: int = 1) -> list[pb.HashQuery]:
    rng = random.Random(seed)
    return [
        pb.HashQuery(
            algorithm="PDQ",
            value=rng.randbytes(32),
            dihedral=[rng.randbytes(32) for _ in range(dihedral)],
        )
        for _ in range(n)
    ]


def _refused(stub: Any, request: pb.MatchRequest) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        stub.Match(request, timeout=60)
    return info.value


def test_the_reported_stall_is_refused_before_any_work(node: tuple[Node, Any]) -> None:
    """10,000 PDQ queries x 8 dihedral hashes at distance 63 stalled a node
    for 30 s; now it is refused at once, saying the limit and what was asked."""
    _, stub = node
    err = _refused(stub, pb.MatchRequest(queries=_pdq_queries(10_000, 7), max_distance=63))
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert err.details() == (
        "Match would probe 892,160,000 index buckets (80,000 PDQ hashes at distance 63, "
        "11,152 each): at most 2,720,000 per request, i.e. 243 hashes at distance 63 or "
        "10,000 at 31; send fewer queries or dihedral hashes, or a smaller max_distance"
    )


@pytest.mark.parametrize(
    ("queries", "dihedral", "distance", "allowed"),
    [
        (10_000, 0, 0, True),  # the batch limit at the default distance: as before
        (243, 0, 63, True),
        (244, 0, 63, False),
        (30, 7, 63, True),  # 240 hashes
        (31, 7, 63, False),  # 248 hashes
        (1250, 7, 31, True),  # 10,000 hashes at 31
        (1251, 7, 31, False),
    ],
)
def test_the_budget_is_probes_times_hashes(
    node: tuple[Node, Any], queries: int, dihedral: int, distance: int, allowed: bool
) -> None:
    _, stub = node
    request = pb.MatchRequest(queries=_pdq_queries(queries, dihedral), max_distance=distance)
    if allowed:
        answer = stub.Match(request, timeout=60)
        assert len(answer.results) == queries
        assert all(not r.matches and r.total == 0 for r in answer.results)
        return
    err = _refused(stub, request)
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    probes = queries * (1 + dihedral) * (11_152 if distance == 63 else 272)
    assert err.details().startswith(f"Match would probe {probes:,} index buckets")


def test_oversized_submit_is_refused_before_decoding(node: tuple[Node, Any]) -> None:
    """16,000 entries, the first undecodable: the count refuses the batch, so
    no entry was decoded (else the first entry's error would be named)."""
    n, stub = node
    junk = pb.SignedEntry(body=b"not an entry", signature=bytes(64))
    with pytest.raises(grpc.RpcError) as info:
        stub.Submit(pb.SubmitRequest(entries=[junk] * 16_000), timeout=60)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details() == "batch of 16000 entries: expected at most 1000"
    assert n.store.heads() == {}


def _md5(tag: bytes) -> bytes:
    return hashlib.md5(tag).digest()


def _submit(stub: Any, entries: list[Any]) -> None:
    wire = [pb.SignedEntry(body=e.body_bytes, signature=e.signature) for e in entries]
    stub.Submit(pb.SubmitRequest(entries=wire), timeout=60)


def test_a_flooded_hash_stays_matchable(
    node: tuple[Node, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """4,000 ADDs of one MD5 with 1 KiB reasons by one member made every Match
    including it fail ("Sent message larger than max"). Now the answer is
    capped, counted, flagged truncated, and the other members' entries for
    the hash are listed: one origin gets at most 5 places."""
    n, stub = node
    target = _md5(b"flooded")
    gov, ngo = Origin(GOV), Origin(NGO)
    honest = [gov.next(algorithm="MD5", hash=target), ngo.next(algorithm="MD5", hash=target)]
    _submit(stub, honest)
    flooder = Origin(PLAT)
    for _ in range(4):
        _submit(
            stub,
            [flooder.next(algorithm="MD5", hash=target, reason="x" * 1024) for _ in range(1000)],
        )
    other = _md5(b"other")
    answer = stub.Match(
        pb.MatchRequest(
            queries=[pb.HashQuery(algorithm="MD5", value=v) for v in (target, other, target)]
        ),
        timeout=30,
    )
    flooded, nothing, again = answer.results
    assert (flooded.total, flooded.truncated) == (4002, True)
    origins = [m.provenance.origin for m in flooded.matches]
    assert sorted(set(origins)) == [GOV, NGO, PLAT]
    assert origins.count(PLAT) == 5
    # Newest first among equals (all exact, none settled): the flooder's last five.
    # (Its batches commit at one arrival time each; seq breaks the tie.)
    plat = [m.provenance.seq for m in flooded.matches if m.provenance.origin == PLAT]
    assert plat == [3999, 3998, 3997, 3996, 3995]
    assert (nothing.total, nothing.truncated, list(nothing.matches)) == (0, False, [])
    assert again == flooded
    # The CLI says so.
    argv = ["match", "--to", n.address, "--insecure", "--algo", "MD5", "--hash", target.hex()]
    assert main(argv) == 0
    assert "; the best 7 of 4002)" in capsys.readouterr().out.splitlines()[0]
    assert main([*argv, "--json"]) == 0
    (answer_json,) = json.loads(capsys.readouterr().out)
    assert (answer_json["total"], answer_json["truncated"], len(answer_json["matches"])) == (
        4002,
        True,
        7,
    )


def test_candidate_and_byte_budgets_truncate_and_count(node: tuple[Node, Any]) -> None:
    """Past the request's candidate budget a query is counted, not examined;
    past the byte budget no more hits are listed. Both say truncated."""
    n, stub = node
    a, b = _md5(b"a"), _md5(b"b")
    gov = Origin(GOV)
    _submit(stub, [gov.next(algorithm="MD5", hash=h, reason="r" * 1000) for h in (a, a, a, b, b)])
    n.app.match_limits = dataclasses.replace(n.app.match_limits, max_candidates=4)
    query = pb.MatchRequest(queries=[pb.HashQuery(algorithm="MD5", value=v) for v in (a, b)])
    first, second = stub.Match(query, timeout=30).results
    assert (len(first.matches), first.total, first.truncated) == (3, 3, False)
    assert (len(second.matches), second.total, second.truncated) == (0, 2, True)
    n.app.match_limits = dataclasses.replace(n.app.match_limits, response_bytes=4000)
    first, second = stub.Match(query, timeout=30).results
    assert (len(first.matches), first.total, first.truncated) == (2, 3, True)
    assert (len(second.matches), second.total, second.truncated) == (0, 2, True)


def test_the_answer_stops_at_its_encoded_size(node: tuple[Node, Any]) -> None:
    """Whatever the node's estimate while building hits, the encoded answer
    stops at the byte budget, the rest flagged truncated."""
    n, stub = node
    a, b = _md5(b"enc-a"), _md5(b"enc-b")
    gov = Origin(GOV)
    _submit(stub, [gov.next(algorithm="MD5", hash=h, reason="r" * 1000) for h in (a, a, b)])
    results = n.app.match([("MD5", a), ("MD5", b)])
    one = convert.match_to_pb(results[0][0]).ByteSize()
    whole = convert.match_response(results, max_bytes=10 * one)
    assert [len(r.matches) for r in whole.results] == [2, 1]
    assert [r.truncated for r in whole.results] == [False, False]
    cut = convert.match_response(results, max_bytes=one + one // 2)
    assert [len(r.matches) for r in cut.results] == [1, 0]
    assert [(r.truncated, r.total) for r in cut.results] == [(True, 2), (True, 1)]
    assert cut.ByteSize() < 2 * one
