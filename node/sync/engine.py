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

Connections (follow streams and anti-entropy rounds alike) come from the
``client`` factory: mutual TLS pinned to the peer's roster certificate on a
real node, plaintext on an ``insecure`` development node. Roster gossip
hooks in with ``on_connect`` (each new follow stream) and ``on_response``
(each Pull response, before its entries are verified, so a newer roster
that adds their origin is adopted first).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from node.app import NodeApp, now_ms
from node.core.entry import SignedEntry
from node.core.roster import is_revoked_refusal
from node.errors import (
    NodeError,
    OrderingError,
    PeerError,
    ProvenanceError,
    StorageError,
    ValidationError,
)
from node.rpc import convert
from node.rpc._pb.consortium.v1 import node_pb2 as pb
from node.rpc.client import NodeClient

log = logging.getLogger(__name__)

BACKOFF_MIN_S = 0.05
BACKOFF_MAX_S = 5.0
ANTI_ENTROPY_S = 5.0
CATCH_UP_LOG_S = 5.0  # a catch-up progress line this often ...
CATCH_UP_MIN = 1000  # ... while at least this many entries are coming or due
VERIFY_DEPTH = 3  # batches whose signatures are checked at once (keeps worker cores busy)
#: Verified entries that wait to be committed together while the writer is
#: busy with the previous commit. One large transaction costs the store's
#: random-key indexes (ids, hashes) far less per entry than several small
#: ones: 59 against 87 us an entry at 1M entries (scripts/bench/ingest.py).
COMMIT_MAX = 8192
RECEIVE_BUFFER = 4  # responses held per peer: bounded, so a fast peer cannot flood memory
#: Responses of at most this many entries are decoded and verified on the
#: event loop (live traffic: a few entries, ~80 us each); larger ones (catch-up)
#: off it, so Match answers never wait behind them.
INLINE_MAX = 4
PULL_BATCH = 1024  # entries per response: fewer, larger commits during catch-up
#: A peer that sends this many duplicate entries in a row, and nothing new, is
#: cut off and held off (docs/federation.md, *Duplicates*): a correct stream
#: sends each entry once from this node's cursors, so a long run of entries
#: it already holds is a broken or rogue peer, or a stream that fell behind
#: another peer's (reopening it from this node's heads cures that).
DUPLICATES_MAX = 20_000
DUPLICATE_BACKOFF_S = 30.0  # the first hold-off; doubled for each repeat ...
DUPLICATE_BACKOFF_MAX_S = 600.0  # ... up to this, until the peer sends something new
#: Lags are reported as uint64 (PeerStatus.lag_entries): a frontier may claim
#: anything, so the sum saturates here.
LAG_MAX = 2**64 - 1


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
    duplicates: int = 0
    responses: int = 0  # Pull responses received (anti-entropy rounds included)
    catch_up: int = 0  # entries received since this catch-up began (progress lines)
    catch_up_since: float = 0.0
    catch_up_logged: float = 0.0
    last_error: str = ""
    last_received_ms: int = 0
    frontier: dict[str, int] = field(default_factory=dict)
    behind_since_ms: int = 0  # when this node last fell behind the peer; 0: caught up
    withheld: int = 0  # authentic entries the roster does not allow (not the peer's fault)
    duplicate_run: int = 0  # duplicates since the peer last sent something new
    held_off: int = 0  # hold-offs for duplicates since the peer last sent something new

    def lag(self, heads: dict[str, int]) -> int:
        """Entries the peer advertises that this node lacks (at most LAG_MAX)."""
        return min(LAG_MAX, sum(max(0, n - heads.get(o, 0)) for o, n in self.frontier.items()))

    def lag_seconds(self, now: int) -> float:
        """How long the peer has advertised entries this node lacks."""
        return max(0, now - self.behind_since_ms) / 1000 if self.behind_since_ms else 0.0

    def note_lag(self, heads: dict[str, int], now: int) -> None:
        if not self.lag(heads):
            self.behind_since_ms = 0
        elif not self.behind_since_ms:
            self.behind_since_ms = now


#: Makes the client for a peer (mutual TLS pinned to the roster, or plaintext).
ClientFactory = Callable[[str, str], NodeClient]
#: Called with each new connection before pulling (roster gossip uses it).
OnConnect = Callable[[str, NodeClient], Awaitable[None]]
#: Called with each Pull response before its entries are verified.
OnResponse = Callable[[str, NodeClient, pb.PullResponse], Awaitable[None]]


def plaintext_client(peer_id: str, address: str) -> NodeClient:
    """The client factory of a plaintext (``insecure``) development node."""
    return NodeClient(address)


class DuplicateFlood(PeerError):
    """A peer sent a long run of duplicates and nothing new: hold it off."""


class SyncEngine:
    #: The duplicates rule (class attributes so a test may lower them).
    duplicates_max = DUPLICATES_MAX
    duplicate_backoff_s = DUPLICATE_BACKOFF_S

    def __init__(
        self,
        app: NodeApp,
        peers: Sequence[Peer],
        *,
        anti_entropy_s: float = ANTI_ENTROPY_S,
        client: ClientFactory = plaintext_client,
        on_connect: OnConnect | None = None,
        on_response: OnResponse | None = None,
    ) -> None:
        self.app = app
        self.peers = list(peers)
        self.states = {p.id: PeerState(p.id) for p in self.peers}
        self.anti_entropy_s = anti_entropy_s
        self.anti_entropy_rounds = 0
        self.client = client
        self.on_connect = on_connect
        self.on_response = on_response
        #: Called with each peer added while running (evidence gossip follows).
        self.peer_listeners: list[Callable[[Peer], None]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._running = False

    def start(self) -> None:
        self._running = True
        for peer in self.peers:
            self._tasks.append(asyncio.create_task(self._run(peer), name=f"sync:{peer.id}"))
        if self.anti_entropy_s > 0:  # peers may come later, from the roster
            self._tasks.append(asyncio.create_task(self._anti_entropy(), name="anti-entropy"))

    async def _anti_entropy(self) -> None:
        """Every interval, pull what a random peer has and we lack.

        The follow streams normally deliver everything at once; this is the
        safety net for what a broken stream, a restart or a partition missed.
        """
        while True:
            await asyncio.sleep(self.anti_entropy_s * random.uniform(0.5, 1.5))  # noqa: S311
            if not self.peers:
                continue
            peer = random.choice(self.peers)  # noqa: S311 - not crypto
            address = peer.resolve()
            if address and self.states[peer.id].state != "held-off":
                await self.round_with(peer, address)

    def resync_soon(self) -> None:
        """One anti-entropy round with every peer, now: after this node's own
        log lost entries (a roster's fork resolution voided a branch), its
        follow streams' senders still think it holds them."""
        if not self._running:
            return

        async def rounds() -> None:
            for peer in list(self.peers):
                address = peer.resolve()
                if address:
                    await self.round_with(peer, address)

        self._tasks = [t for t in self._tasks if not t.done()]
        self._tasks.append(asyncio.create_task(rounds(), name="resync"))

    async def round_with(self, peer: Peer, address: str) -> int:
        """One anti-entropy round: a bounded, non-follow Pull from our frontier."""
        state = self.states[peer.id]
        cursors = {o: h.next_seq for o, h in self.app.heads().items()}
        before = state.received
        held_back: dict[str, int] = {}
        try:
            async with self.client(peer.id, address) as client:
                async for response in client.pull(cursors, follow=False):
                    if self.on_response is not None:
                        await self.on_response(peer.id, client, response)
                    state.frontier = dict(response.frontier.sizes)
                    state.responses += 1
                    self.app.heard_from(peer.id, state.frontier)
                    await self._accept(peer, state, response, held_back)
        except PeerError as exc:
            state.last_error = f"anti-entropy: {exc}"
        except (ValidationError, ProvenanceError) as exc:
            state.refused += 1
            state.last_error = f"anti-entropy refused: {exc}"
        except StorageError as exc:  # e.g. map full: keep serving, retry later
            state.last_error = f"anti-entropy: {exc}"
        self.anti_entropy_rounds += 1
        return state.received - before

    def add_peer(self, peer: Peer) -> None:
        """Sync from one more peer (e.g. a member a new roster added)."""
        if peer.id in self.states:
            return
        self.peers.append(peer)
        self.states[peer.id] = PeerState(peer.id)
        if self._running:
            self._tasks.append(asyncio.create_task(self._run(peer), name=f"sync:{peer.id}"))
        for listener in self.peer_listeners:
            listener(peer)

    async def stop(self) -> None:
        self._running = False
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
                except DuplicateFlood as exc:
                    state.last_error = str(exc)
                    state.state = "held-off"
                    log.warning("%s", exc)
                    await asyncio.sleep(self._hold_off(state))
                    continue
                except PeerError as exc:
                    state.last_error = str(exc)
                except StorageError as exc:  # e.g. map full: keep serving, retry later
                    state.last_error = f"local store: {exc}"
                except (ValidationError, ProvenanceError) as exc:
                    if is_revoked_refusal(self.app.node_id, str(exc)):
                        # Not a bad entry: the peer refuses us (status alerts on it).
                        state.last_error = str(exc)
                        log.warning("peer %s refuses this member as revoked: %s", peer.id, exc)
                    else:
                        self.app.observer.refused("peer", exc)
                        state.refused += 1
                        state.last_error = f"refused: {exc}"
                        log.warning("peer %s sent a bad entry; disconnecting: %s", peer.id, exc)
            state.state = "backoff"
            # Full jitter, so a mesh restarting at once does not reconnect in step.
            await asyncio.sleep(random.uniform(0, backoff))  # noqa: S311 - not crypto
            backoff = min(BACKOFF_MAX_S, backoff * 2)

    async def _stream(self, peer: Peer, address: str, state: PeerState) -> AsyncIterator[None]:
        """Receive, verify and commit, pipelined: a reader task keeps up to
        ``RECEIVE_BUFFER`` responses in hand (so the peer prepares the next
        batch while this node verifies), batch k+1 is decoded and verified
        while batch k commits, and commits stay in order (one writer).
        Batches verified while the writer is busy are committed together."""
        cursors = {o: h.next_seq for o, h in self.app.heads().items()}
        committing: asyncio.Future[None] | None = None
        reader: asyncio.Task[None] | None = None
        preparing: deque[tuple[asyncio.Future[list[SignedEntry]], pb.PullResponse]] = deque()
        held_back: dict[str, int] = {}  # origins whose next entry the roster does not allow
        try:
            async with self.client(peer.id, address) as client:
                if self.on_connect is not None:
                    await self.on_connect(peer.id, client)  # roster gossip
                    cursors = {o: h.next_seq for o, h in self.app.heads().items()}
                inbox: asyncio.Queue[pb.PullResponse | _End] = asyncio.Queue(RECEIVE_BUFFER)

                async def read() -> None:
                    error: Exception | None = None
                    try:
                        async for r in client.pull(cursors, follow=True, max_batch=PULL_BATCH):
                            await inbox.put(r)
                    except Exception as exc:  # noqa: BLE001 - handed to the consumer below
                        error = exc
                    await inbox.put(_End(error))

                reader = asyncio.ensure_future(read())

                held: list[SignedEntry] = []  # verified, waiting for the writer
                held_checkpoints: list[str] = []

                async def commit_held() -> None:
                    """Wait for the previous commit, then hand what is held to the writer."""
                    nonlocal committing
                    if committing is not None:
                        await committing
                        committing = None
                    entries, checkpoints = held[:], held_checkpoints[:]
                    held.clear()
                    held_checkpoints.clear()
                    if entries:
                        # Checkpoints are checked against the stored tree in
                        # the same writer job as the entries they came with.
                        committing = asyncio.ensure_future(
                            self._commit(peer, state, entries, checkpoints)
                        )
                    elif checkpoints:
                        committing = asyncio.ensure_future(
                            self._checkpoints(peer, state, checkpoints)
                        )
                    else:
                        self._frontier(peer, state)
                    state.note_lag({o: h.next_seq for o, h in self.app.heads().items()}, now_ms())

                async def finish_oldest() -> None:
                    """Wait for the oldest batch's checks, then commit it in order:
                    while the writer is still busy with the previous commit and
                    more batches are coming, it waits to go with them."""
                    task, done = preparing.popleft()
                    # Batches verify concurrently: an origin held back by an
                    # earlier batch drops out of this one here, in order.
                    held.extend(_not_held_back(await task, held_back))
                    held_checkpoints.extend(done.checkpoints)
                    writer_busy = committing is not None and not committing.done()
                    more = bool(preparing) or not inbox.empty()
                    if writer_busy and more and len(held) < COMMIT_MAX:
                        return
                    await commit_held()

                while not isinstance(response := await inbox.get(), _End):
                    if self.on_response is not None:
                        await self.on_response(peer.id, client, response)
                    state.state = "streaming"
                    state.responses += 1
                    state.frontier = dict(response.frontier.sizes)
                    # What the peer holds: our stream to it need not send it.
                    self.app.heard_from(peer.id, state.frontier)
                    preparing.append(
                        (
                            asyncio.ensure_future(
                                self._prepare(state, response.entries, held_back)
                            ),
                            response,
                        )
                    )
                    # Keep up to VERIFY_DEPTH batches verifying at once while
                    # more are waiting; finish everything when the stream idles.
                    while preparing and (len(preparing) >= VERIFY_DEPTH or inbox.empty()):
                        await finish_oldest()
                    if committing is not None and inbox.empty():
                        # Idle: let the last commit finish now, so its
                        # outcome (e.g. a gap that reopens the stream) is
                        # acted on before the peer's next message.
                        done_commit, committing = committing, None
                        await done_commit
                    yield None
                while preparing:
                    await finish_oldest()
                if held or held_checkpoints:
                    await commit_held()
                if response.error is not None:
                    raise response.error
        finally:
            # It may restart with less (a restored backup): until it says
            # again what it holds, send it everything its cursors ask for.
            self.app.peer_heads.pop(peer.id, None)
            for task, _ in preparing:
                task.cancel()
            await asyncio.gather(*(t for t, _ in preparing), return_exceptions=True)
            if reader is not None:
                reader.cancel()
                await asyncio.gather(reader, return_exceptions=True)
            if committing is not None:
                # The write is already on the writer thread; let it finish so
                # the state we report matches what was committed.
                await asyncio.shield(committing)

    def _hold_off(self, state: PeerState) -> float:
        """How long to leave a duplicating peer alone: doubled each time it
        does it again before sending anything new."""
        return min(
            DUPLICATE_BACKOFF_MAX_S, self.duplicate_backoff_s * 2.0 ** max(0, state.held_off - 1)
        )

    def _count_duplicates(self, state: PeerState, duplicates: int, fresh: int) -> None:
        state.duplicates += duplicates
        state.duplicate_run = 0 if fresh else state.duplicate_run + duplicates
        if state.duplicate_run >= self.duplicates_max:
            run, state.duplicate_run = state.duplicate_run, 0
            state.held_off += 1
            raise DuplicateFlood(
                f"{state.id} sent {run} duplicate entries and nothing new: held off for "
                f"{self._hold_off(state):.0f} s"
            )

    def _frontier(self, peer: Peer, state: PeerState) -> None:
        self.app.tlog.observe_frontier(peer.id, state.frontier)

    async def _checkpoints(self, peer: Peer, state: PeerState, checkpoints: Sequence[str]) -> None:
        """Check a batch against the peer's signed roots (never fatal to the
        stream: a bad checkpoint becomes an alert), and watch for a peer that
        stays behind what witnesses cosigned."""
        if checkpoints:
            await self.app.tlog.receive_checkpoints(peer.id, checkpoints)
        self.app.tlog.observe_frontier(peer.id, state.frontier)

    async def _accept(
        self, peer: Peer, state: PeerState, response: pb.PullResponse, held_back: dict[str, int]
    ) -> None:
        entries = await self._prepare(state, response.entries, held_back)
        if entries:
            await self._commit(peer, state, entries, response.checkpoints)
        else:
            await self._checkpoints(peer, state, response.checkpoints)

    async def _prepare(
        self, state: PeerState, msgs: Sequence[pb.SignedEntry], held_back: dict[str, int]
    ) -> list[SignedEntry]:
        """Drop stored duplicates, decode and verify; raise on a bad entry.

        An authentic entry (signed by a key its origin has, or had in a
        roster version this node holds) that the roster does not allow (a
        revoked member or key, a cut-off, a role, a key removed) is held
        back with the rest of its origin's entries on this stream
        (``held_back``: origin -> first seq held back; they are dropped
        unchecked), and the peer is not blamed: it may hold a roster we
        have not adopted, or have stored the entry before a change
        (docs/roster.md, *Roster changes never partition*)."""
        if not msgs:
            return []
        # In a mesh every entry arrives once per neighbour: drop the ones
        # already stored (same id = same body bytes) before paying to decode
        # and verify them. A *different* body for a stored seq has another id
        # and goes through, to be caught as equivocation.
        # Hashing and decoding a large batch take milliseconds: off the event
        # loop, so Match answers are not queued behind a catch-up.
        if len(msgs) <= INLINE_MAX:
            # A live follow stream's few entries: a thread hop would cost more.
            entries, duplicates = self._decode_fresh(msgs)
        else:
            entries, duplicates = await asyncio.to_thread(self._decode_fresh, msgs)
        self._count_duplicates(state, duplicates, len(entries))
        if not entries:
            return []
        if len(entries) <= INLINE_MAX:
            errors = self.app.verify(entries)  # ~60 us each with libsodium
        else:
            errors = await self.app.verify_async(entries)
        refused: ProvenanceError | None = None
        for i, error in enumerate(errors):
            if error is None:
                continue
            body = entries[i].body
            if body.seq >= held_back.get(body.origin, body.seq + 1):
                continue  # its origin is held back from an earlier seq: dropped below
            # One signature check per origin and batch, whatever the peer sends.
            if isinstance(error, ProvenanceError) and self.app.authentic(entries[i]):
                held_back[body.origin] = body.seq  # the first: seq order within an origin
                refused = refused or error
                continue
            where = f"entry {i + 1} of {len(entries)}: " if len(entries) > 1 else ""
            raise type(error)(where + str(error))
        if held_back:
            kept = _not_held_back(entries, held_back)
            if refused is not None:
                state.withheld += len(entries) - len(kept)
                state.last_error = f"held back {len(entries) - len(kept)} entries: {refused}"
                log.info("from peer %s: %s", state.id, state.last_error)
            entries = kept
        return entries

    def _decode_fresh(self, msgs: Sequence[pb.SignedEntry]) -> tuple[list[SignedEntry], int]:
        ids = [hashlib.sha256(m.body).digest() for m in msgs]
        known = self.app.store.known(ids)
        fresh = [m for m, k in zip(msgs, known, strict=True) if not k]
        return convert.entries_from_pb(fresh), len(msgs) - len(fresh)

    async def _commit(
        self,
        peer: Peer,
        state: PeerState,
        entries: list[SignedEntry],
        checkpoints: Sequence[str] = (),
    ) -> None:
        result = await self.app.ingest_from_peer_async(peer.id, entries, checkpoints)
        self._frontier(peer, state)
        _catch_up_progress(peer, state, self.app, len(result.accepted))
        state.received += len(result.accepted)
        if result.accepted:
            state.held_off = 0  # something new: a later flood starts from the first hold-off
        state.last_received_ms = now_ms()
        state.note_lag({o: h.next_seq for o, h in self.app.heads().items()}, now_ms())
        gap: NodeError | None = None
        for index, error in result.errors:
            if not isinstance(error, NodeError):
                continue
            state.last_error = f"entry {index + 1}: {error}"
            log.warning("from peer %s: %s", peer.id, error)
            if gap is None and isinstance(error, OrderingError):
                gap = error
        if gap is not None:
            # The peer's stream thinks we hold entries we do not (we voided
            # a branch, or lost data): reopen it from our own heads.
            raise PeerError(
                f"{peer.id} sent entries past a gap ({gap}); reopening the stream "
                "from this node's heads"
            )


def _not_held_back(entries: list[SignedEntry], held_back: dict[str, int]) -> list[SignedEntry]:
    if not held_back:
        return entries
    return [e for e in entries if e.body.seq < held_back.get(e.body.origin, e.body.seq + 1)]


@dataclass(frozen=True, slots=True)
class _End:
    """Put in a peer's inbox when its stream ends; carries the stream's error."""

    error: Exception | None


def _catch_up_progress(peer: Peer, state: PeerState, app: NodeApp, accepted: int) -> None:
    """A progress line every CATCH_UP_LOG_S while a peer has much we lack."""
    state.catch_up += accepted
    now = time.monotonic()
    if not state.catch_up_since:
        state.catch_up_since = state.catch_up_logged = now
    if now - state.catch_up_logged < CATCH_UP_LOG_S:
        return
    behind = state.lag({o: h.next_seq for o, h in app.heads().items()})
    if behind < CATCH_UP_MIN and state.catch_up < CATCH_UP_MIN:
        state.catch_up, state.catch_up_since = 0, 0.0  # ordinary traffic: stay quiet
        return
    rate = state.catch_up / max(now - state.catch_up_since, 1e-9)
    log.info(
        "catch-up from %s: %d entries in %.0f s (%.0f/s), %d still behind",
        peer.id,
        state.catch_up,
        now - state.catch_up_since,
        rate,
        behind,
    )
    state.catch_up_logged = now
    if not behind:
        state.catch_up = 0
        state.catch_up_since = 0.0
