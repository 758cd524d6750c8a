"""An asyncio client for NodeService that speaks in core values and NodeErrors."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from types import TracebackType
from typing import Any

import grpc

from node.core.entry import SignedEntry
from node.core.roster import SignedRoster
from node.core.tlog import StaleSizeError
from node.core.tlscert import TLS_NAME
from node.errors import (
    ConflictError,
    LimitError,
    NodeError,
    NotFoundError,
    OrderingError,
    PeerError,
    ProvenanceError,
    StorageError,
    ValidationError,
)
from node.match.audio_index import AudioThresholds
from node.match.video import QueryFrame, VideoThresholds
from node.rpc import convert
from node.rpc._pb.consortium.v1 import node_pb2 as pb
from node.rpc._pb.consortium.v1 import node_pb2_grpc as pb_grpc

WITNESS_SIZE_TRAILER = "ccnode-witness-size"  # same as node.rpc.service
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
DEFAULT_DEADLINE_S = 10.0

#: Keepalive on both sides. The server permits pings every 10 s without
#: calls in flight; clients ping every 20 s, so they never trip gRPC's
#: "too_many_pings" GOAWAY.
CHANNEL_OPTIONS: list[tuple[str, int]] = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
]
SERVER_OPTIONS: list[tuple[str, int]] = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_ping_strikes", 2),
]

_FROM_STATUS: dict[grpc.StatusCode, type[NodeError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: ValidationError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: LimitError,
    grpc.StatusCode.PERMISSION_DENIED: ProvenanceError,
    grpc.StatusCode.FAILED_PRECONDITION: OrderingError,
    grpc.StatusCode.ALREADY_EXISTS: ConflictError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.INTERNAL: StorageError,
}


#: What most likely went wrong when a connection fails, by gRPC's words
#: (README, "Mutual TLS"): (plaintext client?, needle in the detail, hint).
#: The first row that fits wins.
TLS_HINTS: tuple[tuple[bool | None, str, str], ...] = (
    (None, "Connection refused", "nothing listens at that address: is the node running?"),
    (
        False,
        "WRONG_VERSION_NUMBER",
        "that node speaks plaintext (an --insecure development node): use --insecure "
        "without a member directory",
    ),
    (
        False,
        "CERTIFICATE_VERIFY_FAILED",
        "that node's certificate is not one your roster pins (a node of another "
        "consortium, or your roster is older than its: `ccnode roster publish`)",
    ),
    (
        True,
        "",
        "the node requires mutual TLS: pass the member directory whose key to connect "
        "with (DIR or --dir DIR); --insecure is for plaintext development nodes only "
        "(for grpcurl: -cert DIR/keys/tls.crt -key DIR/keys/tls.key -cacert NODE_CERT "
        "-servername ccnode.member)",
    ),
    (
        False,
        "",
        "the node did not accept your certificate: your member is not pinned in that "
        "node's roster (not yet added, or its roster is older than yours: `ccnode "
        "roster publish`)",
    ),
)
_HANDSHAKE_WORDS = ("Socket closed", "Connection reset", "andshake", "SSL", "Failed to connect")


def connection_hint(detail: str, plaintext: bool) -> str:
    """A likely cause for a failed connection, or "" if the detail is not one."""
    if not any(w in detail for w in _HANDSHAKE_WORDS):
        return ""
    for when_plaintext, needle, hint in TLS_HINTS:
        if when_plaintext in (None, plaintext) and needle in detail:
            return hint
    return ""


def error_from_rpc(
    exc: grpc.aio.AioRpcError, address: str, *, plaintext: bool | None = None
) -> NodeError:
    """Translate a gRPC failure into our tree, keeping the server's message;
    a failed connection also says what is likely wrong (``plaintext``: whether
    this client spoke without TLS, if known)."""
    cls = _FROM_STATUS.get(exc.code(), PeerError)
    detail = exc.details() or exc.code().name
    if cls is PeerError:
        message = f"node at {address}: {exc.code().name}: {detail}"
        hint = "" if plaintext is None else connection_hint(detail, plaintext)
        return PeerError(f"{message}. Likely: {hint}" if hint else message)
    return cls(detail)


class NodeClient:
    """``async with NodeClient(addr) as c: await c.status()``."""

    def __init__(
        self,
        address: str,
        *,
        deadline_s: float = DEFAULT_DEADLINE_S,
        credentials: grpc.ChannelCredentials | None = None,
    ) -> None:
        self.address = address
        self.deadline_s = deadline_s
        self.plaintext = credentials is None
        if credentials is None:
            self._channel = grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
        else:
            # Every member certificate names TLS_NAME: who a peer is comes from
            # its pinned key, not from the address it listens on.
            options = [*CHANNEL_OPTIONS, ("grpc.ssl_target_name_override", TLS_NAME)]
            self._channel = grpc.aio.secure_channel(address, credentials, options=options)
        self.stub = pb_grpc.NodeServiceStub(self._channel)

    def _error(self, exc: grpc.aio.AioRpcError) -> NodeError:
        return error_from_rpc(exc, self.address, plaintext=self.plaintext)

    async def __aenter__(self) -> NodeClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close(None)

    async def submit(self, entries: Sequence[SignedEntry]) -> pb.SubmitResponse:
        request = pb.SubmitRequest(entries=[convert.entry_to_pb(e) for e in entries])
        try:
            response: pb.SubmitResponse = await self.stub.Submit(request, timeout=self.deadline_s)
            return response
        except grpc.aio.AioRpcError as exc:
            raise self._error(exc) from None

    async def match(
        self,
        queries: Sequence[tuple[str, bytes]],
        *,
        include_retracted: bool = False,
        record: bool = False,
        max_distance: int = 0,
        dihedral: Sequence[Sequence[bytes]] = (),
    ) -> pb.MatchResponse:
        """``dihedral[i]``: the other dihedral PDQ hashes of query i's image."""
        request = pb.MatchRequest(
            queries=[
                pb.HashQuery(
                    algorithm=a, value=v, dihedral=list(dihedral[i]) if i < len(dihedral) else []
                )
                for i, (a, v) in enumerate(queries)
            ],
            include_retracted=include_retracted,
            record=record,
            max_distance=max_distance,
        )
        try:
            response: pb.MatchResponse = await self.stub.Match(request, timeout=self.deadline_s)
            return response
        except grpc.aio.AioRpcError as exc:
            raise self._error(exc) from None

    async def match_video(
        self,
        frames: Sequence[QueryFrame],
        thresholds: VideoThresholds | None = None,
        *,
        include_retracted: bool = False,
        record: bool = False,
        report_all: bool = False,
    ) -> list[pb.VideoMatch]:
        """One video query (at most 80,000 frames: node.app.MAX_VIDEO_QUERY_FRAMES)."""
        request = pb.MatchRequest(
            video=convert.video_query_to_pb(frames, thresholds, report_all),
            include_retracted=include_retracted,
            record=record,
        )
        try:
            response: pb.MatchResponse = await self.stub.Match(request, timeout=self.deadline_s)
            return list(response.videos)
        except grpc.aio.AioRpcError as exc:
            raise error_from_rpc(exc, self.address) from None

    async def match_audio(
        self,
        values: Sequence[int],
        thresholds: AudioThresholds | None = None,
        *,
        include_retracted: bool = False,
        record: bool = False,
        report_all: bool = False,
    ) -> list[pb.AudioMatch]:
        """One audio query (at most 90,000 values: node.app.MAX_AUDIO_QUERY_ITEMS)."""
        request = pb.MatchRequest(
            audio=convert.audio_query_to_pb(values, thresholds, report_all),
            include_retracted=include_retracted,
            record=record,
        )
        try:
            response: pb.MatchResponse = await self.stub.Match(request, timeout=self.deadline_s)
            return list(response.audio)
        except grpc.aio.AioRpcError as exc:
            raise error_from_rpc(exc, self.address) from None

    async def get_entry(self, entry_id: bytes | str) -> pb.GetEntryResponse:
        """One entry, by its id or (a str of hex digits) a unique prefix of it."""
        request = (
            pb.GetEntryRequest(id_prefix=entry_id)
            if isinstance(entry_id, str)
            else pb.GetEntryRequest(entry_id=entry_id)
        )
        try:
            response: pb.GetEntryResponse = await self.stub.GetEntry(
                request, timeout=self.deadline_s
            )
            return response
        except grpc.aio.AioRpcError as exc:
            raise self._error(exc) from None

    async def status(self) -> pb.StatusResponse:
        try:
            response: pb.StatusResponse = await self.stub.Status(
                pb.StatusRequest(), timeout=self.deadline_s
            )
            return response
        except grpc.aio.AioRpcError as exc:
            raise self._error(exc) from None

    async def pull(
        self, cursors: dict[str, int], *, follow: bool, max_batch: int = 0
    ) -> AsyncIterator[pb.PullResponse]:
        """Stream batches; a follow stream has no deadline (keepalive guards it)."""
        call = self.stub.Pull(
            pb.PullRequest(cursors=cursors, follow=follow, max_batch=max_batch),
            timeout=None if follow else self.deadline_s,
        )
        try:
            async for response in call:
                yield response
        except grpc.aio.AioRpcError as exc:
            raise self._error(exc) from None
        finally:
            call.cancel()

    async def match_video_stream(
        self,
        chunks: AsyncIterator[Sequence[QueryFrame]],
        thresholds: VideoThresholds | None = None,
        *,
        report_all: bool = False,
    ) -> AsyncIterator[list[pb.VideoMatch]]:
        """MatchVideoStream: the answer after each chunk of frames sent."""

        async def requests() -> AsyncIterator[pb.VideoQuery]:
            async for frames in chunks:
                yield convert.video_query_to_pb(frames, thresholds, report_all)

        async for response in self._stream(self.stub.MatchVideoStream, requests()):
            yield list(response.videos)

    async def match_audio_stream(
        self,
        chunks: AsyncIterator[Sequence[int]],
        thresholds: AudioThresholds | None = None,
        *,
        report_all: bool = False,
    ) -> AsyncIterator[list[pb.AudioMatch]]:
        """MatchAudioStream: the answer after each chunk of sub-fingerprints sent."""

        async def requests() -> AsyncIterator[pb.AudioQuery]:
            async for values in chunks:
                yield convert.audio_query_to_pb(values, thresholds, report_all)

        async for response in self._stream(self.stub.MatchAudioStream, requests()):
            yield list(response.audio)

    async def _stream(
        self, method: Any, requests: AsyncIterator[Any]
    ) -> AsyncIterator[pb.MatchResponse]:
        """A client-and-server streaming Match call's answers (no deadline)."""
        call = method(requests, timeout=None)
        try:
            async for response in call:
                yield response
        except grpc.aio.AioRpcError as exc:
            raise error_from_rpc(exc, self.address) from None
        finally:
            call.cancel()

    async def watch_incidents(
        self, incidents: Sequence[str] = ()
    ) -> AsyncIterator[pb.IncidentNotification]:
        """Each urgent incident entry as it commits at the node (no deadline)."""
        call = self.stub.WatchIncidents(
            pb.WatchIncidentsRequest(incidents=list(incidents)), timeout=None
        )
        try:
            async for note in call:
                yield note
        except grpc.aio.AioRpcError as exc:
            raise error_from_rpc(exc, self.address) from None
        finally:
            call.cancel()

    # -- transparency log ---------------------------------------------------------

    async def _call(self, method: Any, request: Any) -> Any:
        try:
            return await method(request, timeout=self.deadline_s)
        except grpc.aio.AioRpcError as exc:
            raise self._error(exc) from None

    async def get_checkpoint(self, origin: str) -> pb.GetCheckpointResponse:
        response: pb.GetCheckpointResponse = await self._call(
            self.stub.GetCheckpoint, pb.GetCheckpointRequest(origin=origin)
        )
        return response

    async def inclusion_proof(self, origin: str, seq: int, tree_size: int) -> list[bytes]:
        request = pb.GetInclusionProofRequest(origin=origin, seq=seq, tree_size=tree_size)
        response: pb.ProofResponse = await self._call(self.stub.GetInclusionProof, request)
        return list(response.hashes)

    async def consistency_proof(self, origin: str, old_size: int, new_size: int) -> list[bytes]:
        request = pb.GetConsistencyProofRequest(origin=origin, old_size=old_size, new_size=new_size)
        response: pb.ProofResponse = await self._call(self.stub.GetConsistencyProof, request)
        return list(response.hashes)

    async def add_checkpoint(self, old_size: int, proof: Sequence[bytes], checkpoint: str) -> str:
        """A witness's cosignature line(s); StaleSizeError carries the witness's size."""
        request = pb.AddCheckpointRequest(
            old_size=old_size, consistency_proof=list(proof), checkpoint=checkpoint
        )
        try:
            response: pb.AddCheckpointResponse = await self.stub.AddCheckpoint(
                request, timeout=self.deadline_s
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.FAILED_PRECONDITION:
                trailers: Any = exc.trailing_metadata() or ()
                for key, value in trailers:
                    if key == WITNESS_SIZE_TRAILER and str(value).isdigit():
                        raise StaleSizeError(exc.details() or "", int(value)) from None
            raise self._error(exc) from None
        return response.cosignature

    async def submit_evidence(self, evidence: bytes) -> pb.SubmitEvidenceResponse:
        response: pb.SubmitEvidenceResponse = await self._call(
            self.stub.SubmitEvidence, pb.SubmitEvidenceRequest(evidence=evidence)
        )
        return response

    # -- policy and accountability (docs/policy.md) ---------------------------

    async def reload_policy(self) -> pb.ReloadPolicyResponse:
        response: pb.ReloadPolicyResponse = await self._call(
            self.stub.ReloadPolicy, pb.ReloadPolicyRequest()
        )
        return response

    async def explain_policy(self, entry_id: bytes) -> pb.ExplainPolicyResponse:
        response: pb.ExplainPolicyResponse = await self._call(
            self.stub.ExplainPolicy, pb.ExplainPolicyRequest(entry_id=entry_id)
        )
        return response

    async def record_action(
        self, entry_id: bytes, action: pb.ActionTaken, count: int = 1, at_ms: int = 0
    ) -> pb.RecordActionResponse:
        """``action`` is a ``pb.ACTION_TAKEN_*`` value; ``at_ms`` 0 means now."""
        response: pb.RecordActionResponse = await self._call(
            self.stub.RecordAction,
            pb.RecordActionRequest(entry_id=entry_id, action=action, count=count, at_ms=at_ms),
        )
        return response

    async def action_summaries(self, *, unreported_only: bool) -> pb.ActionSummariesResponse:
        response: pb.ActionSummariesResponse = await self._call(
            self.stub.ActionSummaries,
            pb.ActionSummariesRequest(unreported_only=unreported_only),
        )
        return response

    async def prune_match_log(self, before_ms: int) -> pb.PruneMatchLogResponse:
        response: pb.PruneMatchLogResponse = await self._call(
            self.stub.PruneMatchLog, pb.PruneMatchLogRequest(before_ms=before_ms)
        )
        return response

    # -- roster (docs/roster.md) -----------------------------------------------

    async def get_roster(self, after_version: int = 0) -> pb.GetRosterResponse:
        try:
            response: pb.GetRosterResponse = await self.stub.GetRoster(
                pb.GetRosterRequest(after_version=after_version), timeout=self.deadline_s
            )
            return response
        except grpc.aio.AioRpcError as exc:
            raise self._error(exc) from None

    async def offer_roster(self, chain: Sequence[SignedRoster]) -> pb.OfferRosterResponse:
        request = pb.OfferRosterRequest(rosters=[convert.roster_to_pb(s) for s in chain])
        try:
            response: pb.OfferRosterResponse = await self.stub.OfferRoster(
                request, timeout=self.deadline_s
            )
            return response
        except grpc.aio.AioRpcError as exc:
            raise self._error(exc) from None
