"""Applying the roster's fork resolutions to the LMDB tables.

Sub-databases (named in ``lmdb_store._Db``; integers big-endian)::

    resolutions  origin -> version:u64 size:u64 root:32 state:u8 keep:u64
                 voided:u64 recorded_ms:u64 message (UTF-8): the resolution
                 of that origin's fork this node applied last, and how
    voided       b"e" origin 0x00 seq:u64 entry_id -> version:u64 recorded_ms:u64
                 signed-entry bytes: entries of a losing branch, out of the
                 live tables
                 b"c" origin 0x00 size:u64 -> version:u64 recorded_ms:u64 note:
                 the losing branch's checkpoints
    meta         b"resolutions_version" -> u64: rosters up to this version applied

Everything one adoption changes is written in ONE write transaction: the
fork point, the voided entries (out of ``entries``, ``ids``, ``hashes``,
``feedback``, ``retracted``, the tree and the head, into ``voided``), the
losing branch's checkpoints, the witness state, the peers' cursors and the
resolution record. Evidence (``forks``, ``evidence``) is never touched.
The decisions are :func:`node.core.resolution.plan`'s.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from node.core import evidence as ev
from node.core import merkle
from node.core.entry import Kind, SignedEntry
from node.core.resolution import plan
from node.core.roster import ForkResolution
from node.errors import StorageError, ValidationError
from node.store.tree import (
    RES_PENDING,
    RES_REFUSED,
    RES_STATE_AT,
    TlogTables,
    Write,
    _TxnReader,
    checkpoint_key,
    origin_seq_key,
    read_txn,
    tree_key,
)

_U64 = struct.Struct(">Q")
_RECORD = struct.Struct(">QQ32sBQQQ")
assert _RECORD.size > RES_STATE_AT and struct.calcsize(">QQ32s") == RES_STATE_AT
META_KEY = b"resolutions_version"
VOIDED_ENTRY = b"e"
VOIDED_CHECKPOINT = b"c"


class State(enum.IntEnum):
    DONE = 0  # the node holds the canonical prefix (it did, or re-synced it)
    PENDING = RES_PENDING  # waiting for the canonical entries up to the resolved size
    REFUSED = RES_REFUSED  # the resolution settles nothing here (see the message)


@dataclass(frozen=True, slots=True)
class Record:
    """A resolution as this node applied it."""

    origin: str
    version: int  # the roster version that carried it
    size: int
    root: bytes
    state: State
    keep: int  # entries kept live; those from ``keep`` on were voided
    voided: int  # how many entries were voided
    recorded_ms: int
    message: str = ""

    def encode(self) -> bytes:
        head = _RECORD.pack(
            self.version,
            self.size,
            self.root,
            int(self.state),
            self.keep,
            self.voided,
            self.recorded_ms,
        )
        return head + self.message.encode()

    @classmethod
    def decode(cls, origin: str, raw: bytes) -> Record:
        if len(raw) < _RECORD.size:
            raise ValidationError(f"resolution record of {origin} is truncated")
        version, size, root, state, keep, voided, ms = _RECORD.unpack(raw[: _RECORD.size])
        try:
            st = State(state)
        except ValueError:
            raise ValidationError(f"resolution record of {origin} has state {state}") from None
        return cls(origin, version, size, root, st, keep, voided, ms, raw[_RECORD.size :].decode())


@dataclass(frozen=True, slots=True)
class Applied:
    """One resolution applied (or refused) in an adoption."""

    record: Record
    voided: tuple[SignedEntry, ...]


def voided_entry_key(origin: str, seq: int, entry_id: bytes) -> bytes:
    return VOIDED_ENTRY + origin_seq_key(origin, seq) + entry_id


class ResolutionTables:
    """The resolution side of one LMDB environment (see the module docstring).

    ``dbs`` holds every handle of ``lmdb_store._Db`` by lower-case name;
    ``hash_key`` is the store's hash-index key function.
    """

    def __init__(
        self,
        env: Any,
        write: Write,
        dbs: dict[str, Any],
        tlog: TlogTables,
        hash_key: Callable[[str, bytes], bytes],
    ) -> None:
        self._env = env
        self._write = write
        self._db = dbs
        self._tlog = tlog
        self._hash_key = hash_key

    def _read(self) -> AbstractContextManager[Any]:
        return read_txn(self._env, "resolutions")

    # -- reads ------------------------------------------------------------------

    def applied_version(self) -> int:
        with self._read() as txn:
            raw = txn.get(META_KEY, db=self._db["meta"])
        return 0 if raw is None else int(_U64.unpack(raw)[0])

    def records(self) -> dict[str, Record]:
        with self._read() as txn:
            return {
                bytes(k).decode(): Record.decode(bytes(k).decode(), bytes(v))
                for k, v in txn.cursor(db=self._db["resolutions"])
            }

    def voided_entries(self, origin: str | None = None) -> list[tuple[int, SignedEntry]]:
        """Voided entries as (roster version, entry), by origin and seq."""
        prefix = VOIDED_ENTRY + (b"" if origin is None else origin.encode() + b"\x00")
        out: list[tuple[int, SignedEntry]] = []
        with self._read() as txn:
            cur = txn.cursor(db=self._db["voided"])
            if not cur.set_range(prefix):
                return out
            for key, value in cur:
                if not bytes(key).startswith(prefix):
                    break
                version = int(_U64.unpack(value[:8])[0])
                out.append((version, SignedEntry.from_bytes(bytes(value[16:]))))
        return out

    # -- the adoption -----------------------------------------------------------

    def apply(
        self,
        rosters: Sequence[tuple[int, Sequence[ForkResolution]]],
        up_to: int,
        now_ms: int,
    ) -> list[Applied]:
        """Apply the resolutions of newly adopted roster versions, oldest first,
        and mark versions up to ``up_to`` done: one write transaction."""

        def fn(txn: Any) -> list[Applied]:
            out: list[Applied] = []
            for version, resolutions in rosters:
                for res in resolutions:
                    applied = self._apply_one(txn, version, res, now_ms)
                    if applied is not None:
                        out.append(applied)
            txn.put(META_KEY, _U64.pack(up_to), db=self._db["meta"])
            return out

        result: list[Applied] = self._write(fn)
        return result

    def _apply_one(
        self, txn: Any, version: int, res: ForkResolution, now_ms: int
    ) -> Applied | None:
        origin = res.origin
        key = origin.encode()
        raw = txn.get(key, db=self._db["resolutions"])
        if raw is not None:
            held_record = Record.decode(origin, bytes(raw))
            if (held_record.size, held_record.root) == (res.size, res.root):
                return None  # carried over into a later roster version: applied already
        proofs = self._evidence_against(txn, origin)
        held = self._tlog._size(txn, origin)
        reader = _TxnReader(txn, self._db["tree"], origin)
        root_at = merkle.root_from_store(res.size, reader) if held >= res.size else None
        try:
            decision = plan(res, held, root_at, proofs)
        except ValidationError as exc:
            record = Record(
                origin, version, res.size, res.root, State.REFUSED, held, 0, now_ms, str(exc)
            )
            if raw is None or Record.decode(origin, bytes(raw)).state is State.REFUSED:
                # (an earlier resolution that was applied stays the one on record)
                txn.put(key, record.encode(), db=self._db["resolutions"])
            return Applied(record, ())
        if decision.fork_point is None:
            txn.delete(key, db=self._db["fork_points"])
        else:
            txn.put(key, _U64.pack(decision.fork_point), db=self._db["fork_points"])
        voided: list[SignedEntry] = []
        if not decision.confirmed and decision.keep < held:
            voided = self._void(txn, origin, decision.keep, held, version=version, now_ms=now_ms)
            self._reset_cursors(txn, origin, decision.keep)
        self._reset_witness(txn, res, confirmed=decision.confirmed)
        state = State.DONE if decision.confirmed else State.PENDING
        record = Record(
            origin, version, res.size, res.root, state, decision.keep, len(voided), now_ms
        )
        txn.put(key, record.encode(), db=self._db["resolutions"])
        return Applied(record, tuple(voided))

    def _evidence_against(self, txn: Any, origin: str) -> list[ev.ForkProof]:
        out: list[ev.ForkProof] = []
        for _key, value in txn.cursor(db=self._db["forks"]):
            proof = ev.ForkProof.decode(bytes(value[8:]))
            if proof.origin == origin:
                out.append(proof)
        return out

    def _void(
        self, txn: Any, origin: str, keep: int, held: int, *, version: int, now_ms: int
    ) -> list[SignedEntry]:
        """Move entries ``[keep, held)`` of ``origin`` out of every live table."""
        stamp = _U64.pack(version) + _U64.pack(now_ms)
        db = self._db
        out: list[SignedEntry] = []
        for seq in range(keep, held):
            key = origin_seq_key(origin, seq)
            raw = txn.get(key, db=db["entries"])
            if raw is None:
                raise StorageError(f"{origin} seq {seq} is below its head but not stored")
            signed = bytes(raw)
            entry = SignedEntry.from_bytes(signed)
            eid = entry.entry_id
            txn.put(VOIDED_ENTRY + key + eid, stamp + signed, db=db["voided"])
            txn.delete(key, db=db["entries"])
            txn.delete(eid, db=db["ids"])
            body = entry.body
            if body.kind == Kind.ADD:
                txn.delete(self._hash_key(body.algorithm, body.hash), eid, db=db["hashes"])
            else:
                txn.delete(body.target + eid, db=db["feedback"])
                if body.kind == Kind.RETRACT and txn.get(body.target, db=db["retracted"]) == eid:
                    txn.delete(body.target, db=db["retracted"])
            txn.delete(eid, db=db["retracted"])
            out.append(entry)
        self._truncate_tree(txn, origin, keep, held)
        if keep == 0:
            txn.delete(origin.encode(), db=db["heads"])
        else:
            prev = SignedEntry.from_bytes(
                bytes(txn.get(origin_seq_key(origin, keep - 1), db=db["entries"]))
            )
            txn.put(origin.encode(), _U64.pack(keep) + prev.entry_id, db=db["heads"])
        cur = txn.cursor(db=db["checkpoints"])
        moved: list[tuple[bytes, bytes]] = []
        if cur.set_range(checkpoint_key(origin, keep + 1)):
            prefix = origin.encode() + b"\x00"
            for ck, cv in cur:
                if not bytes(ck).startswith(prefix):
                    break
                moved.append((bytes(ck), bytes(cv)))
        for ck, cv in moved:
            txn.put(VOIDED_CHECKPOINT + ck, stamp + cv, db=db["voided"])
            txn.delete(ck, db=db["checkpoints"])
        return out

    def _truncate_tree(self, txn: Any, origin: str, keep: int, held: int) -> None:
        """Delete every stored subtree hash that covers a leaf at or after ``keep``."""
        db = self._db["tree"]
        for level in range(64):
            if held >> level == 0:
                break
            prefix = origin.encode() + b"\x00" + bytes([level]) + b"\x00"
            cur = txn.cursor(db=db)
            doomed: list[bytes] = []
            if cur.set_range(tree_key(origin, level, keep >> level)):
                for k in cur.iternext(keys=True, values=False):
                    if not bytes(k).startswith(prefix):
                        break
                    doomed.append(bytes(k))
            for k in doomed:
                txn.delete(k, db=db)

    def _reset_cursors(self, txn: Any, origin: str, keep: int) -> None:
        """Every peer's cursor for ``origin`` back to at most ``keep``."""
        suffix = b"\x00" + origin.encode()
        db = self._db["cursors"]
        lower = [
            bytes(k)
            for k, v in txn.cursor(db=db)
            if bytes(k).endswith(suffix) and _U64.unpack(v)[0] > keep
        ]
        for k in lower:
            txn.put(k, _U64.pack(keep), db=db)

    def _reset_witness(self, txn: Any, res: ForkResolution, *, confirmed: bool) -> None:
        """A witness state off the canonical history restarts at ``(size, root)``."""
        if txn.get(res.origin.encode(), db=self._db["witnessed"]) is None:
            return
        state = self._tlog._witnessed(txn, res.origin)
        if (state.size, state.root) == (res.size, res.root):
            return
        if confirmed and state.size > res.size and state.size <= self._tlog._size(txn, res.origin):
            reader = _TxnReader(txn, self._db["tree"], res.origin)
            if merkle.root_from_store(state.size, reader) == state.root:
                return  # cosigned further along the canonical history
        self._tlog.put_resolved_witness_state(txn, res.origin, res.size, res.root)
