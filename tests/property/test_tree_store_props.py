"""Property tests: tree hashes stored in LMDB give the RFC 6962 roots and proofs."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.core import merkle
from node.errors import NotFoundError, ValidationError
from node.store.lmdb_store import LmdbStore
from tests.helpers import Origin

SETTINGS = settings(max_examples=25, deadline=None)
_names = (f"o{i}.example" for i in itertools.count())


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LmdbStore]:
    s = LmdbStore(Path(tmp_path_factory.mktemp("tree")) / "db")
    yield s
    s.close()


def _fill(store: LmdbStore, cuts: list[int], size: int) -> tuple[str, list[bytes]]:
    """A fresh origin with ``size`` entries, ingested in batches cut at ``cuts``."""
    origin = Origin(next(_names))
    entries = [origin.next() for _ in range(size)]
    bounds = sorted({0, size, *(c % (size + 1) for c in cuts)})
    for lo, hi in itertools.pairwise(bounds):
        assert store.ingest(entries[lo:hi], atomic=True, now_ms=0).errors == []
    return origin.name, [merkle.leaf_hash(e.to_bytes()) for e in entries]


@SETTINGS
@given(size=st.integers(1, 40), cuts=st.lists(st.integers(0, 40), max_size=5))
def test_stored_tree_roots_and_proofs_match_the_oracle(
    store: LmdbStore, size: int, cuts: list[int]
) -> None:
    origin, leaves = _fill(store, cuts, size)
    tables = store.tlog
    assert tables.size(origin) == size
    roots = [merkle.root_of(leaves[:n]) for n in range(size + 1)]
    for n in range(1, size + 1):
        assert tables.root(origin, n) == roots[n]
        for i in range(n):
            proof = tables.inclusion_proof(origin, i, n)
            merkle.verify_inclusion(leaves[i], i, n, proof, roots[n])
        for m in range(n + 1):
            merkle.verify_consistency(
                m, n, tables.consistency_proof(origin, m, n), roots[m], roots[n]
            )


@SETTINGS
@given(
    size=st.integers(2, 40),
    data=st.data(),
)
def test_any_single_mutation_of_a_stored_proof_fails(
    store: LmdbStore, size: int, data: st.DataObject
) -> None:
    origin, leaves = _fill(store, [], size)
    index = data.draw(st.integers(0, size - 1))
    n = data.draw(st.integers(index + 1, size))
    proof = store.tlog.inclusion_proof(origin, index, n)
    root = store.tlog.root(origin, n)
    what = data.draw(st.sampled_from(["hash", "index", "size", "root", "drop", "extra"]))
    args: list = [leaves[index], index, n, list(proof), root]  # type: ignore[type-arg]
    if what == "hash":
        if not proof:
            args[0] = bytes(b ^ 1 for b in leaves[index][:1]) + leaves[index][1:]
        else:
            k = data.draw(st.integers(0, len(proof) - 1))
            bit = data.draw(st.integers(0, 255))
            node = bytearray(proof[k])
            node[bit // 8] ^= 1 << (bit % 8)
            args[3][k] = bytes(node)
    elif what == "index":
        args[1] = data.draw(st.integers(0, n).filter(lambda i: i != index))
    elif what == "size":  # with the true root of that size: a checkpoint binds the two
        other = data.draw(st.integers(index + 1, size))
        if other == n:
            return
        args[2], args[4] = other, store.tlog.root(origin, other)
        if len(store.tlog.inclusion_proof(origin, index, other)) == len(proof):
            # Same path shape: RFC 9162 proofs do not commit to the size
            # (tests/property/test_merkle_props.py); the root must differ.
            assert args[4] != root
    elif what == "root":
        args[4] = merkle.leaf_hash(root)
    elif what == "drop":
        if not proof:
            return
        args[3] = proof[:-1]
    else:
        args[3] = [*proof, root]
    with pytest.raises(ValidationError):
        merkle.verify_inclusion(*args)


def test_proofs_beyond_the_stored_tree_are_not_found(store: LmdbStore) -> None:
    origin, _ = _fill(store, [], 3)
    with pytest.raises(NotFoundError, match=r"holds 3 entries of .*, asked for tree size 4"):
        store.tlog.inclusion_proof(origin, 0, 4)
    with pytest.raises(NotFoundError, match="asked for tree size 9"):
        store.tlog.consistency_proof(origin, 1, 9)
    with pytest.raises(ValidationError, match="leaf index must be < tree size 3, got 3"):
        store.tlog.inclusion_proof(origin, 3, 3)


@SETTINGS
@given(
    sizes=st.lists(st.integers(1, 24), min_size=2, max_size=4),
    chunk=st.integers(1, 9),
    cut=st.integers(1, 60),
)
def test_interleaved_origins_in_one_batch_get_their_own_trees(
    store: LmdbStore, sizes: list[int], chunk: int, cut: int
) -> None:
    """As a catch-up batch arrives: runs of ``chunk`` entries per origin in
    turn, the batches cut at ``cut`` entries (a tree append carries sibling
    hashes from batch to batch only through LMDB)."""
    origins = [Origin(next(_names)) for _ in sizes]
    chains = [[o.next() for _ in range(n)] for o, n in zip(origins, sizes, strict=True)]
    mixed = [
        e
        for start in range(0, max(sizes), chunk)
        for chain in chains
        for e in chain[start : start + chunk]
    ]
    for lo in range(0, len(mixed), cut):
        assert store.ingest(mixed[lo : lo + cut], atomic=False, now_ms=0).errors == []
    for origin, chain in zip(origins, chains, strict=True):
        leaves = [merkle.leaf_hash(e.to_bytes()) for e in chain]
        for n in range(1, len(chain) + 1):
            assert store.tlog.root(origin.name, n) == merkle.root_of(leaves[:n])
