"""RFC 6962 / RFC 9162 Merkle log primitives over a dense hash store.

The tree is append-only. An outer store keeps the hash of every *complete*
subtree: ``(level, index)`` names the subtree of ``2**level`` leaves starting
at leaf ``index * 2**level``. Appending a leaf adds one record per level it
completes (``append_hashes``); roots and proofs for any earlier size are then
assembled from O(log n) stored hashes, because a node of a tree of size n is
either complete or the ragged right edge, which splits into complete subtrees.

Verification follows RFC 9162 sections 2.1.3.2 and 2.1.4.2, with the proof
length checked up front so that extra or missing nodes get a clear message.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Protocol

from node.errors import NotFoundError, ValidationError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MemoryTree",
    "TreeHashReader",
    "append_hashes",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_from_store",
    "root_of",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """Return the RFC 6962 leaf hash ``SHA-256(0x00 || data)``."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the RFC 6962 interior hash ``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_of(leaves_hashes: Sequence[bytes]) -> bytes:
    """Reference MTH of RFC 6962 section 2.1, recursive; a test oracle."""
    n = len(leaves_hashes)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaves_hashes[0]
    k = 1 << ((n - 1).bit_length() - 1)  # largest power of two < n
    return node_hash(root_of(leaves_hashes[:k]), root_of(leaves_hashes[k:]))


class TreeHashReader(Protocol):
    """Read access to stored complete-subtree hashes."""

    def get(self, level: int, index: int) -> bytes:
        """Hash of the complete subtree of ``2**level`` leaves from ``index * 2**level``."""
        ...


# --- building from the store -------------------------------------------------


def _check_size(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(f"{name} must be a non-negative integer, got {value!r}")


def _check_hash(name: str, value: bytes) -> None:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        got = f"{len(value)} bytes" if isinstance(value, bytes) else type(value).__name__
        raise ValidationError(f"{name} must be {HASH_SIZE} bytes, got {got}")


def append_hashes(size: int, leaf: bytes, reader: TreeHashReader) -> list[tuple[int, int, bytes]]:
    """Records ``(level, index, hash)`` to persist when appending leaf number ``size``.

    ``leaf`` is the 32-byte leaf hash (``leaf_hash(data)``), not the raw data.
    The first record is the leaf itself at level 0; each further record is a
    subtree the new leaf completes. Reads one stored sibling per record.
    """
    _check_size("size", size)
    _check_hash("leaf hash", leaf)
    records = [(0, size, leaf)]
    level, index, current = 0, size, leaf
    while index & 1:
        current = node_hash(reader.get(level, index - 1), current)
        level, index = level + 1, index >> 1
        records.append((level, index, current))
    return records


def _range_hash(start: int, end: int, reader: TreeHashReader) -> bytes:
    """MTH of leaves ``[start, end)`` where ``start`` is aligned to a power of two > the width.

    The range splits into complete subtrees of descending size (the set bits of
    ``end - start``); folding them right to left gives the RFC 6962 hash.
    """
    parts: list[bytes] = []
    pos, width = start, end - start
    for level in range(width.bit_length() - 1, -1, -1):
        if width >> level & 1:
            parts.append(reader.get(level, pos >> level))
            pos += 1 << level
    result = parts[-1]
    for part in reversed(parts[:-1]):
        result = node_hash(part, result)
    return result


def root_from_store(size: int, reader: TreeHashReader) -> bytes:
    """Root hash of the first ``size`` leaves, from at most log2(size)+1 reads."""
    _check_size("size", size)
    if size == 0:
        return EMPTY_ROOT
    return _range_hash(0, size, reader)


def _node_path(level: int, index: int, size: int, reader: TreeHashReader) -> list[bytes]:
    """Sibling hashes, bottom-up, from node ``(level, index)`` to the root of tree ``size``."""
    path: list[bytes] = []
    while (1 << level) < size:
        sibling_start = (index ^ 1) << level
        if sibling_start < size:
            sibling_end = min(sibling_start + (1 << level), size)
            path.append(_range_hash(sibling_start, sibling_end, reader))
        level, index = level + 1, index >> 1
    return path


def inclusion_proof(index: int, size: int, reader: TreeHashReader) -> list[bytes]:
    """RFC 9162 inclusion path of leaf ``index`` in the tree of ``size`` leaves."""
    _check_size("index", index)
    _check_size("size", size)
    if index >= size:
        raise ValidationError(f"leaf index must be < tree size {size}, got {index}")
    return _node_path(0, index, size, reader)


def consistency_proof(old: int, new: int, reader: TreeHashReader) -> list[bytes]:
    """RFC 9162 consistency proof from tree size ``old`` to ``new``.

    Empty when ``old`` is 0 or equals ``new``. Otherwise: the last complete
    subtree of the old tree (omitted when ``old`` is a power of two, since it
    is then the old root), then that subtree's inclusion path in the new tree.
    """
    _check_size("old size", old)
    _check_size("new size", new)
    if old > new:
        raise ValidationError(f"old size must be <= new size {new}, got {old}")
    if old in (0, new):
        return []
    level = (old & -old).bit_length() - 1
    index = (old >> level) - 1
    seed = [] if old & (old - 1) == 0 else [reader.get(level, index)]
    return seed + _node_path(level, index, new, reader)


class MemoryTree:
    """In-memory dense store: a ``TreeHashReader`` that can append, for tests and tools."""

    __slots__ = ("_levels",)

    def __init__(self) -> None:
        self._levels: list[list[bytes]] = []

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return len(self._levels[0]) if self._levels else 0

    def get(self, level: int, index: int) -> bytes:
        """Stored complete-subtree hash; ``NotFoundError`` if not (yet) complete."""
        if 0 <= level < len(self._levels) and 0 <= index < len(self._levels[level]):
            return self._levels[level][index]
        raise NotFoundError(f"no complete subtree at level {level} index {index}")

    def append_hash(self, leaf: bytes) -> int:
        """Append a 32-byte leaf hash; return its leaf index."""
        index = self.size
        for level, position, value in append_hashes(index, leaf, self):
            if level == len(self._levels):
                self._levels.append([])
            if position != len(self._levels[level]):  # pragma: no cover - invariant
                raise AssertionError("dense store out of order")
            self._levels[level].append(value)
        return index

    def append(self, data: bytes) -> int:
        """Append leaf data (hashed with ``leaf_hash``); return its leaf index."""
        return self.append_hash(leaf_hash(data))

    def root(self, size: int | None = None) -> bytes:
        """Root of the first ``size`` leaves (default: all)."""
        return root_from_store(self.size if size is None else size, self)


# --- verification ------------------------------------------------------------


def _inclusion_length(index: int, size: int) -> int:
    """Number of hashes in the inclusion path of ``index`` in a tree of ``size``."""
    inner = (index ^ (size - 1)).bit_length()
    border = (index >> inner).bit_count()
    return inner + border


def _check_proof(kind: str, proof: Sequence[bytes], expected: int) -> None:
    if len(proof) != expected:
        raise ValidationError(f"{kind} proof must have {expected} hashes, got {len(proof)}")
    for i, node in enumerate(proof):
        _check_hash(f"{kind} proof hash [{i}]", node)


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree ``(size, root)`` (RFC 9162 2.1.3.2).

    Raises ``ValidationError`` on any malformed input or mismatch.
    """
    _check_hash("leaf hash", leaf_hash)
    _check_hash("root", root)
    _check_size("index", index)
    _check_size("size", size)
    if size == 0:
        raise ValidationError("tree size must be > 0 for an inclusion proof, got 0")
    if index >= size:
        raise ValidationError(f"leaf index must be < tree size {size}, got {index}")
    _check_proof("inclusion", proof, _inclusion_length(index, size))

    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if sn == 0:  # pragma: no cover - excluded by the length check
            raise ValidationError("inclusion proof has more hashes than the tree has levels")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:  # pragma: no cover - excluded by the length check
        raise ValidationError("inclusion proof has fewer hashes than the tree has levels")
    if r != root:
        raise ValidationError(
            f"inclusion proof for leaf {index} of {size} gives root {r.hex()}, "
            f"expected {root.hex()}"
        )


def _consistency_length(size1: int, size2: int) -> int:
    """Number of hashes in a consistency proof, for ``0 < size1 < size2``."""
    level = (size1 & -size1).bit_length() - 1
    index, last = (size1 - 1) >> level, (size2 - 1) >> level
    seed = 0 if size1 & (size1 - 1) == 0 else 1
    return seed + _inclusion_length(index, last + 1)


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Check that tree ``(size2, root2)`` extends ``(size1, root1)`` (RFC 9162 2.1.4.2).

    Equal sizes need an empty proof and equal roots; ``size1 == 0`` needs an
    empty proof and ``root1 == EMPTY_ROOT``. Raises ``ValidationError`` otherwise.
    """
    _check_hash("root1", root1)
    _check_hash("root2", root2)
    _check_size("size1", size1)
    _check_size("size2", size2)
    if size1 > size2:
        raise ValidationError(f"size1 must be <= size2 {size2}, got {size1}")
    if size1 in (0, size2):
        _check_proof("consistency", proof, 0)
        if size1 == 0 and root1 != EMPTY_ROOT:
            raise ValidationError(
                f"root1 of an empty tree must be {EMPTY_ROOT.hex()}, got {root1.hex()}"
            )
        if size1 == size2 and root1 != root2:
            raise ValidationError(
                f"equal sizes {size1} need equal roots, got root1 {root1.hex()} "
                f"and root2 {root2.hex()}"
            )
        return
    _check_proof("consistency", proof, _consistency_length(size1, size2))

    path = list(proof)
    if size1 & (size1 - 1) == 0:
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:  # pragma: no cover - excluded by the length check
            raise ValidationError("consistency proof has more hashes than the tree has levels")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:  # pragma: no cover - excluded by the length check
        raise ValidationError("consistency proof has fewer hashes than the tree has levels")
    if fr != root1:
        raise ValidationError(
            f"consistency proof {size1}->{size2} gives root1 {fr.hex()}, expected {root1.hex()}"
        )
    if sr != root2:
        raise ValidationError(
            f"consistency proof {size1}->{size2} gives root2 {sr.hex()}, expected {root2.hex()}"
        )
