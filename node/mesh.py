"""Launch a local mesh of real node processes on 127.0.0.1.

Used by ``ccnode demo``, ``scripts/mesh.py`` and the tests. Every node is a
``ccnode serve`` subprocess with its own directory and LMDB environment,
listening on an ephemeral port that it publishes in ``DIR/node.addr``;
peers find each other through those files. Teardown terminates every child
(and a child whose launcher dies shuts itself down).

The launcher plays the consortium's governance for the mesh: it makes the
governance keys (``ROOT/governance/g*.pem``, threshold ``k`` of ``n``), a
member directory per node (``ccnode init``'s layout: keys, self-signed TLS
certificate, member card) and a genesis roster listing every member with
its TLS pin, installed in each node directory. Nodes talk mutual TLS unless
the mesh is created ``insecure``.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from node.config import NodeConfig, PeerConfig, new_key
from node.core.entry import Signer
from node.core.roster import Member, SignedRoster
from node.core.trust import MemberKind
from node.errors import PeerError, ValidationError
from node.rpc.client import NodeClient

TOPOLOGIES = ("line", "ring", "full", "random")


def edges(topology: str, n: int, degree: int = 3, seed: int = 0) -> set[tuple[int, int]]:
    """Undirected edges (i < j) of a topology over n nodes."""
    if topology == "line":
        return {(i, i + 1) for i in range(n - 1)}
    if topology == "ring":
        return {(i, i + 1) for i in range(n - 1)} | ({(0, n - 1)} if n > 2 else set())
    if topology == "full":
        return {(i, j) for i in range(n) for j in range(i + 1, n)}
    if topology == "random":
        return _random_regular(n, degree, seed)
    raise ValidationError(f"unknown topology {topology!r}: expected one of {TOPOLOGIES}")


def _random_regular(n: int, k: int, seed: int) -> set[tuple[int, int]]:
    """A connected random k-regular graph (pairing model with retries)."""
    if n * k % 2 or k >= n:
        raise ValidationError(f"no {k}-regular graph on {n} nodes")
    rng = random.Random(seed)
    for _ in range(1000):
        stubs = [i for i in range(n) for _ in range(k)]
        rng.shuffle(stubs)
        pairs = {tuple(sorted(stubs[i : i + 2])) for i in range(0, len(stubs), 2)}
        if len(pairs) == n * k // 2 and all(a != b for a, b in pairs) and _connected(n, pairs):
            return {(a, b) for a, b in pairs}
    raise ValidationError(f"could not build a connected {k}-regular graph on {n} nodes")


def _connected(n: int, pairs: set[tuple[int, ...]]) -> bool:
    seen, todo = {0}, [0]
    while todo:
        i = todo.pop()
        for a, b in pairs:
            for x, y in ((a, b), (b, a)):
                if x == i and y not in seen:
                    seen.add(y)
                    todo.append(y)
    return len(seen) == n


@dataclass
class MeshNode:
    config: NodeConfig
    signer: Signer
    member: Member
    process: subprocess.Popen[bytes] | None = None
    address: str = ""

    def client(self, address: str = "", *, deadline_s: float = 10.0) -> NodeClient:
        """A client speaking as this member (its TLS key) to ``address`` (default: itself)."""
        from node.connect import client_for

        return client_for(self.config, address or self.address, deadline_s=deadline_s)


@dataclass
class Mesh:
    """``with Mesh.create(root, specs, "line") as mesh: mesh.start()``."""

    root: Path
    nodes: list[MeshNode] = field(default_factory=list)
    governance: list[Signer] = field(default_factory=list)
    threshold: int = 1
    submitters: list[MeshNode] = field(default_factory=list)  # key-only: no process

    @classmethod
    def create(
        cls,
        root: Path,
        specs: list[tuple[str, MemberKind]],
        topology: str = "line",
        *,
        degree: int = 3,
        seed: int = 0,
        jurisdiction: str = "NZ",
        insecure: bool = False,
        governance_keys: int = 3,
        threshold: int = 2,
        key_only: list[tuple[str, MemberKind]] | None = None,
    ) -> Mesh:
        from node.member_dir import genesis_roster, init_member_dir, install_roster

        root.mkdir(parents=True, exist_ok=True)
        governance = [new_key(root / "governance" / f"g{i}.pem") for i in range(governance_keys)]
        links = edges(topology, len(specs), degree, seed)
        mesh = cls(root, governance=governance, threshold=threshold)
        for i, (name, kind) in enumerate(specs):
            neighbours = sorted({b for a, b in links if a == i} | {a for a, b in links if b == i})
            peers = tuple(
                PeerConfig(specs[j][0], address_file=f"../{_dirname(specs[j][0])}/node.addr")
                for j in neighbours
            )
            config, member = init_member_dir(
                root / _dirname(name),
                name,
                kind,
                jurisdiction=jurisdiction,
                peers=peers,
                insecure=insecure,
            )
            mesh.nodes.append(MeshNode(config, config.signer(), member))
        for name, kind in key_only or []:
            config, member = init_member_dir(
                root / _dirname(name),
                name,
                kind,
                jurisdiction=jurisdiction,
                key_only=True,
                insecure=insecure,
            )
            mesh.submitters.append(MeshNode(config, config.signer(), member))
        genesis = genesis_roster(
            [n.member for n in (*mesh.nodes, *mesh.submitters)],
            [g.private_key for g in governance],
            threshold=threshold,
        )
        for n in (*mesh.nodes, *mesh.submitters):
            install_roster(n.config, genesis)
        return mesh

    def add_node(
        self,
        name: str,
        kind: MemberKind,
        *,
        peers: list[str],
        roster: SignedRoster,
        jurisdiction: str = "NZ",
    ) -> MeshNode:
        """A new member directory (not yet in any roster) with ``roster`` as its anchor.

        Start it with :meth:`start_node`; the mesh accepts it once governance
        publishes a roster that lists its card (``node.member``).
        """
        from node.member_dir import init_member_dir, install_roster

        config, member = init_member_dir(
            self.root / _dirname(name),
            name,
            kind,
            jurisdiction=jurisdiction,
            peers=[PeerConfig(p, address_file=f"../{_dirname(p)}/node.addr") for p in peers],
            insecure=self.nodes[0].config.insecure if self.nodes else False,
        )
        install_roster(config, roster)
        node = MeshNode(config, config.signer(), member)
        self.nodes.append(node)
        return node

    def sign(self, signed: SignedRoster, *, keys: int | None = None) -> SignedRoster:
        """Sign with the first ``keys`` governance keys (default: the threshold)."""
        for g in self.governance[: self.threshold if keys is None else keys]:
            signed = signed.signed_by(g.private_key)
        return signed

    def start(self, timeout: float = 30.0) -> None:
        for n in self.nodes:
            self.start_node(n)
        self.wait_ready(timeout)

    def start_node(self, n: MeshNode) -> None:
        n.config.addr_file.unlink(missing_ok=True)
        log = (n.config.dir / "node.log").open("ab")
        n.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "node",
                "serve",
                str(n.config.dir),
                "--parent-pid",
                str(os.getpid()),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        n.address = ""

    def wait_ready(self, timeout: float = 30.0, nodes: Sequence[MeshNode] | None = None) -> None:
        """Wait until every node (or those of ``nodes``) has published its
        address and answers Status."""
        deadline = time.monotonic() + timeout
        waiting = list(self.nodes if nodes is None else nodes)
        for n in waiting:
            while not n.address:
                if n.process is not None and n.process.poll() is not None:
                    raise PeerError(
                        f"node {n.config.id} exited with {n.process.returncode}; "
                        f"see {n.config.dir / 'node.log'}"
                    )
                try:
                    n.address = n.config.addr_file.read_text().strip()
                except OSError:
                    if time.monotonic() > deadline:
                        raise PeerError(f"node {n.config.id} not ready in {timeout}s") from None
                    time.sleep(0.02)
        asyncio.run(self._health(deadline, waiting))

    async def _health(self, deadline: float, nodes: Sequence[MeshNode]) -> None:
        for n in nodes:
            async with n.client(deadline_s=2.0) as c:
                while True:
                    try:
                        await c.status()
                        break
                    except PeerError:
                        if time.monotonic() > deadline:
                            raise
                        await asyncio.sleep(0.05)

    def stop_node(self, n: MeshNode, *, kill: bool = False, timeout: float = 10.0) -> None:
        p = n.process
        if p is None or p.poll() is not None:
            return
        p.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout)

    def stop(self) -> None:
        for n in self.nodes:
            if n.process is not None and n.process.poll() is None:
                n.process.send_signal(signal.SIGTERM)
        for n in self.nodes:
            self.stop_node(n)

    def pids(self) -> list[int]:
        return [n.process.pid for n in self.nodes if n.process is not None]

    def __enter__(self) -> Mesh:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _dirname(member_id: str) -> str:
    return member_id.replace("/", "_")
