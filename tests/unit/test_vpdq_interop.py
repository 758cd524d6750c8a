"""python-threatexchange's vPDQ signal: export at one hash a second, import with its quirks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from node.core import vpdq
from node.core.vpdq import VideoFrame, VpdqSegment
from node.errors import ValidationError
from node.interop.formats import (
    ExportCounts,
    Record,
    parse_rows,
    parse_vpdq_signal,
    vpdq_signal,
)
from tests.helpers import Origin, pdq_value

VECTORS = Path(__file__).resolve().parents[2].parent / "shared" / "vectors" / "vpdq" / "reference"
VID = b"\x07" * 16


def reference(every: str, name: str = "a") -> list[tuple[int, int, str, float]]:
    path = VECTORS / every / f"{name}.json"
    if not path.exists():
        pytest.skip(f"vPDQ vectors not found at {VECTORS}")
    return [tuple(x) for x in json.loads(path.read_text())]  # type: ignore[misc]


def test_a_banked_video_exports_the_reference_one_hash_a_second_exactly() -> None:
    # banked at every frame (25 fps); the 1/s frames are those of index % 25 == 0
    frames = [
        VideoFrame(bytes.fromhex(h), q, round(ts * 1000))
        for _, q, h, ts in reference("every-frame")
    ]
    gov = Origin("gov.example")
    segs = vpdq.split(frames, VID, duration_ms=12_000, fps_milli=25_000, max_ms=5_000)
    records = [Record(gov.next(algorithm="VPDQ", hash=s.encode())) for s in segs[::-1]]
    counts = ExportCounts()
    from node.interop.formats import export_lines

    (line,) = list(export_lines(records, "pytx", counts))
    assert line.startswith("vpdq [")
    want = [f"{h},{q},{ts:.3}" for _, q, h, ts in reference("every-1s")]
    assert json.loads(line.removeprefix("vpdq ")) == want
    assert counts.written == 1


def test_pytx_timestamps_with_three_significant_digits_are_accepted() -> None:
    frames = [
        VideoFrame(pdq_value(i), 80, ts) for i, ts in enumerate((0, 99_000, 100_000, 1_234_000), 1)
    ]
    signal = vpdq_signal(frames)
    assert [s.rsplit(",", 1)[1] for s in json.loads(signal)] == ["0.0", "99.0", "1e+02", "1.23e+03"]
    got = parse_vpdq_signal(signal)
    assert [f.ts_ms for f in got] == [0, 99_000, 100_000, 1_230_000]
    assert [f.pdq for f in got] == [f.pdq for f in frames]


def test_an_imported_signal_becomes_the_segments_of_one_video() -> None:
    frames = [VideoFrame(pdq_value(i + 1), 90, 1000 * i) for i in range(150)]
    text = "vpdq " + vpdq_signal(frames) + "\n"
    rows = list(parse_rows([text, text], "pytx", ("type:video",)))
    segs = [VpdqSegment.decode(r.value) for r in rows]  # type: ignore[union-attr]
    assert [r.line for r in rows] == [1, 1, 1, 2, 2, 2]  # 150 s: three 60-s segments a line
    assert len({s.video_id for s in segs}) == 1  # the same signal is the same video
    assert [f for s in segs[:3] for f in s.frames] == frames
    assert all(r.labels == ("type:video",) for r in rows)  # type: ignore[union-attr]


BAD = [
    ("[]", "vPDQ signal: expected a non-empty JSON list of strings"),
    ("{", "vPDQ signal is not JSON: Expecting property name enclosed in double quotes"),
    ('["abc,1"]', "vPDQ frame 0: expected 'pdq_hex,quality,timestamp', got 'abc,1'"),
    (
        f'["{"0" * 63},1,0.0"]',
        "vPDQ frame 0: PDQ hash has 63 hex digits (odd): expected 32 bytes (64 hex digits)",
    ),
    (f'["{pdq_value(1).hex()},x,0.0"]', "vPDQ frame 0: bad quality or timestamp in "),
    (f'["{pdq_value(1).hex()},101,0.0"]', "vPDQ frame 0: frame quality 101: expected 0..100"),
    (f'["{pdq_value(1).hex()},50,-1.0"]', "vPDQ frame 0: timestamp '-1.0': expected seconds >= 0"),
    (f'["{pdq_value(1).hex()},50,nan"]', "vPDQ frame 0: timestamp 'nan': expected seconds >= 0"),
    (
        f'["{pdq_value(1).hex()},50,2.0", "{pdq_value(2).hex()},50,1.0"]',
        "vPDQ frame 1: timestamp 1.0 s before the previous frame's: expected non-decreasing",
    ),
]


@pytest.mark.parametrize(("signal", "message"), BAD)
def test_bad_signals_are_refused_with_an_exact_error(signal: str, message: str) -> None:
    with pytest.raises(ValidationError) as err:
        parse_vpdq_signal(signal)
    assert str(err.value).startswith(message)
    (row,) = list(parse_rows([f"vpdq {signal}"], "pytx"))
    assert str(row).startswith("line 1: " + message)


def test_video_entries_audit_clean_and_round_trip_through_jsonl(tmp_path: Path) -> None:
    """Export, import and audit treat a video's segments like any other entries."""
    from node.core.trust import MembersFile
    from node.store.audit import audit
    from node.store.lmdb_store import LmdbStore
    from tests.helpers import member

    frames = [VideoFrame(pdq_value(i + 1), 90, 200 * i) for i in range(700)]
    segs = vpdq.split(frames, VID, duration_ms=140_000, fps_milli=5_000)
    gov = Origin("gov.example")
    entries = [gov.next(algorithm="VPDQ", hash=s.encode(), labels=("type:video",)) for s in segs]
    store = LmdbStore(tmp_path / "db")
    store.ingest(entries, atomic=True, now_ms=1)
    from node.interop.formats import export_lines

    lines = list(export_lines([Record(e) for e in entries], "jsonl", ExportCounts()))
    rows = list(parse_rows(lines, "jsonl"))
    assert [r.value for r in rows] == [e.body.hash for e in entries]  # type: ignore[union-attr]
    assert [r.labels for r in rows] == [("type:video",)] * len(entries)  # type: ignore[union-attr]
    store.close()
    assert audit(tmp_path / "db", MembersFile.of([member("gov.example")]), {}).faults == []
