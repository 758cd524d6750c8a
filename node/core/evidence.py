"""Self-proving evidence that an origin forked its log.

Two kinds, each checkable by anyone who knows the origin's keys:

- ENTRY_FORK: two signed entries of one origin that cannot both be in one
  log: the same seq with different signed bytes, or seq ``s`` naming a
  ``prev`` other than the id of the signed entry at ``s - 1``.
- CHECKPOINT_FORK: two checkpoints signed by the origin, ``a`` of size
  ``S1`` and root ``R1``, ``b`` of size ``S2 >= S1`` and root ``R2``, plus a
  root ``X`` and an RFC 9162 consistency proof that ``(S1, X)`` is a prefix
  of ``(S2, R2)``, with ``X != R1``. For ``S1 == S2`` the proof is empty and
  ``X == R2``: two roots for one size.

Encoding (what is gossiped and hashed; integers big-endian)::

    magic   4 bytes  b"CCX1"
    kind    u8       1 ENTRY_FORK, 2 CHECKPOINT_FORK
    origin  str8     member id
    a       u32 length, bytes   signed entry bytes, or checkpoint note text
    b       u32 length, bytes   (canonical order, see below)
    root    u8 length (0 or 32), bytes          CHECKPOINT_FORK only
    proof   u8 count, then 32 bytes each        CHECKPOINT_FORK only

Canonical form: entries ordered by seq, then bytewise; checkpoint notes carry
only the origin's signature line and are ordered by size, then bytewise.
``evidence_id = SHA-256(encoding)``. Decoding refuses anything that is not in
canonical form, so one piece of evidence has exactly one id.

Verification returns the *fork point*: the first seq from which the origin's
entries are refused (``s + 1`` for two entries at ``s``; ``s`` for a bad
``prev`` at ``s``; ``S1`` for checkpoints, since where below ``S1`` the two
histories part cannot be known from the checkpoints alone).
"""

from __future__ import annotations

import enum
import hashlib
import struct
from dataclasses import dataclass

from node.core import merkle
from node.core.checkpoint import SignedNote
from node.core.entry import SignedEntry, check_member_id
from node.core.tlog import VerifiedCheckpoint, log_name, verify_checkpoint
from node.core.trust import TrustView, check_provenance
from node.errors import ValidationError

MAGIC = b"CCX1"
MAX_EVIDENCE_BYTES = 1024 * 1024
MAX_PROOF_HASHES = 128


class EvidenceKind(enum.IntEnum):
    ENTRY_FORK = 1
    CHECKPOINT_FORK = 2


@dataclass(frozen=True, slots=True)
class ForkProof:
    """One piece of fork evidence (syntax only; see :func:`verify`)."""

    kind: EvidenceKind
    origin: str
    a: bytes
    b: bytes
    root: bytes = b""
    proof: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.kind, EvidenceKind):
            raise ValidationError(f"unknown evidence kind {self.kind!r}")
        check_member_id(self.origin)
        if not self.a or not self.b:
            raise ValidationError("evidence needs two non-empty items")
        if self.kind is EvidenceKind.ENTRY_FORK and (self.root or self.proof):
            raise ValidationError("entry-fork evidence carries no root and no proof")
        if self.kind is EvidenceKind.CHECKPOINT_FORK and len(self.root) != merkle.HASH_SIZE:
            raise ValidationError(
                f"checkpoint-fork evidence needs a {merkle.HASH_SIZE}-byte root, "
                f"got {len(self.root)} bytes"
            )
        if len(self.proof) > MAX_PROOF_HASHES or any(len(p) != 32 for p in self.proof):
            raise ValidationError(
                f"evidence proof must be at most {MAX_PROOF_HASHES} hashes of 32 bytes"
            )

    def encode(self) -> bytes:
        origin = self.origin.encode()
        out = bytearray(MAGIC)
        out.append(self.kind)
        out.append(len(origin))
        out += origin
        for item in (self.a, self.b):
            out += struct.pack(">I", len(item)) + item
        if self.kind is EvidenceKind.CHECKPOINT_FORK:
            out.append(len(self.root))
            out += self.root
            out.append(len(self.proof))
            for p in self.proof:
                out += p
        return bytes(out)

    @property
    def evidence_id(self) -> bytes:
        return hashlib.sha256(self.encode()).digest()

    @classmethod
    def decode(cls, data: bytes) -> ForkProof:
        """Strict decoding: canonical, no trailing bytes."""
        if len(data) > MAX_EVIDENCE_BYTES:
            raise ValidationError(
                f"evidence has {len(data)} bytes: expected at most {MAX_EVIDENCE_BYTES}"
            )
        r = _Reader(data)
        if r.take(4) != MAGIC:
            raise ValidationError(f"evidence must start with {MAGIC!r}")
        try:
            kind = EvidenceKind(r.u8())
        except ValueError:
            raise ValidationError("unknown evidence kind") from None
        try:
            origin = r.take(r.u8()).decode("utf-8")
        except UnicodeDecodeError:
            raise ValidationError("evidence origin is not UTF-8") from None
        a = r.take(r.u32())
        b = r.take(r.u32())
        root: bytes = b""
        proof: tuple[bytes, ...] = ()
        if kind is EvidenceKind.CHECKPOINT_FORK:
            root = r.take(r.u8())
            proof = tuple(r.take(32) for _ in range(r.u8()))
        if r.left():
            raise ValidationError(f"evidence has {r.left()} trailing bytes")
        value = cls(kind, origin, a, b, root, proof)
        canonical = _entry_order(a, b) if kind is EvidenceKind.ENTRY_FORK else _note_order(a, b)
        if canonical != (a, b):
            raise ValidationError("evidence items are not in canonical order")
        return value


class _Reader:
    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data, self._pos = data, 0

    def take(self, n: int) -> bytes:
        if self._pos + n > len(self._data):
            raise ValidationError(f"evidence is truncated at offset {self._pos}")
        chunk = self._data[self._pos : self._pos + n]
        self._pos += n
        return chunk

    def u8(self) -> int:
        return self.take(1)[0]

    def u32(self) -> int:
        return int(struct.unpack(">I", self.take(4))[0])

    def left(self) -> int:
        return len(self._data) - self._pos


def _entry_order(a: bytes, b: bytes) -> tuple[bytes, bytes]:
    ea, eb = SignedEntry.from_bytes(a), SignedEntry.from_bytes(b)
    return (a, b) if (ea.body.seq, a) <= (eb.body.seq, b) else (b, a)


def _note_size(text: bytes) -> int:
    try:
        body = SignedNote.parse(text.decode("utf-8")).body
    except UnicodeDecodeError:
        raise ValidationError("evidence checkpoint is not UTF-8") from None
    lines = body.split("\n")
    if len(lines) < 3 or not lines[1].isdigit():
        raise ValidationError("evidence checkpoint has no size line")
    return int(lines[1])


def checkpoint_size(text: bytes) -> int:
    """The size line of a checkpoint note held in evidence (no signature check)."""
    return _note_size(text)


def _note_order(a: bytes, b: bytes) -> tuple[bytes, bytes]:
    return (a, b) if (_note_size(a), a) <= (_note_size(b), b) else (b, a)


# --- builders --------------------------------------------------------------------


def entry_fork(x: SignedEntry, y: SignedEntry) -> ForkProof:
    """Evidence from two signed entries of one origin that fork its log."""
    a, b = _entry_order(x.to_bytes(), y.to_bytes())
    proof = ForkProof(EvidenceKind.ENTRY_FORK, x.body.origin, a, b)
    _entry_fork_point(proof)
    return proof


def checkpoint_fork(
    x: VerifiedCheckpoint, y: VerifiedCheckpoint, root: bytes, proof: tuple[bytes, ...] = ()
) -> ForkProof:
    """Evidence from two origin-signed checkpoints on different histories.

    With ``x.size <= y.size``: ``root`` is the root at ``x.size`` of ``y``'s
    tree and ``proof`` its consistency proof to ``y``; for equal sizes pass
    ``y.root`` and no proof.
    """
    if x.size > y.size:
        raise ValidationError("checkpoint_fork takes the smaller checkpoint first")
    a_text, b_text = x.origin_only().encode(), y.origin_only().encode()
    if x.size == y.size:
        a_text, b_text = sorted((a_text, b_text))
        root = x.root if b_text == x.origin_only().encode() else y.root
    return ForkProof(EvidenceKind.CHECKPOINT_FORK, x.origin, a_text, b_text, root, proof)


# --- verification ----------------------------------------------------------------


def entry_fork_point(proof: ForkProof) -> int:
    """The fork point of entry-fork evidence, from its structure alone (no signatures)."""
    return _entry_fork_point(proof)[2]


@dataclass(frozen=True, slots=True)
class ForkFinding:
    """What verified evidence proves: ``origin`` forked; refuse from ``fork_point``."""

    origin: str
    fork_point: int
    summary: str


def _entry_fork_point(proof: ForkProof) -> tuple[SignedEntry, SignedEntry, int, str]:
    ea, eb = SignedEntry.from_bytes(proof.a), SignedEntry.from_bytes(proof.b)
    for e in (ea, eb):
        if e.body.origin != proof.origin:
            raise ValidationError(f"evidence for {proof.origin} holds an entry of {e.body.origin}")
    sa, sb = ea.body.seq, eb.body.seq
    if sa == sb:
        if proof.a == proof.b:
            raise ValidationError(f"not a fork: the same entry twice at seq {sa}")
        return ea, eb, sa + 1, f"two signed entries at seq {sa}"
    if sb == sa + 1:
        if eb.body.prev == ea.entry_id:
            raise ValidationError(f"not a fork: seq {sb} correctly extends seq {sa}")
        return ea, eb, sb, f"seq {sb} extends another seq {sa} than the signed one"
    raise ValidationError(f"not a fork: entries at seq {sa} and {sb} do not conflict")


def verify(proof: ForkProof, trust: TrustView) -> ForkFinding:
    """Check the evidence against the origin's keys; say what it proves.

    Raises ValidationError if it proves nothing, ProvenanceError if a
    signature is not the origin's.
    """
    if proof.kind is EvidenceKind.ENTRY_FORK:
        ea, eb, point, what = _entry_fork_point(proof)
        check_provenance(trust, ea)
        check_provenance(trust, eb)
        return ForkFinding(proof.origin, point, f"{proof.origin} forked its log: {what}")
    try:
        texts = (proof.a.decode("utf-8"), proof.b.decode("utf-8"))
    except UnicodeDecodeError:
        raise ValidationError("evidence checkpoint is not UTF-8") from None
    ca, cb = (verify_checkpoint(t, trust, {}) for t in texts)
    for c, t in ((ca, texts[0]), (cb, texts[1])):
        if c.origin != proof.origin:
            raise ValidationError(f"evidence for {proof.origin} holds a checkpoint of {c.origin}")
        if c.origin_only() != t:
            raise ValidationError(
                f"evidence checkpoints must carry only the signature of {log_name(c.origin)}"
            )
    merkle.verify_consistency(ca.size, cb.size, proof.proof, proof.root, cb.root)
    if proof.root == ca.root:
        raise ValidationError(
            f"not a fork: checkpoint of size {ca.size} is consistent with size {cb.size}"
        )
    what = (
        f"two roots for size {ca.size}"
        if ca.size == cb.size
        else f"checkpoint of size {ca.size} is not a prefix of size {cb.size}"
    )
    return ForkFinding(proof.origin, ca.size, f"{proof.origin} forked its log: {what}")
