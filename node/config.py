"""The node's directory: config.toml, keys and members file.

Layout of a node directory made by ``ccnode init``::

    DIR/config.toml      this file's options (documented below)
    DIR/members.toml     who the members are and their public keys
    DIR/keys/entry.pem   the member's Ed25519 entry signing key (0600)
    DIR/keys/checkpoint.pem  its checkpoint (and cosigning) key (0600); without
                         it the node signs checkpoints with the entry key
    DIR/data/            the LMDB environment
    DIR/node.addr        written by a running node: the address it listens on

config.toml::

    id = "gov.example/ct-unit"    # this member's id
    kind = "government"           # government | platform | ngo | observer
    jurisdiction = "NZ"           # ISO 3166-1 alpha-2
    listen = "127.0.0.1:0"        # host:port; port 0 picks a free port
    members_file = "members.toml" # relative to DIR
    key_file = "keys/entry.pem"   # relative to DIR

    [tlog]                        # transparency log (docs/transparency.md)
    checkpoint_key_file = "keys/checkpoint.pem"
    witnesses = ["ngo.example"]   # members whose cosignatures count (and which
                                  # cosign, if this node is one of them)
    witness_threshold = 1         # cosignatures that make an entry settled
    withholding_grace_s = 60.0    # a peer behind a quorum-cosigned checkpoint
                                  # longer than this is flagged as withholding

    [[peer]]                      # one table per peer to sync from
    id = "platform.example"
    address = "127.0.0.1:7001"    # or:
    address_file = "../b/node.addr"  # read at each connect (local meshes)
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from node.core import toml_out
from node.core.entry import Signer, check_member_id
from node.core.tlog import TlogPolicy
from node.core.trust import MemberKind, MembersFile
from node.errors import ValidationError

CONFIG_NAME = "config.toml"
ADDR_FILE = "node.addr"


@dataclass(frozen=True, slots=True)
class PeerConfig:
    id: str
    address: str = ""
    address_file: str = ""

    def resolver(self, base: Path) -> Any:
        def resolve() -> str | None:
            if self.address:
                return self.address
            try:
                text = (base / self.address_file).read_text().strip()
            except OSError:
                return None
            return text or None

        return resolve


@dataclass(frozen=True, slots=True)
class TlogConfig:
    """The ``[tlog]`` table: checkpoint key, witnesses, settling, withholding."""

    checkpoint_key_file: str = "keys/checkpoint.pem"
    witnesses: tuple[str, ...] = ()
    witness_threshold: int = 1
    withholding_grace_s: float = 60.0

    def policy(self) -> TlogPolicy:
        return TlogPolicy(
            frozenset(self.witnesses),
            self.witness_threshold,
            round(self.withholding_grace_s * 1000),
        )

    def table(self) -> dict[str, toml_out.Value]:
        return {
            "checkpoint_key_file": self.checkpoint_key_file,
            "witnesses": list(self.witnesses),
            "witness_threshold": self.witness_threshold,
            "withholding_grace_s": self.withholding_grace_s,
        }

    @classmethod
    def from_table(cls, path: Path, doc: Any) -> TlogConfig:
        if not isinstance(doc, dict):
            raise ValidationError(f"{path}: [tlog] must be a table")
        unknown = sorted(set(doc) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValidationError(f"{path}: unknown option tlog.{unknown[0]}")
        witnesses = doc.get("witnesses", [])
        if not isinstance(witnesses, list) or not all(isinstance(w, str) for w in witnesses):
            raise ValidationError(f"{path}: tlog.witnesses must be a list of member ids")
        threshold = doc.get("witness_threshold", 1)
        grace = doc.get("withholding_grace_s", 60.0)
        if isinstance(threshold, bool) or not isinstance(threshold, int):
            raise ValidationError(f"{path}: tlog.witness_threshold must be an integer")
        if isinstance(grace, bool) or not isinstance(grace, int | float):
            raise ValidationError(f"{path}: tlog.withholding_grace_s must be a number")
        config = cls(
            str(doc.get("checkpoint_key_file", "keys/checkpoint.pem")),
            tuple(check_member_id(w) for w in witnesses),
            threshold,
            float(grace),
        )
        config.policy()  # validates
        return config


@dataclass(frozen=True, slots=True)
class NodeConfig:
    dir: Path
    id: str
    kind: MemberKind
    jurisdiction: str
    listen: str = "127.0.0.1:0"
    members_file: str = "members.toml"
    key_file: str = "keys/entry.pem"
    peers: tuple[PeerConfig, ...] = ()
    tlog: TlogConfig = TlogConfig()

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    @property
    def addr_file(self) -> Path:
        return self.dir / ADDR_FILE

    def members(self) -> MembersFile:
        path = self.dir / self.members_file
        try:
            return MembersFile.loads(path.read_text())
        except OSError as exc:
            raise ValidationError(f"cannot read members file {path}: {exc.strerror}") from None

    def signer(self) -> Signer:
        return load_signer(self.dir / self.key_file)

    def checkpoint_key(self) -> Ed25519PrivateKey:
        """The checkpoint key file if there is one, else the entry key."""
        path = self.dir / self.tlog.checkpoint_key_file
        if path.exists():
            return load_signer(path).private_key
        return self.signer().private_key

    def dumps(self) -> str:
        top: dict[str, toml_out.Value] = {
            "id": self.id,
            "kind": self.kind.value,
            "jurisdiction": self.jurisdiction,
            "listen": self.listen,
            "members_file": self.members_file,
            "key_file": self.key_file,
        }
        peers = [
            {
                k: v
                for k, v in (("id", p.id), ("address", p.address), ("address_file", p.address_file))
                if v
            }
            for p in self.peers
        ]
        return toml_out.dumps(top, tables={"tlog": self.tlog.table()}, arrays={"peer": peers})

    def save(self) -> None:
        write_atomic(self.dir / CONFIG_NAME, self.dumps())


_KNOWN = {"id", "kind", "jurisdiction", "listen", "members_file", "key_file", "peer", "tlog"}


def load_config(directory: Path) -> NodeConfig:
    path = directory / CONFIG_NAME
    try:
        doc = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ValidationError(
            f"cannot read {path}: {exc.strerror} (run `ccnode init` first?)"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ValidationError(f"{path} is not valid TOML: {exc}") from None
    unknown = sorted(set(doc) - _KNOWN)
    if unknown:
        raise ValidationError(f"{path}: unknown option {unknown[0]!r}")
    for key in ("id", "kind", "jurisdiction"):
        if not isinstance(doc.get(key), str):
            raise ValidationError(f"{path}: option {key!r} is required (a string)")
    peers = []
    for i, row in enumerate(doc.get("peer", [])):
        if not isinstance(row, dict) or not isinstance(row.get("id"), str):
            raise ValidationError(f"{path}: peer #{i + 1} needs an 'id'")
        if not (row.get("address") or row.get("address_file")):
            raise ValidationError(f"{path}: peer {row['id']!r} needs 'address' or 'address_file'")
        peers.append(
            PeerConfig(row["id"], str(row.get("address", "")), str(row.get("address_file", "")))
        )
    return NodeConfig(
        dir=directory,
        id=check_member_id(doc["id"]),
        kind=MemberKind.parse(doc["kind"]),
        jurisdiction=doc["jurisdiction"],
        listen=str(doc.get("listen", "127.0.0.1:0")),
        members_file=str(doc.get("members_file", "members.toml")),
        key_file=str(doc.get("key_file", "keys/entry.pem")),
        peers=tuple(peers),
        tlog=TlogConfig.from_table(path, doc.get("tlog", {})),
    )


def write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def new_key(path: Path) -> Signer:
    """Create an Ed25519 key file readable by its owner only (0600)."""
    key = Ed25519PrivateKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return Signer(key)


def load_signer(path: Path) -> Signer:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValidationError(f"cannot read key file {path}: {exc.strerror}") from None
    if path.stat().st_mode & 0o077:
        raise ValidationError(f"key file {path} is readable by others: chmod 600 it")
    try:
        key = load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise ValidationError(f"key file {path} is not an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ValidationError(f"key file {path} is not an Ed25519 key")
    return Signer(key)
