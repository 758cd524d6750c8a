"""The local match log: what this node matched, and what its platform did.

Local and private: never replicated, never signed. It is the raw material
of the signed ACTION_REPORT entries that ``ccnode report-actions`` publishes
(aggregate numbers only). A separate LMDB environment in ``DIR/matchlog/``,
so the replicated entry store stays exactly what peers gave us::

    events  time_ms:u64 n:u64  -> kind:u8 count:u32 entry_id:32 action:str8 rule:str8
    totals  entry_id           -> matches blocked removals reviews first_match_ms
                                  first_action_ms last_ms   (7 x u64)
    meta    b"n"               -> u64: next event number (keeps keys unique)

Bounded: at most ``max_events`` events are held; recording more drops the
oldest. Prunable: :meth:`MatchLog.prune` drops events before a time. The
per-target totals are cumulative and survive both (one small record per
matched entry), so reports stay correct after pruning.
"""

from __future__ import annotations

import enum
import logging
import struct
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lmdb

from node.errors import StorageError, ValidationError

log = logging.getLogger(__name__)

MATCHLOG_DIR = "matchlog"  # the match log's LMDB environment, in the node directory
DEFAULT_MAX_EVENTS = 1_000_000
MAX_EVENT_COUNT = 1_000_000  # one event may stand for this many identical actions
_U64 = struct.Struct(">Q")
_KEY = struct.Struct(">QQ")
_HEAD = struct.Struct(">BI32s")
_TOTALS = struct.Struct(">7Q")


class EventKind(enum.IntEnum):
    MATCH = 1
    BLOCKED_AT_UPLOAD = 2
    REMOVED = 3
    REVIEWED = 4

    @property
    def is_action(self) -> bool:
        return self is not EventKind.MATCH


@dataclass(frozen=True, slots=True)
class Event:
    time_ms: int
    kind: EventKind
    entry_id: bytes
    count: int = 1
    action: str = ""  # the recommended action at match time
    rule: str = ""  # the rule that recommended it

    def __post_init__(self) -> None:
        if len(self.entry_id) != 32:
            raise ValidationError(f"entry id has {len(self.entry_id)} bytes: expected 32")
        if not 1 <= self.count <= MAX_EVENT_COUNT:
            raise ValidationError(f"count {self.count}: expected 1..{MAX_EVENT_COUNT}")
        if not 0 <= self.time_ms < 2**63:
            raise ValidationError(f"time_ms {self.time_ms}: expected 0..2^63-1")


@dataclass(frozen=True, slots=True)
class Totals:
    """Cumulative counts for one matched entry."""

    entry_id: bytes
    matches: int = 0
    blocked_at_upload: int = 0
    removals: int = 0
    reviews: int = 0
    first_match_ms: int = 0
    first_action_ms: int = 0
    last_ms: int = 0

    def add(self, event: Event) -> Totals:
        def first(current: int) -> int:
            return event.time_ms if current == 0 else min(current, event.time_ms)

        n = event.count
        k = event.kind
        return Totals(
            self.entry_id,
            self.matches + (n if k is EventKind.MATCH else 0),
            self.blocked_at_upload + (n if k is EventKind.BLOCKED_AT_UPLOAD else 0),
            self.removals + (n if k is EventKind.REMOVED else 0),
            self.reviews + (n if k is EventKind.REVIEWED else 0),
            first(self.first_match_ms) if k is EventKind.MATCH else self.first_match_ms,
            first(self.first_action_ms) if k.is_action else self.first_action_ms,
            max(self.last_ms, event.time_ms),
        )


def _encode_event(e: Event) -> bytes:
    action, rule = e.action.encode()[:255], e.rule.encode()[:255]
    return (
        _HEAD.pack(int(e.kind), e.count, e.entry_id)
        + bytes((len(action),))
        + action
        + bytes((len(rule),))
        + rule
    )


def _decode_event(time_ms: int, raw: bytes) -> Event:
    kind, count, entry_id = _HEAD.unpack_from(raw)
    pos = _HEAD.size
    action = raw[pos + 1 : pos + 1 + raw[pos]].decode(errors="replace")
    pos += 1 + raw[pos]
    rule = raw[pos + 1 : pos + 1 + raw[pos]].decode(errors="replace")
    return Event(time_ms, EventKind(kind), entry_id, count, action, rule)


@contextmanager
def _errors(what: str) -> Iterator[None]:
    try:
        yield
    except lmdb.Error as exc:
        raise StorageError(f"match log: {what}: {type(exc).__name__}: {exc}") from exc


class MatchLog:
    def __init__(
        self, path: Path, *, max_events: int = DEFAULT_MAX_EVENTS, readonly: bool = False
    ) -> None:
        """``readonly``: beside the node that writes it (a backup), never creating it."""
        if max_events < 1:
            raise ValidationError(f"max_events {max_events}: expected at least 1")
        if not readonly:
            path.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.max_events = max_events
        if readonly and not (path / "data.mdb").is_file():
            raise StorageError(f"no match log at {path} (expected {path / 'data.mdb'})")
        with _errors(f"opening {path}"):
            self._env = lmdb.open(
                str(path),
                map_size=1 << 32,
                max_dbs=4,
                subdir=True,
                readahead=False,
                readonly=readonly,
            )
            create = not readonly
            self._events = self._env.open_db(b"events", create=create)
            self._totals = self._env.open_db(b"totals", create=create)
            self._meta = self._env.open_db(b"meta", create=create)

    def record(self, events: Sequence[Event]) -> None:
        """Append events and update the totals, in one transaction."""
        if not events:
            return
        with _errors("recording"), self._env.begin(write=True) as txn:
            raw_n = txn.get(b"n", db=self._meta)
            n = _U64.unpack(raw_n)[0] if raw_n else 0
            totals: dict[bytes, Totals] = {}
            for e in events:
                txn.put(_KEY.pack(e.time_ms, n), _encode_event(e), db=self._events)
                n += 1
                current = totals.get(e.entry_id) or self._totals_in(txn, e.entry_id)
                totals[e.entry_id] = current.add(e)
            for entry_id, t in totals.items():
                txn.put(
                    entry_id,
                    _TOTALS.pack(
                        t.matches,
                        t.blocked_at_upload,
                        t.removals,
                        t.reviews,
                        t.first_match_ms,
                        t.first_action_ms,
                        t.last_ms,
                    ),
                    db=self._totals,
                )
            txn.put(b"n", _U64.pack(n), db=self._meta)
            excess = txn.stat(self._events)["entries"] - self.max_events
            if excess > 0:
                cur = txn.cursor(db=self._events)
                cur.first()
                for _ in range(excess):
                    cur.delete()
                log.info("match log full: dropped the %d oldest events", excess)

    def _totals_in(self, txn: Any, entry_id: bytes) -> Totals:
        raw = txn.get(entry_id, db=self._totals)
        if raw is None:
            return Totals(entry_id)
        return Totals(entry_id, *_TOTALS.unpack(raw))

    def totals(self) -> list[Totals]:
        with _errors("reading totals"), self._env.begin() as txn:
            return [Totals(bytes(k), *_TOTALS.unpack(v)) for k, v in txn.cursor(db=self._totals)]

    def events(self, since_ms: int = 0, limit: int = 10_000) -> list[Event]:
        out: list[Event] = []
        with _errors("reading events"), self._env.begin() as txn:
            cur = txn.cursor(db=self._events)
            if not cur.set_range(_KEY.pack(max(0, since_ms), 0)):
                return out
            for k, v in cur:
                if len(out) >= limit:
                    break
                out.append(_decode_event(_KEY.unpack(k)[0], bytes(v)))
        return out

    def count(self) -> int:
        with _errors("counting"), self._env.begin() as txn:
            return int(txn.stat(self._events)["entries"])

    def prune(self, before_ms: int) -> int:
        """Drop events before ``before_ms``; the totals stay. Returns how many."""
        removed = 0
        with _errors("pruning"), self._env.begin(write=True) as txn:
            cur = txn.cursor(db=self._events)
            cur.first()
            while True:
                key = cur.key()
                if len(key) != _KEY.size or _KEY.unpack(key)[0] >= before_ms:
                    break
                cur.delete()
                removed += 1
        return removed

    def copy_to(self, directory: Path) -> None:
        """A consistent, compacted copy (one read transaction; the node goes on)."""
        with _errors(f"copying to {directory}"):
            self._env.copy(str(directory), compact=True)

    def close(self) -> None:
        self._env.close()
