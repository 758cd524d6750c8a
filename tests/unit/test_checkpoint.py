"""C2SP checkpoint bodies and signed notes: round trips, tampering, malformed input."""

from __future__ import annotations

import base64
import re
from hashlib import sha256

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.core.checkpoint import (
    Checkpoint,
    NoteSignature,
    SignedNote,
    key_hash,
    open_checkpoint,
    open_note,
    sign_note,
)
from node.core.merkle import EMPTY_ROOT
from node.errors import ProvenanceError, ValidationError

ORIGIN = "gov.nz/dia"
ROOT = sha256(b"root").digest()
ROOT_B64 = base64.b64encode(ROOT).decode()
BODY = f"{ORIGIN}\n42\n{ROOT_B64}\n"


def key(name: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(sha256(name.encode()).digest())


LOG = key("log")
WITNESS = key("witness")
VERIFIERS = {ORIGIN: LOG.public_key()}


def signed() -> str:
    return sign_note(Checkpoint(ORIGIN, 42, ROOT).to_note_body(), ORIGIN, LOG)


def test_body_round_trip() -> None:
    cp = Checkpoint(ORIGIN, 42, ROOT)
    assert cp.to_note_body() == BODY
    assert Checkpoint.parse(BODY) == cp
    ext = Checkpoint("example.com/log", 0, EMPTY_ROOT, ("ext one", "ext two"))
    assert Checkpoint.parse(ext.to_note_body()) == ext
    assert ext.to_note_body().endswith("\next one\next two\n")


def test_sign_and_open() -> None:
    text = signed()
    body, names = open_note(text, VERIFIERS)
    assert body == BODY
    assert names == [ORIGIN]
    assert text.startswith(BODY + "\n\u2014 gov.nz/dia ")
    cp, names = open_checkpoint(text, {ORIGIN: LOG.public_key().public_bytes_raw()})
    assert cp == Checkpoint(ORIGIN, 42, ROOT)
    assert SignedNote.parse(text).to_text() == text


def test_key_hash_matches_spec() -> None:
    pub = LOG.public_key().public_bytes_raw()
    assert key_hash(ORIGIN, pub) == sha256(ORIGIN.encode() + b"\n\x01" + pub).digest()[:4]
    sig = SignedNote.parse(signed()).signatures[0]
    assert sig.key_hash == key_hash(ORIGIN, pub)
    assert len(sig.signature) == 64


def test_cosignature_and_unknown_keys() -> None:
    note = SignedNote.parse(signed()).add_signature("witness.example", WITNESS)
    text = note.to_text()
    assert open_note(text, VERIFIERS)[1] == [ORIGIN]
    both = {**VERIFIERS, "witness.example": WITNESS.public_key()}
    assert open_note(text, both)[1] == [ORIGIN, "witness.example"]
    assert open_note(text, {"witness.example": WITNESS.public_key()})[1] == ["witness.example"]


def test_unknown_key_only_refused() -> None:
    with pytest.raises(ProvenanceError, match="signed by 0 of 1 known keys"):
        open_note(signed(), {"other.example": LOG.public_key()})
    # Same name, other key: the key hash differs, so it is an unknown key too.
    with pytest.raises(ProvenanceError, match="signed by 0 of 1 known keys"):
        open_note(signed(), {ORIGIN: WITNESS.public_key()})
    with pytest.raises(ProvenanceError, match="signed by 0 of 0 known keys"):
        open_note(signed(), {})


def _replace_body(text: str, old: str, new: str) -> str:
    body, sigs = text.split("\n\n", 1)
    assert old in body
    return body.replace(old, new, 1) + "\n\n" + sigs


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("gov.nz/dia\n", "gov.nz/dib\n"),  # origin
        ("\n42\n", "\n43\n"),  # size
        (ROOT_B64, base64.b64encode(sha256(b"other").digest()).decode()),  # root
    ],
    ids=["origin", "size", "root"],
)
def test_tampered_body_refused(old: str, new: str) -> None:
    with pytest.raises(ProvenanceError, match="does not verify"):
        open_note(_replace_body(signed(), old, new), VERIFIERS)


@pytest.mark.parametrize("position", [0, 10, 40, 67])
def test_tampered_signature_refused(position: int) -> None:
    sig = SignedNote.parse(signed()).signatures[0]
    blob = bytearray(sig.key_hash + sig.signature)
    blob[position] ^= 0x01
    bad = NoteSignature(sig.key_name, bytes(blob[:4]), bytes(blob[4:]))
    text = SignedNote(BODY, (bad,)).to_text()
    if position < 4:  # key hash changed: no longer a known key
        with pytest.raises(ProvenanceError, match="signed by 0 of 1 known keys"):
            open_note(text, VERIFIERS)
    else:
        with pytest.raises(ProvenanceError, match="does not verify"):
            open_note(text, VERIFIERS)


def test_wrong_key_refused() -> None:
    forged = sign_note(BODY, ORIGIN, WITNESS)  # right name, wrong key
    with pytest.raises(ProvenanceError, match="signed by 0 of 1 known keys"):
        open_note(forged, VERIFIERS)
    # A forged line carrying the known key hash but another key's signature.
    real = SignedNote.parse(signed()).signatures[0]
    wrong = SignedNote.parse(forged).signatures[0]
    text = SignedNote(BODY, (NoteSignature(ORIGIN, real.key_hash, wrong.signature),)).to_text()
    with pytest.raises(
        ProvenanceError, match=re.escape("signature by 'gov.nz/dia' does not verify")
    ):
        open_note(text, VERIFIERS)


def test_bad_known_signature_refuses_whole_note() -> None:
    note = SignedNote.parse(signed())
    real = note.signatures[0]
    bad = NoteSignature(
        "witness.example", key_hash("witness.example", WITNESS.public_key()), b"x" * 64
    )
    text = SignedNote(BODY, (real, bad)).to_text()
    with pytest.raises(ProvenanceError, match=re.escape("'witness.example' does not verify")):
        open_note(text, {**VERIFIERS, "witness.example": WITNESS.public_key()})
    short = NoteSignature(real.key_name, real.key_hash, real.signature[:63])
    with pytest.raises(ProvenanceError, match="must be 64 bytes, got 63"):
        open_note(SignedNote(BODY, (short,)).to_text(), VERIFIERS)


SIG_LINE = signed().split("\n\n", 1)[1]

MALFORMED_BODIES = [
    ("", ValidationError, "must end with a newline"),
    (f"{ORIGIN}\n42\n{ROOT_B64}", ValidationError, "must end with a newline"),
    (f"{ORIGIN}\n42\n", ValidationError, "at least 3 lines, got 2"),
    (f"\n42\n{ROOT_B64}\n", ValidationError, "origin must be a non-empty line"),
    (f"{ORIGIN}\n042\n{ROOT_B64}\n", ValidationError, "no leading zeros"),
    (f"{ORIGIN}\n+42\n{ROOT_B64}\n", ValidationError, "decimal digits"),
    (f"{ORIGIN}\n 42\n{ROOT_B64}\n", ValidationError, "decimal digits"),
    (f"{ORIGIN}\n4_2\n{ROOT_B64}\n", ValidationError, "decimal digits"),
    (f"{ORIGIN}\n\u0664\u0662\n{ROOT_B64}\n", ValidationError, "decimal digits"),
    (f"{ORIGIN}\n18446744073709551616\n{ROOT_B64}\n", ValidationError, "size must be in"),
    (f"{ORIGIN}\n42\n{ROOT_B64[:-4]}\n", ValidationError, "root must be 32 bytes, got 30"),
    (f"{ORIGIN}\n42\n{ROOT_B64.rstrip('=')}\n", ValidationError, "standard base64"),
    (f"{ORIGIN}\n42\n{ROOT_B64} \n", ValidationError, "standard base64"),
    (f"{ORIGIN}\n42\n{ROOT_B64}\n\n", ValidationError, "extension must be a non-empty line"),
    (f"{ORIGIN}\r\n42\n{ROOT_B64}\n", ValidationError, "control characters"),
]


@pytest.mark.parametrize(("text", "error", "message"), MALFORMED_BODIES)
def test_malformed_checkpoint_body(text: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=re.escape(message)) as info:
        Checkpoint.parse(text)
    assert type(info.value) is error


def _non_canonical_root() -> str:
    # Same 32 bytes would decode from a final character with nonzero padding bits.
    last = ROOT_B64[-2]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    other = alphabet[alphabet.index(last) ^ 1]
    return ROOT_B64[:-2] + other + "="


def test_non_canonical_base64_root() -> None:
    text = f"{ORIGIN}\n42\n{_non_canonical_root()}\n"
    with pytest.raises(ValidationError, match="canonical base64"):
        Checkpoint.parse(text)


MALFORMED_NOTES = [
    (BODY, ValidationError, "no blank line before its signatures"),
    (BODY + "\n", ValidationError, "no signature lines after its blank line"),
    (BODY + "\n" + SIG_LINE.rstrip("\n"), ValidationError, "must end with a newline after"),
    (BODY + "\n" + SIG_LINE + "junk\n", ValidationError, "must start with an em dash"),
    (BODY + "\n" + SIG_LINE + "\n", ValidationError, "no signature lines after its blank line"),
    ("junk" + BODY + "\n" + SIG_LINE, ProvenanceError, "does not verify"),
    ("\n" + BODY + "\n" + SIG_LINE, ProvenanceError, "does not verify"),  # text may have them
    (BODY + "\n" + SIG_LINE.replace("\u2014", "--"), ValidationError, "em dash"),
    (BODY + "\n" + SIG_LINE.replace(" ", "  ", 1), ValidationError, "3 fields"),
    (BODY + "\n" + SIG_LINE.replace(ORIGIN, "gov+nz"), ValidationError, "spaces or '+'"),
    (BODY + "\n" + SIG_LINE[:-5] + "!!!=\n", ValidationError, "standard base64"),
    (BODY + "\n\u2014 gov.nz/dia AAAA\n", ValidationError, "over 4 bytes, got 3"),
    (BODY.replace("42", "4\x002") + "\n" + SIG_LINE, ValidationError, "control characters"),
    (BODY + "\n" + SIG_LINE * 101, ValidationError, "at most 100 signatures, got 101"),
    ("x" * 70000 + "\n\n" + SIG_LINE, ValidationError, "at most 65536 bytes"),
    (BODY + "\n" + SIG_LINE + "\ud800", ValidationError, "valid UTF-8"),
]


@pytest.mark.parametrize(("text", "error", "message"), MALFORMED_NOTES)
def test_malformed_note(text: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=re.escape(message)) as info:
        open_note(text, VERIFIERS)
    assert type(info.value) is error


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"origin": ""}, "origin must be a non-empty line"),
        ({"origin": "a\nb"}, "origin must be a non-empty line"),
        ({"size": -1}, "size must be in"),
        ({"size": 2**64}, "size must be in"),
        ({"size": True}, "size must be an integer, got bool"),
        ({"root": ROOT[:31]}, "root must be 32 bytes, got 31"),
        ({"root": ROOT.hex()}, "root must be 32 bytes, got str"),
        ({"extensions": ("",)}, "extension must be a non-empty line"),
    ],
)
def test_checkpoint_validates(kwargs: dict[str, object], message: str) -> None:
    fields: dict[str, object] = {"origin": ORIGIN, "size": 1, "root": ROOT, **kwargs}
    with pytest.raises(ValidationError, match=re.escape(message)):
        Checkpoint(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("body", "name", "message"),
    [
        ("no newline", ORIGIN, "must end with a newline"),
        ("a\tb\n", ORIGIN, "must not contain control characters, got '\\t'"),
        ("", ORIGIN, "non-empty string"),
        (BODY, "", "key name must be a non-empty string"),
        (BODY, "has space", "spaces or '+'"),
        (BODY, "a+b", "spaces or '+'"),
    ],
)
def test_sign_note_refuses(body: str, name: str, message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        sign_note(body, name, LOG)
