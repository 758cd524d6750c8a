"""One process per node directory: an exclusive ``flock`` on ``DIR/node.lock``.

Whether a node runs in a directory is decided by this lock, never by
``node.addr`` existing: the kernel drops a ``flock`` when its holder exits,
however it exits (``kill -9``, a power cut), so a crash cannot leave a
directory looking busy, and two processes can never both hold it. The
holder writes its pid into the file, so a refusal can name it.

Who takes it: ``ccnode serve`` (``node.server.Node``) for its whole life,
and ``ccnode restore`` while it replaces the store. ``running`` probes it
without taking it (``ccnode restore`` refuses, client commands say a
``node.addr`` is stale). Locks are per open file: a second ``Node`` on the
same directory in one process is refused too.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from node.errors import ConflictError, StorageError

LOCK_FILE = "node.lock"


def _pid_in(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


class DirLock:
    """The held lock; ``release()`` (or process exit) frees it."""

    def __init__(self, directory: Path, fd: int) -> None:
        self.directory = directory
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, directory: Path, doing: str) -> DirLock:
        """Take the lock or refuse, naming the process that holds it.

        ``doing`` completes the refusal: "cannot {doing}: ...".
        """
        path = directory / LOCK_FILE
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StorageError(f"cannot open {path}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _pid_in(fd)
            os.close(fd)
            who = f"process {pid}" if pid else "another process"
            raise ConflictError(
                f"cannot {doing}: {directory} is in use by {who} (it holds {path}); "
                "stop that process first"
            ) from None
        except OSError as exc:
            os.close(fd)
            raise StorageError(f"cannot lock {path}: {exc.strerror}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(directory, fd)

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)  # no pid left behind for a reader to blame
            os.close(self._fd)  # closing drops the flock
            self._fd = None


def running(directory: Path) -> int | None:
    """The pid of the live process holding DIR's lock (0 if it wrote none yet),
    or None if nothing holds it."""
    path = directory / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StorageError(f"cannot open {path}: {exc.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _pid_in(fd) or 0
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def running_address(directory: Path, addr_file: Path) -> str | None:
    """The address a live node in DIR published, or None if no node holds
    DIR's lock (a ``node.addr`` left by a process that died is ignored)."""
    if running(directory) is None:
        return None
    try:
        return addr_file.read_text().strip() or None
    except OSError:
        return None
