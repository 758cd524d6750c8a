"""The gRPC servicer: authorize, convert, call the application, convert back.

Authorization comes from the TLS auth context (``node/rpc/tls.py``): each
method names the Action it needs (table in README.md, "Roster, mutual TLS
and authorization").

Status-code table (the one place errors meet gRPC):

=====================  ====================
NodeError subclass     gRPC status
=====================  ====================
LimitError             RESOURCE_EXHAUSTED
ProvenanceError        PERMISSION_DENIED
ValidationError        INVALID_ARGUMENT
OrderingError          FAILED_PRECONDITION
ConflictError          ALREADY_EXISTS
NotFoundError          NOT_FOUND
StorageError           INTERNAL
PeerError              UNAVAILABLE
UnavailableError       UNAVAILABLE
=====================  ====================
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

import grpc
from google.protobuf.message import DecodeError

from node import __version__
from node.alerts import IncidentFeed
from node.app import (
    ALERT_RESTORED,
    MAX_SUBMIT_BATCH,
    MAX_VIDEO_QUERY_FRAMES,
    NodeApp,
    check_batch_size,
    now_ms,
)
from node.core.chromaprint import item_ms, items_at
from node.core.roster import Action, check_own_entries, is_revoked_refusal, when
from node.core.tlog import StaleSizeError, checkpoint_vkey
from node.errors import (
    ConflictError,
    LimitError,
    NodeError,
    NotFoundError,
    OrderingError,
    PeerError,
    ProvenanceError,
    ReadOnlyError,
    StorageError,
    UnavailableError,
    ValidationError,
)
from node.match.audio_index import AudioThresholds
from node.match.limits import MatchLimits
from node.match.pdq_index import DEFAULT_RADIUS, probes
from node.match.video import QueryFrame, VideoThresholds
from node.observe import ALERT_MAP_FULL
from node.rosters import RosterKeeper
from node.rpc import convert
from node.rpc._pb.consortium.v1 import node_pb2 as pb
from node.rpc._pb.consortium.v1 import node_pb2_grpc as pb_grpc
from node.rpc.tls import Authorizer
from node.store.base import Outcome
from node.store.matchlog import EventKind

log = logging.getLogger(__name__)

STATUS_TABLE: tuple[tuple[type[NodeError], grpc.StatusCode], ...] = (
    (LimitError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (ProvenanceError, grpc.StatusCode.PERMISSION_DENIED),
    (ValidationError, grpc.StatusCode.INVALID_ARGUMENT),
    (OrderingError, grpc.StatusCode.FAILED_PRECONDITION),
    (ConflictError, grpc.StatusCode.ALREADY_EXISTS),
    (NotFoundError, grpc.StatusCode.NOT_FOUND),
    (StorageError, grpc.StatusCode.INTERNAL),
    (PeerError, grpc.StatusCode.UNAVAILABLE),
    (UnavailableError, grpc.StatusCode.UNAVAILABLE),
    (ReadOnlyError, grpc.StatusCode.FAILED_PRECONDITION),
)

_ACTION_TAKEN = {
    pb.ACTION_TAKEN_BLOCKED_AT_UPLOAD: EventKind.BLOCKED_AT_UPLOAD,
    pb.ACTION_TAKEN_REMOVED: EventKind.REMOVED,
    pb.ACTION_TAKEN_REVIEWED: EventKind.REVIEWED,
}

DEFAULT_PULL_BATCH = 256
MAX_PULL_BATCH = 2048
#: Bytes of entries per Pull response: under the 4 MiB message cap even with
#: one maximal (300 KiB) video-feature entry over the budget.
MAX_PULL_BYTES = 2 * 1024 * 1024
FOLLOW_IDLE_S = 15.0  # an idle follow stream sends its frontier this often
#: Follow streams are paced by a token bucket: a stream sends at once while
#: it has tokens (an idle or lightly used stream never waits), and a busy one
#: settles at FOLLOW_RATE responses/s, what commits meanwhile riding along in
#: the next response. Each response costs every hop far more than an entry
#: in it, so under load a mesh's message count stops growing with its rate.
FOLLOW_RATE = 50.0
FOLLOW_BURST = 10.0
#: A follow-stream response without entries (new checkpoints, a moved
#: frontier) is sent at most this often; until then they wait to ride along
#: with entries. Otherwise every checkpoint (each origin signs one at most
#: every CHECKPOINT_INTERVAL_S) would be a message wave through the mesh of
#: its own, as costly as the entries'.
ALONE_EVERY_S = 0.5
WITNESS_SIZE_TRAILER = "ccnode-witness-size"  # AddCheckpoint FAILED_PRECONDITION

T = TypeVar("T")
Context = grpc.aio.ServicerContext[Any, Any]
Handler = Callable[[Any, Any, Context], Awaitable[T]]


def status_for(exc: NodeError) -> grpc.StatusCode:
    for cls, code in STATUS_TABLE:
        if isinstance(exc, cls):
            return code
    return grpc.StatusCode.UNKNOWN


def _mapped(method: Handler[T]) -> Handler[T]:
    @functools.wraps(method)
    async def wrapper(self: Any, request: Any, context: Context) -> T:
        try:
            return await method(self, request, context)
        except NodeError as exc:
            await context.abort(status_for(exc), str(exc))
            raise  # unreachable: abort raises
        except Exception:
            log.exception("internal error in %s", method.__name__)
            await context.abort(grpc.StatusCode.INTERNAL, "internal error; see the node's log")
            raise

    return wrapper


#: A corrupt request is logged once, then at most once per this many seconds
#: (with a count), so a flood of them cannot flood the log.
CORRUPT_LOG_EVERY_S = 60.0
if TYPE_CHECKING:  # the stubs are generic, the runtime classes are not
    Handler_: TypeAlias = grpc.RpcMethodHandler[Any, Any]
    _Interceptor: TypeAlias = grpc.aio.ServerInterceptor[Any, Any]
else:
    Handler_ = grpc.RpcMethodHandler
    _Interceptor = grpc.aio.ServerInterceptor


class _Corrupt:
    """What the request deserializer gives for bytes that are not a message."""

    __slots__ = ("method",)

    def __init__(self, method: str) -> None:
        self.method = method

    @property
    def message(self) -> str:
        return f"{self.method} request is not a valid protobuf message"


class CorruptRequests(_Interceptor):
    """Answers a request whose bytes do not decode with INVALID_ARGUMENT.

    grpc.aio would otherwise answer UNKNOWN and log a traceback per request.
    The deserializer is wrapped to return a marker instead of raising; the
    method is wrapped to refuse the marker before the servicer sees it. The
    log gets one line for the first, then one line per
    :data:`CORRUPT_LOG_EVERY_S` with how many were refused meanwhile.
    Client-streaming methods (none in NodeService) are left as they are.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._handlers: dict[str, Handler_] = {}
        self._unlogged = 0
        self._logged_at: float | None = None

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler_]],
        details: grpc.HandlerCallDetails,
    ) -> Handler_:
        path: str = details.method
        cached = self._handlers.get(path)
        if cached is not None:
            return cached
        handler = await continuation(details)
        if handler is None or handler.request_streaming or handler.request_deserializer is None:
            return handler
        wrapped: Handler_ = self._wrap(handler, path.rsplit("/", 1)[-1])
        self._handlers[path] = wrapped
        return wrapped

    def _wrap(self, handler: Any, method: str) -> Any:
        decode = handler.request_deserializer

        def deserialize(data: bytes) -> Any:
            try:
                return decode(data)
            except DecodeError:
                return _Corrupt(method)

        if handler.response_streaming:
            inner_stream = handler.unary_stream

            async def stream(request: Any, context: Context) -> AsyncIterator[Any]:
                if isinstance(request, _Corrupt):
                    await self._refuse(request, context)
                answer = inner_stream(request, context)
                if inspect.isawaitable(answer):
                    # A handler that writes with ``context.write`` (the health
                    # service's Watch, which client-side health checks call).
                    await answer
                    return
                async for response in answer:
                    yield response

            return handler._replace(request_deserializer=deserialize, unary_stream=stream)
        inner = handler.unary_unary

        async def unary(request: Any, context: Context) -> Any:
            if isinstance(request, _Corrupt):
                await self._refuse(request, context)
            return await inner(request, context)

        return handler._replace(request_deserializer=deserialize, unary_unary=unary)

    async def _refuse(self, request: _Corrupt, context: Context) -> None:
        self._unlogged += 1
        now = self._clock()
        if self._logged_at is None or now - self._logged_at >= CORRUPT_LOG_EVERY_S:
            log.warning(
                "refused %d corrupt request(s) with INVALID_ARGUMENT (latest: %s)",
                self._unlogged,
                request.message,
            )
            self._unlogged, self._logged_at = 0, now
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.message)


#: MatchVideoStream, MatchAudioStream: a call that sends nothing for this long is ended.
MATCH_STREAM_IDLE_S = 60.0
#: MatchAudioStream: the newest sub-fingerprints a call holds (60 s of sound,
#: as ``ccnode watch``'s window): far more than the 7 s a match needs, and
#: each answer costs what a 60-s audio Match costs, however long the stream.
MATCH_STREAM_AUDIO_ITEMS = items_at(60_000)


async def _until_idle(requests: AsyncIterator[Any], rpc: str) -> AsyncIterator[Any]:
    """A streaming call's messages; LimitError when none came for MATCH_STREAM_IDLE_S."""
    chunks = aiter(requests)
    while True:
        try:
            msg = await asyncio.wait_for(anext(chunks), MATCH_STREAM_IDLE_S)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise LimitError(f"{rpc} idle for {MATCH_STREAM_IDLE_S:g} s: call ended") from None
        yield msg


def match_stream_frames(limits: MatchLimits, thresholds: VideoThresholds) -> int:
    """Frames a MatchVideoStream call holds: what one video Match may carry
    within the Match budget at the request's distance."""
    each = probes(thresholds.max_distance or DEFAULT_RADIUS)
    return max(1, min(MAX_VIDEO_QUERY_FRAMES, limits.max_probes // each))


PeersStatus = Callable[[], Sequence[pb.PeerStatus]]


class NodeServicer(pb_grpc.NodeServiceServicer):
    def __init__(
        self,
        app: NodeApp,
        peers_status: PeersStatus | None = None,
        *,
        rosters: RosterKeeper | None = None,
        authorizer: Authorizer | None = None,
        incidents: IncidentFeed | None = None,
        replica_of: str = "",
    ) -> None:
        self.app = app
        #: A match replica's primary (docs/operators.md, *Match replicas*):
        #: writes are refused with its address; "" on a member's node.
        self.replica_of = replica_of
        self.incidents = incidents
        self.peers_status = peers_status or (lambda: [])
        self.rosters = rosters
        self.auth = authorizer or Authorizer(None)

    def _writable(self, what: str) -> None:
        if self.replica_of:
            raise ReadOnlyError(
                f"{what}: this node is a read-only match replica of {self.app.node_id}; "
                f"send it to the primary at {self.replica_of}"
            )

    def _roster_version(self) -> int:
        return self.rosters.version if self.rosters is not None else 0

    def _rosters(self) -> RosterKeeper:
        if self.rosters is None:
            raise NotFoundError("this node keeps no roster")
        return self.rosters

    @_mapped
    async def Submit(self, request: pb.SubmitRequest, context: Context) -> pb.SubmitResponse:
        caller = self.auth.check(context, Action.SUBMIT, "Submit")
        self._writable("Submit")
        # Count before decoding: a 16k-entry batch is refused unread.
        check_batch_size(len(request.entries), MAX_SUBMIT_BATCH, "entries")
        entries = convert.entries_from_pb(request.entries)
        check_own_entries(caller, [e.body.origin for e in entries])
        result = await self.app.submit_async(entries)
        return pb.SubmitResponse(
            results=[
                pb.SubmitResult(
                    entry_id=e.entry_id,
                    outcome=pb.OUTCOME_ACCEPTED if o is Outcome.ACCEPTED else pb.OUTCOME_DUPLICATE,
                )
                for e, o in zip(entries, result.outcomes, strict=True)
            ]
        )

    @_mapped
    async def GetEntry(self, request: pb.GetEntryRequest, context: Context) -> pb.GetEntryResponse:
        self.auth.check(context, Action.READ, "GetEntry")
        entry_id = self.app.resolve_id(request.id_prefix) if request.id_prefix else request.entry_id
        hit = self.app.get(entry_id)
        return pb.GetEntryResponse(
            entry=convert.entry_to_pb(hit.entry),
            provenance=convert.provenance_to_pb(hit),
            video_segments=self.app.video_segments(hit.entry),
        )

    @_mapped
    async def Match(self, request: pb.MatchRequest, context: Context) -> pb.MatchResponse:
        self.auth.check(context, Action.READ, "Match")
        if request.record:
            # The match log feeds the member's signed action reports: it is
            # kept in one place, the member's node (docs/operators.md).
            self._writable("Match with record=true")
        if request.HasField("audio"):
            if request.queries or request.HasField("video"):
                raise ValidationError(
                    "a Match request carries hash queries, a video query or an audio query: "
                    "one kind only"
                )
            loop = asyncio.get_running_loop()
            audio = await loop.run_in_executor(self.app.match_pool, self._match_audio, request)
            return pb.MatchResponse(audio=audio)
        if request.HasField("video"):
            if request.queries:
                raise ValidationError(
                    "a Match request carries hash queries or a video query, not both"
                )
            # converted, budget-checked, matched and converted back in a match thread
            loop = asyncio.get_running_loop()
            videos = await loop.run_in_executor(self.app.match_pool, self._match_video, request)
            return pb.MatchResponse(videos=videos)
        check_batch_size(len(request.queries), self.app.match_limits.max_queries, "queries")
        # Converting 10,000 queries each way is work too: in a match thread.
        step = self.app.match_step(request.queries)
        queries, variants = await step(convert.queries_from_pb, request)
        results = await self.app.match_async(
            queries,
            include_retracted=request.include_retracted,
            record=request.record,
            max_distance=request.max_distance,
            variants=variants,
        )
        response: pb.MatchResponse = await step(
            convert.match_response, results, self.app.match_limits.response_bytes
        )
        return response

    async def MatchVideoStream(
        self, requests: AsyncIterator[pb.VideoQuery], context: Context
    ) -> AsyncIterator[pb.MatchResponse]:
        try:
            self.auth.check(context, Action.READ, "MatchVideoStream")
            loop = asyncio.get_running_loop()
            held: deque[QueryFrame] = deque()
            async for msg in _until_idle(requests, "MatchVideoStream"):
                frames, thresholds = convert.video_query_from_pb(msg)
                held.extend(frames)
                cap = match_stream_frames(self.app.match_limits, thresholds)
                if len(held) > cap:
                    for _ in range(len(held) - cap):
                        dropped = held.popleft()
                    while held and held[0].ts_ms == dropped.ts_ms:
                        held.popleft()  # a frame's variants go together
                window = list(held)
                videos = await loop.run_in_executor(
                    self.app.match_pool, self._match_frames, window, thresholds, msg.report_all
                )
                self.auth.check(context, Action.READ, "MatchVideoStream")
                yield pb.MatchResponse(videos=videos)
        except NodeError as exc:
            await context.abort(status_for(exc), str(exc))

    async def MatchAudioStream(
        self, requests: AsyncIterator[pb.AudioQuery], context: Context
    ) -> AsyncIterator[pb.MatchResponse]:
        try:
            self.auth.check(context, Action.READ, "MatchAudioStream")
            loop = asyncio.get_running_loop()
            held: deque[int] = deque()
            dropped = 0  # values of the stream before the first one held
            async for msg in _until_idle(requests, "MatchAudioStream"):
                values, thresholds = convert.audio_query_from_pb(msg)
                held.extend(values[-MATCH_STREAM_AUDIO_ITEMS:])
                dropped += max(0, len(values) - MATCH_STREAM_AUDIO_ITEMS)
                while len(held) > MATCH_STREAM_AUDIO_ITEMS:
                    held.popleft()
                    dropped += 1
                audio = await loop.run_in_executor(
                    self.app.match_pool,
                    self._match_held_audio,
                    list(held),
                    dropped,
                    thresholds,
                    msg.report_all,
                )
                self.auth.check(context, Action.READ, "MatchAudioStream")
                yield pb.MatchResponse(audio=audio)
        except NodeError as exc:
            await context.abort(status_for(exc), str(exc))

    def _match_held_audio(
        self, values: list[int], dropped: int, thresholds: AudioThresholds, report_all: bool
    ) -> list[pb.AudioMatch]:
        """The held values matched; the upload ranges in the stream's time
        (``dropped`` values came before the first held one)."""
        out = []
        for a in self.app.match_audio(values, thresholds, report_all=report_all):
            m = convert.audio_match_to_pb(a)
            first, end = a.score.query_items
            m.query_start_ms, m.query_end_ms = item_ms(dropped + first), item_ms(dropped + end)
            out.append(m)
        return out

    def _match_frames(
        self, frames: list[QueryFrame], thresholds: VideoThresholds, report_all: bool
    ) -> list[pb.VideoMatch]:
        found = self.app.match_video(frames, thresholds, report_all=report_all)
        return [convert.video_match_to_pb(v) for v in found]

    def _match_audio(self, request: pb.MatchRequest) -> list[pb.AudioMatch]:
        values, thresholds = convert.audio_query_from_pb(request.audio)
        found = self.app.match_audio(
            values,
            thresholds,
            include_retracted=request.include_retracted,
            record=request.record,
            report_all=request.audio.report_all,
        )
        return [convert.audio_match_to_pb(a) for a in found]

    def _match_video(self, request: pb.MatchRequest) -> list[pb.VideoMatch]:
        frames, thresholds = convert.video_query_from_pb(request.video)
        found = self.app.match_video(
            frames,
            thresholds,
            include_retracted=request.include_retracted,
            record=request.record,
            report_all=request.video.report_all,
        )
        return [convert.video_match_to_pb(v) for v in found]

    @_mapped
    async def Status(self, request: pb.StatusRequest, context: Context) -> pb.StatusResponse:
        self.auth.check(context, Action.MEMBER, "Status")
        heads = self.app.heads()
        sizes = self.app.tlog.sizes()
        roster = self.rosters.signed if self.rosters else None
        return pb.StatusResponse(
            node_id=self.app.node_id,
            heads=[
                pb.OriginHead(
                    origin=o,
                    next_seq=h.next_seq,
                    head_id=h.head_id,
                    checkpoint_size=sizes.get(o, (0, 0))[0],
                    settled_size=sizes.get(o, (0, 0))[1],
                )
                for o, h in sorted(heads.items())
            ],
            peers=list(self.peers_status()),
            entries=sum(h.next_seq for h in heads.values()),
            evidence=self.app.tlog.evidence_count(),
            version=__version__,
            alerts=[convert.alert_to_pb(a) for a in self.app.tlog.alerts()]
            + self._roster_alerts()
            + self._store_alerts()
            + self._own_log_alerts(),
            roster_version=roster.version if roster else 0,
            roster_expires_ms=roster.roster.expires_ms if roster else 0,
            roster_id=roster.roster_id if roster else b"",
            checkpoint_vkey=self._own_vkey(),
        )

    def _own_vkey(self) -> str:
        try:
            return checkpoint_vkey(self.app.trust.member(self.app.node_id))
        except NodeError:
            return ""  # not (or no longer) a member of the roster in force

    def _own_log_alerts(self) -> list[pb.Alert]:
        why = self.app.own_log.alert()
        return [pb.Alert(kind=ALERT_RESTORED, origin=self.app.node_id, detail=why)] if why else []

    def _store_alerts(self) -> list[pb.Alert]:
        """The store refusing writes (its map full at the cap): health says
        NOT_SERVING, and status must say why."""
        why = self.app.store.write_error
        return [pb.Alert(kind=ALERT_MAP_FULL, detail=why)] if why else []

    def _roster_alerts(self) -> list[pb.Alert]:
        return self._revoked_alerts() + self._expiry_alerts()

    def _expiry_alerts(self) -> list[pb.Alert]:
        if self.rosters is None or not self.rosters.expired:
            return []
        signed = self.rosters.signed
        return [
            pb.Alert(
                kind="roster",
                detail=f"roster version {signed.version} expired at "
                f"{when(signed.roster.expires_ms)}; still enforced until governance "
                "publishes the next version",
            )
        ]

    def _revoked_alerts(self) -> list[pb.Alert]:
        """This member revoked: by its own roster, or as its peers answer it."""
        me = self.app.node_id
        alerts = []
        if self.rosters is not None:
            member = self.rosters.roster.get(me)
            if member is not None and member.revoked:
                alerts.append(
                    pb.Alert(
                        kind="revoked",
                        origin=me,
                        detail=f"this member ({me}) is revoked in roster version "
                        f"{self.rosters.version}: other nodes refuse its calls and its new "
                        "entries; ask the consortium's governance",
                    )
                )
        for peer in self.peers_status():
            if is_revoked_refusal(me, peer.last_error):
                alerts.append(
                    pb.Alert(
                        kind="revoked",
                        origin=me,
                        peer=peer.peer_id,
                        detail=f"peer {peer.peer_id} refuses this member as revoked: "
                        f"{peer.last_error}",
                    )
                )
        return alerts

    @_mapped
    async def GetRoster(
        self, request: pb.GetRosterRequest, context: Context
    ) -> pb.GetRosterResponse:
        self.auth.check(context, Action.MEMBER, "GetRoster")
        rosters = self._rosters()
        return pb.GetRosterResponse(
            rosters=[convert.roster_to_pb(s) for s in rosters.history_after(request.after_version)],
            version=rosters.version,
        )

    @_mapped
    async def OfferRoster(
        self, request: pb.OfferRosterRequest, context: Context
    ) -> pb.OfferRosterResponse:
        self.auth.check(context, Action.MEMBER, "OfferRoster")
        self._writable("OfferRoster")
        rosters = self._rosters()
        update = rosters.offer(convert.rosters_from_pb(request.rosters))
        return pb.OfferRosterResponse(
            version=rosters.version, adopted=len(update.adopted), refused=update.refused
        )

    # -- transparency log ---------------------------------------------------------

    @_mapped
    async def GetCheckpoint(
        self, request: pb.GetCheckpointRequest, context: Context
    ) -> pb.GetCheckpointResponse:
        self.auth.check(context, Action.READ, "GetCheckpoint")
        latest, settled = self.app.tlog.checkpoint(request.origin)
        return pb.GetCheckpointResponse(checkpoint=latest, settled_checkpoint=settled)

    @_mapped
    async def GetInclusionProof(
        self, request: pb.GetInclusionProofRequest, context: Context
    ) -> pb.ProofResponse:
        self.auth.check(context, Action.READ, "GetInclusionProof")
        hashes = self.app.tlog.inclusion_proof(request.origin, request.seq, request.tree_size)
        return pb.ProofResponse(hashes=hashes)

    @_mapped
    async def GetConsistencyProof(
        self, request: pb.GetConsistencyProofRequest, context: Context
    ) -> pb.ProofResponse:
        self.auth.check(context, Action.READ, "GetConsistencyProof")
        hashes = self.app.tlog.consistency_proof(request.origin, request.old_size, request.new_size)
        return pb.ProofResponse(hashes=hashes)

    @_mapped
    async def AddCheckpoint(
        self, request: pb.AddCheckpointRequest, context: Context
    ) -> pb.AddCheckpointResponse:
        self.auth.check(context, Action.MEMBER, "AddCheckpoint")
        self._writable("AddCheckpoint")
        try:
            line = self.app.tlog.add_checkpoint(
                request.old_size, list(request.consistency_proof), request.checkpoint
            )
        except StaleSizeError as exc:
            context.set_trailing_metadata(((WITNESS_SIZE_TRAILER, str(exc.witness_size)),))
            raise
        return pb.AddCheckpointResponse(cosignature=line)

    @_mapped
    async def SubmitEvidence(
        self, request: pb.SubmitEvidenceRequest, context: Context
    ) -> pb.SubmitEvidenceResponse:
        self.auth.check(context, Action.MEMBER, "SubmitEvidence")
        self._writable("SubmitEvidence")
        evidence_id, new = self.app.tlog.submit_evidence(request.evidence)
        return pb.SubmitEvidenceResponse(evidence_id=evidence_id, new=new)

    # -- policy and accountability (docs/policy.md) ---------------------------

    @_mapped
    async def ReloadPolicy(
        self, request: pb.ReloadPolicyRequest, context: Context
    ) -> pb.ReloadPolicyResponse:
        self.auth.check(context, Action.OPERATOR, "ReloadPolicy")
        policy, bank = self.app.reload()
        return pb.ReloadPolicyResponse(
            source=policy.source,
            rules=policy.describe(),
            never_match=len(bank),
            never_match_source=bank.source,
        )

    @_mapped
    async def ExplainPolicy(
        self, request: pb.ExplainPolicyRequest, context: Context
    ) -> pb.ExplainPolicyResponse:
        self.auth.check(context, Action.READ, "ExplainPolicy")
        hit, decision = self.app.explain(request.entry_id)
        policy = self.app.accountability.policy
        return convert.explain_to_pb(hit, decision, policy.source, policy.default.wire)

    @_mapped
    async def RecordAction(
        self, request: pb.RecordActionRequest, context: Context
    ) -> pb.RecordActionResponse:
        self.auth.check(context, Action.OPERATOR, "RecordAction")
        self._writable("RecordAction")
        kind = _ACTION_TAKEN.get(request.action)
        if kind is None:
            raise ValidationError(
                f"action {request.action}: expected blocked-at-upload, removed or reviewed"
            )
        when = request.at_ms or now_ms()
        self.app.accountability.record_action(
            request.entry_id, kind, request.count or 1, when, now_ms=now_ms()
        )
        return pb.RecordActionResponse(time_ms=when)

    @_mapped
    async def ActionSummaries(
        self, request: pb.ActionSummariesRequest, context: Context
    ) -> pb.ActionSummariesResponse:
        self.auth.check(context, Action.OPERATOR, "ActionSummaries")
        summaries = self.app.accountability.summaries(
            now_ms(), unreported_only=request.unreported_only
        )
        return pb.ActionSummariesResponse(summaries=[convert.summary_to_pb(s) for s in summaries])

    @_mapped
    async def PruneMatchLog(
        self, request: pb.PruneMatchLogRequest, context: Context
    ) -> pb.PruneMatchLogResponse:
        self.auth.check(context, Action.OPERATOR, "PruneMatchLog")
        self._writable("PruneMatchLog")
        removed, kept = self.app.accountability.prune(request.before_ms)
        return pb.PruneMatchLogResponse(removed=removed, kept=kept)

    async def Pull(
        self, request: pb.PullRequest, context: Context
    ) -> AsyncIterator[pb.PullResponse]:
        try:
            caller = self.auth.check(context, Action.READ, "Pull")
            if self.replica_of and caller.member_id and not caller.operator:
                # Other members sync from the member's node, never from its
                # replicas; another replica of the same member may chain.
                raise ProvenanceError(
                    f"Pull: this node is a match replica of {self.app.node_id} and serves "
                    f"Pull to that member's own replicas only; caller {caller.member_id} "
                    f"syncs from the member's node at {self.replica_of}"
                )
            async for response in self._pull(request, caller.member_id):
                # A follow stream outlives roster changes: re-check each batch,
                # and tell the puller our roster version (it fetches a newer one).
                self.auth.check(context, Action.READ, "Pull")
                response.roster_version = self._roster_version()
                yield response
        except NodeError as exc:
            await context.abort(status_for(exc), str(exc))

    async def WatchIncidents(
        self, request: pb.WatchIncidentsRequest, context: Context
    ) -> AsyncIterator[pb.IncidentNotification]:
        try:
            self.auth.check(context, Action.READ, "WatchIncidents")
            if self.incidents is None:
                raise NotFoundError("this node serves no incident notifications")
            with self.incidents.subscribe(request.incidents) as sub:
                while (hit := await sub.next()) is not None:
                    # A stream outlives roster changes: re-check each notification.
                    self.auth.check(context, Action.READ, "WatchIncidents")
                    yield convert.notification_to_pb(hit, self.app.node_id)
        except NodeError as exc:
            await context.abort(status_for(exc), str(exc))

    async def _pull(
        self, request: pb.PullRequest, caller: str = ""
    ) -> AsyncIterator[pb.PullResponse]:
        """``caller``: the member at the other end (from its pinned TLS
        certificate; "" in plaintext development). What that member's own
        stream to us says it holds is not sent to it again."""
        limit = request.max_batch or DEFAULT_PULL_BATCH
        if limit > MAX_PULL_BATCH:
            raise ValidationError(f"max_batch {limit}: expected at most {MAX_PULL_BATCH}")
        cursors = dict(request.cursors)
        store = self.app.store
        changes = self.app.changes
        sent_checkpoints: dict[str, str] = {}
        sent_sizes: dict[str, int] | None = None
        loop = asyncio.get_running_loop()
        last_sent = 0.0
        tokens, refilled = FOLLOW_BURST, loop.time()
        # What the caller says it holds counts from now on: its cursors are
        # newer than anything it said before (it may have lost or voided
        # entries since, and reopened this stream for that reason).
        opened = self.app.heard_mark
        while True:
            seen = changes.version
            heads = store.heads()
            # A follow stream outlives the cursors it was opened with; what the
            # caller told us since is newer (a one-off Pull's cursors are fresh).
            held = self.app.heard_since(caller, opened) if caller and request.follow else None
            batch: list[bytes] = []
            batch_bytes = 0
            # Origins with a pending urgent entry first (incident traffic jumps
            # ahead of bulk catch-up); then the rest, so no origin starves.
            urgent = self.app.urgent
            order = sorted(
                heads.items(),
                key=lambda oh: (not urgent.pending(oh[0], cursors.get(oh[0], 0)), oh[0]),
            )
            for origin, head in order:
                have = cursors.get(origin, 0)
                if held is not None and held.get(origin, 0) > have:
                    # The follower got these from another neighbour already.
                    have = cursors[origin] = min(held[origin], head.next_seq)
                if have >= head.next_seq:
                    continue
                room = limit - len(batch)
                room_bytes = MAX_PULL_BYTES - batch_bytes
                if room <= 0 or room_bytes <= 0:
                    break
                raws = store.raw_entries_from(
                    origin, have, min(room, max(1, limit // 4)), room_bytes
                )
                batch.extend(raws)
                batch_bytes += sum(len(r) for r in raws)
                cursors[origin] = have + len(raws)
            sizes = {o: h.next_seq for o, h in heads.items()}
            frontier = pb.Frontier(sizes=sizes)
            now = loop.time()
            alone_due = not request.follow or sent_sizes is None or now - last_sent >= ALONE_EVERY_S
            checkpoints = self.app.tlog.checkpoints_for_pull(
                cursors, sent_checkpoints, mark=bool(batch) or alone_due
            )
            held_back = bool(checkpoints) and not (batch or alone_due)
            # A follow stream also reports its frontier as soon as it opens and
            # whenever it moves, so the caller can tell withholding from lag.
            moved = request.follow and sizes != sent_sizes
            held_back = held_back or (moved and not (batch or alone_due))
            if held_back:
                checkpoints, moved = [], False
            if batch or checkpoints or moved:
                sent_sizes = sizes
                last_sent = now
                yield pb.PullResponse(
                    entries=[convert.raw_to_pb(r) for r in batch],
                    frontier=frontier,
                    checkpoints=checkpoints,
                )
                if request.follow and not changes.closed:
                    # Let what commits in the next moments go in one response.
                    now = loop.time()
                    tokens = min(FOLLOW_BURST, tokens + (now - refilled) * FOLLOW_RATE) - 1
                    refilled = now
                    if tokens < 0:  # out of tokens: wait for the next one
                        await asyncio.sleep(-tokens / FOLLOW_RATE)
                continue
            if not request.follow or changes.closed:
                return
            roster_before = self._roster_version()
            if held_back:  # checkpoints or a frontier wait: send them when due
                wait = max(0.0, last_sent + ALONE_EVERY_S - now)
                await changes.wait_past(seen, min(wait, FOLLOW_IDLE_S))
                continue
            await changes.wait_past(seen, FOLLOW_IDLE_S)
            if changes.version == seen or self._roster_version() != roster_before:
                yield pb.PullResponse(frontier=frontier)  # idle, or a new roster to announce
