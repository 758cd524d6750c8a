"""The node's roster: the newest adopted version, its history, its file copy.

The node's trust view is "the newest roster it has adopted". On start the
keeper reads the history from LMDB; a node with no history adopts the
roster file (``DIR/roster.json``) as its trust anchor, which the operator
installed (``ccnode init --genesis`` or ``ccnode roster publish``). A newer
roster file (published to a stopped node) is adopted at start if it
chains. While running, newer rosters arrive by gossip or ``OfferRoster``
and are adopted by the chain rule in ``node/core/roster.py``; each adopted
version is stored in LMDB (one write transaction per update), then the
file is rewritten so that the CLI and operators see the current roster.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from node.config import write_atomic
from node.core.roster import (
    Action,
    Caller,
    EntryKey,
    Member,
    Roster,
    SignedRoster,
    TrustedRoster,
    Update,
    authorize,
    dumps_file,
    loads_file,
    verify_anchor,
)
from node.errors import NodeError, ValidationError
from node.store.lmdb_store import LmdbStore

log = logging.getLogger(__name__)

#: GetRoster answers stop after this many versions or bytes (the client asks again).
MAX_HISTORY_VERSIONS = 64
MAX_HISTORY_BYTES = 3 * 1024 * 1024


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class RosterKeeper:
    """The node's current roster (a TrustView) and its persistence."""

    def __init__(
        self,
        store: LmdbStore,
        path: Path,
        *,
        own_id: str,
        own_cert: bytes = b"",
        own_spki: bytes = b"",
        clock: Callable[[], int] = _now_ms,
    ) -> None:
        self.store = store
        self.path = path
        self.own = Caller(own_id, operator=True)
        self.own_cert = own_cert
        self.own_spki = own_spki
        self._clock = clock
        self._listeners: list[Callable[[SignedRoster], None]] = []
        self._former: tuple[int, dict[tuple[str, bytes], EntryKey]] | None = None
        from_file = self._read_file()
        latest = store.latest_roster()
        if latest is None:
            if from_file is None:
                raise ValidationError(
                    f"no roster: {path} is missing; install the consortium's roster with "
                    "`ccnode roster publish ROSTER DIR` (or start one with `ccnode init --genesis`)"
                )
            try:
                verify_anchor(from_file, clock())
            except NodeError as exc:
                raise type(exc)(f"roster file {path} cannot be the trust anchor: {exc}") from None
            store.put_rosters([(from_file.version, from_file.to_bytes())])
            self._trusted = TrustedRoster(from_file)
        else:
            self._trusted = TrustedRoster(SignedRoster.from_bytes(latest))
            if from_file is not None and from_file.version > self.version:
                try:
                    self._adopt([from_file])
                except NodeError as exc:
                    log.warning("roster file %s not adopted: %s", path, exc)
        if from_file is None or from_file.body_bytes != self.signed.body_bytes:
            self._write_file()

    def _read_file(self) -> SignedRoster | None:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ValidationError(f"cannot read roster file {self.path}: {exc.strerror}") from None
        try:
            return loads_file(text)
        except ValidationError as exc:
            raise ValidationError(f"{self.path}: {exc}") from None

    def _write_file(self) -> None:
        write_atomic(self.path, dumps_file(self.signed))

    # -- the trust view ------------------------------------------------------

    @property
    def signed(self) -> SignedRoster:
        return self._trusted.current

    @property
    def roster(self) -> Roster:
        return self._trusted.roster

    @property
    def version(self) -> int:
        return self._trusted.current.version

    @property
    def expired(self) -> bool:
        return self.roster.expires_ms <= self._clock()

    def member(self, member_id: str) -> Member:
        return self.roster.member(member_id)

    def members(self) -> tuple[Member, ...]:
        return self.roster.members

    # -- updates -------------------------------------------------------------

    def on_adopt(self, listener: Callable[[SignedRoster], None]) -> None:
        self._listeners.append(listener)

    def offer(self, chain: Sequence[SignedRoster]) -> Update:
        """Adopt what chains from the held roster; raise if nothing can be."""
        return self._adopt(chain)

    def _adopt(self, chain: Sequence[SignedRoster]) -> Update:
        before = self._trusted.current
        try:
            update = self._trusted.update(chain, self._clock())
            if update.adopted:
                self.store.put_rosters([(s.version, s.to_bytes()) for s in update.adopted])
        except BaseException:
            self._trusted.current = before  # nothing adopted unless it is stored
            raise
        if not update.adopted:
            return update
        self._write_file()
        log.info(
            "adopted roster version %d (%d members)%s",
            self.version,
            len(self.roster.members),
            f"; stopped short: {update.refused}" if update.refused else "",
        )
        for listener in self._listeners:
            listener(self.signed)
        return update

    def former_key(self, member_id: str, key_id: bytes) -> EntryKey | None:
        """An entry key ``member_id`` had in a roster version this node holds
        (the newest that lists it), e.g. one removed since without a cut-off:
        its signature proves an entry authentic, not acceptable."""
        if self._former is None or self._former[0] != self.version:
            keys: dict[tuple[str, bytes], EntryKey] = {}
            after = 0
            while batch := self.store.rosters_after(after, MAX_HISTORY_VERSIONS):
                for raw in batch:
                    roster = SignedRoster.from_bytes(raw).roster
                    after = roster.version
                    for m in roster.members:
                        keys.update({(m.id, k.key_id): k for k in m.entry_keys})
            self._former = (self.version, keys)
        return self._former[1].get((member_id, key_id))

    def history_after(self, version: int) -> list[SignedRoster]:
        out: list[SignedRoster] = []
        size = 0
        for raw in self.store.rosters_after(version, MAX_HISTORY_VERSIONS):
            size += len(raw)
            if out and size > MAX_HISTORY_BYTES:
                break
            out.append(SignedRoster.from_bytes(raw))
        return out

    # -- TLS and authorization -----------------------------------------------

    def trusted_certs(self) -> tuple[int, tuple[bytes, ...]]:
        """(roster version, DER certificates a TLS peer may present): every
        member's, revoked ones too, so a revoked member is told so by
        ``authorize`` rather than failing handshakes it cannot explain."""
        certs = self.roster.handshake_certs()
        if self.own_cert and self.own_cert not in certs:
            certs = (*certs, self.own_cert)
        return self.version, certs

    def authorize(self, caller_spki: bytes, action: Action, what: str) -> Caller:
        return authorize(
            self.roster, caller_spki, action, what, own=self.own, own_spki=self.own_spki
        )
