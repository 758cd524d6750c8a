"""The transparency log's domain rules: log names, checkpoint signing and
verification, witnesses, "settled", and withholding detection.

Each member's entries form one RFC 6962 log (leaf index = seq; leaf hash =
``SHA-256(0x00 || signed entry bytes)``, see ``merkle``). The member's node
signs C2SP checkpoints of it as signed notes (``checkpoint``):

- the checkpoint origin line, the *log name*, is ``ccnode/v1/<member id>``;
- the origin's signature line uses the log name as key name and the member's
  checkpoint key (``Member.checkpoint_public_key``);
- a witness cosigns with a C2SP ``cosignature/v1`` (``checkpoint.cosign_note``:
  key ID type 0x04, an 8-byte timestamp and an Ed25519 signature over
  ``"cosignature/v1\\ntime <t>\\n" || body``), key name = the witness's member
  id, key = its checkpoint key.

Signature lines by keys nobody configured, or that do not verify, are dropped
(a relayer may append garbage) unless the caller asks for ``strict`` checking
(bundles, audit, a witness's own answer), which refuses them with the exact
reason; a checkpoint without a good origin signature is refused. Everything
here is pure: no I/O, no clocks (callers pass ``now``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from node.core.checkpoint import (
    Checkpoint,
    NoteSignature,
    SignedNote,
    cosign_note,
    cosignature_key_id,
    key_hash,
    open_cosignature,
    sign_note,
    vkey,
)
from node.core.entry import check_member_id
from node.core.roster import Role, Roster, roles_text
from node.core.trust import Member, TrustView
from node.errors import OrderingError, ProvenanceError, ValidationError

LOG_PREFIX = "ccnode/v1/"


def log_name(member_id: str) -> str:
    """The checkpoint origin line (and origin key name) of a member's log."""
    return LOG_PREFIX + check_member_id(member_id)


def checkpoint_vkey(member: Member) -> str:
    """A member's checkpoint verifier key, C2SP vkey form (key name = log name)."""
    return vkey(log_name(member.id), member.checkpoint_public_key)


def member_of_log(name: str) -> str:
    """The member id a log name belongs to; ValidationError if it is not one of ours."""
    if not name.startswith(LOG_PREFIX):
        raise ValidationError(f"checkpoint origin must start with {LOG_PREFIX!r}, got {name!r}")
    return check_member_id(name[len(LOG_PREFIX) :])


class StaleSizeError(OrderingError):
    """AddCheckpoint named an old size other than the one this witness cosigned last."""

    def __init__(self, message: str, witness_size: int) -> None:
        super().__init__(message)
        self.witness_size = witness_size


# --- witnesses -------------------------------------------------------------------


def is_witness(member: Member) -> bool:
    """Whether ``member`` acts as a witness. The one place the rule lives: an
    unrevoked member with the roster's WITNESS role."""
    return Role.WITNESS in member.roles and not member.revoked


@dataclass(frozen=True, slots=True)
class TlogPolicy:
    """Who the witnesses are and how many cosignatures settle an entry.

    A node takes it from its roster (:func:`roster_policy`); tests and
    offline checks may build one by hand.
    """

    witnesses: frozenset[str] = frozenset()
    threshold: int = 1
    withholding_grace_ms: int = 60_000

    def __post_init__(self) -> None:
        for w in self.witnesses:
            check_member_id(w)
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, int):
            raise ValidationError(f"witness threshold must be an integer, got {self.threshold!r}")
        if self.threshold < 1:
            raise ValidationError(f"witness threshold must be >= 1, got {self.threshold}")
        if self.witnesses and self.threshold > len(self.witnesses):
            raise ValidationError(
                f"witness threshold {self.threshold} exceeds the {len(self.witnesses)} "
                "configured witnesses"
            )
        if self.withholding_grace_ms < 0:
            raise ValidationError(
                f"withholding grace must be >= 0 ms, got {self.withholding_grace_ms}"
            )

    def witness_keys(self, trust: TrustView) -> dict[str, bytes]:
        """``{witness member id: raw checkpoint key}``; refuses ids that cannot witness."""
        out: dict[str, bytes] = {}
        for wid in sorted(self.witnesses):
            member = trust.member(wid)
            if not is_witness(member):
                raise ValidationError(
                    f"witness {wid} is revoked"
                    if member.revoked
                    else f"witness {wid} has roles {roles_text(member.roles)}: expected the "
                    "WITNESS role"
                )
            out[wid] = member.checkpoint_public_key
        return out


def roster_policy(roster: Roster, withholding_grace_ms: int = 60_000) -> TlogPolicy:
    """The witnesses of a roster: its unrevoked WITNESS members, settling at
    its ``witness_threshold``. A threshold of 0 turns witnessing off: no
    cosignatures are asked for or counted, and nothing is settled."""
    if roster.witness_threshold < 1:
        return TlogPolicy(frozenset(), 1, withholding_grace_ms)
    return TlogPolicy(
        frozenset(m.id for m in roster.members if is_witness(m)),
        roster.witness_threshold,
        withholding_grace_ms,
    )


# --- checkpoints -----------------------------------------------------------------


def sign_checkpoint(member_id: str, size: int, root: bytes, key: Ed25519PrivateKey) -> str:
    """The origin's signed note for its log at ``(size, root)``."""
    body = Checkpoint(log_name(member_id), size, root).to_note_body()
    return sign_note(body, log_name(member_id), key)


def _verifies(sig: NoteSignature, name: str, raw_key: bytes, message: bytes) -> bool:
    if sig.key_name != name or sig.key_hash != key_hash(name, raw_key):
        return False
    if len(sig.signature) != 64:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(raw_key).verify(sig.signature, message)
    except InvalidSignature:
        return False
    return True


@dataclass(frozen=True, slots=True)
class VerifiedCheckpoint:
    """A checkpoint whose origin signature verified, with only verified cosignatures.

    ``note`` holds the origin's signature line first, then witness lines in
    witness-id order, so equal content gives equal text.
    """

    checkpoint: Checkpoint
    origin: str
    note: SignedNote = field(repr=False)
    cosigners: tuple[str, ...]
    #: Why lines named after a configured witness were ignored: their key ID
    #: is not that witness's cosignature/v1 key (another signature type, a
    #: plain note signature). For messages only; sorted, so order-free.
    ignored: tuple[str, ...] = field(default=(), compare=False)

    @property
    def size(self) -> int:
        return self.checkpoint.size

    @property
    def root(self) -> bytes:
        return self.checkpoint.root

    @property
    def text(self) -> str:
        return self.note.to_text()

    def origin_only(self) -> str:
        """The note with the origin's signature line alone (for evidence)."""
        return SignedNote(self.note.body, self.note.signatures[:1]).to_text()

    def settled(self, policy: TlogPolicy) -> bool:
        count = sum(1 for c in self.cosigners if c in policy.witnesses)
        return bool(policy.witnesses) and count >= policy.threshold


def verify_checkpoint(
    text: str, trust: TrustView, witnesses: Mapping[str, bytes], *, strict: bool = False
) -> VerifiedCheckpoint:
    """Verify a checkpoint note: origin signature required, cosignatures filtered.

    ``witnesses`` maps witness member ids to raw checkpoint keys; a witness's
    known key is its C2SP cosignature/v1 key (name, key ID). Following
    C2SP signed-note, a line whose (name, key ID) is not a known key is
    ignored even if the name is a witness's (an ML-DSA cosignature, a plain
    note signature); why is kept in ``ignored``. Raises ValidationError for
    a malformed note, ProvenanceError for an unknown origin or a missing or
    bad origin signature, and, with ``strict``, for a line of a witness's
    known key that does not verify (the exact reason, see
    ``checkpoint.open_cosignature``), wherever it stands; without
    ``strict`` such lines are dropped. Of several good lines by one witness
    the newest (then the last by line text) is kept: the result never depends
    on line order.
    """
    note = SignedNote.parse(text)
    checkpoint = Checkpoint.parse(note.body)
    origin = member_of_log(checkpoint.origin)
    member = trust.member(origin)
    name = checkpoint.origin
    message = note.body.encode("utf-8")
    own = [s for s in note.signatures if s.key_name == name]
    signed = [s for s in own if _verifies(s, name, member.checkpoint_public_key, message)]
    if not signed:
        reason = "a bad signature" if own else "no signature"
        raise ProvenanceError(
            f"checkpoint of {origin} size {checkpoint.size} has {reason} by its origin's "
            "checkpoint key"
        )
    best: dict[str, tuple[int, str, NoteSignature]] = {}
    ignored: set[str] = set()
    for sig in note.signatures:
        wid = sig.key_name
        if wid == origin or wid not in witnesses:
            continue
        known = sig.key_hash == cosignature_key_id(wid, witnesses[wid])
        try:
            time_s = open_cosignature(sig, witnesses[wid], note.body)
        except ProvenanceError as exc:
            if not known:
                ignored.add(str(exc))
            elif strict:
                raise
            continue
        rank = (time_s, sig.to_line(), sig)
        if wid not in best or rank[:2] > best[wid][:2]:
            best[wid] = rank
    ordered = tuple(best[w][2] for w in sorted(best))
    return VerifiedCheckpoint(
        checkpoint,
        origin,
        SignedNote(note.body, (signed[0], *ordered)),
        tuple(sorted(best)),
        tuple(sorted(ignored)),
    )


def merge(a: VerifiedCheckpoint, b: VerifiedCheckpoint) -> VerifiedCheckpoint:
    """Union of the cosignatures of two verified notes over the same body."""
    if a.note.body != b.note.body:
        raise ValidationError("can only merge cosignatures of one checkpoint body")
    cosigs = {s.key_name: s for s in (*a.note.signatures[1:], *b.note.signatures[1:])}
    ordered = tuple(cosigs[w] for w in sorted(cosigs))
    return VerifiedCheckpoint(
        a.checkpoint,
        a.origin,
        SignedNote(a.note.body, (a.note.signatures[0], *ordered)),
        tuple(sorted(cosigs)),
    )


def cosign(
    checkpoint: VerifiedCheckpoint, witness_id: str, key: Ed25519PrivateKey, time_s: int
) -> str:
    """A witness's cosignature/v1 line (with newline) over the checkpoint body,
    made at ``time_s`` (POSIX seconds)."""
    check_member_id(witness_id)
    return cosign_note(checkpoint.note.body, witness_id, key, time_s).to_line()


def add_cosignature_lines(
    checkpoint: VerifiedCheckpoint, lines: str, trust: TrustView, witnesses: Mapping[str, bytes]
) -> VerifiedCheckpoint:
    """Append signature lines (e.g. an AddCheckpoint answer) and re-verify."""
    return verify_checkpoint(checkpoint.text + lines, trust, witnesses)


# --- withholding -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Withholding:
    """A peer that has served less than a quorum-cosigned size for longer than the grace."""

    peer: str
    origin: str
    served: int
    cosigned: int
    since_ms: int


class WithholdingMonitor:
    """Tracks, per (peer, origin), since when the peer's served frontier has been
    behind a size that a witness quorum cosigned. A peer that reaches that size
    is cleared; one that does not within ``grace_ms`` is flagged."""

    def __init__(self, grace_ms: int) -> None:
        self.grace_ms = grace_ms
        self._behind: dict[tuple[str, str], tuple[int, int, int]] = {}  # since, target, served

    def observe(
        self, peer: str, frontier: Mapping[str, int], cosigned: Mapping[str, int], now_ms: int
    ) -> None:
        for key in [k for k in self._behind if k[0] == peer and k[1] not in cosigned]:
            del self._behind[key]
        for origin, size in cosigned.items():
            served = frontier.get(origin, 0)
            key = (peer, origin)
            known = self._behind.get(key)
            if known is not None and served >= known[1]:
                del self._behind[key]
                known = None
            if known is not None:
                self._behind[key] = (known[0], known[1], served)
            elif served < size:
                self._behind[key] = (now_ms, size, served)

    def flagged(self, now_ms: int) -> list[Withholding]:
        return [
            Withholding(peer, origin, served, target, since)
            for (peer, origin), (since, target, served) in sorted(self._behind.items())
            if now_ms - since >= self.grace_ms
        ]
