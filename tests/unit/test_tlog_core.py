"""Transparency-log domain rules: checkpoints, witnesses, withholding, fork evidence."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.core import evidence as ev
from node.core import merkle
from node.core.checkpoint import NoteSignature, SignedNote
from node.core.entry import SignedEntry
from node.core.ordering import decide
from node.core.roster import Role
from node.core.tlog import (
    TlogPolicy,
    WithholdingMonitor,
    cosign,
    is_witness,
    log_name,
    member_of_log,
    merge,
    roster_policy,
    sign_checkpoint,
    verify_checkpoint,
)
from node.core.trust import MemberKind, MembersFile
from node.errors import (
    ConflictError,
    EquivocationError,
    NotFoundError,
    ProvenanceError,
    ValidationError,
)
from node.store.base import Outcome
from node.store.lmdb_store import LmdbStore
from tests.helpers import Origin, genesis, member, signer_for

GOV, NGO, P1, OBS = "gov.example/ct", "ngo.example", "platform.example", "observer.example"
READER, GONE = "reader.example", "gone.example"
MEMBERS = MembersFile.of(
    [
        member(GOV, MemberKind.GOVERNMENT),
        member(NGO, MemberKind.NGO),
        member(P1),
        member(OBS, MemberKind.OBSERVER),
        member(READER, roles=frozenset({Role.SUBMIT, Role.READ})),
        member(GONE, MemberKind.NGO, revoked=True),
    ]
)
KEYS = {w: MEMBERS.member(w).checkpoint_public_key for w in (NGO, P1)}
ROOT = merkle.leaf_hash(b"root")


def _note(size: int = 3, root: bytes = ROOT) -> str:
    return sign_checkpoint(GOV, size, root, signer_for(GOV).private_key)


def _cosign(text: str, witness: str) -> str:
    vc = verify_checkpoint(text, MEMBERS, {})
    return text + cosign(vc, witness, signer_for(witness).private_key, 1_700_000_000)


def test_log_names() -> None:
    assert log_name(GOV) == "ccnode/v1/gov.example/ct"
    assert member_of_log("ccnode/v1/gov.example/ct") == GOV
    with pytest.raises(ValidationError, match="must start with 'ccnode/v1/'"):
        member_of_log("example.com/log")
    with pytest.raises(ValidationError, match="bad member id"):
        member_of_log("ccnode/v1/Bad Id")


def test_cosignatures_verify_filter_and_merge() -> None:
    text = _cosign(_cosign(_note(), P1), NGO)
    vc = verify_checkpoint(text, MEMBERS, KEYS)
    assert (vc.size, vc.root, vc.origin, vc.cosigners) == (3, ROOT, GOV, (NGO, P1))
    # Canonical order: origin first, witnesses by id.
    assert [s.key_name for s in vc.note.signatures] == [log_name(GOV), NGO, P1]
    # Only configured witnesses count; others are dropped, not refused.
    assert verify_checkpoint(text, MEMBERS, {NGO: KEYS[NGO]}).cosigners == (NGO,)
    # A bad cosignature by a configured witness is dropped too.
    note = SignedNote.parse(_note())
    junk = NoteSignature(NGO, SignedNote.parse(text).signatures[2].key_hash, bytes(64))
    assert verify_checkpoint(note.to_text() + junk.to_line(), MEMBERS, KEYS).cosigners == ()
    # Merging two partial sets gives the union.
    a = verify_checkpoint(_cosign(_note(), NGO), MEMBERS, KEYS)
    b = verify_checkpoint(_cosign(_note(), P1), MEMBERS, KEYS)
    assert merge(a, b).text == vc.text
    assert merge(b, a).text == vc.text
    assert a.origin_only() == _note()
    with pytest.raises(ValidationError, match="one checkpoint body"):
        merge(a, verify_checkpoint(_note(4), MEMBERS, KEYS))


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [
        (
            sign_checkpoint(GOV, 3, ROOT, signer_for(P1).private_key),
            ProvenanceError,
            f"checkpoint of {GOV} size 3 has a bad signature by its origin's checkpoint key",
        ),
        (
            SignedNote.parse(_cosign(_note(), NGO)).body
            + "\n"
            + SignedNote.parse(_cosign(_note(), NGO)).signatures[1].to_line(),
            ProvenanceError,
            f"checkpoint of {GOV} size 3 has no signature by its origin's checkpoint key",
        ),
        (
            sign_checkpoint("stranger.example", 3, ROOT, signer_for(GOV).private_key),
            ProvenanceError,
            "unknown origin 'stranger.example': not a member",
        ),
        (_note().replace("\n3\n", "\n03\n", 1), ValidationError, "no leading zeros"),
    ],
    ids=["other key", "witness only", "unknown origin", "malformed"],
)
def test_checkpoints_refused(text: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        verify_checkpoint(text, MEMBERS, KEYS)


def test_witness_role_and_policy() -> None:
    # The roster's WITNESS role decides (observers hold it by default).
    assert is_witness(MEMBERS.member(NGO))
    assert is_witness(MEMBERS.member(OBS))
    assert not is_witness(MEMBERS.member(READER))  # no WITNESS role
    assert not is_witness(MEMBERS.member(GONE))  # revoked
    policy = TlogPolicy(frozenset({NGO, P1}), 2)
    assert policy.witness_keys(MEMBERS) == KEYS
    settled = verify_checkpoint(_cosign(_cosign(_note(), NGO), P1), MEMBERS, KEYS)
    assert settled.settled(policy)
    assert not verify_checkpoint(_cosign(_note(), NGO), MEMBERS, KEYS).settled(policy)
    assert not settled.settled(TlogPolicy())  # no witnesses: nothing settles


def test_roster_policy_takes_witnesses_and_threshold_from_the_roster() -> None:
    members = MEMBERS.members()
    witnesses = frozenset({GOV, NGO, P1, OBS})  # unrevoked, with the WITNESS role
    assert roster_policy(genesis(members, witness_threshold=2).roster, 500) == TlogPolicy(
        witnesses, 2, 500
    )
    # A witness threshold of 0 turns witnessing off: nobody is asked, nothing settles.
    assert roster_policy(genesis(members).roster) == TlogPolicy()


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"threshold": 0}, ValidationError, "witness threshold must be >= 1, got 0"),
        (
            {"witnesses": frozenset({NGO}), "threshold": 2},
            ValidationError,
            "witness threshold 2 exceeds the 1 configured witnesses",
        ),
        ({"witnesses": frozenset({"Bad Id"})}, ValidationError, "bad member id"),
        ({"withholding_grace_ms": -1}, ValidationError, "withholding grace must be >= 0 ms"),
    ],
)
def test_policy_validates(kwargs: dict[str, object], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        TlogPolicy(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("witness", "message"),
    [
        (READER, f"witness {READER} has roles SUBMIT, READ: expected the WITNESS role"),
        (GONE, f"witness {GONE} is revoked"),
        ("stranger.example", "unknown origin 'stranger.example': not a member"),
    ],
)
def test_witness_keys_refuse_who_cannot_witness(witness: str, message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        TlogPolicy(frozenset({witness})).witness_keys(MEMBERS)


def test_withholding_monitor() -> None:
    m = WithholdingMonitor(grace_ms=100)
    m.observe("p", {GOV: 3}, {GOV: 6}, now_ms=1000)
    assert m.flagged(1099) == []
    (w,) = m.flagged(1100)
    assert (w.peer, w.origin, w.served, w.cosigned, w.since_ms) == ("p", GOV, 3, 6, 1000)
    # Progress below the target does not reset the clock.
    m.observe("p", {GOV: 5}, {GOV: 6}, now_ms=1200)
    assert [x.served for x in m.flagged(1200)] == [5]
    # Reaching the target clears it; a newer target starts a new grace period.
    m.observe("p", {GOV: 6}, {GOV: 9}, now_ms=1300)
    assert m.flagged(1399) == []
    assert [x.cosigned for x in m.flagged(1400)] == [9]
    m.observe("p", {GOV: 9}, {GOV: 9}, now_ms=1500)
    assert m.flagged(10_000) == []
    # An origin nobody cosigned is never a reason to flag.
    m.observe("q", {}, {}, now_ms=0)
    assert m.flagged(10_000) == []


# --- fork evidence -------------------------------------------------------------------


def _fork() -> tuple[SignedEntry, SignedEntry, SignedEntry]:
    a, b = Origin(GOV), Origin(GOV)
    a0, b0 = a.next(), b.next(reason="other")
    b1 = b.next()
    return a0, b0, b1


def test_entry_fork_evidence_round_trip_and_fork_points() -> None:
    a0, b0, b1 = _fork()
    same_seq = ev.entry_fork(b0, a0)
    assert ev.entry_fork(a0, b0) == same_seq  # canonical whatever the order
    assert ev.ForkProof.decode(same_seq.encode()) == same_seq
    assert ev.verify(same_seq, MEMBERS).fork_point == 1
    bad_prev = ev.entry_fork(b1, a0)
    assert (bad_prev.a, bad_prev.b) == (a0.to_bytes(), b1.to_bytes())
    finding = ev.verify(bad_prev, MEMBERS)
    assert finding.fork_point == 1
    assert (
        finding.summary == f"{GOV} forked its log: seq 1 extends another seq 0 than the signed one"
    )


def test_checkpoint_fork_evidence() -> None:
    tree = merkle.MemoryTree()
    for i in range(6):
        tree.append(bytes([i]))
    four = verify_checkpoint(_cosign(_note(4, tree.root(4)), NGO), MEMBERS, KEYS)
    six = verify_checkpoint(_note(6, tree.root(6)), MEMBERS, KEYS)
    liar = verify_checkpoint(_note(4, merkle.leaf_hash(b"rewritten")), MEMBERS, KEYS)
    # Two roots for size 4: canonical, cosignatures stripped.
    same = ev.checkpoint_fork(four, liar, liar.root)
    assert ev.checkpoint_fork(liar, four, four.root) == same
    assert ev.verify(same, MEMBERS).fork_point == 4
    assert NGO not in same.a.decode() + same.b.decode()
    # Size 4 not a prefix of size 6: root of 4 in six's tree + consistency proof.
    prefix = ev.checkpoint_fork(
        liar, six, tree.root(4), tuple(merkle.consistency_proof(4, 6, tree))
    )
    assert ev.ForkProof.decode(prefix.encode()) == prefix
    assert ev.verify(prefix, MEMBERS).summary == (
        f"{GOV} forked its log: checkpoint of size 4 is not a prefix of size 6"
    )
    honest = ev.checkpoint_fork(
        four, six, tree.root(4), tuple(merkle.consistency_proof(4, 6, tree))
    )
    with pytest.raises(ValidationError, match="not a fork: checkpoint of size 4 is consistent"):
        ev.verify(honest, MEMBERS)


_A0, _B0, _ = _fork()
_ENCODED = ev.entry_fork(_A0, _B0).encode()


@settings(max_examples=150, deadline=None)
@given(position=st.integers(0, len(_ENCODED) - 1), bit=st.integers(0, 7))
def test_any_flipped_bit_in_evidence_is_refused(position: int, bit: int) -> None:
    data = bytearray(_ENCODED)
    data[position] ^= 1 << bit
    with pytest.raises(ValidationError):
        ev.verify(ev.ForkProof.decode(bytes(data)), MEMBERS)


def test_second_signature_over_the_stored_body_is_equivocation() -> None:
    a0 = Origin(GOV).next()
    twin = SignedEntry(a0.body_bytes, bytes(64), a0.body)  # any other signature bytes
    with pytest.raises(EquivocationError, match="second signature over the stored body"):
        decide(twin, 1, a0.entry_id, a0.to_bytes())


def test_store_records_gossipable_evidence_and_refuses_beyond_the_fork(tmp_path: Path) -> None:
    a, b = Origin(GOV), Origin(GOV)
    held = [a.next() for _ in range(3)]
    store = LmdbStore(tmp_path / "db")
    assert store.ingest(held, atomic=True, now_ms=0).errors == []
    b.seq, b.prev = 1, held[0].entry_id
    other1 = b.next(reason="the other seq 1")
    result = store.ingest([other1], atomic=False, peer="p", now_ms=5)
    assert isinstance(result.outcomes[0], EquivocationError)
    (record,) = store.tlog.evidence()
    assert record.recorded_ms == 5
    proof = ev.ForkProof.decode(record.data)
    assert {proof.a, proof.b} == {held[1].to_bytes(), other1.to_bytes()}
    assert store.tlog.fork_points() == {GOV: 2}
    # Held entries beyond the fork stay and are still duplicates; new ones are refused.
    again = store.ingest(held, atomic=False, peer="p", now_ms=6)
    assert again.outcomes == (Outcome.DUPLICATE,) * 3
    refused = store.ingest([a.next()], atomic=False, peer="p", now_ms=7)
    assert isinstance(refused.outcomes[0], ConflictError)
    assert not isinstance(refused.outcomes[0], EquivocationError)
    assert store.head(GOV).next_seq == 3
    # The same evidence again is not a second record.
    assert not store.tlog.put_evidence(proof, 2, now_ms=8)
    assert len(store.tlog.evidence()) == 1
    store.close()


def test_an_aborted_batch_writes_no_tree_hashes(tmp_path: Path) -> None:
    a = Origin(GOV)
    good = [a.next() for _ in range(3)]
    a.next()
    gap = a.next()
    store = LmdbStore(tmp_path / "db")
    assert store.ingest([*good, gap], atomic=True, now_ms=0).errors
    assert store.tlog.size(GOV) == 0
    with pytest.raises(NotFoundError, match="asked for tree size 1"):
        store.tlog.root(GOV, 1)
    assert store.ingest(good, atomic=True, now_ms=0).errors == []
    assert store.tlog.root(GOV, 3) == merkle.root_of([merkle.leaf_hash(e.to_bytes()) for e in good])
    store.close()


def test_checkpoints_from_peers_are_checked_against_the_stored_tree(tmp_path: Path) -> None:
    from node.store.tree import CheckpointOutcome as Out

    gov = Origin(GOV)
    entries = [gov.next() for _ in range(6)]
    store = LmdbStore(tmp_path / "db")
    store.ingest(entries[:4], atomic=True, now_ms=0)
    tables = store.tlog

    def accept(text: str) -> Out:
        vc = verify_checkpoint(text, MEMBERS, KEYS)
        return tables.accept_checkpoint(vc, MEMBERS, KEYS, now_ms=1)[0]

    honest = _note(4, tables.root(GOV, 4))
    assert accept(honest) is Out.STORED
    assert accept(honest) is Out.UNCHANGED
    assert accept(_cosign(honest, NGO)) is Out.MERGED
    assert verify_checkpoint(tables.checkpoint_at(GOV, 4) or "", MEMBERS, KEYS).cosigners == (NGO,)
    assert accept(_note(6, merkle.leaf_hash(b"later"))) is Out.AHEAD  # not checkable yet
    assert tables.checkpoint_at(GOV, 6) is None
    # A size below every stored checkpoint, with a root that is not ours: proven
    # by the stored size-4 checkpoint and our consistency proof 2 -> 4.
    assert accept(_note(2, merkle.leaf_hash(b"rewritten"))) is Out.FORK
    # Two roots for size 4.
    assert accept(_note(4, merkle.leaf_hash(b"other"))) is Out.FORK
    proofs = [ev.ForkProof.decode(r.data) for r in tables.evidence()]
    assert sorted(ev.verify(p, MEMBERS).fork_point for p in proofs) == [2, 4]
    assert tables.fork_points() == {GOV: 2}
    # Nothing stored above our last checkpoint: a mismatch there proves nothing yet.
    store.close()
    fresh = LmdbStore(tmp_path / "db2")
    fresh.ingest(entries[:4], atomic=True, now_ms=0)
    vc = verify_checkpoint(_note(3, merkle.leaf_hash(b"x")), MEMBERS, KEYS)
    assert fresh.tlog.accept_checkpoint(vc, MEMBERS, KEYS, now_ms=1) == (Out.MISMATCH, None)
    fresh.close()


def test_backfill_builds_trees_for_entries_stored_before_the_tree_table(tmp_path: Path) -> None:
    from node.store.lmdb_store import _Db

    gov, plat = Origin(GOV), Origin(P1)
    entries = [gov.next() for _ in range(7)]
    store = LmdbStore(tmp_path / "db")
    store.ingest([*entries, plat.next()], atomic=True, now_ms=0)
    want = store.tlog.root(GOV, 7)
    with store._env.begin(write=True) as txn:  # an older store: entries, no tree
        txn.drop(store._dbs[_Db.TREE], delete=False)
    assert store.tlog.backfill() == [GOV, P1]
    assert store.tlog.backfill() == []
    assert store.tlog.root(GOV, 7) == want
    assert store.ingest([gov.next()], atomic=True, now_ms=0).errors == []
    assert store.tlog.root(GOV, 8) == merkle.root_of(
        [merkle.leaf_hash(e.to_bytes()) for e in store.entries_from(GOV, 0, 10)]
    )
    store.close()
