"""The roster: encoding, the chain rule (rotation table), entry rules, authorization."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from node.core.entry import ZERO_ID, Kind, SignedEntry
from node.core.roster import (
    Action,
    Caller,
    EntryKey,
    Member,
    MemberKind,
    Role,
    Roster,
    RosterSignature,
    SignedRoster,
    Standing,
    TrustedRoster,
    authorize,
    check_own_entries,
    dumps_file,
    loads_file,
    member_from_json,
    member_to_json,
    raw_public_key,
    verify_anchor,
)
from node.core.trust import check_provenance, standing_of
from node.errors import ConflictError, ProvenanceError, ValidationError
from tests.helpers import GOVERNANCE, Origin, member, signer_for, tls_for

NOW = 1_700_000_000_000  # 2023-11-14T22:13:20Z
LATER = NOW + 86_400_000
G = GOVERNANCE


def pub(i: int) -> bytes:
    return raw_public_key(G[i].public_key)


def members() -> tuple[Member, ...]:
    return (
        member("gov.example/ct", MemberKind.GOVERNMENT, display_name="Counter-terrorism unit"),
        member("platform.example", display_name="Platform One"),
    )


def roster_v1(keys: tuple[int, ...] = (0,), threshold: int = 1, **fields: Any) -> Roster:
    base: dict[str, Any] = dict(
        version=1,
        expires_ms=LATER,
        governance_keys=tuple(pub(i) for i in keys),
        governance_threshold=threshold,
        members=members(),
    )
    base.update(fields)
    return Roster(**base)


def signed(roster: Roster, signers: tuple[int, ...]) -> SignedRoster:
    """Signed by ``signers`` in order; a repeated index repeats the signature."""
    out = SignedRoster.draft(roster)
    sigs = []
    for i in signers:
        sigs.extend(out.signed_by(G[i].private_key).signatures)
    return dataclasses.replace(out, signatures=tuple(sigs))


# -- encoding -------------------------------------------------------------------


def test_encode_decode_round_trip_and_canonical_order() -> None:
    key_a, key_b = (raw_public_key(signer_for(n).public_key) for n in ("a", "b"))
    m = member(
        "ngo.example/desk",
        MemberKind.NGO,
        "DE",
        entry_keys=(EntryKey(key_b, 41), EntryKey(key_a)),
        roles=frozenset({Role.SUBMIT, Role.READ}),
        address="127.0.0.1:7001",
        revoked=True,
    )
    r = roster_v1(keys=(2, 0, 1), threshold=2, members=(m, *members()), witness_threshold=1)
    data = r.encode()
    back = Roster.decode(data)
    assert back == r
    assert back.encode() == data
    assert [x.id for x in back.members] == [
        "gov.example/ct",
        "ngo.example/desk",
        "platform.example",
    ]
    assert back.governance_keys == tuple(sorted(pub(i) for i in (0, 1, 2)))
    desk = back.member("ngo.example/desk")
    assert [k.valid_until_seq for k in desk.entry_keys] == [
        41 if key_b < key_a else None,
        None if key_b < key_a else 41,
    ]
    assert desk.revoked and desk.roles == {Role.SUBMIT, Role.READ}
    assert desk.tls_spki == member("ngo.example/desk").tls_spki


def _unsorted_members(data: bytes) -> bytes:
    """The two members' encodings swapped: same content, non-canonical order."""
    a, b = members()
    header = roster_v1(members=()).encode()[:-2] + (2).to_bytes(2, "big")
    return header + _member_bytes(b) + _member_bytes(a)


def _member_bytes(m: Member) -> bytes:
    r = roster_v1(members=(m,))
    empty = roster_v1(members=()).encode()
    return r.encode()[len(empty) :]


def test_role_history_round_trips_and_is_canonical() -> None:
    history = ((2, frozenset(Role)), (9, frozenset({Role.SUBMIT, Role.ENDORSE})))
    demoted = member("platform.example", roles=frozenset({Role.READ}), earlier_roles=history)
    roster = roster_v1(members=(members()[0], demoted))
    back = Roster.decode(roster.encode())
    assert back.member("platform.example").earlier_roles == history
    assert [back.member("platform.example").roles_at(s) for s in (0, 2, 3, 9, 10)] == [
        frozenset(Role),
        frozenset(Role),
        frozenset({Role.SUBMIT, Role.ENDORSE}),
        frozenset({Role.SUBMIT, Role.ENDORSE}),
        frozenset({Role.READ}),
    ]
    assert roster_v1().encode() == Roster.decode(roster_v1().encode()).encode()  # no history
    # The flag with an empty history is not canonical.
    plain = _member_bytes(members()[1])
    flagged = roster_v1(members=(members()[1],)).encode()
    at = len(flagged) - len(plain)
    flags_at = at + 1 + len(b"platform.example") + 1 + len(b"Platform One") + 1 + 2 + 1
    broken = flagged[:flags_at] + b"\x02" + flagged[flags_at + 1 :] + b"\x00"
    with pytest.raises(ValidationError, match="role history flag set with no changes"):
        Roster.decode(broken)


@pytest.mark.parametrize(
    ("history", "message"),
    [
        (((3, frozenset(Role)), (3, frozenset(Role))), "role history seq 3: expected increasing"),
        (((2**64 - 1, frozenset(Role)),), "expected increasing seqs below 2^64-1"),
        (tuple((i, frozenset(Role)) for i in range(17)), "has 17 role changes: at most 16"),
    ],
)
def test_bad_role_histories_are_refused(history: Any, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        member("platform.example", earlier_roles=history)
    assert message in str(info.value)


def test_with_roles_records_when_a_removal_applies() -> None:
    m = member("platform.example")
    once = m.with_roles(frozenset({Role.SUBMIT}), 5)
    twice = once.with_roles(frozenset({Role.READ}), 8)
    assert twice.earlier_roles == ((5, frozenset(Role)), (8, frozenset({Role.SUBMIT})))
    assert m.with_roles(frozenset({Role.READ}), None).earlier_roles == ()


BAD_BODIES: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "bad magic": (lambda d: b"XXXX" + d[4:], "not a roster body: bad magic"),
    "unknown format": (lambda d: d[:4] + b"\x03" + d[5:], "roster format 3: expected 1 or 2"),
    "trailing bytes": (lambda d: d + b"\x00", "roster body has 1 trailing bytes"),
    "truncated": (lambda d: d[:-3], "roster body is truncated"),
    "version 1 with a prev": (
        lambda d: d[:21] + b"\x01" * 32 + d[53:],
        "roster version 1 has no previous version: prev must be 32 zero bytes",
    ),
    "threshold above the keys": (
        lambda d: d[:53] + b"\x05" + d[54:],
        "governance threshold 5: expected 1..1 (the number of governance keys)",
    ),
    "members out of order": (
        _unsorted_members,
        "roster body is not canonical: keys and members must be sorted and unique",
    ),
}


@pytest.mark.parametrize("name", list(BAD_BODIES))
def test_bad_bodies_are_refused_exactly(name: str) -> None:
    mutate, message = BAD_BODIES[name]
    with pytest.raises(ValidationError) as info:
        Roster.decode(mutate(roster_v1().encode()))
    assert type(info.value) is ValidationError
    assert message in str(info.value)


def _shared_key() -> Roster:
    a, b = members()
    return roster_v1(members=(a, dataclasses.replace(b, entry_keys=a.entry_keys)))


def _same_tls() -> Roster:
    a, b = members()
    return roster_v1(members=(a, dataclasses.replace(b, tls_cert=a.tls_cert)))


BAD_ROSTERS: dict[str, tuple[Callable[[], object], str]] = {
    "governance key listed twice": (
        lambda: roster_v1(keys=(0, 0), threshold=2),
        f"governance key {pub(0).hex()[:16]} is listed twice",
    ),
    "threshold 0": (
        lambda: roster_v1(threshold=0),
        "governance threshold 0: expected 1..1 (the number of governance keys)",
    ),
    "member listed twice": (
        lambda: roster_v1(members=(*members(), members()[0])),
        "member gov.example/ct is listed twice",
    ),
    "one entry key for two members": (
        _shared_key,
        "is listed for both gov.example/ct and platform.example",
    ),
    "one TLS key for two members": (_same_tls, "is pinned for both gov.example/ct and"),
    "witness threshold above the witnesses": (
        lambda: roster_v1(witness_threshold=3),
        "witness threshold 3: expected 0..2 (the number of unrevoked members with the "
        "WITNESS role)",
    ),
    "bad jurisdiction": (
        lambda: member("gov.example/ct", jurisdiction="nz"),
        "member gov.example/ct: jurisdiction 'nz': expected an ISO 3166-1 alpha-2 code",
    ),
    "government without a jurisdiction": (
        lambda: member("gov.example/ct", MemberKind.GOVERNMENT, jurisdiction=""),
        "member gov.example/ct: a government member needs a jurisdiction (ISO 3166-1 alpha-2)",
    ),
    "no entry key": (
        lambda: member("gov.example/ct", entry_keys=()),
        "member gov.example/ct has 0 entry keys: expected 1..16",
    ),
    "garbage certificate": (
        lambda: member("gov.example/ct", tls_cert=b"\x30\x03abc"),
        "TLS certificate is not a DER X.509 certificate",
    ),
    "certificate of an unknown X.509 version": (  # its version INTEGER 2 (v3) made 3
        lambda: member(
            "gov.example/ct",
            tls_cert=tls_for("ct").cert_der.replace(
                b"\xa0\x03\x02\x01\x02", b"\xa0\x03\x02\x01\x03", 1
            ),
        ),
        "TLS certificate is not a DER X.509 certificate",
    ),
    "version 2 without a prev": (
        lambda: roster_v1(version=2),
        "roster version 2 needs the id of version 1 as its prev",
    ),
}


@pytest.mark.parametrize("name", list(BAD_ROSTERS))
def test_bad_rosters_are_refused_exactly(name: str) -> None:
    make, message = BAD_ROSTERS[name]
    with pytest.raises(ValidationError) as info:
        make()
    assert type(info.value) is ValidationError
    assert message in str(info.value)


def test_roster_signature_is_domain_separated() -> None:
    r = roster_v1()
    raw = G[0].private_key.sign(r.encode())  # no PAE, no domain tag
    forged = SignedRoster(r.encode(), (RosterSignature(pub(0), raw),), r)
    with pytest.raises(ProvenanceError, match="signed by 0/1 governance keys"):
        verify_anchor(forged, NOW)


def test_stored_and_file_forms_round_trip() -> None:
    s = signed(roster_v1(keys=(0, 1), threshold=2), (0, 1))
    assert SignedRoster.from_bytes(s.to_bytes()) == s
    assert loads_file(dumps_file(s)) == s
    with pytest.raises(ValidationError, match="stored roster has a bad length"):
        SignedRoster.from_bytes(s.to_bytes()[:-1])
    with pytest.raises(ValidationError, match="roster file: unknown field 'extra'"):
        loads_file('{"format": "consortium-roster/v1", "body": "", "extra": 1}')
    with pytest.raises(ValidationError, match="roster file is not JSON"):
        loads_file("{")


def test_separate_key_holders_sign_copies_and_merge() -> None:
    draft = SignedRoster.draft(roster_v1(keys=(0, 1, 2), threshold=2))
    alice = draft.signed_by(G[0].private_key)
    bob = draft.signed_by(G[2].private_key)
    with pytest.raises(ProvenanceError, match="signed by 1/3 governance keys of version 1"):
        verify_anchor(alice, NOW)
    merged = alice.merged(bob)
    assert verify_anchor(merged, NOW).version == 1
    assert {s.public_key for s in merged.signatures} == {pub(0), pub(2)}
    assert merged.merged(alice) == merged  # idempotent
    other = SignedRoster.draft(roster_v1(keys=(0, 1, 2), threshold=2, expires_ms=LATER + 1))
    with pytest.raises(ValidationError, match="cannot merge signatures: the drafts differ"):
        alice.merged(other)


def test_member_card_round_trips() -> None:
    m = member("gov.example/ct", MemberKind.GOVERNMENT, address="127.0.0.1:9")
    assert member_from_json(member_to_json(m)) == m
    card = member_to_json(m)
    card["tls_spki_sha256"] = "00" * 32
    with pytest.raises(ValidationError, match="tls_spki_sha256 does not match"):
        member_from_json(card)
    del card["kind"]
    with pytest.raises(ValidationError, match="member card: missing field 'kind'"):
        member_from_json(card)


# -- the chain rule: a rotation table (after python-tuf's key rotation tests) ---


@dataclass(frozen=True)
class Step:
    """One roster version: its governance keys, threshold, and who signs it."""

    keys: tuple[int, ...]
    threshold: int
    signers: tuple[int, ...]
    expired: bool = False
    tamper: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def chain_of(steps: list[Step]) -> list[SignedRoster]:
    out: list[SignedRoster] = []
    prev: Roster | None = None
    for step in steps:
        expires = NOW - 1 if step.expired else LATER
        if prev is None:
            r = roster_v1(keys=step.keys, threshold=step.threshold, expires_ms=expires)
        else:
            r = dataclasses.replace(
                prev.next_draft(expires),
                governance_keys=tuple(pub(i) for i in step.keys),
                governance_threshold=step.threshold,
                **step.extra,
            )
        s = signed(r, step.signers)
        if step.tamper:
            body = s.body_bytes.replace(b"Platform One", b"Platform 0ne")
            assert body != s.body_bytes
            s = SignedRoster.parse(body, s.signatures)
        out.append(s)
        prev = r
    return out


OK = ""
ROTATIONS: dict[str, tuple[list[Step], list[int], str]] = {
    "1-of-1, same key signs": ([Step((0,), 1, (0,)), Step((0,), 1, (0,))], [2], OK),
    "1-of-1 rotated, signed by old and new": (
        [Step((0,), 1, (0,)), Step((1,), 1, (0, 1))],
        [2],
        OK,
    ),
    "1-of-1 rotated, old key did not sign": (
        [Step((0,), 1, (0,)), Step((1,), 1, (1,))],
        [],
        "roster version 2 is signed by 0/1 governance keys of version 1: needs 1",
    ),
    "1-of-1 rotated, new key did not sign": (
        [Step((0,), 1, (0,)), Step((1,), 1, (0,))],
        [],
        "roster version 2 is signed by 0/1 governance keys of version 2 (its own): needs 1",
    ),
    "2-of-3, two sign": ([Step((0, 1, 2), 2, (0, 1)), Step((0, 1, 2), 2, (1, 2))], [2], OK),
    "2-of-3, one signs": (
        [Step((0, 1, 2), 2, (0, 1)), Step((0, 1, 2), 2, (2,))],
        [],
        "roster version 2 is signed by 1/3 governance keys of version 1: needs 2",
    ),
    "2-of-3, the same key signs twice: counted once": (
        [Step((0, 1, 2), 2, (0, 1)), Step((0, 1, 2), 2, (2, 2))],
        [],
        "roster version 2 is signed by 1/3 governance keys of version 1: needs 2",
    ),
    "threshold raised to 3-of-3, two sign": (
        [Step((0, 1, 2), 2, (0, 1)), Step((0, 1, 2), 3, (0, 1))],
        [],
        "roster version 2 is signed by 2/3 governance keys of version 2 (its own): needs 3",
    ),
    "2-of-3 to 2-of-2 disjoint, each side's threshold met": (
        [Step((0, 1, 2), 2, (0, 1)), Step((3, 4), 2, (1, 2, 3, 4))],
        [2],
        OK,
    ),
    "keys rotated over two versions": (
        [Step((0,), 1, (0,)), Step((0, 1), 2, (0, 1)), Step((2,), 1, (0, 1, 2))],
        [2, 3],
        OK,
    ),
    "third version signed only by the first's key: second adopted": (
        [Step((0,), 1, (0,)), Step((1,), 1, (0, 1)), Step((2,), 1, (0, 2))],
        [2],
        "roster version 3 is signed by 0/1 governance keys of version 2: needs 1",
    ),
    "newest expired": (
        [Step((0,), 1, (0,)), Step((0,), 1, (0,), expired=True)],
        [],
        "roster version 2 expired at 2023-11-14T22:13:19Z: only an unexpired roster can be adopted",
    ),
    "intermediate expired, newest current: allowed": (
        [Step((0,), 1, (0,)), Step((0,), 1, (0,), expired=True), Step((0,), 1, (0,))],
        [2, 3],
        OK,
    ),
    "newest expired after a current one: the current one is adopted": (
        [Step((0,), 1, (0,)), Step((0,), 1, (0,)), Step((0,), 1, (0,), expired=True)],
        [2],
        "roster version 3 expired at 2023-11-14T22:13:19Z: only an unexpired roster can be adopted",
    ),
    "tampered member field": (
        [Step((0,), 1, (0,)), Step((0,), 1, (0,), tamper=True)],
        [],
        "roster version 2 is signed by 0/1 governance keys of version 1: needs 1",
    ),
    "signed by a stranger only": (
        [Step((0,), 1, (0,)), Step((0,), 1, (4,))],
        [],
        "roster version 2 is signed by 0/1 governance keys of version 1: needs 1",
    ),
}


@pytest.mark.parametrize("name", list(ROTATIONS))
def test_rotation_table(name: str) -> None:
    steps, adopted, message = ROTATIONS[name]
    chain = chain_of(steps)
    trusted = TrustedRoster(chain[0])
    if not adopted:
        with pytest.raises(ProvenanceError) as info:
            trusted.update(chain[1:], NOW)
        assert str(info.value) == message
        assert trusted.current is chain[0]  # nothing adopted
        return
    update = trusted.update(chain[1:], NOW)
    assert [s.version for s in update.adopted] == adopted
    assert update.refused == message
    assert trusted.current.version == adopted[-1]


def test_version_skip_rollback_and_replay() -> None:
    v1, v2, v3 = chain_of([Step((0,), 1, (0,))] * 3)
    with pytest.raises(ProvenanceError) as info:
        TrustedRoster(v1).update([v3], NOW)
    assert str(info.value) == (
        "roster version 3 does not follow the held version 1: expected version 2 "
        "(versions go up by one)"
    )
    with pytest.raises(ProvenanceError) as info:
        TrustedRoster(v3).update([v2], NOW)
    assert str(info.value) == "rollback refused: roster version 2 is older than the held version 3"
    held = TrustedRoster(v2)
    assert held.update([v1, v2], NOW).adopted == ()  # gossip of what is held: no-op
    assert [s.version for s in held.update([v1, v2, v3], NOW).adopted] == [3]


def test_a_second_body_for_the_held_version_is_a_conflict() -> None:
    _, v2 = chain_of([Step((0,), 1, (0,))] * 2)
    other = signed(dataclasses.replace(v2.roster, expires_ms=LATER + 5), (0,))
    with pytest.raises(ConflictError, match="roster version 2 offered with another body"):
        TrustedRoster(v2).update([other], NOW)


def test_a_successor_of_another_history_does_not_chain() -> None:
    v1, _ = chain_of([Step((0,), 1, (0,))] * 2)
    fork_v1 = signed(roster_v1(expires_ms=LATER + 7), (0,))
    fork_v2 = signed(fork_v1.roster.next_draft(LATER), (0,))
    with pytest.raises(ProvenanceError) as info:
        TrustedRoster(v1).update([fork_v2], NOW)
    assert str(info.value).startswith("roster version 2 does not chain: its prev is ")


def test_anchor_needs_its_own_threshold_and_must_be_current() -> None:
    with pytest.raises(ProvenanceError) as info:
        verify_anchor(signed(roster_v1(keys=(0, 1, 2), threshold=2), (1,)), NOW)
    assert str(info.value) == (
        "roster version 1 is signed by 1/3 governance keys of version 1 (its own): needs 2"
    )
    with pytest.raises(ProvenanceError, match="roster version 1 expired at"):
        verify_anchor(signed(roster_v1(expires_ms=NOW), (0,)), NOW)


# -- entry rules ------------------------------------------------------------------

OLD, NEW = signer_for("platform.example"), signer_for("platform.example#2")


def enforcement_roster() -> Roster:
    plat = member(
        "platform.example",
        entry_keys=(
            EntryKey(raw_public_key(OLD.public_key), valid_until_seq=2),
            EntryKey(raw_public_key(NEW.public_key)),
        ),
    )
    return roster_v1(
        members=(
            member("gov.example/ct", MemberKind.GOVERNMENT),
            plat,
            member("observer.example", MemberKind.OBSERVER),
            member("submitter.example", roles=frozenset({Role.SUBMIT, Role.READ})),
            member("removed.example", revoked=True),
            member(
                "demoted.example",
                roles=frozenset({Role.SUBMIT, Role.READ}),
                earlier_roles=((4, frozenset(Role)),),
            ),
            member(
                "retired.example",
                revoked=True,
                entry_keys=(EntryKey(raw_public_key(signer_for("retired.example").public_key), 1),),
            ),
        )
    )


def entry(origin: str, seq: int = 0, *, key: str | None = None, **fields: Any) -> SignedEntry:
    o = Origin(origin)
    if key is not None:
        o.signer = signer_for(key)
    o.seq = seq
    o.prev = ZERO_ID if seq == 0 else b"\x01" * 32
    return o.next(**fields)


ENDORSE = dict(kind=Kind.ENDORSE, algorithm="", hash=b"", labels=(), target=b"\x02" * 32)
ENTRY_CASES: dict[str, tuple[Callable[[], SignedEntry], str | None]] = {
    "government submits": (lambda: entry("gov.example/ct"), None),
    "observer submits: wrong role": (
        lambda: entry("observer.example"),
        "member observer.example (observer) has roles WITNESS, READ: ADD entries need "
        "the SUBMIT role",
    ),
    "submit-only member endorses: wrong role": (
        lambda: entry("submitter.example", **ENDORSE),
        "member submitter.example (platform) has roles SUBMIT, READ: ENDORSE entries need "
        "the ENDORSE role",
    ),
    "government endorses": (lambda: entry("gov.example/ct", **ENDORSE), None),
    "key of another member": (
        lambda: entry("gov.example/ct", key="platform.example#2"),
        "is not an entry key of member gov.example/ct",
    ),
    "unknown origin": (
        lambda: entry("stranger.example"),
        "unknown origin 'stranger.example': not a member",
    ),
    "revoked key before its cut-off": (
        lambda: entry("platform.example", 2, key="platform.example"),
        None,
    ),
    "revoked key after its cut-off": (
        lambda: entry("platform.example", 3, key="platform.example"),
        f"key {OLD.key_id.hex()[:16]} of member platform.example is valid until seq 2: got seq 3",
    ),
    "new key after the old one's cut-off": (
        lambda: entry("platform.example", 3, key="platform.example#2"),
        None,
    ),
    "removed member": (
        lambda: entry("removed.example", 5),
        "member removed.example is revoked: it may publish no new entries",
    ),
    "removed member, entry before its cut-off": (lambda: entry("retired.example", 1), None),
    "removed member, entry after its cut-off": (
        lambda: entry("retired.example", 2),
        "member retired.example is revoked: entries after seq 1 are refused, got seq 2",
    ),
    "role removed after seq 4, entry at 4": (lambda: entry("demoted.example", 4, **ENDORSE), None),
    "role removed after seq 4, entry at 5": (
        lambda: entry("demoted.example", 5, **ENDORSE),
        "member demoted.example (platform) has roles SUBMIT, READ after seq 4: ENDORSE "
        "entries need the ENDORSE role",
    ),
    "forged signature": (
        lambda: dataclasses.replace(entry("gov.example/ct"), signature=bytes(64)),
        "bad signature on gov.example/ct seq 0: not signed by the key it names",
    ),
}


@pytest.mark.parametrize("name", list(ENTRY_CASES))
def test_entry_rules(name: str) -> None:
    make, message = ENTRY_CASES[name]
    roster = enforcement_roster()
    e = make()
    if message is None:
        assert check_provenance(roster, e).id == e.body.origin
        return
    with pytest.raises(ProvenanceError) as info:
        check_provenance(roster, e)
    assert message in str(info.value)


def test_standing_flags_what_stays_stored() -> None:
    roster = enforcement_roster()
    assert standing_of(roster, entry("gov.example/ct")) is Standing.ACTIVE
    assert standing_of(roster, entry("removed.example")) is Standing.REVOKED_MEMBER
    assert standing_of(roster, entry("retired.example", 0)) is Standing.REVOKED_MEMBER
    assert (
        standing_of(roster, entry("platform.example", 2, key="platform.example")) is Standing.ACTIVE
    )
    assert (
        standing_of(roster, entry("platform.example", 3, key="platform.example"))
        is Standing.REVOKED_KEY
    )
    assert standing_of(roster, entry("stranger.example")) is Standing.UNKNOWN_ORIGIN


# -- authorization from the TLS key ---------------------------------------------


def auth_roster() -> Roster:
    return roster_v1(
        members=(
            member("gov.example/ct", MemberKind.GOVERNMENT),
            member("observer.example", MemberKind.OBSERVER),
            member("witness.example", roles=frozenset({Role.WITNESS})),
            member("removed.example", revoked=True),
            member(
                "demoted.example",
                roles=frozenset({Role.SUBMIT, Role.READ}),
                earlier_roles=((4, frozenset(Role)),),
            ),
        )
    )


OWN = Caller("platform.example", operator=True)
OWN_SPKI = tls_for("platform.example").spki
AUTH_CASES: dict[str, tuple[str, Action, Caller | str]] = {
    "operator may do anything": ("platform.example", Action.SUBMIT, OWN),
    "government reads": ("gov.example/ct", Action.READ, Caller("gov.example/ct")),
    "government submits": ("gov.example/ct", Action.SUBMIT, Caller("gov.example/ct")),
    "observer reads": ("observer.example", Action.READ, Caller("observer.example")),
    "observer may not submit": (
        "observer.example",
        Action.SUBMIT,
        "caller observer.example may not Submit: needs the SUBMIT role, has WITNESS, READ",
    ),
    "witness-only member may not pull": (
        "witness.example",
        Action.READ,
        "caller witness.example may not Pull: needs the READ role, has WITNESS",
    ),
    "witness-only member may fetch the roster": (
        "witness.example",
        Action.MEMBER,
        Caller("witness.example"),
    ),
    "revoked member": ("removed.example", Action.MEMBER, "caller removed.example is revoked"),
    "unpinned key": ("stranger.example", Action.MEMBER, "is not pinned in roster version 1"),
}


@pytest.mark.parametrize("name", list(AUTH_CASES))
def test_authorization_table(name: str) -> None:
    who, action, expected = AUTH_CASES[name]
    spki = tls_for(who).spki

    what = {Action.READ: "Pull", Action.SUBMIT: "Submit", Action.MEMBER: "GetRoster"}[action]

    def run() -> Caller:
        return authorize(auth_roster(), spki, action, what, own=OWN, own_spki=OWN_SPKI)

    if isinstance(expected, Caller):
        assert run() == expected
        return
    with pytest.raises(ProvenanceError) as info:
        run()
    assert expected in str(info.value)


def test_members_submit_only_their_own_entries() -> None:
    check_own_entries(Caller("gov.example/ct"), ["gov.example/ct"] * 2)
    check_own_entries(OWN, ["gov.example/ct", "ngo.example"])  # the operator relays
    with pytest.raises(ProvenanceError) as info:
        check_own_entries(Caller("gov.example/ct"), ["gov.example/ct", "platform.example"])
    assert str(info.value) == (
        "caller gov.example/ct may submit only its own entries: entry 2 of 2 is from "
        "platform.example"
    )
