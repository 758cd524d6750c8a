"""File formats for ``ccnode export`` and ``ccnode import``.

``pytx``: python-threatexchange's plain signal file, as its ``local_file``
exchange reads it: one ``<signal type> <signal>`` per line, where the
signal type is python-threatexchange's name (``pdq``, ``video_md5``,
``md5``, ``sha256``; see ``node.core.hashes``) and the signal is the hash in
lowercase hex. Export writes the active (non-retracted) ADD entries, one line
per distinct hash. A banked video (its VPDQ segments: one origin, one video
id) is one ``vpdq`` line whose signal is python-threatexchange's: a JSON list
of ``"pdq_hex,quality,timestamp"`` strings, the timestamp in seconds written
as pytx writes it (``{ts:.3}``: three significant digits, so ``1e+02`` and
``1.23e+03`` occur), holding the reference vPDQ's one-hash-per-second frames
that the bank keeps at full size (node/core/vpdq.py, ``reference_frames``),
so pytx and HMA match it as they match their own. TMK+PDQF has no pytx form
here and is left out (and counted). Import also accepts blank lines and
``#`` comments, and a ``vpdq`` line becomes the segments of one video (its id
the first 16 bytes of SHA-256 of the signal, so a re-import is recognised).

The pytx file carries a signal type and a hash per line and nothing else:
python-threatexchange reads every other word as part of the hash, and lists
what it fetches from such a file as INVESTIGATION_SEED with no tags. Labels
and incidents cannot ride along; the export says so, and the exchange
extension (``node.interop.pytx``: POSITIVE_CLASS opinions, labels as tags)
or csv/jsonl carry them. python-threatexchange names file digests by the
content they hash (``video_md5``, ``video_sha256``) and skips lines of types
it does not know: an MD5 or SHA-256 entry labelled as a video is exported
under its video name, and other MD5/SHA-256 rows (ccnode's ``md5``,
``sha256``, which ccnode's import reads) are counted as unread by pytx.

Import derives the ``type:`` label from the signal type where it implies
one (PDQ: ``type:image``; ``video_md5``, ``video_sha256``, TMK+PDQF, vPDQ:
``type:video``): a ``--label type:...`` of another kind of content is not
applied to that row, and a row left with no ``type:`` label gets the implied
one (``type:livestream`` is a video too). Rows of python-threatexchange
signal types that are not hashes ccnode carries (``url``, ``url_md5``,
``raw_text``, ``trend_query``), rows an export marked retracted, and trivial
digests are skipped with a warning: a partial import by design. Rows that
cannot be read are bad rows.

``csv``: a header row, then one row per entry. Import needs the columns
``algorithm`` and ``hash``; ``labels`` (separated by ``;``), ``incident``,
``reason`` and ``urgent`` (true/false) are optional; other columns (those an
export adds) are ignored, so an export can be imported elsewhere.

``jsonl``: one JSON object per line with the same keys (``labels`` a list).

Export rows carry full provenance: entry id, origin and its kind and
jurisdiction, seq, signed time, arrival time, retraction, key id, and the
signed body and signature in hex, so anyone can re-verify an exported row.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from node.core import hashes, labels, vpdq
from node.core.entry import Kind, SignedEntry
from node.errors import NodeError, ValidationError

FORMATS = ("pytx", "csv", "jsonl")
LABEL_SEPARATOR = ";"
CSV_COLUMNS = (
    "entry_id",
    "origin",
    "origin_kind",
    "jurisdiction",
    "seq",
    "time_ms",
    "arrival_ms",
    "algorithm",
    "pytx_type",
    "hash",
    "labels",
    "incident",
    "reason",
    "urgent",
    "retracted",
    "retracted_by",
    "key_id",
    "body",
    "signature",
)
_BY_PYTX = {a.pytx_name: a.name for a in hashes.ALGORITHMS.values()}
# python-threatexchange's name for the SHA-256 of a video file: our SHA256.
_BY_PYTX["video_sha256"] = "SHA256"
#: python-threatexchange signal types that are not media hashes ccnode carries.
PYTX_SKIPPED_TYPES = frozenset({"url", "url_md5", "raw_text", "trend_query"})
IMAGE_TYPES = frozenset({"type:image"})
VIDEO_TYPES = frozenset({"type:video", "type:livestream"})
#: The ``type:`` label a signal type implies, and the labels that agree with it.
IMPLIED_TYPE: dict[str, tuple[str, frozenset[str]]] = {
    "pdq": ("type:image", IMAGE_TYPES),
    "video_md5": ("type:video", VIDEO_TYPES),
    "video_sha256": ("type:video", VIDEO_TYPES),
    "tmk": ("type:video", VIDEO_TYPES),
    "vpdq": ("type:video", VIDEO_TYPES),
}


def check_format(name: str) -> str:
    if name not in FORMATS:
        raise ValidationError(f"unknown format {name!r}: expected one of {', '.join(FORMATS)}")
    return name


def pytx_hex(algorithm: str) -> bool:
    """Whether python-threatexchange's form of this hash is its lowercase hex."""
    return not hashes.algorithm(algorithm).long_values


# -- python-threatexchange's vPDQ signal -----------------------------------------

MAX_VPDQ_SIGNAL_FRAMES = 24 * 3600  # a day at one hash a second


def vpdq_signal(frames: Iterable[vpdq.VideoFrame]) -> str:
    """pytx's vPDQ signal string (its ``vpdq_to_json``) for these frames."""
    return json.dumps([f"{f.pdq.hex()},{f.quality},{f.ts_ms / 1000:.3}" for f in frames])


def parse_vpdq_signal(text: str) -> list[vpdq.VideoFrame]:
    """Frames of a pytx vPDQ signal, each feature checked as pytx checks it."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"vPDQ signal is not JSON: {exc.msg}") from None
    if not isinstance(doc, list) or not doc:
        raise ValidationError("vPDQ signal: expected a non-empty JSON list of strings")
    if len(doc) > MAX_VPDQ_SIGNAL_FRAMES:
        raise ValidationError(
            f"vPDQ signal has {len(doc)} frames: expected at most {MAX_VPDQ_SIGNAL_FRAMES}"
        )
    frames = []
    last = 0
    for i, item in enumerate(doc):
        where = f"vPDQ frame {i}"
        parts = item.split(",") if isinstance(item, str) else []
        if len(parts) != 3:
            raise ValidationError(
                f"{where}: expected 'pdq_hex,quality,timestamp', got {item!r:.60}"
            )
        try:
            pdq = hashes.parse_hex("PDQ", parts[0])
        except ValidationError as exc:
            raise ValidationError(f"{where}: {exc}") from None
        try:
            quality, seconds = int(parts[1]), float(parts[2])
        except ValueError:
            raise ValidationError(f"{where}: bad quality or timestamp in {item!r:.80}") from None
        if not seconds >= 0 or seconds > 2**32 / 1000:  # also refuses nan
            raise ValidationError(f"{where}: timestamp {parts[2]!r}: expected seconds >= 0")
        ts = round(seconds * 1000)
        if ts < last:
            raise ValidationError(
                f"{where}: timestamp {parts[2]} s before the previous frame's: "
                "expected non-decreasing"
            )
        last = ts
        try:
            frames.append(vpdq.VideoFrame(pdq, quality, ts))
        except ValidationError as exc:
            raise ValidationError(f"{where}: {exc}") from None
    return frames


def vpdq_rows(number: int, signal: str, extra: tuple[str, ...]) -> list[Row]:
    """The VPDQ segment entries of one imported pytx vPDQ signal."""
    frames = parse_vpdq_signal(signal)
    video_id = hashlib.sha256(signal.encode()).digest()[: vpdq.VIDEO_ID_BYTES]
    segments = vpdq.split(frames, video_id, duration_ms=frames[-1].ts_ms + 1000, fps_milli=0)
    return [Row(number, "VPDQ", s.encode(), extra) for s in segments]


# -- export --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Record:
    """One stored ADD entry and what the exporting node knows about it."""

    entry: SignedEntry
    arrival_ms: int = 0
    retracted_by: bytes = b""
    origin_kind: str = ""
    jurisdiction: str = ""


@dataclass(slots=True)
class ExportCounts:
    written: int = 0
    retracted: int = 0  # left out (active only)
    duplicate: int = 0  # pytx: the same hash from another entry
    unsupported: int = 0  # pytx: no hex form
    unread_by_pytx: int = 0  # pytx: md5/sha256 rows python-threatexchange skips
    pdq: int = 0  # pytx: PDQ lines written (one alone meets facebook/ThreatExchange#1318)
    labelled: int = 0  # pytx: rows whose labels or incident the format cannot carry


def export_lines(
    records: Iterable[Record],
    fmt: str,
    counts: ExportCounts,
    *,
    include_retracted: bool = False,
) -> Iterator[str]:
    """Lines (with newlines) of an export; ``counts`` is filled as it goes."""
    check_format(fmt)
    seen: set[tuple[str, bytes]] = set()
    videos: dict[tuple[str, bytes], list[vpdq.VpdqSegment]] = {}
    if fmt == "csv":
        yield _csv_line(CSV_COLUMNS)
    for rec in records:
        body = rec.entry.body
        if body.kind != Kind.ADD:
            continue
        if rec.retracted_by and (fmt == "pytx" or not include_retracted):
            counts.retracted += 1
            continue
        if fmt == "pytx":
            if body.algorithm == "VPDQ":
                seg = vpdq.VpdqSegment.decode(body.hash)
                videos.setdefault((body.origin, seg.video_id), []).append(seg)
                continue
            if not pytx_hex(body.algorithm):
                counts.unsupported += 1
                continue
            key = (body.algorithm, body.hash)
            if key in seen:
                counts.duplicate += 1
                continue
            seen.add(key)
            counts.written += 1
            name = _pytx_export_name(body.algorithm, body.labels)
            counts.unread_by_pytx += name in ("md5", "sha256")
            counts.pdq += name == "pdq"
            counts.labelled += bool(body.labels or body.incident)
            yield f"{name} {body.hash.hex()}\n"
            continue
        row = _provenance(rec)
        counts.written += 1
        if fmt == "csv":
            row["labels"] = LABEL_SEPARATOR.join(body.labels)
            yield _csv_line(tuple(_csv_cell(row[c]) for c in CSV_COLUMNS))
        else:
            yield json.dumps(row, ensure_ascii=False) + "\n"
    signals: set[str] = set()
    for segments in videos.values():  # a video's active segments, as one line
        segments.sort(key=lambda seg: seg.start_ms)
        frames = vpdq.reference_frames(segments)
        if not frames:
            counts.unsupported += 1
            continue
        signal = vpdq_signal(frames)
        if signal in signals:
            counts.duplicate += 1
            continue
        signals.add(signal)
        counts.written += 1
        yield f"vpdq {signal}\n"


def _pytx_export_name(algorithm: str, entry_labels: tuple[str, ...]) -> str:
    """python-threatexchange's signal type for this entry's hash."""
    name = hashes.algorithm(algorithm).pytx_name
    if name in ("md5", "sha256") and VIDEO_TYPES & set(entry_labels):
        return f"video_{name}"
    return name


def _provenance(rec: Record) -> dict[str, object]:
    entry, body = rec.entry, rec.entry.body
    return {
        "entry_id": entry.entry_id.hex(),
        "origin": body.origin,
        "origin_kind": rec.origin_kind,
        "jurisdiction": rec.jurisdiction,
        "seq": body.seq,
        "time_ms": body.time_ms,
        "arrival_ms": rec.arrival_ms,
        "algorithm": body.algorithm,
        "pytx_type": hashes.algorithm(body.algorithm).pytx_name,
        "hash": body.hash.hex(),
        "labels": list(body.labels),
        "incident": body.incident,
        "reason": body.reason,
        "urgent": body.urgent,
        "retracted": bool(rec.retracted_by),
        "retracted_by": rec.retracted_by.hex(),
        "key_id": body.key_id.hex(),
        "body": entry.body_bytes.hex(),
        "signature": entry.signature.hex(),
    }


def _csv_cell(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _csv_line(cells: tuple[str, ...]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(cells)
    return out.getvalue()


# -- import --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Row:
    """One hash to sign and submit, from line ``line`` of the input."""

    line: int
    algorithm: str
    value: bytes
    labels: tuple[str, ...] = ()
    incident: str = ""
    reason: str = ""
    urgent: bool = False


@dataclass(frozen=True, slots=True)
class BadRow:
    """A row that could not be read: a real failure, reported."""

    line: int
    error: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.error}"


@dataclass(frozen=True, slots=True)
class SkippedRow:
    """A readable row left out by design (with a warning), not a failure."""

    line: int
    why: str

    def __str__(self) -> str:
        return f"line {self.line}: skipped: {self.why}"


class _Skip(Exception):
    """A row to leave out by design (raised inside parse_rows only)."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


def with_implied_type(
    signal_type: str, own: Iterable[str], extra: Iterable[str]
) -> tuple[str, ...]:
    """A row's labels: its own, then ``extra`` (from ``--label``) less any
    ``type:`` the signal type contradicts, then the implied ``type:`` if none."""
    implied = IMPLIED_TYPE.get(signal_type)
    own_labels, extra_labels = set(own), set(extra)
    if implied is not None:
        label, agree = implied
        extra_labels = {x for x in extra_labels if not x.startswith("type:") or x in agree}
        if not any(x.startswith("type:") for x in own_labels | extra_labels):
            own_labels.add(label)
    return labels.normalize_labels(tuple(own_labels | extra_labels))


def parse_rows(
    lines: Iterable[str], fmt: str, extra_labels: Iterable[str] = ()
) -> Iterator[Row | BadRow | SkippedRow]:
    """Rows of an import file; a bad row is reported, never fatal.

    ``extra_labels`` (from the command line) are added to every row.
    A CSV file without ``algorithm`` and ``hash`` columns is refused whole.
    """
    check_format(fmt)
    extra = labels.normalize_labels(tuple(extra_labels))
    if fmt == "csv":
        yield from _csv_rows(lines, extra)
        return
    for number, text in enumerate(lines, start=1):
        stripped = text.strip()
        if not stripped or (fmt == "pytx" and stripped.startswith("#")):
            continue
        try:
            if fmt == "pytx":
                yield from _pytx_rows(number, stripped, extra)
            else:
                yield _json_row(number, stripped, extra)
        except _Skip as skip:
            yield SkippedRow(number, skip.why)
        except NodeError as exc:
            yield BadRow(number, str(exc))


def _pytx_rows(number: int, text: str, extra: tuple[str, ...]) -> list[Row]:
    kind, _, signal = text.partition(" ")
    signal = signal.strip()
    if not signal:
        raise ValidationError("expected '<signal type> <hex hash>'")
    if kind.lower() in PYTX_SKIPPED_TYPES:
        raise _Skip(f"signal type {kind.lower()!r} is not a media hash ccnode carries")
    name = _BY_PYTX.get(kind.lower())
    if name is None:
        raise ValidationError(
            f"unknown signal type {kind[:32]!r}: expected one of {', '.join(sorted(_BY_PYTX))}"
        )
    if name == "VPDQ":
        return vpdq_rows(number, signal, with_implied_type("vpdq", (), extra))
    if not pytx_hex(name):
        raise ValidationError(f"signal type {kind!r} has no hex form here")
    value = hashes.parse_hex(name, signal)
    _check_not_trivial(name, value)
    return [Row(number, name, value, with_implied_type(kind.lower(), (), extra))]


def _check_not_trivial(name: str, value: bytes) -> None:
    try:
        hashes.check_not_trivial(name, value)
    except ValidationError as exc:
        raise _Skip(str(exc)) from None


def _fields_row(number: int, doc: dict[str, object], extra: tuple[str, ...]) -> Row:
    algo = doc.get("algorithm")
    value = doc.get("hash")
    if not isinstance(algo, str) or not algo or not isinstance(value, str) or not value:
        raise ValidationError("needs 'algorithm' and 'hash'")
    signal_type = algo.lower() if algo.lower() in _BY_PYTX else ""
    name = hashes.normalize_name(_BY_PYTX.get(algo.lower(), algo))
    signal_type = signal_type or hashes.algorithm(name).pytx_name
    raw_labels = doc.get("labels", ())
    if isinstance(raw_labels, str):
        raw_labels = [p.strip() for p in raw_labels.split(LABEL_SEPARATOR) if p.strip()]
    if not isinstance(raw_labels, list | tuple) or not all(isinstance(x, str) for x in raw_labels):
        raise ValidationError("'labels' must be a list of strings")
    incident = doc.get("incident") or ""
    reason = doc.get("reason") or ""
    if not isinstance(incident, str) or not isinstance(reason, str):
        raise ValidationError("'incident' and 'reason' must be strings")
    urgent = _flag(doc.get("urgent", False))
    value_bytes = hashes.parse_hex(name, value)
    _check_not_trivial(name, value_bytes)
    if len(reason.encode()) > 1024:
        raise ValidationError(f"reason has {len(reason.encode())} bytes: expected at most 1024")
    return Row(
        number,
        name,
        value_bytes,
        with_implied_type(signal_type, labels.normalize_labels(tuple(raw_labels)), extra),
        labels.check_incident(incident),
        reason,
        urgent,
    )


def _flag(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("", "false", "0", "no"):
        return False
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes"):
        return True
    raise ValidationError(f"'urgent' must be true or false, got {str(value)[:16]!r}")


def _json_row(number: int, text: str, extra: tuple[str, ...]) -> Row:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"not JSON: {exc.msg}") from None
    if not isinstance(doc, dict):
        raise ValidationError("expected a JSON object")
    if doc.get("retracted") is True:
        raise _Skip("marked retracted in the export")
    return _fields_row(number, doc, extra)


def _csv_rows(lines: Iterable[str], extra: tuple[str, ...]) -> Iterator[Row | BadRow | SkippedRow]:
    reader = csv.DictReader(iter(lines))
    columns = reader.fieldnames or []
    missing = [c for c in ("algorithm", "hash") if c not in columns]
    if missing:
        raise ValidationError(
            f"line 1: CSV header needs columns 'algorithm' and 'hash', missing {missing[0]!r}"
        )
    for doc in reader:
        number = reader.line_num
        try:
            if None in doc:
                raise ValidationError(f"{len(doc[None])} more cells than header columns")
            if _flag_or_none(doc.get("retracted")):
                raise _Skip("marked retracted in the export")
            yield _fields_row(number, dict(doc), extra)
        except _Skip as skip:
            yield SkippedRow(number, skip.why)
        except NodeError as exc:
            yield BadRow(number, str(exc))


def _flag_or_none(value: object) -> bool:
    try:
        return _flag(value if value is not None else False)
    except ValidationError:
        return False
