"""API keys for the HTTP API: stored as hashes, each with scopes.

File ``DIR/http_keys.json`` (0600, written atomically by ``ccnode http-key``;
the node re-reads it when it changes, so an added or revoked key takes
effect on the next request without a restart)::

    {"version": 1, "keys": [{"id": "3f9a1c0e7b2d", "sha256": "<64 hex>",
      "scopes": ["match", "status"], "name": "upload-gate", "created_ms": 1700000000000}]}

A token is ``ccnk_`` and 43 characters of URL-safe base64 from 32 random
bytes (``secrets.token_urlsafe``), printed once by ``ccnode http-key add``
and never stored: the file keeps its SHA-256, enough for a token with 256
bits of entropy (there is nothing to brute-force, so no slow password
hash is needed). A presented token's SHA-256 is compared with every stored
hash using ``hmac.compare_digest`` (constant time, no early exit), and the
key id is the first 12 hex digits of that hash: it names a key in listings
and logs and says nothing usable about the token.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from node.errors import NotFoundError, ValidationError

if TYPE_CHECKING:
    from node.config import NodeConfig

KEYS_FILE = "http_keys.json"
TOKEN_PREFIX = "ccnk_"  # noqa: S105 (a prefix, not a secret)
SCOPES = ("match", "hash", "status")
_ID_HEX = 12


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    sha256: bytes = b""
    scopes: tuple[str, ...] = ()
    name: str = ""
    created_ms: int = 0

    def json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "sha256": self.sha256.hex(),
            "scopes": list(self.scopes),
            "name": self.name,
            "created_ms": self.created_ms,
        }


def check_scopes(scopes: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    if not scopes:
        raise ValidationError(f"an API key needs at least one scope: {', '.join(SCOPES)}")
    for s in scopes:
        if s not in SCOPES:
            raise ValidationError(f"unknown scope {s!r}: expected one of {', '.join(SCOPES)}")
    return tuple(s for s in SCOPES if s in scopes)  # canonical order, no repeats


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


def _parse(path: Path, text: str) -> tuple[ApiKey, ...]:
    where = str(path)
    try:
        doc = json.loads(text)
    except ValueError:
        raise ValidationError(f"{where} is not valid JSON") from None
    if (
        not isinstance(doc, dict)
        or doc.get("version") != 1
        or not isinstance(doc.get("keys"), list)
    ):
        raise ValidationError(f"{where}: expected {{'version': 1, 'keys': [...]}}")
    keys = []
    for i, row in enumerate(doc["keys"]):
        try:
            digest = bytes.fromhex(row["sha256"])
            key = ApiKey(
                str(row["id"]),
                digest,
                check_scopes(list(row["scopes"])),
                str(row.get("name", "")),
                int(row.get("created_ms", 0)),
            )
        except (KeyError, TypeError, ValueError, ValidationError) as exc:
            raise ValidationError(f"{where}: key #{i + 1} is malformed ({exc})") from None
        if len(digest) != 32:
            raise ValidationError(f"{where}: key #{i + 1}: sha256 must be 64 hex digits")
        keys.append(key)
    return tuple(keys)


def load_keys(directory: Path) -> tuple[ApiKey, ...]:
    """The keys in ``DIR/http_keys.json`` (none if there is no file)."""
    path = directory / KEYS_FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        return ()
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc.strerror}") from None
    return _parse(path, text)


def _save(directory: Path, keys: tuple[ApiKey, ...]) -> None:
    from node.config import write_atomic

    doc = {"version": 1, "keys": [k.json() for k in keys]}
    write_atomic(directory / KEYS_FILE, json.dumps(doc, indent=2) + "\n", mode=0o600)


def add_key(directory: Path, scopes: list[str], name: str = "") -> tuple[ApiKey, str]:
    """A new key with these scopes: (the stored key, the token, shown once)."""
    checked = check_scopes(scopes)
    keys = load_keys(directory)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    digest = token_hash(token)
    key = ApiKey(digest.hex()[:_ID_HEX], digest, checked, name, time.time_ns() // 1_000_000)
    _save(directory, (*keys, key))
    return key, token


def revoke_key(directory: Path, key_id: str) -> ApiKey:
    keys = load_keys(directory)
    gone = [k for k in keys if k.id == key_id]
    if not gone:
        raise NotFoundError(
            f"no API key {key_id!r} in {directory / KEYS_FILE} (`ccnode http-key list` shows them)"
        )
    _save(directory, tuple(k for k in keys if k.id != key_id))
    return gone[0]


def is_loopback_host(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(config: NodeConfig) -> bool:
    """Whether the HTTP API is open (no key on file, no mutual TLS), refusing
    an open API beyond loopback: what ``serve`` and ``check-config`` check."""
    open_ = not config.http_mutual_tls and not load_keys(config.dir)
    host = config.http_listen.rsplit(":", 1)[0]
    if open_ and not is_loopback_host(host):
        raise ValidationError(
            f"http_listen {config.http_listen}: the HTTP API needs API keys "
            "(`ccnode http-key add DIR --scope match`) or http_mutual_tls = true to listen "
            "beyond loopback"
        )
    if config.http_mutual_tls and config.insecure:
        raise ValidationError(
            "http_mutual_tls needs the node's TLS identity: a plaintext (insecure) node has none"
        )
    return open_


class KeyRing:
    """The node's view of the keys file: re-read when its modification time
    or size changes (one ``stat`` per request); a file that goes bad keeps
    the keys last read and is reported once."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / KEYS_FILE
        self._dir = directory
        self._seen: tuple[int, int] | None = None
        self.keys: tuple[ApiKey, ...] = ()
        self.error = ""
        self.refresh()

    def refresh(self) -> None:
        try:
            st = os.stat(self.path)
            stamp: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = None
        if stamp == self._seen and (stamp is not None or not self.keys):
            return
        try:
            self.keys = load_keys(self._dir)
            self.error = ""
        except ValidationError as exc:
            self.error = str(exc)  # keep the keys last read
        self._seen = stamp

    def find(self, token: str) -> ApiKey | None:
        """The key whose hash matches ``token``'s, compared in constant time
        against every stored hash."""
        self.refresh()
        digest = token_hash(token)
        found = None
        for key in self.keys:
            if hmac.compare_digest(key.sha256, digest):
                found = key
        return found
