"""C2SP tlog-cosignature ``cosignature/v1``: a known answer built from first
principles (hashlib and ``cryptography`` directly, never through our code),
and the refusals."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import re
import struct

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from node.core.checkpoint import NoteSignature, SignedNote, cosign_note, open_cosignature
from node.core.tlog import cosign, sign_checkpoint, verify_checkpoint
from node.core.trust import MemberKind, MembersFile
from node.errors import ProvenanceError, ValidationError
from tests.helpers import member, signer_for

SEED = bytes(range(32))
NAME = "witness.example/w1"
BODY = "ccnode/v1/gov.example/ct\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
TIME = 1679315147
#: Computed once from the definitions below; pinned so a change in either shows.
EXPECTED_LINE = (
    "\u2014 witness.example/w1 519lMgAAAABkGFDLaHQV+s3qlfNbex4h8loEcnISGTFqJxc8HpA6BLmZyjkp"
    "a6QmSCfuaSZtjGoRD5xm9cUnb4UaY+6WOU6YQ6o2Dg==\n"
)
KEY = Ed25519PrivateKey.from_private_bytes(SEED)
PUB = KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _expected_line() -> str:
    """The cosignature line, from the spec's definitions alone."""
    key_id = hashlib.sha256(NAME.encode() + b"\x0a" + b"\x04" + PUB).digest()[:4]
    message = b"cosignature/v1\n" + b"time " + str(TIME).encode() + b"\n" + BODY.encode()
    blob = TIME.to_bytes(8, "big") + KEY.sign(message)
    assert len(blob) == 72
    return "\u2014 " + NAME + " " + base64.b64encode(key_id + blob).decode() + "\n"


def test_known_answer() -> None:
    assert _expected_line() == EXPECTED_LINE
    line = cosign_note(BODY, NAME, KEY, TIME).to_line()
    assert line == EXPECTED_LINE
    sig = NoteSignature.parse_line(line[:-1])
    assert sig.key_hash.hex() == "e75f6532"
    assert open_cosignature(sig, PUB, BODY) == TIME


def test_spec_example_has_the_same_layout() -> None:
    """The example cosignature in C2SP tlog-cosignature: 4-byte key ID, then 72
    bytes whose first 8 are the big-endian time (the spec's time line says
    1679315147)."""
    example = (
        "\u2014 witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWX"
        "EhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA=="
    )
    sig = NoteSignature.parse_line(example)
    assert len(sig.signature) == 72
    assert struct.unpack(">Q", sig.signature[:8])[0] == TIME


def _with_blob(blob: bytes) -> NoteSignature:
    return dataclasses.replace(cosign_note(BODY, NAME, KEY, TIME), signature=blob)


GOOD = cosign_note(BODY, NAME, KEY, TIME)
OTHER_TIME = struct.pack(">Q", TIME + 1) + GOOD.signature[8:]
OLD_FORMAT = NoteSignature(
    NAME,
    hashlib.sha256(NAME.encode() + b"\n\x01" + PUB).digest()[:4],
    KEY.sign(BODY.encode()),
)


@pytest.mark.parametrize(
    ("sig", "body", "message"),
    [
        (
            _with_blob(GOOD.signature[:71]),
            BODY,
            f"cosignature by {NAME!r} has 71 bytes: expected 72 (8-byte timestamp and "
            "64-byte Ed25519 signature)",
        ),
        (
            _with_blob(GOOD.signature + b"\x00"),
            BODY,
            f"cosignature by {NAME!r} has 73 bytes: expected 72 (8-byte timestamp and "
            "64-byte Ed25519 signature)",
        ),
        (
            dataclasses.replace(GOOD, key_hash=b"\x00\x01\x02\x03"),
            BODY,
            f"cosignature by {NAME!r} has key ID 00010203: expected e75f6532 "
            "(cosignature/v1 of its key)",
        ),
        (
            OLD_FORMAT,
            BODY,
            f"cosignature by {NAME!r} is a plain Ed25519 note signature (type 0x01): "
            "expected a C2SP cosignature/v1 (type 0x04)",
        ),
        (
            _with_blob(OTHER_TIME),
            BODY,
            f"cosignature by {NAME!r} (time {TIME + 1}) does not verify",
        ),
        (
            GOOD,
            BODY.replace("20852163", "20852164"),
            f"cosignature by {NAME!r} (time {TIME}) does not verify",
        ),
        (
            _with_blob(b"\xff" * 8 + GOOD.signature[8:]),
            BODY,
            f"cosignature by {NAME!r} has time {2**64 - 1}: expected at most 2**63 - 1",
        ),
        (
            _with_blob(GOOD.signature[:8] + bytes(64)),
            BODY,
            f"cosignature by {NAME!r} (time {TIME}) does not verify",
        ),
    ],
    ids=[
        "short",
        "long",
        "wrong key id",
        "old format",
        "time altered",
        "body altered",
        "time too large",
        "zero signature",
    ],
)
def test_refused(sig: NoteSignature, body: str, message: str) -> None:
    with pytest.raises(ProvenanceError, match="^" + re.escape(message) + "$"):
        open_cosignature(sig, PUB, body)


def test_bad_times_cannot_be_signed() -> None:
    with pytest.raises(ValidationError, match=re.escape("got -1")):
        cosign_note(BODY, NAME, KEY, -1)
    with pytest.raises(ValidationError, match=re.escape(f"got {2**63}")):
        cosign_note(BODY, NAME, KEY, 2**63)


# -- in checkpoints -------------------------------------------------------------

GOV, NGO = "gov.example/ct", "ngo.example"
MEMBERS = MembersFile.of([member(GOV, MemberKind.GOVERNMENT), member(NGO, MemberKind.NGO)])
WITNESSES = {NGO: MEMBERS.member(NGO).checkpoint_public_key}


def _checkpoint() -> str:
    return sign_checkpoint(GOV, 3, hashlib.sha256(b"root").digest(), signer_for(GOV).private_key)


def test_checkpoint_cosignatures_are_v1() -> None:
    text = _checkpoint()
    vc = verify_checkpoint(text, MEMBERS, {})
    line = cosign(vc, NGO, signer_for(NGO).private_key, TIME)
    sig = NoteSignature.parse_line(line[:-1])
    raw = MEMBERS.member(NGO).checkpoint_public_key
    assert sig.key_hash == hashlib.sha256(NGO.encode() + b"\n\x04" + raw).digest()[:4]
    assert sig.signature[:8] == TIME.to_bytes(8, "big")
    signed = verify_checkpoint(text + line, MEMBERS, WITNESSES, strict=True)
    assert signed.cosigners == (NGO,)


def test_old_format_cosignature_in_a_checkpoint() -> None:
    """Another (name, key ID) than the witness's cosignature/v1 key: an unknown
    key to C2SP signed-note, so ignored even when strict, and named as such."""
    old = SignedNote.parse(_checkpoint()).add_signature(NGO, signer_for(NGO).private_key)
    for strict in (False, True):
        vc = verify_checkpoint(old.to_text(), MEMBERS, WITNESSES, strict=strict)
        assert vc.cosigners == ()
        assert vc.ignored == (
            f"cosignature by {NGO!r} is a plain Ed25519 note signature (type 0x01): "
            "expected a C2SP cosignature/v1 (type 0x04)",
        )
