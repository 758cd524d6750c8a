"""Mutual TLS between nodes, pinned to the roster; authorization from it.

gRPC's Python API has no certificate-verification callback, so pinning is
done with trust roots: every member's certificate is self-signed, and the
roster carries it. A server trusts exactly the certificates of the
members of its current roster (plus its own, for its operator), refreshed
on every new connection when the roster changes; a revoked member's
certificate completes the handshake, and every call it makes is then
refused with the reason (``caller X is revoked in roster version N``), so
it learns why instead of retrying handshakes that fail with no word; a client trusts
exactly the certificate of the peer it means to reach (or, for CLI use,
those of all members). A certificate that is not pinned fails the handshake.

Who the caller is, and what it may do, is then decided from the TLS auth
context (the SHA-256 of the client certificate's public key, looked up in
the roster), never from request metadata. The table is in README.md
("Roster, mutual TLS and authorization").
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import grpc

from node.core.roster import Action, Caller
from node.core.tlscert import TLS_NAME, TlsIdentity, der_to_pem, pem_to_der, spki_sha256
from node.errors import ProvenanceError, ValidationError
from node.rpc.client import DEFAULT_DEADLINE_S, NodeClient
from node.rpc.operator import require_operator

#: A source of (version, DER certificates) that changes with the roster.
TrustedCerts = Callable[[], tuple[int, Sequence[bytes]]]


def _roots(certs: Sequence[bytes]) -> bytes:
    return b"".join(der_to_pem(c) for c in certs)


def channel_credentials(identity: TlsIdentity, trusted: Sequence[bytes]) -> grpc.ChannelCredentials:
    """Present our certificate; accept only a server holding one of ``trusted``."""
    if not trusted:
        raise ValidationError("no pinned certificate to trust for this connection")
    return grpc.ssl_channel_credentials(
        root_certificates=_roots(trusted),
        private_key=identity.key_pem,
        certificate_chain=identity.cert_pem,
    )


def server_credentials(identity: TlsIdentity, trusted: TrustedCerts) -> grpc.ServerCredentials:
    """Require a client certificate pinned in the current roster."""

    def configuration(certs: Sequence[bytes]) -> Any:
        return grpc.ssl_server_certificate_configuration(
            [(identity.key_pem, identity.cert_pem)], root_certificates=_roots(certs)
        )

    version, certs = trusted()
    served = [version]

    def fetch() -> Any:
        # Called by gRPC for each new connection: a new roster means new roots.
        version, certs = trusted()
        if version == served[0]:
            return None
        served[0] = version
        return configuration(certs)

    return grpc.dynamic_ssl_server_credentials(
        configuration(certs), fetch, require_client_authentication=True
    )


def secure_client(
    address: str,
    identity: TlsIdentity,
    trusted: Sequence[bytes],
    *,
    deadline_s: float = DEFAULT_DEADLINE_S,
) -> NodeClient:
    return NodeClient(
        address, deadline_s=deadline_s, credentials=channel_credentials(identity, trusted)
    )


def caller_spki(context: Any) -> bytes | None:
    """The pinned-key hash of the client's certificate, if it presented one."""
    pems = context.auth_context().get("x509_pem_cert")
    if not pems:
        return None
    return _spki_of_pem(pems[0])


@functools.lru_cache(maxsize=1024)
def _spki_of_pem(pem: bytes) -> bytes:
    # Every call of a peer's long-lived channel presents the same
    # certificate: parse it once, not on every RPC. Raises for a bad one
    # (lru_cache keeps no exceptions).
    return spki_sha256(pem_to_der(pem))


class Authorizer:
    """Who may call what, from the TLS auth context and the current roster."""

    def __init__(
        self,
        authorize: Callable[[bytes, Action, str], Caller] | None,
    ) -> None:
        self._authorize = authorize  # None: plaintext development mode, no checks

    def check(self, context: Any, action: Action, what: str) -> Caller:
        if self._authorize is None:
            if action is Action.OPERATOR:  # plaintext development: the node's own host
                require_operator(context.peer(), what)
            return Caller("")
        spki = caller_spki(context)
        if spki is None:
            raise ProvenanceError(f"{what} needs a client certificate pinned in the roster")
        return self._authorize(spki, action, what)


__all__ = [
    "TLS_NAME",
    "Authorizer",
    "caller_spki",
    "channel_credentials",
    "secure_client",
    "server_credentials",
]
