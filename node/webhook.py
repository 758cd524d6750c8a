"""The signed incident webhook: POST each incident notification to the platform.

Optional (``[webhook]`` in config.toml; docs/operators.md, "Incident
webhook"). Every urgent entry of an incident that commits at this node (the
same notifications as the ``WatchIncidents`` stream, ``node/alerts.py``) is

1. rendered once as a JSON body (:func:`notification_body`) and written,
   atomically, as one file in ``DIR/webhook/`` (the queue: it survives a
   restart; bounded by ``queue_max``, beyond which new notifications are
   dropped with an error in the log);
2. POSTed, oldest first, one at a time, with headers
   ``X-Ccnode-Signature: sha256=<hex HMAC-SHA256 of the body with the
   shared secret>`` and ``Idempotency-Key: <entry id hex>``; the same body
   bytes on every attempt;
3. retried on anything but a 2xx answer (connection errors, timeouts, 5xx,
   4xx alike: the receiver decides) after a jittered exponential backoff
   (``backoff_s`` doubling up to ``max_backoff_s``, each wait drawn from
   [half, all] of it), and removed from the queue only after a 2xx.

Delivery is at least once: a notification can arrive twice (a crash after
the POST and before the file's removal), so receivers de-duplicate by the
idempotency key. A crash between the entry's commit and the file's write
loses that notification (the entry itself is stored: Pull has it).

The HTTP client is the standard library's (``urllib.request``, ignoring
proxy variables), run in a worker thread; all file I/O runs in one worker
thread, off the event loop.
:func:`verify_signature` is the receiver's side of the check.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import random
import re
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from node.app import MatchHit
from node.config import WebhookConfig
from node.errors import ValidationError
from node.rpc import convert

log = logging.getLogger(__name__)

QUEUE_DIR = "webhook"
SIGNATURE_HEADER = "X-Ccnode-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
#: Straight to the configured URL: no proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_NAME = re.compile(r"^(\d{16})-([0-9a-f]{64})\.json$")


def sign_body(secret: bytes, body: bytes) -> str:
    """The signature header's value for ``body``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify_signature(secret: bytes, body: bytes, header: str | None) -> dict[str, Any]:
    """The receiver's check: the body as JSON if ``header`` signs it, else
    ValidationError. Compare in constant time; check the raw bytes, before
    parsing."""
    if not header:
        raise ValidationError(f"webhook request has no {SIGNATURE_HEADER} header")
    if not hmac.compare_digest(header.encode(), sign_body(secret, body).encode()):
        raise ValidationError("webhook signature does not match the body (wrong secret?)")
    doc: dict[str, Any] = json.loads(body)
    return doc


def notification_body(hit: MatchHit, node_id: str) -> bytes:
    """The JSON a webhook POSTs: the WatchIncidents notification in proto3
    JSON (bytes fields base64, as proto3 JSON has them), plus the idempotency
    key and, for convenience, the entry id in hex."""
    doc = json_format.MessageToDict(
        convert.notification_to_pb(hit, node_id), preserving_proto_field_name=True
    )
    key = hit.entry.entry_id.hex()
    out = {"idempotency_key": key, "entry_id": key, "notification": doc}
    return json.dumps(out, sort_keys=True, separators=(",", ":")).encode()


def load_secret(path: Path) -> bytes:
    try:
        secret = path.read_bytes().strip()
    except OSError as exc:
        raise ValidationError(f"cannot read webhook secret {path}: {exc.strerror}") from None
    if len(secret) < 16:
        raise ValidationError(
            f"webhook secret {path}: expected at least 16 bytes, got {len(secret)}"
        )
    return secret


@dataclass(slots=True)
class FileQueue:
    """The webhook's queue: one file per notification, named
    ``<16-digit number>-<key>.json``, written to a temporary name, fsynced,
    then renamed (a crash leaves a whole file or none). Oldest first."""

    path: Path
    cap: int
    _keys: dict[str, Path] = field(default_factory=dict)
    _next: int = 0

    def open(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        for stray in self.path.glob("*.tmp"):
            stray.unlink(missing_ok=True)
        for f in sorted(self.path.iterdir()):
            m = _NAME.match(f.name)
            if m is None:
                continue
            self._keys[m.group(2)] = f
            self._next = max(self._next, int(m.group(1)) + 1)

    def __len__(self) -> int:
        return len(self._keys)

    def put(self, key: str, body: bytes) -> bool:
        """Queue ``body`` under ``key``; False if full (or already queued)."""
        if key in self._keys or len(self._keys) >= self.cap:
            return key in self._keys
        final = self.path / f"{self._next:016d}-{key}.json"
        self._next += 1
        tmp = final.with_name(final.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
        dir_fd = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        self._keys[key] = final
        return True

    def head(self) -> tuple[str, bytes] | None:
        if not self._keys:
            return None
        key, path = min(self._keys.items(), key=lambda kv: kv[1].name)
        return key, path.read_bytes()

    def done(self, key: str) -> None:
        path = self._keys.pop(key, None)
        if path is not None:
            path.unlink(missing_ok=True)


class Webhook:
    """Queues notifications (a sink of the IncidentFeed) and delivers them."""

    def __init__(self, config: WebhookConfig, directory: Path, node_id: str) -> None:
        self.config = config
        self.node_id = node_id
        self.secret = load_secret(directory / config.secret_file)
        self.queue = FileQueue(directory / QUEUE_DIR, config.queue_max)
        self.queue.open()
        self.delivered = 0
        self.failures = 0
        self.dropped = 0
        self._io = ThreadPoolExecutor(1, thread_name_prefix="webhook-io")
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Future[None]] = set()

    def notify(self, hit: MatchHit) -> None:
        """The feed's sink: on the event loop; the write goes to the I/O thread."""
        incidents = self.config.incidents
        if incidents and hit.entry.body.incident not in incidents:
            return
        body = notification_body(hit, self.node_id)
        key = hit.entry.entry_id.hex()
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._io, self._put, key, body)
        self._pending.add(future)
        future.add_done_callback(self._pending.discard)

    def _put(self, key: str, body: bytes) -> None:
        if self.queue.put(key, body):
            self._wake_threadsafe()
            return
        self.dropped += 1
        log.error(
            "webhook queue full (%d undelivered): notification of entry %s dropped",
            len(self.queue),
            key,
        )

    def _wake_threadsafe(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    _loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._run(), name="webhook")

    async def stop(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        self._io.shutdown(wait=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        attempt = 0
        while True:
            self._wake.clear()
            item = await loop.run_in_executor(self._io, self.queue.head)
            if item is None:
                await self._wake.wait()
                continue
            key, body = item
            error = await asyncio.to_thread(self._post, key, body)
            if error is None:
                await loop.run_in_executor(self._io, self.queue.done, key)
                self.delivered += 1
                attempt = 0
                continue
            self.failures += 1
            wait = min(self.config.max_backoff_s, self.config.backoff_s * 2**attempt)
            wait *= random.uniform(0.5, 1.0)  # noqa: S311 (jitter, not a secret)
            attempt = min(attempt + 1, 30)
            log.warning(
                "webhook delivery of entry %s failed (%s); retrying in %.1fs", key, error, wait
            )
            await asyncio.sleep(wait)

    def _post(self, key: str, body: bytes) -> str | None:
        """One attempt; None on a 2xx answer, else what went wrong."""
        # The URL's scheme is checked at load: http or https only.
        request = urllib.request.Request(  # noqa: S310
            self.config.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                SIGNATURE_HEADER: sign_body(self.secret, body),
                IDEMPOTENCY_HEADER: key,
                "User-Agent": "ccnode-webhook",
            },
        )
        try:
            with _OPENER.open(request, timeout=self.config.timeout_s) as response:
                status = int(response.status)
        except urllib.error.HTTPError as exc:
            return f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            return f"cannot reach {self.config.url}: {reason}"
        return None if 200 <= status < 300 else f"HTTP {status}"


__all__ = [
    "IDEMPOTENCY_HEADER",
    "SIGNATURE_HEADER",
    "FileQueue",
    "Webhook",
    "WebhookConfig",
    "notification_body",
    "sign_body",
    "verify_signature",
]
