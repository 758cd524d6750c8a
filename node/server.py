"""Wire core, store, rpc and sync into a running node."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer as AioHealthServicer
from grpc_reflection.v1alpha import reflection

from node.accountability import POLICY_FILE
from node.app import NodeApp
from node.config import NodeConfig, load_config, write_atomic
from node.core.trust import TrustView
from node.errors import NodeError, ValidationError
from node.rpc._pb.consortium.v1 import node_pb2 as pb
from node.rpc._pb.consortium.v1 import node_pb2_grpc as pb_grpc
from node.rpc.client import SERVER_OPTIONS
from node.rpc.service import NodeServicer
from node.store.lmdb_store import LmdbStore
from node.store.matchlog import MatchLog
from node.sync.engine import Peer, SyncEngine

log = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["NodeService"].full_name
MATCHLOG_DIR = "matchlog"  # the local match log's LMDB environment, in the node dir


def _is_loopback(host: str) -> bool:
    return host in ("127.0.0.1", "localhost", "::1", "[::1]") or host.startswith("127.")


class Node:
    """A running node: ``await node.start()`` ... ``await node.stop()``."""

    def __init__(self, config: NodeConfig, *, trust: TrustView | None = None) -> None:
        self.config = config
        host = config.listen.rsplit(":", 1)[0]
        if not _is_loopback(host):
            raise ValidationError(
                f"listen {config.listen!r}: plaintext serving is for local development "
                "and binds to loopback only"
            )
        self.store = LmdbStore(config.data_dir)
        self.matchlog = MatchLog(config.dir / MATCHLOG_DIR)
        self.app = NodeApp(
            config.id,
            self.store,
            trust or config.members(),
            policy_path=config.dir / POLICY_FILE,
            matchlog=self.matchlog,
        )
        peers = [Peer(p.id, p.resolver(config.dir)) for p in config.peers]
        self.sync = SyncEngine(self.app, peers)
        self.address = ""
        self._server: grpc.aio.Server | None = None
        self._health = AioHealthServicer()

    async def start(self) -> str:
        server = grpc.aio.server(options=SERVER_OPTIONS)
        pb_grpc.add_NodeServiceServicer_to_server(
            NodeServicer(self.app, self._peers_status), server
        )
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        reflection.enable_server_reflection(
            (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
        port = server.add_insecure_port(self.config.listen)
        if port == 0:
            raise ValidationError(f"cannot listen on {self.config.listen}")
        await server.start()
        self._server = server
        host = self.config.listen.rsplit(":", 1)[0]
        self.address = f"{host}:{port}"
        self.sync.start()
        await self._health.set(SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)
        await self._health.set("", health_pb2.HealthCheckResponse.SERVING)
        write_atomic(self.config.addr_file, self.address + "\n")
        log.info("node %s listening on %s", self.config.id, self.address)
        return self.address

    def _peers_status(self) -> list[pb.PeerStatus]:
        heads = {o: h.next_seq for o, h in self.app.heads().items()}
        return [
            pb.PeerStatus(
                peer_id=s.id,
                address=s.address,
                state=s.state,
                lag_entries=s.lag(heads),
                last_received_ms=s.last_received_ms,
                last_error=s.last_error,
                received=s.received,
                refused=s.refused,
            )
            for s in self.sync.states.values()
        ]

    async def stop(self, grace: float = 2.0) -> None:
        """Stop accepting, finish in-flight calls, stop sync, close LMDB."""
        await self._health.enter_graceful_shutdown()
        self.config.addr_file.unlink(missing_ok=True)
        await self.sync.stop()
        self.app.changes.close()  # end follow streams so in-flight calls can finish
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None
        self.store.close()
        self.matchlog.close()

    def reload_policy(self) -> None:
        """SIGHUP: re-read DIR/policy.toml; a bad file keeps the current policy."""
        try:
            policy = self.app.accountability.reload()
        except NodeError as exc:
            log.error("policy not reloaded, keeping the current one: %s", exc)
            return
        log.warning("policy reloaded from %s (%d rules)", policy.source, len(policy.rules))

    async def wait(self) -> None:
        if self._server is not None:
            await self._server.wait_for_termination()


async def serve(directory: Path, *, parent_pid: int = 0) -> None:
    """Run a node until SIGTERM/SIGINT (or, for launched meshes, until the
    launching process is gone, so a killed launcher leaves no orphans)."""
    import os
    import signal

    node = Node(load_config(directory))
    await node.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, node.reload_policy)

    async def watch_parent() -> None:
        while os.getppid() == parent_pid:  # noqa: ASYNC110 - polling another process
            await asyncio.sleep(0.5)
        log.warning("launcher %d is gone; shutting down", parent_pid)
        stop.set()

    watcher = asyncio.create_task(watch_parent()) if parent_pid else None
    print(f"ccnode: {node.config.id} serving on {node.address}", flush=True)
    await stop.wait()
    if watcher is not None:
        watcher.cancel()
    await node.stop()
