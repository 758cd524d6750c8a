"""Short versions of the federation benchmarks, so CI exercises them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]
BENCH = Path(__file__).resolve().parents[2] / "scripts" / "bench"


def _run(*argv: str) -> str:
    proc = subprocess.run(
        [sys.executable, *argv], capture_output=True, text=True, timeout=240, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_sustained_load_short_run_delivers_everything() -> None:
    out = _run(str(BENCH / "load.py"), "--nodes", "4", "--rate", "50", "--seconds", "3")
    assert "all nodes hold all 150 entries: yes" in out
    assert "propagation ms, sampled" in out
    # Each of the 3 other nodes received each entry exactly once, net of duplicates.
    assert "450 entries relayed (floor: 450," in out
    assert "final node heap (RssAnon) MiB:" in out
    assert "ms per entry across the mesh" in out


def test_propagation_short_run_misses_nothing() -> None:
    out = _run(
        str(BENCH / "propagation.py"),
        "--sizes",
        "3",
        "--topologies",
        "ring",
        "--submissions",
        "20",
        "--rate",
        "50",
    )
    assert "missing 0" in out


def test_video_bench_short_run_agrees_with_faiss() -> None:
    out = _run(
        str(BENCH / "video.py"),
        "--videos",
        "40",
        "--frames",
        "100",
        "--uploads",
        "2",
        "--faiss-uploads",
        "2",
        "--query-fps",
        "1",
    )
    assert out.count("same percentages; 6 videos hit, 6 matched") == 1, out
    assert "same percentages; 0 videos hit, 0 matched" in out
    assert "speed-up over faiss flat" in out


def test_audio_hash_short_run_reports_speed_beside_decoding() -> None:
    out = _run(
        str(BENCH / "audio_hash.py"),
        "--tracks",
        "1",
        "--seconds",
        "5",
        "--repeat",
        "1",
        "--no-vectors",
    )
    assert "track0.m4a" in out
    assert "fingerprinting: " in out and "decode-only baseline" in out


def test_audio_index_bench_short_run_agrees_with_brute_force() -> None:
    out = _run(
        str(BENCH / "audio_index.py"),
        "--tracks",
        "2000",
        "--queries",
        "40",
        "--brute-queries",
        "4",
        "--brute-tracks",
        "4",
    )
    assert "bank: 2,000 tracks x 1,450 items" in out
    assert "3-minute queries (CPU)" in out
    assert "negative queries with a match: 0/10" in out
    assert "brute force: 4/4 queries give the index's matches exactly" in out


def test_audio_false_matches_short_run_reports_every_part() -> None:
    if not (BENCH.parents[1].parent / "shared" / "vectors" / "chromaprint" / "a.m4a").exists():
        pytest.skip("Chromaprint vectors not found")
    out = _run(str(BENCH / "audio_false_matches.py"), "--tracks", "10", "--no-videos")
    assert "corpus: 10 tracks (seed 0)" in out
    assert "  false matches: 0\n" in out
    assert "windows passing all three rules (a brute-force match): 0" in out
    assert "  a-room-echo.m4a: matches ['vector:a']" in out
    assert "  unrelated-b.m4a: no match" in out


def test_replicas_bench_short_run_measures_every_configuration() -> None:
    out = _run(
        str(BENCH / "replicas.py"),
        *("--entries", "2000", "--seconds", "1", "--callers", "2", "--fresh", "5"),
    )
    assert "replica-0: caught up 2,000 entries in" in out
    assert "replica-1: caught up 2,000 entries in" in out
    assert "member node alone (baseline): " in out
    assert "1 replica: " in out
    assert "2 replicas, round_robin: " in out
    for where in ("member node (baseline)", "replica-0", "replica-1"):
        assert f"freshness, Submit answered to matchable on {where}: p50 " in out
        assert "(n=5)" in out
