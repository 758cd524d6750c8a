"""The HTTP API (docs/http.md): HMA-compatible and native routes over the
node's own indexes, on its own port, on the node's event loop.

aiohttp serves on the same asyncio loop as grpc.aio (``web.AppRunner`` and
``TCPSite``). A handler does what the gRPC Match servicer does: it checks
the request, runs matching in the node's match threads through the same
``NodeApp`` calls within the same budget (``node.match.limits``), and
renders the answer. An upload streams to a temporary file (capped in size,
refused with 413 as soon as it passes the cap) and is hashed in a worker
process (``node/httpapi/uploads.py``); the loop only moves bytes.

Who may call: an API key (``Authorization: Bearer <token>``, scopes
``match``, ``hash``, ``status``; ``node/httpapi/keys.py``), or, with
``http_mutual_tls``, a client certificate the roster pins, authorized as on
the gRPC port. With neither configured the port is open, and the node
refuses to start unless it listens on loopback.

Errors are JSON, ``{"error": {"code": ..., "message": ...}}``, the code a
gRPC status name; the status-code table is :data:`HTTP_STATUS`.

Answers are rendered by the CLI's JSON renderers (``node/cli``: ``match_json``,
``video_json``, ``audio_json``, ``QueryAnswer``) from the same protobuf
answers the gRPC Match gives, so an HTTP answer is ``ccnode match --json``'s;
like the CLI, this module is an edge that assembles, and nothing imports it
but ``node/server.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import multiprocessing
import os
import ssl
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, web

from node.app import MAX_AUDIO_QUERY_ITEMS, NodeApp
from node.config import NodeConfig
from node.core import hashes
from node.core.roster import Action
from node.core.tlscert import der_to_pem, spki_sha256
from node.errors import LimitError, NodeError, ProvenanceError, UnavailableError, ValidationError
from node.httpapi import openapi
from node.httpapi.keys import SCOPES, ApiKey, KeyRing, check_exposure
from node.httpapi.uploads import FIELDS, UploadHashes, hash_upload, warm_up
from node.match.audio_index import AudioThresholds
from node.match.video import QueryFrame, VideoThresholds
from node.rosters import RosterKeeper
from node.rpc import convert
from node.rpc._pb.consortium.v1 import node_pb2 as pb
from node.rpc.service import status_for
from node.workers import die_with_parent

log = logging.getLogger(__name__)

#: gRPC status (the node's error table, node/rpc/service.py) -> HTTP status.
HTTP_STATUS: dict[str, int] = {
    "INVALID_ARGUMENT": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "METHOD_NOT_ALLOWED": 405,
    "ALREADY_EXISTS": 409,
    "FAILED_PRECONDITION": 409,
    "PAYLOAD_TOO_LARGE": 413,
    "RESOURCE_EXHAUSTED": 429,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
}
#: HMA signal types answered by hash (raw_lookup, lookup): exact or Hamming.
HASH_SIGNALS = ("pdq", "md5", "sha256", "video_md5")
#: What an upload is matched as, per signal type (POST /m/lookup).
UPLOAD_SIGNALS = ("pdq", "md5", "sha256", "video_md5", "vpdq", "chromaprint")
CHUNK = 64 * 1024
#: A JSON body (POST /v1/match): 10,000 queries (the default budget) fit.
MAX_JSON_BODY = 4 << 20
URL_TIMEOUT_S = 30.0
#: Scope -> the roster action a client certificate needs (as on the gRPC port).
SCOPE_ACTION = {"match": Action.READ, "hash": Action.READ, "status": Action.MEMBER}


class ApiError(Exception):
    """An HTTP-level refusal: the JSON error's code, its status and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.status = HTTP_STATUS[code]


def error_body(code: str, message: str) -> dict[str, Any]:
    # "message" also at the top: what HMA's own error responses carry.
    return {"error": {"code": code, "message": message}, "message": message}


def _bool_param(request: web.Request, name: str) -> bool:
    raw = request.query.get(name, "false").strip().lower()
    if raw in ("true", "1", "yes"):
        return True
    if raw in ("false", "0", "no", ""):
        return False
    raise ValidationError(f"parameter {name}={raw[:20]!r}: expected true or false")


def _param(request: web.Request, name: str) -> str:
    value = request.query.get(name)
    if value is None or not value.strip():
        raise ValidationError(f"parameter {name!r} is required")
    return value.strip()


def _signal_algorithm(signal_type: str, allowed: Sequence[str] = HASH_SIGNALS) -> str:
    if signal_type not in allowed:
        raise ValidationError(
            f"No such SignalType {signal_type!r}: expected one of {', '.join(allowed)}"
        )
    return hashes.normalize_name(signal_type)


@dataclass(frozen=True, slots=True)
class Caller:
    who: str  # "key 3f9a1c0e7b2d", "member gov.example/ct", "loopback (open)"
    scopes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    scope: str  # "" = no credentials needed
    handler: str  # the HttpApi method name


ROUTES: tuple[Route, ...] = (
    Route("GET", "/m/raw_lookup", "match", "raw_lookup"),
    Route("GET", "/m/lookup", "match", "lookup_get"),
    Route("POST", "/m/lookup", "match", "lookup_post"),
    Route("GET", "/m/index/status", "status", "index_status"),
    Route("GET", "/h/hash", "hash", "hash_get"),
    Route("POST", "/h/hash", "hash", "hash_post"),
    Route("GET", "/v1/match", "match", "match_get"),
    Route("POST", "/v1/match", "match", "match_post"),
    Route("POST", "/v1/match/file", "match", "match_file"),
    Route("POST", "/v1/match/video", "match", "match_video"),
    Route("POST", "/v1/match/audio", "match", "match_audio"),
    Route("GET", "/v1/entries/{entry_id}", "match", "entry"),
    Route("GET", "/v1/status", "status", "status"),
    Route("GET", "/healthz", "", "healthz"),
    Route("GET", "/openapi.json", "", "openapi_doc"),
)


class HttpApi:
    """The HTTP API of a running node: ``await api.start()`` ... ``await api.stop()``."""

    def __init__(
        self,
        app: NodeApp,
        config: NodeConfig,
        *,
        rosters: RosterKeeper | None,
        ready: Callable[[], bool],
        replica_lag: Callable[[], int | None],
        observe: Callable[[str, int], None] = lambda route, status: None,
    ) -> None:
        self.app = app
        self.observe = observe  # (route template, HTTP status) per answer: metrics
        self.config = config
        self.rosters = rosters
        self.ready = ready
        self.replica_lag = replica_lag
        self.keys = KeyRing(config.dir)
        self.max_upload = config.http_max_upload_mib << 20
        self.address = ""
        self._uploads = 0
        self._pool: ProcessPoolExecutor | None = None
        self._hash_lock = asyncio.Lock()
        self._runner: web.AppRunner | None = None
        self._ssl: ssl.SSLContext | None = None
        self._trusted_version = -1
        self.open = check_exposure(config)
        if config.http_mutual_tls and rosters is None:
            raise ValidationError(
                "http_mutual_tls needs the node's roster to pin client certificates"
            )

    # -- lifecycle -------------------------------------------------------------

    def web_app(self) -> web.Application:
        application = web.Application(middlewares=[self._errors], client_max_size=MAX_JSON_BODY)
        for r in ROUTES:
            application.router.add_route(r.method, r.path, self._wrap(r))
        return application

    async def start(self) -> str:
        host, _, port = self.config.http_listen.rpartition(":")
        if self.config.http_mutual_tls:
            self._ssl = self._ssl_context()
        runner = web.AppRunner(self.web_app(), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, host.strip("[]"), int(port), ssl_context=self._ssl)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise ValidationError(
                f"cannot listen on {self.config.http_listen} (http_listen): {exc.strerror}"
            ) from None
        self._runner = runner
        server = site._server  # the bound socket: port 0 picks one
        sockets = getattr(server, "sockets", None) or []
        bound = sockets[0].getsockname()[1] if sockets else int(port)
        self.address = f"{host}:{bound}"
        log.info(
            "HTTP API on %s://%s (%s)",
            "https" if self._ssl else "http",
            self.address,
            "mutual TLS"
            if self._ssl
            else "open: loopback, no API keys"
            if self.open
            else "API keys",
        )
        return self.address

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(
            self.config.dir / self.config.tls_cert_file, self.config.dir / self.config.tls_key_file
        )
        ctx.verify_mode = ssl.CERT_REQUIRED
        self._ssl = ctx
        self.refresh_trust()
        return ctx

    def refresh_trust(self) -> None:
        """Trust the client certificates the current roster pins (a roster
        change adds its new ones; a revoked member's certificate still
        completes the handshake and every request is then refused)."""
        if self._ssl is None or self.rosters is None:
            return
        version, certs = self.rosters.trusted_certs()
        if version == self._trusted_version:
            return
        pems = b"".join(der_to_pem(c) for c in certs).decode()
        if pems:
            self._ssl.load_verify_locations(cadata=pems)
        self._trusted_version = version

    # -- plumbing --------------------------------------------------------------

    @web.middleware
    async def _errors(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """Every refusal as JSON with a stable code; never a traceback. Each
        answer is counted by route and status."""
        response = await self._answer(request, handler)
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unrouted"
        self.observe(route, response.status)
        return response

    async def _answer(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as exc:
            return self._error(exc.code, str(exc))
        except NodeError as exc:
            code = status_for(exc).name
            if code not in HTTP_STATUS:
                code = "INTERNAL"
            return self._error(code, str(exc))
        except web.HTTPException as exc:
            code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 413: "PAYLOAD_TOO_LARGE"}.get(
                exc.status, "INVALID_ARGUMENT"
            )
            what = f"{request.method} {request.path}"
            message = {
                "NOT_FOUND": f"no such route: {what} (GET /openapi.json lists them)",
                "METHOD_NOT_ALLOWED": f"method not allowed: {what}",
                "PAYLOAD_TOO_LARGE": f"request body over {MAX_JSON_BODY >> 20} MiB",
            }.get(code, exc.reason)
            return self._error(code, message, status=exc.status)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("internal error in %s %s", request.method, request.path)
            return self._error("INTERNAL", "internal error; see the node's log")

    @staticmethod
    def _error(code: str, message: str, status: int | None = None) -> web.Response:
        return web.json_response(error_body(code, message), status=status or HTTP_STATUS[code])

    def _wrap(self, route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        method = getattr(self, route.handler)

        async def handle(request: web.Request) -> web.StreamResponse:
            if route.scope:
                self._authorize(request, route.scope)
            result = await method(request)
            if isinstance(result, web.StreamResponse):
                return result
            return web.json_response(result)

        return handle

    def _authorize(self, request: web.Request, scope: str) -> Caller:
        what = f"{request.method} {request.path}"
        if self._ssl is not None:
            return self._authorize_cert(request, scope, what)
        header = request.headers.get("Authorization", "")
        if not header:
            if self.open and not self.keys.keys:
                self.keys.refresh()
                if not self.keys.keys:
                    return Caller("loopback (open)", SCOPES)
            raise ApiError(
                "UNAUTHENTICATED",
                f"{what} needs an API key: send 'Authorization: Bearer <token>' "
                "(`ccnode http-key add`)",
            )
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError("UNAUTHENTICATED", "Authorization header: expected 'Bearer <token>'")
        key: ApiKey | None = self.keys.find(token.strip())
        if key is None:
            raise ApiError("UNAUTHENTICATED", "unknown or revoked API key")
        if scope not in key.scopes:
            raise ApiError(
                "PERMISSION_DENIED",
                f"API key {key.id} lacks scope {scope!r} for {what} "
                f"(it has: {', '.join(key.scopes)})",
            )
        return Caller(f"key {key.id}", key.scopes)

    def _authorize_cert(self, request: web.Request, scope: str, what: str) -> Caller:
        assert self.rosters is not None
        self.refresh_trust()
        tls = request.transport.get_extra_info("ssl_object") if request.transport else None
        der = tls.getpeercert(binary_form=True) if tls is not None else None
        if not der:
            raise ApiError("UNAUTHENTICATED", f"{what} needs a client certificate")
        caller = self.rosters.authorize(spki_sha256(der), SCOPE_ACTION[scope], what)
        return Caller(f"member {caller.member_id}", (scope,))

    def _serving(self) -> None:
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

    # -- hash matching ---------------------------------------------------------

    async def _match(
        self,
        queries: Sequence[tuple[str, bytes]],
        *,
        max_distance: int = 0,
        include_retracted: bool = False,
    ) -> pb.MatchResponse:
        """The gRPC Match's path: NodeApp.match_async within the Match
        budget, rendered by the same conversion (and its answer-size cap)."""
        self._serving()
        results = await self.app.match_async(
            queries, include_retracted=include_retracted, max_distance=max_distance
        )
        step = self.app.match_step(queries)
        response: pb.MatchResponse = await step(
            convert.match_response, results, self.app.match_limits.response_bytes
        )
        return response

    @staticmethod
    def _banks(request: web.Request) -> set[str] | None:
        raw = request.query.get("banks")
        return {b.strip() for b in raw.split(",") if b.strip()} if raw else None

    async def _lookup_signal(self, request: web.Request) -> tuple[str, pb.QueryResult]:
        signal_type = _param(request, "signal_type")
        algo = _signal_algorithm(signal_type)
        value = hashes.parse_hex(algo, _param(request, "signal"))
        response = await self._match([(algo, value)])
        return signal_type, response.results[0]

    async def raw_lookup(self, request: web.Request) -> dict[str, Any]:
        """HMA's raw lookup: the matching content ids (entry ids), with their
        distances if ``include_distance``."""
        with_distance = _bool_param(request, "include_distance")
        _, result = await self._lookup_signal(request)
        banks = self._banks(request)
        hits = [m for m in result.matches if banks is None or m.provenance.origin in banks]
        if with_distance:
            return {
                "matches": [
                    {"bank_content_id": m.provenance.entry_id.hex(), "distance": str(m.distance)}
                    for m in hits
                ]
            }
        return {"matches": [m.provenance.entry_id.hex() for m in hits]}

    @staticmethod
    def _by_bank(
        matches: Sequence[tuple[str, str, str]], banks: set[str] | None
    ) -> dict[str, list[dict[str, str]]]:
        """HMA's lookup shape: bank (the origin member) -> its matches."""
        out: dict[str, list[dict[str, str]]] = {}
        for bank, content_id, distance in matches:
            if banks is None or bank in banks:
                out.setdefault(bank, []).append(
                    {"bank_content_id": content_id, "distance": distance}
                )
        return out

    async def lookup_get(self, request: web.Request) -> dict[str, Any]:
        if request.query.get("url"):
            self._serving()
            async with self._uploaded(request, url=True) as upload:
                answer = await self._match_upload(upload, request)
            return self._upload_lookup(answer, request)
        _, result = await self._lookup_signal(request)
        return self._by_bank(
            [
                (m.provenance.origin, m.provenance.entry_id.hex(), str(m.distance))
                for m in result.matches
            ],
            self._banks(request),
        )

    async def lookup_post(self, request: web.Request) -> dict[str, Any]:
        self._serving()
        async with self._uploaded(request) as upload:
            answer = await self._match_upload(upload, request)
        return self._upload_lookup(answer, request)

    def _upload_lookup(self, answer: UploadAnswer, request: web.Request) -> dict[str, Any]:
        """Per signal type the upload was matched as: bank -> matches."""
        banks = self._banks(request)
        wanted = self._types(request)
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
                out[name] = self._by_bank(by_algo.get(algo, []), banks)
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
                out[name] = self._by_bank(found, banks)
        return out

    @staticmethod
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

    async def index_status(self, request: web.Request) -> dict[str, Any]:
        """HMA's index status, per signal type: present, built_to, size. The
        indexes follow every commit, so a ready index is built to now."""
        app = self.app
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
                raise ValidationError(
                    f"No such SignalType {only!r}: expected one of {', '.join(doc)}"
                )
            return {only: doc[only]}
        return doc

    # -- hashing ---------------------------------------------------------------

    async def hash_get(self, request: web.Request) -> dict[str, Any]:
        async with self._uploaded(request, url=True) as upload:
            return self._signals(await self._hash(upload), request)

    async def hash_post(self, request: web.Request) -> dict[str, Any]:
        async with self._uploaded(request) as upload:
            return self._signals(await self._hash(upload), request)

    def _signals(self, h: UploadHashes, request: web.Request) -> dict[str, Any]:
        """HMA's hash answer: signal type -> hash string. vpdq is not given
        as a string (a video's query frames stay on the node: POST /m/lookup
        matches them); chromaprint is fpcalc's raw form (comma-separated)."""
        wanted = self._types(request)
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

    async def _hash(self, upload: Upload) -> UploadHashes:
        """Hash the file in the worker process (media decoding never runs
        in the node's process), one upload at a time, within
        ``http_hash_timeout_s``: a file that takes longer (a long video
        packed small) is refused and its worker killed."""
        async with self._hash_lock:
            pool = await self._worker_pool()
            loop = asyncio.get_running_loop()
            job = loop.run_in_executor(pool, hash_upload, upload.path, upload.field, upload.name)
            try:
                return await asyncio.wait_for(job, self.config.http_hash_timeout_s or None)
            except TimeoutError:
                self._kill_worker(pool)
                log.warning("hashing %s took over %g s; its worker was killed", upload.name,
                            self.config.http_hash_timeout_s)  # fmt: skip
                raise LimitError(
                    f"{upload.name}: hashing took over {self.config.http_hash_timeout_s:g} s "
                    "(http_hash_timeout_s): refused"
                ) from None
            except BrokenProcessPool:
                self._kill_worker(pool)
                log.warning("the upload hashing worker died hashing %s; replaced", upload.name)
                raise ValidationError(
                    f"{upload.name}: could not be hashed (the decoder failed on it)"
                ) from None

    async def _worker_pool(self) -> ProcessPoolExecutor:
        """The hashing worker, started (and its media modules imported) on
        first use, outside any upload's time limit."""
        if self._pool is None:
            pool = ProcessPoolExecutor(
                1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=die_with_parent,
                initargs=(os.getpid(),),
            )
            await asyncio.get_running_loop().run_in_executor(pool, warm_up)
            self._pool = pool
        return self._pool

    def _kill_worker(self, pool: ProcessPoolExecutor) -> None:
        """End the worker now (a stuck decoder does not return), so the next
        upload gets a fresh one."""
        for process in list(getattr(pool, "_processes", {}).values()):
            process.kill()
        pool.shutdown(wait=False, cancel_futures=True)
        if self._pool is pool:
            self._pool = None

    # -- uploads ---------------------------------------------------------------

    def _too_large(self) -> ApiError:
        return ApiError(
            "PAYLOAD_TOO_LARGE",
            f"upload over {self.config.http_max_upload_mib} MiB (http_max_upload_mib): refused",
        )

    @contextlib.asynccontextmanager
    async def _uploaded(self, request: web.Request, *, url: bool = False) -> AsyncIterator[Upload]:
        """The request's file (its one multipart part, or ``url=`` fetched)
        in a temporary file, holding one of ``http_max_uploads`` slots until
        the block ends; removed after."""
        if not url:
            self._check_body(request)
        if self._uploads >= self.config.http_max_uploads:
            raise LimitError(
                f"uploads being received or hashed: {self._uploads} "
                f"(http_max_uploads {self.config.http_max_uploads}): retry shortly"
            )
        self._uploads += 1
        upload = Upload.new()
        try:
            if url:
                await self._fetch_url(request, upload)
            else:
                await self._stream_part(request, upload)
            yield upload
        finally:
            self._uploads -= 1
            upload.cleanup()

    def _check_body(self, request: web.Request) -> None:
        """Refused before a byte is read: a declared size over the cap, or
        not a multipart/form-data body."""
        if request.content_length is not None and request.content_length > self.max_upload + CHUNK:
            raise self._too_large()
        if request.content_type != "multipart/form-data":
            raise ValidationError(
                "expected a multipart/form-data upload with one file in a field named "
                f"{', '.join(FIELDS)}; got {request.content_type or 'no content type'}"
            )

    async def _stream_part(self, request: web.Request, upload: Upload) -> None:
        try:
            reader = await request.multipart()
            part = await reader.next()
        except (ValueError, AssertionError, KeyError):
            raise ValidationError("malformed multipart/form-data body") from None
        if part is None or not isinstance(part, BodyPartReader):
            raise ValidationError("the multipart/form-data body holds no file part")
        if part.name not in FIELDS:
            raise ValidationError(
                f"upload field {part.name!r}: expected one of {', '.join(FIELDS)} "
                "(HMA's convention: the field names the content type)"
            )
        upload.field = part.name
        upload.name = os.path.basename(part.filename or "") or "upload"
        size = 0
        with upload.path.open("wb") as f:
            while True:
                try:
                    chunk = await part.read_chunk(CHUNK)
                except (ValueError, AssertionError):
                    raise ValidationError("malformed multipart/form-data body") from None
                if not chunk:
                    break
                size += len(chunk)
                if size > self.max_upload:
                    raise self._too_large()
                await asyncio.to_thread(f.write, chunk)
        if size == 0:
            raise ValidationError(f"{upload.name}: the uploaded file is empty")
        upload.size = size
        try:
            extra = await reader.next()
        except (ValueError, AssertionError):
            raise ValidationError("malformed multipart/form-data body") from None
        if extra is not None:
            raise ValidationError("one file per request: the body holds more than one part")

    async def _fetch_url(self, request: web.Request, upload: Upload) -> None:
        """``url=``: refused unless under a prefix of the operator's
        allowlist; no redirects followed; capped like an upload."""
        import aiohttp
        from yarl import URL

        raw = _param(request, "url")
        allow = self.config.http_url_allowlist
        if not allow:
            raise ProvenanceError(
                "url= fetching is off on this node (http_url_allowlist is empty): "
                "upload the file instead (POST)"
            )
        try:
            url = URL(raw)  # dot segments resolved: /media/../x is /x
        except ValueError:
            raise ValidationError(f"url {raw[:80]!r} is not a URL") from None
        if (
            url.user is not None
            or url.password is not None
            or not url.is_absolute()
            or not any(raw.startswith(p) and str(url).startswith(p) for p in allow)
        ):
            raise ProvenanceError(
                f"url {raw[:80]!r} is not under a prefix of this node's http_url_allowlist"
            )
        kind = request.query.get("content_type", "file")
        if kind not in FIELDS:
            raise ValidationError(f"content_type {kind!r}: expected photo, video or audio")
        upload.field, upload.name = kind, url.name or "download"
        timeout = aiohttp.ClientTimeout(total=URL_TIMEOUT_S)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.get(url, allow_redirects=False) as response,
            ):
                if response.status != 200:
                    raise ValidationError(
                        f"url answered HTTP {response.status}: expected 200 "
                        "(redirects are not followed)"
                    )
                if (response.content_length or 0) > self.max_upload:
                    raise self._too_large()
                with upload.path.open("wb") as f:
                    async for chunk in response.content.iter_chunked(CHUNK):
                        upload.size += len(chunk)
                        if upload.size > self.max_upload:
                            raise self._too_large()
                        await asyncio.to_thread(f.write, chunk)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ValidationError(f"url could not be fetched: {type(exc).__name__}") from None
        if upload.size == 0:
            raise ValidationError(f"{upload.name}: the fetched file is empty")

    # -- matching uploads ------------------------------------------------------

    async def _match_upload(self, upload: Upload, request: web.Request) -> UploadAnswer:
        include_retracted = _bool_param(request, "include_retracted")
        report_all = _bool_param(request, "report_all")
        h = await self._hash(upload)
        return await self._match_hashes(upload, h, include_retracted, report_all)

    async def _match_hashes(
        self, upload: Upload, h: UploadHashes, include_retracted: bool, report_all: bool
    ) -> UploadAnswer:
        from node.cli.video_cmds import best_per_video, query_windows, window_frames

        queries: dict[str, bytes] = {"MD5": h.md5, "SHA256": h.sha256}
        if h.kind == "video":
            queries["VIDEO_MD5"] = h.md5
        if h.pdq is not None:
            queries["PDQ"] = h.pdq
        response = await self._match(list(queries.items()), include_retracted=include_retracted)
        loop = asyncio.get_running_loop()
        videos: list[pb.VideoMatch] = []
        for window in query_windows(h.frames, window_frames(0)):
            videos += await loop.run_in_executor(
                self.app.match_pool, self._video_window, window, include_retracted, report_all
            )
        audio: list[pb.AudioMatch] = []
        if h.audio:
            audio = await loop.run_in_executor(
                self.app.match_pool,
                self._audio_query,
                h.audio[:MAX_AUDIO_QUERY_ITEMS],
                include_retracted,
                report_all,
            )
        return UploadAnswer(upload, h, queries, response.results, best_per_video(videos), audio)

    def _video_window(
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

    def _audio_query(
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

    # -- native routes ---------------------------------------------------------

    async def match_get(self, request: web.Request) -> web.Response:
        """One hash: ``algorithm`` and ``hash`` (hex) as parameters."""
        algo = hashes.normalize_name(_param(request, "algorithm"))
        value = hashes.parse_hex(algo, _param(request, "hash"))
        return await self._native_hashes(
            [(algo, value)],
            max_distance=self._int_param(request, "max_distance"),
            include_retracted=_bool_param(request, "include_retracted"),
        )

    @staticmethod
    def _int_param(request: web.Request, name: str) -> int:
        raw = request.query.get(name, "0").strip() or "0"
        if not raw.isdigit() or len(raw) > 6:
            raise ValidationError(f"parameter {name}={raw[:20]!r}: expected a whole number")
        return int(raw)

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
        return await self._native_hashes(
            queries, max_distance=max_distance, include_retracted=include_retracted
        )

    async def _native_hashes(
        self, queries: list[tuple[str, bytes]], *, max_distance: int, include_retracted: bool
    ) -> web.Response:
        response = await self._match(
            queries, max_distance=max_distance, include_retracted=include_retracted
        )
        # Rendering 10,000 answers is work too: in a match thread, as the
        # gRPC Match converts its answer (a small request's right here).
        text: str = await self.app.match_step(queries)(_render_hashes, queries, response)
        return web.Response(text=text, content_type="application/json")

    async def _json_body(self, request: web.Request) -> dict[str, Any]:
        body = await request.read()
        try:  # a large body is parsed off the loop
            doc = (
                json.loads(body) if len(body) < CHUNK else await asyncio.to_thread(json.loads, body)
            )
        except ValueError:
            raise ValidationError("request body is not valid JSON") from None
        if not isinstance(doc, dict):
            raise ValidationError("request body: expected a JSON object")
        return doc

    async def match_video(self, request: web.Request) -> dict[str, Any]:
        """Video frames hashed by the caller (as ``ccnode match VIDEO`` sends
        them over gRPC: the content never leaves the platform): ``{"frames":
        [{"pdq": HEX, "quality": Q, "ts_ms": T, "variant": V}, ...],
        "thresholds": {...}, "report_all": B, "include_retracted": B}``; within
        the Match budget (each frame costs a PDQ query)."""
        from node.cli.video_cmds import video_json

        self._serving()
        doc = await self._json_body(request)
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
                query.quality.append(int(f.get("quality", 100)))
                query.ts_ms.append(int(f["ts_ms"]))
                query.variant.append(int(f.get("variant", 0)))
            except (KeyError, TypeError, ValueError, AttributeError):
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
        return self._video_window(frames, doc.get("include_retracted") is True, query.report_all, t)

    async def match_audio(self, request: web.Request) -> dict[str, Any]:
        """An audio fingerprint computed by the caller (``ccnode hash``,
        ``fpcalc -raw``, or ``/h/hash``'s chromaprint): ``{"fingerprint":
        [u32, ...] or "u32,u32,...", "min_similarity": F, "min_aligned_s": S,
        "report_all": B, "include_retracted": B}``."""
        from node.cli.media_cmds import audio_json

        self._serving()
        doc = await self._json_body(request)
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
            values = [int(v) for v in items]
            if any(not 0 <= v < 1 << 32 for v in values):
                raise ValueError
            query = pb.AudioQuery(values=values, report_all=doc.get("report_all") is True)
            for name in ("min_similarity", "min_aligned_s"):
                if name in doc:
                    setattr(query, name, float(doc[name]))
        except (TypeError, ValueError):
            raise ValidationError(
                'expected {"fingerprint": [unsigned 32-bit integers] or "v1,v2,..."} '
                "(and numbers for min_similarity, min_aligned_s)"
            ) from None
        values_, t = convert.audio_query_from_pb(query)
        return self._audio_query(values_, doc.get("include_retracted") is True, query.report_all, t)

    async def match_file(self, request: web.Request) -> dict[str, Any]:
        """An upload, matched as ``ccnode match FILE --json`` matches a file:
        its hashes, the verdict, every match with provenance and the
        recommended action, and its video and audio matches."""
        self._serving()
        async with self._uploaded(request) as upload:
            answer = await self._match_upload(upload, request)
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
        heads = self.app.heads()
        return {
            "node_id": self.app.node_id,
            "ready": self.ready(),
            "replica_of": self.config.replica_of or None,
            "replica_lag": self.replica_lag() if self.config.replica else None,
            "entries": sum(h.next_seq for h in heads.values()),
            "origins": len(heads),
            "indexes": await self.index_status(request),
        }

    async def healthz(self, request: web.Request) -> web.Response:
        ok = self.ready()
        return web.json_response({"serving": ok}, status=200 if ok else 503)

    async def openapi_doc(self, request: web.Request) -> dict[str, Any]:
        return openapi.document()


def _parse_batch(body: bytes, limit: int) -> tuple[list[tuple[str, bytes]], int, bool]:
    """POST /v1/match's body: (queries, max_distance, include_retracted)."""
    try:
        doc = json.loads(body)
    except ValueError:
        raise ValidationError("request body is not valid JSON") from None
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


class Upload:
    """An upload (or a fetched URL) on its way to the hashing worker."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.field = "file"
        self.name = "upload"
        self.size = 0

    @classmethod
    def new(cls) -> Upload:
        fd, name = tempfile.mkstemp(prefix="ccnode-upload-")
        os.close(fd)
        return cls(Path(name))

    def cleanup(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


@dataclass(frozen=True, slots=True)
class UploadAnswer:
    upload: Upload
    hashed: UploadHashes
    queries: dict[str, bytes]  # algorithm -> value asked
    results: Sequence[pb.QueryResult]
    videos: list[pb.VideoMatch]
    audio: list[pb.AudioMatch]

    @property
    def matches(self) -> list[pb.Match]:
        """One per entry, nearest first (as ``ccnode match FILE``)."""
        best: dict[bytes, pb.Match] = {}
        for r in self.results:
            for m in r.matches:
                seen = best.get(m.provenance.entry_id)
                if seen is None or m.distance < seen.distance:
                    best[m.provenance.entry_id] = m
        return sorted(best.values(), key=lambda m: m.distance)

    def json(self) -> dict[str, Any]:
        from node.cli.media_cmds import audio_json, fired
        from node.cli.node_cmds import QueryAnswer
        from node.cli.video_cmds import video_json

        never = any(r.never_match for r in self.results)
        doc = QueryAnswer(
            self.upload.name,
            self.queries,
            [] if never else self.matches,
            never,
            truncated=any(r.truncated for r in self.results),
        ).json()
        h = self.hashed
        doc["upload"] = {
            "name": self.upload.name,
            "kind": h.kind,
            "bytes": self.upload.size,
            "pdq_quality": h.pdq_quality,
            "frames_hashed": h.frames_hashed,
            "duration_ms": h.duration_ms,
            "chromaprint_items": len(h.audio),
            "chromaprint_note": h.audio_note or None,
        }
        if h.kind == "video":
            doc["videos"] = [video_json(v) for v in self.videos]
        if h.audio:
            doc["audio"] = [audio_json(a) for a in self.audio]
        if h.kind == "video" or h.audio:
            doc["fired"] = fired(self.videos, self.audio)
        return doc
