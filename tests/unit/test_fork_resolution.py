"""Fork resolution by the roster: encoding, the pure plan, and the LMDB side
(one transaction: voided entries, truncated tree, cursors, witness state,
fork point; evidence kept; the check at the resolved size)."""

from __future__ import annotations

import dataclasses
import re
import struct
from pathlib import Path

import pytest

from node.cli import main
from node.core import evidence as ev
from node.core import merkle
from node.core.resolution import divergence_bound, plan
from node.core.roster import ForkResolution, Roster, SignedRoster, dumps_file, loads_file
from node.core.tlog import StaleSizeError, sign_checkpoint, verify_checkpoint
from node.core.trust import MembersFile
from node.errors import ConflictError, EquivocationError, ValidationError
from node.store.audit import audit
from node.store.lmdb_store import LmdbStore
from node.store.resolve import State
from tests.helpers import Origin, genesis, member, signer_for

ROGUE, X = "rogue.example", "x.example"
MEMBERS = MembersFile.of([member(ROGUE), member(X)])
ROOT = bytes(range(32))


def _roster(*resolutions: ForkResolution) -> Roster:
    return dataclasses.replace(genesis(MEMBERS).roster, resolutions=resolutions)


# -- the roster field ------------------------------------------------------------


def test_resolutions_round_trip_and_leave_format_1_alone() -> None:
    plain = genesis(MEMBERS).roster
    assert plain.encode()[4] == 1  # no resolutions: format 1, bytes as before
    resolved = _roster(ForkResolution(ROGUE, 4, ROOT), ForkResolution(X, 1, bytes(32)))
    data = resolved.encode()
    assert data[4] == 2
    assert data.startswith(b"CCR1\x02" + plain.encode()[5:])  # the same, then the section
    assert data.endswith(
        struct.pack(">H", 2)
        + bytes([len(ROGUE)])
        + ROGUE.encode()
        + struct.pack(">Q", 4)
        + ROOT
        + bytes([len(X)])
        + X.encode()
        + struct.pack(">Q", 1)
        + bytes(32)
    )
    again = Roster.decode(data)
    assert again.resolutions == resolved.resolutions
    assert again.resolution(ROGUE) == ForkResolution(ROGUE, 4, ROOT)
    assert again.without_resolution(ROGUE).resolutions == (ForkResolution(X, 1, bytes(32)),)
    # Drafting the next version carries them (until governance removes them).
    assert resolved.next_draft(plain.expires_ms).resolutions == resolved.resolutions


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: _roster(ForkResolution("stranger.example", 4, ROOT)),
            "resolution of stranger.example: no such member in roster version 1",
        ),
        (
            lambda: ForkResolution(ROGUE, 4, ROOT[:31]),
            "resolution of rogue.example: root has 31 bytes: expected 32",
        ),
        (
            lambda: ForkResolution(ROGUE, 0, ROOT),
            "resolution of rogue.example: size 0: expected 1 <= size < 2^64-1",
        ),
        (
            lambda: ForkResolution("Not An Id", 4, ROOT),
            "bad member id",
        ),
        (
            lambda: _roster(ForkResolution(ROGUE, 4, ROOT), ForkResolution(ROGUE, 5, ROOT)),
            "roster resolves the fork of rogue.example twice",
        ),
        (
            lambda: Roster.decode(
                genesis(MEMBERS).roster.encode().replace(b"CCR1\x01", b"CCR1\x02", 1) + b"\x00\x00"
            ),
            "roster format 2 needs at least one resolution (format 1 has none)",
        ),
        (
            lambda: Roster.decode(_roster(ForkResolution(ROGUE, 4, ROOT)).encode()[:-1]),
            "roster body is truncated",
        ),
    ],
    ids=["no such member", "root length", "size 0", "bad id", "twice", "empty", "truncated"],
)
def test_bad_resolutions_are_refused_exactly(make: object, message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        make()  # type: ignore[operator]


# -- the plan ----------------------------------------------------------------------


def _fork_at(s: int, same_prev: bool = True) -> tuple[list, object, object]:  # type: ignore[type-arg]
    a = Origin(ROGUE)
    common = [a.next() for _ in range(s)]
    b = Origin(ROGUE)
    b.seq, b.prev = a.seq, a.prev
    if not same_prev:
        b.prev = b"\x01" * 32
    return common, a.next(reason="A"), b.next(reason="B")


def test_plan() -> None:
    common, ea, eb = _fork_at(3)
    proof = ev.entry_fork(ea, eb)  # type: ignore[arg-type]
    assert ev.entry_fork_point(proof) == 4 and divergence_bound(proof) == 3
    tree = merkle.MemoryTree()
    for e in [*common, ea]:
        tree.append(e.to_bytes())  # type: ignore[attr-defined]
    res = ForkResolution(ROGUE, 4, tree.root(4))
    # Holds branch A: confirmed, nothing voided, the fork point goes.
    assert plan(res, 6, tree.root(4), [proof]).keep == 6  # keeps all it holds
    assert plan(res, 4, tree.root(4), [proof]).confirmed
    assert plan(res, 4, tree.root(4), [proof]).fork_point is None
    # Holds branch B: keeps the common prefix, voids from seq 3.
    losing = plan(res, 5, bytes(32), [proof])
    assert (losing.confirmed, losing.keep, losing.fork_point, losing.resolved) == (
        False,
        3,
        None,
        1,
    )
    # Holds only the prefix: keeps it, waits for the check at size 4.
    assert plan(res, 2, None, [proof]).keep == 2
    # Evidence that does not say where the histories part: keep nothing.
    _c, xa, xb = _fork_at(3, same_prev=False)
    vague = ev.entry_fork(xa, xb)  # type: ignore[arg-type]
    assert divergence_bound(vague) == 0
    assert plan(res, 5, bytes(32), [vague]).keep == 0
    # No evidence held: a short log waits, a long one on another branch is voided whole.
    assert plan(res, 2, None, []).keep == 2
    assert plan(res, 5, bytes(32), []).keep == 0
    # Evidence with a later fork point stays unresolved.
    _c2, la, lb = _fork_at(6)
    later = ev.entry_fork(la, lb)  # type: ignore[arg-type]
    assert plan(res, 4, tree.root(4), [proof, later]).fork_point == 7


def test_plan_refuses_a_resolution_below_the_fork_point() -> None:
    _common, ea, eb = _fork_at(3)
    proof = ev.entry_fork(ea, eb)  # type: ignore[arg-type]
    with pytest.raises(
        ValidationError,
        match=re.escape(
            "resolution of rogue.example names size 3, below its fork point 4: it must name "
            "the canonical history at or beyond the fork point"
        ),
    ):
        plan(ForkResolution(ROGUE, 3, ROOT), 4, None, [proof])


# -- in LMDB ---------------------------------------------------------------------


def _signed(*resolutions: ForkResolution) -> list[tuple[int, tuple[ForkResolution, ...]]]:
    return [(2, resolutions)]


def test_losing_branch_is_voided_in_one_transaction(tmp_path: Path) -> None:
    common, ea, eb = _fork_at(3)
    store = LmdbStore(tmp_path / "db")
    assert not store.ingest([*common, eb], atomic=True, now_ms=1).errors  # type: ignore[list-item]
    b = Origin(ROGUE)  # B's branch goes on: seq 4 after B's seq 3
    b.seq, b.prev = 4, eb.entry_id  # type: ignore[attr-defined]
    eb4 = b.next(reason="B again")
    assert not store.ingest([eb4], atomic=True, peer="y.example", now_ms=2).errors
    result = store.ingest([ea], atomic=False, peer="z.example", now_ms=3)  # type: ignore[list-item]
    assert isinstance(result.errors[0][1], EquivocationError)
    assert store.tlog.fork_points() == {ROGUE: 4}
    evidence_before = store.tlog.evidence()
    witness_note = "recorded below"
    tree = merkle.MemoryTree()
    for e in [*common, ea]:
        tree.append(e.to_bytes())  # type: ignore[attr-defined]
    # A witness state on the losing branch (as if this node had cosigned B at size 5).
    b_tree = merkle.MemoryTree()
    for e in [*common, eb, eb4]:
        b_tree.append(e.to_bytes())  # type: ignore[attr-defined]
    store.tlog._write(
        lambda txn: store.tlog.put_resolved_witness_state(txn, ROGUE, 5, b_tree.root(5))
    )
    del witness_note

    res = ForkResolution(ROGUE, 4, tree.root(4))
    (applied,) = store.resolutions.apply(_signed(res), 2, now_ms=10)
    assert applied.record.state is State.PENDING
    assert (applied.record.keep, applied.record.voided) == (3, 2)
    assert [e.entry_id for e in applied.voided] == [eb.entry_id, eb4.entry_id]  # type: ignore[attr-defined]
    # Out of the live tables, into `voided`; evidence untouched; fork point gone.
    assert store.head(ROGUE).next_seq == 3 and store.head(ROGUE).head_id == common[-1].entry_id
    assert store.get(eb.entry_id) is None  # type: ignore[attr-defined]
    assert store.lookup("MD5", eb.body.hash) == []  # type: ignore[attr-defined]
    assert [e.entry_id for _, e in store.resolutions.voided_entries(ROGUE)] == [
        eb.entry_id,  # type: ignore[attr-defined]
        eb4.entry_id,
    ]
    assert store.tlog.evidence() == evidence_before
    assert store.tlog.fork_points() == {}
    assert store.tlog.size(ROGUE) == 3 and store.tlog.root(ROGUE, 3) == tree.root(3)
    assert store.peer_cursors("y.example") == {ROGUE: 3}
    assert store.tlog.witnessed(ROGUE).size == 4
    assert store.tlog.witnessed(ROGUE).root == tree.root(4)
    # Applying the same resolution again (carried into the next version) does nothing.
    assert store.resolutions.apply(_signed(res), 3, now_ms=11) == []
    assert store.resolutions.applied_version() == 3

    # Re-sync: the losing entry is refused at the resolved size, the canonical one taken.
    refused = store.ingest([eb], atomic=True, now_ms=12)  # type: ignore[list-item]
    ((_, error),) = refused.errors
    assert isinstance(error, ConflictError)
    assert str(error).startswith(
        "rogue.example seq 3 does not lead to the canonical history the roster resolved its "
        "fork to: root at size 4 would be "
    )
    assert not store.ingest([ea], atomic=True, now_ms=13).errors  # type: ignore[list-item]
    a = Origin(ROGUE)
    a.seq, a.prev = 4, ea.entry_id  # type: ignore[attr-defined]
    assert not store.ingest([a.next()], atomic=True, now_ms=14).errors
    assert store.tlog.root(ROGUE, 4) == tree.root(4)
    # The witness state restarted at (4, canonical root): the canonical branch is
    # cosigned from there, the losing one is not.
    witness = signer_for(X).private_key
    key = signer_for(ROGUE).private_key
    five = verify_checkpoint(sign_checkpoint(ROGUE, 5, store.tlog.root(ROGUE, 5), key), MEMBERS, {})
    losing = verify_checkpoint(sign_checkpoint(ROGUE, 5, b_tree.root(5), key), MEMBERS, {})
    with pytest.raises(StaleSizeError, match="this witness cosigned size 4"):
        store.tlog.witness_add(
            five, old_size=5, proof=[], witness_id=X, key=witness, trust=MEMBERS, now_ms=20
        )
    with pytest.raises(ValidationError):
        store.tlog.witness_add(
            losing,
            old_size=4,
            proof=[b_tree.get(2, 0)],
            witness_id=X,
            key=witness,
            trust=MEMBERS,
            now_ms=20,
        )
    line = store.tlog.witness_add(
        five,
        old_size=4,
        proof=store.tlog.consistency_proof(ROGUE, 4, 5),
        witness_id=X,
        key=witness,
        trust=MEMBERS,
        now_ms=20_000,
    )
    assert verify_checkpoint(
        five.text + line, MEMBERS, {X: MEMBERS.member(X).checkpoint_public_key}, strict=True
    ).cosigners == (X,)
    assert store.tlog.witnessed(ROGUE).size == 5
    # Late copies of the losing branch are still evidence, but refuse nothing more.
    store.ingest([eb4], atomic=False, peer="late.example", now_ms=15)
    assert store.tlog.fork_points() == {}
    store.close()
    report = audit(tmp_path / "db", MEMBERS, {})
    assert report.faults == []
    assert (report.resolutions, report.voided) == (1, 2)


def test_a_bad_resolution_changes_nothing_and_is_recorded(tmp_path: Path) -> None:
    common, ea, eb = _fork_at(3)
    store = LmdbStore(tmp_path / "db")
    store.ingest([*common, ea], atomic=True, now_ms=1)  # type: ignore[list-item]
    store.ingest([eb], atomic=False, peer="p.example", now_ms=2)  # type: ignore[list-item]
    (applied,) = store.resolutions.apply(_signed(ForkResolution(ROGUE, 3, ROOT)), 2, now_ms=3)
    assert applied.record.state is State.REFUSED
    assert applied.record.message == (
        "resolution of rogue.example names size 3, below its fork point 4: it must name the "
        "canonical history at or beyond the fork point"
    )
    assert store.tlog.fork_points() == {ROGUE: 4}
    assert store.head(ROGUE).next_seq == 4
    assert store.resolutions.records()[ROGUE].state is State.REFUSED
    store.close()
    assert audit(tmp_path / "db", MEMBERS, {}).faults == []


def test_the_winning_branch_is_confirmed(tmp_path: Path) -> None:
    common, ea, eb = _fork_at(3)
    store = LmdbStore(tmp_path / "db")
    store.ingest([*common, ea], atomic=True, now_ms=1)  # type: ignore[list-item]
    store.ingest([eb], atomic=False, peer="p.example", now_ms=2)  # type: ignore[list-item]
    res = ForkResolution(ROGUE, 4, store.tlog.root(ROGUE, 4))
    (applied,) = store.resolutions.apply(_signed(res), 2, now_ms=3)
    assert (applied.record.state, applied.record.voided, applied.voided) == (State.DONE, 0, ())
    assert store.tlog.fork_points() == {}
    assert len(store.tlog.evidence()) == 1
    a = Origin(ROGUE)
    a.seq, a.prev = 4, ea.entry_id  # type: ignore[attr-defined]
    assert not store.ingest([a.next()], atomic=True, now_ms=4).errors
    # A new fork beyond the resolved history (two seq-5 entries on one prev) is not
    # covered: the origin is refused again from seq 6.
    other = Origin(ROGUE)
    other.seq, other.prev = a.seq, a.prev
    assert not store.ingest([a.next(reason="one")], atomic=True, now_ms=5).errors
    store.ingest([other.next(reason="two")], atomic=False, peer="p.example", now_ms=6)
    assert store.tlog.fork_points() == {ROGUE: 6}
    store.close()
    assert audit(tmp_path / "db", MEMBERS, {}).faults == []


def test_signed_roster_with_resolutions_round_trips() -> None:
    signed = SignedRoster.draft(_roster(ForkResolution(ROGUE, 4, ROOT)))
    assert SignedRoster.from_bytes(signed.to_bytes()).roster.resolutions == (
        ForkResolution(ROGUE, 4, ROOT),
    )


# -- drafting with the CLI -------------------------------------------------------


def test_resolve_fork_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "roster.json"
    path.write_text(dumps_file(genesis(MEMBERS)))
    root = bytes(range(32))
    assert (
        main(
            [
                "roster",
                "resolve-fork",
                str(path),
                "--id",
                ROGUE,
                "--size",
                "4",
                "--root",
                root.hex(),
            ]
        )
        == 0
    )
    assert "rogue.example's canonical log: size 4 root " + root.hex() in capsys.readouterr().out
    draft = loads_file(path.read_text())
    assert (draft.version, draft.roster.resolutions) == (2, (ForkResolution(ROGUE, 4, root),))
    assert main(["roster", "show", str(path)]) == 0
    assert f"fork resolution: {ROGUE}'s canonical log is size 4" in capsys.readouterr().out
    cases = [
        (["--id", "stranger.example", "--size", "4", "--root", root.hex()], "stranger.example"),
        (["--id", ROGUE, "--size", "4", "--root", "AAAA"], "--root has 3 bytes: expected 32"),
        (["--id", ROGUE, "--size", "4", "--root", "zz"], "expected 64 hex digits or base64"),
        (
            ["--id", ROGUE, "--size", "0", "--root", root.hex()],
            "resolution of rogue.example: size 0: expected 1 <= size < 2^64-1",
        ),
        (["--id", ROGUE, "--size", "4"], "resolve-fork needs --size and --root (or --drop)"),
        (["--id", X, "--drop"], "the draft resolves no fork of x.example"),
    ]
    for extra, message in cases:
        assert main(["roster", "resolve-fork", str(path), *extra]) != 0, message
        assert message in capsys.readouterr().err
    assert main(["roster", "resolve-fork", str(path), "--id", ROGUE, "--drop"]) == 0
    assert loads_file(path.read_text()).roster.resolutions == ()
