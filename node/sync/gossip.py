"""Evidence gossip: push every piece of fork evidence this node holds to every peer.

One task per configured peer. It pushes what the peer has not acknowledged
yet (``SubmitEvidence``), then sleeps until this node learns new evidence
(from its own ingest, a checkpoint check, a witness request, or a peer's
``SubmitEvidence``). Receivers verify the evidence themselves and gossip it
on only if it is new to them, so a flood ends after one pass over the mesh.
The acknowledged set lives in memory: after a restart everything is pushed
once more, which receivers answer with ``new = false``.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence

from node.app import NodeApp
from node.errors import NodeError, PeerError
from node.rpc.client import NodeClient
from node.sync.engine import BACKOFF_MAX_S, BACKOFF_MIN_S, ClientFactory, Peer, plaintext_client

log = logging.getLogger(__name__)


class EvidenceGossip:
    def __init__(
        self,
        app: NodeApp,
        peers: Sequence[Peer],
        *,
        client: ClientFactory = plaintext_client,
    ) -> None:
        self.app = app
        self.peers = list(peers)
        self.client = client
        self.pushed: dict[str, set[bytes]] = {p.id: set() for p in self.peers}
        self._tasks: list[asyncio.Task[None]] = []
        self._running = False

    def start(self) -> None:
        self._running = True
        for peer in self.peers:
            self._tasks.append(asyncio.create_task(self._run(peer), name=f"gossip:{peer.id}"))

    def add_peer(self, peer: Peer) -> None:
        """Gossip to one more peer (e.g. a member a new roster added)."""
        if peer.id in self.pushed:
            return
        self.peers.append(peer)
        self.pushed[peer.id] = set()
        if self._running:
            self._tasks.append(asyncio.create_task(self._run(peer), name=f"gossip:{peer.id}"))

    async def stop(self) -> None:
        self._running = False
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def _run(self, peer: Peer) -> None:
        signal = self.app.tlog.evidence_signal
        done = self.pushed[peer.id]
        backoff = BACKOFF_MIN_S
        while True:
            seen = signal.version
            pending = [e for e in self.app.tlog.evidence() if e.evidence_id not in done]
            address = peer.resolve() if pending else None
            if pending and not address:
                await asyncio.sleep(random.uniform(0, backoff))  # noqa: S311 - not crypto
                backoff = min(BACKOFF_MAX_S, backoff * 2)
                continue
            if pending and address:
                try:
                    async with self.client(peer.id, address) as client:
                        for stored in pending:
                            await self._push(client, peer, stored.evidence_id, stored.data)
                            done.add(stored.evidence_id)
                    backoff = BACKOFF_MIN_S
                except PeerError as exc:
                    log.info("evidence gossip to %s: %s; retrying", peer.id, exc)
                    await asyncio.sleep(random.uniform(0, backoff))  # noqa: S311 - not crypto
                    backoff = min(BACKOFF_MAX_S, backoff * 2)
                    continue
            await signal.wait_past(seen)

    async def _push(self, client: NodeClient, peer: Peer, evidence_id: bytes, data: bytes) -> None:
        try:
            response = await client.submit_evidence(data)
        except PeerError:
            raise
        except NodeError as exc:  # the peer judged it otherwise (e.g. another roster)
            log.warning("peer %s refused evidence %s: %s", peer.id, evidence_id.hex()[:16], exc)
            return
        if response.new:
            log.info("evidence %s pushed to %s", evidence_id.hex()[:16], peer.id)
