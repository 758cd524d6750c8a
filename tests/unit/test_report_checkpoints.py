"""Reports tie each origin's entries to the root its origin signed."""

from __future__ import annotations

import pytest

from node.core.merkle import MemoryTree
from node.core.report import Ledger
from node.errors import ValidationError
from tests.helpers import Origin


def _root(entries: list) -> bytes:  # type: ignore[type-arg]
    tree = MemoryTree()
    for e in entries:
        tree.append(e.to_bytes())
    return tree.root()


def test_matching_checkpoint_is_carried_in_the_coverage() -> None:
    gov = Origin("gov.example/ct")
    entries = [gov.next() for _ in range(5)]
    ledger = Ledger(entries, lambda _id: None, {"gov.example/ct": (5, _root(entries), "NOTE")})
    (coverage,) = ledger.coverage
    assert (coverage.size, coverage.root, coverage.checkpoint) == (5, _root(entries), "NOTE")


@pytest.mark.parametrize(
    ("size", "root_of"),
    [(4, 5), (5, 4)],  # wrong size; right size but another root
)
def test_entries_that_do_not_match_the_signed_checkpoint_are_refused(
    size: int, root_of: int
) -> None:
    gov = Origin("gov.example/ct")
    entries = [gov.next() for _ in range(5)]
    checkpoint = {"gov.example/ct": (size, _root(entries[:root_of]), "NOTE")}
    with pytest.raises(ValidationError) as info:
        Ledger(entries, lambda _id: None, checkpoint)
    assert str(info.value) == (
        f"origin gov.example/ct: the 5 entries read do not match its signed checkpoint "
        f"of size {size}"
    )


def test_origin_without_checkpoint_is_covered_by_its_root_alone() -> None:
    ngo = Origin("ngo.example")
    entries = [ngo.next() for _ in range(3)]
    (coverage,) = Ledger(entries, lambda _id: None, {}).coverage
    assert (coverage.size, coverage.checkpoint) == (3, "")
