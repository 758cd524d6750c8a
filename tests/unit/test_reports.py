"""Reports from signed entries, their renderings, and the local match log."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from html.parser import HTMLParser
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


# -- HTML layout: each chart beside the table it summarises (issue 15 item 22) ----------

LONG = "long-platform-member-name.example/trust-and-safety-ops"


class _Layout(HTMLParser):
    """Where figures sit: the enclosing div.table-chart, its first child, headings."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, dict[str, str | None]]] = []
        self.seen_h1 = False
        self.figures: list[dict[str, Any]] = []
        self.groups: list[dict[str, Any]] = []
        self.headings: list[str] = []
        self.labels: list[tuple[float, str, str]] = []  # (x, shown text, hover text)
        self.rects: list[tuple[float, str]] = []  # (width, hover text)
        self._text: list[str] = []
        self._title: list[str] = []
        self._in_caption = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "div" and a.get("class") == "table-chart":
            self.groups.append(
                {
                    "section": a.get("data-section"),
                    "children": [],
                    "after": self.headings[-1] if self.headings else None,
                }
            )
        elif (
            self.stack
            and self.stack[-1][0] == "div"
            and self.stack[-1][1].get("class") == ("table-chart")
        ):
            self.groups[-1]["children"].append(tag)
        if tag == "figure":
            inside = [s for s in self.stack if s[0] == "div" and s[1].get("class") == "table-chart"]
            self.figures.append({"after_h1": self.seen_h1, "grouped": bool(inside), "caption": ""})
        if tag == "figcaption":
            self._in_caption = True
        if tag in ("h1", "h2", "h3"):
            self._text = []
        if tag == "text" and a.get("text-anchor") == "end":
            self._text, self._title = [], []
            self.stack.append((tag, {**a, "label": "1"}))
            return
        if tag == "rect" and a.get("width") and a.get("height") != "10":
            self.rects.append((float(a["width"] or 0), ""))
        self.stack.append((tag, a))

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            name, a = self.stack.pop()
            if name == tag:
                break
        if tag == "h1":
            self.seen_h1 = True
        if tag in ("h1", "h2", "h3"):
            self.headings.append("".join(self._text).strip())
        if tag == "figcaption":
            self._in_caption = False
        if tag == "text" and a.get("label"):
            self.labels.append((float(a["x"] or 0), "".join(self._text), "".join(self._title)))

    def handle_data(self, data: str) -> None:
        if self._in_caption:
            self.figures[-1]["caption"] += data
        if self.stack and self.stack[-1][0] == "title":
            self._title.append(data)
            if len(self.stack) > 1 and self.stack[-2][0] == "rect" and self.rects:
                self.rects[-1] = (self.rects[-1][0], self.rects[-1][1] + data)
        else:
            self._text.append(data)


def _layout_entries() -> list[SignedEntry]:
    gov, long_, p2 = Origin(GOV), Origin(LONG), Origin(P2)
    adds = [gov.next(time_ms=T0 + i * 1000) for i in range(3)]
    return [
        *adds,
        fb(long_, Kind.DISPUTE, adds[0], payload=encode_dispute(DisputeReason.WRONG_LABEL)),
        fb(p2, Kind.DISPUTE, adds[1], payload=encode_dispute(DisputeReason.OTHER)),
        fb(long_, Kind.ACTION_REPORT, adds[0],
           payload=ActionCounts(T0 + 50, T0 + 500, T0 + 2500, T0 + 9000, 9000, 9000).encode()),
        # One lone review, beside 9000 blocks at upload in the same chart.
        fb(p2, Kind.ACTION_REPORT, adds[0],
           payload=ActionCounts(T0 + 300, T0 + 900, T0 + 6000, T0 + 9000, 1, 0, 0, 1).encode()),
    ]  # fmt: skip


INCIDENT_CHARTS = {
    "Action by member": [
        "Time from publication to first action, per member (each dot is one hash)",
        "Actions per member",
    ],
}
TRANSPARENCY_CHARTS = {
    "By label": ["Hashes by label"],
    "By submitter kind": ["Hashes by submitter kind"],
    "By submitter jurisdiction": ["Hashes by jurisdiction"],
    "Dispute reasons": ["Disputes by reason"],
    "Per submitter": ["Dispute, retraction and relabel rates per submitter (% of its entries)"],
    render.PROPAGATION_HEADING: [
        "Propagation: arrival at each member's node after publication (each dot is one hash)",
        "Time from publication to first action, per member (each dot is one hash)",
    ],
}


@pytest.mark.parametrize("which", ["incident", "transparency"])
def test_each_chart_sits_beside_the_table_it_summarises(which: str) -> None:
    trust = MembersFile.of([member(GOV, MemberKind.GOVERNMENT), member(LONG), member(P2)])
    ledger = Ledger(_layout_entries(), trust.by_id.get)
    if which == "incident":
        page = render.incident_html(
            incident_report(ledger, "christchurch-2019-03-15", node_id=GOV, generated_ms=T0,
                            platforms=[LONG, P2])
        )  # fmt: skip
        promised = INCIDENT_CHARTS
    else:
        page = render.transparency_html(
            transparency_report(ledger, since_ms=0, until_ms=2**62, node_id=GOV, generated_ms=T0)
        )
        promised = TRANSPARENCY_CHARTS
    layout = _Layout()
    layout.feed(page)
    # No chart above the title, none loose: each in a group after its table.
    assert layout.figures and all(f["after_h1"] and f["grouped"] for f in layout.figures)
    for group in layout.groups:
        assert group["children"][0] == "table"
        assert group["section"] == group["after"]  # the heading right above it
    by_section: dict[str, list[str]] = {}
    captions = iter(f["caption"] for f in layout.figures)
    for group in layout.groups:
        n = len(promised.get(group["section"], []))
        by_section[group["section"]] = [next(captions) for _ in range(n)]
    assert by_section == promised  # every promised chart, where promised
    # Labels are never clipped: each has room left of its x, in full.
    for x, shown, full in layout.labels:
        assert shown == full, (shown, full)
        assert len(shown) * render.LABEL_CHAR_PX <= x
    assert any(full == LONG for _, _, full in layout.labels)
    if which == "incident":
        (review,) = [w for w, title in layout.rects if title == f"{P2} reviews: 1"]
        assert review >= render.MIN_SEGMENT_PX  # a lone review among 9000 blocks shows


def test_a_label_too_long_for_the_margin_is_shortened_with_its_full_text_kept() -> None:
    label = "x" * 200
    svg = render.svg_bars("t", [(label, 1)])
    assert f"<title>{label}</title>" in svg
    shown = svg.split(f"<title>{label}</title>")[1].split("</text>")[0]
    assert shown.endswith("…") and len(shown) * render.LABEL_CHAR_PX <= render.LABEL_MAX_PX
