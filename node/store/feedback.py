"""Store side of feedback entries: the by-target index and the submit-time rules.

One LMDB sub-database, written in the same transaction as the entry::

    feedback  target entry_id || feedback entry_id -> kind:u8

Every non-ADD entry (RETRACT, ENDORSE, DISPUTE, RELABEL, ACTION_REPORT) is
indexed under its target, whether or not the target is stored yet (votes and
action reports of other members may arrive before the entry they act on).
Reading the index and counting it is :func:`node.core.feedback.aggregate`'s
job; what this module adds is

- :meth:`FeedbackIndex.check`: for entries *submitted* here (not relayed),
  the rules of :func:`node.core.feedback.check_submission`, with the state
  read in the batch's own write transaction (so a batch sees itself);
- :meth:`FeedbackIndex.on_append`: index the entry, and mark a target
  retracted when its own submitter retracts it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from node.core.entry import Kind, SignedEntry
from node.core.feedback import VOTE_KINDS, Stored, check_submission
from node.store.base import StoredEntry

Load = Callable[[Any, bytes], StoredEntry | None]


class FeedbackIndex:
    def __init__(self, db: Any, retracted_db: Any, load: Load) -> None:
        self._db = db
        self._retracted = retracted_db
        self._load = load

    def items(self, txn: Any, target: bytes) -> list[Stored]:
        """Stored feedback entries acting on ``target``, with their retraction."""
        out: list[Stored] = []
        cur = txn.cursor(db=self._db)
        if not cur.set_range(target):
            return out
        for raw_key, _value in cur:
            key = bytes(raw_key)
            if not key.startswith(target):
                break
            stored = self._load(txn, key[32:])
            if stored is not None:
                out.append(Stored(stored.entry, stored.retracted_by))
        return out

    def check(self, txn: Any, entry: SignedEntry, *, strict: bool) -> None:
        """Raise if a submitted (``strict``) feedback entry breaks a rule."""
        body = entry.body
        if body.kind == Kind.ADD or not strict:
            return
        stored = self._load(txn, body.target)
        target = Stored(stored.entry, stored.retracted_by) if stored is not None else None
        own: list[Stored] = []
        if body.kind in VOTE_KINDS:
            own = [i for i in self.items(txn, body.target) if i.entry.body.origin == body.origin]
        check_submission(entry, target, own)

    def on_append(self, txn: Any, entry: SignedEntry) -> None:
        body = entry.body
        if body.kind == Kind.ADD:
            return
        txn.put(body.target + entry.entry_id, bytes((int(body.kind),)), db=self._db)
        if body.kind == Kind.RETRACT:
            # Only the submitter's own retraction counts. Its target precedes it
            # in the same origin's chain, so it is always stored by now.
            target = self._load(txn, body.target)
            if target is not None and target.entry.body.origin == body.origin:
                txn.put(body.target, entry.entry_id, db=self._retracted, overwrite=False)
