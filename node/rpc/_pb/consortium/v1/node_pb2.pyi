from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Outcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OUTCOME_UNSPECIFIED: _ClassVar[Outcome]
    OUTCOME_ACCEPTED: _ClassVar[Outcome]
    OUTCOME_DUPLICATE: _ClassVar[Outcome]

class ActionTaken(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACTION_TAKEN_UNSPECIFIED: _ClassVar[ActionTaken]
    ACTION_TAKEN_BLOCKED_AT_UPLOAD: _ClassVar[ActionTaken]
    ACTION_TAKEN_REMOVED: _ClassVar[ActionTaken]
    ACTION_TAKEN_REVIEWED: _ClassVar[ActionTaken]
OUTCOME_UNSPECIFIED: Outcome
OUTCOME_ACCEPTED: Outcome
OUTCOME_DUPLICATE: Outcome
ACTION_TAKEN_UNSPECIFIED: ActionTaken
ACTION_TAKEN_BLOCKED_AT_UPLOAD: ActionTaken
ACTION_TAKEN_REMOVED: ActionTaken
ACTION_TAKEN_REVIEWED: ActionTaken

class SignedEntry(_message.Message):
    __slots__ = ("body", "signature")
    BODY_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    body: bytes
    signature: bytes
    def __init__(self, body: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class SubmitRequest(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[SignedEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[SignedEntry, _Mapping]]] = ...) -> None: ...

class SubmitResult(_message.Message):
    __slots__ = ("entry_id", "outcome")
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    entry_id: bytes
    outcome: Outcome
    def __init__(self, entry_id: _Optional[bytes] = ..., outcome: _Optional[_Union[Outcome, str]] = ...) -> None: ...

class SubmitResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[SubmitResult]
    def __init__(self, results: _Optional[_Iterable[_Union[SubmitResult, _Mapping]]] = ...) -> None: ...

class GetEntryRequest(_message.Message):
    __slots__ = ("entry_id", "id_prefix")
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    ID_PREFIX_FIELD_NUMBER: _ClassVar[int]
    entry_id: bytes
    id_prefix: str
    def __init__(self, entry_id: _Optional[bytes] = ..., id_prefix: _Optional[str] = ...) -> None: ...

class GetEntryResponse(_message.Message):
    __slots__ = ("entry", "provenance", "video_segments")
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    VIDEO_SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    entry: SignedEntry
    provenance: Provenance
    video_segments: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, entry: _Optional[_Union[SignedEntry, _Mapping]] = ..., provenance: _Optional[_Union[Provenance, _Mapping]] = ..., video_segments: _Optional[_Iterable[bytes]] = ...) -> None: ...

class HashQuery(_message.Message):
    __slots__ = ("algorithm", "value", "dihedral")
    ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    DIHEDRAL_FIELD_NUMBER: _ClassVar[int]
    algorithm: str
    value: bytes
    dihedral: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, algorithm: _Optional[str] = ..., value: _Optional[bytes] = ..., dihedral: _Optional[_Iterable[bytes]] = ...) -> None: ...

class MatchRequest(_message.Message):
    __slots__ = ("queries", "include_retracted", "max_distance", "record", "video", "audio")
    QUERIES_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_RETRACTED_FIELD_NUMBER: _ClassVar[int]
    MAX_DISTANCE_FIELD_NUMBER: _ClassVar[int]
    RECORD_FIELD_NUMBER: _ClassVar[int]
    VIDEO_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    queries: _containers.RepeatedCompositeFieldContainer[HashQuery]
    include_retracted: bool
    max_distance: int
    record: bool
    video: VideoQuery
    audio: AudioQuery
    def __init__(self, queries: _Optional[_Iterable[_Union[HashQuery, _Mapping]]] = ..., include_retracted: _Optional[bool] = ..., max_distance: _Optional[int] = ..., record: _Optional[bool] = ..., video: _Optional[_Union[VideoQuery, _Mapping]] = ..., audio: _Optional[_Union[AudioQuery, _Mapping]] = ...) -> None: ...

class AudioQuery(_message.Message):
    __slots__ = ("values", "min_similarity", "min_aligned_s", "report_all")
    VALUES_FIELD_NUMBER: _ClassVar[int]
    MIN_SIMILARITY_FIELD_NUMBER: _ClassVar[int]
    MIN_ALIGNED_S_FIELD_NUMBER: _ClassVar[int]
    REPORT_ALL_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[int]
    min_similarity: float
    min_aligned_s: float
    report_all: bool
    def __init__(self, values: _Optional[_Iterable[int]] = ..., min_similarity: _Optional[float] = ..., min_aligned_s: _Optional[float] = ..., report_all: _Optional[bool] = ...) -> None: ...

class AudioMatch(_message.Message):
    __slots__ = ("match", "video_id", "segments", "similarity", "aligned_s", "query_start_ms", "query_end_ms", "banked_start_ms", "banked_end_ms", "is_match")
    MATCH_FIELD_NUMBER: _ClassVar[int]
    VIDEO_ID_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    SIMILARITY_FIELD_NUMBER: _ClassVar[int]
    ALIGNED_S_FIELD_NUMBER: _ClassVar[int]
    QUERY_START_MS_FIELD_NUMBER: _ClassVar[int]
    QUERY_END_MS_FIELD_NUMBER: _ClassVar[int]
    BANKED_START_MS_FIELD_NUMBER: _ClassVar[int]
    BANKED_END_MS_FIELD_NUMBER: _ClassVar[int]
    IS_MATCH_FIELD_NUMBER: _ClassVar[int]
    match: Match
    video_id: bytes
    segments: _containers.RepeatedScalarFieldContainer[bytes]
    similarity: float
    aligned_s: float
    query_start_ms: int
    query_end_ms: int
    banked_start_ms: int
    banked_end_ms: int
    is_match: bool
    def __init__(self, match: _Optional[_Union[Match, _Mapping]] = ..., video_id: _Optional[bytes] = ..., segments: _Optional[_Iterable[bytes]] = ..., similarity: _Optional[float] = ..., aligned_s: _Optional[float] = ..., query_start_ms: _Optional[int] = ..., query_end_ms: _Optional[int] = ..., banked_start_ms: _Optional[int] = ..., banked_end_ms: _Optional[int] = ..., is_match: _Optional[bool] = ...) -> None: ...

class VideoQuery(_message.Message):
    __slots__ = ("hashes", "quality", "ts_ms", "variant", "thresholds", "report_all")
    HASHES_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    TS_MS_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    THRESHOLDS_FIELD_NUMBER: _ClassVar[int]
    REPORT_ALL_FIELD_NUMBER: _ClassVar[int]
    hashes: bytes
    quality: _containers.RepeatedScalarFieldContainer[int]
    ts_ms: _containers.RepeatedScalarFieldContainer[int]
    variant: _containers.RepeatedScalarFieldContainer[int]
    thresholds: VideoThresholds
    report_all: bool
    def __init__(self, hashes: _Optional[bytes] = ..., quality: _Optional[_Iterable[int]] = ..., ts_ms: _Optional[_Iterable[int]] = ..., variant: _Optional[_Iterable[int]] = ..., thresholds: _Optional[_Union[VideoThresholds, _Mapping]] = ..., report_all: _Optional[bool] = ...) -> None: ...

class VideoThresholds(_message.Message):
    __slots__ = ("max_distance", "quality_floor", "min_coverage", "min_frames", "min_matched_ms", "offset_tolerance_ms")
    MAX_DISTANCE_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FLOOR_FIELD_NUMBER: _ClassVar[int]
    MIN_COVERAGE_FIELD_NUMBER: _ClassVar[int]
    MIN_FRAMES_FIELD_NUMBER: _ClassVar[int]
    MIN_MATCHED_MS_FIELD_NUMBER: _ClassVar[int]
    OFFSET_TOLERANCE_MS_FIELD_NUMBER: _ClassVar[int]
    max_distance: int
    quality_floor: int
    min_coverage: float
    min_frames: int
    min_matched_ms: int
    offset_tolerance_ms: int
    def __init__(self, max_distance: _Optional[int] = ..., quality_floor: _Optional[int] = ..., min_coverage: _Optional[float] = ..., min_frames: _Optional[int] = ..., min_matched_ms: _Optional[int] = ..., offset_tolerance_ms: _Optional[int] = ...) -> None: ...

class VideoMatch(_message.Message):
    __slots__ = ("match", "video_id", "segments", "query_pct", "banked_pct", "matched_frames", "offset_ms", "coverage", "query_start_ms", "query_end_ms", "banked_start_ms", "banked_end_ms", "mirrored", "trimmed", "is_match", "banked_first_ms", "banked_last_ms")
    MATCH_FIELD_NUMBER: _ClassVar[int]
    VIDEO_ID_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    QUERY_PCT_FIELD_NUMBER: _ClassVar[int]
    BANKED_PCT_FIELD_NUMBER: _ClassVar[int]
    MATCHED_FRAMES_FIELD_NUMBER: _ClassVar[int]
    OFFSET_MS_FIELD_NUMBER: _ClassVar[int]
    COVERAGE_FIELD_NUMBER: _ClassVar[int]
    QUERY_START_MS_FIELD_NUMBER: _ClassVar[int]
    QUERY_END_MS_FIELD_NUMBER: _ClassVar[int]
    BANKED_START_MS_FIELD_NUMBER: _ClassVar[int]
    BANKED_END_MS_FIELD_NUMBER: _ClassVar[int]
    MIRRORED_FIELD_NUMBER: _ClassVar[int]
    TRIMMED_FIELD_NUMBER: _ClassVar[int]
    IS_MATCH_FIELD_NUMBER: _ClassVar[int]
    BANKED_FIRST_MS_FIELD_NUMBER: _ClassVar[int]
    BANKED_LAST_MS_FIELD_NUMBER: _ClassVar[int]
    match: Match
    video_id: bytes
    segments: _containers.RepeatedScalarFieldContainer[bytes]
    query_pct: float
    banked_pct: float
    matched_frames: int
    offset_ms: int
    coverage: float
    query_start_ms: int
    query_end_ms: int
    banked_start_ms: int
    banked_end_ms: int
    mirrored: bool
    trimmed: bool
    is_match: bool
    banked_first_ms: int
    banked_last_ms: int
    def __init__(self, match: _Optional[_Union[Match, _Mapping]] = ..., video_id: _Optional[bytes] = ..., segments: _Optional[_Iterable[bytes]] = ..., query_pct: _Optional[float] = ..., banked_pct: _Optional[float] = ..., matched_frames: _Optional[int] = ..., offset_ms: _Optional[int] = ..., coverage: _Optional[float] = ..., query_start_ms: _Optional[int] = ..., query_end_ms: _Optional[int] = ..., banked_start_ms: _Optional[int] = ..., banked_end_ms: _Optional[int] = ..., mirrored: _Optional[bool] = ..., trimmed: _Optional[bool] = ..., is_match: _Optional[bool] = ..., banked_first_ms: _Optional[int] = ..., banked_last_ms: _Optional[int] = ...) -> None: ...

class Provenance(_message.Message):
    __slots__ = ("entry_id", "origin", "origin_kind", "jurisdiction", "algorithm", "hash", "labels", "incident", "time_ms", "arrival_ms", "seq", "retracted", "retracted_by", "urgent", "reason", "settled", "origin_equivocated", "votes", "endorsements", "disputes", "current_labels", "relabelled_by", "relabels", "action_reports", "origin_status", "origin_name", "quality")
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_KIND_FIELD_NUMBER: _ClassVar[int]
    JURISDICTION_FIELD_NUMBER: _ClassVar[int]
    ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    INCIDENT_FIELD_NUMBER: _ClassVar[int]
    TIME_MS_FIELD_NUMBER: _ClassVar[int]
    ARRIVAL_MS_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    RETRACTED_FIELD_NUMBER: _ClassVar[int]
    RETRACTED_BY_FIELD_NUMBER: _ClassVar[int]
    URGENT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SETTLED_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_EQUIVOCATED_FIELD_NUMBER: _ClassVar[int]
    VOTES_FIELD_NUMBER: _ClassVar[int]
    ENDORSEMENTS_FIELD_NUMBER: _ClassVar[int]
    DISPUTES_FIELD_NUMBER: _ClassVar[int]
    CURRENT_LABELS_FIELD_NUMBER: _ClassVar[int]
    RELABELLED_BY_FIELD_NUMBER: _ClassVar[int]
    RELABELS_FIELD_NUMBER: _ClassVar[int]
    ACTION_REPORTS_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_STATUS_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_NAME_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    entry_id: bytes
    origin: str
    origin_kind: str
    jurisdiction: str
    algorithm: str
    hash: bytes
    labels: _containers.RepeatedScalarFieldContainer[str]
    incident: str
    time_ms: int
    arrival_ms: int
    seq: int
    retracted: bool
    retracted_by: bytes
    urgent: bool
    reason: str
    settled: bool
    origin_equivocated: bool
    votes: _containers.RepeatedCompositeFieldContainer[Vote]
    endorsements: _containers.RepeatedCompositeFieldContainer[VoteTally]
    disputes: _containers.RepeatedCompositeFieldContainer[VoteTally]
    current_labels: _containers.RepeatedScalarFieldContainer[str]
    relabelled_by: bytes
    relabels: int
    action_reports: _containers.RepeatedCompositeFieldContainer[ActionReportRef]
    origin_status: str
    origin_name: str
    quality: int
    def __init__(self, entry_id: _Optional[bytes] = ..., origin: _Optional[str] = ..., origin_kind: _Optional[str] = ..., jurisdiction: _Optional[str] = ..., algorithm: _Optional[str] = ..., hash: _Optional[bytes] = ..., labels: _Optional[_Iterable[str]] = ..., incident: _Optional[str] = ..., time_ms: _Optional[int] = ..., arrival_ms: _Optional[int] = ..., seq: _Optional[int] = ..., retracted: _Optional[bool] = ..., retracted_by: _Optional[bytes] = ..., urgent: _Optional[bool] = ..., reason: _Optional[str] = ..., settled: _Optional[bool] = ..., origin_equivocated: _Optional[bool] = ..., votes: _Optional[_Iterable[_Union[Vote, _Mapping]]] = ..., endorsements: _Optional[_Iterable[_Union[VoteTally, _Mapping]]] = ..., disputes: _Optional[_Iterable[_Union[VoteTally, _Mapping]]] = ..., current_labels: _Optional[_Iterable[str]] = ..., relabelled_by: _Optional[bytes] = ..., relabels: _Optional[int] = ..., action_reports: _Optional[_Iterable[_Union[ActionReportRef, _Mapping]]] = ..., origin_status: _Optional[str] = ..., origin_name: _Optional[str] = ..., quality: _Optional[int] = ...) -> None: ...

class Vote(_message.Message):
    __slots__ = ("member", "member_kind", "jurisdiction", "vote", "reason", "entry_id", "time_ms", "revoked")
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    MEMBER_KIND_FIELD_NUMBER: _ClassVar[int]
    JURISDICTION_FIELD_NUMBER: _ClassVar[int]
    VOTE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    TIME_MS_FIELD_NUMBER: _ClassVar[int]
    REVOKED_FIELD_NUMBER: _ClassVar[int]
    member: str
    member_kind: str
    jurisdiction: str
    vote: str
    reason: str
    entry_id: bytes
    time_ms: int
    revoked: bool
    def __init__(self, member: _Optional[str] = ..., member_kind: _Optional[str] = ..., jurisdiction: _Optional[str] = ..., vote: _Optional[str] = ..., reason: _Optional[str] = ..., entry_id: _Optional[bytes] = ..., time_ms: _Optional[int] = ..., revoked: _Optional[bool] = ...) -> None: ...

class VoteTally(_message.Message):
    __slots__ = ("member_kind", "jurisdiction", "count")
    MEMBER_KIND_FIELD_NUMBER: _ClassVar[int]
    JURISDICTION_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    member_kind: str
    jurisdiction: str
    count: int
    def __init__(self, member_kind: _Optional[str] = ..., jurisdiction: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...

class ActionReportRef(_message.Message):
    __slots__ = ("member", "entry_id", "counts")
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    member: str
    entry_id: bytes
    counts: ActionCounts
    def __init__(self, member: _Optional[str] = ..., entry_id: _Optional[bytes] = ..., counts: _Optional[_Union[ActionCounts, _Mapping]] = ...) -> None: ...

class ActionCounts(_message.Message):
    __slots__ = ("arrival_ms", "first_match_ms", "first_action_ms", "as_of_ms", "matches", "blocked_at_upload", "removals", "reviews")
    ARRIVAL_MS_FIELD_NUMBER: _ClassVar[int]
    FIRST_MATCH_MS_FIELD_NUMBER: _ClassVar[int]
    FIRST_ACTION_MS_FIELD_NUMBER: _ClassVar[int]
    AS_OF_MS_FIELD_NUMBER: _ClassVar[int]
    MATCHES_FIELD_NUMBER: _ClassVar[int]
    BLOCKED_AT_UPLOAD_FIELD_NUMBER: _ClassVar[int]
    REMOVALS_FIELD_NUMBER: _ClassVar[int]
    REVIEWS_FIELD_NUMBER: _ClassVar[int]
    arrival_ms: int
    first_match_ms: int
    first_action_ms: int
    as_of_ms: int
    matches: int
    blocked_at_upload: int
    removals: int
    reviews: int
    def __init__(self, arrival_ms: _Optional[int] = ..., first_match_ms: _Optional[int] = ..., first_action_ms: _Optional[int] = ..., as_of_ms: _Optional[int] = ..., matches: _Optional[int] = ..., blocked_at_upload: _Optional[int] = ..., removals: _Optional[int] = ..., reviews: _Optional[int] = ...) -> None: ...

class Match(_message.Message):
    __slots__ = ("provenance", "distance", "recommended_action", "rule", "variant")
    PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    DISTANCE_FIELD_NUMBER: _ClassVar[int]
    RECOMMENDED_ACTION_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    provenance: Provenance
    distance: int
    recommended_action: str
    rule: str
    variant: int
    def __init__(self, provenance: _Optional[_Union[Provenance, _Mapping]] = ..., distance: _Optional[int] = ..., recommended_action: _Optional[str] = ..., rule: _Optional[str] = ..., variant: _Optional[int] = ...) -> None: ...

class QueryResult(_message.Message):
    __slots__ = ("matches", "never_match", "total", "truncated")
    MATCHES_FIELD_NUMBER: _ClassVar[int]
    NEVER_MATCH_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    matches: _containers.RepeatedCompositeFieldContainer[Match]
    never_match: bool
    total: int
    truncated: bool
    def __init__(self, matches: _Optional[_Iterable[_Union[Match, _Mapping]]] = ..., never_match: _Optional[bool] = ..., total: _Optional[int] = ..., truncated: _Optional[bool] = ...) -> None: ...

class MatchResponse(_message.Message):
    __slots__ = ("results", "videos", "audio")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    VIDEOS_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[QueryResult]
    videos: _containers.RepeatedCompositeFieldContainer[VideoMatch]
    audio: _containers.RepeatedCompositeFieldContainer[AudioMatch]
    def __init__(self, results: _Optional[_Iterable[_Union[QueryResult, _Mapping]]] = ..., videos: _Optional[_Iterable[_Union[VideoMatch, _Mapping]]] = ..., audio: _Optional[_Iterable[_Union[AudioMatch, _Mapping]]] = ...) -> None: ...

class PullRequest(_message.Message):
    __slots__ = ("cursors", "max_batch", "follow")
    class CursorsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    CURSORS_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    cursors: _containers.ScalarMap[str, int]
    max_batch: int
    follow: bool
    def __init__(self, cursors: _Optional[_Mapping[str, int]] = ..., max_batch: _Optional[int] = ..., follow: _Optional[bool] = ...) -> None: ...

class Frontier(_message.Message):
    __slots__ = ("sizes",)
    class SizesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    SIZES_FIELD_NUMBER: _ClassVar[int]
    sizes: _containers.ScalarMap[str, int]
    def __init__(self, sizes: _Optional[_Mapping[str, int]] = ...) -> None: ...

class PullResponse(_message.Message):
    __slots__ = ("entries", "frontier", "checkpoints", "roster_version")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    FRONTIER_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINTS_FIELD_NUMBER: _ClassVar[int]
    ROSTER_VERSION_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[SignedEntry]
    frontier: Frontier
    checkpoints: _containers.RepeatedScalarFieldContainer[str]
    roster_version: int
    def __init__(self, entries: _Optional[_Iterable[_Union[SignedEntry, _Mapping]]] = ..., frontier: _Optional[_Union[Frontier, _Mapping]] = ..., checkpoints: _Optional[_Iterable[str]] = ..., roster_version: _Optional[int] = ...) -> None: ...

class WatchIncidentsRequest(_message.Message):
    __slots__ = ("incidents",)
    INCIDENTS_FIELD_NUMBER: _ClassVar[int]
    incidents: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, incidents: _Optional[_Iterable[str]] = ...) -> None: ...

class IncidentNotification(_message.Message):
    __slots__ = ("entry", "provenance", "recommended_action", "rule", "node_id")
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    RECOMMENDED_ACTION_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    entry: SignedEntry
    provenance: Provenance
    recommended_action: str
    rule: str
    node_id: str
    def __init__(self, entry: _Optional[_Union[SignedEntry, _Mapping]] = ..., provenance: _Optional[_Union[Provenance, _Mapping]] = ..., recommended_action: _Optional[str] = ..., rule: _Optional[str] = ..., node_id: _Optional[str] = ...) -> None: ...

class StatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PeerStatus(_message.Message):
    __slots__ = ("peer_id", "address", "state", "lag_entries", "last_received_ms", "last_error", "received", "refused", "withholding", "duplicates", "responses")
    PEER_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    LAG_ENTRIES_FIELD_NUMBER: _ClassVar[int]
    LAST_RECEIVED_MS_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_FIELD_NUMBER: _ClassVar[int]
    REFUSED_FIELD_NUMBER: _ClassVar[int]
    WITHHOLDING_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    RESPONSES_FIELD_NUMBER: _ClassVar[int]
    peer_id: str
    address: str
    state: str
    lag_entries: int
    last_received_ms: int
    last_error: str
    received: int
    refused: int
    withholding: bool
    duplicates: int
    responses: int
    def __init__(self, peer_id: _Optional[str] = ..., address: _Optional[str] = ..., state: _Optional[str] = ..., lag_entries: _Optional[int] = ..., last_received_ms: _Optional[int] = ..., last_error: _Optional[str] = ..., received: _Optional[int] = ..., refused: _Optional[int] = ..., withholding: _Optional[bool] = ..., duplicates: _Optional[int] = ..., responses: _Optional[int] = ...) -> None: ...

class OriginHead(_message.Message):
    __slots__ = ("origin", "next_seq", "head_id", "checkpoint_size", "settled_size")
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    NEXT_SEQ_FIELD_NUMBER: _ClassVar[int]
    HEAD_ID_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_SIZE_FIELD_NUMBER: _ClassVar[int]
    SETTLED_SIZE_FIELD_NUMBER: _ClassVar[int]
    origin: str
    next_seq: int
    head_id: bytes
    checkpoint_size: int
    settled_size: int
    def __init__(self, origin: _Optional[str] = ..., next_seq: _Optional[int] = ..., head_id: _Optional[bytes] = ..., checkpoint_size: _Optional[int] = ..., settled_size: _Optional[int] = ...) -> None: ...

class StatusResponse(_message.Message):
    __slots__ = ("node_id", "heads", "peers", "entries", "evidence", "version", "alerts", "roster_version", "roster_expires_ms", "roster_id", "checkpoint_vkey")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    HEADS_FIELD_NUMBER: _ClassVar[int]
    PEERS_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ALERTS_FIELD_NUMBER: _ClassVar[int]
    ROSTER_VERSION_FIELD_NUMBER: _ClassVar[int]
    ROSTER_EXPIRES_MS_FIELD_NUMBER: _ClassVar[int]
    ROSTER_ID_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_VKEY_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    heads: _containers.RepeatedCompositeFieldContainer[OriginHead]
    peers: _containers.RepeatedCompositeFieldContainer[PeerStatus]
    entries: int
    evidence: int
    version: str
    alerts: _containers.RepeatedCompositeFieldContainer[Alert]
    roster_version: int
    roster_expires_ms: int
    roster_id: bytes
    checkpoint_vkey: str
    def __init__(self, node_id: _Optional[str] = ..., heads: _Optional[_Iterable[_Union[OriginHead, _Mapping]]] = ..., peers: _Optional[_Iterable[_Union[PeerStatus, _Mapping]]] = ..., entries: _Optional[int] = ..., evidence: _Optional[int] = ..., version: _Optional[str] = ..., alerts: _Optional[_Iterable[_Union[Alert, _Mapping]]] = ..., roster_version: _Optional[int] = ..., roster_expires_ms: _Optional[int] = ..., roster_id: _Optional[bytes] = ..., checkpoint_vkey: _Optional[str] = ...) -> None: ...

class Alert(_message.Message):
    __slots__ = ("kind", "origin", "peer", "detail")
    KIND_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    PEER_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    kind: str
    origin: str
    peer: str
    detail: str
    def __init__(self, kind: _Optional[str] = ..., origin: _Optional[str] = ..., peer: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...

class GetCheckpointRequest(_message.Message):
    __slots__ = ("origin",)
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    origin: str
    def __init__(self, origin: _Optional[str] = ...) -> None: ...

class GetCheckpointResponse(_message.Message):
    __slots__ = ("checkpoint", "settled_checkpoint")
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    SETTLED_CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    checkpoint: str
    settled_checkpoint: str
    def __init__(self, checkpoint: _Optional[str] = ..., settled_checkpoint: _Optional[str] = ...) -> None: ...

class GetInclusionProofRequest(_message.Message):
    __slots__ = ("origin", "seq", "tree_size")
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    origin: str
    seq: int
    tree_size: int
    def __init__(self, origin: _Optional[str] = ..., seq: _Optional[int] = ..., tree_size: _Optional[int] = ...) -> None: ...

class GetConsistencyProofRequest(_message.Message):
    __slots__ = ("origin", "old_size", "new_size")
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    OLD_SIZE_FIELD_NUMBER: _ClassVar[int]
    NEW_SIZE_FIELD_NUMBER: _ClassVar[int]
    origin: str
    old_size: int
    new_size: int
    def __init__(self, origin: _Optional[str] = ..., old_size: _Optional[int] = ..., new_size: _Optional[int] = ...) -> None: ...

class ProofResponse(_message.Message):
    __slots__ = ("hashes",)
    HASHES_FIELD_NUMBER: _ClassVar[int]
    hashes: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, hashes: _Optional[_Iterable[bytes]] = ...) -> None: ...

class AddCheckpointRequest(_message.Message):
    __slots__ = ("old_size", "consistency_proof", "checkpoint")
    OLD_SIZE_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_PROOF_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    old_size: int
    consistency_proof: _containers.RepeatedScalarFieldContainer[bytes]
    checkpoint: str
    def __init__(self, old_size: _Optional[int] = ..., consistency_proof: _Optional[_Iterable[bytes]] = ..., checkpoint: _Optional[str] = ...) -> None: ...

class AddCheckpointResponse(_message.Message):
    __slots__ = ("cosignature",)
    COSIGNATURE_FIELD_NUMBER: _ClassVar[int]
    cosignature: str
    def __init__(self, cosignature: _Optional[str] = ...) -> None: ...

class SubmitEvidenceRequest(_message.Message):
    __slots__ = ("evidence",)
    EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    evidence: bytes
    def __init__(self, evidence: _Optional[bytes] = ...) -> None: ...

class SubmitEvidenceResponse(_message.Message):
    __slots__ = ("evidence_id", "new")
    EVIDENCE_ID_FIELD_NUMBER: _ClassVar[int]
    NEW_FIELD_NUMBER: _ClassVar[int]
    evidence_id: bytes
    new: bool
    def __init__(self, evidence_id: _Optional[bytes] = ..., new: _Optional[bool] = ...) -> None: ...

class ReloadPolicyRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReloadPolicyResponse(_message.Message):
    __slots__ = ("source", "rules", "never_match", "never_match_source")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    NEVER_MATCH_FIELD_NUMBER: _ClassVar[int]
    NEVER_MATCH_SOURCE_FIELD_NUMBER: _ClassVar[int]
    source: str
    rules: _containers.RepeatedScalarFieldContainer[str]
    never_match: int
    never_match_source: str
    def __init__(self, source: _Optional[str] = ..., rules: _Optional[_Iterable[str]] = ..., never_match: _Optional[int] = ..., never_match_source: _Optional[str] = ...) -> None: ...

class ExplainPolicyRequest(_message.Message):
    __slots__ = ("entry_id",)
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    entry_id: bytes
    def __init__(self, entry_id: _Optional[bytes] = ...) -> None: ...

class RuleTrace(_message.Message):
    __slots__ = ("name", "action", "matched", "reached", "reasons")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    MATCHED_FIELD_NUMBER: _ClassVar[int]
    REACHED_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    name: str
    action: str
    matched: bool
    reached: bool
    reasons: _containers.RepeatedCompositeFieldContainer[Reason]
    def __init__(self, name: _Optional[str] = ..., action: _Optional[str] = ..., matched: _Optional[bool] = ..., reached: _Optional[bool] = ..., reasons: _Optional[_Iterable[_Union[Reason, _Mapping]]] = ...) -> None: ...

class Reason(_message.Message):
    __slots__ = ("holds", "text")
    HOLDS_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    holds: bool
    text: str
    def __init__(self, holds: _Optional[bool] = ..., text: _Optional[str] = ...) -> None: ...

class ExplainPolicyResponse(_message.Message):
    __slots__ = ("match", "rules", "policy_source", "default_action")
    MATCH_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    POLICY_SOURCE_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_ACTION_FIELD_NUMBER: _ClassVar[int]
    match: Match
    rules: _containers.RepeatedCompositeFieldContainer[RuleTrace]
    policy_source: str
    default_action: str
    def __init__(self, match: _Optional[_Union[Match, _Mapping]] = ..., rules: _Optional[_Iterable[_Union[RuleTrace, _Mapping]]] = ..., policy_source: _Optional[str] = ..., default_action: _Optional[str] = ...) -> None: ...

class RecordActionRequest(_message.Message):
    __slots__ = ("entry_id", "action", "count", "at_ms")
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    AT_MS_FIELD_NUMBER: _ClassVar[int]
    entry_id: bytes
    action: ActionTaken
    count: int
    at_ms: int
    def __init__(self, entry_id: _Optional[bytes] = ..., action: _Optional[_Union[ActionTaken, str]] = ..., count: _Optional[int] = ..., at_ms: _Optional[int] = ...) -> None: ...

class RecordActionResponse(_message.Message):
    __slots__ = ("time_ms",)
    TIME_MS_FIELD_NUMBER: _ClassVar[int]
    time_ms: int
    def __init__(self, time_ms: _Optional[int] = ...) -> None: ...

class ActionSummariesRequest(_message.Message):
    __slots__ = ("unreported_only",)
    UNREPORTED_ONLY_FIELD_NUMBER: _ClassVar[int]
    unreported_only: bool
    def __init__(self, unreported_only: _Optional[bool] = ...) -> None: ...

class ActionSummary(_message.Message):
    __slots__ = ("entry_id", "incident", "counts", "reported_by", "reported")
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    INCIDENT_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    REPORTED_BY_FIELD_NUMBER: _ClassVar[int]
    REPORTED_FIELD_NUMBER: _ClassVar[int]
    entry_id: bytes
    incident: str
    counts: ActionCounts
    reported_by: bytes
    reported: bool
    def __init__(self, entry_id: _Optional[bytes] = ..., incident: _Optional[str] = ..., counts: _Optional[_Union[ActionCounts, _Mapping]] = ..., reported_by: _Optional[bytes] = ..., reported: _Optional[bool] = ...) -> None: ...

class ActionSummariesResponse(_message.Message):
    __slots__ = ("summaries",)
    SUMMARIES_FIELD_NUMBER: _ClassVar[int]
    summaries: _containers.RepeatedCompositeFieldContainer[ActionSummary]
    def __init__(self, summaries: _Optional[_Iterable[_Union[ActionSummary, _Mapping]]] = ...) -> None: ...

class PruneMatchLogRequest(_message.Message):
    __slots__ = ("before_ms",)
    BEFORE_MS_FIELD_NUMBER: _ClassVar[int]
    before_ms: int
    def __init__(self, before_ms: _Optional[int] = ...) -> None: ...

class PruneMatchLogResponse(_message.Message):
    __slots__ = ("removed", "kept")
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    KEPT_FIELD_NUMBER: _ClassVar[int]
    removed: int
    kept: int
    def __init__(self, removed: _Optional[int] = ..., kept: _Optional[int] = ...) -> None: ...

class SignedRoster(_message.Message):
    __slots__ = ("body", "signatures")
    BODY_FIELD_NUMBER: _ClassVar[int]
    SIGNATURES_FIELD_NUMBER: _ClassVar[int]
    body: bytes
    signatures: _containers.RepeatedCompositeFieldContainer[RosterSignature]
    def __init__(self, body: _Optional[bytes] = ..., signatures: _Optional[_Iterable[_Union[RosterSignature, _Mapping]]] = ...) -> None: ...

class RosterSignature(_message.Message):
    __slots__ = ("public_key", "signature")
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    public_key: bytes
    signature: bytes
    def __init__(self, public_key: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class GetRosterRequest(_message.Message):
    __slots__ = ("after_version",)
    AFTER_VERSION_FIELD_NUMBER: _ClassVar[int]
    after_version: int
    def __init__(self, after_version: _Optional[int] = ...) -> None: ...

class GetRosterResponse(_message.Message):
    __slots__ = ("rosters", "version")
    ROSTERS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    rosters: _containers.RepeatedCompositeFieldContainer[SignedRoster]
    version: int
    def __init__(self, rosters: _Optional[_Iterable[_Union[SignedRoster, _Mapping]]] = ..., version: _Optional[int] = ...) -> None: ...

class OfferRosterRequest(_message.Message):
    __slots__ = ("rosters",)
    ROSTERS_FIELD_NUMBER: _ClassVar[int]
    rosters: _containers.RepeatedCompositeFieldContainer[SignedRoster]
    def __init__(self, rosters: _Optional[_Iterable[_Union[SignedRoster, _Mapping]]] = ...) -> None: ...

class OfferRosterResponse(_message.Message):
    __slots__ = ("version", "adopted", "refused")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ADOPTED_FIELD_NUMBER: _ClassVar[int]
    REFUSED_FIELD_NUMBER: _ClassVar[int]
    version: int
    adopted: int
    refused: str
    def __init__(self, version: _Optional[int] = ..., adopted: _Optional[int] = ..., refused: _Optional[str] = ...) -> None: ...
