"""The witness submitter: ask each witness to cosign this node's own checkpoints.

One task per configured witness (other than this node). Whenever this node
signs a new checkpoint of its own log, the task sends the witness
``AddCheckpoint(old_size, consistency proof old_size -> new size, note)``,
where ``old_size`` is the size the witness cosigned last (learned from its
FAILED_PRECONDITION answer when unknown, as C2SP tlog-witness intends), and
merges the returned cosignature into the stored checkpoint. Cosigned
checkpoints then travel with ``Pull`` to every node, which count them
towards "settled".
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable

from node.app import NodeApp
from node.core.tlog import StaleSizeError, VerifiedCheckpoint
from node.errors import NodeError, PeerError
from node.sync.engine import BACKOFF_MAX_S, BACKOFF_MIN_S, ClientFactory, plaintext_client

log = logging.getLogger(__name__)

MAX_STALE_RETRIES = 3


class WitnessSubmitter:
    def __init__(
        self,
        app: NodeApp,
        resolve: Callable[[str], str | None],
        *,
        client: ClientFactory = plaintext_client,
    ) -> None:
        self.app = app
        self.resolve = resolve
        self.client = client
        self.last_error: dict[str, str] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._running = False

    def start(self) -> None:
        self._running = True
        self.refresh()

    def refresh(self) -> None:
        """Follow the witness set (it changes with the roster): one task per witness."""
        if not self._running:
            return
        targets = set(self.app.tlog.witness_targets())
        for wid in [w for w in self._tasks if w not in targets]:
            self._tasks.pop(wid).cancel()
            self.last_error.pop(wid, None)
        for wid in sorted(targets - set(self._tasks)):
            self._tasks[wid] = asyncio.create_task(self._run(wid), name=f"witness:{wid}")

    async def stop(self) -> None:
        self._running = False
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()

    async def _run(self, wid: str) -> None:
        signal = self.app.tlog.own_signal
        known: int | None = None  # the size this witness cosigned last, once learned
        backoff = BACKOFF_MIN_S
        while True:
            seen = signal.version
            vc = self.app.tlog.own_latest()
            if vc is None or wid in vc.cosigners:
                await signal.wait_past(seen)
                continue
            address = self.resolve(wid)
            try:
                if not address:
                    raise PeerError(f"no address known for witness {wid}")
                known = await self._submit(wid, address, vc, known)
                self.last_error.pop(wid, None)
                backoff = BACKOFF_MIN_S
                continue
            except NodeError as exc:
                self.last_error[wid] = str(exc)
                level = logging.INFO if isinstance(exc, PeerError) else logging.WARNING
                log.log(level, "witness %s did not cosign size %d: %s", wid, vc.size, exc)
            await asyncio.sleep(random.uniform(0, backoff))  # noqa: S311 - not crypto
            backoff = min(BACKOFF_MAX_S, backoff * 2)

    async def _submit(
        self, wid: str, address: str, vc: VerifiedCheckpoint, known: int | None
    ) -> int:
        """Get ``wid``'s cosignature on ``vc``; returns the size it has now cosigned."""
        old = known or 0
        async with self.client(wid, address) as client:
            for _ in range(MAX_STALE_RETRIES):
                if old > vc.size:
                    raise NodeError(
                        f"witness {wid} cosigned size {old} of this node's log, which has "
                        f"only {vc.size} entries checkpointed (lost data?)"
                    )
                proof = self.app.tlog.consistency_proof(vc.origin, old, vc.size)
                try:
                    lines = await client.add_checkpoint(old, proof, vc.origin_only())
                except StaleSizeError as exc:
                    old = exc.witness_size
                    continue
                count = self.app.tlog.add_cosignatures(vc, lines)
                log.info("witness %s cosigned size %d (%d cosignatures)", wid, vc.size, count)
                return vc.size
        raise NodeError(f"witness {wid} kept answering with a stale size")
