"""Render incident and transparency reports as JSON, Markdown or HTML.

HTML is one self-contained file: tables plus charts drawn here as inline SVG
(no JavaScript, no external assets). Every figure names the signed entries
it comes from (``sources``; shortened ids in Markdown/HTML, full ids in JSON)
and each report ends with the log coverage it was computed over.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import math
from collections.abc import Sequence
from typing import Any

from node.core.feedback import Vote
from node.core.report import (
    Count,
    Distribution,
    HashActions,
    IncidentReport,
    MemberActions,
    OriginCoverage,
    TransparencyReport,
)

FORMATS = ("md", "json", "html")
CHECKPOINT_NOTE = (
    "Roots are RFC 6962 Merkle roots over the signed entries read, per origin. "
    "Each origin's entries are its log up to its latest signed checkpoint, whose "
    "note (same size, same root) is included; an origin that signs no checkpoints "
    "(a key-only submitter, which has no node) is covered by its head entry: the "
    "origin signed it, and its hash chain commits to every earlier entry. Such "
    'entries are never settled (docs/transparency.md, "Key-only submitters").'
)
#: How an origin's log prefix is vouched for, by whether a checkpoint covers it.
COVERED_BY = ("signed head entry (no checkpoint)", "signed checkpoint")


def covered_by(c: OriginCoverage) -> str:
    return COVERED_BY[bool(c.checkpoint)]


COUNT_FIELDS = ("matches", "blocked_at_upload", "removals", "reviews")
PROPAGATION_HEADING = "Propagation and action (from signed action reports)"


# -- formatting ------------------------------------------------------------------


def fmt_time(ms: int) -> str:
    if not ms:
        return "-"
    t = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    return t.strftime("%Y-%m-%d %H:%M:%S.") + f"{ms % 1000:03d}Z"


def fmt_duration(ms: int | None) -> str:
    if ms is None:
        return "-"
    sign, ms = ("-", -ms) if ms < 0 else ("", ms)
    if ms < 1000:
        return f"{sign}{ms} ms"
    s = ms / 1000
    if s < 60:
        return f"{sign}{s:.1f} s"
    m, s = divmod(int(s), 60)
    if m < 60:
        return f"{sign}{m} min {s} s"
    h, m = divmod(m, 60)
    if h < 48:
        return f"{sign}{h} h {m} min"
    d, h = divmod(h, 24)
    return f"{sign}{d} d {h} h"


def short(entry_id: bytes) -> str:
    return entry_id.hex()[:16]


def _dist_json(d: Distribution | None) -> dict[str, int] | None:
    if d is None:
        return None
    return {"n": d.n, "min": d.min, "median": d.median, "p90": d.p90, "max": d.max}


def _dist_text(d: Distribution | None) -> str:
    if d is None:
        return "-"
    return (
        f"median {fmt_duration(d.median)}, p90 {fmt_duration(d.p90)}, "
        f"min {fmt_duration(d.min)}, max {fmt_duration(d.max)} (n={d.n})"
    )


def _vote_json(v: Vote) -> dict[str, Any]:
    out: dict[str, Any] = {
        "member": v.member,
        "kind": v.member_kind,
        "jurisdiction": v.jurisdiction,
        "entry_id": v.entry_id.hex(),
    }
    if v.reason is not None:
        out["reason"] = v.reason.text
    return out


def _coverage_json(cov: Sequence[OriginCoverage]) -> list[dict[str, Any]]:
    return [
        {
            "origin": c.origin,
            "size": c.size,
            "head_id": c.head_id.hex(),
            "root": c.root.hex(),
            "checkpoint": c.checkpoint or None,
            "covered_by": covered_by(c),
        }
        for c in cov
    ]


def _row_json(r: HashActions) -> dict[str, Any]:
    c = r.report.counts
    return {
        "target": r.target.hex(),
        "report_entry_id": r.report.entry_id.hex(),
        "published_ms": r.published_ms,
        "arrival_ms": c.arrival_ms,
        "first_match_ms": c.first_match_ms or None,
        "first_action_ms": c.first_action_ms or None,
        "as_of_ms": c.as_of_ms,
        **{f: getattr(c, f) for f in COUNT_FIELDS},
        "time_to_action_ms": r.time_to_action_ms,
        "propagation_ms": r.propagation_ms,
    }


# -- incident report -------------------------------------------------------------


def incident_json(r: IncidentReport) -> dict[str, Any]:
    return {
        "report": "incident",
        "incident": r.incident,
        "node": r.node_id,
        "generated_ms": r.generated_ms,
        "hashes": [
            {
                "entry_id": h.entry_id.hex(),
                "origin": h.origin,
                "algorithm": h.algorithm,
                "hash": h.hash.hex(),
                "labels": list(h.labels),
                "published_ms": h.published_ms,
                "urgent": h.urgent,
                "retracted_by": h.retracted_by.hex() or None,
                "relabelled_by": h.relabelled_by.hex() or None,
                "endorsements": [_vote_json(v) for v in h.endorsements],
                "disputes": [_vote_json(v) for v in h.disputes],
            }
            for h in r.hashes
        ],
        "members": [
            {
                "member": m.member,
                "kind": m.kind,
                "jurisdiction": m.jurisdiction,
                "hashes": [_row_json(row) for row in m.rows],
                "totals": {f: m.total(f) for f in COUNT_FIELDS},
                "time_to_action_ms": _dist_json(m.time_to_action),
                "propagation_ms": _dist_json(m.propagation),
                "sources": [s.hex() for s in m.sources],
            }
            for m in r.members
        ],
        "no_report": list(r.silent),
        "log": _coverage_json(r.coverage),
        "log_note": CHECKPOINT_NOTE,
    }


def _md_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return out


def _coverage_md(cov: Sequence[OriginCoverage]) -> list[str]:
    rows = [
        [c.origin, str(c.size), f"`{short(c.head_id)}`", f"`{c.root.hex()}`", covered_by(c)]
        for c in cov
    ]
    return [
        "## Log read",
        "",
        *_md_table(["origin", "entries", "head entry", "RFC 6962 root", "covered by"], rows),
        "",
        CHECKPOINT_NOTE,
    ]


def incident_md(r: IncidentReport) -> str:
    lines = [
        f"# Incident report: {r.incident}",
        "",
        f"Computed at node `{r.node_id}` on {fmt_time(r.generated_ms)} from signed entries only.",
        "",
        "## Hashes",
        "",
    ]
    lines += _md_table(
        ["entry", "submitter", "algorithm", "published", "labels", "endorsed by", "disputed by"],
        [
            [
                f"`{short(h.entry_id)}`" + (" (retracted)" if h.retracted_by else ""),
                h.origin,
                h.algorithm,
                fmt_time(h.published_ms),
                ", ".join(h.labels),
                ", ".join(v.member for v in h.endorsements) or "-",
                ", ".join(f"{v.member} ({v.reason.text if v.reason else '?'})" for v in h.disputes)
                or "-",
            ]
            for h in r.hashes
        ],
    )
    lines += ["", "## Action by member", ""]
    lines += _md_table(
        [
            "member",
            "hashes reported",
            "matches",
            "blocked at upload",
            "removals",
            "reviews",
            "time to first action",
            "arrival after publication",
        ],
        [
            [
                f"{m.member} ({m.kind}, {m.jurisdiction})",
                f"{len(m.rows)}/{len(r.hashes)}",
                *(str(m.total(f)) for f in COUNT_FIELDS),
                _dist_text(m.time_to_action),
                _dist_text(m.propagation),
            ]
            for m in r.members
        ],
    )
    if r.silent:
        lines += ["", "No action report from: " + ", ".join(r.silent)]
    for m in r.members:
        lines += ["", f"### {m.member}", ""]
        lines += _md_table(
            [
                "hash entry",
                "arrived",
                "first match",
                "first action",
                "time to action",
                "matches/blocks/removals/reviews",
                "source (ACTION_REPORT)",
            ],
            [
                [
                    f"`{short(row.target)}`",
                    fmt_time(row.report.counts.arrival_ms),
                    fmt_time(row.report.counts.first_match_ms),
                    fmt_time(row.report.counts.first_action_ms),
                    fmt_duration(row.time_to_action_ms),
                    "/".join(str(getattr(row.report.counts, f)) for f in COUNT_FIELDS),
                    f"`{short(row.report.entry_id)}`",
                ]
                for row in m.rows
            ],
        )
    lines += ["", *_coverage_md(r.coverage), ""]
    return "\n".join(lines)


def _time_to_action_chart(members: Sequence[MemberActions]) -> str:
    return svg_strip(
        "Time from publication to first action, per member (each dot is one hash)",
        [
            (
                m.member,
                [
                    (t, short(row.target))
                    for row in m.rows
                    if (t := row.time_to_action_ms) is not None
                ],
            )
            for m in members
        ],
    )


def incident_html(r: IncidentReport) -> str:
    counts = svg_stacked(
        "Actions per member",
        [(m.member, [m.total(f) for f in COUNT_FIELDS[1:]]) for m in r.members],
        ["blocked at upload", "removals", "reviews"],
    )
    charts = {"Action by member": _time_to_action_chart(r.members) + counts}
    body = _md_to_html_sections(incident_md(r), charts)
    return _page(f"Incident report: {r.incident}", body)


# -- transparency report ---------------------------------------------------------


def _count_json(cs: Sequence[Count]) -> list[dict[str, Any]]:
    return [{"key": c.key, "count": c.count, "sources": [s.hex() for s in c.sources]} for c in cs]


def transparency_json(r: TransparencyReport) -> dict[str, Any]:
    return {
        "report": "transparency",
        "node": r.node_id,
        "generated_ms": r.generated_ms,
        "since_ms": r.since_ms,
        "until_ms": r.until_ms,
        "entries": len(r.adds),
        "by_label": _count_json(r.by_label),
        "by_submitter_kind": _count_json(r.by_kind),
        "by_jurisdiction": _count_json(r.by_jurisdiction),
        "dispute_reasons": _count_json(r.dispute_reasons),
        "submitters": [
            {
                "member": s.member,
                "kind": s.kind,
                "jurisdiction": s.jurisdiction,
                "entries": len(s.adds),
                "dispute_rate": s.rate("disputed"),
                "retraction_rate": s.rate("retracted"),
                "relabel_rate": s.rate("relabelled"),
                "sources": {
                    name: [e.hex() for e in getattr(s, name)]
                    for name in ("adds", "disputed", "retracted", "relabelled")
                },
            }
            for s in r.submitters
        ],
        "reporting_members": [
            {
                "member": m.member,
                "kind": m.kind,
                "jurisdiction": m.jurisdiction,
                "entries_reported": len(m.rows),
                "totals": {f: m.total(f) for f in COUNT_FIELDS},
                "propagation_ms": _dist_json(m.propagation),
                "time_to_action_ms": _dist_json(m.time_to_action),
                "sources": [e.hex() for e in m.sources],
            }
            for m in r.members
        ],
        "log": _coverage_json(r.coverage),
        "log_note": CHECKPOINT_NOTE,
    }


def _count_rows(cs: Sequence[Count]) -> list[list[str]]:
    return [
        [
            c.key,
            str(c.count),
            ", ".join(f"`{short(s)}`" for s in c.sources[:8])
            + (f" … (+{len(c.sources) - 8})" if len(c.sources) > 8 else ""),
        ]
        for c in cs
    ]


def transparency_md(r: TransparencyReport) -> str:
    until = "now" if r.until_ms >= r.generated_ms else fmt_time(r.until_ms)
    lines = [
        "# Transparency report",
        "",
        f"Entries signed from {fmt_time(r.since_ms)} to {until}: **{len(r.adds)}** hashes. "
        f"Computed at node `{r.node_id}` on {fmt_time(r.generated_ms)} from signed entries only; "
        "feedback (disputes, retractions, relabels, action reports) as it stands.",
    ]
    for title, cs in (
        ("By label", r.by_label),
        ("By submitter kind", r.by_kind),
        ("By submitter jurisdiction", r.by_jurisdiction),
        ("Dispute reasons", r.dispute_reasons),
    ):
        lines += ["", f"## {title}", ""]
        lines += _md_table(["", "count", "sources"], _count_rows(cs)) if cs else ["none"]
    lines += ["", "## Per submitter", ""]
    lines += _md_table(
        ["submitter", "entries", "disputed", "retracted", "relabelled"],
        [
            [
                f"{s.member} ({s.kind}, {s.jurisdiction})",
                str(len(s.adds)),
                f"{len(s.disputed)} ({s.rate('disputed'):.0%})",
                f"{len(s.retracted)} ({s.rate('retracted'):.0%})",
                f"{len(s.relabelled)} ({s.rate('relabelled'):.0%})",
            ]
            for s in r.submitters
        ],
    )
    lines += ["", f"## {PROPAGATION_HEADING}", ""]
    lines += (
        _md_table(
            [
                "member",
                "entries reported",
                "matches",
                "blocked at upload",
                "removals",
                "reviews",
                "arrival after publication",
                "time to first action",
            ],
            [
                [
                    f"{m.member} ({m.kind}, {m.jurisdiction})",
                    str(len(m.rows)),
                    *(str(m.total(f)) for f in COUNT_FIELDS),
                    _dist_text(m.propagation),
                    _dist_text(m.time_to_action),
                ]
                for m in r.members
            ],
        )
        if r.members
        else ["no action reports"]
    )
    lines += ["", *_coverage_md(r.coverage), ""]
    return "\n".join(lines)


def transparency_html(r: TransparencyReport) -> str:
    rates = svg_stacked(
        "Dispute, retraction and relabel rates per submitter (% of its entries)",
        [
            (s.member, [round(100 * s.rate(n)) for n in ("disputed", "retracted", "relabelled")])
            for s in r.submitters
        ],
        ["disputed %", "retracted %", "relabelled %"],
        grouped=True,
        scale_max=100,
    )
    propagation = svg_strip(
        "Propagation: arrival at each member's node after publication (each dot is one hash)",
        [
            (m.member, [(row.propagation_ms, short(row.target)) for row in m.rows])
            for m in r.members
        ],
    )
    charts = {
        "By label": svg_bars("Hashes by label", [(c.key, c.count) for c in r.by_label]),
        "By submitter kind": svg_bars(
            "Hashes by submitter kind", [(c.key, c.count) for c in r.by_kind]
        ),
        "By submitter jurisdiction": svg_bars(
            "Hashes by jurisdiction", [(c.key, c.count) for c in r.by_jurisdiction]
        ),
        "Dispute reasons": svg_bars(
            "Disputes by reason", [(c.key, c.count) for c in r.dispute_reasons]
        ),
        "Per submitter": rates,
        PROPAGATION_HEADING: propagation + _time_to_action_chart(r.members),
    }
    body = _md_to_html_sections(transparency_md(r), charts)
    return _page("Transparency report", body)


# -- HTML and SVG ----------------------------------------------------------------

_PALETTE = ("#3b6ea5", "#d9822b", "#6a9f58", "#a05195", "#c0504d")
_CSS = """
body{font:14px/1.45 system-ui,sans-serif;max-width:1400px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f3f3f3} code{font-size:12px} figure{margin:.5em 0 1.5em}
figcaption{font-weight:600;margin-bottom:.3em}
.table-chart{display:flex;flex-wrap:wrap;gap:0 2em;align-items:flex-start}
.table-chart .charts{display:flex;flex-direction:column}
"""
LABEL_CHAR_PX = 6.8  # a 12 px system-ui character, generously
LABEL_MAX_PX = 420  # a longer label is shortened, in full in its hover text
MIN_SEGMENT_PX = 4  # a non-zero stacked segment is never thinner than this


def _page(title: str, content: str) -> str:
    return (
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>\n"
        f"{content}\n</body></html>\n"
    )


def _md_to_html_sections(md: str, charts: dict[str, str] | None = None) -> str:
    """The few Markdown shapes the renderers above emit: headings, tables,
    paragraphs. ``charts`` (by section heading) go beside the first table of
    their section, in one ``div.table-chart``."""
    out: list[str] = []
    table: list[list[str]] = []
    pending = dict(charts or {})
    heading = ""

    def inline(text: str) -> str:
        parts = html.escape(text).split("`")
        text = "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))
        parts = text.split("**")
        return "".join(f"<b>{p}</b>" if i % 2 else p for i, p in enumerate(parts))

    def flush() -> None:
        if not table:
            return
        head, *rows = table
        parts = ["<table><tr>" + "".join(f"<th>{inline(c)}</th>" for c in head) + "</tr>"]
        parts.extend("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in r) + "</tr>" for r in rows)
        parts.append("</table>")
        chart = pending.pop(heading, "")
        if chart:
            out.append(
                f'<div class="table-chart" data-section="{html.escape(heading)}">'
                + "\n".join(parts)
                + f'\n<div class="charts">{chart}</div></div>'
            )
        else:
            out.extend(parts)
        table.clear()

    for line in md.splitlines():
        if line.startswith("|"):
            if line.startswith("|---"):
                continue
            cells = [c.strip().replace("\\|", "|") for c in line.strip("|").split(" | ")]
            table.append(cells)
            continue
        flush()
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            heading = line[level:].strip()
            out.append(f"<h{level}>{inline(heading)}</h{level}>")
        elif line.strip():
            out.append(f"<p>{inline(line)}</p>")
    flush()
    return "\n".join(out)


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    exp = float(10 ** math.floor(math.log10(value)))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * exp:
            return step * exp
    return 10 * exp  # pragma: no cover


def _label_area(labels: Sequence[str]) -> tuple[int, int]:
    """(left margin in px, most characters shown) so no label is clipped:
    wide enough for the longest, up to LABEL_MAX_PX; longer ones are cut
    with an ellipsis and keep their full text as hover text."""
    longest = max((len(label) for label in labels), default=0)
    wanted = round(longest * LABEL_CHAR_PX) + 14
    if wanted <= LABEL_MAX_PX:
        return max(60, wanted), longest
    return LABEL_MAX_PX, int((LABEL_MAX_PX - 14) / LABEL_CHAR_PX)


def _label(label: str, x: float, y: float, fits: int) -> str:
    shown = label if len(label) <= fits else label[: max(1, fits - 1)] + "…"
    return (
        f'<text x="{x}" y="{y:.1f}" text-anchor="end" font-size="12">'
        f"<title>{html.escape(label)}</title>{html.escape(shown)}</text>"
    )


def svg_bars(title: str, items: Sequence[tuple[str, int]]) -> str:
    if not items:
        return ""
    left, fits = _label_area([label for label, _ in items])
    row, plot = 22, 400
    width = left + plot + 60
    top = _nice_max(max(v for _, v in items))
    height = row * len(items) + 10
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="{html.escape(title)}">'
    ]
    for i, (label, value) in enumerate(items):
        y = 5 + i * row
        w = max(plot * value / top, MIN_SEGMENT_PX if value else 0)
        parts.append(
            _label(label, left - 6, y + 14, fits)
            + f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{row - 6}" '
            f'fill="{_PALETTE[0]}"><title>{html.escape(label)}: {value}</title></rect>'
            f'<text x="{left + w + 4:.1f}" y="{y + 14}" font-size="12">{value}</text>'
        )
    parts.append("</svg>")
    return _figure(title, "".join(parts))


def svg_stacked(
    title: str,
    items: Sequence[tuple[str, Sequence[int]]],
    series: Sequence[str],
    *,
    grouped: bool = False,
    scale_max: float | None = None,
) -> str:
    """Stacked (or grouped) horizontal bars, one row per item, with a legend."""
    if not items:
        return ""
    left, fits = _label_area([label for label, _ in items])
    row = 14 * len(series) + 8 if grouped else 22
    plot = 400
    width = max(left + plot + 60, left + 150 * len(series))
    top = scale_max or _nice_max(max((max(vs) if grouped else sum(vs)) for _, vs in items) or 1)
    height = row * len(items) + 34
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="{html.escape(title)}">'
    ]
    for i, (label, values) in enumerate(items):
        y = 5 + i * row
        parts.append(_label(label, left - 6, y + row / 2 + 4, fits))
        x = float(left)
        for j, value in enumerate(values):
            # A lone small count (one review among thousands of blocks) stays visible.
            w = max(plot * value / top, MIN_SEGMENT_PX if value else 0)
            yy, hh = (y + 2 + 14 * j, 12) if grouped else (y + 3, row - 6)
            parts.append(
                f'<rect x="{x:.1f}" y="{yy}" width="{w:.1f}" height="{hh}" '
                f'fill="{_PALETTE[j % len(_PALETTE)]}"><title>{html.escape(label)} '
                f"{html.escape(series[j])}: {value}</title></rect>"
            )
            if grouped:
                parts.append(
                    f'<text x="{x + w + 4:.1f}" y="{yy + 10}" font-size="10">{value}</text>'
                )
            else:
                x += w
        if not grouped:
            parts.append(f'<text x="{x + 4:.1f}" y="{y + 14}" font-size="12">{sum(values)}</text>')
    ly = height - 14
    for j, name in enumerate(series):
        lx = left + 150 * j
        parts.append(
            f'<rect x="{lx}" y="{ly - 9}" width="10" height="10" '
            f'fill="{_PALETTE[j % len(_PALETTE)]}"/>'
            f'<text x="{lx + 14}" y="{ly}" font-size="11">{html.escape(name)}</text>'
        )
    parts.append("</svg>")
    return _figure(title, "".join(parts))


def svg_strip(title: str, rows: Sequence[tuple[str, Sequence[tuple[int, str]]]]) -> str:
    """One row per member: a dot per value (ms), a bar at the median, a time axis."""
    values = [v for _, vs in rows for v, _ in vs]
    if not values:
        return ""
    left, fits = _label_area([label for label, _ in rows])
    row, plot = 26, 430
    width = left + plot + 30
    lo = min(0, *values)
    top = _nice_max(max(values) - lo)
    height = row * len(rows) + 40

    def x(ms: float) -> float:
        return left + plot * (ms - lo) / top

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="{html.escape(title)}">'
    ]
    for i, (label, vs) in enumerate(rows):
        y = 5 + i * row + row / 2
        parts.append(
            _label(label, left - 6, y + 4, fits)
            + f'<line x1="{left}" x2="{left + plot}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>'
        )
        ordered = sorted(v for v, _ in vs)
        if ordered:
            median = ordered[(len(ordered) - 1) // 2]
            parts.append(
                f'<line x1="{x(median):.1f}" x2="{x(median):.1f}" y1="{y - 9:.1f}" '
                f'y2="{y + 9:.1f}" stroke="#222" stroke-width="2"><title>median '
                f"{fmt_duration(median)}</title></line>"
            )
        for v, name in vs:
            parts.append(
                f'<circle cx="{x(v):.1f}" cy="{y:.1f}" r="4" fill="{_PALETTE[0]}" '
                f'fill-opacity="0.7"><title>{html.escape(name)}: {fmt_duration(v)}</title>'
                "</circle>"
            )
    axis_y = 5 + row * len(rows) + 4
    parts.append(
        f'<line x1="{left}" x2="{left + plot}" y1="{axis_y}" y2="{axis_y}" stroke="#888"/>'
    )
    for k in range(6):
        ms = lo + top * k / 5
        parts.append(
            f'<line x1="{x(ms):.1f}" x2="{x(ms):.1f}" y1="{axis_y}" y2="{axis_y + 4}" '
            f'stroke="#888"/><text x="{x(ms):.1f}" y="{axis_y + 16}" text-anchor="middle" '
            f'font-size="11">{fmt_duration(round(ms))}</text>'
        )
    parts.append("</svg>")
    return _figure(title, "".join(parts))


def _figure(title: str, svg: str) -> str:
    return f"<figure><figcaption>{html.escape(title)}</figcaption>{svg}</figure>\n"


def dumps_json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2) + "\n"
