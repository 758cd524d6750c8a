"""Property tests: dense-store proofs agree with the recursive RFC 6962 oracle."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.core.merkle import (
    EMPTY_ROOT,
    MemoryTree,
    append_hashes,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_from_store,
    root_of,
    verify_consistency,
    verify_inclusion,
)
from node.errors import ValidationError

MAX_SIZE = 70
SETTINGS = settings(max_examples=60, deadline=None)


ALL_LEAVES = [leaf_hash(i.to_bytes(4, "big")) for i in range(2 * MAX_SIZE + 1)]


def build(size: int) -> tuple[MemoryTree, list[bytes]]:
    tree = MemoryTree()
    hashes = ALL_LEAVES[:size]
    for h in hashes:
        tree.append_hash(h)
    return tree, hashes


class CountingReader:
    """Wraps a tree and counts reads, to check the O(log n) claim."""

    def __init__(self, tree: MemoryTree) -> None:
        self.tree, self.reads = tree, 0

    def get(self, level: int, index: int) -> bytes:
        self.reads += 1
        return self.tree.get(level, index)


def test_known_hashes() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert leaf_hash(b"").hex() == (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    )
    assert root_of([]) == EMPTY_ROOT
    assert MemoryTree().root() == EMPTY_ROOT


@SETTINGS
@given(st.lists(st.binary(max_size=8), max_size=MAX_SIZE))
def test_append_roots_match_oracle(leaves: list[bytes]) -> None:
    tree = MemoryTree()
    hashes: list[bytes] = []
    for data in leaves:
        hashes.append(leaf_hash(data))
        assert tree.append(data) == len(hashes) - 1
        assert tree.root() == root_of(hashes)
    for size in range(len(hashes) + 1):
        assert root_from_store(size, tree) == root_of(hashes[:size])


def test_append_hashes_records() -> None:
    tree, _ = build(7)
    h = leaf_hash(b"x")
    records = append_hashes(7, h, tree)
    assert [(lvl, idx) for lvl, idx, _ in records] == [(0, 7), (1, 3), (2, 1), (3, 0)]
    assert records[-1][2] == root_of([*(leaf_hash(i.to_bytes(4, "big")) for i in range(7)), h])


@SETTINGS
@given(st.integers(1, MAX_SIZE))
def test_every_inclusion_proof_verifies(size: int) -> None:
    tree, hashes = build(size)
    root = root_of(hashes)
    for index in range(size):
        reader = CountingReader(tree)
        proof = inclusion_proof(index, size, reader)
        assert reader.reads <= 2 * size.bit_length() + 1
        verify_inclusion(hashes[index], index, size, proof, root)


@SETTINGS
@given(st.integers(0, MAX_SIZE))
def test_every_consistency_proof_verifies(size: int) -> None:
    tree, hashes = build(size)
    for old in range(size + 1):
        reader = CountingReader(tree)
        proof = consistency_proof(old, size, reader)
        assert reader.reads <= 2 * size.bit_length() + 2
        verify_consistency(old, size, proof, root_of(hashes[:old]), root_of(hashes))


def flip(h: bytes, bit: int) -> bytes:
    b = bytearray(h)
    b[bit // 8 % len(b)] ^= 1 << (bit % 8)
    return bytes(b)


Mutation = Callable[[int, int, list[bytes], bytes, bytes], tuple[int, int, list[bytes], bytes]]


@SETTINGS
@given(st.data())
def test_mutated_inclusion_fails(data: st.DataObject) -> None:
    size = data.draw(st.integers(1, MAX_SIZE), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    tree, hashes = build(size)
    proof, root, leaf = inclusion_proof(index, size, tree), root_of(hashes), hashes[index]
    choices = ["index", "size", "root", "leaf", "add"]
    if proof:
        choices += ["flip", "drop"]
    kind = data.draw(st.sampled_from(choices), label="mutation")
    bit = data.draw(st.integers(0, 255), label="bit")
    if kind == "flip":
        i = data.draw(st.integers(0, len(proof) - 1))
        proof[i] = flip(proof[i], bit)
    elif kind == "drop":
        del proof[data.draw(st.integers(0, len(proof) - 1))]
    elif kind == "add":
        proof.insert(data.draw(st.integers(0, len(proof))), leaf_hash(b"extra"))
    elif kind == "index":
        index = data.draw(st.integers(0, 2 * MAX_SIZE).filter(lambda i: i != index))
    elif kind == "size":  # paired with the true root of that size: see test below
        size = data.draw(st.integers(0, 2 * MAX_SIZE).filter(lambda s: s != size))
        root = root_of(ALL_LEAVES[:size])
    elif kind == "root":
        root = flip(root, bit)
    else:
        leaf = flip(leaf, bit)
    with pytest.raises(ValidationError):
        verify_inclusion(leaf, index, size, proof, root)


@SETTINGS
@given(st.data())
def test_mutated_consistency_fails(data: st.DataObject) -> None:
    new = data.draw(st.integers(1, MAX_SIZE), label="new")
    old = data.draw(st.integers(0, new), label="old")
    tree, hashes = build(new)
    proof = consistency_proof(old, new, tree)
    root1, root2 = root_of(hashes[:old]), root_of(hashes)
    choices = ["size1", "root1", "add"]
    if old > 0:  # anything extends the empty tree: size2 and root2 are then unconstrained
        choices += ["size2", "root2"]
    if proof:
        choices += ["flip", "drop"]
    kind = data.draw(st.sampled_from(choices), label="mutation")
    bit = data.draw(st.integers(0, 255), label="bit")
    if kind == "flip":
        i = data.draw(st.integers(0, len(proof) - 1))
        proof[i] = flip(proof[i], bit)
    elif kind == "drop":
        del proof[data.draw(st.integers(0, len(proof) - 1))]
    elif kind == "add":
        proof.insert(data.draw(st.integers(0, len(proof))), leaf_hash(b"extra"))
    elif kind == "size1":
        old = data.draw(st.integers(0, 2 * MAX_SIZE).filter(lambda s: s != old))
        root1 = root_of(ALL_LEAVES[:old])
    elif kind == "size2":
        new = data.draw(st.integers(0, 2 * MAX_SIZE).filter(lambda s: s != new))
        root2 = root_of(ALL_LEAVES[:new])
    elif kind == "root1":
        root1 = flip(root1, bit)
    else:
        root2 = flip(root2, bit)
    if kind == "size1" and not proof and old in (0, new):  # true, and its proof is empty
        verify_consistency(old, new, proof, root1, root2)
        return
    with pytest.raises(ValidationError):
        verify_consistency(old, new, proof, root1, root2)


def test_size_is_bound_by_the_root_not_the_proof() -> None:
    """RFC 9162 proofs hash no sizes: leaf 0's path has one shape in trees of 65 and 66
    leaves, so (66, root of 65) verifies. A signed checkpoint binds size to root."""
    tree, hashes = build(65)
    proof = inclusion_proof(0, 65, tree)
    verify_inclusion(hashes[0], 0, 66, proof, root_of(hashes))
    with pytest.raises(ValidationError, match="gives root"):
        verify_inclusion(hashes[0], 0, 66, proof, root_of(ALL_LEAVES[:66]))


@pytest.mark.parametrize(
    ("leaf", "index", "size", "proof", "root", "message"),
    [
        (b"x" * 31, 0, 1, [], b"r" * 32, "leaf hash must be 32 bytes, got 31"),
        (b"x" * 32, 0, 1, [], b"r" * 33, "root must be 32 bytes, got 33"),
        (b"x" * 32, 0, 0, [], b"r" * 32, "tree size must be > 0"),
        (b"x" * 32, 3, 3, [b"p" * 32] * 2, b"r" * 32, "leaf index must be < tree size 3, got 3"),
        (b"x" * 32, -1, 3, [], b"r" * 32, "index must be a non-negative integer"),
        (b"x" * 32, 0, 4, [b"p" * 32], b"r" * 32, "must have 2 hashes, got 1"),
        (b"x" * 32, 0, 2, [b"p" * 31], b"r" * 32, "hash [0] must be 32 bytes, got 31"),
        (b"x" * 32, 0, 1, [], b"r" * 32, "gives root"),
    ],
)
def test_inclusion_messages(
    leaf: bytes, index: int, size: int, proof: list[bytes], root: bytes, message: str
) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        verify_inclusion(leaf, index, size, proof, root)


@pytest.mark.parametrize(
    ("size1", "size2", "proof", "root1", "root2", "message"),
    [
        (3, 2, [], b"a" * 32, b"b" * 32, "size1 must be <= size2 2, got 3"),
        (2, 2, [b"p" * 32], b"a" * 32, b"a" * 32, "must have 0 hashes, got 1"),
        (2, 2, [], b"a" * 32, b"b" * 32, "equal sizes 2 need equal roots"),
        (0, 5, [b"p" * 32], EMPTY_ROOT, b"b" * 32, "must have 0 hashes, got 1"),
        (0, 5, [], b"a" * 32, b"b" * 32, "root1 of an empty tree"),
        (1, 8, [], b"a" * 32, b"b" * 32, "must have 3 hashes, got 0"),
        (1, 2, [b"p" * 32], b"", b"b" * 32, "root1 must be 32 bytes, got 0"),
    ],
)
def test_consistency_messages(
    size1: int, size2: int, proof: list[bytes], root1: bytes, root2: bytes, message: str
) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        verify_consistency(size1, size2, proof, root1, root2)


def test_proof_requests_out_of_range() -> None:
    tree, _ = build(4)
    with pytest.raises(ValidationError, match="leaf index must be < tree size 4, got 4"):
        inclusion_proof(4, 4, tree)
    with pytest.raises(ValidationError, match="old size must be <= new size 3, got 4"):
        consistency_proof(4, 3, tree)
    with pytest.raises(ValidationError, match="leaf hash must be 32 bytes"):
        tree.append_hash(b"short")
