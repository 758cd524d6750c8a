"""The audio index: banked Chromaprint tracks -> matches for a query fingerprint.

Pure numpy, fed sub-fingerprints (node/core/chromaprint.py segments, or
:func:`node.media.audio.fingerprint_file` values), never files.

A *track* is what one key names (for entries: one origin's segments under
one video id); its segments are placed on the track's own item positions, so
a track of which only some segments are held still matches on those.

How a query is answered (docs/audio.md, "Matching"):

1. **Lookup.** Each banked sub-fingerprint is posted under its top
   :attr:`AudioSearch.key_bits` bits (24: the first twelve classifiers,
   the most robust ones), in a CSR layout (postings sorted by key, a table
   of where each key's postings start). The query's *anchors* probe: of
   every :attr:`AudioSearch.anchor_stride` (2) consecutive items, the
   steadiest (:func:`anchors`). An anchor probes its own key and every key
   one bit away from it (25 probes), so an item whose top bits took one bit
   error still finds its banked twin; a posting found votes only when the
   bits below the key (8) differ in at most
   :attr:`AudioSearch.max_residual_errors` (2) bits from the anchor's.
   This is AcoustID's idea (look up a robust part of each sub-fingerprint)
   with multi-probing for the edits the vectors show (phone-band and
   room-echo copies keep 11% and 4% of the top 20 bits intact, 26-31%
   within one bit). Runs of equal values are posted and probed once
   (silence and sustained tones are long runs), and a key with more than
   :attr:`AudioSearch.max_postings` postings is not probed at all (a stop
   list, which bounds the work per probe).
2. **Vote.** Each hit votes for (track, banked position - query position).
   Per track, the :attr:`AudioSearch.offsets_per_track` offsets with the
   most votes (at least :attr:`AudioSearch.min_votes`), each with its two
   neighbours, are scored; at most :attr:`AudioSearch.max_tracks` tracks.
3. **Score.** At an offset, the bit errors of each overlapping pair of
   items; the *aligned stretch* is the run of the overlap that maximises
   the sum of ``stretch_bits - errors`` (items agreeing better than chance
   extend it; a missing banked item counts 32 errors), so a copied passage
   inside a longer query is found with its own ends. Its similarity is
   ``1 - bit errors / (32 x items)``, as :func:`node.match.audio.align`.
   When every pair agrees better than ``stretch_bits`` the stretch is the
   whole overlap and the result is ``align``'s at that offset.
4. **Decide.** A match needs :attr:`AudioThresholds.min_similarity` (0.8)
   over at least :attr:`AudioThresholds.min_aligned_s` (7 s) of aligned
   items, and a stretch whose query side has at least
   :attr:`AudioThresholds.min_distinct` distinct values per item (silence
   and near-constant audio have one or a few, and never match).

Memory: 10 bytes of postings and 6 of track data per banked item (a
3-minute track is ~1,450 items, ~23 KiB), and a table of 2**24 + 1 starts
(128 MiB) once the index holds 2**21 postings (a smaller one binary-searches
its sorted keys instead). Docs/audio.md has the figures at 100k tracks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from node.core.chromaprint import ITEM_SECONDS, ChromaprintSegment, item_ms
from node.core.entry import Kind, SignedEntry
from node.errors import ValidationError
from node.match.audio import as_array, beyond_chance
from node.match.matcher import BuiltFromStore
from node.store.lmdb_store import LmdbStore

__all__ = [
    "AudioIndex",
    "AudioMatch",
    "AudioMatcher",
    "AudioSearch",
    "AudioThresholds",
    "aligned_stretch",
    "anchors",
    "informative",
]

U32 = npt.NDArray[np.uint32]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class AudioThresholds:
    """When an aligned stretch is a match (defaults documented in docs/audio.md)."""

    min_similarity: float = 0.8  # 1 - bit error rate over the aligned stretch
    min_aligned_s: float = 7.0  # aligned items x ITEM_SECONDS
    min_distinct: float = 0.25  # distinct query values per item in the stretch
    stretch_bits: int = 10  # an item extends the stretch when it has fewer errors
    min_beyond_chance: float = 0.55  # similarity beyond chance agreement (Cohen's kappa)

    def __post_init__(self) -> None:
        if not 0.5 < self.min_similarity <= 1.0:
            raise ValidationError(
                f"audio min_similarity must be in (0.5, 1]: got {self.min_similarity}"
            )
        if not 0 < self.min_aligned_s <= 3600:
            raise ValidationError(
                f"audio min_aligned_s must be in (0, 3600]: got {self.min_aligned_s}"
            )
        if not 0 <= self.min_distinct <= 1:
            raise ValidationError(f"audio min_distinct must be in [0, 1]: got {self.min_distinct}")
        if not 1 <= self.stretch_bits <= 16:
            raise ValidationError(f"audio stretch_bits must be 1..16: got {self.stretch_bits}")
        if not 0 <= self.min_beyond_chance <= 1:
            raise ValidationError(
                f"audio min_beyond_chance must be in [0, 1]: got {self.min_beyond_chance}"
            )

    @property
    def min_items(self) -> int:
        """The fewest aligned items that make ``min_aligned_s`` (57 for 7 s)."""
        return math.ceil(round(self.min_aligned_s / ITEM_SECONDS, 9))


@dataclass(frozen=True, slots=True)
class AudioSearch:
    """How candidates are found (the work per query is bounded by these)."""

    key_bits: int = 24
    max_postings: int = 4096  # a key posted more often is not probed (stop list)
    min_votes: int = 3
    offsets_per_track: int = 3
    max_tracks: int = 64
    anchor_stride: int = 2  # probe the steadiest query item of every this many
    max_residual_errors: int = 2  # of the (up to 16) bits below the key, for a vote

    def __post_init__(self) -> None:
        if not 8 <= self.key_bits <= 26:
            raise ValidationError(f"audio key_bits must be 8..26: got {self.key_bits}")
        for name in (
            "max_postings",
            "min_votes",
            "offsets_per_track",
            "max_tracks",
            "anchor_stride",
        ):
            if getattr(self, name) < 1:
                raise ValidationError(f"audio {name} must be >= 1: got {getattr(self, name)}")
        if not 0 <= self.max_residual_errors <= 16:
            raise ValidationError(
                f"audio max_residual_errors must be 0..16: got {self.max_residual_errors}"
            )

    @property
    def residual_bits(self) -> int:
        """The bits just below the key that a posting keeps for the vote filter."""
        return min(16, 32 - self.key_bits)


@dataclass(frozen=True, slots=True)
class AudioMatch:
    """One banked track's best aligned stretch against the query.

    ``banked item = query item + offset``; ranges are item positions, end
    exclusive (item ``i`` starts ``i x 1365 / 11025`` s into its track)."""

    track: Hashable
    similarity: float
    offset: int
    query_items: tuple[int, int]
    banked_items: tuple[int, int]
    bit_errors: int
    votes: int
    is_match: bool

    @property
    def items(self) -> int:
        return self.query_items[1] - self.query_items[0]

    @property
    def aligned_s(self) -> float:
        return self.items * ITEM_SECONDS

    @property
    def query_range_ms(self) -> tuple[int, int]:
        return item_ms(self.query_items[0]), item_ms(self.query_items[1])

    @property
    def banked_range_ms(self) -> tuple[int, int]:
        return item_ms(self.banked_items[0]), item_ms(self.banked_items[1])


def informative(values: U32) -> npt.NDArray[np.bool_]:
    """Items that start a run: equal neighbours are posted and probed once."""
    keep = np.ones(len(values), dtype=np.bool_)
    keep[1:] = values[1:] != values[:-1]
    return keep


def aligned_stretch(errors: I64, stretch_bits: int) -> tuple[int, int]:
    """The run ``[i, j)`` of per-item bit errors maximising the sum of
    ``stretch_bits - errors`` (the longest such run on ties); ``(0, 0)``
    when no item has fewer errors than ``stretch_bits``."""
    if not len(errors):
        return 0, 0
    sums = np.concatenate(([0], np.cumsum(stretch_bits - errors)))
    lows = np.minimum.accumulate(sums)
    gain = sums - lows
    j = int(np.argmax(gain))
    if gain[j] <= 0:
        return 0, 0
    i = int(np.argmax(sums[:j] == lows[j]))  # the first position of that minimum
    return i, j


def anchors(values: U32, search: AudioSearch = AudioSearch()) -> I64:
    """The query items that probe the index: of the items that start a run
    (:func:`informative`), every one when ``search.anchor_stride`` is 1, else
    the steadiest of each block of that many consecutive ones: the item whose
    key differs least from its neighbours' (the first on ties). Steady items
    keep their key through edits more often (on the vectors' phone-band
    and room-echo copies, the steadier half of the items keeps it within one
    bit 1.4x as often as all items do, 2.2x as often as the other half)."""
    stride = search.anchor_stride
    pos = np.flatnonzero(informative(values)).astype(np.int64)
    if stride == 1 or len(pos) < 2:
        return pos
    keys = values[pos] >> np.uint32(32 - search.key_bits)
    step = np.bitwise_count(keys[1:] ^ keys[:-1]).astype(np.int64)
    score = np.concatenate((step[:1], step)) + np.concatenate((step, step[-1:]))
    blocks = -(-len(pos) // stride)
    padded = np.full(blocks * stride, 1 << 30, dtype=np.int64)
    padded[: len(pos)] = score
    pick = np.arange(blocks) * stride + np.argmin(padded.reshape(blocks, stride), axis=1)
    out: I64 = pos[pick]
    return out


# A posting is one int64: (track << 32) + banked position + 2**31, so that
# posting - query position is (track << 32) + offset + 2**31, a vote's cell.
_POS_BIAS = 1 << 31
MAX_ITEM = _POS_BIAS - 1  # the last item position a track can hold
_LOW32 = (1 << 32) - 1
_CHUNK = 1 << 24  # postings per step of a build (bounds its temporary arrays)


@dataclass(slots=True)
class _Run:
    """Postings sorted by key (a CSR layout): those of key ``k`` are
    ``post[lo:hi]`` with ``lo, hi`` from :meth:`ranges`, beside the bits
    below the key of each (``low``). A run with at least one posting for
    every 8 keys finds ranges in a table of ``2**key_bits + 1`` starts; a
    smaller one by binary search in its sorted keys."""

    keys: U32  # sorted; empty when ``table`` is used
    table: I64 | None
    post: I64
    low: npt.NDArray[np.uint16]

    @classmethod
    def empty(cls) -> _Run:
        return cls(np.zeros(0, np.uint32), None, np.zeros(0, np.int64), np.zeros(0, np.uint16))

    @classmethod
    def build(
        cls, key_bits: int, keys: npt.NDArray[np.uint64], post: I64, low: npt.NDArray[np.uint16]
    ) -> _Run:
        """Sort postings by key (``keys`` is overwritten). One sort of
        ``key << (64 - key_bits) | arrival``: by key, then in the order they
        came."""
        n = len(keys)
        shift = np.uint64(64 - key_bits)
        table: I64 | None = None
        if n >= (1 << key_bits) // 8:
            table = np.zeros((1 << key_bits) + 1, dtype=np.int64)
            for i in range(0, n, _CHUNK):
                table[1:] += np.bincount(
                    keys[i : i + _CHUNK].astype(np.intp), minlength=1 << key_bits
                )
            np.cumsum(table, out=table)
        keys <<= shift
        for i in range(0, n, _CHUNK):
            keys[i : i + _CHUNK] |= np.arange(i, min(n, i + _CHUNK), dtype=np.uint64)
        keys.sort()
        sorted_post, sorted_low = np.empty_like(post), np.empty_like(low)
        for i in range(0, n, _CHUNK):
            idx = (keys[i : i + _CHUNK] & np.uint64((1 << int(shift)) - 1)).astype(np.intp)
            sorted_post[i : i + _CHUNK] = post[idx]
            sorted_low[i : i + _CHUNK] = low[idx]
        if table is not None:
            return cls(np.zeros(0, np.uint32), table, sorted_post, sorted_low)
        return cls((keys >> shift).astype(np.uint32), None, sorted_post, sorted_low)

    def __len__(self) -> int:
        return len(self.post)

    @property
    def nbytes(self) -> int:
        table = 0 if self.table is None else self.table.nbytes
        return self.keys.nbytes + table + self.post.nbytes + self.low.nbytes

    def all_keys(self) -> U32:
        if self.table is None:
            return self.keys
        per_key = np.diff(self.table)
        out: U32 = np.repeat(np.arange(len(per_key), dtype=np.uint32), per_key)
        return out

    def ranges(self, probes: U32) -> tuple[I64, I64]:
        if self.table is not None:
            return self.table[probes], self.table[probes.astype(np.int64) + 1]
        lo = np.searchsorted(self.keys, probes, side="left").astype(np.int64)
        hi = np.searchsorted(self.keys, probes, side="right").astype(np.int64)
        return lo, hi


@dataclass(slots=True)
class _Segment:
    track: int
    start: int
    end: int
    entry_id: bytes
    retracted: bool


@dataclass(slots=True)
class _Track:
    key: Hashable
    values: U32 = field(default_factory=lambda: np.zeros(0, dtype=np.uint32))
    live: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=np.bool_))
    retired: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=np.bool_))
    segments: dict[int, _Segment] = field(default_factory=dict)  # by start item

    def grow(self, end: int) -> None:
        if end > len(self.values):
            more = end - len(self.values)
            self.values = np.concatenate([self.values, np.zeros(more, np.uint32)])
            self.live = np.concatenate([self.live, np.zeros(more, np.bool_)])
            self.retired = np.concatenate([self.retired, np.zeros(more, np.bool_)])


class AudioIndex:
    """Banked tracks and their postings; :meth:`search` answers a query.

    Adding is cheap (postings are appended); at the next search they are
    sorted into a small run beside the main one, and merged into the main
    run when they reach a quarter of it (so a large index is not re-sorted
    for every segment a live stream adds)."""

    def __init__(self, search: AudioSearch = AudioSearch()) -> None:
        self.params = search
        self._tracks: list[_Track] = []
        self._by_key: dict[Hashable, int] = {}
        self._by_entry: dict[bytes, _Segment] = {}
        self._pending: list[tuple[int, int, int]] = []  # (track, start, end) added
        self._main = _Run.empty()
        self._delta = _Run.empty()

    def __len__(self) -> int:
        return len(self._tracks)

    @property
    def items(self) -> int:
        """Banked items held and not retracted."""
        return int(sum(int(t.live.sum()) for t in self._tracks))

    def add_segment(
        self,
        track: Hashable,
        segment: ChromaprintSegment,
        entry_id: bytes = b"",
        *,
        retracted: bool = False,
    ) -> None:
        self.add(track, segment.start_item, segment.values, entry_id, retracted=retracted)

    def add(
        self,
        track: Hashable,
        start_item: int,
        values: Sequence[int] | npt.NDArray[np.uint32],
        entry_id: bytes = b"",
        *,
        retracted: bool = False,
    ) -> None:
        """Place ``values`` at ``start_item`` of ``track`` (one segment,
        ``entry_id`` naming it for :meth:`retract` and :meth:`void`). A
        segment whose start is already held for that track is ignored (the
        first wins)."""
        arr = as_array(values)
        if not len(arr):
            return
        if start_item < 0:
            raise ValidationError(f"start_item must be >= 0: got {start_item}")
        if start_item + len(arr) - 1 > MAX_ITEM:
            raise ValidationError(
                f"a track holds items 0..{MAX_ITEM}: got {start_item + len(arr) - 1}"
            )
        t = self._by_key.get(track)
        if t is None:
            t = self._by_key[track] = len(self._tracks)
            self._tracks.append(_Track(track))
        tr = self._tracks[t]
        if start_item in tr.segments:
            return
        end = start_item + len(arr)
        seg = _Segment(t, start_item, end, entry_id, retracted)
        tr.segments[start_item] = seg
        if entry_id:
            self._by_entry[entry_id] = seg
        tr.grow(end)
        tr.values[start_item:end] = arr
        (tr.retired if retracted else tr.live)[start_item:end] = True
        self._pending.append((t, start_item, end))

    def _mark(self, seg: _Segment, *, retracted: bool) -> None:
        tr = self._tracks[seg.track]
        seg.retracted = retracted
        tr.live[seg.start : seg.end] = not retracted
        tr.retired[seg.start : seg.end] = retracted

    def retract(self, entry_id: bytes) -> bool:
        """A segment's items match only ``include_retracted`` queries from
        now on; False if it is not held."""
        seg = self._by_entry.get(entry_id)
        if seg is None:
            return False
        self._mark(seg, retracted=True)
        return True

    def unretract(self, entry_id: bytes) -> None:
        """A RETRACT was voided: its target's items match again."""
        seg = self._by_entry.get(entry_id)
        if seg is not None:
            self._mark(seg, retracted=False)

    def void(self, entry_id: bytes) -> None:
        """Forget a segment (a fork resolution voided its entry). Its
        postings stay but its items score as missing."""
        seg = self._by_entry.pop(entry_id, None)
        if seg is None:
            return
        tr = self._tracks[seg.track]
        tr.live[seg.start : seg.end] = False
        tr.retired[seg.start : seg.end] = False
        del tr.segments[seg.start]

    def track_segments(self, track: Hashable) -> tuple[bytes, ...]:
        """Every held segment of ``track`` (retracted ones included), in order."""
        return tuple(e for e, _ in self.segments_of(track, (0, 2**63)))

    def segments_of(self, track: Hashable, items: tuple[int, int]) -> list[tuple[bytes, bool]]:
        """(entry id, retracted) of the track's segments overlapping ``items``, in order."""
        t = self._by_key.get(track)
        if t is None:
            return []
        lo, hi = items
        return [
            (s.entry_id, s.retracted)
            for _, s in sorted(self._tracks[t].segments.items())
            if s.start < hi and lo < s.end
        ]

    @property
    def nbytes(self) -> int:
        """Bytes of the index's arrays: postings, and the tracks' items and flags."""
        tracks = sum(t.values.nbytes + t.live.nbytes + t.retired.nbytes for t in self._tracks)
        return self._main.nbytes + self._delta.nbytes + tracks

    def _key(self, values: U32) -> U32:
        shifted: U32 = values >> np.uint32(32 - self.params.key_bits)
        return shifted

    def _low(self, values: U32) -> npt.NDArray[np.uint16]:
        """The ``residual_bits`` bits just below each value's key."""
        p = self.params
        below = values >> np.uint32(32 - p.key_bits - p.residual_bits)
        return (below & np.uint32((1 << p.residual_bits) - 1)).astype(np.uint16)

    def _build(self) -> None:
        """Post the segments added since the last search: a run start
        (:func:`informative`) of each, from the track's values."""
        if not self._pending:
            return
        fresh = sum(end - start for _, start, end in self._pending)
        runs = [self._delta]
        if fresh + len(self._delta) > max(1 << 16, len(self._main) // 4):
            runs.insert(0, self._main)
            self._main = _Run.empty()
        size = fresh + sum(len(r) for r in runs)
        keys = np.empty(size, dtype=np.uint64)
        post = np.empty(size, dtype=np.int64)
        low = np.empty(size, dtype=np.uint16)
        n = 0
        for run in runs:
            keys[n : n + len(run)] = run.all_keys()
            post[n : n + len(run)] = run.post
            low[n : n + len(run)] = run.low
            n += len(run)
        self._delta = _Run.empty()
        del runs, run
        for t, start, end in self._pending:
            values = self._tracks[t].values[start:end]
            keep = np.flatnonzero(informative(values))
            posted = values[keep]
            k = len(keep)
            keys[n : n + k] = self._key(posted)
            post[n : n + k] = (t << 32) + (start + _POS_BIAS) + keep
            low[n : n + k] = self._low(posted)
            n += k
        self._pending = []
        built = _Run.build(self.params.key_bits, keys[:n], post[:n], low[:n])
        if len(self._main):
            self._delta = built
        else:
            self._main = built

    # ------------------------------------------------------------ search

    def _votes(self, query: U32) -> tuple[I64, I64, I64]:
        """(track, offset, votes) for every (track, offset) voted for."""
        p = self.params
        qpos = anchors(query, p)
        flips = np.concatenate(([0], np.left_shift(1, np.arange(p.key_bits)))).astype(np.uint32)
        probes = (self._key(query[qpos])[:, None] ^ flips[None, :]).reshape(-1)
        probe_pos = np.repeat(qpos, len(flips))
        probe_low = np.repeat(self._low(query[qpos]), len(flips))
        runs = [r for r in (self._main, self._delta) if len(r)]
        ranges = [r.ranges(probes) for r in runs]
        held = sum((hi - lo for lo, hi in ranges), np.zeros(len(probes), dtype=np.int64))
        stopped = held > p.max_postings
        cells = []
        for run, (lo, hi) in zip(runs, ranges, strict=True):
            counts = np.where(stopped, 0, hi - lo)
            ends = np.cumsum(counts)
            total = int(ends[-1]) if len(ends) else 0
            if not total:
                continue
            # each probe's range [lo, hi) expanded into posting indices
            found = np.repeat(lo - (ends - counts), counts)
            found += np.arange(total)
            if p.max_residual_errors < p.residual_bits:
                differ = run.low[found]
                differ ^= np.repeat(probe_low, counts)
                kept = np.flatnonzero(np.bitwise_count(differ) <= p.max_residual_errors)
                found = found[kept]
                probe = np.searchsorted(ends, kept, side="right")  # the probe of each
            else:
                probe = np.repeat(np.arange(len(probes)), counts)
            cells.append(run.post[found] - probe_pos[probe])
        voted = np.concatenate(cells) if cells else np.zeros(0, dtype=np.int64)
        if not len(voted):
            return voted, voted, voted
        voted.sort()
        first = np.flatnonzero(np.concatenate(([True], voted[1:] != voted[:-1])))
        votes = np.diff(np.append(first, len(voted)))
        cell = voted[first]
        return cell >> 32, (cell & _LOW32) - _POS_BIAS, votes

    def _candidates(self, query: U32) -> dict[int, list[tuple[int, int]]]:
        """Per track index: [(offset, votes)] to score, best voted first."""
        p = self.params
        tracks, offsets, votes = self._votes(query)
        keep = votes >= p.min_votes
        tracks, offsets, votes = tracks[keep], offsets[keep], votes[keep]
        order = np.lexsort((offsets, -votes, tracks))
        out: dict[int, list[tuple[int, int]]] = {}
        for t, o, v in zip(
            tracks[order].tolist(), offsets[order].tolist(), votes[order].tolist(), strict=True
        ):
            got = out.setdefault(t, [])
            if len(got) < p.offsets_per_track:
                got.append((o, v))
        best = sorted(out, key=lambda t: (-out[t][0][1], t))[: p.max_tracks]
        return {t: out[t] for t in best}

    def search(
        self,
        query: Sequence[int] | npt.NDArray[np.uint32],
        thresholds: AudioThresholds = AudioThresholds(),
        *,
        matches_only: bool = True,
        include_retracted: bool = False,
    ) -> list[AudioMatch]:
        """Each candidate track's best stretch (only matches unless
        ``matches_only`` is False), best first. Items of retracted segments
        count as missing unless ``include_retracted``."""
        q = as_array(query)
        self._build()
        if not len(q) or not len(self._main) + len(self._delta):
            return []
        results = []
        for t, offsets in self._candidates(q).items():
            tried: set[int] = set()
            best: AudioMatch | None = None
            for o, v in offsets:
                for off in (o, o - 1, o + 1):
                    if off in tried:
                        continue
                    tried.add(off)
                    m = self._score(t, q, off, v, thresholds, retracted=include_retracted)
                    if m is not None and (
                        best is None or _rank(m, thresholds) > _rank(best, thresholds)
                    ):
                        best = m
            if best is not None and (best.is_match or not matches_only):
                results.append(best)
        results.sort(key=lambda m: _rank(m, thresholds), reverse=True)
        return results

    def _score(
        self, t: int, q: U32, offset: int, votes: int, th: AudioThresholds, *, retracted: bool
    ) -> AudioMatch | None:
        tr = self._tracks[t]
        qa, qb = max(0, -offset), min(len(q), len(tr.values) - offset)
        if qb <= qa:
            return None
        errors = np.bitwise_count(q[qa:qb] ^ tr.values[qa + offset : qb + offset]).astype(np.int64)
        held = tr.live[qa + offset : qb + offset]
        if retracted:
            held = held | tr.retired[qa + offset : qb + offset]
        errors[~held] = 32
        i, j = aligned_stretch(errors, th.stretch_bits)
        if j <= i:
            return None
        bit_errors = int(errors[i:j].sum())
        n = j - i
        similarity = 1.0 - bit_errors / (32 * n)
        is_match = (
            similarity >= th.min_similarity
            and n >= th.min_items
            and len(np.unique(q[qa + i : qa + j])) >= th.min_distinct * n
        )
        if is_match and th.min_beyond_chance > 0:  # biased bits (noise, sweeps) agree by chance
            banked = tr.values[qa + i + offset : qa + j + offset]
            is_match = beyond_chance(q[qa + i : qa + j], banked, similarity) >= th.min_beyond_chance
        return AudioMatch(
            track=tr.key,
            similarity=similarity,
            offset=offset,
            query_items=(qa + i, qa + j),
            banked_items=(qa + i + offset, qa + j + offset),
            bit_errors=bit_errors,
            votes=votes,
            is_match=is_match,
        )


def _rank(m: AudioMatch, th: AudioThresholds) -> tuple[bool, int, float, int, int]:
    """Matches first; then the stretch's gain, the sum of ``stretch_bits -
    errors`` the aligned stretch maximises at one offset, compared across
    offsets too: a whole copy aligned over 3 minutes at 0.886 outranks its
    chorus aligned with the banked track's other chorus over 12 s at 0.890,
    and the true offset outranks its neighbours (an item's neighbour differs
    by ~4.7 bits); then similarity, length, the smaller offset."""
    gain = th.stretch_bits * m.items - m.bit_errors
    return (m.is_match, gain, m.similarity, m.items, -abs(m.offset))


# ------------------------------------------------------------- the node's


class AudioMatcher(BuiltFromStore):
    """The node's audio index over its store: built at start-up (off the
    event loop), then kept current by commit listeners, like the frame
    index. A track is one origin's CHROMAPRINT segments under one video id."""

    def __init__(self, store: LmdbStore, search: AudioSearch = AudioSearch()) -> None:
        super().__init__(store)
        self.index = AudioIndex(search)

    def build(self, progress: Callable[[str], None] | None = None) -> int:
        self._begin_build()
        n = 0
        for stored in self.store.iter_stored("CHROMAPRINT"):
            self._add(stored.entry, retracted=bool(stored.retracted_by))
            n += 1
        self._end_build()
        if progress is not None:
            progress(f"audio index: {self.index.items:,} items of {len(self.index):,} tracks")
        return n

    def _add(self, entry: SignedEntry, *, retracted: bool = False) -> None:
        body = entry.body
        seg = ChromaprintSegment.decode(body.hash)
        self.index.add_segment(
            (body.origin, seg.video_id), seg, entry.entry_id, retracted=retracted
        )

    def search(
        self,
        query: Sequence[int] | npt.NDArray[np.uint32],
        thresholds: AudioThresholds,
        *,
        include_retracted: bool = False,
        matches_only: bool = True,
    ) -> list[AudioMatch]:
        """:meth:`AudioIndex.search` from a worker thread, holding the index
        lock (commits meanwhile are queued, never waited for)."""
        self._index_lock.acquire()
        try:
            self._drain()
            return self.index.search(
                query,
                thresholds,
                matches_only=matches_only,
                include_retracted=include_retracted,
            )
        finally:
            self._release()

    def segments_of(self, track: Hashable, items: tuple[int, int]) -> list[tuple[bytes, bool]]:
        with self._index_lock:
            return self.index.segments_of(track, items)

    def _apply(self, entries: Sequence[SignedEntry]) -> None:
        for e in entries:
            body = e.body
            if body.kind == Kind.ADD and body.algorithm == "CHROMAPRINT":
                self._add(e)
            elif body.kind == Kind.RETRACT:
                self.index.retract(body.target)

    def _void(self, entries: Sequence[SignedEntry]) -> None:
        self._void_segments(entries, "CHROMAPRINT", self.index.void, self.index.unretract)
