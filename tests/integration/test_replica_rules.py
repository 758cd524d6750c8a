"""A match replica's rules, on real in-process nodes with mutual TLS: what
its directory holds, what it refuses (writes, other members' Pull), and
when its health says SERVING (docs/operators.md, *Match replicas*)."""

from __future__ import annotations

import socket
from dataclasses import replace
from pathlib import Path

import pytest

from node.config import load_config
from node.errors import OrderingError, ProvenanceError, ValidationError
from node.member_dir import init_replica_dir
from node.server import SERVICE_NAME, Node
from tests.helpers import LoopThread, Origin, eventually, genesis, member, write_node_dir
from tests.integration.test_mtls import client

pytestmark = pytest.mark.integration

A, B = "platform-a.example", "platform-b.example"


def _closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


async def _health(address: str) -> dict[str, str]:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    out = {}
    async with grpc.aio.insecure_channel(address) as ch:
        for service in ("", SERVICE_NAME):
            answer = await health_pb2_grpc.HealthStub(ch).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=5
            )
            out[service] = health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
    return out


def test_replica_directory_holds_no_signing_key_and_refuses_bad_sources(tmp_path: Path) -> None:
    roster = genesis([member(A), member(B)])
    a = write_node_dir(tmp_path, A, roster, insecure=False)
    (a.dir / "policy.toml").write_text("")
    r = init_replica_dir(a.dir, tmp_path / "replica", "127.0.0.1:7001")
    keys = sorted(p.name for p in (r.dir / "keys").iterdir())
    assert keys == ["tls.crt", "tls.key"]
    assert (r.dir / "keys" / "tls.key").stat().st_mode & 0o077 == 0
    assert (r.dir / "policy.toml").exists()
    loaded = load_config(r.dir)
    assert (loaded.replica_of, loaded.peers, loaded.id) == ("127.0.0.1:7001", (), A)
    assert loaded.preflight() == ()  # no signing key needed, none present
    with pytest.raises(ValidationError) as exists:
        init_replica_dir(a.dir, r.dir, "127.0.0.1:7001")
    assert str(exists.value) == f"{r.dir} is already a node directory"
    with pytest.raises(ValidationError) as chained:
        init_replica_dir(r.dir, tmp_path / "r2", "127.0.0.1:7001")
    assert str(chained.value) == (
        f"{r.dir} is itself a replica (of 127.0.0.1:7001): make replicas from the "
        "member's own directory"
    )
    with pytest.raises(ValidationError) as bad:
        init_replica_dir(a.dir, tmp_path / "r3", "nowhere")
    assert str(bad.value) == "--replica-of: expected host:port with a port 1..65535, got 'nowhere'"
    # A plain copy of the member's directory works, with warnings saying what to drop.
    warnings = replace(a, replica_of="h:1").preflight()
    assert warnings == (
        f"replica of h:1: {a.dir / 'keys/entry.pem'} is a signing key a replica never uses; "
        "remove it from the replica's directory (a replica needs only the roster and the "
        "member's TLS key and certificate)",
    )


def test_replica_of_option_is_validated(tmp_path: Path) -> None:
    roster = genesis([member(A)])
    a = write_node_dir(tmp_path, A, roster)
    text = (a.dir / "config.toml").read_text()
    (a.dir / "config.toml").write_text(text.replace('replica_of = ""', 'replica_of = "x"'))
    with pytest.raises(ValidationError) as bad:
        load_config(a.dir)
    assert str(bad.value) == (
        f"{a.dir / 'config.toml'}: option 'replica_of': expected host:port with a port "
        "1..65535, got 'x'"
    )


def test_replica_serves_reads_refuses_writes_and_waits_for_its_primary(
    tmp_path: Path, loop: LoopThread
) -> None:
    roster = genesis([member(A), member(B)])
    a_cfg = write_node_dir(tmp_path, A, roster, insecure=False)
    origin = Origin(A)
    nodes: list[Node] = []
    try:
        # A replica whose primary is not there yet: NOT_SERVING, lag unknown.
        port = _closed_port()
        r_cfg = init_replica_dir(a_cfg.dir, tmp_path / "replica", port)
        replica = Node(replace(r_cfg, health_listen="127.0.0.1:0"))
        nodes.append(replica)
        r_addr = loop.run(replica.start())
        assert not replica.ready and replica.replica_lag() is None
        # Not ready (NodeService), yet alive (""): a liveness probe leaves it be.
        health = loop.run(_health(replica.health_address))
        assert health == {"": "SERVING", SERVICE_NAME: "NOT_SERVING"}
        # The primary comes up at that address with entries: the replica catches up.
        primary = Node(replace(a_cfg, listen=port))
        nodes.append(primary)
        p_addr = loop.run(primary.start())
        entries = [origin.next() for _ in range(20)]

        async def submit() -> None:
            async with client(A, p_addr) as c:
                await c.submit(entries)

        loop.run(submit())
        eventually(lambda: replica.ready, timeout=20, what="replica caught up: SERVING")
        assert replica.replica_lag() == 0
        health = loop.run(_health(replica.health_address))
        assert health == {"": "SERVING", SERVICE_NAME: "SERVING"}

        async def reads_and_refusals() -> tuple[int, str, str]:
            async with client(A, r_addr) as c:
                hit = await c.match([("MD5", entries[-1].body.hash)])
                with pytest.raises(OrderingError) as refused:
                    await c.submit([origin.next()])
                with pytest.raises(OrderingError) as recorded:
                    await c.match([("MD5", entries[-1].body.hash)], record=True)
            async with client(B, r_addr) as c:
                with pytest.raises(ProvenanceError) as pull:
                    async for _ in c.pull({}, follow=False):
                        pass
            return (
                len(hit.results[0].matches),
                str(refused.value),
                str(pull.value),
                str(recorded.value),
            )

        matches, refused, pull, recorded = loop.run(reads_and_refusals())
        assert matches == 1
        assert refused == (
            f"Submit: this node is a read-only match replica of {A}; send it to the primary "
            f"at {port}"
        )
        assert recorded == (
            f"Match with record=true: this node is a read-only match replica of {A}; send it "
            f"to the primary at {port}"
        )
        assert pull == (
            f"Pull: this node is a match replica of {A} and serves Pull to that member's own "
            f"replicas only; caller {B} syncs from the member's node at {port}"
        )
    finally:
        for n in reversed(nodes):
            if n._server is not None:
                loop.run(n.stop())


def test_health_watch_answers_through_the_corrupt_request_interceptor(
    tmp_path: Path, loop: LoopThread
) -> None:
    """Client-side health checking (round_robin's ``healthCheckConfig``)
    calls Watch, a handler that writes with ``context.write``: the
    interceptor used to iterate it and fail every call."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from node.server import SERVICE_NAME

    node = Node(write_node_dir(tmp_path, A, genesis([member(A)])))
    address = loop.run(node.start())

    async def first_status() -> int:
        async with grpc.aio.insecure_channel(address) as ch:
            call = health_pb2_grpc.HealthStub(ch).Watch(
                health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=5
            )
            async for answer in call:
                call.cancel()
                return int(answer.status)
        raise AssertionError("Watch ended without an answer")

    try:
        assert loop.run(first_status()) == health_pb2.HealthCheckResponse.SERVING
    finally:
        loop.run(node.stop())


def test_health_listen_serves_plaintext_health_beside_a_tls_node(
    tmp_path: Path, loop: LoopThread
) -> None:
    """Kubernetes' native gRPC probes speak no TLS: ``health_listen`` is a
    plaintext port with the health service alone (NodeService is not there)."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from node.rpc._pb.consortium.v1 import node_pb2 as pb
    from node.rpc._pb.consortium.v1 import node_pb2_grpc as pb_grpc
    from node.server import SERVICE_NAME

    config = write_node_dir(
        tmp_path, A, genesis([member(A)]), insecure=False, health_listen="127.0.0.1:0"
    )
    node = Node(config)
    loop.run(node.start())

    async def probe() -> tuple[int, grpc.StatusCode]:
        async with grpc.aio.insecure_channel(node.health_address) as ch:
            answer = await health_pb2_grpc.HealthStub(ch).Check(
                health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=5
            )
            try:
                await pb_grpc.NodeServiceStub(ch).Status(pb.StatusRequest(), timeout=5)
            except grpc.aio.AioRpcError as exc:
                return int(answer.status), exc.code()
        raise AssertionError("NodeService answered on the health port")

    try:
        status, code = loop.run(probe())
        assert status == health_pb2.HealthCheckResponse.SERVING
        assert code == grpc.StatusCode.UNIMPLEMENTED
    finally:
        loop.run(node.stop())


def test_init_replica_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.helpers import run_cli

    a = write_node_dir(tmp_path, A, genesis([member(A)]), insecure=False)
    out, _ = run_cli(
        capsys,
        "init-replica",
        str(tmp_path / "r"),
        "--from",
        str(a.dir),
        "--replica-of",
        "10.0.0.5:7001",
        "--listen",
        "0.0.0.0:7101",
    )
    assert out == (
        f"initialised a match replica of {A} in {tmp_path / 'r'}, following 10.0.0.5:7001; "
        f"start it with `ccnode serve {tmp_path / 'r'}`\n"
    )
    config = load_config(tmp_path / "r")
    assert (config.replica_of, config.listen) == ("10.0.0.5:7001", "0.0.0.0:7101")
    _, err = run_cli(
        capsys,
        "init-replica",
        str(tmp_path / "r2"),
        "--from",
        str(tmp_path / "r"),
        "--replica-of",
        "10.0.0.5:7001",
        code=2,
    )
    assert err.strip() == (
        f"ccnode: error: {tmp_path / 'r'} is itself a replica (of 10.0.0.5:7001): make replicas "
        "from the member's own directory"
    )
    assert not (tmp_path / "r2").exists()


def test_replica_is_not_ready_while_it_lags_beyond_the_bound(
    tmp_path: Path, loop: LoopThread
) -> None:
    """Another process holds the replica's LMDB write lock, so what the
    primary sends cannot commit: the replica's lag grows past
    ``replica_max_lag`` and its readiness goes NOT_SERVING (liveness stays
    SERVING); when the lock is released it commits and is ready again."""
    import subprocess
    import sys

    roster = genesis([member(A)])
    a_cfg = write_node_dir(tmp_path, A, roster, insecure=False)
    origin = Origin(A)
    primary = Node(a_cfg)
    p_addr = loop.run(primary.start())
    r_cfg = init_replica_dir(a_cfg.dir, tmp_path / "replica", p_addr)
    replica = Node(replace(r_cfg, replica_max_lag=3, health_listen="127.0.0.1:0"))
    holder: subprocess.Popen[str] | None = None
    try:
        loop.run(replica.start())
        eventually(lambda: replica.ready, timeout=20, what="replica SERVING")
        holder = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import lmdb, sys; env = lmdb.open(sys.argv[1], max_dbs=16); "
                "txn = env.begin(write=True); print('held', flush=True); sys.stdin.read()",
                str(r_cfg.data_dir),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"

        async def submit() -> None:
            async with client(A, p_addr) as c:
                await c.submit([origin.next() for _ in range(10)])

        loop.run(submit())
        eventually(lambda: not replica.ready, timeout=20, what="lagging replica NOT_SERVING")
        assert replica.replica_lag() == 10
        health = loop.run(_health(replica.health_address))
        assert health == {"": "SERVING", SERVICE_NAME: "NOT_SERVING"}
        holder.communicate("", timeout=10)  # releases the write lock
        eventually(lambda: replica.ready, timeout=20, what="caught up again: SERVING")
        assert replica.replica_lag() == 0
    finally:
        if holder is not None and holder.poll() is None:
            holder.kill()
            holder.wait(10)
        if replica._server is not None:
            loop.run(replica.stop())
        loop.run(primary.stop())
