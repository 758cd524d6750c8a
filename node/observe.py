"""What the node reports as it works: the seam between the app and metrics.

``NodeApp`` and the sync engine call an :class:`Observer` at the few points
operators care about (commits, refusals, matches, alerts). The default does
nothing; ``node.metrics.NodeMetrics`` records Prometheus series. Observers
must be cheap and must not raise.
"""

from __future__ import annotations

from typing import Protocol

from node.errors import (
    ConflictError,
    EquivocationError,
    NodeError,
    NotFoundError,
    OrderingError,
    PeerError,
    ProvenanceError,
    StorageError,
    ValidationError,
)
from node.store.base import IngestResult

#: Refusal reasons, most specific first: the ``reason`` label of metrics.
REASONS: tuple[tuple[type[NodeError], str], ...] = (
    (ProvenanceError, "provenance"),
    (ValidationError, "validation"),
    (OrderingError, "ordering"),
    (EquivocationError, "equivocation"),
    (ConflictError, "conflict"),
    (NotFoundError, "not_found"),
    (StorageError, "storage"),
    (PeerError, "peer"),
)

#: Alert kinds (the ``kind`` label of ``ccnode_alerts_total``).
ALERT_EQUIVOCATION = "equivocation"
ALERT_WITHHOLDING = "withholding"
ALERT_MAP_FULL = "map_full"


def reason_of(error: NodeError) -> str:
    for cls, reason in REASONS:
        if isinstance(error, cls):
            return reason
    return "other"


class Observer(Protocol):
    def committed(self, source: str, result: IngestResult, now_ms: int) -> None:
        """A batch from ``source`` ("submit" or "peer") was committed."""

    def refused(self, source: str, error: NodeError, count: int = 1) -> None:
        """``count`` entries from ``source`` were refused with ``error``."""

    def matched(self, queries: int, hits: int, seconds: float, ok: bool) -> None:
        """A match request of ``queries`` hashes was answered (or failed)."""

    def alert(self, kind: str, subject: str) -> None:
        """Something an operator must look at (see docs/operators.md)."""


class NullObserver:
    def committed(self, source: str, result: IngestResult, now_ms: int) -> None:
        pass

    def refused(self, source: str, error: NodeError, count: int = 1) -> None:
        pass

    def matched(self, queries: int, hits: int, seconds: float, ok: bool) -> None:
        pass

    def alert(self, kind: str, subject: str) -> None:
        pass
