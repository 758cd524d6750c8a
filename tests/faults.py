"""Fault injection around real nodes: a misbehaving relay and a malicious peer.

These wrap or stand in for a *peer* on the wire; the node under test is
always the real one.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

import grpc

from node.rpc._pb.consortium.v1 import node_pb2 as pb
from node.rpc._pb.consortium.v1 import node_pb2_grpc as pb_grpc
from node.rpc.client import SERVER_OPTIONS, NodeClient


class FaultyRelay(pb_grpc.NodeServiceServicer):
    """Serves an upstream node's Pull, duplicating, reordering and delaying.

    Each response batch is, at random: sent twice (and its entries
    duplicated inside it), held back and sent after the next batch, or
    delayed. Nothing is forged: every entry is the upstream's real bytes.
    """

    def __init__(self, upstream: str, seed: int, rate: float = 0.3) -> None:
        self.upstream = upstream
        self.rng = random.Random(seed)
        self.rate = rate
        self.faults = {"duplicated": 0, "reordered": 0, "delayed": 0}

    async def Pull(self, request: pb.PullRequest, context: Any) -> AsyncIterator[pb.PullResponse]:
        held: pb.PullResponse | None = None
        async with NodeClient(self.upstream) as client:
            async for response in client.pull(
                dict(request.cursors), follow=request.follow, max_batch=request.max_batch
            ):
                if not response.entries:
                    yield response
                    continue
                roll = self.rng.random()
                if roll < self.rate / 3:
                    self.faults["delayed"] += 1
                    await asyncio.sleep(self.rng.uniform(0.001, 0.05))
                elif roll < 2 * self.rate / 3:
                    self.faults["duplicated"] += 1
                    doubled = list(response.entries) + list(response.entries)
                    yield pb.PullResponse(entries=doubled, frontier=response.frontier)
                elif roll < self.rate and held is None:
                    self.faults["reordered"] += 1
                    held = response
                    continue
                yield response
                if held is not None:
                    yield held
                    held = None
            if held is not None:
                yield held


class MaliciousPeer(pb_grpc.NodeServiceServicer):
    """A peer that answers every Pull with whatever ``batches`` holds."""

    def __init__(self, batches: list[pb.PullResponse]) -> None:
        self.batches = batches
        self.pulls = 0

    async def Pull(self, request: pb.PullRequest, context: Any) -> AsyncIterator[pb.PullResponse]:
        self.pulls += 1
        for b in self.batches:
            yield b
        await asyncio.Event().wait()  # then hang, as a stuck peer would


async def serve(servicer: pb_grpc.NodeServiceServicer) -> tuple[grpc.aio.Server, str]:
    server = grpc.aio.server(options=SERVER_OPTIONS)
    pb_grpc.add_NodeServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


class RoguePeer(pb_grpc.NodeServiceServicer):
    """A member's node gone rogue: every Pull answers ``batch`` again and
    again without end (``repeat``), or once and then hangs; GetRoster answers
    ``roster`` (counting the calls)."""

    def __init__(
        self,
        batch: pb.PullResponse,
        *,
        repeat: bool = True,
        roster: pb.GetRosterResponse | None = None,
    ) -> None:
        self.batch = batch
        self.repeat = repeat
        self.roster = roster or pb.GetRosterResponse()
        self.pulls = 0
        self.responses = 0
        self.roster_calls = 0

    async def Pull(self, request: pb.PullRequest, context: Any) -> AsyncIterator[pb.PullResponse]:
        self.pulls += 1
        while True:
            self.responses += 1
            yield self.batch
            if not self.repeat:
                await asyncio.Event().wait()
            await asyncio.sleep(0)  # let the loop breathe: the receiver is under test, not us

    async def GetRoster(self, request: pb.GetRosterRequest, context: Any) -> pb.GetRosterResponse:
        self.roster_calls += 1
        return self.roster
