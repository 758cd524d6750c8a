"""The store port: what the node needs from persistent storage."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from node.core.entry import ZERO_ID, SignedEntry
from node.core.feedback import Stored
from node.errors import NodeError


@dataclass(frozen=True, slots=True)
class Head:
    """An origin's log frontier as stored here: next seq and the id of seq-1."""

    next_seq: int = 0
    head_id: bytes = ZERO_ID


class Outcome(enum.Enum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What happened to each entry of a batch.

    ``outcomes[i]`` is an Outcome, or the NodeError that refused entry i.
    ``accepted`` lists the entries newly committed, in order.
    """

    outcomes: tuple[Outcome | NodeError, ...]
    accepted: tuple[SignedEntry, ...]
    evidence: int = 0
    #: ``(i, error)`` for each refused entry; computed once (by the writer,
    #: not each reader on the event loop).
    errors: list[tuple[int, NodeError]] = field(init=False, compare=False, repr=False)
    duplicates: int = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        errors = [(i, o) for i, o in enumerate(self.outcomes) if isinstance(o, NodeError)]
        object.__setattr__(self, "errors", errors)
        duplicates = len(self.outcomes) - len(self.accepted) - len(errors)
        object.__setattr__(self, "duplicates", duplicates)


@dataclass(frozen=True, slots=True)
class StoredEntry:
    entry: SignedEntry
    arrival_ms: int
    retracted_by: bytes = b""


@dataclass(frozen=True, slots=True)
class Evidence:
    """Two signed bodies for one (origin, seq): the stored one and the other."""

    origin: str
    seq: int
    stored: bytes  # signed-entry bytes
    conflicting: bytes
    recorded_ms: int = field(default=0, compare=False)


class Store(Protocol):
    def head(self, origin: str) -> Head: ...

    def heads(self) -> dict[str, Head]: ...

    def get(self, entry_id: bytes) -> StoredEntry | None: ...

    def ids_with_prefix(self, prefix: bytes, limit: int) -> list[bytes]: ...

    def entries_from(self, origin: str, seq: int, limit: int) -> list[SignedEntry]: ...

    def lookup(self, algorithm: str, value: bytes) -> list[bytes]: ...

    def feedback_for(self, target: bytes) -> list[Stored]: ...

    def ingest(
        self,
        entries: Sequence[SignedEntry],
        *,
        atomic: bool,
        peer: str | None = None,
        now_ms: int,
    ) -> IngestResult: ...

    def evidence(self) -> list[Evidence]: ...

    def peer_cursors(self, peer: str) -> dict[str, int]: ...

    def close(self) -> None: ...
