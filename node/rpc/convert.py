"""Conversions between protobuf messages and core values (edge code only)."""

from __future__ import annotations

from collections.abc import Sequence

from node.app import MatchHit
from node.core.entry import SignedEntry
from node.errors import ValidationError
from node.rpc._pb.consortium.v1 import node_pb2 as pb
from node.transparency import Alert


def entry_from_pb(msg: pb.SignedEntry, index: int = 0, total: int = 1) -> SignedEntry:
    """Decode (not verify) a received entry, naming its place in the batch."""
    try:
        return SignedEntry.parse(msg.body, msg.signature)
    except ValidationError as exc:
        where = f"entry {index + 1} of {total}: " if total > 1 else ""
        raise ValidationError(where + str(exc)) from None


def entries_from_pb(msgs: Sequence[pb.SignedEntry]) -> list[SignedEntry]:
    return [entry_from_pb(m, i, len(msgs)) for i, m in enumerate(msgs)]


def entry_to_pb(entry: SignedEntry) -> pb.SignedEntry:
    return pb.SignedEntry(body=entry.body_bytes, signature=entry.signature)


def raw_to_pb(raw: bytes) -> pb.SignedEntry:
    """Stored signed-entry bytes to the wire form, without decoding the body."""
    n = int.from_bytes(raw[:4], "big")
    return pb.SignedEntry(body=raw[4 : 4 + n], signature=raw[4 + n :])


def provenance_to_pb(hit: MatchHit) -> pb.Provenance:
    body = hit.entry.body
    return pb.Provenance(
        entry_id=hit.entry.entry_id,
        origin=body.origin,
        origin_kind=hit.member.kind.value if hit.member else "",
        jurisdiction=hit.member.jurisdiction if hit.member else "",
        algorithm=body.algorithm,
        hash=body.hash,
        labels=list(body.labels),
        incident=body.incident,
        time_ms=body.time_ms,
        arrival_ms=hit.arrival_ms,
        seq=body.seq,
        retracted=bool(hit.retracted_by),
        retracted_by=hit.retracted_by,
        urgent=body.urgent,
        reason=body.reason,
        settled=hit.settled,
        origin_equivocated=hit.origin_equivocated,
    )


def match_to_pb(hit: MatchHit) -> pb.Match:
    return pb.Match(
        provenance=provenance_to_pb(hit), distance=hit.distance, recommended_action=hit.action
    )


def alert_to_pb(alert: Alert) -> pb.Alert:
    return pb.Alert(kind=alert.kind, origin=alert.origin, peer=alert.peer, detail=alert.detail)
