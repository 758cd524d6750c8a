"""Hot backups of a node's LMDB store, and restoring them.

``backup`` opens the store read-only beside the running node (LMDB allows
readers in other processes) and copies it inside one read transaction with
compaction, like ``mdb_copy -c``: the copy is a consistent snapshot of
committed state, the node keeps serving and writing meanwhile, and freed
pages are not copied. A manifest records what the copy holds and its
SHA-256.

A backup holds entries, cursors and evidence: everything in ``data/``, and
the local match log (``matchlog/``, copied the same way; it is the only
record of what this platform matched and did, and no peer can give it
back). It holds no keys and no configuration; back those up separately
(keys offline).

``restore`` refuses to overwrite a store unless asked, checks the checksum,
moves any existing store aside (never deletes it), and checks that the
restored store opens. A restored node catches up from its peers on start,
including its own entries published after the backup. Until a peer has
told it its own log's head, it refuses to accept new entries of its own
origin (``restore`` leaves the ``restored`` marker that says so; see
``node.app.OwnLog`` and docs/operators.md, "Backups").
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from node.config import NodeConfig, write_atomic
from node.dirlock import DirLock
from node.errors import StorageError, ValidationError
from node.store.lmdb_store import SCHEMA_VERSION, LmdbStore
from node.store.matchlog import MATCHLOG_DIR, MatchLog

MANIFEST = "backup.json"
#: ``restore`` leaves this file in the node directory; the node removes it once
#: a peer has told it its own log's head (``node.app.OwnLog``).
RESTORED_MARKER = "restored"
DATA_FILE = "data.mdb"
FORMAT = "ccnode-backup/1"
_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class Manifest:
    node_id: str
    created_ms: int
    schema: int
    entries: int
    heads: dict[str, int]
    size: int
    sha256: str
    # The match log copy; absent from backups made before it was included.
    matchlog_events: int = -1  # -1: no match log in this backup
    matchlog_size: int = 0
    matchlog_sha256: str = ""

    def dumps(self) -> str:
        doc = {"format": FORMAT, **{f: getattr(self, f) for f in self.__dataclass_fields__}}
        return json.dumps(doc, indent=2, sort_keys=True) + "\n"

    @classmethod
    def load(cls, directory: Path) -> Manifest:
        path = directory / MANIFEST
        try:
            doc = json.loads(path.read_text())
        except OSError as exc:
            raise ValidationError(f"{directory} is not a ccnode backup: {exc.strerror}") from None
        except json.JSONDecodeError:
            raise ValidationError(f"{path} is not JSON") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ValidationError(f"{path}: format {doc.get('format')!r}: expected {FORMAT!r}")
        optional = {f for f in cls.__dataclass_fields__ if f.startswith("matchlog_")}
        try:
            return cls(
                **{f: doc[f] for f in cls.__dataclass_fields__ if f not in optional},
                **{f: doc[f] for f in optional if f in doc},
            )
        except KeyError as exc:
            raise ValidationError(f"{path}: missing {exc.args[0]!r}") from None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _contents(store: LmdbStore) -> tuple[int, dict[str, int]]:
    heads = {o: h.next_seq for o, h in store.heads().items()}
    return store.count(), heads


def backup(config: NodeConfig, out: Path) -> Manifest:
    """Copy the node's store to ``out`` (a new or empty directory)."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValidationError(f"backup target {out} exists and is not an empty directory")
    source = LmdbStore(config.data_dir, readonly=True)
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        source.copy_to(out)
        copy = LmdbStore(out, readonly=True)
        try:
            entries, heads = _contents(copy)
        finally:
            copy.close()
    except BaseException:
        for name in (DATA_FILE, "lock.mdb"):
            (out / name).unlink(missing_ok=True)
        if created:
            out.rmdir()
        raise
    finally:
        source.close()
    (out / "lock.mdb").unlink(missing_ok=True)
    data = out / DATA_FILE
    events = _copy_matchlog(config.dir / MATCHLOG_DIR, out / MATCHLOG_DIR)
    log_data = out / MATCHLOG_DIR / DATA_FILE
    manifest = Manifest(
        node_id=config.id,
        created_ms=time.time_ns() // 1_000_000,
        schema=SCHEMA_VERSION,
        entries=entries,
        heads=heads,
        size=data.stat().st_size,
        sha256=_sha256(data),
        matchlog_events=events,
        matchlog_size=log_data.stat().st_size if events >= 0 else 0,
        matchlog_sha256=_sha256(log_data) if events >= 0 else "",
    )
    write_atomic(out / MANIFEST, manifest.dumps())
    return manifest


def _copy_matchlog(source: Path, out: Path) -> int:
    """Copy the match log if the node has one; its event count, or -1."""
    if not (source / DATA_FILE).is_file():
        return -1
    log = MatchLog(source, readonly=True)
    try:
        out.mkdir()
        log.copy_to(out)
    finally:
        log.close()
    copy = MatchLog(out, readonly=True)
    try:
        return copy.count()
    finally:
        copy.close()
        (out / "lock.mdb").unlink(missing_ok=True)


def _checked(data: Path, sha256: str, source: Path) -> Path:
    if not data.is_file():
        raise ValidationError(f"backup {source} has no {data.relative_to(source)}")
    got = _sha256(data)
    if got != sha256:
        raise StorageError(
            f"backup {data} is corrupt: SHA-256 {got[:16]}…, manifest says {sha256[:16]}…"
        )
    return data


def _may_replace(target: Path, what: str, force: bool) -> None:
    if (target / DATA_FILE).exists() and not force:
        raise ValidationError(
            f"{target} already holds {what}; pass --force to move it aside and restore"
        )


def _install(data: Path, target: Path) -> Path | None:
    """Copy ``data`` in as ``target``'s LMDB file; an existing one is moved
    aside (never deleted). Returns where it went, or None."""
    moved: Path | None = None
    if (target / DATA_FILE).exists():
        moved = target.with_name(f"{target.name}.before-restore-{time.time_ns() // 1_000_000}")
        os.replace(target, moved)
    staging = target.with_name(target.name + ".restoring")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    shutil.copyfile(data, staging / DATA_FILE)
    with (staging / DATA_FILE).open("rb") as f:
        os.fsync(f.fileno())
    if target.exists():
        shutil.rmtree(target)  # an empty or lock-only directory (no data.mdb)
    os.replace(staging, target)
    return moved


def restore(
    source: Path, config: NodeConfig, *, force: bool = False, any_member: bool = False
) -> tuple[Manifest, Path | None]:
    """Install the backup at ``source`` as the node's store.

    Returns the manifest and where an existing store was moved (or None).
    The node must be stopped.
    """
    manifest = Manifest.load(source)
    if manifest.schema != SCHEMA_VERSION:
        raise ValidationError(
            f"backup has store schema {manifest.schema}: this ccnode reads {SCHEMA_VERSION}"
        )
    if manifest.node_id != config.id and not any_member:
        raise ValidationError(
            f"backup is of {manifest.node_id!r}, this node is {config.id!r}; "
            "pass --any-member to seed this node from another member's replica"
        )
    # Liveness by the directory lock, not node.addr (a crash leaves that behind);
    # held while the store is replaced, so no node starts meanwhile.
    lock = DirLock.acquire(config.dir, f"restore into {config.dir}")
    try:
        return _restore(source, config, manifest, force=force)
    finally:
        lock.release()


def _restore(
    source: Path, config: NodeConfig, manifest: Manifest, *, force: bool
) -> tuple[Manifest, Path | None]:
    config.addr_file.unlink(missing_ok=True)  # left behind by a node that died
    data = _checked(source / DATA_FILE, manifest.sha256, source)
    target = config.data_dir
    _may_replace(target, "a store", force)
    log_data: Path | None = None
    if manifest.matchlog_events >= 0:
        log_data = _checked(source / MATCHLOG_DIR / DATA_FILE, manifest.matchlog_sha256, source)
        _may_replace(config.dir / MATCHLOG_DIR, "a match log", force)
    moved = _install(data, target)
    if log_data is not None:
        _install(log_data, config.dir / MATCHLOG_DIR)
        log = MatchLog(config.dir / MATCHLOG_DIR)
        try:
            events = log.count()
        finally:
            log.close()
        if events != manifest.matchlog_events:
            raise StorageError(
                f"restored match log holds {events} events, the manifest says "
                f"{manifest.matchlog_events}"
            )
    store = LmdbStore(target)  # opens read-write: checks the schema, makes lock.mdb
    try:
        entries, heads = _contents(store)
    finally:
        store.close()
    if (entries, heads) != (manifest.entries, manifest.heads):
        raise StorageError(
            f"restored store holds {entries} entries, the manifest says {manifest.entries}"
        )
    # Until a peer confirms this node's own log's head, it signs nothing new.
    write_atomic(
        config.dir / RESTORED_MARKER,
        json.dumps({"backup": manifest.node_id, "created_ms": manifest.created_ms}) + "\n",
    )
    return manifest, moved
