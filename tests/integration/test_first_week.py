"""Issue 15 (an operator's first week), items 11-23: what misled new users."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import logging
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from node import __version__
from node.cli import main
from node.config import load_config, load_signer
from node.core import labels, payloads
from node.core.entry import MAX_ID_CANDIDATES, resolve_id_prefix
from node.core.roster import Roster
from node.core.trust import MemberKind, MembersFile, raw_public_key
from node.errors import NotFoundError, ValidationError
from node.mesh import Mesh
from node.server import Node
from node.store.lmdb_store import LmdbStore
from node.store.matchlog import MatchLog
from tests.helpers import LoopThread, Origin, eventually, member, write_node_dir
from tests.helpers import run_cli as _run

pytestmark = pytest.mark.integration


# -- item 13: init sets no jurisdiction it was not given ---------------------------


def test_init_government_needs_a_jurisdiction(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = tmp_path / "gov"
    assert main(["init", str(d), "--id", "gov.example/ct", "--kind", "government"]) == 2
    assert capsys.readouterr().err.strip() == (
        "ccnode: error: a government member needs --jurisdiction CC (ISO 3166-1 alpha-2, "
        "e.g. NZ): policy rules and reports group governments by it"
    )
    assert not d.exists()


def test_init_leaves_a_platforms_jurisdiction_empty(tmp_path: Path) -> None:
    d = tmp_path / "plat"
    argv = ["init", str(d), "--id", "platform.example", "--kind", "platform", "--genesis"]
    assert main(argv) == 0
    assert load_config(d).jurisdiction == ""
    assert json.loads((d / "member.json").read_text())["jurisdiction"] == ""
    # The signed roster carries "no jurisdiction" and reads it back as such.
    roster = load_config(d).roster()
    (member,) = roster.members
    assert member.jurisdiction == ""
    assert Roster.decode(roster.encode()).members[0].jurisdiction == ""
    assert main(["roster", "verify", str(d / "roster.json")]) == 0


# -- a running node for the client commands ------------------------------------------

P1 = "platform.example"
MD5 = "00112233445566778899aabbccddeeff"


@pytest.fixture
def node_dir(tmp_path: Path, loop: LoopThread) -> Iterator[str]:
    config = write_node_dir(tmp_path, P1, MembersFile.of([member(P1)]))
    node = Node(config)
    loop.run(node.start())
    try:
        yield str(config.dir)
    finally:
        loop.run(node.stop())


def _submit(
    capsys: pytest.CaptureFixture[str], d: str, value: str = MD5, *extra: str, algo: str = "md5"
) -> str:
    out, _ = _run(capsys, "submit", d, "--algo", algo, "--hash", value, "--json", *extra)
    return str(json.loads(out)["entry_id"])


# -- item 11: entry ids by unique prefix ----------------------------------------------


def test_every_command_that_takes_an_entry_id_takes_a_unique_prefix(
    node_dir: str, capsys: pytest.CaptureFixture[str]
) -> None:
    d = node_dir
    entry_id = _submit(capsys, d)
    prefix = entry_id[:8]
    out, _ = _run(capsys, "policy", "explain", prefix, d, "--json")
    assert json.loads(out)["match"]["entry_id"] == entry_id
    out, _ = _run(capsys, "record-action", d, "--entry", entry_id[:9], "--action", "removed")
    assert out.startswith(f"logged removed x1 for {entry_id[:16]} at ")
    out, _ = _run(
        capsys, "feedback", "relabel", d, "--entry", prefix.upper(), "--label", "type:image"
    )
    assert out.startswith(f"relabel {entry_id[:16]}: entry ")
    out, _ = _run(capsys, "submit", d, "--retract", entry_id[:16], "--json")
    retraction = json.loads(out)["entry_id"]
    out, _ = _run(
        capsys, "match", d, "--algo", "md5", "--hash", MD5, "--include-retracted", "--json"
    )
    assert json.loads(out)[0]["matches"][0]["retracted"] is True
    assert retraction != entry_id

    missing = "0123abcd" if not entry_id.startswith("0123abcd") else "3210dcba"
    for argv in (
        ("policy", "explain", missing, d),
        ("record-action", d, "--entry", missing, "--action", "removed"),
        ("feedback", "endorse", d, "--entry", missing),
        ("submit", d, "--retract", missing),
        ("prove", missing, d),
    ):
        _, err = _run(capsys, *argv, code=4)
        assert err == f"ccnode: error: no stored entry id begins with {missing}\n", argv
    for bad in ("abc", "0123abcg", "ab" * 33):
        _, err = _run(capsys, "record-action", d, "--entry", bad, "--action", "removed", code=2)
        assert err == (
            f"ccnode: error: entry id {bad!r}: expected 8 to 64 hex digits "
            "(the full id or a unique prefix of it)\n"
        )


def test_an_ambiguous_prefix_is_refused_with_the_candidates(tmp_path: Path) -> None:
    # Two of a few hundred real ids share their first hex digits; the store
    # finds both by prefix and the resolver lists them.
    store = LmdbStore(tmp_path / "data")
    try:
        origin = Origin("platform.example")
        entries = [origin.next() for _ in range(300)]
        store.ingest(entries, atomic=True, now_ms=1)
        ids = sorted(e.entry_id for e in entries)
        a, b = next((x, y) for x, y in itertools.pairwise(ids) if x[:1] == y[:1])
        found = store.ids_with_prefix(a[:1], MAX_ID_CANDIDATES + 1)
        assert a in found and b in found and all(f[:1] == a[:1] for f in found)
        prefix = a.hex()[:2]
        with pytest.raises(ValidationError) as err:
            resolve_id_prefix(prefix, found)
        shown = ", ".join(f.hex() for f in found[:MAX_ID_CANDIDATES])
        more = " and more" if len(found) > MAX_ID_CANDIDATES else ""
        assert str(err.value) == (
            f"entry id prefix {prefix} is ambiguous: it begins {min(len(found), 10)}{more} "
            f"stored entries: {shown}{more and ', ...'}; give more digits"
        )
        assert resolve_id_prefix(a.hex()[:12], found) == a
        assert store.ids_with_prefix(b"\xff" * 5, 5) == [] or ids[-1].startswith(b"\xff" * 5)
    finally:
        store.close()


def test_an_ambiguous_prefix_message_lists_at_most_ten() -> None:
    ids = [bytes([0xAB, 0xCD, 0xEF, 0x01, i]) + bytes(27) for i in range(12)]
    with pytest.raises(ValidationError) as err:
        resolve_id_prefix("abcdef01", ids)
    assert str(err.value) == (
        "entry id prefix abcdef01 is ambiguous: it begins 10 and more stored entries: "
        + ", ".join(i.hex() for i in ids[:10])
        + ", ...; give more digits"
    )
    with pytest.raises(NotFoundError, match=r"^no stored entry id begins with abcdef02$"):
        resolve_id_prefix("abcdef02", ids)


# -- item 14: record-action times -----------------------------------------------------


def test_record_action_prints_a_readable_time_and_takes_at(
    node_dir: str, capsys: pytest.CaptureFixture[str]
) -> None:
    d = node_dir
    entry_id = _submit(capsys, d)
    out, _ = _run(capsys, "record-action", d, "--entry", entry_id, "--action", "reviewed")
    assert re.fullmatch(
        rf"logged reviewed x1 for {entry_id[:16]} at \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{{3}}Z\n",
        out,
    )
    at = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=30)
    text = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    out, _ = _run(
        capsys, "record-action", d, "--entry", entry_id, "--action", "removed", "--at", text
    )
    assert out == (
        f"logged removed x1 for {entry_id[:16]} at {at.strftime('%Y-%m-%d %H:%M:%S')}.000Z\n"
    )
    out, _ = _run(capsys, "report-actions", d, "--dry-run", "--json")
    (row,) = json.loads(out)
    assert row["removals"] == 1
    removed_at = ("record-action", d, "--entry", entry_id, "--action", "removed", "--at")

    _, err = _run(capsys, *removed_at, "2019-03-15T01:40:00Z", code=2)
    assert re.fullmatch(
        rf"ccnode: error: action time 2019-03-15T01:40:00Z is before entry {entry_id[:16]} "
        r"arrived here \(\S+\): an action must follow the match\n",
        err,
    )
    _, err = _run(capsys, *removed_at, "2999-01-01", code=2)
    assert re.fullmatch(
        r"ccnode: error: action time 2999-01-01T00:00:00Z is in the future \(now \S+\)\n", err
    )


# -- item 14: small things ------------------------------------------------------------


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out == f"ccnode {__version__}\n"


def test_json_on_labels_health_and_check_config(
    node_dir: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out, _ = _run(capsys, "labels", "--json")
    rows = json.loads(out)
    assert {r["label"] for r in rows} == {
        f"{dim}:{value}" for dim, values in labels.TAXONOMY.items() for value in values
    }
    assert all(r["label"] == f"{r['dimension']}:{r['value']}" and r["meaning"] for r in rows)
    out, _ = _run(capsys, "health", node_dir, "--json")
    doc = json.loads(out)
    assert doc == {"address": doc["address"], "status": "SERVING"}
    out, _ = _run(capsys, "check-config", node_dir, "--json")
    assert json.loads(out) == {
        "config": f"{node_dir}/config.toml",
        "ok": True,
        "id": P1,
        "listen": "127.0.0.1:0",
        "metrics": None,
        "http": None,
        "peers": 0,
        "warnings": [],
    }


@pytest.mark.parametrize("command", ["labels", "status"])
def test_a_reader_that_goes_away_gets_no_traceback(command: str, node_dir: str) -> None:
    # `ccnode status | head`: a real process whose stdout's reader has closed.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "node", command, *([node_dir] if command == "status" else [])],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert done.stderr == ""
    assert done.returncode == 141


def test_keygen_makes_an_entry_key_for_rotate_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = tmp_path / "plat"
    assert main(["init", str(d), "--id", P1, "--kind", "platform", "--genesis"]) == 0
    key = tmp_path / "entry-2.pem"
    out, _ = _run(capsys, "roster", "keygen", "--entry", str(key))
    public = raw_public_key(load_signer(key).public_key)
    assert out.splitlines() == [
        f"entry key {key}: public key {public.hex()} (shown as {public.hex()[:16]})",
        f"next: `ccnode roster rotate-key ROSTER --id MEMBER --entry-key {key}`, sign and "
        "publish the roster, then point the member's key_file at this key",
    ]
    roster = d / "roster.json"
    draft = tmp_path / "draft.json"
    out, _ = _run(
        capsys,
        "roster",
        "rotate-key",
        str(roster),
        "--id",
        P1,
        "--entry-key",
        str(key),
        "--out",
        str(draft),
    )
    assert f"new entry key {public.hex()[:16]}" in out
    out, _ = _run(capsys, "roster", "show", str(draft))
    first = raw_public_key(load_config(d).signer().public_key)
    shown = ", ".join(sorted(k.hex()[:16] for k in (first, public)))  # sorted, as stored
    assert f"entry keys {shown};" in out


def test_a_bad_incident_id_says_the_rule(node_dir: str, capsys: pytest.CaptureFixture[str]) -> None:
    _, err = _run(
        capsys,
        "submit",
        node_dir,
        "--algo",
        "md5",
        "--hash",
        MD5,
        "--incident",
        "Christchurch",
        code=2,
    )
    assert err == (
        "ccnode: error: bad incident id 'Christchurch': expected lower-case words (a-z, 0-9) "
        "joined by '-' ending in the date it began (YYYY-MM-DD), at most 64 characters, "
        "e.g. 'christchurch-2019-03-15'\n"
    )


# -- item 12: match says how it matched, and gives one verdict per query ----------------

VECTORS = Path(__file__).resolve().parents[2].parent / "shared" / "vectors" / "pdq"
GLORIFICATION_BLOCKS = """version = 1
default = "review"
[[rule]]
name = "glorification"
action = "block"
labels_any = ["behaviour:glorification"]
"""


def _vectors() -> dict[str, Any]:
    if not (VECTORS / "expected.json").exists():
        pytest.skip(f"PDQ vectors not found at {VECTORS}")
    return dict(json.loads((VECTORS / "expected.json").read_text()))


def test_match_names_algorithm_variant_urgency_and_one_verdict(
    node_dir: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from PIL import Image

    from node.media.image import DIHEDRAL_NAMES, hamming, pdq_dihedral

    expected = _vectors()
    d = node_dir
    (Path(d) / "policy.toml").write_text(GLORIFICATION_BLOCKS)
    _run(capsys, "policy", "reload", d)
    orig = expected["aaa-orig.jpg"]["pdq"]
    edit = expected["sharpen-a-lot.jpg"]["pdq"]  # 12 bits from orig
    a = _submit(capsys, d, orig, "--label", "type:image", "--urgent", algo="pdq")
    b = _submit(
        capsys, d, edit, "--label", "type:image", "--label", "behaviour:glorification", algo="pdq"
    )

    out, _ = _run(capsys, "match", d, "--algo", "pdq", "--hash", orig)
    lines = out.splitlines()
    # The nearer hit says REVIEW, the farther BLOCK: the query's verdict is BLOCK.
    assert lines[0] == f"PDQ {orig[:16]}: BLOCK (rule glorification, entry {b[:16]}; 2 matches)"
    assert lines[1].startswith(f"  REVIEW    PDQ distance 0 (original)  {P1} (platform, NZ)")
    assert f"entry {a[:16]}" in lines[1] and lines[1].endswith("[URGENT, not yet settled]")
    assert lines[2].startswith(f"  BLOCK     PDQ distance 12 (original)  {P1}")
    assert lines[2].endswith("[not yet settled]")
    out, _ = _run(capsys, "match", d, "--algo", "pdq", "--hash", orig, "--json")
    (by_hash,) = json.loads(out)
    assert by_hash["verdict"] == {"action": "BLOCK", "rule": "glorification", "entry_id": b}
    assert by_hash["file"] is None and by_hash["query"] == {"PDQ": orig}
    assert [(m["entry_id"], m["variant"], m["urgent"]) for m in by_hash["matches"]] == [
        (a, "original", True),
        (b, "original", False),
    ]

    # A rotated copy, with its dihedral hashes: the variant that undoes the
    # rotation is named, and the file's answer has the same shape.
    rotated = tmp_path / "rotated.png"
    Image.open(VECTORS / "aaa-orig.jpg").convert("RGB").rotate(90, expand=True).save(rotated)
    variants = pdq_dihedral(rotated)
    nearest = min(range(8), key=lambda i: hamming(variants[i].value, bytes.fromhex(orig)))
    assert DIHEDRAL_NAMES[nearest] != "original"
    out, _ = _run(capsys, "match", str(rotated), "--dir", d, "--dihedral", "--json")
    (by_file,) = json.loads(out)
    assert by_file.keys() == by_hash.keys()
    assert by_file["file"] == str(rotated)
    hit = next(m for m in by_file["matches"] if m["entry_id"] == a)
    assert hit["variant"] == DIHEDRAL_NAMES[nearest]
    assert by_file["verdict"]["action"] in ("BLOCK", "REVIEW")
    out, _ = _run(capsys, "match", str(rotated), "--dir", d, "--dihedral")
    assert f"PDQ distance {hit['distance']} ({DIHEDRAL_NAMES[nearest]})" in out

    # MD5: exact, said so.
    md5 = _submit(capsys, d)
    out, _ = _run(capsys, "match", d, "--algo", "md5", "--hash", MD5)
    assert (
        out.splitlines()[0] == f"MD5 {MD5[:16]}: REVIEW (rule (default), entry {md5[:16]}; 1 match)"
    )
    assert "  REVIEW    MD5 distance 0 (exact)  " in out


def test_the_same_hash_twice_from_one_origin_is_the_existing_entry(
    node_dir: str, capsys: pytest.CaptureFixture[str]
) -> None:
    d = node_dir
    first = _submit(capsys, d, MD5, "--label", "type:image")
    out, _ = _run(
        capsys, "submit", d, "--algo", "md5", "--hash", MD5, "--label", "type:image", "--json"
    )
    assert json.loads(out) == {"entry_id": first, "outcome": "existing"}
    out, _ = _run(capsys, "submit", d, "--algo", "md5", "--hash", MD5, "--label", "type:image")
    assert re.fullmatch(
        rf"existing: entry {first} \(submitted by {P1} on \S+ with the same labels; "
        r"not submitted again\)\n",
        out,
    )
    _, err = _run(
        capsys, "submit", d, "--algo", "md5", "--hash", MD5, "--label", "type:video", code=5
    )
    assert err == (
        f"ccnode: error: {P1} already submitted this MD5 hash as entry {first[:16]} with labels "
        "type:image; not submitted again. To change its labels: ccnode feedback relabel DIR "
        f"--entry {first[:16]} --label type:video\n"
    )
    out, _ = _run(capsys, "status", d, "--json")
    assert json.loads(out)["heads"][P1]["next_seq"] == 1
    # Retracted, it may be submitted again: a new entry.
    _run(capsys, "submit", d, "--retract", first[:8])
    again = _submit(capsys, d, MD5, "--label", "type:image")
    assert again != first


# -- item 16: policy on match distance (and origin standing: tests/unit/test_policy.py) --


def test_a_policy_rule_on_match_distance_at_a_running_node(
    node_dir: str, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = _vectors()
    d = node_dir
    (Path(d) / "policy.toml").write_text(
        'version = 1\ndefault = "review"\n[[rule]]\nname = "near"\naction = "block"\n'
        "max_distance = 5\n"
    )
    _run(capsys, "policy", "reload", d)
    orig, edit = expected["aaa-orig.jpg"]["pdq"], expected["sharpen-a-lot.jpg"]["pdq"]
    a = _submit(capsys, d, orig, "--label", "type:image", algo="pdq")
    out, _ = _run(capsys, "match", d, "--algo", "pdq", "--hash", orig, "--json")
    assert [(m["recommended_action"], m["rule"]) for m in json.loads(out)[0]["matches"]] == [
        ("BLOCK", "near")
    ]
    out, _ = _run(capsys, "match", d, "--algo", "pdq", "--hash", edit, "--json")
    assert [
        (m["distance"], m["recommended_action"], m["rule"]) for m in json.loads(out)[0]["matches"]
    ] == [(12, "REVIEW", "(default)")]
    out, _ = _run(capsys, "policy", "explain", a[:8], d)
    assert "the match is at distance 5 or less (got: distance 0)" in out


# -- item 15: the never-match list reloads with the policy -----------------------------


def test_policy_reload_rereads_the_never_match_list(
    node_dir: str, capsys: pytest.CaptureFixture[str]
) -> None:
    d = node_dir
    entry_id = _submit(capsys, d)
    listed = Path(d) / "never_match.txt"
    listed.write_text(f"# a benign file\nmd5 {MD5}\n")

    def answer() -> tuple[dict[str, Any], str]:
        out, _ = _run(capsys, "match", d, "--algo", "md5", "--hash", MD5, "--json")
        human, _ = _run(capsys, "match", d, "--algo", "md5", "--hash", MD5)
        (doc,) = json.loads(out)
        return doc, human

    doc, human = answer()
    assert not doc["never_match"] and doc["matches"][0]["entry_id"] == entry_id  # not yet read
    out, _ = _run(capsys, "policy", "reload", d)
    assert out.splitlines()[-1] == f"never-match list reloaded from {listed}: 1 hashes"
    doc, human = answer()
    assert (doc["never_match"], doc["matches"], doc["verdict"]) == (True, [], None)
    assert human == f"MD5 {MD5[:16]}: no match (on this node's never-match list)\n"

    # A bad list is refused and the current one (and policy) stays.
    listed.write_text("md5 nothex\n")
    _, err = _run(capsys, "policy", "reload", d, code=2)
    assert err.startswith(f"ccnode: error: {listed}:1: ")
    assert answer()[0]["never_match"] is True
    listed.unlink()
    out, _ = _run(capsys, "policy", "reload", d)
    assert out.splitlines()[-1] == "never-match list: none (no never_match.txt)"
    assert answer()[0]["matches"][0]["entry_id"] == entry_id


def test_sighup_rereads_the_never_match_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Mesh.create(tmp_path / "mesh", [(P1, MemberKind.PLATFORM)]) as mesh:
        (n,) = mesh.nodes
        mesh.start()
        assert n.process is not None
        d = str(n.config.dir)
        _submit(capsys, d)

        def suppressed() -> bool:
            out, _ = _run(capsys, "match", d, "--algo", "md5", "--hash", MD5, "--json")
            return bool(json.loads(out)[0]["never_match"])

        assert not suppressed()
        (n.config.dir / "never_match.txt").write_text(f"md5 {MD5}\n")
        os.kill(n.process.pid, signal.SIGHUP)
        eventually(suppressed, what="SIGHUP reloaded the never-match list")


# -- item 17: submission gates ----------------------------------------------------------

EMPTY_MD5 = hashlib.md5(b"").hexdigest()
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


@pytest.mark.parametrize(
    ("algo", "value", "what"),
    [
        ("md5", EMPTY_MD5, "the digest of an empty file"),
        ("video_md5", EMPTY_MD5, "the digest of an empty file"),
        ("sha256", EMPTY_SHA256, "the digest of an empty file"),
        ("md5", "00" * 16, "all zeros, not the digest of any known file"),
        ("sha256", "ff" * 32, "all ones, not the digest of any known file"),
    ],
)
def test_trivial_digests_are_refused(
    algo: str,
    value: str,
    what: str,
    node_dir: str,
    loop: LoopThread,
    capsys: pytest.CaptureFixture[str],
) -> None:
    name = algo.upper()
    message = f"{name} {value} is {what}: it would match unrelated content, so it is refused"
    _, err = _run(capsys, "submit", node_dir, "--algo", algo, "--hash", value, code=2)
    assert err == f"ccnode: error: {message}\n"
    # The node refuses it too, whatever client signed it.
    entry = Origin(P1).next(algorithm=name, hash=bytes.fromhex(value))
    with pytest.raises(ValidationError) as info:
        loop.run(_node_submit(node_dir, entry))
    assert str(info.value) == message


async def _node_submit(d: str, entry: Any) -> None:
    from node.rpc.client import NodeClient

    address = (Path(d) / "node.addr").read_text().strip()
    async with NodeClient(address) as client:
        await client.submit([entry])


def test_pdq_quality_is_recorded_and_gated(
    node_dir: str, loop: LoopThread, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = _vectors()
    orig = expected["aaa-orig.jpg"]["pdq"]
    d = node_dir
    _, err = _run(capsys, "submit", d, "--algo", "pdq", "--hash", orig, "--quality", "0", code=2)
    assert err == "ccnode: error: PDQ quality 0 is below the floor of 50\n"
    _, err = _run(capsys, "submit", d, "--algo", "md5", "--hash", MD5, "--quality", "90", code=2)
    assert err == "ccnode: error: --quality is for PDQ hashes, not MD5\n"
    # A client that skips the check: the node refuses the signed quality.
    low = Origin(P1).next(
        algorithm="PDQ", hash=bytes.fromhex(orig), payload=payloads.encode_quality(10)
    )
    with pytest.raises(ValidationError, match=r"^PDQ quality 10 is below the floor of 50$"):
        loop.run(_node_submit(d, low))
    entry_id = _submit(capsys, d, orig, "--quality", "87", algo="pdq")
    out, _ = _run(capsys, "match", d, "--algo", "pdq", "--hash", orig, "--json")
    (hit,) = json.loads(out)[0]["matches"]
    assert (hit["entry_id"], hit["quality"]) == (entry_id, 87)
    # --file records the quality it computed.
    _run(capsys, "submit", d, "--file", str(VECTORS / "q0746.jpg"))
    out, _ = _run(
        capsys, "match", d, "--algo", "pdq", "--hash", expected["q0746.jpg"]["pdq"], "--json"
    )
    (hit,) = json.loads(out)[0]["matches"]
    assert hit["quality"] == expected["q0746.jpg"]["quality"]


def test_an_import_skips_trivial_digests_with_a_warning() -> None:
    from node.interop.formats import SkippedRow, parse_rows

    rows = list(parse_rows([f"md5 {EMPTY_MD5}\n", f"md5 {MD5}\n"], "pytx"))
    assert rows[0] == SkippedRow(
        1,
        f"MD5 {EMPTY_MD5} is the digest of an empty file: it would match unrelated content, "
        "so it is refused",
    )
    assert not isinstance(rows[1], SkippedRow)


# -- item 20: the match log is in the backup --------------------------------------------


def test_backup_and_restore_carry_the_match_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    backup_dir = tmp_path / "backup"
    with Mesh.create(tmp_path / "mesh", [(P1, MemberKind.PLATFORM)]) as mesh:
        (n,) = mesh.nodes
        mesh.start()
        d = str(n.config.dir)
        entry_id = _submit(capsys, d)
        _run(capsys, "match", d, "--algo", "md5", "--hash", MD5, "--record")
        _run(capsys, "record-action", d, "--entry", entry_id, "--action", "removed")
        out, _ = _run(capsys, "backup", d, str(backup_dir))  # hot: the node runs
        assert "; match log 2 events, " in out
        want, _ = _run(capsys, "report-actions", d, "--dry-run", "--json")
    manifest = json.loads((backup_dir / "backup.json").read_text())
    assert manifest["matchlog_events"] == 2
    assert (backup_dir / "matchlog" / "data.mdb").is_file()

    # A fresh directory (config and keys from elsewhere) gets both back.
    fresh = write_node_dir(tmp_path / "new-machine", P1, MembersFile.of([member(P1)]))
    out, _ = _run(capsys, "restore", str(backup_dir), str(fresh.dir))
    assert out.startswith(f"restored 1 entries and 2 match-log events of {P1} into ")
    log = MatchLog(fresh.dir / "matchlog")
    try:
        (totals,) = log.totals()
        events = log.events()
    finally:
        log.close()
    (row,) = json.loads(want)
    assert (totals.entry_id.hex(), totals.matches, totals.removals) == (entry_id, 1, 1)
    assert (row["target"], row["matches"], row["removals"]) == (entry_id, 1, 1)
    assert totals.first_action_ms == row["first_action_ms"]
    assert [e.kind.name for e in events] == ["MATCH", "REMOVED"]

    # Restoring over a match log needs --force, like the store; a corrupt copy is refused.
    other = write_node_dir(tmp_path / "third", P1, MembersFile.of([member(P1)]))
    MatchLog(other.dir / "matchlog").close()
    _, err = _run(capsys, "restore", str(backup_dir), str(other.dir), code=2)
    assert err == (
        f"ccnode: error: {other.dir / 'matchlog'} already holds a match log; pass --force to "
        "move it aside and restore\n"
    )
    # (an empty match-log directory without data.mdb is not one)
    with (backup_dir / "matchlog" / "data.mdb").open("r+b") as f:
        f.seek(100)
        f.write(b"\xfe")
    _, err = _run(capsys, "restore", str(backup_dir), str(other.dir), "--force", code=1)
    assert err.startswith(
        f"ccnode: error: backup {backup_dir / 'matchlog' / 'data.mdb'} is corrupt"
    )
    assert not list((tmp_path / "third").glob("*/data.before-restore-*"))  # nothing moved


# -- item 19: --log-json means every line is JSON, gRPC's own lines too -----------------


def test_log_json_routes_grpcs_native_lines(tmp_path: Path) -> None:
    import dataclasses

    import grpc

    from node.rpc._pb.consortium.v1 import node_pb2 as pb
    from node.rpc._pb.consortium.v1 import node_pb2_grpc as pb_grpc

    with Mesh.create(tmp_path / "mesh", [(P1, MemberKind.PLATFORM)]) as mesh:
        (n,) = mesh.nodes
        dataclasses.replace(n.config, log_json=True).save()
        mesh.start()
        # A plaintext client at a mutual-TLS node: gRPC's C core logs the
        # failed handshake itself, on fd 2.
        with grpc.insecure_channel(n.address) as channel, pytest.raises(grpc.RpcError):
            pb_grpc.NodeServiceStub(channel).Status(pb.StatusRequest(), timeout=5)
        log = n.config.dir / "node.log"

        def handshake_logged() -> bool:
            return any(
                json.loads(line).get("event") == "tls_handshake_failed"
                for line in log.read_text().splitlines()
                if line.startswith("{")
            )

        eventually(handshake_logged, what="the failed handshake was logged")
        mesh.stop_node(n)
    lines = log.read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line parses
    assert all(r.keys() >= {"ts", "level", "logger", "msg"} for r in records)
    (failed,) = [r for r in records if r.get("event") == "tls_handshake_failed"]
    assert failed["logger"] == "grpc.native" and failed["level"] == "warning"
    assert failed["msg"].startswith("Handshake failed")
    assert any(r["msg"].startswith(f"{P1} serving on 127.0.0.1:") for r in records)


@pytest.mark.parametrize(
    ("line", "level", "msg", "extra"),
    [
        (
            "E1201 14:23:44.425643   18663 ssl_transport_security.cc:2563] Handshake failed "
            "with error SSL_ERROR_SSL",
            logging.ERROR,
            "Handshake failed with error SSL_ERROR_SSL",
            {"source": "ssl_transport_security.cc:2563", "event": "tls_handshake_failed"},
        ),
        (
            "I0000 00:00:1733070000.123456    7 chttp2_transport.cc:99] ping",
            logging.INFO,
            "ping",
            {"source": "chttp2_transport.cc:99"},
        ),
        (
            "Traceback (most recent call last):",
            logging.WARNING,
            "Traceback (most recent call last):",
            {},
        ),
    ],
)
def test_native_lines_are_parsed(line: str, level: int, msg: str, extra: dict[str, str]) -> None:
    from node.logs import native_record

    assert native_record(line) == (level, msg, extra)


# -- item 21: the pytx file format ---------------------------------------------------

SHA = hashlib.sha256(b"a video").hexdigest()


def test_pytx_import_derives_types_supports_video_sha256_and_skips_by_design(
    node_dir: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = _vectors()
    pdq = expected["aaa-orig.jpg"]["pdq"]
    f = tmp_path / "pytx.txt"
    f.write_text(
        f"pdq {pdq}\nvideo_md5 {MD5}\nvideo_sha256 {SHA}\nurl https://example.com/x\n"
        f"md5 {EMPTY_MD5}\n"
    )
    argv = ["import", str(f), "--format", "pytx", "--dir", node_dir, "--label",
            "type:image", "--label", "behaviour:glorification"]  # fmt: skip
    out, err = _run(capsys, *argv)  # partial by design: exit 0
    assert err.splitlines()[:2] == [
        f"ccnode: warning: {f}: line 4: skipped: signal type 'url' is not a media hash "
        "ccnode carries",
        f"ccnode: warning: {f}: line 5: skipped: MD5 {EMPTY_MD5} is the digest of an empty "
        "file: it would match unrelated content, so it is refused",
    ]
    assert out == (
        f"imported 3 new entries (seq 0..2); 0 already published by {P1}; 0 repeated in the "
        "file; 2 skipped; 0 bad rows\n"
    )
    out, _ = _run(capsys, "export", "-", "--format", "jsonl", "--dir", node_dir, "--to",
                  (Path(node_dir) / "node.addr").read_text().strip())  # fmt: skip
    got = {(d["algorithm"], d["hash"]): d["labels"] for d in map(json.loads, out.splitlines())}
    assert got == {
        ("PDQ", pdq): ["behaviour:glorification", "type:image"],
        ("VIDEO_MD5", MD5): ["behaviour:glorification", "type:video"],  # not type:image
        ("SHA256", SHA): ["behaviour:glorification", "type:video"],  # video_sha256
    }
    # A real failure among them: exit 8, the rest still imported, and --json says so.
    f.write_text(f"pdq {pdq}\npdq nothex\n")
    out, _ = _run(capsys, "import", str(f), "--format", "pytx", "--dir", node_dir, "--json",
                  code=8)  # fmt: skip
    doc = json.loads(out)
    assert (doc["imported"], doc["already"], doc["exit"]) == (0, 1, 8)
    assert doc["bad"] == [
        {"line": 2, "error": "PDQ hash is not hex: expected 32 bytes (64 hex digits), got 'nothex'"}
    ]


def test_pytx_export_says_what_the_format_cannot_carry(
    node_dir: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file_api = pytest.importorskip("threatexchange.exchanges.impl.file_api")
    from threatexchange.signal_type.md5 import VideoMD5Signal
    from threatexchange.signal_type.pdq.signal import PdqSignal
    from threatexchange.signal_type.sha256 import VideoSHA256Signal

    pdq = _vectors()["aaa-orig.jpg"]["pdq"]
    d = node_dir
    _submit(capsys, d, pdq, "--label", "type:image", "--incident", "christchurch-2019-03-15",
            algo="pdq")  # fmt: skip
    _submit(capsys, d, SHA, "--label", "type:video", algo="sha256")
    _submit(capsys, d, MD5)  # no type label: plain md5
    out_file = tmp_path / "export.txt"
    _, err = _run(capsys, "export", str(out_file), "--format", "pytx", "--dir", d, "--to",
                  (Path(d) / "node.addr").read_text().strip())  # fmt: skip
    assert sorted(out_file.read_text().splitlines()) == sorted(
        [f"pdq {pdq}", f"video_sha256 {SHA}", f"md5 {MD5}"]
    )
    assert [x for x in err.splitlines() if not x.startswith("export: ")] == [
        f"exported 3 pytx rows to {out_file}",
        "note: 2 rows have labels or an incident, which a pytx signal file cannot carry (pytx "
        "lists them as INVESTIGATION_SEED without tags); the exchange extension "
        "node.interop.pytx, csv and jsonl carry them",
        "note: 1 md5/sha256 rows of content not labelled as video: python-threatexchange skips "
        "these types (it has video_md5 and video_sha256); ccnode import reads them",
        "note: exactly one PDQ hash: python-threatexchange's PDQ index matches nothing when it "
        "holds a single hash (facebook/ThreatExchange#1318); it works from two",
    ]
    _, err = _run(capsys, "export", str(out_file), "--format", "pytx", "--dir", d, "--to",
                  (Path(d) / "node.addr").read_text().strip(), "--json")  # fmt: skip
    (summary,) = [json.loads(x) for x in err.splitlines() if x.startswith("{")]
    assert summary == {
        "format": "pytx", "out": str(out_file), "rows": 3, "retracted_left_out": 0,
        "repeated_merged": 0, "no_pytx_form": 0, "unread_by_pytx": 1,
        "labels_not_carried": 2, "pytx_pdq": 1,
    }  # fmt: skip
    # What python-threatexchange itself reads from the file.
    api = file_api.LocalFileSignalExchangeAPI(
        file_api.FileCollaborationConfig(name="x", filename=str(out_file))
    )
    types = [PdqSignal, VideoMD5Signal, VideoSHA256Signal]
    (delta,) = list(api.fetch_iter(types, None))
    read = api.naive_convert_to_signal_type(types, api.collab, delta.updates)
    assert {t.get_name(): sorted(v) for t, v in read.items() if v} == {
        "pdq": [pdq],
        "video_sha256": [SHA],
    }
