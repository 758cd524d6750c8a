"""One exception tree for the whole package.

Every error a user can see is a ``NodeError``. Edge adapters (LMDB, gRPC,
parsing) translate foreign exceptions into this tree, so nothing raw leaks
out of the public API. Messages say what was expected and what was got, and
never contain key material.

The gRPC status table lives in ``node.rpc.service``; the exit-code table in
``node.cli``.
"""

from __future__ import annotations


class NodeError(Exception):
    """Base of every error this package raises on purpose."""


class ValidationError(NodeError):
    """Malformed input: wrong length, bad encoding, unknown value."""


class LimitError(ValidationError):
    """A well-formed request over a resource limit (too costly to answer in
    one piece): send less, or split it."""


class ProvenanceError(ValidationError):
    """Bad signature, unknown or revoked key, or a role that is not allowed."""


class RightsError(ProvenanceError):
    """The roster does not allow this entry: a revoked member or key, a
    seq past a cut-off, a role the member lacks for that seq. The entry may
    still be authentic (its key is the member's); a peer relaying it may
    merely hold a roster this node has not adopted yet, or stored it
    before the change."""


class OrderingError(NodeError):
    """An entry arrived out of order: a gap in an origin's sequence."""


class ConflictError(NodeError):
    """Same identity, other content."""


class EquivocationError(ConflictError):
    """Two different signed bodies for one (origin, seq): proof of a fork."""


class NotFoundError(NodeError):
    """The thing asked for is not stored here."""


class StorageError(NodeError):
    """The store failed (wraps ``lmdb.Error``)."""


class UnavailableError(NodeError):
    """Not ready yet (e.g. an index still being built): retry shortly."""


class ReadOnlyError(NodeError):
    """A write sent to a match replica: it serves reads only, and names its
    primary, which takes the write."""


class PeerError(NodeError):
    """A peer failed or misbehaved (wraps ``grpc.aio.AioRpcError``)."""
