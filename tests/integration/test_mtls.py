"""Mutual TLS pinned to the roster, and authorization from the TLS context.

Real grpc.aio nodes on 127.0.0.1 with self-signed certificates: a pinned
member gets in, anyone else fails the handshake; what a pinned member may
do is decided from its certificate's key and its roles in the roster; a
peer that a new roster pins starts syncing, and one it revokes is cut off.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from node.cli import main
from node.config import NodeConfig, PeerConfig
from node.core.roster import Role, SignedRoster
from node.errors import PeerError, ProvenanceError, ValidationError
from node.rpc.client import NodeClient
from node.rpc.tls import secure_client
from node.server import Node
from tests.helpers import (
    FAR_FUTURE_MS,
    GOVERNANCE,
    LoopThread,
    Origin,
    eventually,
    genesis,
    member,
    sign,
    tls_for,
    write_node_dir,
)

pytestmark = pytest.mark.integration

A, B, W, C = "platform-a.example", "platform-b.example", "witness.example", "outsider.example"


def v1() -> SignedRoster:
    return genesis([member(A), member(B), member(W, roles=frozenset({Role.WITNESS}))])


def peer(name: str) -> PeerConfig:
    return PeerConfig(name, address_file=f"../{name}/node.addr")


def client(name: str, address: str, trust: tuple[str, ...] = (A, B, C)) -> NodeClient:
    """Speak as ``name``'s TLS key, trusting ``trust``'s certificates."""
    certs = [tls_for(t).cert_der for t in trust]
    return secure_client(address, tls_for(name), certs, deadline_s=5.0)


class Mesh:
    def __init__(self, tmp_path: Path, loop: LoopThread) -> None:
        self.tmp_path = tmp_path
        self.loop = loop
        self.nodes: dict[str, Node] = {}

    def start(self, config: NodeConfig) -> Node:
        node = Node(config)
        self.loop.run(node.start())
        self.nodes[config.id] = node
        return node

    def stop(self) -> None:
        for n in self.nodes.values():
            if n._server is not None:
                self.loop.run(n.stop())


@pytest.fixture
def mesh(tmp_path: Path, loop: LoopThread) -> Iterator[Mesh]:
    m = Mesh(tmp_path, loop)
    roster = v1()
    m.start(write_node_dir(tmp_path, A, roster, insecure=False))
    m.start(write_node_dir(tmp_path, B, roster, insecure=False, peers=(peer(A),)))
    try:
        yield m
    finally:
        m.stop()


Factory = Callable[[], NodeClient]


def _call(loop: LoopThread, make: Factory, fn: str, *args: object) -> Any:
    """Make the client inside the loop (a channel belongs to the loop it was made in)."""

    async def go() -> object:
        async with make() as c:
            return await getattr(c, fn)(*args)

    return loop.run(go())


def _pull(loop: LoopThread, make: Factory) -> list[object]:
    async def go() -> list[object]:
        async with make() as c:
            return [r async for r in c.pull({}, follow=False)]

    return loop.run(go())


def test_pinned_members_connect_and_peers_sync_over_mtls(mesh: Mesh, loop: LoopThread) -> None:
    a, b = mesh.nodes[A], mesh.nodes[B]
    origin = Origin(A)
    entries = [origin.next() for _ in range(3)]
    _call(loop, lambda: client(A, a.address), "submit", entries)  # A's operator, its own key
    eventually(lambda: b.store.head(A).next_seq == 3, what="B synced A's entries over mTLS")
    assert b.sync.states[A].state == "streaming"
    status = _call(loop, lambda: client(W, a.address), "status")  # any pinned member
    assert status.node_id == A and status.roster_version == 1


@pytest.mark.parametrize(
    ("who", "trust", "plaintext"),
    [
        pytest.param(C, (A,), False, id="client certificate not pinned"),
        pytest.param(A, (B,), False, id="server certificate not the one expected"),
        pytest.param("", (), True, id="plaintext client"),
    ],
)
def test_unpinned_or_plaintext_callers_fail_the_handshake(
    mesh: Mesh, loop: LoopThread, who: str, trust: tuple[str, ...], plaintext: bool
) -> None:
    address = mesh.nodes[A].address

    def make() -> NodeClient:
        return NodeClient(address, deadline_s=5.0) if plaintext else client(who, address, trust)

    with pytest.raises(PeerError) as info:
        _call(loop, make, "status")
    assert f"node at {address}: UNAVAILABLE" in str(info.value)


def test_roles_and_ownership_are_decided_from_the_tls_key(mesh: Mesh, loop: LoopThread) -> None:
    address = mesh.nodes[A].address
    with pytest.raises(ProvenanceError) as info:
        _pull(loop, lambda: client(W, address))
    assert (
        str(info.value) == "caller witness.example may not Pull: needs the READ role, has WITNESS"
    )
    with pytest.raises(ProvenanceError) as info:
        _call(loop, lambda: client(W, address), "submit", [Origin(W).next()])
    assert str(info.value) == (
        "caller witness.example may not Submit: needs the SUBMIT role, has WITNESS"
    )
    with pytest.raises(ProvenanceError) as info:
        _call(loop, lambda: client(B, address), "submit", [Origin(A).next()])
    assert str(info.value) == (
        "caller platform-b.example may submit only its own entries: the entry is from "
        "platform-a.example"
    )
    # Its own entries, straight to another member's node: accepted.
    response = _call(loop, lambda: client(B, address), "submit", [Origin(B).next()])
    assert len(response.results) == 1
    assert mesh.nodes[A].store.head(B).next_seq == 1


def test_plaintext_is_refused_off_loopback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_node_dir(tmp_path, A, v1(), insecure=True, listen="0.0.0.0:0")
    with pytest.raises(ValidationError) as info:
        Node(config)
    assert "plaintext (insecure) serving is for local development and binds to loopback only" in (
        str(info.value)
    )
    tls = write_node_dir(tmp_path / "tls", A, v1(), insecure=False, listen="0.0.0.0:0")
    assert main(["serve", str(tls.dir), "--insecure"]) == 2
    assert "binds to loopback only" in capsys.readouterr().err


def test_a_peer_pinned_by_a_new_roster_joins_and_a_revoked_one_is_cut_off(
    mesh: Mesh, loop: LoopThread
) -> None:
    a, b = mesh.nodes[A], mesh.nodes[B]
    origin_a, origin_b = Origin(A), Origin(B)
    _call(loop, lambda: client(A, a.address), "submit", [origin_a.next() for _ in range(2)])
    _call(loop, lambda: client(B, a.address), "submit", [origin_b.next()])

    # C runs with roster 1, which does not pin it: A refuses its handshakes.
    c = mesh.start(write_node_dir(mesh.tmp_path, C, v1(), insecure=False, peers=(peer(A),)))
    eventually(
        lambda: "UNAVAILABLE" in c.sync.states[A].last_error, what="C refused by A (unpinned)"
    )
    assert c.store.heads() == {}

    # Governance pins C in roster 2 and offers it to A; B hears of it on its
    # Pull stream from A, C fetches it as soon as A lets it in.
    r2 = sign(
        SignedRoster.draft(v1().roster.next_draft(FAR_FUTURE_MS).with_member(member(C))),
        GOVERNANCE[:1],
    )
    offered = _call(loop, lambda: client(A, a.address), "offer_roster", [r2])
    assert (offered.adopted, offered.version) == (1, 2)
    history = _call(loop, lambda: client(W, a.address), "get_roster", 0)
    assert ([r.body for r in history.rosters], history.version) == (
        [v1().body_bytes, r2.body_bytes],
        2,
    )
    with pytest.raises(ProvenanceError) as info:
        _call(loop, lambda: client(W, a.address), "offer_roster", [v1()])
    assert str(info.value) == "rollback refused: roster version 1 is older than the held version 2"
    eventually(lambda: b.rosters.version == 2, what="B adopted roster 2 from A's stream")
    eventually(lambda: c.rosters.version == 2, timeout=20, what="C adopted roster 2")
    eventually(lambda: c.store.head(A).next_seq == 2, timeout=20, what="C synced A's entries")
    assert c.store.head(B).next_seq == 1

    # Roster 3 revokes B: A cuts its follow stream at once and refuses new
    # handshakes; B's earlier entries stay at A, flagged.
    revoked = dataclasses.replace(r2.roster.member(B), revoked=True)
    r3 = sign(
        SignedRoster.draft(r2.roster.next_draft(FAR_FUTURE_MS).with_member(revoked)),
        GOVERNANCE[:1],
    )
    b.sync.states[A].last_error = ""
    responses: list[object] = []

    async def follow_as_b() -> None:
        async with client(B, a.address) as cl:
            async for response in cl.pull({}, follow=True):
                responses.append(response)

    stream = asyncio.run_coroutine_threadsafe(follow_as_b(), loop.loop)
    eventually(lambda: bool(responses), what="B's own follow stream is open")
    _call(loop, lambda: client(A, a.address), "offer_roster", [r3])
    with pytest.raises(ProvenanceError) as info:
        stream.result(timeout=20)
    assert str(info.value) == "caller platform-b.example is revoked in roster version 3"
    _call(loop, lambda: client(A, a.address), "submit", [origin_a.next()])
    eventually(lambda: c.store.head(A).next_seq == 3, timeout=20, what="C still syncs")
    eventually(
        lambda: (
            "revoked" in b.sync.states[A].last_error or "UNAVAILABLE" in b.sync.states[A].last_error
        ),
        timeout=20,
        what="B cut off by A",
    )
    assert b.store.head(A).next_seq == 2  # the entry after the revocation never reached B

    async def match_b() -> object:
        async with client(A, a.address) as cl:
            e = a.store.entries_from(B, 0, 1)[0]
            return await cl.match([(e.body.algorithm, e.body.hash)])

    (hit,) = loop.run(match_b()).results[0].matches
    assert hit.provenance.origin == B
    assert hit.provenance.origin_status == "revoked-member"
