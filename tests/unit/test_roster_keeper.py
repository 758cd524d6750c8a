"""The node's roster keeper: anchor, history in LMDB, the file copy, refusals."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from node.core.roster import SignedRoster, dumps_file, loads_file
from node.errors import ConflictError, ProvenanceError, ValidationError
from node.rosters import RosterKeeper
from node.store.lmdb_store import LmdbStore
from tests.helpers import FAR_FUTURE_MS, GOVERNANCE, genesis, member, sign

NOW = 1_700_000_000_000


def _next(prev: SignedRoster, *added: str, expires_ms: int = FAR_FUTURE_MS) -> SignedRoster:
    r = prev.roster.next_draft(expires_ms)
    for name in added:
        r = r.with_member(member(name))
    return sign(SignedRoster.draft(r), GOVERNANCE[:1])


def _keeper(tmp_path: Path, store: LmdbStore) -> RosterKeeper:
    return RosterKeeper(store, tmp_path / "roster.json", own_id="a.example", clock=lambda: NOW)


def test_anchor_then_chain_is_stored_and_survives_reopen(tmp_path: Path) -> None:
    v1 = genesis([member("a.example")])
    v2 = _next(v1, "b.example")
    v3 = _next(v2, "c.example")
    (tmp_path / "roster.json").write_text(dumps_file(v1))
    store = LmdbStore(tmp_path / "db")
    keeper = _keeper(tmp_path, store)
    adopted: list[int] = []
    keeper.on_adopt(lambda s: adopted.append(s.version))
    assert keeper.version == 1
    update = keeper.offer([v2, v3])
    assert [s.version for s in update.adopted] == [2, 3] and adopted == [3]
    assert keeper.member("c.example").id == "c.example"
    assert loads_file((tmp_path / "roster.json").read_text()) == v3  # the file follows
    assert [s.version for s in keeper.history_after(1)] == [2, 3]
    store.close()

    # Reopened with an older file: LMDB's history wins and the file is rewritten.
    (tmp_path / "roster.json").write_text(dumps_file(v1))
    store = LmdbStore(tmp_path / "db")
    again = _keeper(tmp_path, store)
    assert again.version == 3
    assert [s.version for s in again.history_after(0)] == [1, 2, 3]
    assert loads_file((tmp_path / "roster.json").read_text()) == v3
    store.close()


def test_a_newer_file_is_adopted_at_start_if_it_chains(tmp_path: Path) -> None:
    v1 = genesis([member("a.example")])
    v2 = _next(v1, "b.example")
    (tmp_path / "roster.json").write_text(dumps_file(v1))
    store = LmdbStore(tmp_path / "db")
    _keeper(tmp_path, store)
    store.close()
    (tmp_path / "roster.json").write_text(dumps_file(v2))  # `roster publish` to a stopped node
    store = LmdbStore(tmp_path / "db")
    assert _keeper(tmp_path, store).version == 2
    store.close()


def test_refusals_change_nothing(tmp_path: Path) -> None:
    v1 = genesis([member("a.example")])
    v2 = _next(v1, "b.example")
    (tmp_path / "roster.json").write_text(dumps_file(v2))
    store = LmdbStore(tmp_path / "db")
    keeper = RosterKeeper(store, tmp_path / "roster.json", own_id="a.example", clock=lambda: NOW)
    unsigned = SignedRoster.draft(v2.roster.next_draft(FAR_FUTURE_MS))
    with pytest.raises(ProvenanceError, match="signed by 0/1 governance keys of version 2"):
        keeper.offer([unsigned])
    with pytest.raises(ProvenanceError, match="rollback refused: roster version 1"):
        keeper.offer([v1])
    fork = sign(
        SignedRoster.draft(dataclasses.replace(v2.roster, expires_ms=5 * NOW)), GOVERNANCE[:1]
    )
    with pytest.raises(ConflictError):
        keeper.offer([fork])
    assert keeper.version == 2
    assert [s.version for s in keeper.history_after(0)] == [2]  # the anchor, nothing else
    store.close()


def test_no_roster_or_a_bad_anchor_is_refused_at_start(tmp_path: Path) -> None:
    store = LmdbStore(tmp_path / "db")
    with pytest.raises(ValidationError, match=r"no roster: .* is missing"):
        _keeper(tmp_path, store)
    expired = genesis([member("a.example")], expires_ms=NOW - 1)
    (tmp_path / "roster.json").write_text(dumps_file(expired))
    with pytest.raises(ProvenanceError) as info:
        _keeper(tmp_path, store)
    assert "cannot be the trust anchor: roster version 1 expired at" in str(info.value)
    assert store.latest_roster() is None
    store.close()
