"""The per-node "never match" list (negative bank).

Hashes of known benign viral images (a famous news photo, a meme that was
wrongly submitted somewhere) that this platform never wants matched, whatever
the consortium says. Applied at match time only: entries stay stored and
replicated; the node just answers "no match (never-match list)".

File ``DIR/never_match.txt``, one hash a line in python-threatexchange's
plain format, ``<signal type> <hex>`` (``pdq``, ``md5``, ``sha256``,
``video_md5``); ``#`` starts a comment. A PDQ query within
``NEVER_MATCH_DISTANCE`` of a listed PDQ hash is suppressed; other
algorithms are suppressed on equality.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from node.core import hashes
from node.errors import ValidationError
from node.match.pdq_index import PdqIndex

NEVER_MATCH_FILE = "never_match.txt"
NEVER_MATCH_DISTANCE = 31

_BY_PYTX = {a.pytx_name: a.name for a in hashes.ALGORITHMS.values()}


class NegativeBank:
    def __init__(self) -> None:
        self._exact: set[tuple[str, bytes]] = set()
        self._pdq = PdqIndex()
        self.source = ""

    def __len__(self) -> int:
        return len(self._exact) + len(self._pdq)

    @classmethod
    def load(cls, path: Path) -> NegativeBank:
        """Read the file if it exists; every bad line is an error naming it."""
        bank = cls()
        if not path.exists():
            return bank
        bank.source = str(path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise ValidationError(f"cannot read {path}: {exc.strerror}") from None
        pdq_ids: list[int] = []
        pdq_values: list[bytes] = []
        for n, raw in enumerate(text.splitlines(), 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            if len(parts) != 2 or parts[0].lower() not in _BY_PYTX:
                raise ValidationError(
                    f"{path}:{n}: expected '<signal type> <hex>' with a signal type of "
                    f"{', '.join(sorted(_BY_PYTX))}, got {raw.strip()[:60]!r}"
                )
            algo = _BY_PYTX[parts[0].lower()]
            try:
                value = hashes.parse_hex(algo, parts[1])
            except ValidationError as exc:
                raise ValidationError(f"{path}:{n}: {exc}") from None
            if algo == "PDQ":
                pdq_ids.append(len(pdq_ids))
                pdq_values.append(value)
            else:
                bank._exact.add((algo, value))
        if pdq_ids:
            bank._pdq.add_many(pdq_ids, pdq_values)
        return bank

    def suppressed_pdq(self, hashes: Sequence[bytes]) -> list[bool]:
        """For each PDQ hash (a video's frames), whether it is near a listed one:
        one batched lookup."""
        out = [False] * len(hashes)
        if len(self._pdq) and hashes:
            qid, _, _ = self._pdq.search_arrays(list(hashes), NEVER_MATCH_DISTANCE)
            for i in set(qid.tolist()):
                out[i] = True
        return out

    def suppresses(self, algorithm: str, value: bytes) -> bool:
        if algorithm == "PDQ":
            return bool(len(self._pdq)) and bool(self._pdq.search(value, NEVER_MATCH_DISTANCE))
        return (algorithm, value) in self._exact
