"""Test helpers: deterministic keys, members, rosters, node dirs, polling with deadlines."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import hashlib
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)

from node.config import NodeConfig, PeerConfig, TlogConfig
from node.core import tlscert
from node.core.entry import ZERO_ID, EntryBody, Kind, SignedEntry, Signer
from node.core.roster import (
    EntryKey,
    Role,
    Roster,
    SignedRoster,
    default_roles,
    dumps_file,
)
from node.core.tlscert import TlsIdentity
from node.core.trust import Member, MemberKind, MembersFile, raw_public_key

if TYPE_CHECKING:
    from node.server import Node

T = TypeVar("T")

#: Far enough ahead that no test roster expires while the suite runs.
FAR_FUTURE_MS = 4_000_000_000_000
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def signer_for(name: str) -> Signer:
    """Deterministic keys: the same name always gives the same key."""
    return Signer(Ed25519PrivateKey.from_private_bytes(hashlib.sha256(name.encode()).digest()))


@functools.cache
def tls_for(name: str) -> TlsIdentity:
    """A deterministic TLS key for ``name`` and its self-signed certificate."""
    secret = int.from_bytes(hashlib.sha256(b"tls:" + name.encode()).digest(), "big")
    key = ec.derive_private_key(secret % (_P256_ORDER - 1) + 1, ec.SECP256R1())
    cert = tlscert.self_signed_cert(key, name, time.time_ns() // 1_000_000)
    return TlsIdentity(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()), cert)


def member(
    name: str,
    kind: MemberKind = MemberKind.PLATFORM,
    jurisdiction: str = "NZ",
    **fields: Any,
) -> Member:
    """A member with deterministic entry and TLS keys; it signs checkpoints
    with its entry key unless ``checkpoint_key`` is given."""
    base: dict[str, Any] = dict(
        id=name,
        kind=kind,
        jurisdiction=jurisdiction,
        entry_keys=(EntryKey(raw_public_key(signer_for(name).public_key)),),
        roles=default_roles(kind),
        tls_cert=tls_for(name).cert_der,
    )
    base.update(fields)
    return Member(**base)


#: Deterministic governance keys for test rosters.
GOVERNANCE = [signer_for(f"governance-{i}") for i in range(5)]


def genesis(
    members: Sequence[Member] | MembersFile,
    *,
    keys: Sequence[Signer] = GOVERNANCE[:1],
    threshold: int = 1,
    expires_ms: int = FAR_FUTURE_MS,
    witness_threshold: int = 0,
) -> SignedRoster:
    """Version 1 listing ``members``, signed by every key in ``keys``."""
    listed = members.members() if isinstance(members, MembersFile) else tuple(members)
    roster = Roster(
        version=1,
        expires_ms=expires_ms,
        governance_keys=tuple(raw_public_key(k.public_key) for k in keys),
        governance_threshold=threshold,
        members=tuple(listed),
        witness_threshold=witness_threshold,
    )
    return sign(SignedRoster.draft(roster), keys)


def witnessed(
    members: Sequence[Member] | MembersFile, witnesses: Sequence[str], threshold: int = 1
) -> SignedRoster:
    """A genesis roster in which exactly ``witnesses`` hold the WITNESS role and
    ``threshold`` cosignatures settle an entry (the transparency log's quorum)."""
    listed = members.members() if isinstance(members, MembersFile) else tuple(members)
    chosen = set(witnesses)
    adjusted = [
        dataclasses.replace(
            m, roles=m.roles | {Role.WITNESS} if m.id in chosen else m.roles - {Role.WITNESS}
        )
        for m in listed
    ]
    return genesis(adjusted, witness_threshold=threshold)


def sign(signed: SignedRoster, keys: Sequence[Signer]) -> SignedRoster:
    for k in keys:
        signed = signed.signed_by(k.private_key)
    return signed


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
    members: MembersFile | Sequence[Member] | SignedRoster,
    kind: MemberKind = MemberKind.PLATFORM,
    peers: tuple[PeerConfig, ...] = (),
    tlog: TlogConfig | None = None,
    *,
    insecure: bool = True,
    **options: Any,
) -> NodeConfig:
    """A node directory with deterministic keys and a roster.

    ``members`` may be a signed roster, or members for a genesis roster
    signed by ``GOVERNANCE[0]``. Plaintext (``insecure``) unless asked
    otherwise, so tests about other things need no TLS identity.
    """
    d = root / name.replace("/", "_")
    (d / "keys").mkdir(parents=True, exist_ok=True)
    key_path = d / "keys" / "entry.pem"
    if not key_path.exists():
        key = signer_for(name).private_key
        key_path.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
        key_path.chmod(0o600)
    tls = tls_for(name)
    tls_key = d / "keys" / "tls.key"
    if not tls_key.exists():
        tls_key.write_bytes(tls.key_pem)
        tls_key.chmod(0o600)
        (d / "keys" / "tls.crt").write_bytes(tls.cert_pem)
    roster = members if isinstance(members, SignedRoster) else genesis(members)
    (d / "roster.json").write_text(dumps_file(roster))
    config = NodeConfig(
        dir=d,
        id=name,
        kind=kind,
        jurisdiction="NZ",
        peers=peers,
        insecure=insecure,
        tlog=tlog or TlogConfig(),
        **options,
    )
    config.save()
    return config


def line_of_three(tmp_path: Path, gov: str, p1: str, p2: str) -> list[NodeConfig]:
    """Node directories for a line gov - p1 - p2 (a government and two
    platforms), each finding its neighbours through their address files."""
    members = MembersFile.of([member(gov, MemberKind.GOVERNMENT), member(p1), member(p2)])

    def peer(name: str) -> PeerConfig:
        return PeerConfig(name, address_file=f"../{name.replace('/', '_')}/node.addr")

    return [
        write_node_dir(tmp_path, gov, members, MemberKind.GOVERNMENT, (peer(p1),)),
        write_node_dir(tmp_path, p1, members, peers=(peer(gov), peer(p2))),
        write_node_dir(tmp_path, p2, members, peers=(peer(p1),)),
    ]


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


def run_cli(capsys: Any, *argv: str, code: int = 0) -> tuple[str, str]:
    """``ccnode ARGV`` in process: assert its exit code, return (stdout, stderr)."""
    from node.cli import main

    capsys.readouterr()
    assert main(list(argv)) == code
    captured = capsys.readouterr()
    return captured.out, captured.err


@contextlib.contextmanager
def running_nodes(loop: LoopThread, configs: Sequence[NodeConfig]) -> Iterator[list[Node]]:
    """Real nodes of ``configs`` started in order on ``loop``; stopped in
    reverse order on leaving, whatever happened."""
    from node.server import Node

    nodes = [Node(c) for c in configs]
    for n in nodes:
        loop.run(n.start())
    try:
        yield nodes
    finally:
        for n in reversed(nodes):
            loop.run(n.stop())


@contextlib.contextmanager
def http_server(handler: Callable[..., Any]) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 (an ephemeral port) in a thread:
    yields its base URL, then stops it."""
    from http.server import ThreadingHTTPServer

    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
