"""Reports from signed entries, their renderings, and the local match log."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from node.cli import render
from node.core.entry import Kind, SignedEntry
from node.core.payloads import ActionCounts, DisputeReason, encode_dispute
from node.core.report import Distribution, Ledger, incident_report, transparency_report
from node.core.trust import Member, MemberKind, MembersFile
from node.errors import ValidationError
from node.store.matchlog import Event, EventKind, MatchLog
from tests.helpers import Origin, member

GOV, P1, P2 = "gov.example/ct", "p1.example", "p2.example"
TRUST = MembersFile.of([member(GOV, MemberKind.GOVERNMENT), member(P1), member(P2)])
T0 = 1_700_000_000_000


def lookup(member_id: str) -> Member | None:
    return TRUST.by_id.get(member_id)


def fb(o: Origin, kind: Kind, target: SignedEntry, **fields: Any) -> SignedEntry:
    base: dict[str, Any] = dict(
        kind=kind, algorithm="", hash=b"", labels=(), target=target.entry_id
    )
    base.update(fields)
    return o.next(**base)


def _entries() -> tuple[list[SignedEntry], list[SignedEntry]]:
    gov, p1, p2 = Origin(GOV), Origin(P1), Origin(P2)
    adds = [gov.next(time_ms=T0 + i * 1000) for i in range(3)]
    adds.append(gov.next(time_ms=T0 + 10_000, incident="halle-2019-10-09"))
    feedback = [
        fb(gov, Kind.RETRACT, adds[1]),
        fb(gov, Kind.RELABEL, adds[2], labels=("type:image",)),
        fb(p1, Kind.DISPUTE, adds[0], payload=encode_dispute(DisputeReason.WRONG_LABEL)),
        fb(p2, Kind.ENDORSE, adds[0]),
        fb(
            p1,
            Kind.ACTION_REPORT,
            adds[0],
            payload=ActionCounts(T0 + 50, T0 + 500, T0 + 2500, T0 + 9000, 4, 3, 1, 0).encode(),
        ),
        fb(
            p1,
            Kind.ACTION_REPORT,
            adds[2],
            payload=ActionCounts(T0 + 2100, T0 + 2200, 0, T0 + 9000, 1).encode(),
        ),
    ]
    return adds, adds + feedback


def test_incident_report_figures_come_from_the_signed_reports() -> None:
    adds, entries = _entries()
    report = incident_report(
        Ledger(entries, lookup),
        "christchurch-2019-03-15",
        node_id=GOV,
        generated_ms=T0 + 10**6,
        platforms=[P1, P2],
    )
    assert [h.entry_id for h in report.hashes] == [a.entry_id for a in adds[:3]]
    assert report.hashes[1].retracted_by != b""
    assert report.hashes[2].labels == ("type:image",)
    (m,) = report.members
    assert m.member == P1 and report.silent == (P2,)
    assert [r.time_to_action_ms for r in m.rows] == [2500, None]
    assert [r.propagation_ms for r in m.rows] == [50, 100]
    assert (m.total("matches"), m.total("blocked_at_upload"), m.total("removals")) == (5, 3, 1)
    assert m.time_to_action == Distribution(1, 2500, 2500, 2500, 2500)
    doc = render.incident_json(report)
    assert doc["members"][0]["sources"] == [r.report.entry_id.hex() for r in m.rows]
    assert [c["size"] for c in doc["log"]] == [4 + 2, 3, 1]  # gov, p1, p2


def test_transparency_report_counts_and_rates_in_the_window() -> None:
    _, entries = _entries()
    r = transparency_report(
        Ledger(entries, lookup),
        since_ms=T0,
        until_ms=T0 + 10_000,  # the halle entry is outside
        node_id=GOV,
        generated_ms=T0 + 10**6,
    )
    assert len(r.adds) == 3
    assert {c.key: c.count for c in r.by_label} == {
        "behaviour:glorification": 2,
        "type:video": 2,
        "type:image": 1,
    }
    (s,) = r.submitters
    assert (s.rate("disputed"), s.rate("retracted"), s.rate("relabelled")) == (1 / 3,) * 3
    assert [(c.key, c.count) for c in r.dispute_reasons] == [("wrong-label", 1)]
    (m,) = r.members
    assert m.propagation == Distribution(2, 50, 50, 100, 100)


def test_a_gap_or_broken_chain_is_refused() -> None:
    _, entries = _entries()
    with pytest.raises(ValidationError, match=r"origin gov\.example/ct: expected seq 1, got 2"):
        Ledger([e for e in entries if not (e.body.origin == GOV and e.body.seq == 1)], lookup)
    with pytest.raises(ValidationError, match="no entries of incident 'other-2020-01-01'"):
        incident_report(
            Ledger(entries, lookup), "other-2020-01-01", node_id="", generated_ms=0, platforms=[]
        )


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([5], (1, 5, 5, 5, 5)),
        ([4, 1, 3, 2], (4, 1, 2, 4, 4)),
        (list(range(1, 11)), (10, 1, 5, 9, 10)),
    ],
)
def test_nearest_rank_distribution(values: list[int], expected: tuple[int, ...]) -> None:
    d = Distribution.of(values)
    assert d is not None and (d.n, d.min, d.median, d.p90, d.max) == expected
    assert Distribution.of([]) is None


def test_html_is_self_contained_and_its_svg_is_well_formed() -> None:
    _, entries = _entries()
    ledger = Ledger(entries, lookup)
    pages = [
        render.incident_html(
            incident_report(
                ledger, "christchurch-2019-03-15", node_id=GOV, generated_ms=T0, platforms=[]
            )
        ),
        render.transparency_html(
            transparency_report(ledger, since_ms=0, until_ms=2**62, node_id=GOV, generated_ms=T0)
        ),
    ]
    for page in pages:
        assert "<script" not in page and "http" not in page.replace(
            'xmlns="http://www.w3.org/2000/svg"', ""
        )
        svgs = [s.split("</svg>")[0] + "</svg>" for s in page.split("<svg")[1:]]
        assert svgs
        for svg in svgs:
            root = ET.fromstring("<svg" + svg)
            assert root.tag.endswith("svg")
            assert root.findall(".//{http://www.w3.org/2000/svg}title")  # hover text per mark


@pytest.mark.parametrize(
    ("ms", "text"),
    [(None, "-"), (999, "999 ms"), (1500, "1.5 s"), (61_000, "1 min 1 s"), (7_260_000, "2 h 1 min"),
     (-2000, "-2.0 s"), (3 * 86_400_000, "3 d 0 h")],
)  # fmt: skip
def test_durations_read_like_words(ms: int | None, text: str) -> None:
    assert render.fmt_duration(ms) == text


def test_match_log_is_bounded_prunable_and_keeps_totals(tmp_path: Path) -> None:
    a, b = bytes(32), b"\x01" * 32
    log = MatchLog(tmp_path / "ml", max_events=4)
    log.record(
        [Event(10, EventKind.MATCH, a, action="BLOCK", rule="r"), Event(20, EventKind.MATCH, b)]
    )
    log.record([Event(30, EventKind.BLOCKED_AT_UPLOAD, a, count=5), Event(5, EventKind.MATCH, a)])
    log.record([Event(40, EventKind.REVIEWED, b)])
    assert log.count() == 4  # the oldest (time 5) was dropped
    assert [(e.time_ms, e.kind, e.action, e.rule) for e in log.events()][:2] == [
        (10, EventKind.MATCH, "BLOCK", "r"),
        (20, EventKind.MATCH, "", ""),
    ]
    log.close()
    log = MatchLog(tmp_path / "ml", max_events=4)  # survives reopening
    assert log.prune(25) == 2 and log.count() == 2
    totals = {t.entry_id: t for t in log.totals()}
    assert (totals[a].matches, totals[a].blocked_at_upload, totals[a].first_match_ms) == (2, 5, 5)
    assert (totals[a].first_action_ms, totals[b].reviews, totals[b].first_action_ms) == (30, 1, 40)
    log.close()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (dict(entry_id=b"x"), "entry id has 1 bytes: expected 32"),
        (dict(count=0), "count 0: expected 1..1000000"),
        (dict(time_ms=-1), "time_ms -1: expected 0..2^63-1"),
    ],
)
def test_bad_match_events(fields: dict[str, Any], message: str) -> None:
    base: dict[str, Any] = dict(time_ms=1, kind=EventKind.MATCH, entry_id=bytes(32))
    base.update(fields)
    with pytest.raises(ValidationError) as info:
        Event(**base)
    assert str(info.value) == message
