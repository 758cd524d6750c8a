"""Wire core, store, rpc and sync into a running node."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer as AioHealthServicer
from grpc_reflection.v1alpha import reflection

from node.app import NodeApp
from node.config import NodeConfig, load_config, write_atomic
from node.core.tlscert import TlsIdentity
from node.core.trust import TrustView
from node.errors import PeerError, ValidationError
from node.rosters import RosterKeeper
from node.rpc._pb.consortium.v1 import node_pb2 as pb
from node.rpc._pb.consortium.v1 import node_pb2_grpc as pb_grpc
from node.rpc.client import SERVER_OPTIONS, NodeClient
from node.rpc.service import NodeServicer
from node.rpc.tls import Authorizer, secure_client, server_credentials
from node.store.lmdb_store import LmdbStore
from node.sync.engine import Peer, SyncEngine
from node.sync.roster_gossip import RosterGossip

log = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["NodeService"].full_name


def _is_loopback(host: str) -> bool:
    return host in ("127.0.0.1", "localhost", "::1", "[::1]") or host.startswith("127.")


class Node:
    """A running node: ``await node.start()`` ... ``await node.stop()``."""

    def __init__(self, config: NodeConfig, *, trust: TrustView | None = None) -> None:
        self.config = config
        if config.key_only:
            raise ValidationError(
                f"{config.dir} is a key-only member directory: it submits to other nodes "
                "and has no node to serve"
            )
        host = config.listen.rsplit(":", 1)[0]
        if config.insecure and not _is_loopback(host):
            raise ValidationError(
                f"listen {config.listen!r}: plaintext (insecure) serving is for local "
                "development and binds to loopback only; drop --insecure to use mutual TLS"
            )
        self.identity: TlsIdentity | None = None if config.insecure else config.tls_identity()
        self.store = LmdbStore(config.data_dir)
        try:
            self.rosters = RosterKeeper(
                self.store,
                config.roster_path,
                own_id=config.id,
                own_cert=self.identity.cert_der if self.identity else b"",
                own_spki=self.identity.spki if self.identity else b"",
            )
        except BaseException:
            self.store.close()
            raise
        self.app = NodeApp(config.id, self.store, trust or self.rosters)
        # Wake follow streams so they announce a newly adopted roster.
        self.rosters.on_adopt(lambda _: self.app.changes.notify())
        peers = [Peer(p.id, p.resolver(config.dir)) for p in config.peers]
        self.sync = SyncEngine(self.app, peers, client=self._client)
        self.gossip = RosterGossip(
            self.rosters,
            self.sync,
            own_id=config.id,
            poll_s=config.roster_poll_s,
            roster_peers=config.roster_peers,
        )
        self.address = ""
        self._server: grpc.aio.Server | None = None
        self._health = AioHealthServicer()

    async def start(self) -> str:
        server = grpc.aio.server(options=SERVER_OPTIONS)
        authorizer = Authorizer(None if self.identity is None else self.rosters.authorize)
        pb_grpc.add_NodeServiceServicer_to_server(
            NodeServicer(self.app, self._peers_status, rosters=self.rosters, authorizer=authorizer),
            server,
        )
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        reflection.enable_server_reflection(
            (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
        if self.identity is None:
            port = server.add_insecure_port(self.config.listen)
        else:
            creds = server_credentials(self.identity, self.rosters.trusted_certs)
            port = server.add_secure_port(self.config.listen, creds)
        if port == 0:
            raise ValidationError(f"cannot listen on {self.config.listen}")
        await server.start()
        self._server = server
        host = self.config.listen.rsplit(":", 1)[0]
        self.address = f"{host}:{port}"
        self.sync.start()
        self.gossip.start()
        await self._health.set(SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)
        await self._health.set("", health_pb2.HealthCheckResponse.SERVING)
        write_atomic(self.config.addr_file, self.address + "\n")
        log.info(
            "node %s listening on %s (%s, roster version %d)",
            self.config.id,
            self.address,
            "plaintext" if self.identity is None else "mutual TLS",
            self.rosters.version,
        )
        return self.address

    def _client(self, peer_id: str, address: str) -> NodeClient:
        """A client for a peer: mutual TLS trusting exactly its pinned certificate."""
        if self.identity is None:
            return NodeClient(address)
        member = self.rosters.roster.get(peer_id)
        if member is None or member.revoked or not member.tls_cert:
            raise PeerError(
                f"peer {peer_id} has no TLS certificate pinned in roster version "
                f"{self.rosters.version}"
            )
        return secure_client(address, self.identity, [member.tls_cert])

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
        await self.gossip.stop()
        await self.sync.stop()
        self.app.changes.close()  # end follow streams so in-flight calls can finish
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None
        self.store.close()

    async def wait(self) -> None:
        if self._server is not None:
            await self._server.wait_for_termination()


async def serve(directory: Path, *, parent_pid: int = 0, insecure: bool = False) -> None:
    """Run a node until SIGTERM/SIGINT (or, for launched meshes, until the
    launching process is gone, so a killed launcher leaves no orphans)."""
    import dataclasses
    import os
    import signal

    config = load_config(directory)
    if insecure:
        config = dataclasses.replace(config, insecure=True)
    node = Node(config)
    await node.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

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
