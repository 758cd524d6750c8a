"""The node's directory: config.toml, keys, member card and roster.

Layout of a node directory made by ``ccnode init``::

    DIR/config.toml          this file's options (documented below)
    DIR/member.json          this member's card: id, kind, public keys, TLS
                             certificate; governance adds it to the roster
    DIR/roster.json          the roster: the trust anchor the operator
                             installs, then the newest roster the node adopted
    DIR/keys/entry.pem       Ed25519 entry signing key (0600)
    DIR/keys/checkpoint.pem  Ed25519 checkpoint (and cosigning) key (0600);
                             without it the node signs checkpoints with the
                             entry key (the roster must then list no other)
    DIR/keys/tls.key         ECDSA P-256 TLS key (0600)
    DIR/keys/tls.crt         its self-signed certificate (pinned by the roster)
    DIR/keys/governance.pem  only with ``init --genesis``: a governance key
    DIR/data/                the LMDB environment
    DIR/node.addr            written by a running node: the address it listens on

config.toml (every option; only ``id``, ``kind`` and ``jurisdiction`` are
required, the rest show their defaults; docs/operators.md has the full
reference)::

    id = "gov.example/ct-unit"    # this member's id
    kind = "government"           # government | platform | ngo | observer
    jurisdiction = "NZ"           # ISO 3166-1 alpha-2; "" (none) for non-governments
    listen = "127.0.0.1:0"        # host:port; port 0 picks a free port
    key_file = "keys/entry.pem"   # relative to DIR
    roster_file = "roster.json"   # relative to DIR
    tls_key_file = "keys/tls.key"
    tls_cert_file = "keys/tls.crt"
    insecure = false              # true: plaintext, no authentication; loopback only
    roster_peers = true           # also sync from roster members that list an address
    roster_poll_s = 30.0          # seconds between roster checks with peers; 0 disables
    key_only = false              # a key-only submitter's directory: no node to serve
    metrics_listen = ""           # host:port for Prometheus /metrics; "" = off
    health_listen = ""            # host:port for a plaintext gRPC health-only port
                                  # (Kubernetes' native gRPC probes speak no TLS); "" = off
    log_json = false              # JSON lines instead of human-readable logs
    log_level = "info"            # debug | info | warning | error
    lmdb_map_size_mib = 16384     # initial LMDB map (address space, not disk)
    lmdb_map_max_mib = 0          # grow the map up to this; 0 = no cap
    shutdown_grace_s = 5.0        # SIGTERM: time in-flight calls get to finish
    withholding_after_s = 300.0   # alert when a connected peer advertises
                                  # entries it has not sent for this long
    anti_entropy_s = 5.0          # seconds between anti-entropy rounds; 0 = off
    replica_of = ""               # host:port of this member's node: serve as its match
                                  # replica (docs/operators.md, *Match replicas*); "" = not one
    replica_max_lag = 1000        # a replica's health is NOT_SERVING while it lacks more
                                  # than this many of the primary's entries
    http_listen = ""              # host:port for the HTTP API (docs/http.md); "" = off
    http_mutual_tls = false       # true: HTTPS with the TLS identity, client certificates
                                  # pinned by the roster, as on the gRPC port
    http_max_upload_mib = 64      # an upload over this is refused (413) as it streams in
    http_max_uploads = 2          # uploads received or hashed at once; more get 429
    http_hash_timeout_s = 120.0   # hashing one upload longer than this: refused (429),
                                  # its worker process killed
    http_url_allowlist = []       # url= fetching: only URLs under these prefixes
                                  # ("https://host/path/"); [] = url= refused

    [tlog]                        # transparency log (docs/transparency.md)
    checkpoint_key_file = "keys/checkpoint.pem"
    withholding_grace_s = 60.0    # a peer behind a quorum-cosigned checkpoint
                                  # longer than this is flagged as withholding

Who witnesses, and how many cosignatures settle an entry, is the roster's
to say (members with the WITNESS role, its ``witness_threshold``), so
every node counts "settled" alike; ``tlog.witnesses`` and
``tlog.witness_threshold`` are retired.

    [webhook]                     # incident alerts over HTTP (docs/operators.md)
    url = ""                      # http(s)://...; "" = no webhook
    secret_file = "keys/webhook.secret"  # the shared HMAC secret (>= 16 bytes)
    incidents = []                # only these incident ids; [] = every incident
    queue_max = 10000             # undelivered notifications kept (DIR/webhook/)
    timeout_s = 10.0              # per attempt
    backoff_s = 1.0               # first retry wait, doubling, jittered
    max_backoff_s = 300.0

    [[peer]]                      # one table per peer to sync from
    id = "platform.example"
    address = "127.0.0.1:7001"    # or:
    address_file = "../b/node.addr"  # read at each connect (local meshes)

Environment overrides (applied by ``ccnode serve`` only, never written
back): ``CCNODE_LISTEN``, ``CCNODE_METRICS_LISTEN``, ``CCNODE_HEALTH_LISTEN``, ``CCNODE_LOG_JSON``
(1/0, true/false), ``CCNODE_LOG_LEVEL``, ``CCNODE_REPLICA_OF``, ``CCNODE_HTTP_LISTEN``. See
:func:`apply_env`.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
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


#: Options of the members-file era and what replaced them (a clear refusal
#: beats a silent change of who is trusted).
_RETIRED = {
    "members_file": (
        "'members_file' is retired: membership now comes from a signed roster. "
        "Make this member's keys and card with `ccnode init NEWDIR ...`, have governance "
        "add the card (`ccnode roster add-member`), then `ccnode roster publish ROSTER NEWDIR`"
    ),
    "tlog.witnesses": (
        "'tlog.witnesses' is retired: the witnesses are the roster's members with the "
        "WITNESS role (`ccnode roster set-role FILE --id ID --roles ...,witness`); "
        "remove the option"
    ),
    "tlog.witness_threshold": (
        "'tlog.witness_threshold' is retired: the roster's witness threshold settles "
        "entries (`ccnode roster set-role FILE --witness-threshold K`); remove the option"
    ),
}


@dataclass(frozen=True, slots=True)
class TlogConfig:
    """The ``[tlog]`` table: checkpoint key and withholding grace.

    Witnesses and their threshold come from the roster
    (``node.core.tlog.roster_policy``).
    """

    checkpoint_key_file: str = "keys/checkpoint.pem"
    withholding_grace_s: float = 60.0

    @property
    def withholding_grace_ms(self) -> int:
        return round(self.withholding_grace_s * 1000)

    def table(self) -> dict[str, toml_out.Value]:
        return {
            "checkpoint_key_file": self.checkpoint_key_file,
            "withholding_grace_s": self.withholding_grace_s,
        }

    @classmethod
    def from_table(cls, path: Path, doc: Any) -> TlogConfig:
        if not isinstance(doc, dict):
            raise ValidationError(f"{path}: [tlog] must be a table")
        for name in sorted(doc):
            if f"tlog.{name}" in _RETIRED:
                raise ValidationError(f"{path}: {_RETIRED[f'tlog.{name}']}")
        unknown = sorted(set(doc) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValidationError(f"{path}: unknown option tlog.{unknown[0]}")
        key_file = doc.get("checkpoint_key_file", "keys/checkpoint.pem")
        if not isinstance(key_file, str) or not key_file:
            raise ValidationError(f"{path}: tlog.checkpoint_key_file must be a non-empty string")
        grace = doc.get("withholding_grace_s", 60.0)
        if isinstance(grace, bool) or not isinstance(grace, int | float) or not grace >= 0:
            raise ValidationError(f"{path}: tlog.withholding_grace_s must be a number >= 0")
        return cls(key_file, float(grace))


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    """The ``[webhook]`` table of config.toml (docs/operators.md)."""

    url: str = ""  # "" = no webhook
    secret_file: str = "keys/webhook.secret"  # noqa: S105 (a path) relative to DIR
    incidents: tuple[str, ...] = ()  # only these incident ids; empty: every incident
    queue_max: int = 10_000  # notifications kept undelivered at most
    timeout_s: float = 10.0  # per attempt
    backoff_s: float = 1.0  # first retry wait; doubles per failure
    max_backoff_s: float = 300.0

    def table(self) -> dict[str, toml_out.Value]:
        return {
            "url": self.url,
            "secret_file": self.secret_file,
            "incidents": list(self.incidents),
            "queue_max": self.queue_max,
            "timeout_s": self.timeout_s,
            "backoff_s": self.backoff_s,
            "max_backoff_s": self.max_backoff_s,
        }

    @classmethod
    def from_table(cls, where: str, doc: Any) -> WebhookConfig:
        if not isinstance(doc, dict):
            raise ValidationError(f"{where}: [webhook] must be a table")
        unknown = sorted(set(doc) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValidationError(f"{where}: unknown option webhook.{unknown[0]}")
        url = doc.get("url", "")
        if not isinstance(url, str) or (url and not re.match(r"^https?://[^/\s]+", url)):
            raise ValidationError(f"{where}: webhook.url must be an http:// or https:// URL")
        secret_file = doc.get("secret_file", "keys/webhook.secret")
        if not isinstance(secret_file, str) or not secret_file:
            raise ValidationError(f"{where}: webhook.secret_file must be a non-empty string")
        incidents = doc.get("incidents", [])
        if not isinstance(incidents, list) or not all(isinstance(i, str) for i in incidents):
            raise ValidationError(f"{where}: webhook.incidents must be a list of incident ids")
        queue_max = doc.get("queue_max", 10_000)
        if isinstance(queue_max, bool) or not isinstance(queue_max, int) or queue_max < 1:
            raise ValidationError(f"{where}: webhook.queue_max must be an integer >= 1")
        times = {}
        for name, default in (("timeout_s", 10.0), ("backoff_s", 1.0), ("max_backoff_s", 300.0)):
            value = doc.get(name, default)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ValidationError(f"{where}: webhook.{name} must be a number > 0")
            times[name] = float(value)
        return cls(url, secret_file, tuple(incidents), queue_max, **times)


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
    insecure: bool = False
    roster_peers: bool = True
    roster_poll_s: float = 30.0
    key_only: bool = False
    metrics_listen: str = ""
    health_listen: str = ""
    log_json: bool = False
    log_level: str = "info"
    lmdb_map_size_mib: int = 16384
    lmdb_map_max_mib: int = 0
    shutdown_grace_s: float = 5.0
    withholding_after_s: float = 300.0
    anti_entropy_s: float = 5.0
    replica_of: str = ""
    replica_max_lag: int = 1000
    http_listen: str = ""
    http_mutual_tls: bool = False
    http_max_upload_mib: int = 64
    http_max_uploads: int = 2
    http_hash_timeout_s: float = 120.0
    http_url_allowlist: tuple[str, ...] = ()
    tlog: TlogConfig = TlogConfig()
    webhook: WebhookConfig = WebhookConfig()

    @property
    def replica(self) -> bool:
        return bool(self.replica_of)

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

    def checkpoint_key(self) -> Ed25519PrivateKey:
        """The checkpoint key file if there is one, else the entry key."""
        path = self.dir / self.tlog.checkpoint_key_file
        if path.exists():
            return load_signer(path).private_key
        return self.signer().private_key

    def preflight(self) -> tuple[str, ...]:
        """What ``check-config`` checks and ``serve`` checks before it starts
        (one implementation): the roster file, the entry key (0600), the
        checkpoint key, the TLS identity, and that this member is in the
        roster. Raises on the first fault; returns warnings.

        Not being in the roster is a fault only when the node has no peers:
        with peers it may be a member that has just joined and will fetch the
        roster that lists it (docs/roster.md); without any, nothing it could
        ever receive would be accepted from it.
        """
        roster = self.roster()
        if self.replica:
            return self._replica_preflight(roster)
        self.signer()
        self.checkpoint_key()
        if not self.insecure:
            self.tls_identity()
        me = roster.get(self.id)
        if me is not None and not me.revoked:
            return ()
        what = (
            f"{self.id} is revoked in roster version {roster.version} ({self.roster_path})"
            if me is not None
            else f"{self.id} is not in roster version {roster.version} ({self.roster_path})"
        )
        if not self.peers and not self.key_only:
            raise ValidationError(
                f"{what} and the node has no peers to learn a newer roster from: have "
                f"governance add {self.dir / 'member.json'} to the roster, then "
                "`ccnode roster publish ROSTER DIR`"
            )
        return (f"{what}: other nodes refuse its entries until a roster listing it arrives",)

    def _replica_preflight(self, roster: Roster) -> tuple[str, ...]:
        """A replica needs the roster and the member's TLS identity, and
        neither signing key: it signs nothing. What a member's node uses and
        a replica ignores is a warning, so a copied member directory works."""
        if not self.insecure:
            self.tls_identity()
        me = roster.get(self.id)
        if me is None or me.revoked:
            state = "revoked in" if me is not None else "not in"
            raise ValidationError(
                f"{self.id} is {state} roster version {roster.version} ({self.roster_path}): "
                f"a replica follows its own member's node, and serves only a member's"
            )
        warnings = []
        for name in (self.key_file, self.tlog.checkpoint_key_file):
            if (self.dir / name).exists():
                warnings.append(
                    f"replica of {self.replica_of}: {self.dir / name} is a signing key a "
                    "replica never uses; remove it from the replica's directory (a replica "
                    "needs only the roster and the member's TLS key and certificate)"
                )
        ignored = [
            what
            for what, set_ in (
                ("[[peer]]", bool(self.peers)),
                ("[webhook]", bool(self.webhook.url)),
            )
            if set_
        ]
        if ignored:
            warnings.append(
                f"replica of {self.replica_of}: {' and '.join(ignored)} ignored "
                "(a replica follows its primary only; the primary syncs and alerts)"
            )
        return tuple(warnings)

    def dumps(self) -> str:
        top: dict[str, toml_out.Value] = {
            "id": self.id,
            "kind": self.kind.value,
            "jurisdiction": self.jurisdiction,
            "listen": self.listen,
            "key_file": self.key_file,
        }
        for name in _OPTIONAL:
            top[name] = getattr(self, name)
        peers = [
            {
                k: v
                for k, v in (("id", p.id), ("address", p.address), ("address_file", p.address_file))
                if v
            }
            for p in self.peers
        ]
        tables: dict[str, dict[str, toml_out.Value]] = {"tlog": self.tlog.table()}
        if self.webhook.url:
            tables["webhook"] = self.webhook.table()
        return toml_out.dumps(top, tables=tables, arrays={"peer": peers})

    def save(self) -> None:
        write_atomic(self.dir / CONFIG_NAME, self.dumps())


def _listen(where: str, name: str, value: object, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise ValidationError(
            f"{where}: option {name!r} must be a string 'host:port', got {_show(value)}"
        )
    if allow_empty and value == "":
        return value
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValidationError(
            f"{where}: option {name!r} must be 'host:port' with a port 0..65535, got {value!r}"
        )
    return value


def check_address(where: str, value: str) -> str:
    """A peer's address: ``host:port`` with a real port (1..65535)."""
    host, sep, port = value.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) <= 65535:
        raise ValidationError(f"{where}: expected host:port with a port 1..65535, got {value!r}")
    return value.strip()


def _address(where: str, name: str, value: object) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"{where}: option {name!r} must be a string 'host:port'")
    return check_address(f"{where}: option {name!r}", value)


def _string(where: str, name: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValidationError(
            f"{where}: option {name!r} must be a non-empty string, got {_show(value)}"
        )
    return value


def _bool(where: str, name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(f"{where}: option {name!r} must be true or false, got {_show(value)}")
    return value


def _level(where: str, name: str, value: object) -> str:
    if not isinstance(value, str) or value.lower() not in LOG_LEVELS:
        raise ValidationError(
            f"{where}: option {name!r} must be one of {', '.join(LOG_LEVELS)}, got {_show(value)}"
        )
    return value.lower()


def _int_at_least(low: int) -> Any:
    def check(where: str, name: str, value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValidationError(
                f"{where}: option {name!r} must be an integer >= {low}, got {_show(value)}"
            )
        return value

    return check


def _seconds(where: str, name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ValidationError(
            f"{where}: option {name!r} must be a number of seconds >= 0, got {_show(value)}"
        )
    return float(value)


def _url_prefixes(where: str, name: str, value: object) -> tuple[str, ...]:
    """URL prefixes ``http(s)://host[:port]/path/``: a scheme, a host, and a
    path ending in ``/``, so a prefix can never be extended into another
    host (``https://cdn.example`` would also admit ``https://cdn.example.evil``)."""
    items = tuple(value) if isinstance(value, list | tuple) else None
    if items is None or not all(isinstance(i, str) for i in items):
        raise ValidationError(f"{where}: option {name!r} must be a list of URL prefixes")
    for item in items:
        if not re.fullmatch(
            r"https?://[A-Za-z0-9.\-\[\]:]+/[^\s?#\\@]*", item
        ) or not item.endswith("/"):
            raise ValidationError(
                f"{where}: option {name!r}: {item!r} is not a URL prefix "
                "'http(s)://host[:port]/path/' (ending in '/', no query, no user info)"
            )
    return items


def _show(value: object) -> str:
    return f"{type(value).__name__} {value!r}"[:80]


LOG_LEVELS = ("debug", "info", "warning", "error")

#: Optional top-level options: name -> validator(where, name, value).
_OPTIONAL: dict[str, Any] = {
    "listen": _listen,
    "key_file": _string,
    "roster_file": _string,
    "tls_key_file": _string,
    "tls_cert_file": _string,
    "insecure": _bool,
    "roster_peers": _bool,
    "roster_poll_s": _seconds,
    "key_only": _bool,
    "metrics_listen": lambda w, n, v: _listen(w, n, v, allow_empty=True),
    "health_listen": lambda w, n, v: _listen(w, n, v, allow_empty=True),
    "log_json": _bool,
    "log_level": _level,
    "lmdb_map_size_mib": _int_at_least(1),
    "lmdb_map_max_mib": _int_at_least(0),
    "shutdown_grace_s": _seconds,
    "withholding_after_s": _seconds,
    "anti_entropy_s": _seconds,
    "replica_of": lambda w, n, v: _address(w, n, v) if v != "" else v,
    "replica_max_lag": _int_at_least(0),
    "http_listen": lambda w, n, v: _listen(w, n, v, allow_empty=True),
    "http_mutual_tls": _bool,
    "http_max_upload_mib": _int_at_least(1),
    "http_max_uploads": _int_at_least(1),
    "http_hash_timeout_s": _seconds,
    "http_url_allowlist": _url_prefixes,
}
_REQUIRED = ("id", "kind", "jurisdiction")
_PEER_KEYS = ("id", "address", "address_file")


def load_config(directory: Path) -> NodeConfig:
    """Read and validate DIR/config.toml; errors name the file and the key."""
    path = directory / CONFIG_NAME
    try:
        doc = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ValidationError(
            f"cannot read {path}: {exc.strerror} (run `ccnode init` first?)"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ValidationError(f"{path} is not valid TOML: {exc}") from None
    where = str(path)
    if "members_file" in doc:
        raise ValidationError(f"{where}: {_RETIRED['members_file']}")
    unknown = sorted(set(doc) - set(_REQUIRED) - set(_OPTIONAL) - {"peer", "tlog", "webhook"})
    if unknown:
        raise ValidationError(f"{where}: unknown option {unknown[0]!r}")
    for key in _REQUIRED:
        if not isinstance(doc.get(key), str):
            raise ValidationError(f"{where}: option {key!r} is required (a string)")
    options = {
        name: check(where, name, doc[name]) for name, check in _OPTIONAL.items() if name in doc
    }
    rows = doc.get("peer", [])
    if not isinstance(rows, list):
        raise ValidationError(f"{where}: 'peer' must be an array of tables ([[peer]])")
    peers = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or not isinstance(row.get("id"), str):
            raise ValidationError(f"{where}: peer #{i + 1} needs an 'id'")
        extra = sorted(set(row) - set(_PEER_KEYS))
        if extra:
            raise ValidationError(f"{where}: peer {row['id']!r}: unknown option {extra[0]!r}")
        if not (row.get("address") or row.get("address_file")):
            raise ValidationError(f"{where}: peer {row['id']!r} needs 'address' or 'address_file'")
        if row.get("address"):
            _listen(f"{where}: peer {row['id']!r}", "address", row["address"])
        if not isinstance(row.get("address_file", ""), str):
            raise ValidationError(f"{where}: peer {row['id']!r}: 'address_file' must be a string")
        peers.append(
            PeerConfig(
                check_member_id(row["id"]),
                str(row.get("address", "")),
                str(row.get("address_file", "")),
            )
        )
    try:
        kind = MemberKind.parse(doc["kind"])
        member_id = check_member_id(doc["id"])
    except ValidationError as exc:
        raise ValidationError(f"{where}: {exc}") from None
    return NodeConfig(
        dir=directory,
        id=member_id,
        kind=kind,
        jurisdiction=doc["jurisdiction"],
        peers=tuple(peers),
        **options,
        tlog=TlogConfig.from_table(path, doc.get("tlog", {})),
        webhook=WebhookConfig.from_table(where, doc.get("webhook", {})),
    )


#: Environment variables ``ccnode serve`` honours: variable -> option.
ENV_OVERRIDES = {
    "CCNODE_LISTEN": "listen",
    "CCNODE_METRICS_LISTEN": "metrics_listen",
    "CCNODE_HEALTH_LISTEN": "health_listen",
    "CCNODE_LOG_JSON": "log_json",
    "CCNODE_LOG_LEVEL": "log_level",
    "CCNODE_REPLICA_OF": "replica_of",
    "CCNODE_HTTP_LISTEN": "http_listen",
}
TRUE_WORDS, FALSE_WORDS = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


def apply_env(config: NodeConfig, environ: Mapping[str, str]) -> NodeConfig:
    """The per-deployment overrides, validated like the file; never saved."""
    changes: dict[str, Any] = {}
    for var, name in ENV_OVERRIDES.items():
        if var not in environ:
            continue
        raw: object = environ[var]
        if name == "log_json":
            text = str(raw).strip().lower()
            if text not in TRUE_WORDS + FALSE_WORDS:
                raise ValidationError(
                    f"environment {var}: expected 1/0 or true/false, got {str(raw)[:40]!r}"
                )
            raw = text in TRUE_WORDS
        changes[name] = _OPTIONAL[name](f"environment {var}", name, raw)
    return replace(config, **changes) if changes else config


def with_overrides(config: NodeConfig, **changes: Any) -> NodeConfig:
    """Command-line overrides (``ccnode serve --metrics ...``), validated."""
    checked = {
        name: _OPTIONAL[name]("command line", name, value)
        for name, value in changes.items()
        if value is not None
    }
    return replace(config, **checked) if checked else config


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
