"""Error mapping at the gRPC edge: out-of-range and corrupt requests get a
clear INVALID_ARGUMENT (or an empty answer), never INTERNAL or UNKNOWN, and
the node's log stays bounded."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from node.core.trust import MemberKind, MembersFile
from node.rpc._pb.consortium.v1 import node_pb2 as pb
from node.rpc._pb.consortium.v1 import node_pb2_grpc as pb_grpc
from node.rpc.client import CHANNEL_OPTIONS
from node.rpc.service import CORRUPT_LOG_EVERY_S, CorruptRequests, _Corrupt
from node.server import Node
from tests.helpers import LoopThread, member, write_node_dir

pytestmark = pytest.mark.integration

GOV, PLAT = "gov.example/ct", "platform.example"
SERVICE = "/consortium.v1.NodeService/"


@pytest.fixture
def node(tmp_path: Path, loop: LoopThread) -> Iterator[tuple[Node, grpc.Channel]]:
    members = MembersFile.of([member(GOV, MemberKind.GOVERNMENT), member(PLAT)])
    n = Node(write_node_dir(tmp_path, PLAT, members))
    address = loop.run(n.start())
    channel = grpc.insecure_channel(address, options=CHANNEL_OPTIONS)
    try:
        yield n, channel
    finally:
        channel.close()
        loop.run(n.stop())


@pytest.mark.parametrize("after", [2**64 - 1, 2**63, 2**63 - 1])
def test_get_roster_after_the_largest_version_is_empty(
    node: tuple[Node, grpc.Channel], after: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing is newer than the largest version: an empty answer, no INTERNAL."""
    _, channel = node
    stub = pb_grpc.NodeServiceStub(channel)
    with caplog.at_level(logging.ERROR):
        answer = stub.GetRoster(pb.GetRosterRequest(after_version=after), timeout=5)
    assert list(answer.rosters) == []
    assert answer.version == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def _raw_call(channel: grpc.Channel, method: str, data: bytes) -> grpc.RpcError:
    call: Any = channel.unary_unary(SERVICE + method)  # bytes in, bytes out
    with pytest.raises(grpc.RpcError) as info:
        call(data, timeout=5)
    return info.value


#: Bytes that are not a valid protobuf message of any type: a field with
#: wire type 7 (undefined), a truncated length-delimited field, a varint
#: that never ends.
CORRUPT = [b"\x0f", b"\x0a\x05ab", b"\x08" + b"\xff" * 11]


@pytest.mark.parametrize("data", CORRUPT, ids=["bad wire type", "truncated", "endless varint"])
@pytest.mark.parametrize("method", ["Match", "Submit", "Status", "GetRoster"])
def test_corrupt_request_is_invalid_argument(
    node: tuple[Node, grpc.Channel], method: str, data: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    _, channel = node
    with caplog.at_level(logging.DEBUG):
        err = _raw_call(channel, method, data)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details() == f"{method} request is not a valid protobuf message"
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


def test_corrupt_stream_request_is_invalid_argument(node: tuple[Node, grpc.Channel]) -> None:
    _, channel = node
    call: Any = channel.unary_stream(SERVICE + "Pull")
    with pytest.raises(grpc.RpcError) as info:
        list(call(b"\x0f", timeout=5))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details() == "Pull request is not a valid protobuf message"


def test_corrupt_requests_keep_the_log_bounded(
    node: tuple[Node, grpc.Channel], caplog: pytest.LogCaptureFixture
) -> None:
    """290 corrupt requests: every one refused, a few log lines in all."""
    _, channel = node
    with caplog.at_level(logging.DEBUG):
        for i in range(290):
            err = _raw_call(channel, "Match", CORRUPT[i % len(CORRUPT)])
            assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    lines = [r for r in caplog.records if "not a valid protobuf message" in r.getMessage()]
    assert 1 <= len(lines) <= 5, [r.getMessage() for r in lines]
    assert not [r for r in caplog.records if r.exc_info]
    # The node still answers good requests.
    status = pb_grpc.NodeServiceStub(channel).Status(pb.StatusRequest(), timeout=5)
    assert status.node_id == PLAT


def test_corrupt_request_log_is_one_line_a_minute(caplog: pytest.LogCaptureFixture) -> None:
    """The first corrupt request is logged; then one line per minute at most,
    counting what was refused meanwhile (a clock stands in for time)."""
    now = [1000.0]
    interceptor = CorruptRequests(clock=lambda: now[0])

    class Aborted(Exception):
        pass

    class Context:
        async def abort(self, code: grpc.StatusCode, details: str) -> None:
            raise Aborted(code, details)

    async def refuse(n: int) -> None:
        for _ in range(n):
            with pytest.raises(Aborted):
                await interceptor._refuse(_Corrupt("Match"), Context())  # type: ignore[arg-type]

    with caplog.at_level(logging.WARNING):
        asyncio.run(refuse(50))
        now[0] += CORRUPT_LOG_EVERY_S - 1
        asyncio.run(refuse(50))
        now[0] += 1
        asyncio.run(refuse(1))
    assert [r.getMessage() for r in caplog.records] == [
        "refused 1 corrupt request(s) with INVALID_ARGUMENT (latest: Match request is not "
        "a valid protobuf message)",
        "refused 100 corrupt request(s) with INVALID_ARGUMENT (latest: Match request is not "
        "a valid protobuf message)",
    ]
