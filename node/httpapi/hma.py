"""The HMA-compatible routes (docs/http.md): ``/m/raw_lookup``,
``/m/lookup`` (by hash, by upload, by ``url=``), ``/m/index/status`` and
``/h/hash``, answered in the shapes Meta's Hasher-Matcher-Actioner gives,
with the node's members as HMA's banks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from node.app import NodeApp
from node.core import hashes
from node.errors import ValidationError
from node.httpapi.hashing import UploadHashes
from node.httpapi.matching import MatchPath
from node.httpapi.request import bool_param, param
from node.httpapi.uploads import UploadAnswer, Uploads
from node.rpc._pb.consortium.v1 import node_pb2 as pb

#: HMA signal types answered by hash (raw_lookup, lookup): exact or Hamming.
HASH_SIGNALS = ("pdq", "md5", "sha256", "video_md5")
#: What an upload is matched as, per signal type (POST /m/lookup).
UPLOAD_SIGNALS = ("pdq", "md5", "sha256", "video_md5", "vpdq", "chromaprint")


def _signal_algorithm(signal_type: str, allowed: Sequence[str] = HASH_SIGNALS) -> str:
    if signal_type not in allowed:
        raise ValidationError(
            f"No such SignalType {signal_type!r}: expected one of {', '.join(allowed)}"
        )
    return hashes.normalize_name(signal_type)


def _banks(request: web.Request) -> set[str] | None:
    raw = request.query.get("banks")
    return {b.strip() for b in raw.split(",") if b.strip()} if raw else None


def _types(request: web.Request) -> set[str] | None:
    raw = request.query.get("types")
    if not raw:
        return None
    wanted = {t.strip() for t in raw.split(",") if t.strip()}
    for t in sorted(wanted):
        if t not in UPLOAD_SIGNALS:
            raise ValidationError(
                f"No such SignalType {t!r}: expected one of {', '.join(UPLOAD_SIGNALS)}"
            )
    return wanted


def _by_bank(
    matches: Sequence[tuple[str, str, str]], banks: set[str] | None
) -> dict[str, list[dict[str, str]]]:
    """HMA's lookup shape: bank (the origin member) -> its matches."""
    out: dict[str, list[dict[str, str]]] = {}
    for bank, content_id, distance in matches:
        if banks is None or bank in banks:
            out.setdefault(bank, []).append({"bank_content_id": content_id, "distance": distance})
    return out


async def index_status(app: NodeApp, request: web.Request) -> dict[str, Any]:
    """HMA's index status, per signal type: present, built_to, size. The
    indexes follow every commit, so a ready index is built to now."""
    now = int(time.time())
    exact = await asyncio.to_thread(lambda: app.store.stats().hashes)

    def status(ready: bool, size: int) -> dict[str, Any]:
        return {"present": ready, "built_to": now if ready else -1, "size": size}

    doc = {
        "pdq": status(app.matcher.ready, len(app.matcher)),
        "md5": status(True, exact),
        "sha256": status(True, exact),
        "video_md5": status(True, exact),
        "vpdq": status(app.frames.ready, app.frames.index.videos),
        "chromaprint": status(app.audio.ready, len(app.audio.index)),
    }
    only = request.query.get("signal_type")
    if only is not None:
        if only not in doc:
            raise ValidationError(f"No such SignalType {only!r}: expected one of {', '.join(doc)}")
        return {only: doc[only]}
    return doc


class HmaRoutes:
    """The /m and /h route handlers (``ROUTES`` in node/httpapi/server.py)."""

    def __init__(self, matching: MatchPath, uploads: Uploads) -> None:
        self.matching = matching
        self.uploads = uploads

    # -- matching ---------------------------------------------------------------

    async def _lookup_signal(self, request: web.Request) -> tuple[str, pb.QueryResult]:
        signal_type = param(request, "signal_type")
        algo = _signal_algorithm(signal_type)
        value = hashes.parse_hex(algo, param(request, "signal"))
        response = await self.matching.hashes([(algo, value)])
        return signal_type, response.results[0]

    async def raw_lookup(self, request: web.Request) -> dict[str, Any]:
        """HMA's raw lookup: the matching content ids (entry ids), with their
        distances if ``include_distance``."""
        with_distance = bool_param(request, "include_distance")
        _, result = await self._lookup_signal(request)
        banks = _banks(request)
        hits = [m for m in result.matches if banks is None or m.provenance.origin in banks]
        if with_distance:
            return {
                "matches": [
                    {"bank_content_id": m.provenance.entry_id.hex(), "distance": str(m.distance)}
                    for m in hits
                ]
            }
        return {"matches": [m.provenance.entry_id.hex() for m in hits]}

    async def lookup_get(self, request: web.Request) -> dict[str, Any]:
        if request.query.get("url"):
            self.matching.serving()
            async with self.uploads.received(request, url=True) as upload:
                answer = await self.uploads.match(upload, request)
            out = self._upload_lookup(answer, request)
            only = request.query.get("signal_type")
            if only:  # HMA: with a signal type, its bank matches without the outer key
                _signal_algorithm(only, UPLOAD_SIGNALS)
                return dict(out.get(only, {}))
            return out
        _, result = await self._lookup_signal(request)
        return _by_bank(
            [
                (m.provenance.origin, m.provenance.entry_id.hex(), str(m.distance))
                for m in result.matches
            ],
            _banks(request),
        )

    async def lookup_post(self, request: web.Request) -> dict[str, Any]:
        self.matching.serving()
        async with self.uploads.received(request) as upload:
            answer = await self.uploads.match(upload, request)
        return self._upload_lookup(answer, request)

    @staticmethod
    def _upload_lookup(answer: UploadAnswer, request: web.Request) -> dict[str, Any]:
        """Per signal type the upload was matched as: bank -> matches."""
        banks = _banks(request)
        wanted = _types(request)
        out: dict[str, Any] = {}
        by_algo: dict[str, list[tuple[str, str, str]]] = {}
        for m in answer.matches:
            algo = m.provenance.algorithm
            by_algo.setdefault(algo, []).append(
                (m.provenance.origin, m.provenance.entry_id.hex(), str(m.distance))
            )
        for algo in answer.queries:
            name = hashes.algorithm(algo).pytx_name
            if wanted is None or name in wanted:
                out[name] = _by_bank(by_algo.get(algo, []), banks)
        media: dict[str, list[tuple[str, str, str]]] = {
            # vpdq: the share of the upload's and of the banked video's frames
            # that matched; chromaprint: the similarity (1 - bit error rate)
            "vpdq": [
                (
                    v.match.provenance.origin,
                    v.match.provenance.entry_id.hex(),
                    f"{v.query_pct:.2f},{v.banked_pct:.2f}",
                )
                for v in answer.videos
                if v.is_match
            ],
            "chromaprint": [
                (
                    a.match.provenance.origin,
                    a.match.provenance.entry_id.hex(),
                    f"{a.similarity:.3f}",
                )
                for a in answer.audio
                if a.is_match
            ],
        }
        asked = {"vpdq": answer.hashed.kind == "video", "chromaprint": bool(answer.hashed.audio)}
        for name, found in media.items():
            if asked[name] and (wanted is None or name in wanted):
                out[name] = _by_bank(found, banks)
        return out

    async def index_status(self, request: web.Request) -> dict[str, Any]:
        return await index_status(self.matching.app, request)

    # -- hashing ----------------------------------------------------------------

    async def hash_get(self, request: web.Request) -> dict[str, Any]:
        async with self.uploads.received(request, url=True) as upload:
            return _signals(await self.uploads.hash(upload), request)

    async def hash_post(self, request: web.Request) -> dict[str, Any]:
        async with self.uploads.received(request) as upload:
            return _signals(await self.uploads.hash(upload), request)


def _signals(h: UploadHashes, request: web.Request) -> dict[str, Any]:
    """HMA's hash answer: signal type -> hash string. vpdq is not given
    as a string (a video's query frames stay on the node: POST /m/lookup
    matches them); chromaprint is fpcalc's raw form (comma-separated)."""
    wanted = _types(request)
    out: dict[str, Any] = {}
    if h.pdq is not None:
        out["pdq"] = h.pdq.hex()
    out["md5"] = h.md5.hex()
    out["sha256"] = h.sha256.hex()
    if h.kind == "video":
        out["video_md5"] = h.md5.hex()
    if h.audio:
        out["chromaprint"] = ",".join(str(v) for v in h.audio)
    return {k: v for k, v in out.items() if wanted is None or k in wanted}
