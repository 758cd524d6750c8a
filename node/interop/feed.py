"""A synchronous reader of a node's entries, for tools that are not asyncio.

python-threatexchange (and HMA, which loads the same extensions) call
exchanges from plain threads, and ``ccnode export --to`` is a one-shot
read; both read a node's logs through ``Pull`` (no follow) with cursors, so
a caller that keeps the cursors resumes where it stopped.

The reader trusts the node it reads from to have verified every entry (it
is the member's own node, which does so on every hop); the signed bytes and
signatures are still passed through for anyone who re-verifies. It speaks
mutual TLS when given ``credentials`` (``node.connect.credentials_for``: a
member directory's TLS identity), plaintext otherwise (development nodes).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, cast

import grpc

from node.core.entry import Kind, SignedEntry
from node.core.tlscert import TLS_NAME
from node.errors import NodeError
from node.interop.formats import Record
from node.rpc import convert
from node.rpc._pb.consortium.v1 import node_pb2 as pb
from node.rpc._pb.consortium.v1 import node_pb2_grpc as pb_grpc
from node.rpc.client import CHANNEL_OPTIONS, DEFAULT_DEADLINE_S, error_from_rpc

DEFAULT_BATCH = 1024


def open_channel(address: str, credentials: grpc.ChannelCredentials | None) -> grpc.Channel:
    if credentials is None:
        return grpc.insecure_channel(address, options=CHANNEL_OPTIONS)
    options = [*CHANNEL_OPTIONS, ("grpc.ssl_target_name_override", TLS_NAME)]
    return grpc.secure_channel(address, credentials, options=options)


@dataclass(frozen=True, slots=True)
class Batch:
    entries: list[SignedEntry]
    cursors: dict[str, int]  # after this batch: origin -> next seq to ask for


def pull(
    address: str,
    cursors: Mapping[str, int] | None = None,
    *,
    max_batch: int = DEFAULT_BATCH,
    deadline_s: float = 60.0,
    credentials: grpc.ChannelCredentials | None = None,
) -> Iterator[Batch]:
    """Every entry past ``cursors``, batch by batch, until the node has no more."""
    position = dict(cursors or {})
    with open_channel(address, credentials) as channel:
        stub = pb_grpc.NodeServiceStub(channel)
        request = pb.PullRequest(cursors=position, follow=False, max_batch=max_batch)
        try:
            for response in stub.Pull(request, timeout=deadline_s):
                entries = convert.entries_from_pb(response.entries)
                for e in entries:
                    position[e.body.origin] = max(position.get(e.body.origin, 0), e.body.seq + 1)
                yield Batch(entries, dict(position))
        except grpc.RpcError as exc:
            raise _error(exc, address) from None


def status(
    address: str, *, credentials: grpc.ChannelCredentials | None = None
) -> pb.StatusResponse:
    with open_channel(address, credentials) as channel:
        stub = pb_grpc.NodeServiceStub(channel)
        try:
            response: pb.StatusResponse = stub.Status(
                pb.StatusRequest(), timeout=DEFAULT_DEADLINE_S
            )
            return response
        except grpc.RpcError as exc:
            raise _error(exc, address) from None


def records(
    address: str, *, credentials: grpc.ChannelCredentials | None = None
) -> Iterator[Record]:
    """Every ADD entry the node holds, with retraction state (for export).

    Retractions come later in a log than what they retract, so ADD entries
    are held until the whole feed is read.
    """
    adds: dict[bytes, SignedEntry] = {}
    retracted: dict[bytes, bytes] = {}
    for batch in pull(address, credentials=credentials):
        for entry in batch.entries:
            if entry.body.kind == Kind.ADD:
                adds[entry.entry_id] = entry
            elif entry.body.kind == Kind.RETRACT:
                retracted.setdefault(entry.body.target, entry.entry_id)
    for entry_id, entry in adds.items():
        yield Record(entry, retracted_by=retracted.get(entry_id, b""))


def _error(exc: grpc.RpcError, address: str) -> NodeError:
    # Sync and asyncio call errors carry the same code() and details().
    return error_from_rpc(cast(Any, exc), address)
