"""Conversions between protobuf messages and core values (edge code only)."""

from __future__ import annotations

from collections.abc import Sequence

from node.accountability import ActionSummary
from node.app import (
    MAX_VIDEO_QUERY_FRAMES,
    AudioMatchHit,
    MatchHit,
    MatchResults,
    VideoMatchHit,
)
from node.core.entry import Kind, SignedEntry
from node.core.feedback import ActionCounts, Aggregate
from node.core.payloads import decode_quality
from node.core.policy import Decision
from node.core.roster import RosterSignature, SignedRoster
from node.errors import ValidationError
from node.match.audio_index import AudioThresholds
from node.match.video import QueryFrame, VideoThresholds
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
    msg = pb.Provenance(
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
        origin_status=hit.standing.value,
        origin_name=hit.member.display_name if hit.member else "",
        quality=decode_quality(body.payload) if body.algorithm == "PDQ" and body.payload else 0,
    )
    if hit.feedback is not None:
        _feedback_to_pb(hit.feedback, msg)
    return msg


def notification_to_pb(hit: MatchHit, node_id: str) -> pb.IncidentNotification:
    """A WatchIncidents (and webhook) notification of one committed entry."""
    return pb.IncidentNotification(
        entry=entry_to_pb(hit.entry),
        provenance=provenance_to_pb(hit),
        recommended_action=hit.action,
        rule=hit.rule,
        node_id=node_id,
    )


def queries_from_pb(
    request: pb.MatchRequest,
) -> tuple[list[tuple[str, bytes]], list[list[bytes]]]:
    """(algorithm, value) per query, and the dihedral variants if any query has them."""
    queries = [(q.algorithm, q.value) for q in request.queries]
    if not any(q.dihedral for q in request.queries):
        return queries, []
    return queries, [list(q.dihedral) for q in request.queries]


def match_response(results: MatchResults, max_bytes: int) -> pb.MatchResponse:
    """The answer, its matches stopping at ``max_bytes`` as encoded (the
    node's estimate while building hits leaves out what votes add: this
    keeps the answer under the message cap however many there are)."""
    response = pb.MatchResponse()
    used = 0
    for i, hits in enumerate(results):
        result = response.results.add()
        result.never_match = results.never_match[i]
        result.total = results.totals[i]
        result.truncated = results.truncated[i]
        for h in hits:
            match = match_to_pb(h)
            used += match.ByteSize()
            if used > max_bytes:
                result.truncated = True
                break
            result.matches.append(match)
    return response


def match_to_pb(hit: MatchHit) -> pb.Match:
    return pb.Match(
        provenance=provenance_to_pb(hit),
        distance=hit.distance,
        recommended_action=hit.action,
        rule=hit.rule,
        variant=hit.variant,
    )


_THRESHOLD_FIELDS = (
    "max_distance",
    "quality_floor",
    "min_coverage",
    "min_frames",
    "min_matched_ms",
    "offset_tolerance_ms",
)


def video_query_from_pb(msg: pb.VideoQuery) -> tuple[list[QueryFrame], VideoThresholds]:
    """A video query's frames and thresholds, every column checked."""
    n = len(msg.quality)
    if n > MAX_VIDEO_QUERY_FRAMES:
        raise ValidationError(
            f"video query of {n} frames: expected at most {MAX_VIDEO_QUERY_FRAMES} "
            "(match a long upload in windows)"
        )
    if len(msg.hashes) != 32 * n or len(msg.ts_ms) != n or len(msg.variant) != n:
        raise ValidationError(
            f"video query columns disagree: {len(msg.hashes)} hash bytes, {n} qualities, "
            f"{len(msg.ts_ms)} timestamps, {len(msg.variant)} variants: expected 32 hash "
            "bytes and one of each per frame"
        )
    frames = []
    raw = msg.hashes
    for i, (q, ts, v) in enumerate(zip(msg.quality, msg.ts_ms, msg.variant, strict=True)):
        try:
            frames.append(QueryFrame(raw[32 * i : 32 * i + 32], q, ts, v))
        except ValidationError as exc:
            raise ValidationError(f"video query frame {i}: {exc}") from None
    t = msg.thresholds
    try:
        thresholds = VideoThresholds(
            **{f: getattr(t, f) for f in _THRESHOLD_FIELDS if t.HasField(f)}
        )
    except ValidationError as exc:
        raise ValidationError(f"video thresholds: {exc}") from None
    return frames, thresholds


def video_query_to_pb(
    frames: Sequence[QueryFrame],
    thresholds: VideoThresholds | None = None,
    report_all: bool = False,
) -> pb.VideoQuery:
    msg = pb.VideoQuery(
        hashes=b"".join(f.pdq for f in frames),
        quality=[f.quality for f in frames],
        ts_ms=[f.ts_ms for f in frames],
        variant=[f.variant for f in frames],
        report_all=report_all,
    )
    if thresholds is not None:
        defaults = VideoThresholds()
        for name in _THRESHOLD_FIELDS:
            value = getattr(thresholds, name)
            if value != getattr(defaults, name):
                setattr(msg.thresholds, name, value)
    return msg


def video_match_to_pb(v: VideoMatchHit) -> pb.VideoMatch:
    """A video answer. Its provenance leaves the segment's frames out (up to
    38 KB each, 100 answers would pass the message cap): GetEntry has them."""
    s = v.score
    match = match_to_pb(v.hit)
    match.provenance.hash = b""
    return pb.VideoMatch(
        match=match,
        video_id=v.video_id,
        segments=list(v.segments),
        query_pct=s.query_pct,
        banked_pct=s.banked_pct,
        matched_frames=s.matched_frames,
        offset_ms=s.offset_ms,
        coverage=s.coverage,
        query_start_ms=s.query_range_ms[0],
        query_end_ms=s.query_range_ms[1],
        banked_start_ms=s.banked_range_ms[0],
        banked_end_ms=s.banked_range_ms[1],
        mirrored=s.mirrored,
        trimmed=s.trimmed,
        is_match=s.is_match,
        banked_first_ms=v.banked_ms[0],
        banked_last_ms=v.banked_ms[1],
    )


def audio_query_from_pb(msg: pb.AudioQuery) -> tuple[list[int], AudioThresholds]:
    """An audio query's values and thresholds (the count is checked by the app)."""
    fields = {f: getattr(msg, f) for f in ("min_similarity", "min_aligned_s") if msg.HasField(f)}
    try:
        thresholds = AudioThresholds(**fields)
    except ValidationError as exc:
        raise ValidationError(f"audio thresholds: {exc}") from None
    return list(msg.values), thresholds


def audio_query_to_pb(
    values: Sequence[int],
    thresholds: AudioThresholds | None = None,
    report_all: bool = False,
) -> pb.AudioQuery:
    msg = pb.AudioQuery(values=list(values), report_all=report_all)
    if thresholds is not None:
        defaults = AudioThresholds()
        for name in ("min_similarity", "min_aligned_s"):
            value = getattr(thresholds, name)
            if value != getattr(defaults, name):
                setattr(msg, name, value)
    return msg


def audio_match_to_pb(a: AudioMatchHit) -> pb.AudioMatch:
    """An audio answer; as a video's, its provenance leaves the segment's
    sub-fingerprints out (GetEntry has them)."""
    s = a.score
    match = match_to_pb(a.hit)
    match.provenance.hash = b""
    return pb.AudioMatch(
        match=match,
        video_id=a.video_id,
        segments=list(a.segments),
        similarity=s.similarity,
        aligned_s=s.aligned_s,
        query_start_ms=s.query_range_ms[0],
        query_end_ms=s.query_range_ms[1],
        banked_start_ms=s.banked_range_ms[0],
        banked_end_ms=s.banked_range_ms[1],
        is_match=s.is_match,
    )


# -- feedback, policy and action reports (docs/policy.md) ----------------------------


def _feedback_to_pb(agg: Aggregate, msg: pb.Provenance) -> None:
    msg.votes.extend(
        pb.Vote(
            member=v.member,
            member_kind=v.member_kind,
            jurisdiction=v.jurisdiction,
            vote=v.kind.name.lower(),
            reason=v.reason.text if v.reason else "",
            entry_id=v.entry_id,
            time_ms=v.time_ms,
            revoked=v.revoked,
        )
        for v in agg.votes
    )
    for kind, field in ((Kind.ENDORSE, msg.endorsements), (Kind.DISPUTE, msg.disputes)):
        field.extend(
            pb.VoteTally(member_kind=t.member_kind, jurisdiction=t.jurisdiction, count=t.count)
            for t in agg.tallies(kind)
        )
    msg.current_labels.extend(agg.labels)
    msg.relabelled_by = agg.relabelled_by
    msg.relabels = agg.relabels
    msg.action_reports.extend(
        pb.ActionReportRef(member=r.member, entry_id=r.entry_id, counts=counts_to_pb(r.counts))
        for r in agg.reports
    )


def counts_to_pb(c: ActionCounts) -> pb.ActionCounts:
    return pb.ActionCounts(
        arrival_ms=c.arrival_ms,
        first_match_ms=c.first_match_ms,
        first_action_ms=c.first_action_ms,
        as_of_ms=c.as_of_ms,
        matches=c.matches,
        blocked_at_upload=c.blocked_at_upload,
        removals=c.removals,
        reviews=c.reviews,
    )


def counts_from_pb(m: pb.ActionCounts) -> ActionCounts:
    return ActionCounts(
        arrival_ms=m.arrival_ms,
        first_match_ms=m.first_match_ms,
        first_action_ms=m.first_action_ms,
        as_of_ms=m.as_of_ms,
        matches=m.matches,
        blocked_at_upload=m.blocked_at_upload,
        removals=m.removals,
        reviews=m.reviews,
    )


def explain_to_pb(
    hit: MatchHit, decision: Decision | None, source: str, default: str
) -> pb.ExplainPolicyResponse:
    rules = []
    for t in decision.trace if decision is not None else ():
        rules.append(
            pb.RuleTrace(
                name=t.name,
                action=t.action.wire,
                matched=t.matched,
                reached=t.reached,
                reasons=[pb.Reason(holds=h, text=text) for h, text in t.reasons],
            )
        )
    return pb.ExplainPolicyResponse(
        match=match_to_pb(hit), rules=rules, policy_source=source, default_action=default
    )


def summary_to_pb(s: ActionSummary) -> pb.ActionSummary:
    return pb.ActionSummary(
        entry_id=s.entry_id,
        incident=s.incident,
        counts=counts_to_pb(s.counts),
        reported_by=s.reported_by,
        reported=s.reported,
    )


def alert_to_pb(alert: Alert) -> pb.Alert:
    return pb.Alert(kind=alert.kind, origin=alert.origin, peer=alert.peer, detail=alert.detail)


def roster_to_pb(signed: SignedRoster) -> pb.SignedRoster:
    return pb.SignedRoster(
        body=signed.body_bytes,
        signatures=[
            pb.RosterSignature(public_key=s.public_key, signature=s.signature)
            for s in signed.signatures
        ],
    )


def rosters_from_pb(msgs: Sequence[pb.SignedRoster]) -> list[SignedRoster]:
    """Decode (not verify) received rosters, naming the bad one."""
    out: list[SignedRoster] = []
    for i, msg in enumerate(msgs):
        try:
            out.append(
                SignedRoster.parse(
                    msg.body,
                    [RosterSignature(s.public_key, s.signature) for s in msg.signatures],
                )
            )
        except ValidationError as exc:
            where = f"roster {i + 1} of {len(msgs)}: " if len(msgs) > 1 else ""
            raise ValidationError(where + str(exc)) from None
    return out
