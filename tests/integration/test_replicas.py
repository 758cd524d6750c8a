"""Match replicas with real processes: a primary, three replicas, and a
client balancing over them with gRPC's own round_robin and retry policy
(docs/operators.md, *Match replicas*)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from node.config import with_overrides
from node.connect import credentials_for
from node.core.roster import MemberKind
from node.core.tlscert import TLS_NAME
from node.errors import OrderingError
from node.member_dir import init_replica_dir
from node.mesh import Mesh, MeshNode
from node.rpc._pb.consortium.v1 import node_pb2 as pb
from node.rpc._pb.consortium.v1 import node_pb2_grpc as pb_grpc
from node.server import SERVICE_NAME
from tests.helpers import Origin

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MEMBER = "platform.example"
#: What a platform's client would configure: round_robin over the replicas,
#: only those whose health says SERVING, and retries on UNAVAILABLE.
SERVICE_CONFIG = {
    "loadBalancingConfig": [{"round_robin": {}}],
    "healthCheckConfig": {"serviceName": SERVICE_NAME},
    "methodConfig": [
        {
            "name": [{"service": SERVICE_NAME}],
            "retryPolicy": {
                "maxAttempts": 5,
                "initialBackoff": "0.05s",
                "maxBackoff": "0.5s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE"],
            },
        }
    ],
}


def _channel(node: MeshNode, target: str, *, balanced: bool = False) -> grpc.aio.Channel:
    creds = credentials_for(node.config)
    assert creds is not None
    options: list[tuple[str, str | int]] = [("grpc.ssl_target_name_override", TLS_NAME)]
    if balanced:
        options += [
            ("grpc.service_config", json.dumps(SERVICE_CONFIG)),
            ("grpc.enable_retries", 1),
            # Reconnect to a restarted replica within a second, not gRPC's
            # default backoff of up to two minutes.
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 1000),
        ]
    return grpc.aio.secure_channel(target, creds, options=options)


def _query(entry_hash: bytes) -> pb.MatchRequest:
    return pb.MatchRequest(queries=[pb.HashQuery(algorithm="MD5", value=entry_hash)])


async def _matches(node: MeshNode, entry_hash: bytes) -> bool:
    async with _channel(node, node.address) as ch:
        answer = await pb_grpc.NodeServiceStub(ch).Match(_query(entry_hash), timeout=5)
    return bool(answer.results[0].matches)


async def _serving(node: MeshNode) -> bool:
    try:
        async with _channel(node, node.address) as ch:
            r = await health_pb2_grpc.HealthStub(ch).Check(
                health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=2
            )
    except grpc.aio.AioRpcError:
        return False
    return bool(r.status == health_pb2.HealthCheckResponse.SERVING)


async def _poll(pred, timeout: float, what: str) -> float:  # type: ignore[no-untyped-def]
    start = time.monotonic()
    while not await pred():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout}s: {what}")
        await asyncio.sleep(0.01)
    return time.monotonic() - start


def test_replicas_behind_round_robin_survive_a_kill_and_catch_up(tmp_path: Path) -> None:
    mesh = Mesh.create(tmp_path, [(MEMBER, MemberKind.PLATFORM)])
    primary = mesh.nodes[0]
    origin = Origin(MEMBER)
    origin.signer = primary.signer
    try:
        mesh.start_node(primary)
        mesh.wait_ready(30, [primary])
        banked = [origin.next() for _ in range(50)]

        async def submit(entries: list) -> None:  # type: ignore[type-arg]
            async with primary.client() as c:
                await c.submit(entries)

        asyncio.run(submit(banked))
        replicas = []
        for i in range(3):
            config = init_replica_dir(
                primary.config.dir, tmp_path / f"replica-{i}", primary.address
            )
            replicas.append(MeshNode(config, primary.signer, primary.member))
        mesh.nodes.extend(replicas)
        for r in replicas:
            mesh.start_node(r)
        mesh.wait_ready(30, replicas)
        asyncio.run(_scenario(mesh, primary, replicas, origin, banked))
    finally:
        mesh.stop()


async def _scenario(
    mesh: Mesh,
    primary: MeshNode,
    replicas: list[MeshNode],
    origin: Origin,
    banked: list,  # type: ignore[type-arg]
) -> None:
    for r in replicas:
        await _poll(lambda r=r: _serving(r), 30, f"{r.config.dir.name} caught up (SERVING)")
        assert await _matches(r, banked[-1].body.hash)

    # A replica refuses writes, naming its primary; and Pull from other members.
    async with replicas[0].client() as c:
        with pytest.raises(OrderingError) as refused:  # FAILED_PRECONDITION
            await c.submit([origin.next()])
        status = await c.status()
    assert str(refused.value) == (
        f"Submit: this node is a read-only match replica of {MEMBER}; "
        f"send it to the primary at {primary.address}"
    )
    origin.seq, origin.prev = origin.seq - 1, banked[-1].entry_id  # that entry never existed
    lags = [(p.peer_id, p.address, p.lag_entries) for p in status.peers]
    assert lags == [(MEMBER, primary.address, 0)], "Status shows the lag behind the primary"

    # Load through round_robin; one replica is killed mid-load.
    target = "ipv4:" + ",".join(r.address for r in replicas)
    ok = failed = 0
    stop = asyncio.Event()
    errors: list[str] = []
    async with _channel(replicas[0], target, balanced=True) as channel:
        stub = pb_grpc.NodeServiceStub(channel)

        async def load() -> None:
            nonlocal ok, failed
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    answer = await stub.Match(_query(banked[i % len(banked)].body.hash), timeout=10)
                    assert answer.results[0].matches
                    ok += 1
                except grpc.aio.AioRpcError as exc:
                    failed += 1
                    errors.append(f"{exc.code().name}: {exc.details()}")

        workers = [asyncio.create_task(load()) for _ in range(4)]
        await _poll(lambda: _true_after(lambda: ok >= 200 or failed > 0), 60, "load under way")
        assert failed == 0, errors[:5]
        mesh.stop_node(replicas[1], kill=True)
        before = ok
        await _poll(lambda: _true_after(lambda: ok >= before + 300), 60, "load after the kill")
        assert failed == 0, errors[:5]

        # An entry submitted at the primary becomes matchable on every live replica.
        fresh = origin.next()
        async with primary.client() as c:
            await c.submit([fresh])
        live = [replicas[0], replicas[2]]
        took = [
            await _poll(lambda r=r: _matches(r, fresh.body.hash), 10, f"{r.config.dir.name}")
            for r in live
        ]

        # Restart the killed replica at its address (as behind a stable name):
        # it catches up (it missed ``fresh``) and rejoins the balanced channel.
        killed = replicas[1]
        killed.config = with_overrides(killed.config, listen=killed.address)
        killed.config.save()
        mesh.start_node(killed)
        await asyncio.to_thread(mesh.wait_ready, 30, [replicas[1]])
        await _poll(lambda: _serving(replicas[1]), 30, "restarted replica SERVING")
        assert await _matches(replicas[1], fresh.body.hash)
        # Only it is left: the balanced channel still answers, through it.
        for r in live:
            mesh.stop_node(r, kill=True)
        before = ok
        await _poll(lambda: _true_after(lambda: ok >= before + 100), 60, "served by the rejoined")
        stop.set()
        await asyncio.gather(*workers)
    assert failed == 0, errors[:5]
    print(f"propagation to live replicas: {', '.join(f'{t * 1000:.0f} ms' for t in took)}")


async def _true_after(pred) -> bool:  # type: ignore[no-untyped-def]
    return bool(pred())
