"""Prometheus metrics, served on their own HTTP port (off by default).

Enable with ``metrics_listen = "127.0.0.1:9464"`` in config.toml,
``CCNODE_METRICS_LISTEN`` or ``ccnode serve --metrics HOST:PORT``; scrape
``http://HOST:PORT/metrics``. Every node has its own ``CollectorRegistry``
(never the process-global one), so several nodes can share a process.

Series (all prefixed ``ccnode_``; docs/operators.md has the alert rules):

==========================================  ====================================
entries_stored{origin}                      entries held per origin log
entries_accepted_total{source}              committed; source = submit | peer
entries_duplicate_total{source}             identical re-deliveries ignored
entries_refused_total{source,reason}        reason = validation | provenance |
                                            ordering | equivocation | conflict |
                                            not_found | storage | peer
propagation_latency_seconds{source}         histogram: signed time -> local commit
match_requests_total{outcome}               outcome = ok | error
match_queries_total, match_hits_total       hashes asked, matches returned
match_latency_seconds                       histogram: per Match request
index_hashes                                rows in the exact hash index
lmdb_map_size_bytes, lmdb_map_used_bytes    LMDB map (address space) and pages used
store_writable                              0 while writes are refused (map full)
equivocation_evidence{origin}               evidence records held (alert if > 0)
alerts_total{kind}                          equivocation | withholding | map_full
peer_up{peer}                               1 while the follow stream is open
peer_state{peer,state}                      connecting|streaming|backoff|held-off (1 = current)
peer_lag_entries{peer}                      entries the peer advertises that we lack
peer_lag_seconds{peer}                      how long we have lacked them
peer_withholding{peer}                      1: connected, yet lagging > withholding_after_s
peer_received_total{peer}, peer_refused_total{peer},
peer_duplicates_total{peer}, peer_responses_total{peer}
peer_last_received_timestamp_seconds{peer}
ready                                       1 when health is SERVING
info{node_id,version}                       always 1
==========================================  ====================================

The gauges are computed at scrape time from the node's own state. The HTTP
server runs in prometheus-client's thread; the snapshot it needs is taken on
the node's event loop (the only thread that touches LMDB and sync state).
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import CancelledError
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from node import __version__
from node.app import now_ms
from node.errors import NodeError, ValidationError
from node.observe import ALERT_WITHHOLDING, reason_of
from node.store.base import IngestResult
from node.store.lmdb_store import LmdbStore, StoreStats
from node.sync.engine import PeerState

log = logging.getLogger(__name__)

PEER_STATES = ("connecting", "streaming", "backoff", "held-off")
#: Entries can arrive hours late (a peer was down): the buckets reach a day.
PROPAGATION_BUCKETS = (
    0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 6 * 3600, 86400,
)  # fmt: skip
MATCH_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
SNAPSHOT_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything the scrape-time gauges show, read on the event loop."""

    node_id: str
    heads: Mapping[str, int]
    stats: StoreStats | None
    evidence_by_origin: Mapping[str, int]
    writable: bool
    peers: tuple[PeerState, ...]
    now_ms: int
    ready: bool


class NodeMetrics:
    """The Observer that records metrics, plus the scrape-time collector."""

    def __init__(self, node_id: str, *, withholding_after_s: float = 300.0) -> None:
        self.node_id = node_id
        self.withholding_after_s = withholding_after_s
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        # Registered first, so a scrape's own alerts (withholding) show in it.
        r.register(_ScrapeCollector(self))
        self.accepted = Counter(
            "ccnode_entries_accepted", "Entries committed", ["source"], registry=r
        )
        self.duplicate = Counter(
            "ccnode_entries_duplicate", "Identical entries ignored", ["source"], registry=r
        )
        self.refused_total = Counter(
            "ccnode_entries_refused", "Entries refused", ["source", "reason"], registry=r
        )
        self.propagation = BatchHistogram(
            "ccnode_propagation_latency_seconds",
            "Time from an entry's signed time to its local commit",
            "source",
            PROPAGATION_BUCKETS,
        )
        r.register(self.propagation)
        self.match_requests = Counter(
            "ccnode_match_requests", "Match requests", ["outcome"], registry=r
        )
        self.match_queries = Counter("ccnode_match_queries", "Hashes looked up", registry=r)
        self.match_hits = Counter("ccnode_match_hits", "Matches returned", registry=r)
        self.match_latency = Histogram(
            "ccnode_match_latency_seconds",
            "Match request latency",
            buckets=MATCH_BUCKETS,
            registry=r,
        )
        self.alerts = Counter("ccnode_alerts", "Alerts raised", ["kind"], registry=r)
        self.http_requests = Counter(
            "ccnode_http_requests",
            "HTTP API requests answered (docs/http.md)",
            ["route", "status"],
            registry=r,
        )
        self._withholding: set[str] = set()
        self._snapshot_source: Callable[[], Snapshot] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.address = ""

    # -- Observer ------------------------------------------------------------

    def committed(self, source: str, result: IngestResult, now_ms: int) -> None:
        if result.accepted:
            self.propagation.observe_many(
                source, [(now_ms - e.body.time_ms) / 1000 for e in result.accepted]
            )
            self.accepted.labels(source).inc(len(result.accepted))
        if result.duplicates:
            self.duplicate.labels(source).inc(result.duplicates)

    def refused(self, source: str, error: NodeError, count: int = 1) -> None:
        self.refused_total.labels(source, reason_of(error)).inc(count)

    def matched(self, queries: int, hits: int, seconds: float, ok: bool) -> None:
        self.match_requests.labels("ok" if ok else "error").inc()
        self.match_latency.observe(seconds)
        if ok:
            self.match_queries.inc(queries)
            self.match_hits.inc(hits)

    def alert(self, kind: str, subject: str) -> None:
        self.alerts.labels(kind).inc()

    def http_request(self, route: str, status: int) -> None:
        """One HTTP API answer: its route's template (``/v1/entries/{entry_id}``;
        ``unrouted`` for a path no route has, so labels stay bounded)."""
        self.http_requests.labels(route, str(status)).inc()

    # -- the scrape-time view --------------------------------------------------

    def bind(
        self, snapshot: Callable[[], Snapshot], loop: asyncio.AbstractEventLoop | None = None
    ) -> None:
        """Where scrape-time gauges come from: ``snapshot`` runs on ``loop``
        (or in the scraping thread when there is no loop: tools and tests)."""
        self._snapshot_source = snapshot
        self._loop = loop

    def snapshot(self) -> Snapshot | None:
        source, loop = self._snapshot_source, self._loop
        if source is None:
            return None
        if loop is None:
            return source()
        if loop.is_closed():
            return None
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            return source()

        async def take() -> Snapshot:
            return source()

        future = asyncio.run_coroutine_threadsafe(take(), loop)
        try:
            return future.result(SNAPSHOT_TIMEOUT_S)
        except (TimeoutError, CancelledError, RuntimeError, NodeError) as exc:
            # a scrape must answer even if the node is busy or stopping
            future.cancel()
            log.warning("metrics snapshot failed: %s: %s", type(exc).__name__, exc)
            return None

    def note_withholding(self, snap: Snapshot) -> set[str]:
        """Peers that stream yet keep advertising entries they do not send."""
        now = {
            p.id
            for p in snap.peers
            if p.state == "streaming"
            and p.lag_seconds(snap.now_ms) > self.withholding_after_s
            and p.lag(dict(snap.heads))
        }
        for peer in sorted(now - self._withholding):
            log.warning(
                "peer %s advertises entries it has not sent for over %.0f s (withholding?)",
                peer,
                self.withholding_after_s,
            )
            self.alert(ALERT_WITHHOLDING, peer)
        self._withholding = now
        return now

    # -- the HTTP endpoint -------------------------------------------------------

    def serve(self, listen: str) -> str:
        """Start the /metrics endpoint on ``host:port`` (port 0: pick one)."""
        host, _, port = listen.rpartition(":")
        host = host.strip("[]")
        try:
            server, thread = start_http_server(int(port), addr=host, registry=self.registry)
        except OSError as exc:
            raise ValidationError(f"metrics_listen {listen!r}: cannot listen: {exc}") from None
        self._server, self._thread = server, thread
        bound = server.server_address[1]
        self.address = f"{host}:{bound}" if ":" not in host else f"[{host}]:{bound}"
        log.info("metrics on http://%s/metrics", self.address)
        return self.address

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


class BatchHistogram(Collector):
    """A histogram with one label, observed a batch at a time.

    ``prometheus_client``'s Histogram takes one value per call, each under a
    lock and with a linear bucket search: ~5 us an entry, a third of the
    event loop's time while a joining node commits a catch-up. Here a batch
    is one lock and one bisect per value; scrapes see the same exposition.
    """

    def __init__(self, name: str, doc: str, label: str, buckets: Sequence[float]) -> None:
        if list(buckets) != sorted(buckets) or not buckets:
            raise ValueError(f"{name}: buckets must be a non-empty ascending sequence")
        self.name, self.doc, self.label = name, doc, label
        self._bounds = tuple(float(b) for b in buckets)
        self._lock = threading.Lock()
        #: label value -> (per-bucket counts, the last one +Inf; sum)
        self._series: dict[str, tuple[list[int], list[float]]] = {}

    def observe_many(self, value: str, amounts: Sequence[float]) -> None:
        """Record ``amounts`` (seconds; negatives count as 0) under label ``value``."""
        if not amounts:
            return
        bounds = self._bounds
        where = [bisect.bisect_left(bounds, a) for a in amounts]
        total = sum(a for a in amounts if a > 0)
        with self._lock:
            counts, sums = self._series.setdefault(value, ([0] * (len(bounds) + 1), [0.0]))
            for i in where:
                counts[i] += 1
            sums[0] += total

    def describe(self) -> Iterable[Metric]:
        return [HistogramMetricFamily(self.name, self.doc, labels=[self.label])]

    def collect(self) -> Iterable[Metric]:
        family = HistogramMetricFamily(self.name, self.doc, labels=[self.label])
        with self._lock:
            series = [(v, list(c), s[0]) for v, (c, s) in sorted(self._series.items())]
        for value, counts, total in series:
            cumulative, running = [], 0
            for bound, n in zip((*self._bounds, float("inf")), counts, strict=True):
                running += n
                cumulative.append((_bound_text(bound), running))
            family.add_metric([value], cumulative, sum_value=total)
        yield family


def _bound_text(bound: float) -> str:
    """The ``le`` label as prometheus_client writes it (``+Inf``, ``0.05``, ``1.0``)."""
    return "+Inf" if bound == float("inf") else repr(float(bound))


class _ScrapeCollector(Collector):
    def __init__(self, metrics: NodeMetrics) -> None:
        self.metrics = metrics

    def describe(self) -> Iterable[Metric]:
        return []  # computed at scrape time; nothing to check at registration

    def collect(self) -> Iterable[Metric]:
        snap = self.metrics.snapshot()
        info = GaugeMetricFamily("ccnode_info", "Node identity", labels=["node_id", "version"])
        info.add_metric([self.metrics.node_id, __version__], 1)
        yield info
        ready = GaugeMetricFamily("ccnode_ready", "1 when the health service says SERVING")
        ready.add_metric([], 1 if snap is not None and snap.ready else 0)
        yield ready
        if snap is None:
            return
        stored = GaugeMetricFamily(
            "ccnode_entries_stored", "Entries held per origin", labels=["origin"]
        )
        for origin, n in sorted(snap.heads.items()):
            stored.add_metric([origin], n)
        yield stored
        evidence = GaugeMetricFamily(
            "ccnode_equivocation_evidence", "Equivocation evidence held", labels=["origin"]
        )
        for origin, n in sorted(snap.evidence_by_origin.items()):
            evidence.add_metric([origin], n)
        yield evidence
        writable = GaugeMetricFamily("ccnode_store_writable", "0 while writes are refused")
        writable.add_metric([], 1 if snap.writable else 0)
        yield writable
        if snap.stats is not None:
            for name, doc, value in (
                ("ccnode_index_hashes", "Rows in the exact hash index", snap.stats.hashes),
                ("ccnode_lmdb_map_size_bytes", "LMDB map size", snap.stats.map_size),
                ("ccnode_lmdb_map_used_bytes", "LMDB pages in use", snap.stats.used),
            ):
                g = GaugeMetricFamily(name, doc)
                g.add_metric([], value)
                yield g
        yield from self._peers(snap)

    def _peers(self, snap: Snapshot) -> Iterable[Metric]:
        heads = dict(snap.heads)
        withholding = self.metrics.note_withholding(snap)
        up = GaugeMetricFamily("ccnode_peer_up", "1 while streaming", labels=["peer"])
        state = GaugeMetricFamily(
            "ccnode_peer_state", "Connection state (1 = current)", labels=["peer", "state"]
        )
        lag_n = GaugeMetricFamily(
            "ccnode_peer_lag_entries", "Entries the peer has that we lack", labels=["peer"]
        )
        lag_s = GaugeMetricFamily(
            "ccnode_peer_lag_seconds", "How long we have lacked them", labels=["peer"]
        )
        held = GaugeMetricFamily(
            "ccnode_peer_withholding", "Connected but not sending", labels=["peer"]
        )
        last = GaugeMetricFamily(
            "ccnode_peer_last_received_timestamp_seconds", "Last batch", labels=["peer"]
        )
        received = CounterMetricFamily(
            "ccnode_peer_received", "Entries received from the peer", labels=["peer"]
        )
        refused = CounterMetricFamily(
            "ccnode_peer_refused", "Bad batches from the peer", labels=["peer"]
        )
        duplicates = CounterMetricFamily(
            "ccnode_peer_duplicates",
            "Entries from the peer this node already held (flooding overhead)",
            labels=["peer"],
        )
        responses = CounterMetricFamily(
            "ccnode_peer_responses", "Pull responses received from the peer", labels=["peer"]
        )
        for p in snap.peers:
            up.add_metric([p.id], 1 if p.state == "streaming" else 0)
            for s in PEER_STATES:
                state.add_metric([p.id, s], 1 if p.state == s else 0)
            lag_n.add_metric([p.id], p.lag(heads))
            lag_s.add_metric([p.id], p.lag_seconds(snap.now_ms))
            held.add_metric([p.id], 1 if p.id in withholding else 0)
            last.add_metric([p.id], p.last_received_ms / 1000)
            received.add_metric([p.id], p.received)
            refused.add_metric([p.id], p.refused)
            duplicates.add_metric([p.id], p.duplicates)
            responses.add_metric([p.id], p.responses)
        yield from (up, state, lag_n, lag_s, held, last, received, refused, duplicates, responses)


def take_snapshot(
    node_id: str,
    store: LmdbStore,
    peers: Iterable[PeerState],
    ready: bool,
) -> Snapshot:
    """Read the node's state for one scrape (call on the event loop)."""
    heads = {o: h.next_seq for o, h in store.heads().items()}
    try:
        stats: StoreStats | None = store.stats()
        evidence: dict[str, int] = {}
        if stats is not None and stats.evidence:
            for ev in store.evidence():
                evidence[ev.origin] = evidence.get(ev.origin, 0) + 1
    except NodeError as exc:
        log.warning("metrics: cannot read store stats: %s", exc)
        stats, evidence = None, {}
    return Snapshot(
        node_id=node_id,
        heads=heads,
        stats=stats,
        evidence_by_origin=evidence,
        writable=not store.write_error,
        peers=tuple(
            PeerState(
                id=p.id,
                address=p.address,
                state=p.state,
                received=p.received,
                refused=p.refused,
                duplicates=p.duplicates,
                responses=p.responses,
                last_error=p.last_error,
                last_received_ms=p.last_received_ms,
                frontier=dict(p.frontier),
                behind_since_ms=p.behind_since_ms,
            )
            for p in peers
        ),
        now_ms=now_ms(),
        ready=ready,
    )
