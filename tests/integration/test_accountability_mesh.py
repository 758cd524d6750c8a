"""Four real nodes: a government submits an incident's hashes, two platforms
endorse, one disputes, platforms match uploads and file signed action reports;
the incident report at the government's node shows each platform's
time-to-action and counts, consistent with the signed entries it holds."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from node.cli import main
from node.config import NodeConfig, PeerConfig
from node.core.entry import Kind
from node.core.merkle import MemoryTree
from node.core.payloads import ActionCounts
from node.core.trust import MemberKind, MembersFile
from node.server import Node
from tests.helpers import LoopThread, eventually, member, write_node_dir
from tests.unit.test_policy import EXAMPLE

pytestmark = pytest.mark.integration

GOV, P1, P2, P3 = "gov.example/ct", "video.example", "forum.example", "images.example"
INCIDENT = "christchurch-2019-03-15"
HASHES = [
    ("md5", "0123456789abcdef0123456789abcdef", ["entity:attacker", "type:livestream"]),
    ("sha256", "ab" * 32, ["behaviour:manifesto", "entity:attacker", "type:pdf"]),
    ("pdq", "f" * 16 + "0" * 16 + "a5" * 16, ["behaviour:glorification", "type:image"]),
]
P2_POLICY = """
version = 1
default = "log_only"

[[rule]]
name = "any-dispute"
action = "review"
min_disputes = 1

[[rule]]
name = "government"
action = "block"
submitter_kind = ["government"]
"""


def _ring(tmp_path: Path) -> list[NodeConfig]:
    members = MembersFile.of(
        [
            member(GOV, MemberKind.GOVERNMENT),
            member(P1),
            member(P2, jurisdiction="FR"),
            member(P3, jurisdiction="US"),
        ]
    )
    names = [GOV, P1, P2, P3]

    def peer(name: str) -> PeerConfig:
        return PeerConfig(name, address_file=f"../{name.replace('/', '_')}/node.addr")

    configs = []
    for i, name in enumerate(names):
        neighbours = (peer(names[(i - 1) % 4]), peer(names[(i + 1) % 4]))
        kind = MemberKind.GOVERNMENT if name == GOV else MemberKind.PLATFORM
        configs.append(write_node_dir(tmp_path, name, members, kind, neighbours))
    (configs[1].dir / "policy.toml").write_text(EXAMPLE)
    (configs[2].dir / "policy.toml").write_text(P2_POLICY)
    return configs


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    capsys.readouterr()
    assert main(list(argv)) == 0, capsys.readouterr().err
    return capsys.readouterr().out


def test_incident_accountability_across_four_nodes(
    tmp_path: Path, loop: LoopThread, capsys: pytest.CaptureFixture[str]
) -> None:
    configs = _ring(tmp_path)
    nodes = [Node(c) for c in configs]
    for n in nodes:
        loop.run(n.start())
    gov, p1, p2, p3 = (str(c.dir) for c in configs)
    try:
        # 1. The government submits the incident's hashes.
        ids = []
        for algo, value, labels in HASHES:
            args = ["submit", gov, "--algo", algo, "--hash", value, "--incident", INCIDENT]
            args += [a for label in labels for a in ("--label", label)]
            ids.append(json.loads(_run(capsys, *args, "--urgent", "--json"))["entry_id"])
        for n in nodes:
            eventually(lambda n=n: n.store.head(GOV).next_seq == 3, what=f"{n.config.id} has 3")

        # 2. Two platforms endorse every hash; a third disputes one.
        for platform in (p1, p2):
            for eid in ids:
                _run(capsys, "feedback", "endorse", platform, "--entry", eid)
        _run(
            capsys,
            "feedback", "dispute", p3, "--entry", ids[2], "--code", "news-documentary-use",
        )  # fmt: skip
        for n in nodes:
            eventually(
                lambda n=n: (n.store.head(P1).next_seq, n.store.head(P2).next_seq,
                             n.store.head(P3).next_seq) == (3, 3, 1),
                what=f"feedback reached {n.config.id}",
            )  # fmt: skip

        # 3. Match answers carry the aggregate and each platform's own policy.
        hits = {}
        for platform in (p1, p2, p3):
            for i, (algo, value, _) in enumerate(HASHES):
                out = _run(capsys, "match", platform, "--algo", algo, "--hash", value,
                           "--record", "--json")  # fmt: skip
                (hits[platform, i],) = json.loads(out)[0]["matches"]
        h = hits[p1, 0]
        assert (h["recommended_action"], h["rule"]) == ("BLOCK", "government-plus-two-platforms")
        assert h["endorsements"] == [
            {"member_kind": "platform", "jurisdiction": "FR", "count": 1},
            {"member_kind": "platform", "jurisdiction": "NZ", "count": 1},
        ]
        assert hits[p1, 2]["disputes"] == [
            {"member_kind": "platform", "jurisdiction": "US", "count": 1}
        ]
        assert hits[p1, 2]["rule"] == "government-plus-two-platforms"  # one dispute < two
        assert (hits[p2, 0]["recommended_action"], hits[p2, 0]["rule"]) == ("BLOCK", "government")
        assert (hits[p2, 2]["recommended_action"], hits[p2, 2]["rule"]) == ("REVIEW", "any-dispute")
        assert (hits[p3, 0]["recommended_action"], hits[p3, 0]["rule"]) == ("REVIEW", "(default)")
        explained = _run(capsys, "policy", "explain", ids[0], p1)
        assert "recommended action: BLOCK (rule government-plus-two-platforms)" in explained
        assert "3. government-plus-two-platforms -> BLOCK: FIRES" in explained

        # 4. Platforms act on matches and file signed action reports.
        actions = {
            p1: [(0, "blocked-at-upload", 2), (1, "blocked-at-upload", 1), (2, "removed", 1)],
            p2: [(0, "blocked-at-upload", 1), (1, "blocked-at-upload", 3), (2, "reviewed", 1)],
            p3: [(0, "removed", 1)],
        }
        for platform, acts in actions.items():
            for i, action, count in acts:
                _run(capsys, "record-action", platform, "--entry", ids[i], "--action", action,
                     "--count", str(count))  # fmt: skip
        filed = {p: json.loads(_run(capsys, "report-actions", p, "--json")) for p in actions}
        assert [len(filed[p]) for p in (p1, p2, p3)] == [3, 3, 3]  # P3 matched all three
        assert _run(capsys, "report-actions", p1).strip() == "nothing new to report"
        gov_node = nodes[0]
        eventually(
            lambda: (gov_node.store.head(P1).next_seq, gov_node.store.head(P2).next_seq,
                     gov_node.store.head(P3).next_seq) == (6, 6, 4),
            what="action reports reached the government",
        )  # fmt: skip

        # 5. The incident report at the government's node.
        doc = json.loads(_run(capsys, "incident", "report", INCIDENT, gov, "--format", "json"))
        assert [h["entry_id"] for h in doc["hashes"]] == ids
        # Every origin's figures trace to a checkpoint it signed (same size and root).
        for cov in doc["log"]:
            note = cov["checkpoint"]
            assert note is not None, cov["origin"]
            assert note.splitlines()[1:3] == [
                str(cov["size"]),
                base64.b64encode(bytes.fromhex(cov["root"])).decode(),
            ]
        assert [v["member"] for v in doc["hashes"][0]["endorsements"]] == [P2, P1]
        assert doc["hashes"][2]["disputes"] == [
            {
                "member": P3,
                "kind": "platform",
                "jurisdiction": "US",
                "entry_id": doc["hashes"][2]["disputes"][0]["entry_id"],
                "reason": "news-documentary-use",
            }
        ]
        assert doc["no_report"] == []
        by_member = {m["member"]: m for m in doc["members"]}
        assert set(by_member) == {P1, P2, P3}
        expected = {
            P1: {"matches": 3, "blocked_at_upload": 3, "removals": 1, "reviews": 0},
            P2: {"matches": 3, "blocked_at_upload": 4, "removals": 0, "reviews": 1},
            P3: {"matches": 3, "blocked_at_upload": 0, "removals": 1, "reviews": 0},
        }
        for name, m in by_member.items():
            assert m["totals"] == expected[name]
            for row in m["hashes"]:
                # Every figure is the signed ACTION_REPORT's, as stored at the government.
                stored = gov_node.store.get(bytes.fromhex(row["report_entry_id"]))
                assert stored is not None
                body = stored.entry.body
                assert (body.origin, body.kind, body.target.hex()) == (
                    name, Kind.ACTION_REPORT, row["target"],
                )  # fmt: skip
                counts = ActionCounts.decode(body.payload)
                target = gov_node.store.get(body.target)
                assert target is not None
                published = target.entry.body.time_ms
                assert row["published_ms"] == published
                assert row["arrival_ms"] == counts.arrival_ms >= published
                assert row["first_action_ms"] == (counts.first_action_ms or None)
                assert row["time_to_action_ms"] == (
                    counts.first_action_ms - published if counts.first_action_ms else None
                )
                fields = ("matches", "blocked_at_upload", "removals", "reviews")
                assert [row[f] for f in fields] == [getattr(counts, f) for f in fields]
            acted = [r["time_to_action_ms"] for r in m["hashes"] if r["time_to_action_ms"]]
            assert m["time_to_action_ms"]["n"] == len(acted)
            assert m["time_to_action_ms"]["max"] == max(acted) > 0
        assert [r["time_to_action_ms"] is None for r in by_member[P3]["hashes"]] == [
            False, True, True,
        ]  # fmt: skip

        # The log read: each origin's Merkle root over the entries the government holds.
        for cov in doc["log"]:
            tree = MemoryTree()
            for e in gov_node.store.entries_from(cov["origin"], 0, 10_000):
                tree.append(e.to_bytes())
            assert (cov["size"], cov["root"]) == (tree.size, tree.root().hex())

        # Markdown and HTML (with an inline SVG chart, no script) from the same entries.
        md = _run(capsys, "incident", "report", INCIDENT, gov, "--format", "md")
        (tmp_path / "incident.md").write_text(md)
        assert f"# Incident report: {INCIDENT}" in md and f"### {P2}" in md
        out = tmp_path / "incident.html"
        _run(capsys, "incident", "report", INCIDENT, gov, "--format", "html", "--out", str(out))
        page = out.read_text()
        assert page.count("<svg") == 2 and "<script" not in page
        assert "Time from publication to first action" in page

        # 6. A later report supersedes: one more block at P1 changes only its latest report.
        _run(capsys, "record-action", p1, "--entry", ids[0], "--action", "blocked-at-upload")
        (again,) = json.loads(_run(capsys, "report-actions", p1, "--json"))
        assert (again["target"], again["blocked_at_upload"]) == (ids[0], 3)
        eventually(lambda: gov_node.store.head(P1).next_seq == 7, what="new report arrived")
        doc = json.loads(_run(capsys, "incident", "report", INCIDENT, gov, "--format", "json"))
        p1_totals = next(m for m in doc["members"] if m["member"] == P1)["totals"]
        assert p1_totals["blocked_at_upload"] == 4

        # The transparency report over the same entries.
        t = json.loads(
            _run(capsys, "transparency-report", gov, "--since", "2000-01-01", "--format", "json")
        )
        assert t["entries"] == 3
        assert {c["key"]: c["count"] for c in t["by_submitter_kind"]} == {"government": 3}
        (s,) = t["submitters"]
        assert (s["member"], s["dispute_rate"], s["retraction_rate"]) == (GOV, 1 / 3, 0.0)
        assert {m["member"] for m in t["reporting_members"]} == {P1, P2, P3}
    finally:
        for n in nodes:
            if n._server is not None:
                loop.run(n.stop())
