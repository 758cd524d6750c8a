"""C2SP tlog-checkpoint bodies and C2SP signed notes with Ed25519 signatures.

A checkpoint body is ``<origin>\\n<size>\\n<base64 root>\\n`` plus optional
extension lines. A signed note is the body, a blank line, then one line per
signature: ``— <key name> <base64(key hash || signature)>``, where the key hash
is the first 4 bytes of ``SHA-256(key name || "\\n" || 0x01 || public key)``
and the Ed25519 signature covers the body bytes exactly (UTF-8).

Witness cosignatures follow C2SP tlog-cosignature ``cosignature/v1`` (Ed25519):
the key ID is the first 4 bytes of ``SHA-256(key name || "\\n" || 0x04 || public
key)``, and the signature blob is a ``timestamped_signature``: an 8-byte
big-endian POSIX timestamp (at most 2**63 - 1) then the 64-byte Ed25519
signature over ``"cosignature/v1\\ntime <timestamp>\\n"`` followed by the whole
note body (without signature lines). See :func:`cosign_note` and
:func:`open_cosignature`.

Parsing follows C2SP signed-note and Go's ``golang.org/x/mod/sumdb/note``:

- the text may contain empty lines: the signatures start after the LAST
  blank line; a note refuses only characters below U+0020 other than
  newline (U+007F and the C1 controls are allowed), and invalid UTF-8;
- a signature line is ``— <name> <base64>``; base64 that does not decode
  (bad alphabet or padding) makes the note malformed, as in Go, but
  non-canonical base64 (non-zero unused bits, which Go's decoder accepts)
  is read as what it decodes to and written back canonically;
- an identical line repeated is read once; two different lines with one
  (name, key ID) are both kept, and a verifier checks both (see
  :func:`open_note`).

Checkpoint bodies stay strict: anything that would not re-serialize byte
for byte is refused with ``ValidationError``; signature problems raise
``ProvenanceError``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from node.errors import ProvenanceError, ValidationError

__all__ = [
    "MAX_NOTE_BYTES",
    "MAX_SIGNATURES",
    "Checkpoint",
    "NoteSignature",
    "SignedNote",
    "cosign_note",
    "cosignature_key_id",
    "cosignature_message",
    "key_hash",
    "open_checkpoint",
    "open_cosignature",
    "open_note",
    "sign_note",
    "vkey",
]

MAX_NOTE_BYTES = 64 * 1024
MAX_SIGNATURES = 100
ROOT_SIZE = 32
MAX_TREE_SIZE = 2**64 - 1
ED25519_TYPE = b"\x01"
COSIGNATURE_V1_TYPE = b"\x04"  # C2SP tlog-cosignature, Ed25519 cosignature/v1
COSIGNATURE_HEADER = "cosignature/v1"
COSIGNATURE_SIZE = 8 + 64  # timestamp:u64 big-endian || Ed25519 signature
MAX_COSIGNATURE_TIME = 2**63 - 1
SIG_PREFIX = "\u2014 "  # em dash, space

PublicKeyLike = Ed25519PublicKey | bytes


def _b64decode(text: str, what: str, *, canonical: bool = True) -> bytes:
    """Standard base64: valid alphabet, padded and, if ``canonical``, with
    zero unused bits (so it re-encodes to the same text)."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error) as exc:
        raise ValidationError(f"{what} must be standard base64, got {text[:64]!r}") from exc
    if not text:
        raise ValidationError(f"{what} must be standard base64, got ''")
    if canonical and base64.b64encode(raw).decode("ascii") != text:
        raise ValidationError(f"{what} must be canonical base64, got {text[:64]!r}")
    return raw


def _check_text(text: str, what: str) -> None:
    """Refuse characters below U+0020 other than newline (C2SP signed-note;
    U+007F and the C1 controls are allowed, as in Go's note package)."""
    for ch in text:
        if ch < " " and ch != "\n":
            raise ValidationError(f"{what} must not contain control characters, got {ch!r}")


def _check_key_name(name: str) -> None:
    if not isinstance(name, str) or not name:
        raise ValidationError("key name must be a non-empty string")
    if "+" in name or any(ch.isspace() for ch in name):
        raise ValidationError(f"key name must not contain spaces or '+', got {name!r}")
    _check_text(name, "key name")


def _public_bytes(key: PublicKeyLike) -> bytes:
    if isinstance(key, Ed25519PublicKey):
        return key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    if isinstance(key, bytes) and len(key) == 32:
        return key
    raise ValidationError("verifier key must be an Ed25519 public key or 32 raw bytes")


def key_hash(key_name: str, public_key: PublicKeyLike) -> bytes:
    """Signed-note key hash: first 4 bytes of SHA-256(name || "\\n" || 0x01 || key)."""
    _check_key_name(key_name)
    raw = _public_bytes(public_key)
    return hashlib.sha256(key_name.encode("utf-8") + b"\n" + ED25519_TYPE + raw).digest()[:4]


def vkey(key_name: str, public_key: PublicKeyLike) -> str:
    """The C2SP signed-note verifier key ``<name>+<key ID hex>+<base64(0x01 ||
    key)>`` that stock tooling (Go's ``note.NewVerifier``, witnesses) reads."""
    raw = _public_bytes(public_key)
    blob = base64.b64encode(ED25519_TYPE + raw).decode("ascii")
    return f"{key_name}+{key_hash(key_name, raw).hex()}+{blob}"


# --- checkpoint body -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A C2SP tlog-checkpoint: the log's origin, tree size and root hash."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.origin, str) or not self.origin or "\n" in self.origin:
            raise ValidationError(f"origin must be a non-empty line, got {self.origin!r}")
        _check_text(self.origin, "origin")
        if isinstance(self.size, bool) or not isinstance(self.size, int):
            raise ValidationError(f"size must be an integer, got {type(self.size).__name__}")
        if not 0 <= self.size <= MAX_TREE_SIZE:
            raise ValidationError(f"size must be in [0, 2**64), got {self.size}")
        if not isinstance(self.root, bytes) or len(self.root) != ROOT_SIZE:
            got = len(self.root) if isinstance(self.root, bytes) else type(self.root).__name__
            raise ValidationError(f"root must be {ROOT_SIZE} bytes, got {got}")
        for ext in self.extensions:
            if not isinstance(ext, str) or not ext or "\n" in ext:
                raise ValidationError(f"extension must be a non-empty line, got {ext!r}")
            _check_text(ext, "extension line")

    def to_note_body(self) -> str:
        """The note text: origin, size, base64 root and extensions, each ending in newline."""
        root = base64.b64encode(self.root).decode("ascii")
        lines = [self.origin, str(self.size), root, *self.extensions]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Parse a checkpoint body strictly (the inverse of ``to_note_body``)."""
        if not isinstance(text, str) or not text.endswith("\n"):
            raise ValidationError("checkpoint body must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise ValidationError(f"checkpoint body needs at least 3 lines, got {len(lines)}")
        origin, size_text, root_text, *extensions = lines
        if not size_text.isascii() or not size_text.isdigit():
            raise ValidationError(f"checkpoint size must be decimal digits, got {size_text!r}")
        if len(size_text) > 1 and size_text[0] == "0":
            raise ValidationError(f"checkpoint size must have no leading zeros, got {size_text!r}")
        if len(size_text) > 20:
            raise ValidationError(f"checkpoint size must be < 2**64, got {size_text[:32]!r}")
        root = _b64decode(root_text, "checkpoint root")
        return cls(origin, int(size_text), root, tuple(extensions))


# --- signed notes ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NoteSignature:
    """One signature line: the signer's key name, 4-byte key hash and signature bytes."""

    key_name: str
    key_hash: bytes
    signature: bytes

    def __post_init__(self) -> None:
        _check_key_name(self.key_name)
        if not isinstance(self.key_hash, bytes) or len(self.key_hash) != 4:
            raise ValidationError("signature key hash must be 4 bytes")
        if not isinstance(self.signature, bytes) or not self.signature:
            raise ValidationError("signature must be non-empty bytes")

    def to_line(self) -> str:
        """The ``— <name> <base64>`` line, with its newline."""
        blob = base64.b64encode(self.key_hash + self.signature).decode("ascii")
        return f"{SIG_PREFIX}{self.key_name} {blob}\n"

    @classmethod
    def parse_line(cls, line: str) -> NoteSignature:
        """Parse one signature line (without its newline)."""
        if not line.startswith(SIG_PREFIX):
            raise ValidationError(f"signature line must start with an em dash, got {line[:32]!r}")
        parts = line[len(SIG_PREFIX) :].split(" ")
        if len(parts) != 2:
            raise ValidationError(
                f"signature line must be '— <name> <base64>', got {len(parts)} fields"
            )
        name, blob_text = parts
        blob = _b64decode(blob_text, "signature", canonical=False)
        if len(blob) < 5:
            raise ValidationError(f"signature must be over 4 bytes, got {len(blob)}")
        return cls(name, blob[:4], blob[4:])


def _check_body(body: str) -> None:
    if not isinstance(body, str) or not body:
        raise ValidationError("note body must be a non-empty string")
    if not body.endswith("\n"):
        raise ValidationError("note body must end with a newline")
    _check_text(body, "note body")


@dataclass(frozen=True, slots=True)
class SignedNote:
    """A note body and its signature lines (syntax only; see ``open_note``)."""

    body: str
    signatures: tuple[NoteSignature, ...]

    def __post_init__(self) -> None:
        _check_body(self.body)
        if not self.signatures:
            raise ValidationError("signed note must have at least one signature")
        if len(self.signatures) > MAX_SIGNATURES:
            raise ValidationError(
                f"signed note may have at most {MAX_SIGNATURES} signatures, "
                f"got {len(self.signatures)}"
            )

    def to_text(self) -> str:
        """The full note: body, blank line, signature lines."""
        return self.body + "\n" + "".join(s.to_line() for s in self.signatures)

    @classmethod
    def parse(cls, text: str) -> SignedNote:
        """Parse a signed note strictly; verifies nothing."""
        if not isinstance(text, str):
            raise ValidationError(f"note must be text, got {type(text).__name__}")
        try:
            size = len(text.encode("utf-8"))
        except UnicodeEncodeError as exc:
            raise ValidationError("note must be valid UTF-8 text") from exc
        if size > MAX_NOTE_BYTES:
            raise ValidationError(f"note must be at most {MAX_NOTE_BYTES} bytes, got {size}")
        _check_text(text, "note")
        split = text.rfind("\n\n")  # the text may contain empty lines
        if split < 0:
            raise ValidationError("note has no blank line before its signatures")
        body, sig_text = text[: split + 1], text[split + 2 :]
        if not sig_text:
            raise ValidationError("note has no signature lines after its blank line")
        if not sig_text.endswith("\n"):
            raise ValidationError("note must end with a newline after its last signature")
        lines = sig_text[:-1].split("\n")
        if len(lines) > MAX_SIGNATURES:
            raise ValidationError(
                f"signed note may have at most {MAX_SIGNATURES} signatures, got {len(lines)}"
            )
        # An identical line repeated is read once (Go drops such repeats too).
        return cls(body, tuple(dict.fromkeys(NoteSignature.parse_line(line) for line in lines)))

    def add_signature(self, key_name: str, private_key: Ed25519PrivateKey) -> SignedNote:
        """A copy with one more Ed25519 signature over the body, replacing any
        line by the same (name, key ID), as Go's ``note.Sign`` does."""
        public = private_key.public_key()
        sig = NoteSignature(
            key_name,
            key_hash(key_name, public),
            private_key.sign(self.body.encode("utf-8")),
        )
        kept = [s for s in self.signatures if (s.key_name, s.key_hash) != (key_name, sig.key_hash)]
        return SignedNote(self.body, (*kept, sig))


def sign_note(body: str, key_name: str, private_key: Ed25519PrivateKey) -> str:
    """Sign ``body`` with an Ed25519 key; return the signed-note text."""
    _check_body(body)
    _check_key_name(key_name)
    public = private_key.public_key()
    sig = NoteSignature(
        key_name, key_hash(key_name, public), private_key.sign(body.encode("utf-8"))
    )
    return SignedNote(body, (sig,)).to_text()


def open_note(text: str, verifiers: Mapping[str, PublicKeyLike]) -> tuple[str, list[str]]:
    """Verify a signed note against known keys ``{key name: Ed25519 public key}``.

    Returns the body and the names of the keys whose signatures verified, in
    note order, each once. A line whose (name, key ID) is not a known key is
    ignored, even if its name is known (another signature type of the same
    signer, say). Every line of a known key is checked: one that fails
    refuses the whole note (the spec's SHOULD), whatever its place, so the
    verdict never depends on line order (Go's ``note.Open`` checks only the
    first line of each known key). A note with no good signature by a known
    key is refused too (``ProvenanceError``). Malformed notes raise
    ``ValidationError``.
    """
    note = SignedNote.parse(text)
    message = note.body.encode("utf-8")
    expected = {name: (key_hash(name, key), _public_bytes(key)) for name, key in verifiers.items()}
    verified: list[str] = []
    for sig in note.signatures:
        known = expected.get(sig.key_name)
        if known is None or known[0] != sig.key_hash:
            continue
        if len(sig.signature) != 64:
            raise ProvenanceError(
                f"signature by {sig.key_name!r} must be 64 bytes, got {len(sig.signature)}"
            )
        try:
            Ed25519PublicKey.from_public_bytes(known[1]).verify(sig.signature, message)
        except InvalidSignature as exc:
            raise ProvenanceError(f"signature by {sig.key_name!r} does not verify") from exc
        if sig.key_name not in verified:
            verified.append(sig.key_name)
    if not verified:
        names = ", ".join(repr(s.key_name) for s in note.signatures)
        raise ProvenanceError(f"note signed by 0 of {len(expected)} known keys (signers: {names})")
    return note.body, verified


def open_checkpoint(
    text: str, verifiers: Mapping[str, PublicKeyLike]
) -> tuple[Checkpoint, list[str]]:
    """``open_note`` then ``Checkpoint.parse`` of the verified body."""
    body, names = open_note(text, verifiers)
    return Checkpoint.parse(body), names


# --- C2SP tlog-cosignature: cosignature/v1 ------------------------------------------


def cosignature_key_id(key_name: str, public_key: PublicKeyLike) -> bytes:
    """cosignature/v1 key ID: first 4 bytes of SHA-256(name || "\\n" || 0x04 || key)."""
    _check_key_name(key_name)
    raw = _public_bytes(public_key)
    return hashlib.sha256(key_name.encode("utf-8") + b"\n" + COSIGNATURE_V1_TYPE + raw).digest()[:4]


def _check_time(timestamp: int) -> None:
    if isinstance(timestamp, bool) or not isinstance(timestamp, int):
        raise ValidationError(f"cosignature time must be an integer, got {timestamp!r}")
    if not 0 <= timestamp <= MAX_COSIGNATURE_TIME:
        raise ValidationError(f"cosignature time must be in [0, 2**63), got {timestamp}")


def cosignature_message(body: str, timestamp: int) -> bytes:
    """What a cosignature/v1 signs: header line, time line, then the note body."""
    _check_body(body)
    _check_time(timestamp)
    return f"{COSIGNATURE_HEADER}\ntime {timestamp}\n{body}".encode()


def cosign_note(
    body: str, key_name: str, private_key: Ed25519PrivateKey, timestamp: int
) -> NoteSignature:
    """A cosignature/v1 signature line over ``body`` made at ``timestamp`` (POSIX seconds)."""
    message = cosignature_message(body, timestamp)
    blob = struct.pack(">Q", timestamp) + private_key.sign(message)
    return NoteSignature(key_name, cosignature_key_id(key_name, private_key.public_key()), blob)


def open_cosignature(sig: NoteSignature, public_key: PublicKeyLike, body: str) -> int:
    """Verify a cosignature/v1 line by ``sig.key_name`` over ``body``; return its timestamp.

    Refuses (ProvenanceError) a line whose key ID is not the cosignature/v1 key
    ID of ``public_key`` (a plain Ed25519 note signature, type 0x01, is named
    as such), a blob other than 72 bytes, a timestamp beyond 2**63 - 1 and a
    signature that does not verify.
    """
    name = sig.key_name
    expected = cosignature_key_id(name, public_key)
    if sig.key_hash != expected:
        if sig.key_hash == key_hash(name, public_key):
            raise ProvenanceError(
                f"cosignature by {name!r} is a plain Ed25519 note signature (type 0x01): "
                "expected a C2SP cosignature/v1 (type 0x04)"
            )
        raise ProvenanceError(
            f"cosignature by {name!r} has key ID {sig.key_hash.hex()}: expected "
            f"{expected.hex()} (cosignature/v1 of its key)"
        )
    if len(sig.signature) != COSIGNATURE_SIZE:
        raise ProvenanceError(
            f"cosignature by {name!r} has {len(sig.signature)} bytes: expected "
            f"{COSIGNATURE_SIZE} (8-byte timestamp and 64-byte Ed25519 signature)"
        )
    (timestamp,) = struct.unpack(">Q", sig.signature[:8])
    if timestamp > MAX_COSIGNATURE_TIME:
        raise ProvenanceError(
            f"cosignature by {name!r} has time {timestamp}: expected at most 2**63 - 1"
        )
    try:
        Ed25519PublicKey.from_public_bytes(_public_bytes(public_key)).verify(
            sig.signature[8:], cosignature_message(body, timestamp)
        )
    except InvalidSignature as exc:
        raise ProvenanceError(
            f"cosignature by {name!r} (time {timestamp}) does not verify"
        ) from exc
    return int(timestamp)
