"""Alerting the platform: each urgent entry of an incident as it commits here.

The "push" of the incident protocol (docs/federation.md, "Incident
alerts"). :class:`IncidentFeed` listens to the node's commits and hands
every committed urgent entry that names an incident, with its provenance
and this node's policy recommendation (a :class:`~node.app.MatchHit`), to

- the subscribers of the ``WatchIncidents`` gRPC stream, each through its
  own bounded queue: a subscriber that falls :data:`WATCH_QUEUE`
  notifications behind is ended ("lagged"), never waited for, so a slow
  reader cannot stall commits; and
- the sinks registered with :meth:`IncidentFeed.add_sink` (the webhook,
  ``node/webhook.py``), called on the event loop; they must not block.

Runs on the event loop (commit listeners do): building a notification
reads one stored entry and asks the policy, as a GetEntry does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence

from node.app import MatchHit, NodeApp
from node.core.entry import SignedEntry
from node.errors import LimitError, NodeError

log = logging.getLogger(__name__)

#: Notifications one WatchIncidents subscriber may have unread before it is
#: ended as lagged. An incident's burst of urgent entries (a live stream
#: publishes one per segment, every few seconds) is far below this.
WATCH_QUEUE = 1024

Sink = Callable[[MatchHit], None]


def lagged_message(cap: int = WATCH_QUEUE) -> str:
    return (
        f"WatchIncidents subscriber lagged (more than {cap} notifications unread): "
        "the stream is ended; catch up with Pull and reopen it"
    )


class Subscription:
    """One WatchIncidents stream: its filter and its bounded queue."""

    def __init__(self, feed: IncidentFeed, incidents: frozenset[str], cap: int) -> None:
        self._feed = feed
        self.incidents = incidents
        self.cap = cap
        self._queue: asyncio.Queue[MatchHit | None] = asyncio.Queue(cap)
        self.lagged = False

    def wants(self, hit: MatchHit) -> bool:
        return not self.incidents or hit.entry.body.incident in self.incidents

    def offer(self, hit: MatchHit) -> None:
        try:
            self._queue.put_nowait(hit)
        except asyncio.QueueFull:
            self.lagged = True  # no more offers: it is unsubscribed
            self._feed.unsubscribe(self)
            log.warning("a WatchIncidents subscriber lagged; ending its stream")

    def close(self) -> None:
        """End the stream (node stopping): wakes a waiting reader."""
        try:
            self._queue.put_nowait(None)
        except asyncio.QueueFull:
            self.lagged = True

    async def next(self) -> MatchHit | None:
        """The next notification; None when the stream is over. Raises
        LimitError once the subscriber has lagged (after what was queued)."""
        if self._queue.empty() and self.lagged:
            raise LimitError(lagged_message(self.cap))
        return await self._queue.get()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self._feed.unsubscribe(self)


class IncidentFeed:
    """Fans committed urgent incident entries out to subscribers and sinks."""

    def __init__(self, app: NodeApp, *, queue: int = WATCH_QUEUE) -> None:
        self.app = app
        self.queue = queue
        self._subs: set[Subscription] = set()
        self._sinks: list[Sink] = []
        self.closed = False
        app.on_commit(self.on_commit)

    def subscribe(self, incidents: Iterable[str] = ()) -> Subscription:
        sub = Subscription(self, frozenset(incidents), self.queue)
        if self.closed:
            sub.close()
        else:
            self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs.discard(sub)

    def add_sink(self, sink: Sink) -> None:
        self._sinks.append(sink)

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    def close(self) -> None:
        self.closed = True
        for sub in list(self._subs):
            sub.close()
        self._subs.clear()

    def on_commit(self, entries: Sequence[SignedEntry]) -> None:
        if not (self._subs or self._sinks):
            return
        for entry in entries:
            body = entry.body
            if not (body.urgent and body.incident):
                continue
            try:
                hit = self.app.get(entry.entry_id)
            except NodeError as exc:  # retracted away or gone: nothing to say
                log.warning("no incident notification for %s: %s", entry.entry_id.hex(), exc)
                continue
            for sub in list(self._subs):
                if sub.wants(hit):
                    sub.offer(hit)
            for sink in self._sinks:
                sink(hit)
