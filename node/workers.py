"""Worker processes that never outlive the node.

The node verifies large batches in a ``spawn`` process pool. If the node
dies without shutting the pool down (SIGKILL, the OOM killer, a crash),
Python leaves the workers running, orphaned, each holding a copy of the
interpreter. Every worker runs :func:`die_with_parent` first: a watcher
thread exits it within a second once its parent is gone. (Linux's
``PR_SET_PDEATHSIG`` would be immediate, but it fires when the *thread*
that started the worker exits, which is not ours to control.)
"""

from __future__ import annotations

import os
import threading
import time

POLL_S = 1.0


def die_with_parent(parent_pid: int) -> None:
    """Process-pool initializer: exit once ``parent_pid`` is no longer our parent."""
    if os.getppid() != parent_pid:  # it died before we got here
        os._exit(0)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(POLL_S)
        os._exit(0)  # nothing to clean up: a worker holds no state of its own

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


__all__ = ["POLL_S", "die_with_parent"]
