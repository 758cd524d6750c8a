"""The native routes (docs/http.md): ``/v1/match`` (one hash or a batch),
``/v1/match/file`` (an upload), ``/v1/match/video`` and ``/v1/match/audio``
(frames and fingerprints hashed by the caller), ``/v1/entries/{id}`` and
``/v1/status``, answered as ``ccnode match --json`` answers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from node.core import hashes
from node.errors import ValidationError
from node.httpapi.hma import index_status
from node.httpapi.matching import MatchPath
from node.httpapi.request import CHUNK, bool_param, int_param, json_body, param, parse_json
from node.httpapi.uploads import Uploads
from node.rpc import convert
from node.rpc._pb.consortium.v1 import node_pb2 as pb


class NativeRoutes:
    """The /v1 route handlers (``ROUTES`` in node/httpapi/server.py)."""

    def __init__(self, matching: MatchPath, uploads: Uploads) -> None:
        self.matching = matching
        self.app = matching.app
        self.uploads = uploads

    async def match_get(self, request: web.Request) -> web.Response:
        """One hash: ``algorithm`` and ``hash`` (hex) as parameters."""
        algo = hashes.normalize_name(param(request, "algorithm"))
        value = hashes.parse_hex(algo, param(request, "hash"))
        return await self._hashes(
            [(algo, value)],
            max_distance=int_param(request, "max_distance"),
            include_retracted=bool_param(request, "include_retracted"),
        )

    async def match_post(self, request: web.Request) -> web.Response:
        """A batch: ``{"queries": [{"algorithm": "pdq", "hash": HEX}, ...],
        "max_distance": N, "include_retracted": B}``."""
        body = await request.read()
        # A large body (up to 10,000 queries) is parsed off the loop.
        limit = self.app.match_limits.max_queries
        if len(body) < CHUNK:
            parsed = _parse_batch(body, limit)
        else:
            parsed = await asyncio.get_running_loop().run_in_executor(
                self.app.match_pool, _parse_batch, body, limit
            )
        queries, max_distance, include_retracted = parsed
        return await self._hashes(
            queries, max_distance=max_distance, include_retracted=include_retracted
        )

    async def _hashes(
        self, queries: list[tuple[str, bytes]], *, max_distance: int, include_retracted: bool
    ) -> web.Response:
        response = await self.matching.hashes(
            queries, max_distance=max_distance, include_retracted=include_retracted
        )
        # Rendering 10,000 answers is work too: in a match thread, as the
        # gRPC Match converts its answer (a small request's right here).
        text: str = await self.app.match_step(queries)(_render_hashes, queries, response)
        return web.Response(text=text, content_type="application/json")

    async def match_video(self, request: web.Request) -> dict[str, Any]:
        """Video frames hashed by the caller (as ``ccnode match VIDEO`` sends
        them over gRPC: the content never leaves the platform): ``{"frames":
        [{"pdq": HEX, "quality": Q, "ts_ms": T, "variant": V}, ...],
        "thresholds": {...}, "report_all": B, "include_retracted": B}``; within
        the Match budget (each frame costs a PDQ query)."""
        from node.cli.video_cmds import video_json

        self.matching.serving()
        doc = await json_body(request)
        loop = asyncio.get_running_loop()
        found: list[pb.VideoMatch] = await loop.run_in_executor(
            self.app.match_pool, self._video_request, doc
        )
        return {"videos": [video_json(v) for v in found]}

    def _video_request(self, doc: dict[str, Any]) -> list[pb.VideoMatch]:
        """Parsed into the gRPC VideoQuery and checked by its conversion, then
        matched as the Match servicer matches it (in a match thread)."""
        rows = doc.get("frames")
        if not isinstance(rows, list):
            raise ValidationError(
                'expected {"frames": [{"pdq": HEX, "quality": Q, "ts_ms": T, ...}]}'
            )
        query = pb.VideoQuery(report_all=doc.get("report_all") is True)
        hashes_: list[bytes] = []
        for i, f in enumerate(rows):
            try:
                hashes_.append(bytes.fromhex(f["pdq"]))
                query.quality.append(_whole(f.get("quality", 100)))
                query.ts_ms.append(_whole(f["ts_ms"]))
                query.variant.append(_whole(f.get("variant", 0)))
            except (KeyError, TypeError, ValueError, AttributeError, OverflowError):
                raise ValidationError(
                    f'frame {i}: expected {{"pdq": 64 hex digits, "quality": 0..100, '
                    '"ts_ms": >= 0, "variant": 0..3}'
                ) from None
        query.hashes = b"".join(hashes_)
        thresholds = doc.get("thresholds") or {}
        try:
            query.thresholds.CopyFrom(pb.VideoThresholds(**thresholds))
        except (TypeError, ValueError):
            raise ValidationError(
                "thresholds: expected an object of max_distance, quality_floor, min_coverage, "
                "min_frames, min_matched_ms, offset_tolerance_ms"
            ) from None
        frames, t = convert.video_query_from_pb(query)
        return self.matching.video_window(
            frames, doc.get("include_retracted") is True, query.report_all, t
        )

    async def match_audio(self, request: web.Request) -> dict[str, Any]:
        """An audio fingerprint computed by the caller (``ccnode hash``,
        ``fpcalc -raw``, or ``/h/hash``'s chromaprint): ``{"fingerprint":
        [u32, ...] or "u32,u32,...", "min_similarity": F, "min_aligned_s": S,
        "report_all": B, "include_retracted": B}``."""
        from node.cli.media_cmds import audio_json

        self.matching.serving()
        doc = await json_body(request)
        loop = asyncio.get_running_loop()
        found: list[pb.AudioMatch] = await loop.run_in_executor(
            self.app.match_pool, self._audio_request, doc
        )
        return {"audio": [audio_json(a) for a in found]}

    def _audio_request(self, doc: dict[str, Any]) -> list[pb.AudioMatch]:
        raw = doc.get("fingerprint")
        try:
            items = raw.split(",") if isinstance(raw, str) else raw
            if not isinstance(items, list):
                raise TypeError
            values = [int(v) if isinstance(raw, str) else _whole(v) for v in items]
            if any(not 0 <= v < 1 << 32 for v in values):
                raise ValueError
            query = pb.AudioQuery(values=values, report_all=doc.get("report_all") is True)
            for name in ("min_similarity", "min_aligned_s"):
                if name in doc:
                    setattr(query, name, float(doc[name]))
        except (TypeError, ValueError, OverflowError):  # 1e400 is a float infinity
            raise ValidationError(
                'expected {"fingerprint": [unsigned 32-bit integers] or "v1,v2,..."} '
                "(and numbers for min_similarity, min_aligned_s)"
            ) from None
        values_, t = convert.audio_query_from_pb(query)
        return self.matching.audio_query(
            values_, doc.get("include_retracted") is True, query.report_all, t
        )

    async def match_file(self, request: web.Request) -> dict[str, Any]:
        """An upload, matched as ``ccnode match FILE --json`` matches a file:
        its hashes, the verdict, every match with provenance and the
        recommended action, and its video and audio matches."""
        self.matching.serving()
        async with self.uploads.received(request) as upload:
            answer = await self.uploads.match(upload, request)
            return answer.json()

    async def entry(self, request: web.Request) -> dict[str, Any]:
        """One entry as a match answer (provenance, recommended action):
        the full id or a unique prefix of at least 8 hex digits."""
        from node.cli.node_cmds import match_json

        prefix = request.match_info["entry_id"]
        entry_id = self.app.resolve_id(prefix)
        hit = self.app.get(entry_id)
        return match_json(convert.match_to_pb(hit)) | {
            "video_segments": [s.hex() for s in self.app.video_segments(hit.entry)]
        }

    async def status(self, request: web.Request) -> dict[str, Any]:
        m = self.matching
        heads = self.app.heads()
        return {
            "node_id": self.app.node_id,
            "ready": m.ready(),
            "replica_of": m.config.replica_of or None,
            "replica_lag": m.replica_lag() if m.config.replica else None,
            "entries": sum(h.next_seq for h in heads.values()),
            "origins": len(heads),
            "indexes": await index_status(self.app, request),
        }


def _whole(value: Any) -> int:
    """A JSON whole number: not 1.5, "7" or true (int() would take them)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(value)
    return value


def _parse_batch(body: bytes, limit: int) -> tuple[list[tuple[str, bytes]], int, bool]:
    """POST /v1/match's body: (queries, max_distance, include_retracted)."""
    doc = parse_json(body)
    if not isinstance(doc, dict) or not isinstance(doc.get("queries"), list):
        raise ValidationError('expected a JSON object {"queries": [...]}')
    rows = doc["queries"]
    if not 1 <= len(rows) <= limit:
        raise ValidationError(f"batch of {len(rows)} queries: expected 1..{limit}")
    queries = []
    for i, q in enumerate(rows):
        if not isinstance(q, dict) or not all(
            isinstance(q.get(k), str) for k in ("algorithm", "hash")
        ):
            raise ValidationError(f'query {i + 1}: expected {{"algorithm": NAME, "hash": HEX}}')
        try:
            algo = hashes.normalize_name(q["algorithm"])
            queries.append((algo, hashes.parse_hex(algo, q["hash"])))
        except ValidationError as exc:
            raise ValidationError(f"query {i + 1} of {len(rows)}: {exc}") from None
    max_distance = doc.get("max_distance", 0)
    if isinstance(max_distance, bool) or not isinstance(max_distance, int) or max_distance < 0:
        raise ValidationError("max_distance: expected a whole number >= 0")
    return queries, max_distance, doc.get("include_retracted") is True


def _render_hashes(queries: Sequence[tuple[str, bytes]], response: pb.MatchResponse) -> str:
    """The native answer to hash queries: ``ccnode match --json``'s, per query."""
    from node.cli.node_cmds import QueryAnswer

    return json.dumps(
        {
            "results": [
                QueryAnswer(
                    None,
                    {algo: value},
                    list(r.matches),
                    r.never_match,
                    truncated=r.truncated,
                    total=r.total,
                ).json()
                for (algo, value), r in zip(queries, response.results, strict=True)
            ]
        }
    )
