"""Entries: the signed unit of the federation.

An entry's *body* has one deterministic byte encoding, defined here and in
docs/protocol.md. The bytes that were signed are the bytes that are hashed,
stored and relayed; they are never re-encoded. A receiver verifies the bytes
as received, then decodes them, then stores those same bytes.

Body encoding (all integers big-endian)::

    magic      4 bytes  b"CCE1"
    version    u8       1
    origin     str8     member id of the submitter (UTF-8, u8 length prefix)
    seq        u64      position in the origin's log, contiguous from 0
    prev       32 bytes entry id of seq-1; zeros at seq 0
    key_id     32 bytes SHA-256 of the raw Ed25519 public key that signs
    time_ms    i64      signing time, ms since the Unix epoch (informational)
    kind       u8       Kind (ADD, RETRACT, ENDORSE, DISPUTE, RELABEL, ACTION_REPORT)
    flags      u8       bit 0: urgent; other bits must be zero
    algorithm  str8     hash algorithm name ('' unless kind carries a hash)
    hash       bytes32  hash value (u32 length prefix)
    labels     u8 count, then str8 each: known, unique, sorted
    incident   str8     incident id or ''
    target     bytes8   entry id this entry acts on (u8 length: 0 or 32)
    reason     str16    free text, at most 1024 bytes of UTF-8
    payload    bytes32  kind-specific data (node/core/payloads.py); empty for
                        ADD, RETRACT, ENDORSE and RELABEL

The signature is Ed25519 over ``PAE("consortium-entry/v1", body)`` where
``PAE(tag, m) = u64le(len(tag)) || tag || u64le(len(m)) || m`` (DSSE's
pre-authentication encoding), so an entry signature can never be taken for a
checkpoint or roster signature. ``entry_id = SHA-256(body)``.

The stored and relayed form of a signed entry is
``u32be(len(body)) || body || signature``; its SHA-256 with a 0x00 prefix is
the entry's Merkle leaf hash.
"""

from __future__ import annotations

import enum
import hashlib
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from node.core import ed25519, hashes, labels, payloads, vpdq
from node.errors import NotFoundError, ProvenanceError, ValidationError

MAGIC = b"CCE1"
FORMAT_VERSION = 1
ENTRY_DOMAIN = b"consortium-entry/v1"
ZERO_ID = bytes(32)
SIG_LEN = 64
MAX_BODY_BYTES = 8 * 1024  # PDQ/MD5/SHA entries are ~200 bytes
MAX_OPAQUE_BODY_BYTES = 300 * 1024  # TMK+PDQF entries
MAX_VPDQ_BODY_BYTES = MAX_BODY_BYTES + vpdq.MAX_ENCODED  # one vPDQ segment and the rest
MAX_REASON_BYTES = 1024
MAX_PAYLOAD_BYTES = 4096
MAX_ORIGIN_LEN = 128
FLAG_URGENT = 0x01

_MEMBER_ID = re.compile(r"^[a-z0-9][a-z0-9.\-]*(?:/[a-z0-9][a-z0-9.\-_]*)?$")


class Kind(enum.IntEnum):
    ADD = 1
    RETRACT = 2
    ENDORSE = 3
    DISPUTE = 4
    RELABEL = 5
    ACTION_REPORT = 6


#: Kinds this version of the node accepts (feedback kinds: node/core/feedback.py).
SUPPORTED_KINDS = frozenset(Kind)


def body_cap(algorithm: str) -> int:
    """The largest body an entry of this hash algorithm may have."""
    alg = hashes.ALGORITHMS.get(algorithm)
    if alg is not None and alg.matching is hashes.Matching.OPAQUE:
        return MAX_OPAQUE_BODY_BYTES
    if alg is not None and alg.matching is hashes.Matching.FRAMES:
        return MAX_VPDQ_BODY_BYTES
    return MAX_BODY_BYTES


def a_an(word: str) -> str:
    """``"an ENDORSE"``, ``"a DISPUTE"``: for messages."""
    return ("an " if word[:1].upper() in "AEIOU" else "a ") + word


def check_member_id(member_id: str) -> str:
    if len(member_id) > MAX_ORIGIN_LEN or not _MEMBER_ID.match(member_id):
        raise ValidationError(
            f"bad member id {member_id[:MAX_ORIGIN_LEN]!r}: expected lower-case "
            "'<domain>' or '<domain>/<unit>', e.g. 'gov.nz/dia'"
        )
    return member_id


MIN_ID_PREFIX = 8  # hex digits: 4 bytes, unique among ~65k entries with odds ~1 in 130k
MAX_ID_CANDIDATES = 10  # an ambiguous prefix lists at most this many ids


def check_id_text(text: str) -> str:
    """An entry id as typed: the full 64 hex digits or a prefix of at least 8."""
    t = text.strip().lower()
    if not MIN_ID_PREFIX <= len(t) <= 64 or any(c not in "0123456789abcdef" for c in t):
        raise ValidationError(
            f"entry id {text[:70]!r}: expected {MIN_ID_PREFIX} to 64 hex digits "
            "(the full id or a unique prefix of it)"
        )
    return t


def resolve_id_prefix(prefix: str, candidates: Sequence[bytes], more: bool = False) -> bytes:
    """The one id among ``candidates`` (ids in order) that begins with ``prefix``."""
    ids = [c for c in candidates if c.hex().startswith(prefix)]
    if not ids:
        raise NotFoundError(f"no stored entry id begins with {prefix}")
    if len(ids) > 1:
        shown = ids[:MAX_ID_CANDIDATES]
        rest = " and more" if more or len(ids) > len(shown) else ""
        raise ValidationError(
            f"entry id prefix {prefix} is ambiguous: it begins {len(shown)}{rest} stored "
            f"entries: {', '.join(i.hex() for i in shown)}{rest and ', ...'}; give more digits"
        )
    return ids[0]


def key_id_of(public_key: Ed25519PublicKey) -> bytes:
    """Key id = SHA-256 of the raw 32-byte public key."""
    return hashlib.sha256(public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)).digest()


def pae(domain: bytes, message: bytes) -> bytes:
    """DSSE pre-authentication encoding: binds a signature to its purpose."""
    return struct.pack("<Q", len(domain)) + domain + struct.pack("<Q", len(message)) + message


@dataclass(frozen=True, slots=True)
class EntryBody:
    origin: str
    seq: int
    prev: bytes
    key_id: bytes
    time_ms: int
    kind: Kind
    algorithm: str = ""
    hash: bytes = b""
    labels: tuple[str, ...] = ()
    incident: str = ""
    target: bytes = b""
    reason: str = ""
    urgent: bool = False
    payload: bytes = b""
    version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        if self.version != FORMAT_VERSION:
            raise ValidationError(f"entry format version {self.version}: expected {FORMAT_VERSION}")
        check_member_id(self.origin)
        if not 0 <= self.seq < 2**63:
            raise ValidationError(f"seq {self.seq}: expected 0 <= seq < 2^63")
        if len(self.prev) != 32 or len(self.key_id) != 32:
            raise ValidationError("prev and key_id must be 32 bytes")
        if (self.seq == 0) != (self.prev == ZERO_ID):
            raise ValidationError(
                "prev must be 32 zero bytes exactly when seq is 0"
                if self.seq == 0
                else f"seq {self.seq} has an all-zero prev: expected the id of seq {self.seq - 1}"
            )
        if not -(2**63) <= self.time_ms < 2**63:
            raise ValidationError("time_ms out of range")
        if not isinstance(self.kind, Kind):
            raise ValidationError(f"unknown entry kind {self.kind!r}")
        if len(self.reason.encode()) > MAX_REASON_BYTES:
            raise ValidationError(
                f"reason has {len(self.reason.encode())} bytes: expected at most {MAX_REASON_BYTES}"
            )
        if len(self.payload) > MAX_PAYLOAD_BYTES:
            raise ValidationError(f"payload: expected at most {MAX_PAYLOAD_BYTES} bytes")
        labels.check_labels(self.labels)
        labels.check_incident(self.incident)
        if self.kind == Kind.ADD:
            hashes.check_hash(self.algorithm, self.hash)
            if self.target:
                raise ValidationError("an ADD entry has no target")
            if self.payload and self.algorithm != "PDQ":
                raise ValidationError(f"an ADD entry of {self.algorithm} has no payload")
            if self.payload:
                payloads.decode_quality(self.payload)
            return
        if len(self.target) != 32:
            raise ValidationError(
                f"{a_an(self.kind.name)} entry needs a 32-byte target entry id, "
                f"got {len(self.target)} bytes"
            )
        _check_feedback_content(self)

    @property
    def entry_id(self) -> bytes:
        return hashlib.sha256(self.encode()).digest()

    def encode(self) -> bytes:
        out = bytearray(MAGIC)
        out.append(self.version)
        _put_str8(out, self.origin)
        out += struct.pack(">Q", self.seq)
        out += self.prev + self.key_id
        out += struct.pack(">qBB", self.time_ms, int(self.kind), FLAG_URGENT if self.urgent else 0)
        _put_str8(out, self.algorithm)
        out += struct.pack(">I", len(self.hash)) + self.hash
        out.append(len(self.labels))
        for label in self.labels:
            _put_str8(out, label)
        _put_str8(out, self.incident)
        out.append(len(self.target))
        out += self.target
        reason = self.reason.encode()
        out += struct.pack(">H", len(reason)) + reason
        out += struct.pack(">I", len(self.payload)) + self.payload
        return bytes(out)

    @classmethod
    def decode(cls, data: bytes) -> EntryBody:
        """Strict decode: every field checked, no trailing bytes, canonical form."""
        cap = MAX_OPAQUE_BODY_BYTES
        if len(data) > cap:
            raise ValidationError(f"entry body has {len(data)} bytes: expected at most {cap}")
        n = len(data)
        if data[:4] != MAGIC:
            raise ValidationError("not an entry body: bad magic")
        # Straight-line parsing with struct.unpack_from: this runs for every
        # received entry and every match answer, so it avoids per-field calls.
        try:
            version = data[4]
            if version != FORMAT_VERSION:
                raise ValidationError(f"entry format version {version}: expected {FORMAT_VERSION}")
            ln = data[5]
            pos = 6 + ln
            _need(n, pos + _FIXED.size, pos - ln)
            origin = data[6:pos].decode()
            seq, prev, key_id, time_ms, kind_raw, flags = _FIXED.unpack_from(data, pos)
            pos += _FIXED.size
            ln = data[pos]
            _need(n, pos + 1 + ln + 4, pos)
            algorithm = data[pos + 1 : pos + 1 + ln].decode()
            pos += 1 + ln
            (ln,) = _U32.unpack_from(data, pos)
            _need(n, pos + 4 + ln + 1, pos)
            hash_value = data[pos + 4 : pos + 4 + ln]
            pos += 4 + ln
            count = data[pos]
            pos += 1
            found: list[str] = []
            for _ in range(count):
                ln = data[pos]
                _need(n, pos + 1 + ln, pos)
                found.append(data[pos + 1 : pos + 1 + ln].decode())
                pos += 1 + ln
            labels_ = tuple(found)
            ln = data[pos]
            _need(n, pos + 1 + ln + 1, pos)
            incident = data[pos + 1 : pos + 1 + ln].decode()
            pos += 1 + ln
            ln = data[pos]
            _need(n, pos + 1 + ln + 2, pos)
            target = data[pos + 1 : pos + 1 + ln]
            pos += 1 + ln
            (ln,) = _U16.unpack_from(data, pos)
            _need(n, pos + 2 + ln + 4, pos)
            reason = data[pos + 2 : pos + 2 + ln].decode()
            pos += 2 + ln
            (ln,) = _U32.unpack_from(data, pos)
            _need(n, pos + 4 + ln, pos)
            payload = data[pos + 4 : pos + 4 + ln]
            pos += 4 + ln
        except IndexError:
            raise ValidationError("entry body is truncated") from None
        except UnicodeDecodeError:
            raise ValidationError("entry body has a text field that is not UTF-8") from None
        if pos != n:
            raise ValidationError(f"entry body has {n - pos} trailing bytes")
        if flags & ~FLAG_URGENT:
            raise ValidationError(f"unknown entry flags 0x{flags:02x}")
        try:
            kind = Kind(kind_raw)
        except ValueError:
            raise ValidationError(f"unknown entry kind {kind_raw}") from None
        body = cls(
            origin=origin,
            seq=seq,
            prev=prev,
            key_id=key_id,
            time_ms=time_ms,
            kind=kind,
            algorithm=algorithm,
            hash=hash_value,
            labels=labels_,
            incident=incident,
            target=target,
            reason=reason,
            urgent=bool(flags & FLAG_URGENT),
            payload=payload,
            version=version,
        )
        cap = body_cap(algorithm)
        if len(data) > cap:
            raise ValidationError(f"entry body has {len(data)} bytes: expected at most {cap}")
        return body


@dataclass(frozen=True, slots=True)
class SignedEntry:
    """A body as received (exact bytes) and its signature."""

    body_bytes: bytes
    signature: bytes
    body: EntryBody = field(compare=False, repr=False)
    entry_id: bytes = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "entry_id", hashlib.sha256(self.body_bytes).digest())

    def to_bytes(self) -> bytes:
        return struct.pack(">I", len(self.body_bytes)) + self.body_bytes + self.signature

    @classmethod
    def parse(cls, body_bytes: bytes, signature: bytes) -> SignedEntry:
        """Decode (not verify) a received entry; see :func:`verify_signature`."""
        if len(signature) != SIG_LEN:
            raise ValidationError(f"signature has {len(signature)} bytes: expected {SIG_LEN}")
        return cls(body_bytes, signature, EntryBody.decode(body_bytes))

    @classmethod
    def from_bytes(cls, data: bytes) -> SignedEntry:
        if len(data) < 4 + SIG_LEN:
            raise ValidationError("stored entry is truncated")
        (n,) = struct.unpack(">I", data[:4])
        if len(data) != 4 + n + SIG_LEN:
            raise ValidationError(f"stored entry has {len(data)} bytes: expected {4 + n + SIG_LEN}")
        return cls.parse(data[4 : 4 + n], data[4 + n :])


@dataclass(frozen=True, slots=True)
class Signer:
    """A member's entry signing key. The private key never appears in a repr."""

    private_key: Ed25519PrivateKey = field(repr=False)
    key_id: bytes = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key_id", key_id_of(self.private_key.public_key()))

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    def sign(self, body: EntryBody) -> SignedEntry:
        if body.key_id != self.key_id:
            raise ValidationError("body names another key id than the signing key")
        data = body.encode()
        return SignedEntry(data, self.private_key.sign(pae(ENTRY_DOMAIN, data)), body)


def verify_signature(entry: SignedEntry, public_key: Ed25519PublicKey) -> None:
    """Raise ProvenanceError unless ``entry`` is signed by ``public_key``."""
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    if hashlib.sha256(raw).digest() != entry.body.key_id:
        raise ProvenanceError("entry names another key id than the key it was checked against")
    if not ed25519.verify(raw, pae(ENTRY_DOMAIN, entry.body_bytes), entry.signature):
        raise ProvenanceError(
            f"bad signature on {entry.body.origin} seq {entry.body.seq}: "
            "not signed by the key it names"
        )


def _check_feedback_content(body: EntryBody) -> None:
    """Kind-specific content of a non-ADD body (rules: node/core/feedback.py)."""
    kind = body.kind
    if body.algorithm or body.hash:
        raise ValidationError(f"{a_an(kind.name)} entry carries no hash")
    if kind == Kind.RELABEL:
        if not body.labels:
            raise ValidationError("a RELABEL entry needs the new labels (at least one)")
    elif body.labels:
        raise ValidationError(f"{a_an(kind.name)} entry carries no labels")
    if kind == Kind.DISPUTE:
        payloads.decode_dispute(body.payload)
    elif kind == Kind.ACTION_REPORT:
        payloads.ActionCounts.decode(body.payload)
    elif body.payload:
        raise ValidationError(f"{a_an(kind.name)} entry has no payload")


_FIXED = struct.Struct(">Q32s32sqBB")  # seq, prev, key_id, time_ms, kind, flags
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")


def _need(size: int, end: int, at: int) -> None:
    if end > size:
        raise ValidationError(
            f"entry body is truncated: needed {end - at} bytes at offset {at}, {size - at} left"
        )


def _put_str8(out: bytearray, text: str) -> None:
    data = text.encode()
    if len(data) > 255:
        raise ValidationError(f"field of {len(data)} bytes: expected at most 255")
    out.append(len(data))
    out += data
