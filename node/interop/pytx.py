"""A python-threatexchange exchange that fetches from a ccnode node.

With the ``interop`` extra installed (``pip install '.[interop]'`` in a
checkout: ccnode is not published on PyPI)::

    threatexchange config extensions add node.interop.pytx
    threatexchange config collab ccnode my-node --create --address 127.0.0.1:7001 \
        --member-dir /srv/ccnode/platform     # its TLS key: mutual TLS to the node
    threatexchange fetch
    threatexchange match photo upload.jpg

Hasher-Matcher-Actioner loads the same extension module. The mapping:

- every ADD entry is a record keyed by its entry id (hex), signal type from
  ``node.core.hashes`` (``pdq``, ``video_md5``, ...), signal = lowercase hex;
- a RETRACT entry deletes the record of the entry it retracts;
- labels become tags; each origin that published a hash is one opinion
  (POSITIVE_CLASS; ``is_mine`` when the origin is the collab's ``member_id``);
- the checkpoint is the node's per-origin cursors (``Pull``), so a fetch
  resumes where the last one stopped and retractions that arrive later
  still delete what they retract.

The exchange reads the member's own node, which verified every entry on
every hop; it does not re-verify signatures itself.
"""

# No ``from __future__ import annotations`` here: python-threatexchange's CLI
# reads the collab config's field types at run time to build its arguments.
import time
import typing as t
from dataclasses import dataclass, field

from threatexchange.exchanges import fetch_state as state
from threatexchange.exchanges.collab_config import CollaborationConfigWithDefaults
from threatexchange.exchanges.signal_exchange_api import SignalExchangeAPI
from threatexchange.extensions.manifest import ThreatExchangeExtensionManifest
from threatexchange.signal_type.signal_base import SignalType

from node.connect import credentials_for_dir
from node.core import hashes
from node.core.entry import Kind
from node.interop import feed
from node.interop.formats import pytx_hex

NAME = "ccnode"


@dataclass
class _Required:
    address: str = field(metadata={"help": "HOST:PORT of the ccnode node to fetch from"})


@dataclass
class CcnodeCollabConfig(CollaborationConfigWithDefaults, _Required):
    member_id: str = field(
        default="",
        metadata={"help": "your own member id: its entries count as yours", "metavar": "ID"},
    )
    origins: set[str] = field(
        default_factory=set,
        metadata={"help": "only entries from these members (default: all)"},
    )
    member_dir: str = field(
        default="",
        metadata={
            "help": "member directory whose TLS key reaches the node (mutual TLS); "
            "empty for a plaintext development node",
            "metavar": "DIR",
        },
    )


@dataclass
class CcnodeCheckpoint(state.FetchCheckpointBase):
    cursors: dict[str, int] = field(default_factory=dict)  # origin -> next seq
    fetched_at: int = 0  # unix seconds of the fetch that made this checkpoint

    def get_progress_timestamp(self) -> int | None:
        return self.fetched_at or None


@dataclass
class CcnodeEntry:
    """One ADD entry as fetched (the exchange's update record value)."""

    signal_type: str
    signal: str
    origin: str
    labels: tuple[str, ...]
    incident: str
    urgent: bool
    entry_id: str
    time_ms: int


@dataclass
class CcnodeSignalMetadata(state.FetchedSignalMetadata):
    """Everything fetched about one signal: one entry per publishing origin."""

    entries: list[CcnodeEntry] = field(default_factory=list)
    member_id: str = ""

    def get_as_opinions(self) -> t.Sequence[state.SignalOpinion]:
        return [
            state.SignalOpinion(
                is_mine=bool(self.member_id) and e.origin == self.member_id,
                category=state.SignalOpinionCategory.POSITIVE_CLASS,
                tags=set(e.labels),
            )
            for e in self.entries
        ]


class CcnodeSignalExchangeAPI(
    SignalExchangeAPI[CcnodeCollabConfig, CcnodeCheckpoint, CcnodeSignalMetadata, str, CcnodeEntry]
):
    """Fetch a ccnode node's entries into python-threatexchange or HMA."""

    def __init__(self, collab: CcnodeCollabConfig) -> None:
        self.collab = collab

    @classmethod
    def get_name(cls) -> str:
        return NAME

    @classmethod
    def for_collab(cls, collab: CcnodeCollabConfig) -> "CcnodeSignalExchangeAPI":
        return cls(collab)

    @staticmethod
    def get_config_cls() -> type[CcnodeCollabConfig]:
        return CcnodeCollabConfig

    @staticmethod
    def get_checkpoint_cls() -> type[CcnodeCheckpoint]:
        return CcnodeCheckpoint

    @staticmethod
    def get_record_cls() -> type[CcnodeSignalMetadata]:
        return CcnodeSignalMetadata

    def fetch_iter(
        self,
        supported_signal_types: t.Sequence[type[SignalType]],
        checkpoint: CcnodeCheckpoint | None,
    ) -> t.Iterator[state.FetchDelta[str, CcnodeEntry, CcnodeCheckpoint]]:
        cursors = dict(checkpoint.cursors) if checkpoint is not None else {}
        wanted = self.collab.origins
        yielded = False
        credentials = credentials_for_dir(self.collab.member_dir)
        for batch in feed.pull(self.collab.address, cursors, credentials=credentials):
            updates: dict[str, CcnodeEntry | None] = {}
            for entry in batch.entries:
                body = entry.body
                if wanted and body.origin not in wanted:
                    continue
                if body.kind == Kind.ADD and pytx_hex(body.algorithm):
                    updates[entry.entry_id.hex()] = CcnodeEntry(
                        signal_type=hashes.algorithm(body.algorithm).pytx_name,
                        signal=body.hash.hex(),
                        origin=body.origin,
                        labels=body.labels,
                        incident=body.incident,
                        urgent=body.urgent,
                        entry_id=entry.entry_id.hex(),
                        time_ms=body.time_ms,
                    )
                elif body.kind == Kind.RETRACT:
                    updates[body.target.hex()] = None  # a deletion
            cursors = batch.cursors
            yielded = True
            yield state.FetchDelta(updates, CcnodeCheckpoint(cursors, int(time.time())))
        if not yielded:  # up to date: still record when we last looked
            yield state.FetchDelta({}, CcnodeCheckpoint(cursors, int(time.time())))

    @classmethod
    def naive_convert_to_signal_type(
        cls,
        signal_types: t.Sequence[type[SignalType]],
        collab: CcnodeCollabConfig,
        fetched: t.Mapping[str, CcnodeEntry],
    ) -> dict[type[SignalType], dict[str, CcnodeSignalMetadata]]:
        by_name = {st.get_name(): st for st in signal_types}
        out: dict[type[SignalType], dict[str, CcnodeSignalMetadata]] = {}
        for record in fetched.values():
            if record is None:
                continue
            signal_type = by_name.get(record.signal_type)
            if signal_type is None:
                continue
            try:
                signal = signal_type.validate_signal_str(record.signal)
            except ValueError:
                continue
            meta = out.setdefault(signal_type, {}).setdefault(
                signal, CcnodeSignalMetadata(member_id=collab.member_id)
            )
            meta.entries.append(record)
        return out


TX_MANIFEST = ThreatExchangeExtensionManifest(apis=(CcnodeSignalExchangeAPI,))
