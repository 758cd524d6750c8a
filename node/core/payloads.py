"""Kind-specific payload encodings of feedback entries (see node/core/feedback.py).

Deterministic byte encodings, each led by a version byte, decoded strictly:
one logical payload has exactly one byte string.

DISPUTE (2 bytes): ``u8 version (1) || u8 reason code`` (:class:`DisputeReason`).

ADD of a PDQ hash (empty, or 2 bytes): ``u8 version (1) || u8 quality``
(0..100), the quality its submitter's hasher reported; empty when not known.
Other ADDs carry no payload.

ACTION_REPORT (65 bytes, big-endian)::

    version            u8   1
    arrival_ms         i64  when the target first arrived at the reporter's node
    first_match_ms     i64  first match of the target there (0: none yet)
    first_action_ms    i64  first block, removal or review (0: none yet)
    as_of_ms           i64  the counts are totals up to this time
    matches            u64
    blocked_at_upload  u64
    removals           u64
    reviews            u64

Aggregate numbers only: there is no field for anything about a user.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from node.errors import ValidationError

PAYLOAD_VERSION = 1


class DisputeReason(enum.IntEnum):
    NOT_TERRORIST_CONTENT = 1
    WRONG_LABEL = 2
    BENIGN_VIRAL_IMAGE = 3
    NEWS_DOCUMENTARY_USE = 4
    OTHER = 5

    @property
    def text(self) -> str:
        return self.name.lower().replace("_", "-")

    @classmethod
    def parse(cls, text: str) -> DisputeReason:
        for reason in cls:
            if reason.text == text.strip().lower().replace("_", "-"):
                return reason
        raise ValidationError(
            f"unknown dispute reason {text!r}: expected one of " + ", ".join(r.text for r in cls)
        )


MAX_QUALITY = 100


def encode_quality(quality: int) -> bytes:
    """A PDQ ADD's payload: the hash's quality as its submitter computed it."""
    if not 0 <= quality <= MAX_QUALITY:
        raise ValidationError(f"PDQ quality {quality}: expected 0..{MAX_QUALITY}")
    return bytes((PAYLOAD_VERSION, quality))


def decode_quality(payload: bytes) -> int:
    if len(payload) != 2:
        raise ValidationError(
            f"PDQ ADD payload has {len(payload)} bytes: expected 2 (version, quality)"
        )
    if payload[0] != PAYLOAD_VERSION:
        raise ValidationError(f"PDQ ADD payload version {payload[0]}: expected {PAYLOAD_VERSION}")
    if payload[1] > MAX_QUALITY:
        raise ValidationError(f"PDQ quality {payload[1]}: expected 0..{MAX_QUALITY}")
    return payload[1]


def encode_dispute(reason: DisputeReason) -> bytes:
    return bytes((PAYLOAD_VERSION, int(reason)))


def decode_dispute(payload: bytes) -> DisputeReason:
    if len(payload) != 2:
        raise ValidationError(
            f"DISPUTE payload has {len(payload)} bytes: expected 2 (version, reason code)"
        )
    if payload[0] != PAYLOAD_VERSION:
        raise ValidationError(f"DISPUTE payload version {payload[0]}: expected {PAYLOAD_VERSION}")
    try:
        return DisputeReason(payload[1])
    except ValueError:
        raise ValidationError(
            f"DISPUTE reason code {payload[1]}: expected 1..{len(DisputeReason)}"
        ) from None


_COUNTS = struct.Struct(">BqqqqQQQQ")
_MAX_COUNT = 2**63 - 1


@dataclass(frozen=True, slots=True)
class ActionCounts:
    """What a platform did about one target, cumulative up to ``as_of_ms``."""

    arrival_ms: int
    first_match_ms: int
    first_action_ms: int
    as_of_ms: int
    matches: int = 0
    blocked_at_upload: int = 0
    removals: int = 0
    reviews: int = 0

    def __post_init__(self) -> None:
        times = {
            "arrival_ms": self.arrival_ms,
            "first_match_ms": self.first_match_ms,
            "first_action_ms": self.first_action_ms,
            "as_of_ms": self.as_of_ms,
        }
        for name, value in times.items():
            if not 0 <= value <= _MAX_COUNT:
                raise ValidationError(f"action report {name} {value}: expected 0..2^63-1")
        for name in ("matches", "blocked_at_upload", "removals", "reviews"):
            value = getattr(self, name)
            if not 0 <= value <= _MAX_COUNT:
                raise ValidationError(f"action report {name} {value}: expected 0..2^63-1")
        if (self.first_match_ms == 0) != (self.matches == 0):
            raise ValidationError(
                f"action report: first_match_ms {self.first_match_ms} with {self.matches} "
                "matches: expected 0 exactly when there are no matches"
            )
        if (self.first_action_ms == 0) != (self.actions == 0):
            raise ValidationError(
                f"action report: first_action_ms {self.first_action_ms} with {self.actions} "
                "actions: expected 0 exactly when there are no actions"
            )
        for name in ("arrival_ms", "first_match_ms", "first_action_ms"):
            if times[name] > self.as_of_ms:
                raise ValidationError(
                    f"action report: {name} {times[name]} is after as_of_ms {self.as_of_ms}"
                )

    @property
    def actions(self) -> int:
        return self.blocked_at_upload + self.removals + self.reviews

    def encode(self) -> bytes:
        return _COUNTS.pack(
            PAYLOAD_VERSION,
            self.arrival_ms,
            self.first_match_ms,
            self.first_action_ms,
            self.as_of_ms,
            self.matches,
            self.blocked_at_upload,
            self.removals,
            self.reviews,
        )

    @classmethod
    def decode(cls, payload: bytes) -> ActionCounts:
        if len(payload) != _COUNTS.size:
            raise ValidationError(
                f"ACTION_REPORT payload has {len(payload)} bytes: expected {_COUNTS.size}"
            )
        version, *values = _COUNTS.unpack(payload)
        if version != PAYLOAD_VERSION:
            raise ValidationError(
                f"ACTION_REPORT payload version {version}: expected {PAYLOAD_VERSION}"
            )
        return cls(*values)

    def same_counts(self, other: ActionCounts) -> bool:
        """Equal apart from ``as_of_ms`` (nothing new to report)."""
        return (
            self.arrival_ms,
            self.first_match_ms,
            self.first_action_ms,
            self.matches,
            self.blocked_at_upload,
            self.removals,
            self.reviews,
        ) == (
            other.arrival_ms,
            other.first_match_ms,
            other.first_action_ms,
            other.matches,
            other.blocked_at_upload,
            other.removals,
            other.reviews,
        )
