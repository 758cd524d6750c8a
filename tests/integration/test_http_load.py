"""The HTTP API under load (issue 18, "a load probe showing other callers
unaffected by a large upload"): a real node process keeps answering another
caller's raw_lookup and status while one client uploads files as large as
the cap allows and a video, and another sends the largest Match, over HTTP.

The figures come from scripts/bench/http_api.py (docs/benchmarks.md has a
full run). This asserts the property, not a speed: were uploads hashed or
large answers rendered on the event loop, the other caller's requests
would wait for them whole. The bounds are generous for a shared 2-core
machine, as in test_match_load.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts" / "bench"))
from _common import percentile
from http_api import VIDEO_DIR, run

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_other_callers_are_answered_while_large_uploads_and_matches_run(tmp_path: Path) -> None:
    if not (VIDEO_DIR / "a.mp4").exists():
        pytest.skip(f"test vectors not found at {VIDEO_DIR}")
    fig = run(tmp_path, hashes=20_000, seconds=6.0, interval_ms=20.0, mib=32, video_seconds=30)
    print(fig.report())
    assert len(fig.uploads) >= 1 and len(fig.videos) >= 1, "the uploads must complete"
    assert len(fig.big) >= 3, "the large Matches must complete"
    assert len(fig.status) >= 20
    slowest = max(percentile(fig.uploads, 50), percentile(fig.big, 50))
    for name, values in (("raw_lookup", fig.lookup), ("status", fig.status)):
        p95, p99 = percentile(values, 95), percentile(values, 99)
        assert p95 < 250, f"{name} p95 {p95:.0f} ms while uploads and Matches ran"
        assert p99 < 1000, f"{name} p99 {p99:.0f} ms while uploads and Matches ran"
        assert p95 < slowest / 2, f"{name} p95 {p95:.0f} ms vs {slowest:.0f} ms per request"
