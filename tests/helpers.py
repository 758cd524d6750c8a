"""Test helpers: deterministic keys, members, node dirs, polling with deadlines."""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)

from node.config import NodeConfig, PeerConfig, TlogConfig
from node.core.entry import ZERO_ID, EntryBody, Kind, SignedEntry, Signer
from node.core.trust import Member, MemberKind, MembersFile, raw_public_key

T = TypeVar("T")


def signer_for(name: str) -> Signer:
    """Deterministic keys: the same name always gives the same key."""
    return Signer(Ed25519PrivateKey.from_private_bytes(hashlib.sha256(name.encode()).digest()))


def member(name: str, kind: MemberKind = MemberKind.PLATFORM, jurisdiction: str = "NZ") -> Member:
    return Member(name, kind, jurisdiction, (raw_public_key(signer_for(name).public_key),))


def pdq_value(i: int) -> bytes:
    return hashlib.sha256(b"pdq" + i.to_bytes(4, "big")).digest()


class Origin:
    """A member publishing a chain of entries, for tests."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.signer = signer_for(name)
        self.seq = 0
        self.prev = ZERO_ID

    def body(self, **fields: Any) -> EntryBody:
        base: dict[str, Any] = dict(
            origin=self.name,
            seq=self.seq,
            prev=self.prev,
            key_id=self.signer.key_id,
            time_ms=1_700_000_000_000 + self.seq,
            kind=Kind.ADD,
            algorithm="MD5",
            hash=hashlib.md5(f"{self.name}/{self.seq}".encode()).digest(),
            labels=("behaviour:glorification", "type:video"),
            incident="christchurch-2019-03-15",
        )
        base.update(fields)
        return EntryBody(**base)

    def next(self, **fields: Any) -> SignedEntry:
        entry = self.signer.sign(self.body(**fields))
        self.seq += 1
        self.prev = entry.entry_id
        return entry


def write_node_dir(
    root: Path,
    name: str,
    members: MembersFile,
    kind: MemberKind = MemberKind.PLATFORM,
    peers: tuple[PeerConfig, ...] = (),
    tlog: TlogConfig | None = None,
) -> NodeConfig:
    d = root / name.replace("/", "_")
    (d / "keys").mkdir(parents=True, exist_ok=True)
    key_path = d / "keys" / "entry.pem"
    if not key_path.exists():
        key = signer_for(name).private_key
        key_path.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
        key_path.chmod(0o600)
    (d / "members.toml").write_text(members.dumps())
    config = NodeConfig(
        dir=d, id=name, kind=kind, jurisdiction="NZ", peers=peers, tlog=tlog or TlogConfig()
    )
    config.save()
    return config


def peer_file(name: str) -> PeerConfig:
    """A peer found through its node directory's ``node.addr`` (next to ours)."""
    return PeerConfig(name, address_file=f"../{name.replace('/', '_')}/node.addr")


class LoopThread:
    """An asyncio loop in a background thread, so tests (and the CLI's own
    ``asyncio.run``) can drive real servers from plain synchronous code."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    def close(self) -> None:
        async def _drain() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self.run(_drain())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


def eventually(
    predicate: Callable[[], bool], *, timeout: float = 10.0, interval: float = 0.02, what: str = ""
) -> None:
    """Poll until ``predicate()`` holds, failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {what or predicate}")
        time.sleep(interval)


async def aeventually(
    predicate: Callable[[], Awaitable[bool]], *, timeout: float = 10.0, what: str = ""
) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {what}")
        await asyncio.sleep(0.02)
