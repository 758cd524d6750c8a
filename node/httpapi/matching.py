"""The Match path every HTTP API route shares: what the gRPC Match servicer
does, on the same ``NodeApp`` calls within the same budget
(``node.match.limits``), so an HTTP answer is the gRPC answer."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from node.app import NodeApp
from node.config import NodeConfig
from node.errors import UnavailableError
from node.match.audio_index import AudioThresholds
from node.match.video import QueryFrame, VideoThresholds
from node.rpc import convert
from node.rpc._pb.consortium.v1 import node_pb2 as pb


class MatchPath:
    """The node's matching as the HTTP routes call it: readiness, hash
    Match, and one video or audio Match (in a match thread)."""

    def __init__(
        self,
        app: NodeApp,
        config: NodeConfig,
        ready: Callable[[], bool],
        replica_lag: Callable[[], int | None],
    ) -> None:
        self.app = app
        self.config = config
        self.ready = ready
        self.replica_lag = replica_lag

    def serving(self) -> None:
        """Match routes answer only while the node is ready: a replica that
        lags its primary beyond its bound says so (503), as its health does."""
        if self.ready():
            return
        lag = self.replica_lag()
        if self.config.replica:
            behind = "no word from the primary yet" if lag is None else f"{lag} entries behind"
            raise UnavailableError(
                f"this match replica is not caught up with its primary ({behind}; bound "
                f"{self.config.replica_max_lag}): retry another replica"
            )
        raise UnavailableError("the node is starting up (building its indexes): retry shortly")

    async def hashes(
        self,
        queries: Sequence[tuple[str, bytes]],
        *,
        max_distance: int = 0,
        include_retracted: bool = False,
    ) -> pb.MatchResponse:
        """The gRPC Match's path: NodeApp.match_async within the Match
        budget, rendered by the same conversion (and its answer-size cap)."""
        self.serving()
        results = await self.app.match_async(
            queries, include_retracted=include_retracted, max_distance=max_distance
        )
        step = self.app.match_step(queries)
        response: pb.MatchResponse = await step(
            convert.match_response, results, self.app.match_limits.response_bytes
        )
        return response

    def video_window(
        self,
        frames: list[QueryFrame],
        include_retracted: bool,
        report_all: bool,
        thresholds: VideoThresholds | None = None,
    ) -> list[pb.VideoMatch]:
        """One video Match (in a match thread), as the gRPC servicer runs it."""
        found = self.app.match_video(
            frames, thresholds, include_retracted=include_retracted, report_all=report_all
        )
        return [convert.video_match_to_pb(v) for v in found]

    def audio_query(
        self,
        values: Sequence[int],
        include_retracted: bool,
        report_all: bool,
        thresholds: AudioThresholds | None = None,
    ) -> list[pb.AudioMatch]:
        """One audio Match (in a match thread), as the gRPC servicer runs it."""
        found = self.app.match_audio(
            values, thresholds, include_retracted=include_retracted, report_all=report_all
        )
        return [convert.audio_match_to_pb(a) for a in found]
