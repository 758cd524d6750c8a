"""Property tests: the PDQ index answers exactly what a brute-force scan answers.

Stores mix random hashes, clusters (noisy copies of a few centres) and
planted near-duplicates of stored hashes at distances 0..40, under
interleaved adds, bulk adds, removes and compactions. Small buffer limits
push items through the merge path, and ``scan_fraction`` forces the
multi-index probe path (``inf``), the linear scan (``0``) or lets the
index choose.
"""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    precondition,
    rule,
)

from node.errors import ConflictError, NotFoundError, ValidationError
from node.match.pdq_index import MAX_RADIUS, PdqIndex, brute_force

MAX_FLIP = 40
SETTINGS = settings(max_examples=60, deadline=None)

radii = st.integers(0, MAX_RADIUS)
scan_fractions = st.sampled_from([0.0, 0.3, math.inf])
buffer_limits = st.sampled_from([1, 2, 5, 16, None])


def flip(h: bytes, rnd: random.Random, k: int) -> bytes:
    """``h`` with ``k`` distinct bits flipped: a hash at distance exactly ``k``."""
    value = int.from_bytes(h, "big")
    for bit in rnd.sample(range(256), k):
        value ^= 1 << bit
    return value.to_bytes(32, "big")


def random_hash(rnd: random.Random) -> bytes:
    return rnd.getrandbits(256).to_bytes(32, "big")


@st.composite
def stores(draw: st.DrawFn, max_size: int = 120) -> tuple[list[bytes], list[bytes]]:
    """(centres, hashes): random, clustered and planted near-duplicate hashes."""
    rnd = draw(st.randoms(use_true_random=False))
    centres = [random_hash(rnd) for _ in range(draw(st.integers(1, 4)))]
    hashes: list[bytes] = []
    for kind in draw(st.lists(st.sampled_from("rcp"), max_size=max_size)):
        if kind == "c":
            hashes.append(flip(rnd.choice(centres), rnd, rnd.randint(0, MAX_FLIP)))
        elif kind == "p" and hashes:
            hashes.append(flip(rnd.choice(hashes), rnd, rnd.randint(0, MAX_FLIP)))
        else:
            hashes.append(random_hash(rnd))
    return centres, hashes


def queries_for(rnd: random.Random, centres: list[bytes], hashes: list[bytes]) -> list[bytes]:
    out = [flip(rnd.choice(centres), rnd, rnd.randint(0, MAX_FLIP)) for _ in range(4)]
    out += [flip(rnd.choice(hashes), rnd, rnd.randint(0, MAX_FLIP)) for _ in range(4) if hashes]
    out.append(random_hash(rnd))
    return out


def check(index: PdqIndex, model: dict[int, bytes], queries: list[bytes], radius: int) -> None:
    expected = [brute_force(model, q, radius) for q in queries]
    assert index.search_batch(queries, radius) == expected
    for q, want in zip(queries, expected, strict=True):
        assert index.search(q, radius) == want
    assert len(index) == len(model)


@SETTINGS
@given(
    store=stores(),
    radius=radii,
    scan_fraction=scan_fractions,
    buffer_limit=buffer_limits,
    bulk=st.booleans(),
    rnd=st.randoms(use_true_random=False),
)
def test_matches_brute_force(
    store: tuple[list[bytes], list[bytes]],
    radius: int,
    scan_fraction: float,
    buffer_limit: int | None,
    bulk: bool,
    rnd: random.Random,
) -> None:
    centres, hashes = store
    index = PdqIndex(buffer_limit=buffer_limit, scan_fraction=scan_fraction)
    ids = [rnd.randrange(1 << 40) * len(hashes) + k for k in range(len(hashes))]
    if bulk:
        index.add_many(ids, hashes)
    else:
        for i, h in zip(ids, hashes, strict=True):
            index.add(i, h)
    check(index, dict(zip(ids, hashes, strict=True)), queries_for(rnd, centres, hashes), radius)


class IndexMachine(RuleBasedStateMachine):
    """Interleaved adds, bulk adds, removes and compactions against a dict model."""

    items = Bundle("items")

    def __init__(self) -> None:
        super().__init__()
        self.model: dict[int, bytes] = {}
        self.index = PdqIndex()
        self.next_id = 0
        self.rnd = random.Random(0)
        self.centres: list[bytes] = []

    @initialize(
        buffer_limit=buffer_limits,
        scan_fraction=scan_fractions,
        seed=st.integers(0, 2**32),
    )
    def setup(self, buffer_limit: int | None, scan_fraction: float, seed: int) -> None:
        self.index = PdqIndex(buffer_limit=buffer_limit, scan_fraction=scan_fraction)
        self.rnd = random.Random(seed)
        self.centres = [random_hash(self.rnd) for _ in range(3)]

    def _new_hash(self, kind: str, distance: int) -> bytes:
        if kind == "cluster":
            return flip(self.rnd.choice(self.centres), self.rnd, distance)
        if kind == "planted" and self.model:
            return flip(self.rnd.choice(list(self.model.values())), self.rnd, distance)
        return random_hash(self.rnd)

    def _fresh_id(self) -> int:
        self.next_id += 1 + self.rnd.randrange(3)
        return self.next_id

    @rule(
        target=items,
        kind=st.sampled_from(["cluster", "planted", "random"]),
        distance=st.integers(0, MAX_FLIP),
    )
    def add(self, kind: str, distance: int) -> int:
        item, h = self._fresh_id(), self._new_hash(kind, distance)
        self.index.add(item, h)
        self.model[item] = h
        return item

    @rule(
        kinds=st.lists(st.sampled_from(["cluster", "planted", "random"]), max_size=30),
        distance=st.integers(0, MAX_FLIP),
    )
    def add_many(self, kinds: list[str], distance: int) -> None:
        batch = {self._fresh_id(): self._new_hash(k, distance) for k in kinds}
        self.index.add_many(list(batch), list(batch.values()))
        self.model.update(batch)

    @rule(item=consumes(items))
    def remove(self, item: int) -> None:
        self.index.remove(item)
        del self.model[item]
        assert item not in self.index

    @rule(item=items)
    def re_add(self, item: int) -> None:
        h = self.model[item]
        self.index.add(item, h)  # the same pair again: a no-op
        with pytest.raises(ConflictError):
            self.index.add(item, flip(h, self.rnd, 1))

    @rule()
    def remove_unknown(self) -> None:
        with pytest.raises(NotFoundError):
            self.index.remove(self.next_id + 1)

    @rule()
    def compact(self) -> None:
        self.index.compact()

    @precondition(lambda self: bool(self.model))
    @rule(radius=radii)
    def search(self, radius: int) -> None:
        queries = queries_for(self.rnd, self.centres, [*self.model.values()])
        check(self.index, self.model, queries, radius)

    @invariant()
    def same_size(self) -> None:
        assert len(self.index) == len(self.model)


TestIndexMachine = IndexMachine.TestCase
TestIndexMachine.settings = settings(max_examples=40, stateful_step_count=40, deadline=None)


@pytest.mark.parametrize("scan_fraction", [0.3, math.inf])
def test_larger_store_through_merges_and_purges(scan_fraction: float) -> None:
    """Thousands of hashes through the numpy bulk path, merges and purges."""
    rnd = random.Random(7)
    centres = [random_hash(rnd) for _ in range(5)]
    hashes = [random_hash(rnd) for _ in range(3000)]
    hashes += [flip(rnd.choice(centres), rnd, rnd.randint(0, MAX_FLIP)) for _ in range(1000)]
    hashes += [flip(rnd.choice(hashes), rnd, rnd.randint(0, MAX_FLIP)) for _ in range(1000)]
    model = dict(enumerate(hashes))
    index = PdqIndex(scan_fraction=scan_fraction)
    index.add_many(list(model)[:3500], hashes[:3500])
    for i in range(3500, 5000):  # crosses the default buffer limit (1024): one merge
        index.add(i, hashes[i])
    for i in range(0, 5000, 3):  # over 1024 dead rows: an automatic purge
        index.remove(i)
        del model[i]
    # near copies of uniform hashes: matches mostly found through one table only
    queries = [flip(hashes[k], rnd, rnd.randint(8, 36)) for k in range(1, 3000, 97)]
    queries += queries_for(rnd, centres, hashes)
    for radius in (0, 10, 31, 47, 63):
        check(index, model, queries, radius)
    for i in range(1, 5000, 3):
        index.remove(i)
        del model[i]
    index.compact()  # an explicit purge
    for radius in (16, 31, 40):
        check(index, model, queries, radius)
    assert index.bytes_per_hash() > 100


# ---------------------------------------------------------------- bad input

BAD_ADDS: list[tuple[Any, Any, type[Exception], str]] = [
    (1, b"\x00" * 31, ValidationError, "31 bytes"),
    (1, b"\x00" * 33, ValidationError, "33 bytes"),
    (1, "00" * 32, ValidationError, "must be bytes"),
    (-1, bytes(32), ValidationError, "0..2\\*\\*63-1"),
    (1 << 63, bytes(32), ValidationError, "0..2\\*\\*63-1"),
    (True, bytes(32), ValidationError, "must be an int"),
    ("1", bytes(32), ValidationError, "must be an int"),
]


@pytest.mark.parametrize(("item", "value", "error", "message"), BAD_ADDS)
def test_bad_adds_are_refused(item: Any, value: Any, error: type[Exception], message: str) -> None:
    index = PdqIndex()
    with pytest.raises(error, match=message):
        index.add(item, value)
    with pytest.raises(error, match=message):
        index.add_many([item], [value])
    assert len(index) == 0


@pytest.mark.parametrize("radius", [-1, MAX_RADIUS + 1, 256, True, 31.0])
def test_bad_radius_is_refused(radius: Any) -> None:
    index = PdqIndex()
    index.add(1, bytes(32))
    with pytest.raises(ValidationError, match="radius"):
        index.search(bytes(32), radius)
    with pytest.raises(ValidationError, match="radius"):
        index.search_batch([bytes(32)], radius)


def test_add_many_is_all_or_nothing() -> None:
    index = PdqIndex(buffer_limit=1)
    index.add(5, bytes(32))
    h = b"\x01" * 32
    with pytest.raises(ValidationError, match="repeat"):
        index.add_many([1, 2, 1], [h, h, h])
    with pytest.raises(ValidationError, match="2 item ids for 1 hashes"):
        index.add_many([1, 2], [h])
    with pytest.raises(ConflictError, match="item 5"):
        index.add_many([1, 5], [h, h])
    with pytest.raises(ValidationError, match="shape"):
        index.add_many(np.array([1]), np.zeros((1, 31), dtype=np.uint8))
    assert len(index) == 1
    index.add_many([1, 5], [h, bytes(32)])  # 5 is already there with that hash: skipped
    assert len(index) == 2
    assert index.search(h, 0) == [(1, 0)]


def test_remove_unknown_is_not_found() -> None:
    index = PdqIndex()
    with pytest.raises(NotFoundError, match="item 3"):
        index.remove(3)


def test_complement_is_at_distance_256_not_0() -> None:
    for scan_fraction in (0.0, math.inf):
        index = PdqIndex(buffer_limit=1, scan_fraction=scan_fraction)
        index.add(1, b"\xff" * 32)
        index.add(2, b"\xfe" + b"\xff" * 31)
        assert index.search(bytes(32), MAX_RADIUS) == []
        assert index.search_batch([bytes(32)], MAX_RADIUS) == [[]]
        assert index.search(b"\xff" * 32, 0) == [(1, 0)]
