"""Who may call the node's operator-only RPCs on a plaintext node.

With mutual TLS the operator is whoever holds the node's own TLS key
(``node/rpc/tls.py``, ``Action.OPERATOR``). A plaintext (``insecure``)
development node has no identities: there, operator calls are allowed from
the node's own host only, i.e. loopback or a Unix socket.
The peer string is gRPC's (``context.peer()``), e.g. ``ipv4:127.0.0.1:5000``,
``ipv6:[::1]:5000`` or ``unix:/run/ccnode.sock``.
"""

from __future__ import annotations

import ipaddress

from node.errors import ProvenanceError


def is_operator_peer(peer: str) -> bool:
    scheme, _, rest = peer.partition(":")
    if scheme == "unix":
        return True
    if scheme not in ("ipv4", "ipv6"):
        return False
    host = rest.rsplit(":", 1)[0].strip("[]")
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_operator(peer: str, what: str) -> None:
    if not is_operator_peer(peer):
        raise ProvenanceError(
            f"{what} is for the node's operator: expected a caller on the node's own host "
            f"(loopback), got {peer or 'an unknown peer'}"
        )
