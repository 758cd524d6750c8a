"""The node's directory: config.toml, keys, member card and roster.

Layout of a node directory made by ``ccnode init``::

    DIR/config.toml          this file's options (documented below)
    DIR/member.json          this member's card: id, kind, public keys, TLS
                             certificate; governance adds it to the roster
    DIR/roster.json          the roster: the trust anchor the operator
                             installs, then the newest roster the node adopted
    DIR/keys/entry.pem       Ed25519 entry signing key (0600)
    DIR/keys/checkpoint.pem  Ed25519 checkpoint signing key (0600)
    DIR/keys/tls.key         ECDSA P-256 TLS key (0600)
    DIR/keys/tls.crt         its self-signed certificate (pinned by the roster)
    DIR/keys/governance.pem  only with ``init --genesis``: a governance key
    DIR/data/                the LMDB environment
    DIR/node.addr            written by a running node: the address it listens on

config.toml::

    id = "gov.example/ct-unit"    # this member's id
    kind = "government"           # government | platform | ngo | observer
    jurisdiction = "NZ"           # ISO 3166-1 alpha-2
    listen = "127.0.0.1:0"        # host:port; port 0 picks a free port
    key_file = "keys/entry.pem"   # relative to DIR
    roster_file = "roster.json"   # relative to DIR
    tls_key_file = "keys/tls.key"
    tls_cert_file = "keys/tls.crt"
    checkpoint_key_file = "keys/checkpoint.pem"
    insecure = false              # true: plaintext, no authentication; loopback only
    roster_peers = true           # also sync from roster members that list an address
    roster_poll_s = 30.0          # seconds between roster checks with peers; 0 disables
    key_only = false              # a key-only submitter's directory: no node to serve

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

from node.core import tlscert, toml_out
from node.core.entry import Signer, check_member_id
from node.core.roster import MemberKind, Roster, SignedRoster, loads_file
from node.core.tlscert import TlsIdentity
from node.core.trust import MembersFile
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
class NodeConfig:
    dir: Path
    id: str
    kind: MemberKind
    jurisdiction: str
    listen: str = "127.0.0.1:0"
    key_file: str = "keys/entry.pem"
    peers: tuple[PeerConfig, ...] = ()
    roster_file: str = "roster.json"
    tls_key_file: str = "keys/tls.key"
    tls_cert_file: str = "keys/tls.crt"
    checkpoint_key_file: str = "keys/checkpoint.pem"
    insecure: bool = False
    roster_peers: bool = True
    roster_poll_s: float = 30.0
    key_only: bool = False

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    @property
    def addr_file(self) -> Path:
        return self.dir / ADDR_FILE

    @property
    def roster_path(self) -> Path:
        return self.dir / self.roster_file

    def signed_roster(self) -> SignedRoster | None:
        """The roster file as it is (not verified), or None if there is none."""
        try:
            text = self.roster_path.read_text()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ValidationError(
                f"cannot read roster file {self.roster_path}: {exc.strerror}"
            ) from None
        try:
            return loads_file(text)
        except ValidationError as exc:
            raise ValidationError(f"{self.roster_path}: {exc}") from None

    def roster(self) -> Roster:
        """The roster file as it is (a running node keeps it at its newest roster)."""
        signed = self.signed_roster()
        if signed is None:
            raise ValidationError(
                f"no roster in {self.dir} ({self.roster_file} is missing): install one with "
                "`ccnode roster publish ROSTER DIR`"
            )
        return signed.roster

    def members(self) -> MembersFile:
        """A static trust view of the roster file's members (for offline checks)."""
        return MembersFile.of(list(self.roster().members))

    def signer(self) -> Signer:
        return load_signer(self.dir / self.key_file)

    def tls_identity(self) -> TlsIdentity:
        return load_identity(self.dir / self.tls_key_file, self.dir / self.tls_cert_file)

    def dumps(self) -> str:
        top: dict[str, toml_out.Value] = {
            "id": self.id,
            "kind": self.kind.value,
            "jurisdiction": self.jurisdiction,
            "listen": self.listen,
            "key_file": self.key_file,
            "roster_file": self.roster_file,
            "tls_key_file": self.tls_key_file,
            "tls_cert_file": self.tls_cert_file,
            "checkpoint_key_file": self.checkpoint_key_file,
            "insecure": self.insecure,
            "roster_peers": self.roster_peers,
            "roster_poll_s": self.roster_poll_s,
            "key_only": self.key_only,
        }
        peers = [
            {
                k: v
                for k, v in (("id", p.id), ("address", p.address), ("address_file", p.address_file))
                if v
            }
            for p in self.peers
        ]
        return toml_out.dumps(top, arrays={"peer": peers})

    def save(self) -> None:
        write_atomic(self.dir / CONFIG_NAME, self.dumps())


_KNOWN = {
    "id",
    "kind",
    "jurisdiction",
    "listen",
    "key_file",
    "peer",
    "roster_file",
    "tls_key_file",
    "tls_cert_file",
    "checkpoint_key_file",
    "insecure",
    "roster_peers",
    "roster_poll_s",
    "key_only",
}


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
    if "members_file" in doc:
        raise ValidationError(
            f"{path}: 'members_file' is retired: membership now comes from a signed roster. "
            "Make this member's keys and card with `ccnode init NEWDIR ...`, have governance "
            "add the card (`ccnode roster add-member`), then `ccnode roster publish ROSTER NEWDIR`"
        )
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
        key_file=str(doc.get("key_file", "keys/entry.pem")),
        peers=tuple(peers),
        roster_file=str(doc.get("roster_file", "roster.json")),
        tls_key_file=str(doc.get("tls_key_file", "keys/tls.key")),
        tls_cert_file=str(doc.get("tls_cert_file", "keys/tls.crt")),
        checkpoint_key_file=str(doc.get("checkpoint_key_file", "keys/checkpoint.pem")),
        insecure=_flag(path, doc, "insecure", False),
        roster_peers=_flag(path, doc, "roster_peers", True),
        roster_poll_s=_seconds(path, doc, "roster_poll_s", 30.0),
        key_only=_flag(path, doc, "key_only", False),
    )


def _flag(path: Path, doc: dict[str, Any], key: str, default: bool) -> bool:
    value = doc.get(key, default)
    if not isinstance(value, bool):
        raise ValidationError(f"{path}: option {key!r} must be true or false, got {value!r}")
    return value


def _seconds(path: Path, doc: dict[str, Any], key: str, default: float) -> float:
    value = doc.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValidationError(f"{path}: option {key!r} must be a number >= 0, got {value!r}")
    return float(value)


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
    write_private(path, key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    return Signer(key)


def write_private(path: Path, data: bytes) -> None:
    """Write a new secret file, owner-only (0600); never overwrite one."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


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


def new_tls_identity(key_path: Path, cert_path: Path, member_id: str, now_ms: int) -> TlsIdentity:
    """Create the TLS key (0600) and its self-signed certificate."""
    key = tlscert.new_tls_key()
    write_private(key_path, key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    der = tlscert.self_signed_cert(key, member_id, now_ms)
    write_atomic(cert_path, tlscert.der_to_pem(der).decode())
    return load_identity(key_path, cert_path)


def load_identity(key_path: Path, cert_path: Path) -> TlsIdentity:
    try:
        key_pem = key_path.read_bytes()
        cert_pem = cert_path.read_bytes()
    except OSError as exc:
        raise ValidationError(
            f"cannot read TLS key or certificate {exc.filename}: {exc.strerror}"
        ) from None
    if key_path.stat().st_mode & 0o077:
        raise ValidationError(f"key file {key_path} is readable by others: chmod 600 it")
    try:
        load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        raise ValidationError(
            f"key file {key_path} is not an unencrypted PEM private key"
        ) from None
    try:
        return TlsIdentity(key_pem, tlscert.pem_to_der(cert_pem))
    except ValidationError as exc:
        raise ValidationError(f"{cert_path}: {exc}") from None
