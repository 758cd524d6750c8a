"""Offline audit of a node's LMDB environment (a stopped node's data or a backup).

Re-verifies, from the stored bytes alone and the members' public keys:

- every entry: decodes, sits at the key its body names, is signed by a key
  of its origin, and chains onto the entry before it (``prev``); the id
  index and the head agree;
- every tree hash: recomputed from the stored entries (RFC 6962), none
  missing, none extra;
- every checkpoint: the origin's signature and every stored cosignature
  verify, and its root is the root of the stored entries at its size;
- the witness state, and every piece of fork evidence;
- fork resolutions: the fork points left are those of the evidence no
  applied resolution settles; every voided entry (a losing branch moved out
  of the live tables) and voided checkpoint is still signed by its origin.

Each record is judged by the roster versions the node held (its stored
history, ``rosters``), not only by the newest: an entry of a member revoked
since, a vote from before a role was removed, a cosignature by a witness
removed since were legitimate when stored. A record is a fault only if no
version allows it; the fault then names the newest version's reason.
(Adoption times are not stored, so the audit cannot tell which version was
current when a record arrived; it checks that one of them allowed it.)

Each problem is reported as a ``Fault`` naming where it is; nothing stops
the audit early. The environment is opened read-only without a lock file.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import lmdb
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from node.core import evidence as ev
from node.core import merkle
from node.core.checkpoint import SignedNote
from node.core.entry import ZERO_ID, SignedEntry, verify_signature
from node.core.resolution import divergence_bound
from node.core.roster import SignedRoster
from node.core.tlog import VerifiedCheckpoint, is_witness, verify_checkpoint
from node.core.trust import MembersFile, TrustView, check_provenance
from node.errors import NodeError, StorageError, ValidationError
from node.progress import Progress
from node.store.resolve import VOIDED_CHECKPOINT, Record, State
from node.store.tree import parse_prefixed_u64, parse_tree_key

T = TypeVar("T")
_U64 = struct.Struct(">Q")
_SUBDBS = (
    "entries",
    "ids",
    "heads",
    "evidence",
    "tree",
    "checkpoints",
    "witnessed",
    "forks",
    "fork_points",
)
#: Newer sub-databases: a backup written before them lacks them (no fault).
_OPTIONAL = ("voided", "resolutions", "rosters")


class _Rosters:
    """The trust views a record may be judged by: the one given (the newest
    roster) first, then the stored history, newest first."""

    def __init__(self, trust: TrustView, witnesses: Mapping[str, bytes]) -> None:
        self.trust = trust
        self.witnesses = dict(witnesses)
        self.views: list[TrustView] = [trust]
        #: Every witness key of any version (newest wins): a cosignature by a
        #: witness removed since was good when it was made.
        self.all_witnesses: dict[str, bytes] = {}

    def load(self, txn: Any, db: Any, report: AuditReport) -> None:
        older: list[TrustView] = []
        for key, value in txn.cursor(db=db):
            try:
                roster = SignedRoster.from_bytes(bytes(value)).roster
            except NodeError as exc:
                report.fault(f"roster version {_U64.unpack(bytes(key))[0]}", f"undecodable: {exc}")
                continue
            older.append(MembersFile.of(list(roster.members)))
            self.all_witnesses.update(
                {m.id: m.checkpoint_public_key for m in roster.members if is_witness(m)}
            )
        self.all_witnesses.update(self.witnesses)
        self.views = [self.trust, *reversed(older)]

    def first(self, check: Callable[[TrustView], T]) -> T:
        """``check`` under the first version that allows it; if none does,
        the newest version's error."""
        error: NodeError | None = None
        for view in self.views:
            try:
                return check(view)
            except NodeError as exc:
                error = error or exc
        assert error is not None
        raise error

    def provenance(self, entry: SignedEntry) -> None:
        self.first(lambda view: check_provenance(view, entry))

    def checkpoint(
        self, text: str, witnesses: Mapping[str, bytes] | None = None, *, strict: bool = False
    ) -> VerifiedCheckpoint:
        """A checkpoint whose origin signature verifies under some version."""
        keys = self.witnesses if witnesses is None else witnesses
        return self.first(lambda view: verify_checkpoint(text, view, keys, strict=strict))

    def entry_key(self, origin: str, key_id: bytes) -> Ed25519PublicKey:
        """The public key ``key_id`` names for ``origin`` in some version."""
        return self.first(lambda view: view.member(origin).key(key_id).key)


@dataclass(frozen=True, slots=True)
class Fault:
    where: str  # e.g. "entry gov.example/ct seq 3"
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


@dataclass(slots=True)
class AuditReport:
    path: Path
    faults: list[Fault] = field(default_factory=list)
    origins: int = 0
    entries: int = 0
    tree_hashes: int = 0
    checkpoints: int = 0
    cosignatures: int = 0
    witnessed: int = 0
    evidence: int = 0
    voided: int = 0
    resolutions: int = 0

    def fault(self, where: str, what: str) -> None:
        self.faults.append(Fault(where, what))

    def summary(self) -> str:
        return (
            f"audited {self.path}: {self.origins} origins, {self.entries} entries, "
            f"{self.tree_hashes} tree hashes, {self.checkpoints} checkpoints "
            f"({self.cosignatures} cosignatures), {self.witnessed} witness states, "
            f"{self.evidence} evidence records"
            + (
                f", {self.resolutions} fork resolutions ({self.voided} voided entries)"
                if self.resolutions
                else ""
            )
            + f": {len(self.faults)} fault(s)"
        )


@contextmanager
def _open(path: Path) -> Iterator[tuple[Any, dict[str, Any]]]:
    """One read transaction over the environment and its named sub-databases."""
    if not (path / "data.mdb").is_file():
        raise ValidationError(f"{path} holds no LMDB environment (no data.mdb)")
    try:
        env = lmdb.open(
            str(path), readonly=True, lock=False, max_dbs=len(_SUBDBS) + 16, subdir=True
        )
    except lmdb.Error as exc:
        raise StorageError(f"opening {path}: {type(exc).__name__}: {exc}") from exc
    try:
        dbs: dict[str, Any] = {}
        with env.begin() as txn:
            for name in (*_SUBDBS, *_OPTIONAL):
                try:
                    dbs[name] = env.open_db(name.encode(), txn=txn, create=False)
                except lmdb.NotFoundError:
                    dbs[name] = None
            yield txn, dbs
    finally:
        env.close()


def _short(h: bytes) -> str:
    return h.hex()[:16]


def audit(path: Path, trust: TrustView, witnesses: Mapping[str, bytes]) -> AuditReport:
    """Audit the LMDB environment at ``path`` against ``trust``'s keys."""
    report = AuditReport(path)
    try:
        with _open(path) as (txn, dbs):
            for name in _SUBDBS:
                if dbs[name] is None:
                    report.fault(f"sub-database {name}", "missing")
            if any(dbs[n] is None for n in ("entries", "tree", "checkpoints")):
                return report
            rosters = _Rosters(trust, witnesses)
            if dbs["rosters"] is not None:
                rosters.load(txn, dbs["rosters"], report)
            trees = _entries(txn, dbs, rosters, report)
            _tree(txn, dbs, trees, report)
            _checkpoints(txn, dbs, trees, rosters=rosters, report=report)
            resolved = _resolutions(txn, dbs, report)
            _witnessed(txn, dbs, rosters, report, resolved)
            _evidence(txn, dbs, rosters, report, resolved)
            _voided(txn, dbs, rosters, report)
    except lmdb.Error as exc:
        report.fault("LMDB", f"{type(exc).__name__}: {exc}")
    return report


def _entries(
    txn: Any, dbs: dict[str, Any], rosters: _Rosters, report: AuditReport
) -> dict[str, merkle.MemoryTree]:
    trees: dict[str, merkle.MemoryTree] = {}
    last: dict[str, tuple[int, bytes | None]] = {}  # origin -> (seq, entry id or None)
    total = int(txn.stat(dbs["entries"])["entries"])
    progress = Progress("audit: entries", total=total, unit="entries")
    for key, value in txn.cursor(db=dbs["entries"]):
        progress.advance()
        raw = bytes(value)
        try:
            origin, seq = parse_prefixed_u64(bytes(key))
        except (ValidationError, UnicodeDecodeError):
            report.fault(f"entry key {bytes(key).hex()}", "bad key layout")
            continue
        where = f"entry {origin} seq {seq}"
        report.entries += 1
        tree = trees.setdefault(origin, merkle.MemoryTree())
        prev_seq, prev_id = last.get(origin, (-1, ZERO_ID))
        if seq != prev_seq + 1:
            report.fault(where, f"gap: expected seq {prev_seq + 1}")
        tree.append(raw)  # the leaf is over the stored bytes, whatever they are
        entry_id: bytes | None = None
        try:
            entry = SignedEntry.from_bytes(raw)
        except ValidationError as exc:
            report.fault(where, f"undecodable: {exc}")
            last[origin] = (seq, None)
            continue
        entry_id = entry.entry_id
        body = entry.body
        if (body.origin, body.seq) != (origin, seq):
            report.fault(
                where, f"stored under the wrong key: body says {body.origin} seq {body.seq}"
            )
        try:
            rosters.provenance(entry)
        except NodeError as exc:
            report.fault(where, f"signature: {exc}")
        if prev_id is not None and seq == prev_seq + 1 and body.prev != prev_id:
            report.fault(
                where,
                f"chain link broken: prev names {_short(body.prev)}, "
                f"seq {seq - 1} has id {_short(prev_id)}",
            )
        loc = txn.get(entry_id, db=dbs["ids"]) if dbs["ids"] is not None else None
        if loc is None:
            report.fault(where, f"id {_short(entry_id)} missing from the id index")
        elif _U64.unpack(loc[8:16])[0] != seq or bytes(loc[16:]).decode() != origin:
            report.fault(where, f"id index points elsewhere for {_short(entry_id)}")
        last[origin] = (seq, entry_id)
    report.origins = len(trees)
    if dbs["heads"] is not None:
        for origin, (seq, entry_id) in sorted(last.items()):
            head = txn.get(origin.encode(), db=dbs["heads"])
            if head is None:
                report.fault(f"head {origin}", "missing")
            elif _U64.unpack(head[:8])[0] != seq + 1 or (
                entry_id is not None and bytes(head[8:]) != entry_id
            ):
                report.fault(
                    f"head {origin}",
                    f"says next seq {_U64.unpack(head[:8])[0]} head {_short(bytes(head[8:]))}, "
                    f"entries end at seq {seq}",
                )
    progress.finish()
    return trees


def _tree(
    txn: Any, dbs: dict[str, Any], trees: dict[str, merkle.MemoryTree], report: AuditReport
) -> None:
    seen: set[tuple[str, int, int]] = set()
    for key, value in txn.cursor(db=dbs["tree"]):
        report.tree_hashes += 1
        try:
            origin, level, index = parse_tree_key(bytes(key))
        except (ValidationError, UnicodeDecodeError):
            report.fault(f"tree key {bytes(key).hex()}", "bad key layout")
            continue
        where = f"tree hash {origin} level {level} index {index}"
        seen.add((origin, level, index))
        tree = trees.get(origin)
        try:
            expected = tree.get(level, index) if tree is not None else None
        except NodeError:
            expected = None
        if expected is None:
            report.fault(where, "extra: no such complete subtree in the stored entries")
        elif bytes(value) != expected:
            report.fault(
                where,
                f"stored {_short(bytes(value))}, recomputed from the entries {_short(expected)}",
            )
    for origin, tree in sorted(trees.items()):
        level, width = 0, tree.size
        while width:
            for index in range(width):
                if (origin, level, index) not in seen:
                    report.fault(f"tree hash {origin} level {level} index {index}", "missing")
            level, width = level + 1, width >> 1


def _checkpoints(
    txn: Any,
    dbs: dict[str, Any],
    trees: dict[str, merkle.MemoryTree],
    *,
    rosters: _Rosters,
    report: AuditReport,
) -> None:
    for key, value in txn.cursor(db=dbs["checkpoints"]):
        report.checkpoints += 1
        try:
            origin, size = parse_prefixed_u64(bytes(key))
        except (ValidationError, UnicodeDecodeError):
            report.fault(f"checkpoint key {bytes(key).hex()}", "bad key layout")
            continue
        where = f"checkpoint {origin} size {size}"
        try:
            text = bytes(value).decode("utf-8")
            vc = rosters.checkpoint(text)
        except (NodeError, UnicodeDecodeError) as exc:
            report.fault(where, f"does not verify: {exc}")
            continue
        lines = len(SignedNote.parse(text).signatures)
        if lines != 1 + len(vc.cosigners):
            # Cosignatures by witnesses the newest roster no longer has.
            vc = rosters.checkpoint(text, rosters.all_witnesses)
        report.cosignatures += len(vc.cosigners)
        if lines != 1 + len(vc.cosigners):
            bad = lines - 1 - len(vc.cosigners)
            try:
                strict = rosters.checkpoint(text, rosters.all_witnesses, strict=True)
                why = (
                    f"are not by a witness's cosignature key: {'; '.join(strict.ignored)}"
                    if strict.ignored
                    else "are not by a witness of the roster"
                )
            except NodeError as exc:
                why = f"do not verify: {exc}"
            report.fault(where, f"{bad} stored cosignature(s) {why}")
        if (vc.origin, vc.size) != (origin, size):
            report.fault(where, f"stored under the wrong key: note says {vc.origin} {vc.size}")
            continue
        tree = trees.get(origin)
        have = tree.size if tree is not None else 0
        if size > have:
            report.fault(where, f"beyond the {have} stored entries")
        elif tree is not None and tree.root(size) != vc.root:
            report.fault(
                where,
                f"root {_short(vc.root)} is not the root of the stored entries "
                f"({_short(tree.root(size))})",
            )


def _resolutions(txn: Any, dbs: dict[str, Any], report: AuditReport) -> dict[str, Record]:
    """Applied resolution records (refused ones settle nothing)."""
    out: dict[str, Record] = {}
    if dbs["resolutions"] is None:
        return out
    for key, value in txn.cursor(db=dbs["resolutions"]):
        report.resolutions += 1
        origin = bytes(key).decode("utf-8", "replace")
        try:
            record = Record.decode(origin, bytes(value))
        except (ValidationError, UnicodeDecodeError) as exc:
            report.fault(f"resolution {origin}", f"undecodable: {exc}")
            continue
        if record.state is not State.REFUSED:
            out[origin] = record
    return out


def _voided(txn: Any, dbs: dict[str, Any], rosters: _Rosters, report: AuditReport) -> None:
    """Voided entries and checkpoints: retained, so still the origin's signed words."""
    if dbs["voided"] is None:
        return
    for key, value in txn.cursor(db=dbs["voided"]):
        k, data = bytes(key), bytes(value[16:])
        if k[:1] == VOIDED_CHECKPOINT:
            owner = k[1:].split(b"\x00", 1)[0].decode("utf-8", "replace")
            where = f"voided checkpoint {owner}"
            try:
                rosters.checkpoint(data.decode("utf-8"), {})
            except (NodeError, UnicodeDecodeError) as exc:
                report.fault(where, f"does not verify: {exc}")
            continue
        report.voided += 1
        try:
            origin, seq = parse_prefixed_u64(k[1:-32])
            entry = SignedEntry.from_bytes(data)
        except (ValidationError, UnicodeDecodeError) as exc:
            report.fault(f"voided entry {k.hex()[:32]}", f"undecodable: {exc}")
            continue
        where = f"voided entry {origin} seq {seq}"
        if (entry.body.origin, entry.body.seq, entry.entry_id) != (origin, seq, k[-32:]):
            report.fault(where, "stored under another key than its body and id")
        try:
            # Its key may have been cut off since (the fork's key): the
            # signature is checked, the roster's cut-offs are not.
            verify_signature(entry, rosters.entry_key(origin, entry.body.key_id))
        except NodeError as exc:
            report.fault(where, f"signature: {exc}")


def _witnessed(
    txn: Any,
    dbs: dict[str, Any],
    rosters: _Rosters,
    report: AuditReport,
    resolved: Mapping[str, Record],
) -> None:
    if dbs["witnessed"] is None:
        return
    for key, value in txn.cursor(db=dbs["witnessed"]):
        report.witnessed += 1
        origin = bytes(key).decode("utf-8", "replace")
        where = f"witness state {origin}"
        if bytes(value[8:9]) == b"\x00":  # reset by a fork resolution
            record = resolved.get(origin)
            size, root = _U64.unpack(value[:8])[0], bytes(value[9:])
            if record is None or (record.size, record.root) != (size, root):
                report.fault(
                    where, f"reset to size {size} root {_short(root)}, which no resolution names"
                )
            continue
        try:
            vc = rosters.checkpoint(bytes(value[8:]).decode("utf-8"), {})
        except (NodeError, UnicodeDecodeError) as exc:
            report.fault(where, f"does not verify: {exc}")
            continue
        if (vc.origin, vc.size) != (origin, _U64.unpack(value[:8])[0]):
            report.fault(where, f"records size {_U64.unpack(value[:8])[0]}, note says {vc.size}")


def _evidence(
    txn: Any,
    dbs: dict[str, Any],
    rosters: _Rosters,
    report: AuditReport,
    resolved: Mapping[str, Record],
) -> None:
    points: dict[str, int] = {}
    if dbs["forks"] is not None:
        for key, value in txn.cursor(db=dbs["forks"]):
            report.evidence += 1
            where = f"evidence {_short(bytes(key))}"
            try:
                proof = ev.ForkProof.decode(bytes(value[8:]))
                finding = rosters.first(functools.partial(ev.verify, proof))
            except NodeError as exc:
                report.fault(where, f"does not verify: {exc}")
                continue
            if proof.evidence_id != bytes(key):
                report.fault(where, "stored under another id than its hash")
            record = resolved.get(finding.origin)
            if record is not None and divergence_bound(proof) < record.size:
                continue  # settled by a roster's resolution: held, refuses nothing
            points[finding.origin] = min(points.get(finding.origin, 2**64), finding.fork_point)
    if dbs["fork_points"] is not None:
        stored = {
            bytes(k).decode("utf-8", "replace"): _U64.unpack(v)[0]
            for k, v in txn.cursor(db=dbs["fork_points"])
        }
        for origin in sorted(set(stored) | set(points)):
            if stored.get(origin) != points.get(origin):
                report.fault(
                    f"fork point {origin}",
                    f"stored {stored.get(origin)}, evidence proves {points.get(origin)}",
                )
    if dbs["evidence"] is not None:
        for key, value in txn.cursor(db=dbs["evidence"]):
            where = f"conflicting entry {bytes(key[:-41]).decode('utf-8', 'replace')}"
            try:
                rosters.provenance(SignedEntry.from_bytes(bytes(value[8:])))
            except NodeError as exc:
                report.fault(where, f"does not verify: {exc}")
