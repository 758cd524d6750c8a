"""Create member directories and genesis rosters (``ccnode init``, meshes).

A member directory holds the member's keys, its card (``member.json``: what
the consortium's governance needs to add it to the roster) and its config.
A key-only submitter's directory has the same shape without a checkpoint
key or a node to serve.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.config import (
    CONFIG_NAME,
    NodeConfig,
    PeerConfig,
    new_key,
    new_tls_identity,
    write_atomic,
)
from node.core.entry import check_member_id
from node.core.roster import (
    EntryKey,
    Member,
    MemberKind,
    Roster,
    SignedRoster,
    default_roles,
    dumps_file,
    member_to_json,
    raw_public_key,
)
from node.errors import ValidationError

CARD_NAME = "member.json"
DEFAULT_ROSTER_DAYS = 365
DAY_MS = 86_400_000


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def init_member_dir(
    directory: Path,
    member_id: str,
    kind: MemberKind,
    *,
    jurisdiction: str = "",
    listen: str = "127.0.0.1:0",
    display_name: str = "",
    address: str = "",
    key_only: bool = False,
    insecure: bool = False,
    peers: Sequence[PeerConfig] = (),
) -> tuple[NodeConfig, Member]:
    """Keys (0600), TLS certificate, card and config for a new member."""
    if (directory / CONFIG_NAME).exists():
        raise ValidationError(f"{directory} is already a member directory")
    check_member_id(member_id)
    directory.mkdir(parents=True, exist_ok=True)
    config = NodeConfig(
        dir=directory,
        id=member_id,
        kind=kind,
        jurisdiction=jurisdiction,
        listen=listen,
        peers=tuple(peers),
        insecure=insecure,
        key_only=key_only,
    )
    entry = new_key(directory / config.key_file)
    checkpoint = None if key_only else new_key(directory / config.tlog.checkpoint_key_file)
    identity = new_tls_identity(
        directory / config.tls_key_file, directory / config.tls_cert_file, member_id, now_ms()
    )
    member = Member(
        id=member_id,
        kind=kind,
        jurisdiction=jurisdiction,
        entry_keys=(EntryKey(raw_public_key(entry.public_key)),),
        address=address,
        display_name=display_name,
        roles=default_roles(kind),
        checkpoint_key=raw_public_key(checkpoint.public_key) if checkpoint else b"",
        tls_cert=identity.cert_der,
    )
    write_card(directory, member)
    config.save()
    return config, member


def write_card(directory: Path, member: Member) -> Path:
    path = directory / CARD_NAME
    write_atomic(path, json.dumps(member_to_json(member), indent=2) + "\n")
    return path


def genesis_roster(
    members: Sequence[Member],
    governance: Sequence[Ed25519PrivateKey],
    *,
    threshold: int = 1,
    witness_threshold: int = 0,
    expires_ms: int | None = None,
) -> SignedRoster:
    """Version 1, signed by every given governance key."""
    roster = Roster(
        version=1,
        expires_ms=expires_ms
        if expires_ms is not None
        else now_ms() + DEFAULT_ROSTER_DAYS * DAY_MS,
        governance_keys=tuple(raw_public_key(k.public_key()) for k in governance),
        governance_threshold=threshold,
        members=tuple(members),
        witness_threshold=witness_threshold,
    )
    signed = SignedRoster.draft(roster)
    for key in governance:
        signed = signed.signed_by(key)
    return signed


def install_roster(config: NodeConfig, signed: SignedRoster) -> None:
    """Write a roster file into a (stopped or new) member directory."""
    write_atomic(config.roster_path, dumps_file(signed))


#: What a replica directory copies from its member's directory besides the
#: config, TLS key and certificate: the files that shape Match answers, so a
#: replica answers as its primary does.
#: Copied into a replica's directory when the member's has them; the HTTP
#: API's key hashes (docs/http.md) stay owner-only (0600).
REPLICA_COPIES = ("policy.toml", "never_match.txt", "http_keys.json")
PRIVATE_COPIES = ("http_keys.json",)


def init_replica_dir(member_dir: Path, directory: Path, primary: str) -> NodeConfig:
    """A match replica's directory from its member's (docs/operators.md,
    *Match replicas*): the member's config (without peers or webhook, with
    ``replica_of``), roster, TLS key and certificate, policy, never-match
    list and HTTP API keys; never a signing key, so a replica cannot sign for the member."""
    import shutil
    from dataclasses import replace

    from node.config import WebhookConfig, check_address, load_config, write_private

    if (directory / CONFIG_NAME).exists():
        raise ValidationError(f"{directory} is already a node directory")
    member = load_config(member_dir)
    if member.key_only:
        raise ValidationError(f"{member_dir} is a key-only member directory: it has no node")
    if member.replica:
        raise ValidationError(
            f"{member_dir} is itself a replica (of {member.replica_of}): make replicas from "
            "the member's own directory"
        )
    primary = check_address("--replica-of", primary)
    member.preflight()  # the member's own directory must be sound first
    directory.mkdir(parents=True, exist_ok=True)
    config = replace(
        member,
        dir=directory,
        peers=(),
        webhook=WebhookConfig(),
        replica_of=primary,
        roster_file="roster.json",
        tls_key_file="keys/tls.key",
        tls_cert_file="keys/tls.crt",
    )
    if not member.insecure:
        key = (member_dir / member.tls_key_file).read_bytes()
        write_private(directory / config.tls_key_file, key)
        shutil.copyfile(member_dir / member.tls_cert_file, directory / config.tls_cert_file)
    shutil.copyfile(member.roster_path, config.roster_path)
    for name in REPLICA_COPIES:
        if (member_dir / name).exists():
            if name in PRIVATE_COPIES:
                write_private(directory / name, (member_dir / name).read_bytes())
            else:
                shutil.copyfile(member_dir / name, directory / name)
    config.save()
    return config
