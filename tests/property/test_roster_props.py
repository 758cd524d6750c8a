"""Roster encoding and signatures over generated rosters."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from node.core.roster import (
    EntryKey,
    Member,
    MemberKind,
    Role,
    Roster,
    SignedRoster,
    raw_public_key,
    verify_anchor,
)
from node.errors import ValidationError
from tests.helpers import GOVERNANCE, member, signer_for

IDS = ["gov.nz/dia", "gov.fr/pharos", "platform.example", "ngo.example/desk", "observer.example"]
NOW = 1_700_000_000_000


@st.composite
def members(draw: st.DrawFn, index: int, name: str) -> Member:
    n_keys = draw(st.integers(1, 3))
    keys = tuple(
        EntryKey(
            raw_public_key(signer_for(f"{name}#{k}").public_key),
            draw(st.one_of(st.none(), st.integers(0, 2**63))),
        )
        for k in range(n_keys)
    )
    return member(
        name,
        draw(st.sampled_from(list(MemberKind))),
        draw(st.sampled_from(["NZ", "FR", "DE", "US"])),
        entry_keys=keys,
        roles=frozenset(draw(st.sets(st.sampled_from(list(Role))))),
        display_name=draw(st.text(max_size=20)),
        address=draw(st.sampled_from(["", "127.0.0.1:7001", "node.example:443"])),
        checkpoint_key=draw(
            st.sampled_from([b"", raw_public_key(signer_for(f"cp{index}").public_key)])
        ),
        tls_cert=draw(st.sampled_from([b"", member(name).tls_cert])),
        revoked=draw(st.booleans()),
        earlier_roles=tuple(
            (until, frozenset(draw(st.sets(st.sampled_from(list(Role))))))
            for until in sorted(draw(st.sets(st.integers(0, 2**64 - 2), max_size=3)))
        ),
    )


@st.composite
def rosters(draw: st.DrawFn) -> Roster:
    names = draw(st.lists(st.sampled_from(IDS), unique=True, max_size=4))
    ms = tuple(draw(members(i, n)) for i, n in enumerate(names))
    gov = draw(st.lists(st.sampled_from(range(len(GOVERNANCE))), unique=True, min_size=1))
    version = draw(st.integers(1, 2**40))
    witnesses = sum(1 for m in ms if Role.WITNESS in m.roles and not m.revoked)
    return Roster(
        version=version,
        expires_ms=draw(st.integers(NOW + 1, 2**62)),
        governance_keys=tuple(raw_public_key(GOVERNANCE[i].public_key) for i in gov),
        governance_threshold=draw(st.integers(1, len(gov))),
        members=ms,
        prev=bytes(32) if version == 1 else draw(st.binary(min_size=32, max_size=32).filter(any)),
        witness_threshold=draw(st.integers(0, witnesses)),
    )


def _signed(roster: Roster) -> SignedRoster:
    s = SignedRoster.draft(roster)
    for g in GOVERNANCE:
        if raw_public_key(g.public_key) in roster.governance_keys:
            s = s.signed_by(g.private_key)
    return s


@settings(max_examples=60)
@given(rosters())
def test_encode_decode_round_trip(roster: Roster) -> None:
    data = roster.encode()
    back = Roster.decode(data)
    assert back == roster
    assert back.encode() == data
    s = _signed(roster)
    assert SignedRoster.from_bytes(s.to_bytes()) == s
    assert verify_anchor(s, NOW) == roster


@settings(max_examples=60)
@given(rosters(), st.data())
def test_any_flipped_body_byte_is_refused(roster: Roster, data: st.DataObject) -> None:
    s = _signed(roster)
    raw = bytearray(s.body_bytes)
    i = data.draw(st.integers(0, len(raw) - 1))
    raw[i] ^= data.draw(st.integers(1, 255))
    try:
        forged = SignedRoster.parse(bytes(raw), s.signatures)
        verify_anchor(forged, NOW)
    except ValidationError:  # ProvenanceError (signatures) is a ValidationError
        return
    raise AssertionError(f"a roster with byte {i} flipped was accepted")
