"""The federation engine: keep a follow stream open to every peer.

For each configured peer the engine holds one ``Pull(follow=true)`` stream
that starts from this node's own frontier. Every received entry is decoded
and verified against its *origin's* key (the relaying peer is not trusted,
the signature is), then committed together with the peer's cursor in one
LMDB transaction. What this node commits, its own ``Pull`` streams serve to
its peers, so entries flood the mesh byte for byte.

A peer that sends garbage or forged entries is disconnected and counted; a
peer that is down is retried with jittered exponential backoff. No peer can
block another: each has its own task.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from node.app import NodeApp, now_ms
from node.errors import NodeError, PeerError, ProvenanceError, ValidationError
from node.rpc import convert
from node.rpc.client import NodeClient

log = logging.getLogger(__name__)

BACKOFF_MIN_S = 0.05
BACKOFF_MAX_S = 5.0


@dataclass(frozen=True, slots=True)
class Peer:
    id: str
    resolve: Callable[[], str | None]  # the peer's current address, if known


@dataclass(slots=True)
class PeerState:
    id: str
    address: str = ""
    state: str = "connecting"
    received: int = 0
    refused: int = 0
    last_error: str = ""
    last_received_ms: int = 0
    frontier: dict[str, int] = field(default_factory=dict)

    def lag(self, heads: dict[str, int]) -> int:
        return sum(max(0, n - heads.get(o, 0)) for o, n in self.frontier.items())


class SyncEngine:
    def __init__(self, app: NodeApp, peers: Sequence[Peer]) -> None:
        self.app = app
        self.peers = list(peers)
        self.states = {p.id: PeerState(p.id) for p in self.peers}
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        for peer in self.peers:
            self._tasks.append(asyncio.create_task(self._run(peer), name=f"sync:{peer.id}"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def _run(self, peer: Peer) -> None:
        state = self.states[peer.id]
        backoff = BACKOFF_MIN_S
        while True:
            address = peer.resolve()
            if address:
                state.address = address
                state.state = "connecting"
                try:
                    async for _ in self._stream(peer, address, state):
                        backoff = BACKOFF_MIN_S  # made progress: reset
                    state.last_error = "stream ended"
                except PeerError as exc:
                    state.last_error = str(exc)
                except (ValidationError, ProvenanceError) as exc:
                    state.refused += 1
                    state.last_error = f"refused: {exc}"
                    log.warning("peer %s sent a bad entry; disconnecting: %s", peer.id, exc)
            state.state = "backoff"
            # Full jitter, so a mesh restarting at once does not reconnect in step.
            await asyncio.sleep(random.uniform(0, backoff))  # noqa: S311 - not crypto
            backoff = min(BACKOFF_MAX_S, backoff * 2)

    async def _stream(self, peer: Peer, address: str, state: PeerState):  # type: ignore[no-untyped-def]
        cursors = {o: h.next_seq for o, h in self.app.heads().items()}
        async with NodeClient(address) as client:
            async for response in client.pull(cursors, follow=True):
                state.state = "streaming"
                state.frontier = dict(response.frontier.sizes)
                if response.entries:
                    self._accept(peer, state, response.entries)
                # Check the batch against the peer's signed roots (never fatal to
                # the stream: a bad checkpoint becomes an alert), and watch for
                # a peer that stays behind what witnesses cosigned.
                self.app.tlog.receive_checkpoints(peer.id, response.checkpoints)
                self.app.tlog.observe_frontier(peer.id, state.frontier)
                yield None

    def _accept(self, peer: Peer, state: PeerState, msgs: Sequence[object]) -> None:
        entries = convert.entries_from_pb(msgs)  # type: ignore[arg-type]
        for i, error in enumerate(self.app.verify(entries)):
            if error is not None:
                raise type(error)(f"entry {i + 1} of {len(entries)}: {error}")
        result = self.app.ingest_from_peer(peer.id, entries)
        state.received += len(result.accepted)
        state.last_received_ms = now_ms()
        for index, error in result.errors:
            if not isinstance(error, NodeError):
                continue
            state.last_error = f"entry {index + 1}: {error}"
            log.warning("from peer %s: %s", peer.id, error)
