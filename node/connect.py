"""Clients that speak as a member directory's TLS identity.

A node's operator (and a key-only submitter) reaches nodes with the TLS
key in its directory, trusting the certificates its roster file pins (and
its own, to reach its own node). A directory configured ``insecure``
speaks plaintext, for local development only.
"""

from __future__ import annotations

from node.config import NodeConfig
from node.rpc.client import DEFAULT_DEADLINE_S, NodeClient
from node.rpc.tls import secure_client


def client_for(
    config: NodeConfig, address: str, *, deadline_s: float = DEFAULT_DEADLINE_S
) -> NodeClient:
    if config.insecure:
        return NodeClient(address, deadline_s=deadline_s)
    identity = config.tls_identity()
    signed = config.signed_roster()
    certs = signed.roster.pinned_certs() if signed is not None else ()
    if identity.cert_der not in certs:
        certs = (*certs, identity.cert_der)
    return secure_client(address, identity, certs, deadline_s=deadline_s)
