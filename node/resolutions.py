"""Fork resolution at a running node: apply what newly adopted rosters resolve.

A roster version may resolve a forked member's log (``ForkResolution``:
origin, canonical size and root; docs/transparency.md). Whenever the node
adopts rosters (at start, from gossip, ``OfferRoster`` or the operator) it
applies the resolutions of every version it has not applied yet, oldest
first, in one LMDB write transaction (``node/store/resolve.py``), then
brings its in-memory state along: the PDQ index forgets voided entries,
settled sizes are recounted, follow streams are woken. Voided entries are
re-synced from peers by the normal Pull path (the cursors were reset).
"""

from __future__ import annotations

import logging
import time

from node.app import NodeApp
from node.core.roster import ForkResolution, SignedRoster
from node.errors import NodeError
from node.store.resolve import Applied, State

log = logging.getLogger(__name__)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class ForkResolutions:
    def __init__(self, app: NodeApp) -> None:
        self.app = app
        self.tables = app.store.resolutions

    def apply(self) -> list[Applied]:
        """Apply the resolutions of every adopted roster version not applied yet.

        Never raises: a failure is logged and retried at the next adoption
        (nothing was written: it is one transaction)."""
        try:
            return self._apply()
        except NodeError as exc:
            log.error("could not apply the roster's fork resolutions: %s", exc)
            return []

    def _apply(self) -> list[Applied]:
        done = self.tables.applied_version()
        batch: list[tuple[int, tuple[ForkResolution, ...]]] = []
        latest = done
        for raw in self.app.store.rosters_after(done, 1 << 30):
            signed = SignedRoster.from_bytes(raw)
            batch.append((signed.version, signed.roster.resolutions))
            latest = max(latest, signed.version)
        if latest == done:
            return []
        applied = self.tables.apply(batch, latest, _now_ms())
        voided = [e for a in applied for e in a.voided]
        if voided:
            self.app.matcher.void(voided)
            self.app.frames.void(voided)
        for a in applied:
            r = a.record
            if r.state is State.REFUSED:
                log.error(
                    "fork resolution of %s in roster version %d not applied: %s",
                    r.origin,
                    r.version,
                    r.message,
                )
                continue
            log.warning(
                "FORK RESOLVED: roster version %d resolves %s to size %d root %s; %s",
                r.version,
                r.origin,
                r.size,
                r.root.hex()[:16],
                "this node holds it"
                if r.state is State.DONE
                else f"{r.voided} entr(y/ies) from seq {r.keep} voided; re-syncing",
            )
        if applied:
            self.app.tlog.resolved()
            self.app.changes.notify()
        return applied
