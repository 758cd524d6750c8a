"""`ccnode import` and `ccnode export` in process against a real node."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from node.cli import main
from node.config import load_config
from node.server import Node
from tests.helpers import LoopThread

pytestmark = pytest.mark.integration

PDQ = ["a5" * 32, "5a" * 32, "f0" * 32]
MD5 = ["01" * 16, "02" * 16]


def _node_dir(tmp_path: Path) -> Path:
    d = tmp_path / "gov"
    argv = [
        "init",
        str(d),
        "--id",
        "gov.example/ct",
        "--kind",
        "government",
        "--jurisdiction",
        "NZ",
        "--genesis",
    ]
    assert main(argv) == 0
    return d


def test_import_reports_bad_rows_is_idempotent_and_export_round_trips(
    tmp_path: Path, loop: LoopThread, capsys: pytest.CaptureFixture[str]
) -> None:
    d = _node_dir(tmp_path)
    node = Node(load_config(d))
    loop.run(node.start())
    try:
        pytx = tmp_path / "hashes.txt"
        pytx.write_text(f"pdq {PDQ[0]}\npdq {PDQ[1]}\npdq nothex\nvideo_md5 {MD5[0]}\nmystery 00\n")
        capsys.readouterr()
        argv = ["import", str(pytx), "--format", "pytx", "--dir", str(d), "--label", "type:image"]
        assert main(argv) == 8  # bad rows: the distinct exit code ...
        out, err = capsys.readouterr()
        assert err.splitlines()[-1].startswith("import: 3/3 entries (100%)")  # progress
        assert err.splitlines()[:-1] == [
            f"ccnode: {pytx}: line 3: PDQ hash is not hex: expected 32 bytes (64 hex digits), "
            "got 'nothex'",
            f"ccnode: {pytx}: line 5: unknown signal type 'mystery': expected one of md5, pdq, "
            "sha256, tmk, video_md5, video_sha256, vpdq",
        ]
        # ... but the good rows are signed and stored.
        assert out.strip() == (
            "imported 3 new entries (seq 0..2); 0 already published by gov.example/ct; "
            "0 repeated in the file; 0 skipped; 2 bad rows"
        )
        assert node.store.head("gov.example/ct").next_seq == 3

        # Re-running the same file adds nothing.
        assert main(argv) == 8
        assert capsys.readouterr().out.startswith(
            "imported 0 new entries; 3 already published by gov.example/ct"
        )
        assert node.store.head("gov.example/ct").next_seq == 3

        # CSV with per-row labels; one known hash, one repeated row, one new.
        rows = tmp_path / "rows.csv"
        rows.write_text(
            "algorithm,hash,labels,incident\n"
            f"pdq,{PDQ[0]},,\n"
            f"PDQ,{PDQ[2]},behaviour:glorification,christchurch-2019-03-15\n"
            f"pdq,{PDQ[2]},,\n"
        )
        assert main(["import", str(rows), "--format", "csv", "--dir", str(d)]) == 0
        assert capsys.readouterr().out.strip() == (
            "imported 1 new entries (seq 3..3); 1 already published by gov.example/ct; "
            "1 repeated in the file; 0 skipped; 0 bad rows"
        )

        # Retract one; a re-run does not undo the retraction.
        # Over gRPC (mutual TLS as the directory's member).
        assert (
            main(["export", "-", "--format", "jsonl", "--to", node.address, "--dir", str(d)]) == 0
        )
        docs = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
        assert len(docs) == 4
        first = next(x for x in docs if x["hash"] == PDQ[1])
        assert first["labels"] == ["type:image"]
        assert main(["submit", str(d), "--retract", first["entry_id"]]) == 0
        capsys.readouterr()
        assert main(argv) == 8
        assert "1 retracted earlier (not re-added" in capsys.readouterr().out

        # Export: pytx has the active hashes, one per line, in pytx's names.
        out_file = tmp_path / "export.txt"
        argv_out = ["export", str(out_file), "--format", "pytx", "--to", node.address]
        assert main([*argv_out, "--dir", str(d)]) == 0
        assert sorted(out_file.read_text().splitlines()) == sorted(
            [f"pdq {PDQ[0]}", f"pdq {PDQ[2]}", f"video_md5 {MD5[0]}"]
        )
        assert "exported 3 pytx rows" in capsys.readouterr().err
        csv_file = tmp_path / "export.csv"
        argv_csv = [
            "export",
            str(csv_file),
            "--format",
            "csv",
            "--to",
            node.address,
            "--dir",
            str(d),
        ]
        assert main([*argv_csv, "--include-retracted"]) == 0
        exported = list(csv.DictReader(csv_file.read_text().splitlines()))
        assert sorted(r["retracted"] for r in exported) == ["false", "false", "false", "true"]
        glor = next(r for r in exported if r["hash"] == PDQ[2])
        assert glor["labels"] == "behaviour:glorification;type:image"  # type from PDQ
        assert glor["incident"] == "christchurch-2019-03-15"
    finally:
        loop.run(node.stop())

    # With the node stopped, export reads the store directly, with member details.
    capsys.readouterr()
    assert main(["export", "-", "--format", "jsonl", "--dir", str(d)]) == 0
    docs = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert len(docs) == 3
    assert {x["origin_kind"] for x in docs} == {"government"}
    assert all(x["arrival_ms"] > 0 for x in docs)

    # An export imports into another member's node (JSONL, with a bad line).
    other = tmp_path / "ngo"
    assert main(["init", str(other), "--id", "ngo.example", "--kind", "ngo", "--genesis"]) == 0
    jsonl = tmp_path / "from-gov.jsonl"
    assert main(["export", str(jsonl), "--format", "jsonl", "--dir", str(d)]) == 0
    with jsonl.open("a") as f:
        f.write("{broken\n")
    node = Node(load_config(other))
    loop.run(node.start())
    try:
        capsys.readouterr()
        assert main(["import", str(jsonl), "--format", "jsonl", "--dir", str(other)]) == 8
        out, err = capsys.readouterr()
        assert "line 4: not JSON" in err
        assert out.startswith("imported 3 new entries (seq 0..2); 0 already published by ngo")
    finally:
        loop.run(node.stop())


def test_import_needs_a_signer(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    f = tmp_path / "x.txt"
    f.write_text("")
    assert main(["import", str(f), "--format", "pytx", "--to", "127.0.0.1:1"]) == 2
    assert (
        "give --dir DIR, or --key KEY --origin ID --to ADDR --insecure" in capsys.readouterr().err
    )


def test_export_over_grpc_needs_an_identity_or_insecure(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["export", "-", "--format", "csv", "--to", "127.0.0.1:1"]) == 2
    assert (
        "--to without --dir has no TLS identity: give the member directory whose key to "
        "connect with, or --insecure for a plaintext dev node"
    ) in capsys.readouterr().err
