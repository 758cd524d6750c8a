"""Who may speak for which member: the trust view used to verify entries.

For now the consortium's membership comes from a static members file (TOML,
see ``docs/protocol.md``). The threshold-signed roster replaces the file
behind the same :class:`TrustView` seam: the rest of the node asks only
"which member is this, and is this key theirs?".

Members file::

    version = 1

    [[member]]
    id = "gov.example/ct-unit"
    kind = "government"          # government | platform | ngo | observer
    jurisdiction = "NZ"          # ISO 3166-1 alpha-2
    entry_keys = ["<64 hex digits: raw Ed25519 public key>"]
    address = "127.0.0.1:7001"   # optional: where its node listens
    checkpoint_key = "<64 hex>"  # optional: signs its log's checkpoints and its
                                 # cosignatures; default: the first entry key
"""

from __future__ import annotations

import enum
import re
import tomllib
from dataclasses import dataclass, field
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from node.core import toml_out
from node.core.entry import (
    Kind,
    SignedEntry,
    a_an,
    check_member_id,
    key_id_of,
    verify_signature,
)
from node.errors import ProvenanceError, ValidationError

_JURISDICTION = re.compile(r"^[A-Z]{2}$")


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


_CONTRIBUTES = frozenset({Kind.ADD, Kind.RETRACT, Kind.RELABEL, Kind.ENDORSE, Kind.DISPUTE})

#: Which member kinds may publish which entry kinds. The roster's roles
#: (SUBMIT, ENDORSE, ...) replace this table inside :func:`may_publish`.
_PUBLISHES: dict[MemberKind, frozenset[Kind]] = {
    MemberKind.GOVERNMENT: _CONTRIBUTES,
    MemberKind.NGO: _CONTRIBUTES,
    MemberKind.PLATFORM: _CONTRIBUTES | {Kind.ACTION_REPORT},  # platforms act on matches
    MemberKind.OBSERVER: frozenset(),
}


def public_key_from_raw(raw: bytes) -> Ed25519PublicKey:
    if len(raw) != 32:
        raise ValidationError(f"Ed25519 public key has {len(raw)} bytes: expected 32")
    return Ed25519PublicKey.from_public_bytes(raw)


def raw_public_key(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass(frozen=True, slots=True)
class Member:
    id: str
    kind: MemberKind
    jurisdiction: str
    entry_keys: tuple[bytes, ...]  # raw Ed25519 public keys
    address: str = ""
    checkpoint_key: bytes = b""  # raw Ed25519 public key; empty: the first entry key
    _by_id: dict[bytes, Ed25519PublicKey] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        check_member_id(self.id)
        if not _JURISDICTION.match(self.jurisdiction):
            raise ValidationError(
                f"member {self.id}: jurisdiction {self.jurisdiction!r}: expected an "
                "ISO 3166-1 alpha-2 code such as 'NZ'"
            )
        if not self.entry_keys:
            raise ValidationError(f"member {self.id} has no entry key")
        for raw in self.entry_keys:
            key = public_key_from_raw(raw)
            self._by_id[key_id_of(key)] = key
        if self.checkpoint_key:
            public_key_from_raw(self.checkpoint_key)

    @property
    def checkpoint_public_key(self) -> bytes:
        """The raw key that signs this member's checkpoints and cosignatures."""
        return self.checkpoint_key or self.entry_keys[0]

    def key(self, key_id: bytes) -> Ed25519PublicKey:
        try:
            return self._by_id[key_id]
        except KeyError:
            raise ProvenanceError(
                f"key {key_id.hex()[:16]} is not an entry key of member {self.id}"
            ) from None


class TrustView(Protocol):
    """The seam between the node and whatever says who the members are."""

    def member(self, member_id: str) -> Member: ...

    def members(self) -> tuple[Member, ...]: ...


@dataclass(frozen=True, slots=True)
class MembersFile:
    """A static trust view read from a members file."""

    by_id: dict[str, Member]

    def member(self, member_id: str) -> Member:
        try:
            return self.by_id[member_id]
        except KeyError:
            raise ProvenanceError(f"unknown origin {member_id!r}: not a member") from None

    def members(self) -> tuple[Member, ...]:
        return tuple(self.by_id.values())

    @classmethod
    def of(cls, members: list[Member]) -> MembersFile:
        by_id: dict[str, Member] = {}
        for m in members:
            if m.id in by_id:
                raise ValidationError(f"member {m.id} is listed twice")
            by_id[m.id] = m
        return cls(by_id)

    @classmethod
    def loads(cls, text: str) -> MembersFile:
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ValidationError(f"members file is not valid TOML: {exc}") from None
        if doc.get("version") != 1:
            raise ValidationError(f"members file version {doc.get('version')!r}: expected 1")
        rows = doc.get("member", [])
        if not isinstance(rows, list):
            raise ValidationError("members file: 'member' must be an array of tables")
        return cls.of([_member_from_row(i, row) for i, row in enumerate(rows)])

    def dumps(self) -> str:
        rows = [
            {
                "id": m.id,
                "kind": m.kind.value,
                "jurisdiction": m.jurisdiction,
                "entry_keys": [k.hex() for k in m.entry_keys],
                "address": m.address,
                **({"checkpoint_key": m.checkpoint_key.hex()} if m.checkpoint_key else {}),
            }
            for m in self.by_id.values()
        ]
        return toml_out.dumps({"version": 1}, arrays={"member": rows})


def _member_from_row(i: int, row: Any) -> Member:
    where = f"members file: member #{i + 1}"
    if not isinstance(row, dict):
        raise ValidationError(f"{where}: expected a table")
    try:
        keys = row["entry_keys"]
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise ValidationError(f"{where}: entry_keys must be a list of hex strings")
        try:
            raw_keys = tuple(bytes.fromhex(k) for k in keys)
        except ValueError:
            raise ValidationError(f"{where}: entry_keys must be hex") from None
        try:
            checkpoint_key = bytes.fromhex(str(row.get("checkpoint_key", "")))
        except ValueError:
            raise ValidationError(f"{where}: checkpoint_key must be hex") from None
        return Member(
            id=str(row["id"]),
            kind=MemberKind.parse(str(row["kind"])),
            jurisdiction=str(row.get("jurisdiction", "")),
            entry_keys=raw_keys,
            address=str(row.get("address", "")),
            checkpoint_key=checkpoint_key,
        )
    except KeyError as exc:
        raise ValidationError(f"{where}: missing key {exc.args[0]!r}") from None


def may_publish(member: Member, kind: Kind) -> bool:
    """The one place that decides which member may publish which entry kind."""
    return kind in _PUBLISHES[member.kind]


def check_provenance(trust: TrustView, entry: SignedEntry) -> Member:
    """The origin is a member allowed to publish this kind, and signed it.

    Returns the member. Raises ProvenanceError naming what failed.
    """
    body = entry.body
    member = trust.member(body.origin)
    if not may_publish(member, Kind(body.kind)):
        raise ProvenanceError(
            f"member {member.id} is {a_an(member.kind.value)}: not allowed to publish "
            f"{Kind(body.kind).name} entries"
        )
    verify_signature(entry, member.key(body.key_id))
    return member
