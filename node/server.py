"""Wire core, store, rpc and sync into a running node.

The node's trust view is its roster (``node/rosters.py``): it verifies
entries, pins the TLS certificates peers and clients present, names the
witnesses and the witness threshold of the transparency log, and lists the
members whose node addresses are synced from.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer as AioHealthServicer
from grpc_reflection.v1alpha import reflection

from node.accountability import POLICY_FILE
from node.alerts import IncidentFeed
from node.app import NodeApp
from node.backup import RESTORED_MARKER
from node.config import NodeConfig, load_config, write_atomic
from node.core.roster import SignedRoster
from node.core.tlog import TlogPolicy, roster_policy
from node.core.tlscert import TlsIdentity
from node.core.trust import TrustView
from node.dirlock import DirLock
from node.errors import NodeError, PeerError, ValidationError
from node.httpapi.keys import is_loopback_host
from node.logs import json_line
from node.match.negative import NEVER_MATCH_FILE
from node.metrics import NodeMetrics, Snapshot, take_snapshot
from node.resolutions import ForkResolutions
from node.rosters import RosterKeeper
from node.rpc._pb.consortium.v1 import node_pb2 as pb
from node.rpc._pb.consortium.v1 import node_pb2_grpc as pb_grpc
from node.rpc.client import SERVER_OPTIONS, NodeClient
from node.rpc.service import CorruptRequests, NodeServicer
from node.rpc.tls import Authorizer, secure_client, server_credentials
from node.store.lmdb_store import LmdbStore
from node.store.matchlog import MATCHLOG_DIR, MatchLog
from node.sync.engine import Peer, SyncEngine
from node.sync.gossip import EvidenceGossip
from node.sync.roster_gossip import RosterGossip
from node.sync.witness import WitnessSubmitter
from node.webhook import Webhook

if TYPE_CHECKING:
    from node.httpapi.server import HttpApi

log = logging.getLogger(__name__)

HEALTH_INTERVAL_S = 1.0  # how often health re-checks the store
SWITCH_INTERVAL_S = 0.0002  # see serve(): Match answers stay prompt beside GIL-bound threads
HTTP_ADDR_FILE = "http.addr"  # written while the HTTP API listens: its address
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["NodeService"].full_name


class Node:
    """A running node: ``await node.start()`` ... ``await node.stop()``."""

    def __init__(
        self,
        config: NodeConfig,
        *,
        trust: TrustView | None = None,
        anti_entropy_s: float | None = None,
    ) -> None:
        self.config = config
        if config.key_only:
            raise ValidationError(
                f"{config.dir} is a key-only member directory: it submits to other nodes "
                "and has no node to serve"
            )
        host = config.listen.rsplit(":", 1)[0]
        if config.insecure and not is_loopback_host(host):
            raise ValidationError(
                f"listen {config.listen!r}: plaintext (insecure) serving is for local "
                "development and binds to loopback only; drop --insecure to use mutual TLS"
            )
        # One process per directory, decided by the lock (node/dirlock.py), taken
        # before the store opens; stop() releases it, as does any exit.
        self._lock = DirLock.acquire(config.dir, f"serve {config.dir}")
        try:
            self._assemble(config, trust, anti_entropy_s)
        except BaseException:
            self._lock.release()
            raise

    def _assemble(
        self, config: NodeConfig, trust: TrustView | None, anti_entropy_s: float | None
    ) -> None:
        self.identity: TlsIdentity | None = None if config.insecure else config.tls_identity()
        # A replica signs nothing (docs/operators.md, *Match replicas*): no key.
        checkpoint_key = None if config.replica else config.checkpoint_key()
        self.store = LmdbStore(
            config.data_dir,
            map_size=config.lmdb_map_size_mib << 20,
            max_map_size=config.lmdb_map_max_mib << 20,
        )
        try:
            self.rosters = RosterKeeper(
                self.store,
                config.roster_path,
                own_id=config.id,
                own_cert=self.identity.cert_der if self.identity else b"",
                own_spki=self.identity.spki if self.identity else b"",
            )
            self.matchlog = MatchLog(config.dir / MATCHLOG_DIR)
        except BaseException:
            self.store.close()
            raise
        try:
            self.app = NodeApp(
                config.id,
                self.store,
                trust or self.rosters,
                tlog_policy=self._tlog_policy(),
                checkpoint_key=checkpoint_key,
                policy_path=config.dir / POLICY_FILE,
                negative_path=config.dir / NEVER_MATCH_FILE,
                matchlog=self.matchlog,
                restored_marker=None if config.replica else config.dir / RESTORED_MARKER,
                former_key=None if trust is not None else self.rosters.former_key,
            )
        except BaseException:
            self.store.close()
            self.matchlog.close()
            raise
        self.incidents = IncidentFeed(self.app)
        self.webhook: Webhook | None = None
        if config.webhook.url and not config.replica:
            try:
                self.webhook = Webhook(config.webhook, config.dir, config.id)
            except BaseException:
                self.app.close()
                self.store.close()
                self.matchlog.close()
                raise
            self.incidents.add_sink(self.webhook.notify)
        self.resolutions = ForkResolutions(self.app)
        self.resolutions.apply()  # what a roster adopted while stopped resolved
        peers = [Peer(p.id, p.resolver(config.dir)) for p in config.peers]
        if config.replica:
            # Its one peer: its own member's node, reached under the member's
            # identity (the primary authorizes it as its own operator).
            primary = config.replica_of
            peers = [Peer(config.id, lambda: primary)]
        self.sync = SyncEngine(
            self.app,
            peers,
            anti_entropy_s=config.anti_entropy_s if anti_entropy_s is None else anti_entropy_s,
            client=self._client,
        )
        self.gossip = EvidenceGossip(self.app, peers, client=self._client)
        self.sync.peer_listeners.append(self.gossip.add_peer)
        self.witness = WitnessSubmitter(self.app, self._resolve_member, client=self._client)
        self.roster_gossip = RosterGossip(
            self.rosters,
            self.sync,
            own_id=config.id,
            poll_s=config.roster_poll_s,
            roster_peers=config.roster_peers and not config.replica,
        )
        self.rosters.on_adopt(self._roster_adopted)
        self.address = ""
        self._server: grpc.aio.Server | None = None
        self._health_server: grpc.aio.Server | None = None
        self.health_address = ""
        self._health = AioHealthServicer()
        self.http: HttpApi | None = None
        self.http_address = ""
        self.metrics = NodeMetrics(config.id, withholding_after_s=config.withholding_after_s)
        self.app.observer = self.metrics
        #: Start-up work (index builds, roster load) run after the port opens and
        #: before health says SERVING; append coroutine functions before start().
        self.startup: list[Callable[[], Awaitable[None]]] = [
            self._check_store,
            self._build_index,
        ]
        self.ready = False
        self.alive = False
        self._watch: asyncio.Task[None] | None = None

    async def start(self) -> str:
        server = grpc.aio.server(options=SERVER_OPTIONS, interceptors=[CorruptRequests()])
        authorizer = Authorizer(None if self.identity is None else self.rosters.authorize)
        pb_grpc.add_NodeServiceServicer_to_server(
            NodeServicer(
                self.app,
                self._peers_status,
                rosters=self.rosters,
                authorizer=authorizer,
                incidents=self.incidents,
                replica_of=self.config.replica_of,
            ),
            server,
        )
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        reflection.enable_server_reflection(
            (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
        await self._set_health(False)  # NOT_SERVING until start-up work is done
        if self.identity is None:
            port = server.add_insecure_port(self.config.listen)
        else:
            creds = server_credentials(self.identity, self.rosters.trusted_certs)
            port = server.add_secure_port(self.config.listen, creds)
        if port == 0:
            raise ValidationError(f"cannot listen on {self.config.listen}")
        await server.start()
        self._server = server
        if self.config.health_listen:
            try:
                await self._serve_health(self.config.health_listen)
            except BaseException:
                await self.stop(grace=0)
                raise
        if self.config.http_listen:
            try:
                await self._serve_http()
            except BaseException:
                await self.stop(grace=0)
                raise
        host = self.config.listen.rsplit(":", 1)[0]
        self.address = f"{host}:{port}"
        self.metrics.bind(self._snapshot, asyncio.get_running_loop())
        if self.config.metrics_listen:
            self.metrics.serve(self.config.metrics_listen)
        write_atomic(self.config.addr_file, self.address + "\n")
        log.info(
            "node %s listening on %s (%s, roster version %d); starting up",
            self.config.id,
            self.address,
            "plaintext" if self.identity is None else "mutual TLS",
            self.rosters.version,
        )
        try:
            for task in self.startup:
                await task()
        except BaseException:
            await self.stop(grace=0)
            raise
        self.sync.start()
        if not self.config.replica:  # a replica relays, cosigns and gossips nothing
            self.gossip.start()
            self.witness.start()
        self.roster_gossip.start()
        if self.webhook is not None:
            self.webhook.start()
        self._watch = asyncio.create_task(self._watch_store(), name="health:store")
        await self._set_health(self._healthy(), self._store_healthy())
        log.info("node %s ready", self.config.id)
        return self.address

    async def _serve_health(self, listen: str) -> None:
        """The health service alone, in plaintext: Kubernetes' native gRPC
        probes speak no TLS. It says SERVING or NOT_SERVING, nothing else."""
        server = grpc.aio.server(options=SERVER_OPTIONS)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        port = server.add_insecure_port(listen)
        if port == 0:
            raise ValidationError(f"cannot listen on {listen} (health_listen)")
        await server.start()
        self._health_server = server
        self.health_address = f"{listen.rsplit(':', 1)[0]}:{port}"

    async def _serve_http(self) -> None:
        """The HTTP API (docs/http.md) on its own port, on this loop, over
        this node's indexes; answers 503 to matching until the node is ready."""
        from node.httpapi.server import HttpApi

        self.http = HttpApi(
            self.app,
            self.config,
            rosters=None if self.identity is None else self.rosters,
            ready=lambda: self.ready,
            replica_lag=self.replica_lag,
            observe=self.metrics.http_request,
        )
        self.http_address = await self.http.start()
        write_atomic(self.config.dir / HTTP_ADDR_FILE, self.http_address + "\n")

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

    def _tlog_policy(self) -> TlogPolicy:
        """Witnesses and their threshold: the roster's (docs/transparency.md)."""
        return roster_policy(self.rosters.roster, self.config.tlog.withholding_grace_ms)

    def _roster_adopted(self, signed: SignedRoster) -> None:
        # Wake follow streams so they announce the new roster, and follow its
        # witness set (who cosigns, how many settle) and checkpoint keys.
        applied = self.resolutions.apply()  # its fork resolutions, if any
        if any(a.voided for a in applied):
            self.sync.resync_soon()  # fetch the canonical branch at once
        self.app.tlog.reconfigure(self._tlog_policy())
        self.witness.refresh()
        if self.http is not None:
            self.http.refresh_trust()  # the new roster's client certificates
        self.app.changes.notify()

    async def _build_index(self) -> None:
        """Load the PDQ, frame and audio indexes from LMDB off the event loop (health stays
        NOT_SERVING meanwhile; commits that land during it are queued)."""
        n = await asyncio.to_thread(self.app.matcher.build, lambda line: log.info("%s", line))
        log.info("PDQ index ready: %d hashes", n)
        n = await asyncio.to_thread(self.app.frames.build, lambda line: log.info("%s", line))
        log.info("frame index ready: %d video segments", n)
        n = await asyncio.to_thread(self.app.audio.build, lambda line: log.info("%s", line))
        log.info("audio index ready: %d soundtrack segments", n)

    async def _check_store(self) -> None:
        self.store.check()

    def _store_healthy(self) -> bool:
        try:
            self.store.check()
        except NodeError as exc:
            log.error("store unhealthy: %s", exc)
            return False
        return not self.store.write_error

    async def _set_health(self, serving: bool, alive: bool | None = None) -> None:
        """``serving``: NodeService (readiness). ``alive``: the overall
        service "" (liveness), if it differs: a replica that lags its
        primary is not ready, but restarting it would not help."""
        self.ready = serving
        self.alive = serving if alive is None else alive

        def status(ok: bool) -> health_pb2.HealthCheckResponse.ServingStatus.ValueType:
            return (
                health_pb2.HealthCheckResponse.SERVING
                if ok
                else health_pb2.HealthCheckResponse.NOT_SERVING
            )

        await self._health.set(SERVICE_NAME, status(serving))
        await self._health.set("", status(self.alive))

    def replica_lag(self) -> int | None:
        """A replica's lag: the primary's entries it lacks, or None before the
        primary has told it what it holds (a replica never caught up)."""
        state = self.sync.states.get(self.config.id)
        if not self.config.replica or state is None or not state.responses:
            return None
        return state.lag({o: h.next_seq for o, h in self.app.heads().items()})

    def _replica_ready(self) -> bool:
        """Caught up: the primary's frontier heard, and at most
        ``replica_max_lag`` of its entries missing."""
        if not self.config.replica:
            return True
        lag = self.replica_lag()
        return lag is not None and lag <= self.config.replica_max_lag

    def _healthy(self) -> bool:
        return self._store_healthy() and self._replica_ready()

    async def _watch_store(self) -> None:
        """Health follows the store: NOT_SERVING while it fails or refuses
        writes; on a replica, also while it lags its primary beyond the bound."""
        while True:
            await asyncio.sleep(HEALTH_INTERVAL_S)
            alive = self._store_healthy()
            healthy = alive and self._replica_ready()
            if healthy is not self.ready:
                lag = self.replica_lag()
                shown = "unknown: no word from the primary" if lag is None else f"{lag} entries"
                behind = f" (replica lag: {shown})" if self.config.replica else ""
                log.warning("health: %s%s", "SERVING" if healthy else "NOT_SERVING", behind)
            if healthy is not self.ready or alive is not self.alive:
                await self._set_health(healthy, alive)

    def _snapshot(self) -> Snapshot:
        return take_snapshot(self.config.id, self.store, self.sync.states.values(), self.ready)

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
                withholding=self.app.tlog.is_withholding(s.id),
                duplicates=s.duplicates,
                responses=s.responses,
            )
            for s in self.sync.states.values()
        ]

    def _resolve_member(self, member_id: str) -> str | None:
        """A member's node address: its peer entry here, else the roster."""
        for p in self.config.peers:
            if p.id == member_id:
                return p.resolver(self.config.dir)()  # type: ignore[no-any-return]
        try:
            return self.app.trust.member(member_id).address or None
        except NodeError:
            return None

    async def stop(self, grace: float | None = None) -> None:
        """Stop accepting, finish in-flight calls, stop sync, close LMDB."""
        self.ready = False
        await self._health.enter_graceful_shutdown()
        self.config.addr_file.unlink(missing_ok=True)
        if self._watch is not None:
            self._watch.cancel()
            await asyncio.gather(self._watch, return_exceptions=True)
            self._watch = None
        await self.roster_gossip.stop()
        await self.sync.stop()
        await self.gossip.stop()
        await self.witness.stop()
        self.app.changes.close()  # end follow streams so in-flight calls can finish
        self.incidents.close()  # and WatchIncidents streams
        if self._server is not None:
            # New calls are refused at once; in-flight ones (a Submit is one
            # LMDB transaction) get the grace period to finish.
            await self._server.stop(self.config.shutdown_grace_s if grace is None else grace)
            self._server = None
        if self._health_server is not None:
            await self._health_server.stop(0)
            self._health_server = None
        if self.http is not None:
            (self.config.dir / HTTP_ADDR_FILE).unlink(missing_ok=True)
            await self.http.stop()
            self.http = None
        self.metrics.stop()
        if self.webhook is not None:
            await self.webhook.stop()
        self.app.close()
        self.store.close()
        self.matchlog.close()
        self._lock.release()

    def reload_policy(self) -> None:
        """SIGHUP: re-read DIR/policy.toml and DIR/never_match.txt; a bad
        file keeps the current policy and list."""
        try:
            policy, bank = self.app.reload()
        except NodeError as exc:
            log.error("policy not reloaded, keeping the current one: %s", exc)
            return
        log.warning(
            "policy reloaded from %s (%d rules); never-match list: %d hashes",
            policy.source,
            len(policy.rules),
            len(bank),
        )

    async def wait(self) -> None:
        if self._server is not None:
            await self._server.wait_for_termination()


def serve_config(directory: Path, **overrides: Any) -> NodeConfig:
    """config.toml, then the environment, then command-line overrides."""
    import os

    from node.config import apply_env, with_overrides

    return with_overrides(apply_env(load_config(directory), os.environ), **overrides)


async def serve(directory: Path, *, parent_pid: int = 0, config: NodeConfig | None = None) -> None:
    """Run a node until SIGTERM/SIGINT (or, for launched meshes, until the
    launching process is gone, so a killed launcher leaves no orphans)."""
    import sys as _sys

    # Decoding, the LMDB writer and the event loop all want the GIL during a
    # catch-up; with the default 5 ms switch interval a Match waits behind
    # them. Measured (200k-entry catch-up): 0.2 ms keeps Match p99 at ~22 ms
    # against ~37 ms, for ~2% less throughput (docs/benchmarks.md).
    _sys.setswitchinterval(SWITCH_INTERVAL_S)
    import os
    import signal

    config = config or load_config(directory)
    if not config.key_only:  # (a key-only directory: Node says why it cannot serve)
        for warning in config.preflight():  # what `ccnode check-config` checks
            log.warning("%s", warning)
    node = Node(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(sig: signal.Signals) -> None:
        log.info("%s: shutting down gracefully", sig.name)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    loop.add_signal_handler(signal.SIGHUP, node.reload_policy)
    await node.start()

    async def watch_parent() -> None:
        while os.getppid() == parent_pid:  # noqa: ASYNC110 - polling another process
            await asyncio.sleep(0.5)
        log.warning("launcher %d is gone; shutting down", parent_pid)
        stop.set()

    watcher = asyncio.create_task(watch_parent()) if parent_pid else None
    metrics = f"; metrics on http://{node.metrics.address}/metrics" if node.metrics.address else ""
    if node.http is not None:
        scheme = "https" if node.config.http_mutual_tls else "http"
        metrics += f"; HTTP API on {scheme}://{node.http_address}"
    ready = f"{node.config.id} serving on {node.address}{metrics}"
    if node.config.log_json:
        print(json_line(__name__, logging.INFO, ready), flush=True)
    else:
        print(f"ccnode: {ready}", flush=True)
    await stop.wait()
    if watcher is not None:
        watcher.cancel()
    await node.stop()
    log.info("node %s stopped; store closed", node.config.id)
