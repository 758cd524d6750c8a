"""The consortium roster: who the members are, which keys speak for them.

Modelled on TUF's root role. A roster is a versioned document signed by a
threshold (k of n) of *governance keys*. It lists every member with its id,
display name, kind, jurisdiction, roles, Ed25519 entry keys (each with an
optional ``valid_until_seq`` cut-off), checkpoint key, node address and
self-signed TLS certificate (pinned by the SHA-256 of its public key), plus
the witness threshold the transparency log uses.

Chain rule (:meth:`TrustedRoster.update`): version N+1 is adopted only if

- its version is exactly N+1 (no skips; anything older is a rollback),
- its ``prev`` is the id (SHA-256 of the body) of version N,
- it is signed by the threshold of version N's governance keys AND by the
  threshold of its own; a public key counts once however often it signs,
- the newest roster adopted in one update is unexpired (intermediate
  versions may have expired since; only the newest must be current).

Every refusal says why, e.g. "roster version 5 is signed by 1/3 governance
keys of version 4: needs 2".

Body encoding (integers big-endian; ``str8`` = u8 length + UTF-8)::

    magic              4 bytes  b"CCR1"
    format             u8       1
    version            u64      1, 2, 3, ...
    expires_ms         i64      ms since the Unix epoch
    prev               32 bytes id of version-1; 32 zero bytes exactly at version 1
    gov_threshold      u8       1..gov_count
    gov_count          u8       1..64
    gov_keys           32 bytes each: raw Ed25519 keys, sorted, unique
    witness_threshold  u16      0..number of unrevoked WITNESS members
    member_count       u16
    members            sorted by id, unique; each:
      id               str8     member id
      display_name     str8     at most 128 bytes
      kind             u8       1 government, 2 platform, 3 ngo, 4 observer
      jurisdiction     2 bytes  ISO 3166-1 alpha-2, upper case; two zero bytes
                                for none (only non-government members)
      roles            u8       bit 0 SUBMIT, 1 ENDORSE, 2 WITNESS, 3 READ
      flags            u8       bit 0 revoked
      key_count        u8       1..16
      entry keys       sorted by key, unique; each: 32-byte key, u64
                       valid_until_seq (2^64-1: no cut-off)
      checkpoint_key   u8 length (0 or 32), key
      address          str8     host:port or empty
      tls_cert         u16 length (0..4096), DER certificate
    resolutions        format 2 only (format 1 exactly when there are none):
      count            u16      1..65535, sorted by origin, unique
      each: origin str8, size u64 (>= 1), root 32 bytes -- the canonical
                       history of a forked member's log (docs/transparency.md)

The signature is Ed25519 over ``PAE("consortium-roster/v1", body)`` (see
``node.core.entry.pae``), so a roster signature can never be replayed as an
entry or checkpoint signature. ``roster_id = SHA-256(body)``.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import enum
import hashlib
import itertools
import json
import re
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from node.core import tlscert
from node.core.entry import ZERO_ID, EntryBody, Kind, a_an, check_member_id, pae
from node.errors import ConflictError, ProvenanceError, RightsError, ValidationError

MAGIC = b"CCR1"
FORMAT_VERSION = 1
FORMAT_WITH_RESOLUTIONS = 2
ROSTER_DOMAIN = b"consortium-roster/v1"
FILE_FORMAT = "consortium-roster/v1"
NO_CUTOFF = 2**64 - 1
SIG_LEN = 64
MAX_ROSTER_BYTES = 1024 * 1024
MAX_GOVERNANCE_KEYS = 64
MAX_ENTRY_KEYS = 16
MAX_SIGNATURES = 128
MAX_MEMBERS = 65535
MAX_NAME_BYTES = 128
MAX_ADDRESS_BYTES = 255
FLAG_REVOKED = 0x01
#: The member record ends with its role history (see ``Member.earlier_roles``).
FLAG_ROLE_HISTORY = 0x02
#: Role changes one member record remembers.
MAX_ROLE_HISTORY = 16

_JURISDICTION = re.compile(r"^([A-Z]{2})?$")  # empty: none given (a non-government)
NO_JURISDICTION = b"\0\0"  # how an empty jurisdiction is encoded


# -- small values -------------------------------------------------------------


class MemberKind(enum.Enum):
    GOVERNMENT = "government"
    PLATFORM = "platform"
    NGO = "ngo"
    OBSERVER = "observer"

    @classmethod
    def parse(cls, text: str) -> MemberKind:
        try:
            return cls(text.lower())
        except ValueError:
            raise ValidationError(
                f"unknown member kind {text!r}: expected one of {', '.join(k.value for k in cls)}"
            ) from None


_KIND_CODES = {
    MemberKind.GOVERNMENT: 1,
    MemberKind.PLATFORM: 2,
    MemberKind.NGO: 3,
    MemberKind.OBSERVER: 4,
}
_KIND_BY_CODE = {v: k for k, v in _KIND_CODES.items()}


class Role(enum.Enum):
    """What a member may do. The value is its bit in the encoding."""

    SUBMIT = 1  # publish entries: ADD, RETRACT, RELABEL; ACTION_REPORT (platforms)
    ENDORSE = 2  # publish ENDORSE and DISPUTE entries
    WITNESS = 4  # cosign other origins' checkpoints
    READ = 8  # Pull, GetEntry and Match at other members' nodes

    @classmethod
    def parse(cls, text: str) -> Role:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValidationError(
                f"unknown role {text!r}: expected one of {', '.join(r.name for r in cls)}"
            ) from None

    @classmethod
    def parse_list(cls, text: str) -> frozenset[Role]:
        return frozenset(cls.parse(t) for t in text.split(",") if t.strip())


ALL_ROLES = frozenset(Role)
#: The roles that allow entry kinds (a change to them needs a cut-off seq).
ENTRY_ROLES = frozenset({Role.SUBMIT, Role.ENDORSE})

#: The role an entry kind needs from its origin.
ROLE_FOR_KIND: Mapping[Kind, Role] = {
    Kind.ADD: Role.SUBMIT,
    Kind.RETRACT: Role.SUBMIT,
    Kind.RELABEL: Role.SUBMIT,
    Kind.ACTION_REPORT: Role.SUBMIT,
    Kind.ENDORSE: Role.ENDORSE,
    Kind.DISPUTE: Role.ENDORSE,
}


def may_publish(member: Member, kind: Kind, seq: int | None = None) -> bool:
    """The one place that decides which member may publish which entry kind.

    ADD, RETRACT and RELABEL need the SUBMIT role; ENDORSE and DISPUTE the
    ENDORSE role; ACTION_REPORT the SUBMIT role and a platform (platforms
    act on matches). With ``seq``, the roles are those the member had for
    that seq of its log (:meth:`Member.roles_at`); without, its roles now.
    Revocation and key cut-offs are checked elsewhere
    (:meth:`Member.check_entry`).
    """
    roles = member.roles if seq is None else member.roles_at(seq)
    need = ROLE_FOR_KIND.get(kind)
    if need is None or need not in roles:
        return False
    return kind is not Kind.ACTION_REPORT or member.kind is MemberKind.PLATFORM


def _why_not(member: Member, kind: Kind, seq: int) -> str:
    roles = member.roles_at(seq)
    need = ROLE_FOR_KIND.get(kind)
    if need is not None and need in roles:
        return (
            f"member {member.id} is {a_an(member.kind.value)}: {kind.name} entries come from "
            "platforms"
        )
    since = [until for until, _ in member.earlier_roles if until < seq]
    when_ = f" after seq {since[-1]}" if since else ""
    return (
        f"member {member.id} ({member.kind.value}) has roles {roles_text(roles)}{when_}: "
        f"{kind.name} entries need the {need.name if need else '?'} role"
    )


def default_roles(kind: MemberKind) -> frozenset[Role]:
    """Roles a new member of this kind gets unless the roster says otherwise."""
    if kind is MemberKind.OBSERVER:
        return frozenset({Role.READ, Role.WITNESS})
    return ALL_ROLES


def roles_text(roles: Iterable[Role]) -> str:
    names = [r.name for r in sorted(roles, key=lambda r: r.value)]
    return ", ".join(names) or "none"


class Standing(enum.Enum):
    """How a stored entry's origin stands under the current roster."""

    ACTIVE = "active"
    REVOKED_MEMBER = "revoked-member"  # the origin was removed from the consortium
    REVOKED_KEY = "revoked-key"  # its key was removed, or it is past the key's cut-off
    UNKNOWN_ORIGIN = "unknown-origin"  # the origin is not in the roster


def when(ms: int) -> str:
    """A timestamp for messages: ISO 8601 UTC to the second."""
    try:
        moment = datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC)
    except (OverflowError, OSError, ValueError):
        return f"{ms} ms"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def raw_public_key(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def public_key_from_raw(raw: bytes) -> Ed25519PublicKey:
    if len(raw) != 32:
        raise ValidationError(f"Ed25519 public key has {len(raw)} bytes: expected 32")
    try:
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise ValidationError("not a valid Ed25519 public key") from None


def short(key: bytes) -> str:
    """How keys and ids appear in messages: 16 hex digits, never more."""
    return key.hex()[:16]


# -- members ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EntryKey:
    """A member's entry signing key and its optional cut-off."""

    public_key: bytes  # raw Ed25519, 32 bytes
    valid_until_seq: int | None = None  # entries with seq > this are refused
    key_id: bytes = field(init=False, repr=False, compare=False, default=b"")
    _key: Ed25519PublicKey | None = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        key = public_key_from_raw(self.public_key)
        if self.valid_until_seq is not None and not 0 <= self.valid_until_seq < NO_CUTOFF:
            raise ValidationError(
                f"valid_until_seq {self.valid_until_seq}: expected 0 <= seq < 2^64-1"
            )
        object.__setattr__(self, "_key", key)
        object.__setattr__(self, "key_id", hashlib.sha256(self.public_key).digest())

    @property
    def key(self) -> Ed25519PublicKey:
        assert self._key is not None
        return self._key

    def allows(self, seq: int) -> bool:
        return self.valid_until_seq is None or seq <= self.valid_until_seq


@dataclass(frozen=True, slots=True)
class Member:
    id: str
    kind: MemberKind
    jurisdiction: str
    entry_keys: tuple[EntryKey, ...]
    address: str = ""
    display_name: str = ""
    roles: frozenset[Role] = ALL_ROLES
    checkpoint_key: bytes = b""  # raw Ed25519, or empty
    tls_cert: bytes = b""  # DER self-signed certificate, or empty (no TLS identity)
    revoked: bool = False
    #: Role history: ``(until_seq, roles)`` pairs, ``until_seq`` strictly
    #: increasing: entries with seq <= until_seq (and above the previous
    #: pair's) are judged by those roles, later ones by ``roles``. A role
    #: removal takes effect after a recorded seq, so entries the member
    #: signed before it stay acceptable on every node (docs/roster.md).
    earlier_roles: tuple[tuple[int, frozenset[Role]], ...] = ()
    tls_spki: bytes = field(init=False, repr=False, compare=False, default=b"")
    _by_id: dict[bytes, EntryKey] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        check_member_id(self.id)
        where = f"member {self.id}"
        if not isinstance(self.kind, MemberKind):
            raise ValidationError(f"{where}: unknown kind {self.kind!r}")
        if not _JURISDICTION.match(self.jurisdiction):
            raise ValidationError(
                f"{where}: jurisdiction {self.jurisdiction!r}: expected an "
                "ISO 3166-1 alpha-2 code such as 'NZ', or empty"
            )
        if not self.jurisdiction and self.kind is MemberKind.GOVERNMENT:
            raise ValidationError(
                f"{where}: a government member needs a jurisdiction (ISO 3166-1 alpha-2)"
            )
        if len(self.display_name.encode()) > MAX_NAME_BYTES:
            raise ValidationError(f"{where}: display name: expected at most {MAX_NAME_BYTES} bytes")
        if len(self.address.encode()) > MAX_ADDRESS_BYTES or any(c.isspace() for c in self.address):
            raise ValidationError(f"{where}: address {self.address[:40]!r}: expected host:port")
        if not all(isinstance(r, Role) for r in self.roles):
            raise ValidationError(f"{where}: roles must be Role values")
        object.__setattr__(self, "roles", frozenset(self.roles))
        history = tuple((until, frozenset(roles)) for until, roles in self.earlier_roles)
        if len(history) > MAX_ROLE_HISTORY:
            raise ValidationError(
                f"{where} has {len(history)} role changes: at most {MAX_ROLE_HISTORY}"
            )
        last = -1
        for until, roles in history:
            if (
                isinstance(until, bool)
                or not isinstance(until, int)
                or not last < until < NO_CUTOFF
            ):
                raise ValidationError(
                    f"{where}: role history seq {until}: expected increasing seqs below 2^64-1"
                )
            if not all(isinstance(r, Role) for r in roles):
                raise ValidationError(f"{where}: roles must be Role values")
            last = until
        object.__setattr__(self, "earlier_roles", history)
        if not 1 <= len(self.entry_keys) <= MAX_ENTRY_KEYS:
            raise ValidationError(
                f"{where} has {len(self.entry_keys)} entry keys: expected 1..{MAX_ENTRY_KEYS}"
            )
        keys = tuple(sorted(self.entry_keys, key=lambda k: k.public_key))
        object.__setattr__(self, "entry_keys", keys)
        for k in keys:
            if k.key_id in self._by_id:
                raise ValidationError(f"{where}: entry key {short(k.public_key)} is listed twice")
            self._by_id[k.key_id] = k
        if self.checkpoint_key:
            public_key_from_raw(self.checkpoint_key)
        if self.tls_cert:
            object.__setattr__(self, "tls_spki", tlscert.spki_sha256(self.tls_cert))

    @property
    def checkpoint_public_key(self) -> bytes:
        """The raw key that signs this member's checkpoints and cosignatures
        (the transparency log): its checkpoint key, else its first entry key."""
        return self.checkpoint_key or self.entry_keys[0].public_key

    # -- the entry rules --------------------------------------------------

    def roles_at(self, seq: int) -> frozenset[Role]:
        """The roles that judge this member's entry at ``seq``."""
        for until, roles in self.earlier_roles:
            if seq <= until:
                return roles
        return self.roles

    def with_roles(self, roles: frozenset[Role], until_seq: int | None) -> Member:
        """This member with new ``roles``: for entries after ``until_seq``
        when given (earlier ones keep the roles they had), else for all."""
        if until_seq is None:
            return replace(self, roles=roles)
        history = tuple((u, r) for u, r in self.earlier_roles if u < until_seq)
        return replace(self, roles=roles, earlier_roles=(*history, (until_seq, self.roles)))

    def key(self, key_id: bytes) -> EntryKey:
        try:
            return self._by_id[key_id]
        except KeyError:
            raise ProvenanceError(
                f"key {short(key_id)} is not an entry key of member {self.id}"
            ) from None

    def check_entry(self, body: EntryBody) -> Ed25519PublicKey:
        """The key that must have signed ``body``, if this member may publish it.

        Raises ProvenanceError naming the rule that refuses it: a revoked
        member (past its keys' cut-offs), a role that does not allow the
        kind, a key that is not the member's, or a seq past the key's cut-off.
        """
        key = self.key(body.key_id)
        if self.revoked and (key.valid_until_seq is None or body.seq > key.valid_until_seq):
            raise RightsError(
                f"member {self.id} is revoked: it may publish no new entries"
                if key.valid_until_seq is None
                else f"member {self.id} is revoked: entries after seq {key.valid_until_seq} "
                f"are refused, got seq {body.seq}"
            )
        if not may_publish(self, body.kind, body.seq):
            raise RightsError(_why_not(self, body.kind, body.seq))
        if not key.allows(body.seq):
            raise RightsError(
                f"key {short(body.key_id)} of member {self.id} is valid until seq "
                f"{key.valid_until_seq}: got seq {body.seq}"
            )
        return key.key

    def accepts(self, body: EntryBody) -> bool:
        """Would :meth:`check_entry` take ``body`` (its rights, not its signature)?"""
        try:
            self.check_entry(body)
        except ProvenanceError:
            return False
        return True

    def standing(self, body: EntryBody) -> Standing:
        """How an already stored entry of this member stands now."""
        if self.revoked:
            return Standing.REVOKED_MEMBER
        key = self._by_id.get(body.key_id)
        if key is None or not key.allows(body.seq):
            return Standing.REVOKED_KEY
        return Standing.ACTIVE


# -- fork resolutions ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ForkResolution:
    """Governance's word on a forked log: ``origin``'s canonical history is
    the one whose tree of ``size`` entries has root ``root``. Nodes keep the
    evidence, drop the other branch from their live tables and accept the
    origin's entries again (node/resolutions.py)."""

    origin: str
    size: int
    root: bytes

    def __post_init__(self) -> None:
        check_member_id(self.origin)
        where = f"resolution of {self.origin}"
        if isinstance(self.size, bool) or not isinstance(self.size, int):
            raise ValidationError(f"{where}: size must be an integer")
        if not 1 <= self.size < NO_CUTOFF:
            raise ValidationError(f"{where}: size {self.size}: expected 1 <= size < 2^64-1")
        if not isinstance(self.root, bytes) or len(self.root) != 32:
            got = len(self.root) if isinstance(self.root, bytes) else type(self.root).__name__
            raise ValidationError(f"{where}: root has {got} bytes: expected 32")


# -- the roster document ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Roster:
    version: int
    expires_ms: int
    governance_keys: tuple[bytes, ...]
    governance_threshold: int
    members: tuple[Member, ...]
    prev: bytes = ZERO_ID
    witness_threshold: int = 0
    resolutions: tuple[ForkResolution, ...] = ()
    _by_id: dict[str, Member] = field(init=False, repr=False, compare=False, default_factory=dict)
    _by_spki: dict[bytes, Member] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        if not 1 <= self.version < 2**63:
            raise ValidationError(f"roster version {self.version}: expected 1 <= version < 2^63")
        if not -(2**63) <= self.expires_ms < 2**63:
            raise ValidationError("roster expiry out of range")
        if len(self.prev) != 32:
            raise ValidationError(f"roster prev has {len(self.prev)} bytes: expected 32")
        if (self.version == 1) != (self.prev == ZERO_ID):
            raise ValidationError(
                "roster version 1 has no previous version: prev must be 32 zero bytes"
                if self.version == 1
                else f"roster version {self.version} needs the id of version "
                f"{self.version - 1} as its prev"
            )
        gov = tuple(sorted(self.governance_keys))
        if not 1 <= len(gov) <= MAX_GOVERNANCE_KEYS:
            raise ValidationError(
                f"roster has {len(gov)} governance keys: expected 1..{MAX_GOVERNANCE_KEYS}"
            )
        for a, b in itertools.pairwise(gov):
            if a == b:
                raise ValidationError(f"governance key {short(a)} is listed twice")
        for k in gov:
            public_key_from_raw(k)
        object.__setattr__(self, "governance_keys", gov)
        if not 1 <= self.governance_threshold <= len(gov):
            raise ValidationError(
                f"governance threshold {self.governance_threshold}: expected 1..{len(gov)} "
                f"(the number of governance keys)"
            )
        members = tuple(sorted(self.members, key=lambda m: m.id.encode()))
        if len(members) > MAX_MEMBERS:
            raise ValidationError(f"roster has {len(members)} members: at most {MAX_MEMBERS}")
        object.__setattr__(self, "members", members)
        entry_keys: dict[bytes, str] = {}
        checkpoint_keys: dict[bytes, str] = {}
        for m in members:
            if m.id in self._by_id:
                raise ValidationError(f"member {m.id} is listed twice")
            self._by_id[m.id] = m
            for ek in m.entry_keys:
                other = entry_keys.setdefault(ek.public_key, m.id)
                if other != m.id:
                    raise ValidationError(
                        f"entry key {short(ek.public_key)} is listed for both {other} and {m.id}"
                    )
            if m.checkpoint_key:
                other = checkpoint_keys.setdefault(m.checkpoint_key, m.id)
                if other != m.id:
                    raise ValidationError(
                        f"checkpoint key {short(m.checkpoint_key)} is listed for both "
                        f"{other} and {m.id}"
                    )
            if m.tls_spki:
                if m.tls_spki in self._by_spki:
                    raise ValidationError(
                        f"TLS key {short(m.tls_spki)} is pinned for both "
                        f"{self._by_spki[m.tls_spki].id} and {m.id}"
                    )
                self._by_spki[m.tls_spki] = m
        resolutions = tuple(sorted(self.resolutions, key=lambda r: r.origin.encode()))
        if len(resolutions) > MAX_MEMBERS:
            raise ValidationError(
                f"roster has {len(resolutions)} resolutions: at most {MAX_MEMBERS}"
            )
        for a_res, b_res in itertools.pairwise(resolutions):
            if a_res.origin == b_res.origin:
                raise ValidationError(f"roster resolves the fork of {a_res.origin} twice")
        for res in resolutions:
            if not isinstance(res, ForkResolution):
                raise ValidationError("roster resolutions must be ForkResolution values")
            if res.origin not in self._by_id:
                raise ValidationError(
                    f"resolution of {res.origin}: no such member in roster version {self.version}"
                )
        object.__setattr__(self, "resolutions", resolutions)
        witnesses = len(self.witnesses())
        if not 0 <= self.witness_threshold <= witnesses:
            raise ValidationError(
                f"witness threshold {self.witness_threshold}: expected 0..{witnesses} "
                "(the number of unrevoked members with the WITNESS role)"
            )

    # -- the trust view -------------------------------------------------------

    def member(self, member_id: str) -> Member:
        try:
            return self._by_id[member_id]
        except KeyError:
            raise ProvenanceError(f"unknown origin {member_id!r}: not a member") from None

    def get(self, member_id: str) -> Member | None:
        return self._by_id.get(member_id)

    def member_by_spki(self, spki: bytes) -> Member | None:
        return self._by_spki.get(spki)

    def witnesses(self) -> tuple[Member, ...]:
        return tuple(m for m in self.members if Role.WITNESS in m.roles and not m.revoked)

    def pinned_certs(self) -> tuple[bytes, ...]:
        """DER certificates of the unrevoked members: the TLS trust roots."""
        return tuple(m.tls_cert for m in self.members if m.tls_cert and not m.revoked)

    def handshake_certs(self) -> tuple[bytes, ...]:
        """DER certificates of every member, revoked ones too: a node's server
        trust roots. A revoked member completes the handshake only to be told
        why every call is refused (:func:`authorize`, :func:`revoked_caller`)
        instead of retrying blind handshake failures."""
        return tuple(m.tls_cert for m in self.members if m.tls_cert)

    @property
    def roster_id(self) -> bytes:
        return hashlib.sha256(self.encode()).digest()

    # -- drafting -------------------------------------------------------------

    def next_draft(self, expires_ms: int) -> Roster:
        """Version N+1 chained to this one, same content, new expiry."""
        return replace(self, version=self.version + 1, prev=self.roster_id, expires_ms=expires_ms)

    def resolution(self, origin: str) -> ForkResolution | None:
        for res in self.resolutions:
            if res.origin == origin:
                return res
        return None

    def with_resolution(self, res: ForkResolution) -> Roster:
        """Add ``res``, or replace the resolution of its origin."""
        others = tuple(r for r in self.resolutions if r.origin != res.origin)
        return replace(self, resolutions=(*others, res))

    def without_resolution(self, origin: str) -> Roster:
        return replace(self, resolutions=tuple(r for r in self.resolutions if r.origin != origin))

    def with_member(self, member: Member) -> Roster:
        """Add ``member``, or replace the member with its id."""
        others = tuple(m for m in self.members if m.id != member.id)
        return replace(self, members=(*others, member))

    # -- encoding -------------------------------------------------------------

    def encode(self) -> bytes:
        out = bytearray(MAGIC)
        out.append(FORMAT_WITH_RESOLUTIONS if self.resolutions else FORMAT_VERSION)
        out += struct.pack(">Qq", self.version, self.expires_ms)
        out += self.prev
        out += struct.pack(">BB", self.governance_threshold, len(self.governance_keys))
        for gk in self.governance_keys:
            out += gk
        out += struct.pack(">HH", self.witness_threshold, len(self.members))
        for m in self.members:
            _put_str8(out, m.id)
            _put_str8(out, m.display_name)
            out.append(_KIND_CODES[m.kind])
            out += m.jurisdiction.encode("ascii") or NO_JURISDICTION
            out.append(_role_bits(m.roles))
            out.append(
                (FLAG_REVOKED if m.revoked else 0) | (FLAG_ROLE_HISTORY if m.earlier_roles else 0)
            )
            out.append(len(m.entry_keys))
            for k in m.entry_keys:
                cutoff = NO_CUTOFF if k.valid_until_seq is None else k.valid_until_seq
                out += k.public_key + struct.pack(">Q", cutoff)
            out.append(len(m.checkpoint_key))
            out += m.checkpoint_key
            _put_str8(out, m.address)
            out += struct.pack(">H", len(m.tls_cert)) + m.tls_cert
            if m.earlier_roles:
                out.append(len(m.earlier_roles))
                for until, roles in m.earlier_roles:
                    out += struct.pack(">Q", until)
                    out.append(_role_bits(roles))
        if self.resolutions:
            out += struct.pack(">H", len(self.resolutions))
            for res in self.resolutions:
                _put_str8(out, res.origin)
                out += struct.pack(">Q", res.size) + res.root
        return bytes(out)

    @classmethod
    def decode(cls, data: bytes) -> Roster:
        """Strict decode: every field checked, no trailing bytes, canonical order."""
        if len(data) > MAX_ROSTER_BYTES:
            raise ValidationError(
                f"roster body has {len(data)} bytes: expected at most {MAX_ROSTER_BYTES}"
            )
        r = _Reader(data)
        if r.take(4) != MAGIC:
            raise ValidationError("not a roster body: bad magic")
        fmt = r.u8()
        if fmt not in (FORMAT_VERSION, FORMAT_WITH_RESOLUTIONS):
            raise ValidationError(
                f"roster format {fmt}: expected {FORMAT_VERSION} or {FORMAT_WITH_RESOLUTIONS}"
            )
        version, expires_ms = r.unpack2(">Qq")
        prev = r.take(32)
        threshold, count = r.take(1)[0], r.u8()
        gov = tuple(r.take(32) for _ in range(count))
        witness_threshold, member_count = r.unpack2(">HH")
        members = tuple(_read_member(r) for _ in range(member_count))
        resolutions: list[ForkResolution] = []
        if fmt == FORMAT_WITH_RESOLUTIONS:
            (count,) = struct.unpack(">H", r.take(2))
            if count == 0:
                raise ValidationError(
                    f"roster format {FORMAT_WITH_RESOLUTIONS} needs at least one resolution "
                    f"(format {FORMAT_VERSION} has none)"
                )
            for _ in range(count):
                origin = r.str8()
                (size,) = struct.unpack(">Q", r.take(8))
                resolutions.append(ForkResolution(origin, size, r.take(32)))
        if r.remaining():
            raise ValidationError(f"roster body has {r.remaining()} trailing bytes")
        roster = cls(
            version=version,
            expires_ms=expires_ms,
            governance_keys=gov,
            governance_threshold=threshold,
            members=members,
            prev=prev,
            witness_threshold=witness_threshold,
            resolutions=tuple(resolutions),
        )
        if roster.encode() != data:
            raise ValidationError(
                "roster body is not canonical: keys and members must be sorted and unique"
            )
        return roster


def _role_bits(roles: Iterable[Role]) -> int:
    return sum(r.value for r in roles)


def _read_roles(member_id: str, bits: int) -> frozenset[Role]:
    if bits & ~_role_bits(Role):
        raise ValidationError(f"member {member_id}: unknown role bits 0x{bits:02x}")
    return frozenset(x for x in Role if bits & x.value)


def _read_member(r: _Reader) -> Member:
    member_id = r.str8()
    display_name = r.str8()
    kind_code = r.u8()
    if kind_code not in _KIND_BY_CODE:
        raise ValidationError(f"member {member_id}: unknown kind code {kind_code}")
    jurisdiction = r.text(2)
    if jurisdiction == NO_JURISDICTION.decode():
        jurisdiction = ""
    role_bits, flags = r.u8(), r.u8()
    roles = _read_roles(member_id, role_bits)
    if flags & ~(FLAG_REVOKED | FLAG_ROLE_HISTORY):
        raise ValidationError(f"member {member_id}: unknown flags 0x{flags:02x}")
    keys = []
    for _ in range(r.u8()):
        raw = r.take(32)
        (cutoff,) = struct.unpack(">Q", r.take(8))
        keys.append(EntryKey(raw, None if cutoff == NO_CUTOFF else cutoff))
    checkpoint_key = r.take(r.u8())
    address = r.str8()
    (cert_len,) = struct.unpack(">H", r.take(2))
    tls_cert = r.take(cert_len)
    history: list[tuple[int, frozenset[Role]]] = []
    if flags & FLAG_ROLE_HISTORY:
        count = r.u8()
        if count == 0:
            raise ValidationError(f"member {member_id}: role history flag set with no changes")
        for _ in range(count):
            (until,) = struct.unpack(">Q", r.take(8))
            history.append((until, _read_roles(member_id, r.u8())))
    return Member(
        id=member_id,
        kind=_KIND_BY_CODE[kind_code],
        jurisdiction=jurisdiction,
        entry_keys=tuple(keys),
        address=address,
        display_name=display_name,
        roles=roles,
        checkpoint_key=checkpoint_key,
        tls_cert=tls_cert,
        revoked=bool(flags & FLAG_REVOKED),
        earlier_roles=tuple(history),
    )


# -- signatures ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RosterSignature:
    public_key: bytes  # raw Ed25519: signatures name keys, never key ids
    signature: bytes

    def __post_init__(self) -> None:
        if len(self.public_key) != 32:
            raise ValidationError(
                f"roster signature key has {len(self.public_key)} bytes: expected 32"
            )
        if len(self.signature) != SIG_LEN:
            raise ValidationError(
                f"roster signature has {len(self.signature)} bytes: expected {SIG_LEN}"
            )

    def verifies(self, body: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(
                self.signature, pae(ROSTER_DOMAIN, body)
            )
        except (InvalidSignature, ValueError):
            return False
        return True


@dataclass(frozen=True, slots=True)
class SignedRoster:
    """A roster body as signed (exact bytes) and its signatures."""

    body_bytes: bytes
    signatures: tuple[RosterSignature, ...]
    roster: Roster = field(compare=False, repr=False)

    @classmethod
    def parse(cls, body_bytes: bytes, signatures: Sequence[RosterSignature]) -> SignedRoster:
        """Decode (not verify) a received roster."""
        if len(signatures) > MAX_SIGNATURES:
            raise ValidationError(
                f"roster has {len(signatures)} signatures: expected at most {MAX_SIGNATURES}"
            )
        return cls(body_bytes, tuple(signatures), Roster.decode(body_bytes))

    @classmethod
    def draft(cls, roster: Roster) -> SignedRoster:
        return cls(roster.encode(), (), roster)

    @property
    def version(self) -> int:
        return self.roster.version

    @property
    def roster_id(self) -> bytes:
        return hashlib.sha256(self.body_bytes).digest()

    def valid_signers(self, keys: Iterable[bytes]) -> frozenset[bytes]:
        """The distinct keys among ``keys`` with a good signature here.

        A key that signs twice, or is listed twice, counts once.
        """
        wanted = set(keys)
        return frozenset(
            s.public_key
            for s in self.signatures
            if s.public_key in wanted and s.verifies(self.body_bytes)
        )

    def signed_by(self, key: Ed25519PrivateKey) -> SignedRoster:
        """This roster with ``key``'s signature added (replacing an older one)."""
        public = raw_public_key(key.public_key())
        sig = RosterSignature(public, key.sign(pae(ROSTER_DOMAIN, self.body_bytes)))
        others = tuple(s for s in self.signatures if s.public_key != public)
        return replace(self, signatures=_sorted_sigs((*others, sig)))

    def merged(self, other: SignedRoster) -> SignedRoster:
        """Both copies' signatures, for separate key holders signing one draft."""
        if other.body_bytes != self.body_bytes:
            raise ValidationError(
                f"cannot merge signatures: the drafts differ (version {self.version} "
                f"id {short(self.roster_id)} vs version {other.version} "
                f"id {short(other.roster_id)})"
            )
        by_key: dict[bytes, RosterSignature] = {}
        for s in (*self.signatures, *other.signatures):
            held = by_key.get(s.public_key)
            if held is None or (not held.verifies(self.body_bytes) and s.verifies(self.body_bytes)):
                by_key[s.public_key] = s
        return replace(self, signatures=_sorted_sigs(tuple(by_key.values())))

    def to_bytes(self) -> bytes:
        """Stored form: u32 body length, body, u8 count, then (key, signature) pairs."""
        out = bytearray(struct.pack(">I", len(self.body_bytes)))
        out += self.body_bytes
        out.append(len(self.signatures))
        for s in self.signatures:
            out += s.public_key + s.signature
        return bytes(out)

    @classmethod
    def from_bytes(cls, data: bytes) -> SignedRoster:
        if len(data) < 5:
            raise ValidationError("stored roster is truncated")
        (n,) = struct.unpack(">I", data[:4])
        count_at = 4 + n
        if len(data) <= count_at:
            raise ValidationError("stored roster is truncated")
        count = data[count_at]
        sigs_at = count_at + 1
        if len(data) != sigs_at + count * (32 + SIG_LEN):
            raise ValidationError("stored roster has a bad length")
        sigs = [
            RosterSignature(data[i : i + 32], data[i + 32 : i + 32 + SIG_LEN])
            for i in range(sigs_at, len(data), 32 + SIG_LEN)
        ]
        return cls.parse(data[4:count_at], sigs)


def _sorted_sigs(sigs: tuple[RosterSignature, ...]) -> tuple[RosterSignature, ...]:
    return tuple(sorted(sigs, key=lambda s: s.public_key))


# -- verification -------------------------------------------------------------


def check_threshold(signed: SignedRoster, of: Roster) -> None:
    """``signed`` carries the threshold of ``of``'s governance keys."""
    good = len(signed.valid_signers(of.governance_keys))
    if good < of.governance_threshold:
        own = " (its own)" if of.version == signed.version else ""
        raise ProvenanceError(
            f"roster version {signed.version} is signed by {good}/{len(of.governance_keys)} "
            f"governance keys of version {of.version}{own}: needs {of.governance_threshold}"
        )


def check_unexpired(signed: SignedRoster, now_ms: int) -> None:
    if signed.roster.expires_ms <= now_ms:
        raise ProvenanceError(
            f"roster version {signed.version} expired at {when(signed.roster.expires_ms)}: "
            "only an unexpired roster can be adopted"
        )


def verify_anchor(signed: SignedRoster, now_ms: int) -> Roster:
    """A trust anchor installed by the operator: its own threshold, unexpired."""
    check_threshold(signed, signed.roster)
    check_unexpired(signed, now_ms)
    return signed.roster


def verify_successor(held: Roster, new: SignedRoster) -> Roster:
    """``new`` is the next version after ``held`` (expiry is not checked here)."""
    if new.version <= held.version:
        raise ProvenanceError(
            f"rollback refused: roster version {new.version} is not newer than "
            f"the held version {held.version}"
        )
    if new.version != held.version + 1:
        raise ProvenanceError(
            f"roster version {new.version} does not follow the held version {held.version}: "
            f"expected version {held.version + 1} (versions go up by one)"
        )
    held_id = held.roster_id
    if new.roster.prev != held_id:
        raise ProvenanceError(
            f"roster version {new.version} does not chain: its prev is "
            f"{short(new.roster.prev)}, the id of the held version {held.version} "
            f"is {short(held_id)}"
        )
    check_threshold(new, held)
    check_threshold(new, new.roster)
    return new.roster


@dataclass(frozen=True, slots=True)
class Update:
    """What :meth:`TrustedRoster.update` adopted, and why it stopped short."""

    adopted: tuple[SignedRoster, ...] = ()
    refused: str = ""  # the reason later offered versions were not adopted


class TrustedRoster:
    """The newest roster this node trusts, and the chain rule for newer ones.

    Pure: fed signed rosters and the time, it decides; the caller persists
    what was adopted (like python-tuf's ``TrustedMetadataSet``).
    """

    def __init__(self, current: SignedRoster) -> None:
        self.current = current

    @property
    def roster(self) -> Roster:
        return self.current.roster

    def update(self, offered: Sequence[SignedRoster], now_ms: int) -> Update:
        """Adopt the longest run of offered versions that chains from the held one.

        The newest adopted version must be unexpired; earlier ones may have
        expired. Raises (ProvenanceError, or ConflictError for a second body
        at the held version) when nothing can be adopted and something was
        wrong; returns an empty Update when everything offered is already held.
        """
        held = self.current
        by_version: dict[int, SignedRoster] = {}
        for s in sorted(offered, key=lambda s: s.version):
            by_version.setdefault(s.version, s)
        same = by_version.get(held.version)
        if same is not None and same.body_bytes != held.body_bytes:
            raise ConflictError(
                f"roster version {held.version} offered with another body than the held "
                f"one (ids {short(same.roster_id)} and {short(held.roster_id)}): two rosters "
                "signed for one version"
            )
        newer = [s for v, s in sorted(by_version.items()) if v > held.version]
        if not newer:
            older = [v for v in by_version if v < held.version]
            if older and same is None:
                raise ProvenanceError(
                    f"rollback refused: roster version {max(older)} is older than "
                    f"the held version {held.version}"
                )
            return Update()
        chain: list[SignedRoster] = []
        error: ProvenanceError | None = None
        trusted = held.roster
        for s in newer:
            try:
                verify_successor(trusted, s)
            except ProvenanceError as exc:
                error = exc
                break
            chain.append(s)
            trusted = s.roster
        expired: ProvenanceError | None = None
        while chain and chain[-1].roster.expires_ms <= now_ms:
            if expired is None:
                try:
                    check_unexpired(chain[-1], now_ms)
                except ProvenanceError as exc:
                    expired = exc
            chain.pop()
        reason = expired or error
        if not chain:
            assert reason is not None
            raise reason
        self.current = chain[-1]
        return Update(tuple(chain), str(reason) if reason else "")


# -- authorization ------------------------------------------------------------


class Action(enum.Enum):
    """What a caller asks of a node, for the authorization table."""

    READ = "read"  # Pull, GetEntry, Match: the READ role
    SUBMIT = "submit"  # Submit: the SUBMIT role, and only the caller's own entries
    MEMBER = "member"  # Status, GetRoster, OfferRoster, AddCheckpoint, SubmitEvidence
    OPERATOR = "operator"  # policy reload, match log: this node's own TLS key only


@dataclass(frozen=True, slots=True)
class Caller:
    member_id: str  # the caller's member id; '' for an unauthenticated dev client
    operator: bool = False  # holds this node's own TLS key


_ROLE_FOR_ACTION = {Action.READ: Role.READ, Action.SUBMIT: Role.SUBMIT}


def revoked_caller(member_id: str, version: int) -> str:
    """What a node answers a revoked member's every call; the member's own
    node recognises it (:func:`is_revoked_refusal`) and raises an alert."""
    return f"caller {member_id} is revoked in roster version {version}"


def is_revoked_refusal(member_id: str, error: str) -> bool:
    return f"caller {member_id} is revoked in roster version " in error


def authorize(
    roster: Roster,
    caller_spki: bytes,
    action: Action,
    what: str,
    *,
    own: Caller,
    own_spki: bytes,
) -> Caller:
    """Decide from the caller's pinned TLS key whether it may do ``what``.

    The node's own key is its operator, who may do everything. Anyone else
    must be an unrevoked member pinned in the roster with the needed role.
    """
    if caller_spki == own_spki:
        return own
    member = roster.member_by_spki(caller_spki)
    if member is None:
        raise ProvenanceError(
            f"caller's TLS key {short(caller_spki)} is not pinned in roster version "
            f"{roster.version}"
        )
    if member.revoked:
        raise ProvenanceError(revoked_caller(member.id, roster.version))
    if action is Action.OPERATOR:
        raise ProvenanceError(
            f"{what} is for this node's operator (its own TLS key): caller {member.id} may not"
        )
    need = _ROLE_FOR_ACTION.get(action)
    if need is not None and need not in member.roles:
        raise ProvenanceError(
            f"caller {member.id} may not {what}: needs the {need.name} role, "
            f"has {roles_text(member.roles)}"
        )
    return Caller(member.id)


def check_own_entries(caller: Caller, origins: Sequence[str]) -> None:
    """A member submits only its own entries; the operator may relay any."""
    if caller.operator or not caller.member_id:
        return
    for i, origin in enumerate(origins):
        if origin != caller.member_id:
            where = f"entry {i + 1} of {len(origins)}" if len(origins) > 1 else "the entry"
            raise ProvenanceError(
                f"caller {caller.member_id} may submit only its own entries: "
                f"{where} is from {origin}"
            )


# -- files: drafts, signed rosters and member cards (JSON) --------------------


def dumps_file(signed: SignedRoster) -> str:
    doc = {
        "format": FILE_FORMAT,
        "body": base64.b64encode(signed.body_bytes).decode(),
        "signatures": [
            {"key": s.public_key.hex(), "sig": base64.b64encode(s.signature).decode()}
            for s in signed.signatures
        ],
    }
    return json.dumps(doc, indent=2) + "\n"


def loads_file(text: str) -> SignedRoster:
    try:
        doc = json.loads(text)
    except ValueError:
        raise ValidationError("roster file is not JSON") from None
    if not isinstance(doc, dict) or doc.get("format") != FILE_FORMAT:
        raise ValidationError(f'roster file: expected "format": "{FILE_FORMAT}"')
    unknown = sorted(set(doc) - {"format", "body", "signatures"})
    if unknown:
        raise ValidationError(f"roster file: unknown field {unknown[0]!r}")
    sigs_doc = doc.get("signatures", [])
    if not isinstance(sigs_doc, list):
        raise ValidationError("roster file: 'signatures' must be a list")
    try:
        body = base64.b64decode(str(doc.get("body", "")), validate=True)
        sigs = [
            RosterSignature(bytes.fromhex(str(s["key"])), base64.b64decode(s["sig"], validate=True))
            for s in sigs_doc
        ]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise ValidationError(
            'roster file: \'body\' must be base64 and each signature {"key": hex, "sig": base64}'
        ) from None
    return SignedRoster.parse(body, sigs)


def member_to_json(m: Member) -> dict[str, Any]:
    return {
        "id": m.id,
        "display_name": m.display_name,
        "kind": m.kind.value,
        "jurisdiction": m.jurisdiction,
        "roles": [r.name for r in sorted(m.roles, key=lambda r: r.value)],
        "revoked": m.revoked,
        "entry_keys": [
            {"key": k.public_key.hex(), "valid_until_seq": k.valid_until_seq} for k in m.entry_keys
        ],
        "checkpoint_key": m.checkpoint_key.hex(),
        "address": m.address,
        "tls_spki_sha256": m.tls_spki.hex(),
        "tls_cert": tlscert.der_to_pem(m.tls_cert).decode() if m.tls_cert else "",
    } | (
        {
            "earlier_roles": [
                {"until_seq": u, "roles": [r.name for r in sorted(roles, key=lambda r: r.value)]}
                for u, roles in m.earlier_roles
            ]
        }
        if m.earlier_roles
        else {}
    )


def member_from_json(doc: Mapping[str, Any], *, where: str = "member card") -> Member:
    """A member from a card (``ccnode init`` writes one) or a ``show --json`` row.

    Roles default to the kind's defaults; a card's ``tls_spki_sha256``, if
    present, must match its certificate.
    """
    try:
        kind = MemberKind.parse(str(doc["kind"]))
        keys = []
        for k in doc["entry_keys"]:
            if isinstance(k, str):
                keys.append(EntryKey(bytes.fromhex(k)))
            else:
                until = k.get("valid_until_seq")
                keys.append(
                    EntryKey(bytes.fromhex(k["key"]), None if until is None else int(until))
                )
        roles = doc.get("roles")
        cert_pem = str(doc.get("tls_cert", ""))
        member = Member(
            id=str(doc["id"]),
            kind=kind,
            jurisdiction=str(doc["jurisdiction"]),
            entry_keys=tuple(keys),
            address=str(doc.get("address", "")),
            display_name=str(doc.get("display_name", "")),
            roles=default_roles(kind)
            if roles is None
            else frozenset(Role.parse(str(r)) for r in roles),
            checkpoint_key=bytes.fromhex(str(doc.get("checkpoint_key", ""))),
            tls_cert=tlscert.pem_to_der(cert_pem.encode()) if cert_pem else b"",
            revoked=bool(doc.get("revoked", False)),
            earlier_roles=tuple(
                (int(h["until_seq"]), frozenset(Role.parse(str(r)) for r in h["roles"]))
                for h in doc.get("earlier_roles", ())
            ),
        )
    except KeyError as exc:
        raise ValidationError(f"{where}: missing field {exc.args[0]!r}") from None
    except (TypeError, AttributeError, ValueError) as exc:
        if isinstance(exc, ValidationError):
            raise
        raise ValidationError(f"{where}: malformed field ({exc})") from None
    pin = str(doc.get("tls_spki_sha256", ""))
    if pin and pin != member.tls_spki.hex():
        raise ValidationError(f"{where}: tls_spki_sha256 does not match its certificate")
    return member


def roster_to_json(signed: SignedRoster) -> dict[str, Any]:
    r = signed.roster
    return {
        "version": r.version,
        "id": signed.roster_id.hex(),
        "prev": r.prev.hex(),
        "expires": when(r.expires_ms),
        "expires_ms": r.expires_ms,
        "governance_threshold": r.governance_threshold,
        "governance_keys": [k.hex() for k in r.governance_keys],
        "witness_threshold": r.witness_threshold,
        "resolutions": [
            {"origin": res.origin, "size": res.size, "root": res.root.hex()}
            for res in r.resolutions
        ],
        "signatures": [s.public_key.hex() for s in signed.signatures],
        "members": [member_to_json(m) for m in r.members],
    }


# -- bytes --------------------------------------------------------------------


def _put_str8(out: bytearray, text: str) -> None:
    data = text.encode()
    if len(data) > 255:
        raise ValidationError(f"roster field of {len(data)} bytes: expected at most 255")
    out.append(len(data))
    out += data


class _Reader:
    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def take(self, n: int) -> bytes:
        end = self._pos + n
        if end > len(self._data):
            raise ValidationError(
                f"roster body is truncated: needed {n} bytes at offset {self._pos}, "
                f"{len(self._data) - self._pos} left"
            )
        chunk = self._data[self._pos : end]
        self._pos = end
        return chunk

    def u8(self) -> int:
        return self.take(1)[0]

    def unpack2(self, fmt: str) -> tuple[int, int]:
        a, b = struct.unpack(fmt, self.take(struct.calcsize(fmt)))
        return int(a), int(b)

    def str8(self) -> str:
        return self.text(self.u8())

    def text(self, n: int) -> str:
        raw = self.take(n)
        try:
            return raw.decode("utf-8", "strict")
        except UnicodeDecodeError:
            raise ValidationError("roster body has a text field that is not UTF-8") from None

    def remaining(self) -> int:
        return len(self._data) - self._pos
