"""Receiving an upload and matching it: the file streamed to a temporary
file (capped in size, refused with 413 as soon as it passes the cap) or
fetched from an allowlisted ``url=``, hashed in a worker process
(``node/httpapi/hashing.py``; the loop only moves bytes), then matched on
the shared Match path (``node/httpapi/matching.py``) as ``ccnode match
FILE`` matches a file."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import tempfile
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, web

from node.app import MAX_AUDIO_QUERY_ITEMS
from node.config import NodeConfig
from node.errors import LimitError, ProvenanceError, ValidationError
from node.httpapi.hashing import FIELDS, UploadHashes, hash_upload, warm_up
from node.httpapi.matching import MatchPath
from node.httpapi.request import CHUNK, ApiError, bool_param, param
from node.rpc._pb.consortium.v1 import node_pb2 as pb
from node.workers import die_with_parent

log = logging.getLogger(__name__)

URL_TIMEOUT_S = 30.0
#: An upload's body must arrive within this: a client that stalls mid-body
#: would otherwise hold one of the ``http_max_uploads`` slots for ever.
RECEIVE_TIMEOUT_S = 120.0


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


class HashWorker:
    """The upload hashing worker: one ``spawn`` process, one upload at a
    time, each within ``timeout_s``."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._pool: ProcessPoolExecutor | None = None
        self._lock = asyncio.Lock()

    async def hash(self, upload: Upload) -> UploadHashes:
        """Hash the file in the worker process (media decoding never runs
        in the node's process), one upload at a time, within
        ``http_hash_timeout_s``: a file that takes longer (a long video
        packed small) is refused and its worker killed."""
        async with self._lock:
            pool = await self._worker_pool()
            loop = asyncio.get_running_loop()
            job = loop.run_in_executor(pool, hash_upload, upload.path, upload.field, upload.name)
            try:
                return await asyncio.wait_for(job, self.timeout_s or None)
            except TimeoutError:
                self._kill_worker(pool)
                log.warning("hashing %s took over %g s; its worker was killed", upload.name,
                            self.timeout_s)  # fmt: skip
                raise LimitError(
                    f"{upload.name}: hashing took over {self.timeout_s:g} s "
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

    def stop(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


class Uploads:
    """The uploads the HTTP API receives: at most ``http_max_uploads`` at
    once, each capped at ``http_max_upload_mib``, hashed by one
    :class:`HashWorker` and matched on the shared :class:`MatchPath`."""

    def __init__(self, config: NodeConfig, matching: MatchPath) -> None:
        self.config = config
        self.matching = matching
        self.max_upload = config.http_max_upload_mib << 20
        self.worker = HashWorker(config.http_hash_timeout_s)
        self.receive_timeout_s = RECEIVE_TIMEOUT_S
        self._uploads = 0

    def stop(self) -> None:
        self.worker.stop()

    def _too_large(self) -> ApiError:
        return ApiError(
            "PAYLOAD_TOO_LARGE",
            f"upload over {self.config.http_max_upload_mib} MiB (http_max_upload_mib): refused",
        )

    @contextlib.asynccontextmanager
    async def received(self, request: web.Request, *, url: bool = False) -> AsyncIterator[Upload]:
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
                await self._receive(request, upload)
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

    async def _receive(self, request: web.Request, upload: Upload) -> None:
        try:
            async with asyncio.timeout(self.receive_timeout_s):
                await self._stream_part(request, upload)
        except TimeoutError:
            raise LimitError(
                f"upload not received within {self.receive_timeout_s:g} s: refused"
            ) from None

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
        with upload.path.open("wb") as f:
            while True:
                try:
                    chunk = await part.read_chunk(CHUNK)
                except (ValueError, AssertionError):
                    raise ValidationError("malformed multipart/form-data body") from None
                if not chunk:
                    break
                upload.size += len(chunk)
                if upload.size > self.max_upload:
                    raise self._too_large()
                await asyncio.to_thread(f.write, chunk)
        if upload.size == 0:
            raise ValidationError(f"{upload.name}: the uploaded file is empty")
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

        raw = param(request, "url")
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

    async def hash(self, upload: Upload) -> UploadHashes:
        return await self.worker.hash(upload)

    async def match(self, upload: Upload, request: web.Request) -> UploadAnswer:
        """The upload hashed, then matched as ``ccnode match FILE``."""
        include_retracted = bool_param(request, "include_retracted")
        report_all = bool_param(request, "report_all")
        h = await self.hash(upload)
        return await self._match_hashes(upload, h, include_retracted, report_all)

    async def _match_hashes(
        self, upload: Upload, h: UploadHashes, include_retracted: bool, report_all: bool
    ) -> UploadAnswer:
        from node.cli.video_cmds import best_per_video, query_windows, window_frames

        matching = self.matching
        queries: dict[str, bytes] = {"MD5": h.md5, "SHA256": h.sha256}
        if h.kind == "video":
            queries["VIDEO_MD5"] = h.md5
        if h.pdq is not None:
            queries["PDQ"] = h.pdq
        response = await matching.hashes(list(queries.items()), include_retracted=include_retracted)
        loop = asyncio.get_running_loop()
        pool = matching.app.match_pool
        videos: list[pb.VideoMatch] = []
        for window in query_windows(h.frames, window_frames(0)):
            videos += await loop.run_in_executor(
                pool, matching.video_window, window, include_retracted, report_all
            )
        audio: list[pb.AudioMatch] = []
        if h.audio:
            audio = await loop.run_in_executor(
                pool,
                matching.audio_query,
                h.audio[:MAX_AUDIO_QUERY_ITEMS],
                include_retracted,
                report_all,
            )
        return UploadAnswer(upload, h, queries, response.results, best_per_video(videos), audio)


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
