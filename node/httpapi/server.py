"""The HTTP API (docs/http.md): HMA-compatible and native routes over the
node's own indexes, on its own port, on the node's event loop.

aiohttp serves on the same asyncio loop as grpc.aio (``web.AppRunner`` and
``TCPSite``). A handler does what the gRPC Match servicer does: it checks
the request, runs matching in the node's match threads through the same
``NodeApp`` calls within the same budget (``node.match.limits``), and
renders the answer. This module holds :class:`HttpApi` (start and stop,
TLS, the routing table :data:`ROUTES`, error wrapping, authorization); the
routes and what they share are beside it:

- ``hma.py``: the HMA-compatible /m and /h routes and their answer shapes;
- ``native.py``: the /v1 routes;
- ``matching.py``: the Match path every route shares (readiness, hash,
  video and audio Match, as the gRPC servicer runs them);
- ``uploads.py``: receiving an upload (streamed to a temporary file,
  capped in size, refused with 413 as soon as it passes the cap) or a
  ``url=`` fetch, the hashing worker, and matching the upload;
- ``hashing.py``: what the hashing worker process runs (the loop only
  moves bytes);
- ``request.py``: parameters, JSON bodies, and the JSON errors.

Who may call: an API key (``Authorization: Bearer <token>``, scopes
``match``, ``hash``, ``status``; ``node/httpapi/keys.py``), or, with
``http_mutual_tls``, a client certificate the roster pins, authorized as on
the gRPC port. With neither configured the port is open, and the node
refuses to start unless it listens on loopback.

Errors are JSON, ``{"error": {"code": ..., "message": ...}}``, the code a
gRPC status name; the status-code table is
:data:`node.httpapi.request.HTTP_STATUS`.

Answers are rendered by the CLI's JSON renderers (``node/cli``: ``match_json``,
``video_json``, ``audio_json``, ``QueryAnswer``) from the same protobuf
answers the gRPC Match gives, so an HTTP answer is ``ccnode match --json``'s;
like the CLI, this package is an edge that assembles, and nothing imports it
but ``node/server.py``.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from node.app import NodeApp
from node.config import NodeConfig
from node.core.roster import Action
from node.core.tlscert import der_to_pem, spki_sha256
from node.errors import NodeError, ValidationError
from node.httpapi import openapi
from node.httpapi.hma import HmaRoutes
from node.httpapi.keys import SCOPES, ApiKey, KeyRing, check_exposure
from node.httpapi.matching import MatchPath
from node.httpapi.native import NativeRoutes
from node.httpapi.request import HTTP_STATUS, MAX_JSON_BODY, ApiError, error_body
from node.httpapi.uploads import Uploads
from node.rosters import RosterKeeper
from node.rpc.service import status_for

log = logging.getLogger(__name__)

#: Scope -> the roster action a client certificate needs (as on the gRPC port).
SCOPE_ACTION = {"match": Action.READ, "hash": Action.READ, "status": Action.MEMBER}


@dataclass(frozen=True, slots=True)
class Caller:
    who: str  # "key 3f9a1c0e7b2d", "member gov.example/ct", "loopback (open)"
    scopes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    scope: str  # "" = no credentials needed
    handler: str  # "hma.NAME" (HmaRoutes), "native.NAME" (NativeRoutes) or an HttpApi method


ROUTES: tuple[Route, ...] = (
    Route("GET", "/m/raw_lookup", "match", "hma.raw_lookup"),
    Route("GET", "/m/lookup", "match", "hma.lookup_get"),
    Route("POST", "/m/lookup", "match", "hma.lookup_post"),
    Route("GET", "/m/index/status", "status", "hma.index_status"),
    Route("GET", "/h/hash", "hash", "hma.hash_get"),
    Route("POST", "/h/hash", "hash", "hma.hash_post"),
    Route("GET", "/v1/match", "match", "native.match_get"),
    Route("POST", "/v1/match", "match", "native.match_post"),
    Route("POST", "/v1/match/file", "match", "native.match_file"),
    Route("POST", "/v1/match/video", "match", "native.match_video"),
    Route("POST", "/v1/match/audio", "match", "native.match_audio"),
    Route("GET", "/v1/entries/{entry_id}", "match", "native.entry"),
    Route("GET", "/v1/status", "status", "native.status"),
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
        self.matching = MatchPath(app, config, ready, replica_lag)
        self.uploads = Uploads(config, self.matching)
        self.hma = HmaRoutes(self.matching, self.uploads)
        self.native = NativeRoutes(self.matching, self.uploads)
        self.address = ""
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
        self.uploads.stop()

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
        except web.RequestPayloadError as exc:  # e.g. a body that is not the gzip it claims
            why = str(exc).strip().splitlines()[-1].strip()
            return self._error("INVALID_ARGUMENT", f"request body could not be read: {why}")
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
        group, _, name = route.handler.rpartition(".")
        owner = {"hma": self.hma, "native": self.native, "": self}[group]
        method = getattr(owner, name)

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

    async def healthz(self, request: web.Request) -> web.Response:
        ok = self.ready()
        return web.json_response({"serving": ok}, status=200 if ok else 503)

    async def openapi_doc(self, request: web.Request) -> dict[str, Any]:
        return openapi.document()
