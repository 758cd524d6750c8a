"""C2SP signed-note rules, checked against what Go's golang.org/x/mod/sumdb/note
does (issue 14 items 13-15):

- a line whose (name, key ID) is not a known key is ignored, even when the
  name is known (an ML-DSA-44 cosignature beside the Ed25519 one);
- a repeated (name, key ID) line, or non-canonical base64 in an unknown
  key's line, does not reject the note;
- the text may contain empty lines (the signatures start after the LAST
  blank line); only characters below U+0020 other than newline are refused.

Every verdict is checked for every order of the signature lines.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import re

import pytest

from node.core.checkpoint import (
    NoteSignature,
    SignedNote,
    cosign_note,
    open_note,
    sign_note,
    vkey,
)
from node.core.tlog import sign_checkpoint, verify_checkpoint
from node.core.trust import MemberKind, MembersFile
from node.errors import ProvenanceError, ValidationError
from tests.helpers import member, signer_for

GOV, NGO, OTHER = "gov.example/ct", "ngo.example", "other.example"
MEMBERS = MembersFile.of(
    [member(GOV, MemberKind.GOVERNMENT), member(NGO, MemberKind.NGO), member(OTHER)]
)
WITNESSES = {w: MEMBERS.member(w).checkpoint_public_key for w in (NGO, OTHER)}
TIME = 1_700_000_000


def _checkpoint() -> str:
    return sign_checkpoint(GOV, 3, hashlib.sha256(b"root").digest(), signer_for(GOV).private_key)


def _split(text: str) -> tuple[str, list[str]]:
    note = SignedNote.parse(text)
    return note.body, [s.to_line() for s in note.signatures]


def _v1(body: str, who: str, time_s: int = TIME) -> str:
    return cosign_note(body, who, signer_for(who).private_key, time_s).to_line()


def _mldsa44(who: str) -> str:
    """A line shaped like an ML-DSA-44 cosignature: the witness's name, another
    key ID (another signature type), a 2,420-byte signature."""
    key_id = hashlib.sha256(who.encode() + b"\n\x06" + b"ml-dsa-44 key").digest()[:4]
    blob = hashlib.shake_256(b"mldsa" + who.encode()).digest(2420)
    return f"\u2014 {who} {base64.b64encode(key_id + blob).decode()}\n"


def _orders(body: str, lines: list[str]) -> list[str]:
    return [body + "\n" + "".join(p) for p in itertools.permutations(lines)]


# -- item 13: a known name with another key ID is ignored, in any order --------


def test_other_key_id_by_a_witness_is_ignored_in_every_order() -> None:
    body, (origin,) = _split(_checkpoint())
    for text in _orders(body, [origin, _mldsa44(NGO), _v1(body, NGO)]):
        for strict in (False, True):
            vc = verify_checkpoint(text, MEMBERS, WITNESSES, strict=strict)
            assert vc.cosigners == (NGO,), text
            assert vc.note.signatures[1].to_line() == _v1(body, NGO)


def test_plain_ed25519_line_by_a_witness_is_an_unknown_key_in_every_order() -> None:
    """A witness's key in note form (type 0x01) is not its cosignature/v1 key
    (0x04): an unknown (name, key ID), ignored even when strict, and named
    as ignored."""
    body, (origin,) = _split(_checkpoint())
    plain = SignedNote.parse(_checkpoint()).add_signature(NGO, signer_for(NGO).private_key)
    plain_line = plain.signatures[1].to_line()
    for text in _orders(body, [origin, plain_line, _v1(body, OTHER)]):
        vc = verify_checkpoint(text, MEMBERS, WITNESSES, strict=True)
        assert vc.cosigners == (OTHER,)
        assert vc.ignored == (
            f"cosignature by {NGO!r} is a plain Ed25519 note signature (type 0x01): "
            "expected a C2SP cosignature/v1 (type 0x04)",
        )


def test_bad_cosignature_by_a_known_key_is_refused_in_every_order() -> None:
    """Same (name, key ID) as the witness's key but a bad signature: strict
    refuses whatever the order; lenient drops just that line."""
    body, (origin,) = _split(_checkpoint())
    bad = _v1(body.replace("\n3\n", "\n4\n"), NGO)  # signed over another body
    for text in _orders(body, [origin, bad, _v1(body, OTHER)]):
        with pytest.raises(ProvenanceError, match=re.escape(f"cosignature by {NGO!r} (time")):
            verify_checkpoint(text, MEMBERS, WITNESSES, strict=True)
        assert verify_checkpoint(text, MEMBERS, WITNESSES).cosigners == (OTHER,)


def test_open_note_ignores_a_known_name_with_another_key_id() -> None:
    key = signer_for(GOV).private_key
    text = sign_note("hello\n", GOV, key)
    body, (line,) = _split(text)
    blob = base64.b64encode(bytes([0, 1, 2, 3]) + bytes(64)).decode()
    other = f"\u2014 {GOV} {blob}\n"
    for order in _orders(body, [line, other]):
        assert open_note(order, {GOV: key.public_key()}) == ("hello\n", [GOV])


# -- item 14: repeated lines and non-canonical base64 do not sink a note -------


def _non_canonical(line: str) -> str:
    """The same line with base64 whose unused trailing bits are not zero."""
    name_part, b64 = line.rstrip("\n").rsplit(" ", 1)
    data = b64.rstrip("=")
    assert data != b64  # padded: the last character has unused low bits
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    flipped = alphabet[alphabet.index(data[-1]) ^ 1]
    changed = data[:-1] + flipped + b64[len(data) :]
    assert base64.b64decode(changed) == base64.b64decode(b64) and changed != b64
    return f"{name_part} {changed}\n"


def test_repeated_lines_are_dropped_in_every_order() -> None:
    body, (origin,) = _split(_checkpoint())
    first, later = _v1(body, NGO), _v1(body, NGO, TIME + 60)  # one key, two times
    for text in _orders(body, [origin, origin, first, later, first]):
        vc = verify_checkpoint(text, MEMBERS, WITNESSES, strict=True)
        assert vc.cosigners == (NGO,)
        # The newest of a witness's good cosignatures is kept, whatever the order.
        assert vc.note.signatures[1].to_line() == later
        assert len(vc.note.signatures) == 2


def test_repeated_note_signature_by_a_known_key_in_every_order() -> None:
    key = signer_for(GOV).private_key
    body, (line,) = _split(sign_note("hello\n", GOV, key))
    for text in _orders(body, [line, line]):
        assert open_note(text, {GOV: key.public_key()}) == ("hello\n", [GOV])
    bad = NoteSignature(GOV, SignedNote.parse(body + "\n" + line).signatures[0].key_hash, bytes(64))
    for text in _orders(body, [line, bad.to_line()]):
        with pytest.raises(ProvenanceError, match=re.escape(f"signature by {GOV!r} does not")):
            open_note(text, {GOV: key.public_key()})


def test_non_canonical_base64_of_an_unknown_key_is_ignored_in_every_order() -> None:
    body, (origin,) = _split(_checkpoint())
    stranger = cosign_note(body, "stranger.example", signer_for("x").private_key, TIME).to_line()
    odd = _non_canonical(stranger)
    for text in _orders(body, [origin, odd, _v1(body, NGO)]):
        vc = verify_checkpoint(text, MEMBERS, WITNESSES, strict=True)
        assert vc.cosigners == (NGO,)
    key = signer_for(GOV).private_key
    note_body, (line,) = _split(sign_note("hello\n", GOV, key))
    for text in _orders(note_body, [line, odd]):
        assert open_note(text, {GOV: key.public_key()}) == ("hello\n", [GOV])


def test_base64_that_does_not_decode_still_refuses_the_note() -> None:
    """What Go calls a malformed note stays malformed: bad alphabet or padding."""
    body, (origin,) = _split(_checkpoint())
    for junk in ("\u2014 stranger.example AAAA!!==\n", "\u2014 stranger.example AAAAAA\n"):
        for text in _orders(body, [origin, junk]):
            with pytest.raises(ValidationError, match="must be standard base64"):
                verify_checkpoint(text, MEMBERS, WITNESSES)


# -- item 15: empty lines in the text; only C0 controls are refused -------------


@pytest.mark.parametrize(
    "text",
    [
        "first paragraph\n\nsecond paragraph\n",
        "a\n\n\nb\n",
        "ends with an empty line\n\n",
        "\nstarts with one\n",
        "DEL \x7f and C1 \x80\x85\x9f are allowed\n",
    ],
    ids=["paragraphs", "two empty lines", "trailing empty line", "leading", "DEL and C1"],
)
def test_note_text_rules(text: str) -> None:
    key = signer_for(GOV).private_key
    signed = sign_note(text, GOV, key)
    assert open_note(signed, {GOV: key.public_key()}) == (text, [GOV])
    assert SignedNote.parse(signed).body == text
    # Verification is over the text exactly: the split is at the LAST blank line.
    other = signer_for(NGO).private_key
    both = SignedNote.parse(signed).add_signature(NGO, other).to_text()
    for order in _orders(*_split(both)):
        assert open_note(order, {NGO: other.public_key()}) == (text, [NGO])


@pytest.mark.parametrize("ch", ["\x00", "\t", "\r", "\x1b", "\x1f"])
def test_c0_controls_other_than_newline_are_refused(ch: str) -> None:
    key = signer_for(GOV).private_key
    message = f"note body must not contain control characters, got {ch!r}"
    with pytest.raises(ValidationError, match=re.escape(message)):
        sign_note(f"a{ch}b\n", GOV, key)
    good = sign_note("ab\n", GOV, key)
    with pytest.raises(ValidationError, match="must not contain control characters"):
        open_note(good.replace("ab", f"a{ch}b"), {GOV: key.public_key()})


def test_vkey_matches_go_notes_example() -> None:
    """The verifier key in Go's golang.org/x/mod/sumdb/note documentation
    (and the Rust port's benchmarks): our vkey() of its key gives it back."""
    go = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
    blob = base64.b64decode(go.split("+", 2)[2])
    assert blob[0] == 1
    assert vkey("PeterNeumann", blob[1:]) == go
