"""Roster gossip: fetch newer rosters from peers, push adopted ones to them.

- On every new connection to a peer (before pulling entries) and every
  ``poll_s`` seconds with a random peer, ask ``GetRoster(after=held)`` and
  offer what comes back to the keeper, which adopts it only if it chains.
- Every Pull response carries the server's roster version, and a follow
  stream announces a newly adopted roster at once: a puller that sees a
  newer version fetches it.
- When the keeper adopts a roster (from a peer, from ``OfferRoster`` or from
  the operator), offer the recent history to every peer at once. With the
  announcements above, a new roster floods the mesh in about its diameter
  whichever way the sync links point.
- With ``roster_peers``, members that list a node address in the roster are
  synced from too: a member added by roster N+1 is reached without editing
  anyone's config.

A peer that serves a roster that does not chain is logged; entry sync with
it goes on (the roster decides nothing about the relayer, only about the
entries it relays). A peer's claims of a newer roster trigger at most one
fetch per ``ROSTER_FETCH_MIN_S``, and a peer that claims a version it then
cannot serve (its GetRoster has nothing newer than ours) is refused as
misbehaving: the stream is closed and counted like a bad entry. The same
claim again (same version held here) is refused at once, without a fetch.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Coroutine
from typing import Any

from node.core.roster import SignedRoster
from node.errors import NodeError, PeerError, ValidationError
from node.rosters import RosterKeeper
from node.rpc import convert
from node.rpc._pb.consortium.v1 import node_pb2 as pb
from node.rpc.client import NodeClient
from node.sync.engine import Peer, SyncEngine

log = logging.getLogger(__name__)

#: How many recent versions a push carries, so a peer a few versions behind
#: can chain them; one further behind catches up with GetRoster.
PUSH_HISTORY = 8
MAX_FETCH_ROUNDS = 1000
#: A peer's Pull responses claiming a newer roster trigger at most one
#: GetRoster this often (a fetch on connecting is not limited).
ROSTER_FETCH_MIN_S = 1.0


class RosterGossip:
    def __init__(
        self,
        rosters: RosterKeeper,
        engine: SyncEngine,
        *,
        own_id: str,
        poll_s: float = 30.0,
        roster_peers: bool = True,
    ) -> None:
        self.rosters = rosters
        self.engine = engine
        self.own_id = own_id
        self.poll_s = poll_s
        self.roster_peers = roster_peers
        self._tasks: set[asyncio.Task[None]] = set()
        self._next_fetch: dict[str, float] = {}  # per peer: no claim-triggered fetch before
        #: Per peer, the (our version, its claim) it could not serve: the same
        #: claim again is refused without another fetch.
        self._unserved: dict[str, tuple[int, int]] = {}
        engine.on_connect = self.fetch_from
        engine.on_response = self._on_response
        rosters.on_adopt(self._adopted)

    def start(self) -> None:
        self._add_roster_peers()
        if self.poll_s > 0:
            self._spawn(self._poll(), "roster-poll")

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- pull ---------------------------------------------------------------

    async def fetch_from(self, peer_id: str, client: NodeClient) -> None:
        """Adopt whatever newer rosters the peer holds that chain from ours."""
        await self._fetch(peer_id, client)

    async def _fetch(self, peer_id: str, client: NodeClient) -> int | None:
        """:meth:`fetch_from`; the newest version the peer served (0 if it
        served none), or None if the fetch itself failed."""
        served = 0
        for _ in range(MAX_FETCH_ROUNDS):
            held = self.rosters.version
            try:
                response = await client.get_roster(held)
            except NodeError as exc:
                # Entry sync goes on: the roster decides about the entries a
                # peer relays, not about the relayer.
                log.info("roster fetch from %s: %s", peer_id, exc)
                return None
            if not response.rosters:
                return served
            try:
                chain = convert.rosters_from_pb(response.rosters)
                served = max(served, *(s.version for s in chain))
                update = self.rosters.offer(chain)
            except NodeError as exc:
                log.warning("roster from peer %s not adopted: %s", peer_id, exc)
                return served
            if not update.adopted or update.refused or response.version <= self.rosters.version:
                return served
        return served

    async def _on_response(
        self, peer_id: str, client: NodeClient, response: pb.PullResponse
    ) -> None:
        # Pull responses carry the server's roster version (a follow stream
        # announces a new one at once): fetch when the peer is ahead, at most
        # once per ROSTER_FETCH_MIN_S.
        claimed = response.roster_version
        held = self.rosters.version
        if claimed <= held:
            return
        unserved = self._unserved.get(peer_id)
        if unserved is not None and unserved == (held, claimed):
            # It made this claim before and could not serve it: no new fetch.
            raise _claim_error(peer_id, claimed, held)
        now = time.monotonic()
        if now < self._next_fetch.get(peer_id, 0.0):
            return
        self._next_fetch[peer_id] = now + ROSTER_FETCH_MIN_S
        served = await self._fetch(peer_id, client)
        if served is not None and served <= held and claimed > self.rosters.version:
            self._unserved[peer_id] = (held, claimed)
            raise _claim_error(peer_id, claimed, held)
        self._unserved.pop(peer_id, None)

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_s * random.uniform(0.5, 1.5))  # noqa: S311
            peers = [p for p in self.engine.peers if p.resolve()]
            if not peers:
                continue
            peer = random.choice(peers)  # noqa: S311 - not crypto
            address = peer.resolve()
            if not address:
                continue
            try:
                async with self.engine.client(peer.id, address) as client:
                    await self.fetch_from(peer.id, client)
            except PeerError as exc:
                log.info("roster poll of %s: %s", peer.id, exc)

    # -- push ---------------------------------------------------------------

    def _adopted(self, signed: SignedRoster) -> None:
        self._add_roster_peers()
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return  # adopted outside the event loop (start-up): peers fetch it
        chain = self.rosters.history_after(max(0, signed.version - PUSH_HISTORY))
        for peer in self.engine.peers:
            address = peer.resolve()
            if address:
                self._spawn(self._push(peer, address, chain), f"roster-push:{peer.id}")

    async def _push(self, peer: Peer, address: str, chain: list[SignedRoster]) -> None:
        try:
            async with self.engine.client(peer.id, address) as client:
                response = await client.offer_roster(chain)
            if response.refused:
                log.info("peer %s stopped short of our roster: %s", peer.id, response.refused)
        except NodeError as exc:
            log.info("roster push to %s: %s", peer.id, exc)

    # -- peers from the roster ----------------------------------------------

    def _add_roster_peers(self) -> None:
        if not self.roster_peers:
            return
        for member in self.rosters.roster.members:
            if member.id == self.own_id or not member.address or member.revoked:
                continue
            self.engine.add_peer(Peer(member.id, self._resolver(member.id)))

    def _resolver(self, member_id: str) -> Callable[[], str | None]:
        def resolve() -> str | None:
            member = self.rosters.roster.get(member_id)
            if member is None or member.revoked:
                return None
            return member.address or None

        return resolve


def _claim_error(peer_id: str, claimed: int, held: int) -> ValidationError:
    return ValidationError(
        f"peer {peer_id} claims roster version {claimed} but serves none newer than {held}"
    )
