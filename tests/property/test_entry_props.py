"""Entry encoding and signatures, over generated bodies."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.core import hashes, labels
from node.core.entry import (
    ENTRY_DOMAIN,
    ZERO_ID,
    EntryBody,
    Kind,
    SignedEntry,
    pae,
    verify_signature,
)
from node.errors import ProvenanceError, ValidationError
from tests.helpers import signer_for

SIGNER = signer_for("platform.example")

label_sets = st.lists(st.sampled_from(sorted(labels.ALL_LABELS)), max_size=5).map(
    lambda ls: tuple(sorted(set(ls)))
)
fixed_algos = [a for a in hashes.ALGORITHMS.values() if a.min_len == a.max_len]


@st.composite
def bodies(draw: st.DrawFn) -> EntryBody:
    seq = draw(st.integers(0, 2**40))
    prev = ZERO_ID if seq == 0 else draw(st.binary(min_size=32, max_size=32).filter(any))
    kind = draw(st.sampled_from([Kind.ADD, Kind.RETRACT]))
    common = dict(
        origin=draw(st.sampled_from(["gov.nz/dia", "platform.example", "ngo.example/desk"])),
        seq=seq,
        prev=prev,
        key_id=SIGNER.key_id,
        time_ms=draw(st.integers(-(2**40), 2**45)),
        kind=kind,
        incident=draw(st.sampled_from(["", "christchurch-2019-03-15", "halle-2019-10-09"])),
        reason=draw(st.text(max_size=60)),
        urgent=draw(st.booleans()),
    )
    if kind == Kind.ADD:
        alg = draw(st.sampled_from(fixed_algos))
        return EntryBody(
            **common,
            algorithm=alg.name,
            hash=draw(st.binary(min_size=alg.min_len, max_size=alg.max_len)),
            labels=draw(label_sets),
        )
    return EntryBody(**common, target=draw(st.binary(min_size=32, max_size=32)))


@given(bodies())
def test_encode_decode_round_trip(body: EntryBody) -> None:
    data = body.encode()
    assert EntryBody.decode(data) == body
    assert EntryBody.decode(data).encode() == data
    assert body.entry_id == hashlib.sha256(data).digest()


@given(bodies())
def test_sign_then_verify(body: EntryBody) -> None:
    entry = SIGNER.sign(body)
    verify_signature(entry, SIGNER.public_key)
    assert SignedEntry.from_bytes(entry.to_bytes()) == entry


@settings(max_examples=60)
@given(bodies(), st.data())
def test_any_flipped_body_byte_is_rejected(body: EntryBody, data: st.DataObject) -> None:
    entry = SIGNER.sign(body)
    raw = bytearray(entry.body_bytes)
    i = data.draw(st.integers(0, len(raw) - 1))
    raw[i] ^= data.draw(st.integers(1, 255))
    with pytest.raises(ValidationError):  # ProvenanceError is a ValidationError
        forged = SignedEntry.parse(bytes(raw), entry.signature)
        verify_signature(forged, SIGNER.public_key)


@settings(max_examples=60)
@given(bodies(), st.data())
def test_any_flipped_signature_byte_is_rejected(body: EntryBody, data: st.DataObject) -> None:
    entry = SIGNER.sign(body)
    sig = bytearray(entry.signature)
    i = data.draw(st.integers(0, len(sig) - 1))
    sig[i] ^= data.draw(st.integers(1, 255))
    forged = SignedEntry.parse(entry.body_bytes, bytes(sig))
    with pytest.raises(ProvenanceError, match="bad signature"):
        verify_signature(forged, SIGNER.public_key)


@settings(max_examples=60)
@given(bodies(), st.integers(0, 31), st.integers(1, 255))
def test_any_flipped_key_id_byte_is_rejected(body: EntryBody, i: int, x: int) -> None:
    key_id = bytearray(body.key_id)
    key_id[i] ^= x
    other = EntryBody(**{**_fields(body), "key_id": bytes(key_id)})
    data = other.encode()
    forged = SignedEntry.parse(data, SIGNER.private_key.sign(pae(ENTRY_DOMAIN, data)))
    with pytest.raises(ProvenanceError, match="another key id"):
        verify_signature(forged, SIGNER.public_key)


def test_signature_is_domain_separated() -> None:
    body = EntryBody(
        origin="platform.example",
        seq=0,
        prev=ZERO_ID,
        key_id=SIGNER.key_id,
        time_ms=0,
        kind=Kind.ADD,
        algorithm="MD5",
        hash=bytes(range(16)),
    )
    data = body.encode()
    raw_sig = SIGNER.private_key.sign(data)  # signed without the domain tag
    with pytest.raises(ProvenanceError, match="bad signature"):
        verify_signature(SignedEntry.parse(data, raw_sig), SIGNER.public_key)


def _fields(body: EntryBody) -> dict[str, object]:
    return {f: getattr(body, f) for f in body.__dataclass_fields__}
