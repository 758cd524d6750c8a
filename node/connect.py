"""Clients that speak as a member directory's TLS identity.

A node's operator (and a key-only submitter) reaches nodes with the TLS
key in its directory, trusting the certificates its roster file pins (and
its own, to reach its own node). A directory configured ``insecure``
speaks plaintext, for local development only.
"""

from __future__ import annotations

from pathlib import Path

import grpc

from node.config import NodeConfig, load_config
from node.rpc.client import DEFAULT_DEADLINE_S, NodeClient
from node.rpc.tls import channel_credentials, secure_client


def _trusted(config: NodeConfig) -> tuple[bytes, ...]:
    signed = config.signed_roster()
    certs = signed.roster.pinned_certs() if signed is not None else ()
    own = config.tls_identity().cert_der
    return certs if own in certs else (*certs, own)


def client_for(
    config: NodeConfig, address: str, *, deadline_s: float = DEFAULT_DEADLINE_S
) -> NodeClient:
    if config.insecure:
        return NodeClient(address, deadline_s=deadline_s)
    return secure_client(address, config.tls_identity(), _trusted(config), deadline_s=deadline_s)


def credentials_for(config: NodeConfig) -> grpc.ChannelCredentials | None:
    """Channel credentials for synchronous gRPC tools (``node.interop.feed``);
    None for a plaintext (``insecure``) directory."""
    if config.insecure:
        return None
    return channel_credentials(config.tls_identity(), _trusted(config))


def credentials_for_dir(directory: str | Path | None) -> grpc.ChannelCredentials | None:
    return credentials_for(load_config(Path(directory))) if directory else None
