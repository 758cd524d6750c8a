"""Self-contained proof bundles: one entry, its inclusion proof and a signed checkpoint.

A bundle lets anyone check, with no node running, that an entry was
published by its origin and is in the origin's log as cosigned by
witnesses. JSON, all binary fields base64::

    {
      "format": "ccnode-proof-bundle/v1",
      "entry_id": "<hex>",             # SHA-256 of the entry body
      "origin": "<member id>", "seq": <n>,
      "entry": "<base64 signed entry>",  # u32be(len(body)) || body || signature
      "checkpoint": "<signed note>",    # origin signature + cosignatures, size > seq
      "inclusion_proof": ["<base64 hash>", ...],
      "members": "<the producer's roster file (consortium-roster/v1 JSON)>",
      # optional: the newest checkpoint the producer's node held, and an
      # RFC 9162 consistency proof from "checkpoint" to it; or, instead,
      # "consistency": "<why no proof is carried>"
      "newest_checkpoint": "<signed note>",
      "consistency_proof": ["<base64 hash>", ...]
    }

The consistency proof shows the entry's log did not fork between the
checkpoint that proves inclusion (often the settled one, older) and the
newest one: the newest checkpoint extends it. A reader that sees a later
checkpoint elsewhere can then compare it with the newest one.

The verifier takes its trust (the roster) from its own copy, never from the
bundle: the embedded roster tells the reader which keys the producer used,
and is compared, not trusted.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from node.core import merkle
from node.core.entry import SignedEntry, check_member_id
from node.core.roster import loads_file
from node.core.tlog import verify_checkpoint
from node.core.trust import TrustView, check_provenance
from node.errors import NodeError, ProvenanceError, ValidationError

FORMAT = "ccnode-proof-bundle/v1"
MAX_BUNDLE_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ProofBundle:
    entry: bytes
    checkpoint: str
    inclusion_proof: tuple[bytes, ...]
    members: str
    newest_checkpoint: str = ""
    consistency_proof: tuple[bytes, ...] = ()
    consistency: str = ""  # why no consistency proof is carried (when none is)

    @property
    def signed_entry(self) -> SignedEntry:
        return SignedEntry.from_bytes(self.entry)

    def to_json(self) -> str:
        entry = SignedEntry.from_bytes(self.entry)
        doc = {
            "format": FORMAT,
            "entry_id": entry.entry_id.hex(),
            "origin": entry.body.origin,
            "seq": entry.body.seq,
            "entry": base64.b64encode(self.entry).decode(),
            "checkpoint": self.checkpoint,
            "inclusion_proof": [base64.b64encode(h).decode() for h in self.inclusion_proof],
            "members": self.members,
        }
        if self.newest_checkpoint:
            doc["newest_checkpoint"] = self.newest_checkpoint
            doc["consistency_proof"] = [
                base64.b64encode(h).decode() for h in self.consistency_proof
            ]
        else:
            doc["consistency"] = self.consistency
        return json.dumps(doc, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> ProofBundle:
        if len(text.encode()) > MAX_BUNDLE_BYTES:
            raise ValidationError(f"bundle is larger than {MAX_BUNDLE_BYTES} bytes")
        try:
            doc: Any = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"bundle is not JSON: {exc}") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ValidationError(f"bundle format must be {FORMAT!r}")
        for name, kind in (
            ("entry", str),
            ("checkpoint", str),
            ("inclusion_proof", list),
            ("members", str),
            ("origin", str),
            ("entry_id", str),
            ("seq", int),
        ):
            if not isinstance(doc.get(name), kind):
                raise ValidationError(f"bundle field {name!r} must be a {kind.__name__}")
        for name, kind in (
            ("newest_checkpoint", str),
            ("consistency_proof", list),
            ("consistency", str),
        ):
            if name in doc and not isinstance(doc[name], kind):
                raise ValidationError(f"bundle field {name!r} must be a {kind.__name__}")
        if bool(doc.get("newest_checkpoint")) != ("consistency_proof" in doc):
            raise ValidationError(
                "bundle fields 'newest_checkpoint' and 'consistency_proof' go together"
            )
        bundle = cls(
            _b64(doc["entry"], "entry"),
            doc["checkpoint"],
            tuple(_b64(h, "inclusion proof hash") for h in doc["inclusion_proof"]),
            doc["members"],
            doc.get("newest_checkpoint", ""),
            tuple(_b64(h, "consistency proof hash") for h in doc.get("consistency_proof", [])),
            doc.get("consistency", ""),
        )
        entry = SignedEntry.from_bytes(bundle.entry)
        if (entry.entry_id.hex(), entry.body.origin, entry.body.seq) != (
            doc["entry_id"],
            check_member_id(doc["origin"]),
            doc["seq"],
        ):
            raise ValidationError("bundle entry_id, origin or seq do not match its entry")
        return bundle


def _b64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise ValidationError(f"bundle {what} must be base64 text")
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise ValidationError(f"bundle {what} is not base64") from None


@dataclass(frozen=True, slots=True)
class BundleReport:
    entry_id: bytes
    origin: str
    seq: int
    tree_size: int
    cosigners: tuple[str, ...]
    members_match: bool  # the bundle's roster lists the same keys for the origin
    newest_size: int = 0  # the newest checkpoint's size, proved consistent (0: none carried)
    consistency: str = ""  # why no consistency proof was carried


def verify_bundle(
    bundle: ProofBundle,
    trust: TrustView,
    witnesses: Mapping[str, bytes],
    threshold: int = 0,
) -> BundleReport:
    """Check every claim of a bundle against ``trust``; raise on the first that fails."""
    entry = SignedEntry.from_bytes(bundle.entry)
    origin, seq = entry.body.origin, entry.body.seq
    check_provenance(trust, entry)
    vc = verify_checkpoint(bundle.checkpoint, trust, dict(witnesses), strict=True)
    if vc.origin != origin:
        raise ValidationError(f"bundle checkpoint is of {vc.origin}'s log, entry of {origin}")
    merkle.verify_inclusion(
        merkle.leaf_hash(bundle.entry), seq, vc.size, bundle.inclusion_proof, vc.root
    )
    cosigners = tuple(c for c in vc.cosigners if c != origin)
    if len(cosigners) < threshold:
        ignored = f" (ignored: {'; '.join(vc.ignored)})" if vc.ignored else ""
        raise ProvenanceError(
            f"bundle checkpoint has {len(cosigners)} of the {threshold} required witness "
            f"cosignatures{ignored}"
        )
    newest_size = 0
    if bundle.newest_checkpoint:
        newest = verify_checkpoint(bundle.newest_checkpoint, trust, dict(witnesses))
        if newest.origin != origin:
            raise ValidationError(
                f"bundle newest checkpoint is of {newest.origin}'s log, entry of {origin}"
            )
        merkle.verify_consistency(
            vc.size, newest.size, bundle.consistency_proof, vc.root, newest.root
        )
        newest_size = newest.size
    return BundleReport(
        entry.entry_id,
        origin,
        seq,
        vc.size,
        cosigners,
        _same_keys(bundle.members, trust, origin),
        newest_size,
        "" if newest_size else (bundle.consistency or "the bundle carries no consistency proof"),
    )


def _same_keys(roster_text: str, trust: TrustView, origin: str) -> bool:
    try:
        theirs = loads_file(roster_text).roster.member(origin)
        ours = trust.member(origin)
    except NodeError:
        return False
    return (theirs.entry_keys, theirs.checkpoint_public_key) == (
        ours.entry_keys,
        ours.checkpoint_public_key,
    )
