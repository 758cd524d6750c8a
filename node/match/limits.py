"""What one Match request may cost, and how its answer is bounded (pure).

**Cost.** A PDQ search probes, per query hash, the multi-index buckets
within the radius (``pdq_index.probes``: 272 at distance 31, 2,192 at 47,
11,152 at 63), and its time grows with those probes (about 0.5 to 2 us
each on one core, from 100k to 1M stored hashes). A request's cost is the
sum over its PDQ hashes (each query and each of its dihedral variants) of
the probes at the request's radius; exact lookups cost nothing here (one
index read each). A request over :attr:`MatchLimits.max_probes` is refused
before any work, with ``LimitError`` (RESOURCE_EXHAUSTED), naming the limit
and what was asked. Other hashes searched by probing (video frames) count
the same way, through :func:`match_cost`.

The default, 2,720,000 probes, is what 10,000 PDQ queries at the default
distance 31 cost: every request the batch limit allowed at the default
distance is still allowed, and the costlier shapes (all 8 dihedral hashes,
distance 63) are allowed at a proportionally smaller batch (243 hashes at
63). The search runs off the event loop in chunks of at most
:attr:`MatchLimits.chunk_probes` (one chunk at a time per request), so the
loop stays free for other callers whatever the request.

**Answers.** Each query lists at most :attr:`MatchLimits.hits_per_query`
hits, and at most :attr:`MatchLimits.hits_per_origin` of one origin, ranked
by :func:`rank`; it carries the total number of matching entries and a
``truncated`` flag when it lists fewer. A whole request examines at most
:attr:`MatchLimits.max_candidates` matching entries (later queries are then
answered ``truncated`` with their totals only), and its hits stop at
:attr:`MatchLimits.response_bytes` of entry bytes, under the 4 MiB message
cap. So no hash can be made unmatchable by publishing it many times, and no
answer outgrows the transport.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from node.errors import LimitError, ValidationError
from node.match.pdq_index import DEFAULT_RADIUS, probes

__all__ = [
    "Candidate",
    "MatchLimits",
    "chunks",
    "match_cost",
    "rank",
]


@dataclass(frozen=True, slots=True)
class MatchLimits:
    """Per-request Match limits (docs/operators.md, "Match limits")."""

    max_queries: int = 10_000
    max_probes: int = 10_000 * 272  # 10,000 PDQ hashes at distance 31
    chunk_probes: int = 20_000  # searched per step off the loop (~10-40 ms)
    hits_per_query: int = 100
    hits_per_origin: int = 5
    max_candidates: int = 200_000
    response_bytes: int = 3 * 1024 * 1024

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValidationError(f"match limit {name} must be a positive integer: got {value}")

    def check_cost(self, pdq_hashes: int, radius: int) -> int:
        """The cost of searching ``pdq_hashes`` at ``radius``; LimitError if over."""
        cost = match_cost(pdq_hashes, radius)
        if cost > self.max_probes:
            each = probes(radius)
            raise LimitError(
                f"Match would probe {cost:,} index buckets ({pdq_hashes:,} PDQ hashes at "
                f"distance {radius}, {each:,} each): at most {self.max_probes:,} per request, "
                f"i.e. {self.max_probes // each:,} hashes at distance {radius} or "
                f"{self.max_probes // probes(DEFAULT_RADIUS):,} at {DEFAULT_RADIUS}; send fewer "
                "queries or dihedral hashes, or a smaller max_distance"
            )
        return cost


def match_cost(pdq_hashes: int, radius: int) -> int:
    """Probes to search ``pdq_hashes`` query hashes at ``radius``."""
    return pdq_hashes * probes(radius)


def chunks(sizes: Sequence[int], radius: int, chunk_probes: int) -> Iterator[range]:
    """Consecutive runs of queries (``sizes[i]`` hashes each) costing at most
    ``chunk_probes`` each (a single query may exceed it alone)."""
    each = probes(radius)
    start, cost = 0, 0
    for i, n in enumerate(sizes):
        if i > start and cost + n * each > chunk_probes:
            yield range(start, i)
            start, cost = i, 0
        cost += n * each
    if start < len(sizes):
        yield range(start, len(sizes))


@dataclass(frozen=True, slots=True)
class Candidate:
    """A stored entry matching a query, with what ranking needs (read
    without decoding the entry)."""

    entry_id: bytes
    distance: int
    origin: str
    seq: int
    arrival_ms: int
    settled: bool
    variant: int = 0  # which of the query's hashes matched (0: the query itself)


def rank(found: Sequence[Candidate], hits_per_query: int, hits_per_origin: int) -> list[Candidate]:
    """The hits to list for one query, best first.

    Order: nearest first; then settled (covered by a witness-cosigned
    checkpoint) before not; then newest first (arrival here, then seq: one
    batch commits at one time); then entry id, so the order is total. At
    most ``hits_per_origin`` of one origin are listed (its best ones), so
    one member publishing a hash many times cannot crowd out the others,
    and at most ``hits_per_query`` in all.
    """
    ordered = sorted(
        found, key=lambda c: (c.distance, not c.settled, -c.arrival_ms, -c.seq, c.entry_id)
    )
    per_origin: dict[str, int] = {}
    out: list[Candidate] = []
    for c in ordered:
        n = per_origin.get(c.origin, 0)
        if n >= hits_per_origin:
            continue
        per_origin[c.origin] = n + 1
        out.append(c)
        if len(out) >= hits_per_query:
            break
    return out
