"""The node's one LMDB writer thread, with group commit.

LMDB has one writer at a time and every commit is an fsync (``sync`` and
``metasync`` on). A busy node writes from several places at once: batches
relayed by each peer, its own submissions, checkpoints from every origin,
its own checkpoints. Each used to be a transaction and an fsync of its own.

Here every write is a *job*: a function of a write transaction. The writer
thread takes the job at the head of the queue plus every job queued behind
it (up to ``max_jobs``), runs each in a nested transaction of one parent
transaction, and commits the parent once: one fsync for the group. A job
that raises has only its own nested transaction aborted; its exception
goes to its caller, and the other jobs of the group commit. Nothing is
reported done before the parent transaction has committed, so an
acknowledgement still means durable.

When the queue is short (an idle node) a group is one job: no added latency.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from node.errors import StorageError
from node.store.lmdb_store import LmdbStore

T = TypeVar("T")

#: Jobs committed together at most: bounds how long one group holds the
#: write lock, and so the latency a Submit can wait behind a catch-up.
MAX_GROUP = 64

_Job = tuple[Callable[[Any], Any], "Future[Any]"]


class GroupWriter:
    def __init__(
        self, store: LmdbStore, *, max_jobs: int = MAX_GROUP, name: str = "lmdb-writer"
    ) -> None:
        if max_jobs < 1:
            raise ValueError(f"max_jobs is {max_jobs}: expected at least 1")
        self._store = store
        self._max_jobs = max_jobs
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._closed = False
        self._lock = threading.Lock()
        #: Groups committed and jobs in them (for metrics and tests).
        self.groups = 0
        self.jobs = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, job: Callable[[Any], T]) -> Future[T]:
        """Queue ``job(txn)``; the future resolves once its group has committed."""
        future: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise StorageError("the store is closing: no more writes")
            self._queue.put((job, future))
        return future

    async def run(self, job: Callable[[Any], T]) -> T:
        return await asyncio.wrap_future(self.submit(job))

    def call(self, job: Callable[[Any], T]) -> T:
        """Run ``job`` and wait for it (for callers that are not on the event loop)."""
        return self.submit(job).result()

    def shutdown(self) -> None:
        """Finish every queued job, then stop the thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            stopping = False
            while len(group) < self._max_jobs:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                group.append(item)
            self._commit([(job, f) for job, f in group if f.set_running_or_notify_cancel()])
            if stopping:
                return

    def _commit(self, group: list[_Job]) -> None:
        if not group:
            return
        try:
            outcomes = self._store.write_group([job for job, _ in group])
        except BaseException as exc:  # noqa: BLE001 - each caller gets it; nothing was kept
            for _, future in group:
                future.set_exception(exc)
            return
        self.groups += 1
        self.jobs += len(group)
        for (_, future), (ok, value) in zip(group, outcomes, strict=True):
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)


__all__ = ["MAX_GROUP", "GroupWriter"]
