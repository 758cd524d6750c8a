"""Import parsing (bad rows by line number) and export rendering."""

from __future__ import annotations

import csv
import io
import json

import pytest

from node.core.entry import Kind
from node.errors import ValidationError
from node.interop.formats import (
    CSV_COLUMNS,
    BadRow,
    ExportCounts,
    Record,
    Row,
    SkippedRow,
    export_lines,
    parse_rows,
)
from tests.helpers import Origin

PDQ = "ab" * 32
MD5 = "cd" * 16


def _parse(text: str, fmt: str, labels: tuple[str, ...] = ()) -> list[Row | BadRow | SkippedRow]:
    return list(parse_rows(io.StringIO(text), fmt, labels))


def test_pytx_rows_and_bad_lines() -> None:
    text = (
        "# a comment\n"
        f"pdq {PDQ}\n"
        "\n"
        f"video_md5 {MD5.upper()}\n"
        f"photodna {MD5}\n"
        "pdq abc\n"
        "pdq\n"
        f"tmk {MD5}\n"
    )
    rows = _parse(text, "pytx", ("type:image",))
    assert rows[:2] == [
        Row(2, "PDQ", bytes.fromhex(PDQ), ("type:image",)),
        # --label type:image is not applied to a video row: its signal type says video.
        Row(4, "VIDEO_MD5", bytes.fromhex(MD5), ("type:video",)),
    ]
    assert [str(r) for r in rows[2:]] == [
        "line 5: unknown signal type 'photodna': expected one of md5, pdq, sha256, tmk, "
        "video_md5, video_sha256, vpdq",
        "line 6: PDQ hash has 3 hex digits (odd): expected 32 bytes (64 hex digits)",
        "line 7: expected '<signal type> <hex hash>'",
        "line 8: signal type 'tmk' has no hex form here",
    ]


def test_csv_rows_with_labels_and_bad_cells() -> None:
    text = (
        "algorithm,hash,labels,incident,urgent,origin\n"
        f"pdq,{PDQ},behaviour:glorification;type:image,christchurch-2019-03-15,true,x\n"
        f"MD5,{MD5},,,,\n"
        f"md5,{MD5},type:memes,,,\n"
        f"md5,{MD5},,not an incident,,\n"
        f"md5,{MD5},,,perhaps,\n"
        f"md5,{MD5},,,,,extra\n"
    )
    rows = _parse(text, "csv", ("entity:unknown",))
    assert rows[0] == Row(
        2,
        "PDQ",
        bytes.fromhex(PDQ),
        ("behaviour:glorification", "entity:unknown", "type:image"),
        "christchurch-2019-03-15",
        "",
        True,
    )
    assert rows[1] == Row(3, "MD5", bytes.fromhex(MD5), ("entity:unknown",))
    bad = [str(r) for r in rows[2:]]
    assert bad[0].startswith("line 4: unknown label 'type:memes'")
    assert bad[1].startswith("line 5: bad incident id 'not an incident'")
    assert bad[2] == "line 6: 'urgent' must be true or false, got 'perhaps'"
    assert bad[3] == "line 7: 1 more cells than header columns"


def test_csv_without_the_needed_columns_is_refused_whole() -> None:
    with pytest.raises(ValidationError, match="missing 'hash'"):
        _parse("algorithm,value\npdq,00\n", "csv")


def test_jsonl_rows() -> None:
    text = (
        json.dumps({"algorithm": "PDQ", "hash": PDQ, "labels": ["type:image"]})
        + "\n[1, 2]\n{not json\n"
        + json.dumps({"algorithm": "md5", "hash": MD5, "retracted": True})
        + "\n"
        + json.dumps({"hash": MD5})
        + "\n"
    )
    rows = _parse(text, "jsonl")
    assert rows[0] == Row(1, "PDQ", bytes.fromhex(PDQ), ("type:image",))
    assert [str(r) for r in rows[1:]] == [
        "line 2: expected a JSON object",
        "line 3: not JSON: Expecting property name enclosed in double quotes",
        "line 4: skipped: marked retracted in the export",  # by design, not a bad row
        "line 5: needs 'algorithm' and 'hash'",
    ]


def test_unknown_command_line_label_is_refused_up_front() -> None:
    with pytest.raises(ValidationError, match="unknown label 'type:memes'"):
        _parse("", "pytx", ("type:memes",))


def _records() -> list[Record]:
    gov = Origin("gov.example/ct")
    a = gov.next(algorithm="PDQ", hash=bytes.fromhex(PDQ), labels=("type:image",))
    b = gov.next(algorithm="MD5", hash=bytes.fromhex(MD5))
    c = gov.next(algorithm="TMK_PDQF", hash=b"\x01" * 40)
    d = Origin("ngo.example").next(algorithm="PDQ", hash=bytes.fromhex(PDQ))
    r = gov.next(kind=Kind.RETRACT, target=b.entry_id, algorithm="", hash=b"", labels=())
    return [
        Record(a, 5, b"", "government", "NZ"),
        Record(b, 6, r.entry_id, "government", "NZ"),
        Record(c, 7),
        Record(d, 8, b"", "ngo", "FR"),
        Record(r, 9),
    ]


def test_pytx_export_is_active_distinct_hex() -> None:
    counts = ExportCounts()
    lines = list(export_lines(_records(), "pytx", counts))
    assert lines == [f"pdq {PDQ}\n"]
    assert (counts.written, counts.retracted, counts.duplicate, counts.unsupported) == (1, 1, 1, 1)


def test_csv_export_has_provenance_and_reimports() -> None:
    counts = ExportCounts()
    text = "".join(export_lines(_records(), "csv", counts, include_retracted=True))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [r["origin"] for r in rows] == [
        "gov.example/ct",
        "gov.example/ct",
        "gov.example/ct",
        "ngo.example",
    ]
    assert rows[1]["retracted"] == "true" and rows[0]["retracted"] == "false"
    assert rows[0]["labels"] == "type:image" and rows[0]["jurisdiction"] == "NZ"
    recs = _records()
    assert rows[0]["body"] == recs[0].entry.body_bytes.hex()
    assert rows[0]["signature"] == recs[0].entry.signature.hex()
    again = _parse(text, "csv")
    assert [type(r).__name__ for r in again] == ["Row", "SkippedRow", "Row", "Row"]
    assert str(again[1]) == "line 3: skipped: marked retracted in the export"


def test_jsonl_export_active_only_by_default() -> None:
    counts = ExportCounts()
    docs = [json.loads(x) for x in export_lines(_records(), "jsonl", counts)]
    assert [d["seq"] for d in docs] == [0, 2, 0]
    assert docs[0]["pytx_type"] == "pdq" and docs[0]["labels"] == ["type:image"]
    assert counts.retracted == 1
