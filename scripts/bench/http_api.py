"""The HTTP API under load: do other callers still get answers while one
client uploads the largest files allowed and another sends the largest
Match, over HTTP?

    python scripts/bench/http_api.py [--hashes 100000] [--seconds 20] [--interval-ms 20]
                                     [--upload-mib 63] [--video-seconds 60]

(Named http_api.py, not http.py: this directory goes first on sys.path
when a script here runs, and a file named http.py would shadow the
standard library's ``http`` package, which aiohttp imports.)

One real node process (mutual TLS on gRPC, the HTTP API on loopback with
an API key) with ``--hashes`` random PDQ hashes stored and video a of
../shared/vectors banked. Loader U uploads, back to back, the largest
file allowed (``--upload-mib`` of random bytes: streamed, capped, digested in
the worker and matched by MD5 and SHA-256) and then a ``--video-seconds`` video
(synthetic footage, 320x180: every frame decoded and hashed in the worker,
its frames matched in windows); loader M sends the
largest Match the budget allows (POST /v1/match: 10,000 PDQ queries at
distance 31) back to back. Meanwhile prober B sends GET /m/raw_lookup
(one PDQ hash) and GET /v1/status every ``--interval-ms`` and records
each answer's latency. The baseline is B's same probes with U and M idle,
measured first in the same run. Figures: p50/p95/p99/max in ms, and the
loaders' request times; B's p99 against M's median request says whether
the loop stalled (a stalled loop shows as B's p99 reaching it).

``tests/integration/test_http_load.py`` runs a short version and asserts
the property; docs/benchmarks.md records a run.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import aiohttp
from _common import ROOT, percentile, store_adds, summary
from match_load import fill

from node.config import with_overrides
from node.core.trust import MemberKind
from node.errors import PeerError
from node.httpapi.keys import add_key
from node.mesh import Mesh, MeshNode

A = "platform-a.example"
VIDEO_DIR = ROOT.parent / "shared" / "vectors" / "vpdq"


@dataclass
class Figures:
    baseline_lookup: list[float] = field(default_factory=list)
    baseline_status: list[float] = field(default_factory=list)
    lookup: list[float] = field(default_factory=list)
    status: list[float] = field(default_factory=list)
    uploads: list[float] = field(default_factory=list)  # U's large-file requests, ms
    videos: list[float] = field(default_factory=list)  # U's video requests, ms
    big: list[float] = field(default_factory=list)  # M's largest Match, ms
    upload_mib: int = 0

    def report(self) -> str:
        return "\n".join(
            [
                f"B raw_lookup ms, idle:       {summary(self.baseline_lookup)}",
                f"B status ms, idle:           {summary(self.baseline_status)}",
                f"B raw_lookup ms, loaded:     {summary(self.lookup)}",
                f"B status ms, loaded:         {summary(self.status)}",
                f"U {self.upload_mib} MiB upload ms:     {summary(self.uploads)}",
                f"U video hash+match ms:       {summary(self.videos)}",
                f"M 10,000-query Match ms:     {summary(self.big)}",
                f"B p99 / M's median request:  {self.ratio():.3f}",
            ]
        )

    def ratio(self) -> float:
        worst = max(percentile(self.lookup, 99), percentile(self.status, 99))
        return worst / percentile(self.big or self.uploads, 50)


def bank_video(node: MeshNode) -> None:
    """Video a's VPDQ segments, signed by the node's member, into its store."""
    from node.cli.video_cmds import bank_segments

    store_adds(node, (("VPDQ", s.encode()) for s in bank_segments(VIDEO_DIR / "a.mp4")))


async def _timed(session: aiohttp.ClientSession, method: str, url: str, **kw: object) -> float:
    t = time.perf_counter()
    async with session.request(method, url, **kw) as r:  # type: ignore[arg-type]
        await r.read()
        if r.status >= 500:
            raise SystemExit(f"http_api: {method} {url} answered {r.status}")
    return (time.perf_counter() - t) * 1000


async def _probe(
    b: aiohttp.ClientSession,
    base: str,
    until: float,
    interval: float,
    lookup: list[float],
    status: list[float],
) -> None:
    while time.monotonic() < until:
        pdq = os.urandom(32).hex()
        lookup.append(await _timed(b, "GET", f"{base}/m/raw_lookup?signal_type=pdq&signal={pdq}"))
        status.append(await _timed(b, "GET", f"{base}/v1/status"))
        await asyncio.sleep(interval)


async def _uploads(
    u: aiohttp.ClientSession, base: str, until: float, mib: int, video: bytes, fig: Figures
) -> None:
    blob = os.urandom(mib << 20)
    while time.monotonic() < until:
        form = aiohttp.FormData()
        form.add_field("file", io.BytesIO(blob), filename="large.bin")
        fig.uploads.append(await _timed(u, "POST", f"{base}/v1/match/file", data=form))
        form = aiohttp.FormData()
        form.add_field("video", io.BytesIO(video), filename="upload.mp4")
        fig.videos.append(await _timed(u, "POST", f"{base}/v1/match/file", data=form))


async def _big_match(m: aiohttp.ClientSession, base: str, until: float, big: list[float]) -> None:
    # Bodies made before the clock starts: building 10,000 queries' JSON on
    # this process's loop would delay B's probes here, not at the node.
    bodies = [
        json.dumps(
            {"queries": [{"algorithm": "pdq", "hash": os.urandom(32).hex()} for _ in range(10_000)]}
        ).encode()
        for _ in range(4)
    ]
    headers = {"Content-Type": "application/json"}
    n = 0
    while time.monotonic() < until:
        body = bodies[n % len(bodies)]
        n += 1
        big.append(await _timed(m, "POST", f"{base}/v1/match", data=body, headers=headers))


async def measure(
    base: str,
    token: str,
    seconds: float,
    interval_ms: float,
    mib: int,
    video: bytes,
    which: tuple[str, ...] = ("upload", "match"),
) -> Figures:
    fig = Figures(upload_mib=mib)
    interval = interval_ms / 1000
    headers = {"Authorization": f"Bearer {token}"}
    timeout = aiohttp.ClientTimeout(total=300)
    async with (
        aiohttp.ClientSession(headers=headers, timeout=timeout) as b,
        aiohttp.ClientSession(headers=headers, timeout=timeout) as u,
        aiohttp.ClientSession(headers=headers, timeout=timeout) as m,
    ):
        deadline = time.monotonic() + 120
        while True:  # ready: the indexes are built after start-up
            async with b.get(f"{base}/healthz") as r:
                if r.status == 200:
                    break
            if time.monotonic() > deadline:
                raise SystemExit("http_api: the node did not become ready")
            await asyncio.sleep(0.1)
        await _probe(
            b, base, time.monotonic() + min(5.0, seconds / 2), interval,
            fig.baseline_lookup, fig.baseline_status,
        )  # fmt: skip
        until = time.monotonic() + seconds
        loaders = []
        if "upload" in which:
            loaders.append(asyncio.create_task(_uploads(u, base, until, mib, video, fig)))
        if "match" in which:
            loaders.append(asyncio.create_task(_big_match(m, base, until, fig.big)))
        await asyncio.sleep(0.2)  # the loaders' first requests are under way
        await _probe(b, base, until, interval, fig.lookup, fig.status)
        await asyncio.gather(*loaders)
    return fig


def long_video(path: Path, seconds: float) -> Path:
    """Synthetic footage (tests/videos.py), 320x180 at 25 fps: the upload
    whose hashing (every frame decoded, downscaled and PDQ-hashed with its
    variants) is the long job."""
    from tests.videos import synthetic, write

    frames = synthetic(11, width=320, height=180, seconds=seconds, texture=20.0)
    return write(path, frames)


def run(
    root: Path,
    hashes: int,
    seconds: float,
    interval_ms: float,
    mib: int,
    video_seconds: float = 60.0,
    which: tuple[str, ...] = ("upload", "match"),
) -> Figures:
    video = long_video(root / "upload.mp4", video_seconds)
    with Mesh.create(root / "mesh", [(A, MemberKind.PLATFORM)]) as mesh:
        (node,) = mesh.nodes
        node.config = with_overrides(node.config, http_listen="127.0.0.1:0")
        node.config.save()
        _, token = add_key(node.config.dir, ["match", "status"])
        fill(node, hashes)
        bank_video(node)
        mesh.start(120)
        try:
            base = "http://" + (node.config.dir / "http.addr").read_text().strip()
            data = video.read_bytes()
            return asyncio.run(measure(base, token, seconds, interval_ms, mib, data, which))
        except PeerError as exc:
            raise SystemExit(f"http_api: {exc}; see {node.config.dir / 'node.log'}") from None


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--hashes", type=int, default=100_000, help="PDQ hashes stored")
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--interval-ms", type=float, default=20.0)
    p.add_argument("--upload-mib", type=int, default=63, help="U's large upload (cap: 64)")
    p.add_argument("--video-seconds", type=float, default=60.0, help="U's video upload")
    p.add_argument(
        "--loaders", default="upload,match", help="which loaders run: upload, match or both"
    )
    args = p.parse_args()
    which = tuple(args.loaders.split(","))
    if not (VIDEO_DIR / "a.mp4").exists():
        raise SystemExit(f"http_api: test vectors not found at {VIDEO_DIR}")
    print(
        f"http_api: {args.hashes:,} PDQ hashes and video a stored; U uploads {args.upload_mib} "
        f"MiB and a video, M sends 10,000-query Matches, back to back for {args.seconds:.0f} s"
    )
    with tempfile.TemporaryDirectory() as tmp:
        fig = run(
            Path(tmp),
            args.hashes,
            args.seconds,
            args.interval_ms,
            args.upload_mib,
            args.video_seconds,
            which,
        )
    print(fig.report())
    return 0


if __name__ == "__main__":
    sys.exit(main())
