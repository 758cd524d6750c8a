"""ccnode: a federated, provenance-verifying hash-sharing node."""

__version__ = "0.1.0"
