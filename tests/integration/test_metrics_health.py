"""Metrics on their own port, health states, reflection, and a full LMDB map."""

from __future__ import annotations

import asyncio
import dataclasses
import urllib.request
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from prometheus_client.parser import text_string_to_metric_families

from node.cli import main
from node.config import NodeConfig, PeerConfig
from node.core.trust import MemberKind, MembersFile
from node.errors import ConflictError, ProvenanceError, StorageError, ValidationError
from node.metrics import NodeMetrics, Snapshot
from node.rpc._pb.consortium.v1 import node_pb2 as pb
from node.rpc.client import NodeClient
from node.server import SERVICE_NAME, Node
from node.sync.engine import PeerState
from tests.helpers import LoopThread, Origin, eventually, member, signer_for, write_node_dir

pytestmark = pytest.mark.integration

GOV, P1 = "gov.example/ct", "platform-one.example"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(address: str) -> Samples:
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as response:
        text = response.read().decode()
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def health(address: str, service: str = SERVICE_NAME) -> int:
    with grpc.insecure_channel(address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=5
        )
    return int(reply.status)


SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def _pair(tmp_path: Path) -> tuple[NodeConfig, NodeConfig]:
    members = MembersFile.of([member(GOV, MemberKind.GOVERNMENT), member(P1)])
    gov = write_node_dir(tmp_path, GOV, members, MemberKind.GOVERNMENT)
    p1 = write_node_dir(
        tmp_path, P1, members, peers=(PeerConfig(GOV, address_file="../gov.example_ct/node.addr"),)
    )
    on = {"metrics_listen": "127.0.0.1:0"}
    return dataclasses.replace(gov, **on), dataclasses.replace(p1, **on)


def test_two_nodes_in_one_process_each_have_their_own_metrics(
    tmp_path: Path, loop: LoopThread
) -> None:
    gov_cfg, p1_cfg = _pair(tmp_path)
    nodes = [Node(gov_cfg), Node(p1_cfg)]
    addrs = [loop.run(n.start()) for n in nodes]
    gov = Origin(GOV)
    entries = [gov.next() for _ in range(3)]

    async def call(address: str, fn):  # type: ignore[no-untyped-def]
        async with NodeClient(address) as c:
            return await fn(c)

    def expect(exc: type[Exception], address: str, fn) -> None:  # type: ignore[no-untyped-def]
        with pytest.raises(exc):
            loop.run(call(address, fn))

    try:
        loop.run(call(addrs[0], lambda c: c.submit(entries)))
        loop.run(call(addrs[0], lambda c: c.submit(entries[:1])))  # duplicate
        forged = Origin(GOV)
        forged.signer = signer_for("someone else")
        expect(ProvenanceError, addrs[0], lambda c: c.submit([forged.next()]))
        loop.run(
            call(addrs[0], lambda c: c.match([(e.body.algorithm, e.body.hash) for e in entries]))
        )
        expect(ValidationError, addrs[0], lambda c: c.match([("MD5", b"short")]))
        eventually(lambda: nodes[1].store.head(GOV).next_seq == 3, what="P1 synced")

        a = scrape(nodes[0].metrics.address)
        assert value(a, "ccnode_info", node_id=GOV, version="0.1.0") == 1
        assert value(a, "ccnode_ready") == 1
        assert value(a, "ccnode_entries_accepted_total", source="submit") == 3
        assert value(a, "ccnode_entries_duplicate_total", source="submit") == 1
        assert value(a, "ccnode_entries_refused_total", source="submit", reason="provenance") == 1
        assert value(a, "ccnode_propagation_latency_seconds_count", source="submit") == 3
        assert value(a, "ccnode_entries_stored", origin=GOV) == 3
        assert value(a, "ccnode_index_hashes") == 3
        assert value(a, "ccnode_match_requests_total", outcome="ok") == 1
        assert value(a, "ccnode_match_requests_total", outcome="error") == 1
        assert value(a, "ccnode_match_queries_total") == 3
        assert value(a, "ccnode_match_hits_total") == 3
        assert value(a, "ccnode_match_latency_seconds_count") == 2
        assert value(a, "ccnode_store_writable") == 1
        used = value(a, "ccnode_lmdb_map_used_bytes")
        assert 0 < used < value(a, "ccnode_lmdb_map_size_bytes") == 16384 << 20
        assert not any(name.startswith("ccnode_peer_") for name, _ in a)  # gov has no peers

        b = scrape(nodes[1].metrics.address)
        assert value(b, "ccnode_info", node_id=P1, version="0.1.0") == 1
        assert value(b, "ccnode_entries_accepted_total", source="peer") == 3
        assert value(b, "ccnode_entries_accepted_total", source="submit") == 0
        assert value(b, "ccnode_peer_up", peer=GOV) == 1
        assert value(b, "ccnode_peer_state", peer=GOV, state="streaming") == 1
        assert value(b, "ccnode_peer_state", peer=GOV, state="backoff") == 0
        assert value(b, "ccnode_peer_lag_entries", peer=GOV) == 0
        assert value(b, "ccnode_peer_lag_seconds", peer=GOV) == 0
        assert value(b, "ccnode_peer_withholding", peer=GOV) == 0
        assert value(b, "ccnode_peer_received_total", peer=GOV) == 3
        assert value(b, "ccnode_peer_duplicates_total", peer=GOV) == 0  # its only neighbour
        assert value(b, "ccnode_peer_responses_total", peer=GOV) >= 1
        assert value(b, "ccnode_propagation_latency_seconds_count", source="peer") == 3

        # Equivocation: GOV signs a second, different seq 0; P1 keeps the evidence.
        fork = Origin(GOV)
        expect(ConflictError, addrs[1], lambda c: c.submit([fork.next(reason="fork")]))
        b = scrape(nodes[1].metrics.address)
        assert value(b, "ccnode_equivocation_evidence", origin=GOV) == 1
        assert value(b, "ccnode_alerts_total", kind="equivocation") == 1
        assert value(b, "ccnode_entries_refused_total", source="submit", reason="equivocation") == 1

        # The peer goes down: P1 reports it.
        loop.run(nodes[0].stop())
        eventually(
            lambda: value(scrape(nodes[1].metrics.address), "ccnode_peer_up", peer=GOV) == 0,
            what="peer down shows",
        )
    finally:
        for n in nodes:
            if n._server is not None:
                loop.run(n.stop())
    with pytest.raises(OSError):  # the metrics port closed with the node
        scrape(nodes[1].metrics.address)


def test_withholding_alert_fires_once_and_clears() -> None:
    metrics = NodeMetrics("p.example", withholding_after_s=10)
    peer = PeerState("gov.example/ct", state="streaming", frontier={"o.example": 5})
    peer.note_lag({"o.example": 3}, now=1_000)
    assert peer.behind_since_ms == 1_000
    heads = {"o.example": 3}

    def snap(now: int) -> Snapshot:
        return Snapshot("p.example", heads, None, {}, True, (peer,), now, True)

    assert metrics.note_withholding(snap(5_000)) == set()  # 4 s behind: not yet
    current = {"now": 12_000}
    metrics.bind(lambda: snap(current["now"]))
    from prometheus_client import generate_latest

    text = generate_latest(metrics.registry).decode()
    assert 'ccnode_peer_withholding{peer="gov.example/ct"} 1.0' in text
    assert 'ccnode_peer_lag_seconds{peer="gov.example/ct"} 11.0' in text
    assert 'ccnode_alerts_total{kind="withholding"} 1.0' in text
    generate_latest(metrics.registry)  # still withholding: no second alert
    assert metrics.alerts.labels("withholding")._value.get() == 1
    heads["o.example"] = 5
    peer.note_lag(heads, now=13_000)
    assert peer.behind_since_ms == 0
    text = generate_latest(metrics.registry).decode()
    assert 'ccnode_peer_withholding{peer="gov.example/ct"} 0.0' in text


def test_health_is_not_serving_until_startup_work_is_done(tmp_path: Path, loop: LoopThread) -> None:
    gov_cfg, _ = _pair(tmp_path)
    node = Node(gov_cfg)
    release = loop.run(_event())

    async def index_build() -> None:
        await release.wait()

    node.startup.append(index_build)
    started = asyncio.run_coroutine_threadsafe(node.start(), loop.loop)
    try:
        eventually(lambda: bool(node.address), what="port open")
        assert health(node.address) == NOT_SERVING
        assert health(node.address, "") == NOT_SERVING
        assert value(scrape(node.metrics.address), "ccnode_ready") == 0
        assert (
            main(["health", "--to", node.address, "--insecure"]) == 1
        )  # for container HEALTHCHECKs

        # Reflection is on, so `grpcurl list` works even while starting.
        with grpc.insecure_channel(node.address) as channel:
            services = set(ProtoReflectionDescriptorDatabase(channel).get_services())
        assert {
            SERVICE_NAME,
            "grpc.health.v1.Health",
            "grpc.reflection.v1alpha.ServerReflection",
        } <= services

        loop.loop.call_soon_threadsafe(release.set)
        started.result(10)
        assert health(node.address) == SERVING
        assert value(scrape(node.metrics.address), "ccnode_ready") == 1
        assert main(["health", "--to", node.address, "--insecure"]) == 0
        assert main(["health", "--to", "127.0.0.1:1", "--insecure"]) == 3
    finally:
        started.result(10)
        loop.run(node.stop())


async def _status(address: str) -> pb.StatusResponse:
    async with NodeClient(address) as c:
        return await c.status()


async def _event() -> asyncio.Event:
    return asyncio.Event()


def test_map_full_refuses_writes_keeps_serving_reads_then_recovers(
    tmp_path: Path, loop: LoopThread
) -> None:
    gov_cfg, _ = _pair(tmp_path)
    small = dataclasses.replace(gov_cfg, lmdb_map_size_mib=1, lmdb_map_max_mib=1)
    node = Node(small)
    address = loop.run(node.start())
    gov = Origin(GOV)
    first = gov.next()

    async def submit(batch: list) -> None:  # type: ignore[type-arg]
        async with NodeClient(address, deadline_s=30) as c:
            await c.submit(batch)

    try:
        loop.run(submit([first]))
        error = None
        for _ in range(20):
            batch = [gov.next() for _ in range(500)]
            try:
                loop.run(submit(batch))
            except StorageError as exc:
                error = exc
                gov.seq -= len(batch)  # nothing of the batch was kept
                gov.prev = loop.run(_head_id(address))
                break
        assert error is not None, "the 1 MiB map never filled"
        assert str(error) == (
            "LMDB map full at 1 MiB, the cap set by lmdb_map_max_mib: writes are refused, "
            "reads are still served; raise lmdb_map_max_mib or free disk space and restart "
            "(docs/operators.md, 'map full')"
        )

        async def match_first() -> int:
            async with NodeClient(address) as c:
                resp = await c.match([(first.body.algorithm, first.body.hash)])
            return len(resp.results[0].matches)

        assert loop.run(match_first()) == 1  # reads still served
        eventually(lambda: health(address) == NOT_SERVING, what="health follows the store")
        m = scrape(node.metrics.address)
        assert value(m, "ccnode_store_writable") == 0
        assert value(m, "ccnode_alerts_total", kind="map_full") == 1
        assert value(m, "ccnode_entries_refused_total", source="submit", reason="storage") == 500
        status = loop.run(_status(address))
        assert [(a.kind, a.detail) for a in status.alerts] == [("map_full", str(error))]
        stored = node.store.head(GOV).next_seq
    finally:
        loop.run(node.stop())

    # The operator lifts the cap and restarts: writes work again.
    node = Node(dataclasses.replace(small, lmdb_map_max_mib=0))
    address = loop.run(node.start())
    try:
        assert node.store.head(GOV).next_seq == stored
        loop.run(submit([gov.next() for _ in range(500)]))
        assert node.store.head(GOV).next_seq == stored + 500
        assert health(address) == SERVING
    finally:
        loop.run(node.stop())


async def _head_id(address: str) -> bytes:
    async with NodeClient(address) as c:
        status = await c.status()
    return bytes(status.heads[0].head_id)
