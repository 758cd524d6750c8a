"""The HTTP API (docs/http.md) against a real node: aiohttp's client on
127.0.0.1, the node's own LMDB, real media from ../shared/vectors hashed
in the node's worker process.

- an HMA-style session: raw_lookup with and without include_distance,
  lookup by hash, lookup with an uploaded image and video, index status,
  hashing an upload and an allowlisted url;
- the native routes: provenance and recommended action, video and audio;
- the bad-input table: each refusal's status, code and message, exactly;
- API keys and their scopes, mutual TLS, the loopback rule, replicas not
  caught up (503), and the OpenAPI document against the served routes.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import ssl
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from node.config import NodeConfig
from node.core import chromaprint
from node.core.trust import MemberKind, MembersFile
from node.errors import ValidationError
from node.httpapi.keys import add_key
from node.httpapi.server import ROUTES, HttpApi
from node.match.limits import MatchLimits, match_cost
from node.media.image import hash_file
from node.server import Node
from tests.helpers import (
    LoopThread,
    Origin,
    aeventually,
    eventually,
    http_server,
    member,
    run_cli,
    tls_for,
    write_node_dir,
)

pytestmark = pytest.mark.integration

GOV = "gov.example/ct"
VECTORS = Path(__file__).resolve().parents[2].parent / "shared" / "vectors"
PDQ_DIR, VPDQ_DIR, AUDIO_DIR = VECTORS / "pdq", VECTORS / "vpdq", VECTORS / "chromaprint"


def vector(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"test vectors not found at {path}")
    return path


def expected_pdq(name: str) -> str:
    doc = json.loads(vector(PDQ_DIR / "expected.json").read_text())
    return str(doc[name]["pdq"])


def start_node(
    tmp_path: Path, loop: LoopThread, *, others: tuple[Any, ...] = (), **options: Any
) -> Node:
    cfg = write_node_dir(
        tmp_path,
        GOV,
        MembersFile.of([member(GOV, MemberKind.GOVERNMENT), *others]),
        MemberKind.GOVERNMENT,
        http_listen="127.0.0.1:0",
        **options,
    )
    node = Node(cfg, anti_entropy_s=0)
    loop.run(node.start())
    return node


@pytest.fixture
def node(tmp_path: Path, loop: LoopThread) -> Iterator[Node]:
    n = start_node(tmp_path, loop)
    yield n
    loop.run(n.stop())


def bank_media(node: Node, loop: LoopThread) -> dict[str, list[bytes]]:
    """The bridge photo, video a and soundtrack a, banked by GOV."""
    from node.cli.video_cmds import bank_segments

    gov = Origin(GOV)
    photo = hash_file(vector(PDQ_DIR / "aaa-orig.jpg")).pdq
    assert photo is not None
    entries = {"photo": [gov.next(algorithm="PDQ", hash=photo.value, labels=("type:image",))]}
    segments = bank_segments(vector(VPDQ_DIR / "a.mp4"))
    entries["video"] = [gov.next(algorithm="VPDQ", hash=s.encode()) for s in segments]
    from node.media.audio import fingerprint_file

    values = fingerprint_file(vector(AUDIO_DIR / "a.m4a")).values
    split = chromaprint.split(list(values), bytes(range(16)), max_items=50)
    entries["audio"] = [gov.next(algorithm="CHROMAPRINT", hash=s.encode()) for s in split]
    for batch in entries.values():
        loop.run(node.app.submit_async(batch))
    return {k: [e.entry_id for e in v] for k, v in entries.items()}


def form(path: Path, field: str) -> aiohttp.FormData:
    data = aiohttp.FormData()
    data.add_field(field, io.BytesIO(path.read_bytes()), filename=path.name)
    return data


async def call(
    method: str, url: str, *, headers: dict[str, str] | None = None, **kwargs: Any
) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession(headers=headers) as session,
        session.request(method, url, **kwargs) as r,
    ):
        return r.status, await r.json(content_type=None)


def test_an_hma_client_session_raw_lookup_lookup_uploads_status_and_hash(
    node: Node, loop: LoopThread
) -> None:
    banked = bank_media(node, loop)
    photo_id = banked["photo"][0].hex()
    base = f"http://{node.http_address}"
    edited = expected_pdq("blur-a-lot.jpg")  # 4 bits from the banked photo

    async def session() -> dict[str, tuple[int, Any]]:
        out: dict[str, tuple[int, Any]] = {}
        q = f"signal_type=pdq&signal={edited}"
        out["raw"] = await call("GET", f"{base}/m/raw_lookup?{q}")
        out["raw_d"] = await call("GET", f"{base}/m/raw_lookup?{q}&include_distance=true")
        out["raw_banks"] = await call("GET", f"{base}/m/raw_lookup?{q}&banks=someone.else")
        out["lookup"] = await call("GET", f"{base}/m/lookup?{q}")
        out["miss"] = await call(
            "GET", f"{base}/m/raw_lookup?signal_type=pdq&signal={expected_pdq('q0746.jpg')}"
        )
        photo = vector(PDQ_DIR / "sharpen-a-lot.jpg")
        out["photo"] = await call("POST", f"{base}/m/lookup", data=form(photo, "photo"))
        video = vector(VPDQ_DIR / "a-reencoded-crf38.mp4")
        out["video"] = await call("POST", f"{base}/m/lookup", data=form(video, "video"))
        out["status"] = await call("GET", f"{base}/m/index/status")
        out["status_pdq"] = await call("GET", f"{base}/m/index/status?signal_type=pdq")
        out["hash"] = await call("POST", f"{base}/h/hash", data=form(photo, "photo"))
        out["hash_pdq"] = await call("POST", f"{base}/h/hash?types=pdq", data=form(photo, "photo"))
        return out

    got = loop.run(session(), timeout=120)
    assert got["raw"] == (200, {"matches": [photo_id]})
    assert got["raw_d"] == (200, {"matches": [{"bank_content_id": photo_id, "distance": "4"}]})
    assert got["raw_banks"] == (200, {"matches": []})
    assert got["lookup"] == (200, {GOV: [{"bank_content_id": photo_id, "distance": "4"}]})
    assert got["miss"] == (200, {"matches": []})
    status, doc = got["photo"]
    assert status == 200 and set(doc) == {"pdq", "md5", "sha256"}
    (hit,) = doc["pdq"][GOV]
    assert hit["bank_content_id"] == photo_id and int(hit["distance"]) <= 16
    assert doc["md5"] == {} and doc["sha256"] == {}
    status, doc = got["video"]
    assert status == 200 and doc["video_md5"] == {}
    (vhit,) = doc["vpdq"][GOV]
    assert vhit["bank_content_id"] == banked["video"][0].hex()
    query_pct, banked_pct = (float(x) for x in vhit["distance"].split(","))
    assert query_pct > 50 and banked_pct > 50
    status, doc = got["status"]
    assert status == 200
    assert doc["pdq"]["present"] is True and doc["pdq"]["size"] == 1
    assert doc["vpdq"]["size"] == 1 and doc["chromaprint"]["size"] == 1
    assert doc["pdq"]["built_to"] > 1_700_000_000
    status, only = got["status_pdq"]  # one signal type; built_to is the time of each answer
    assert status == 200 and set(only) == {"pdq"}
    assert only["pdq"]["present"] is True and only["pdq"]["size"] == 1
    assert only["pdq"]["built_to"] >= doc["pdq"]["built_to"]
    status, doc = got["hash"]
    assert status == 200 and doc["pdq"] == expected_pdq("sharpen-a-lot.jpg")
    assert set(doc) == {"pdq", "md5", "sha256"}
    assert got["hash_pdq"] == (200, {"pdq": expected_pdq("sharpen-a-lot.jpg")})
    # each answer counted by route template and status (docs/operators.md, "Metrics")
    count = node.metrics.registry.get_sample_value
    assert count("ccnode_http_requests_total", {"route": "/m/raw_lookup", "status": "200"}) == 4
    assert count("ccnode_http_requests_total", {"route": "/m/lookup", "status": "200"}) == 3


def test_native_routes_give_provenance_action_and_video_and_audio_results(
    node: Node, loop: LoopThread
) -> None:
    banked = bank_media(node, loop)
    base = f"http://{node.http_address}"
    edited = expected_pdq("blur-a-lot.jpg")

    async def go() -> dict[str, tuple[int, Any]]:
        out = {}
        out["get"] = await call("GET", f"{base}/v1/match?algorithm=pdq&hash={edited}")
        out["post"] = await call(
            "POST",
            f"{base}/v1/match",
            json={
                "queries": [
                    {"algorithm": "PDQ", "hash": edited},
                    {"algorithm": "md5", "hash": "ab" * 16},
                ]
            },
        )
        audio = vector(AUDIO_DIR / "a-room-echo.m4a")
        out["audio"] = await call("POST", f"{base}/v1/match/file", data=form(audio, "file"))
        video = vector(VPDQ_DIR / "a-mirrored.mp4")
        out["video"] = await call("POST", f"{base}/v1/match/file", data=form(video, "video"))
        out["entry"] = await call("GET", f"{base}/v1/entries/{banked['video'][0].hex()[:12]}")
        out["status"] = await call("GET", f"{base}/v1/status")
        out["healthz"] = await call("GET", f"{base}/healthz")
        return out

    got = loop.run(go(), timeout=120)
    status, doc = got["get"]
    assert status == 200
    (answer,) = doc["results"]
    (m,) = answer["matches"]
    assert m["entry_id"] == banked["photo"][0].hex() and m["distance"] == 4
    assert m["origin"] == GOV and m["origin_kind"] == "government" and m["jurisdiction"] == "NZ"
    assert m["labels"] == ["type:image"] and m["recommended_action"]
    assert answer["verdict"]["action"] == m["recommended_action"]
    assert answer["query"] == {"PDQ": edited}
    status, doc = got["post"]
    assert status == 200 and [len(r["matches"]) for r in doc["results"]] == [1, 0]
    status, doc = got["audio"]
    assert status == 200 and doc["upload"]["kind"] == "audio"
    (a,) = doc["audio"]
    assert a["is_match"] and a["match"]["entry_id"] == banked["audio"][0].hex()
    assert a["match"]["origin"] == GOV and a["match"]["recommended_action"]
    assert doc["fired"] == ["audio"]
    status, doc = got["video"]
    assert status == 200 and doc["upload"]["kind"] == "video" and doc["upload"]["frames_hashed"] > 0
    (v,) = doc["videos"]
    assert v["is_match"] and v["mirrored"] and v["segments"] == [e.hex() for e in banked["video"]]
    assert v["match"]["origin"] == GOV and v["match"]["algorithm"] == "VPDQ"
    assert doc["fired"] == ["visual"]
    status, doc = got["entry"]
    assert status == 200 and doc["entry_id"] == banked["video"][0].hex()
    assert doc["video_segments"] == [e.hex() for e in banked["video"]]
    status, doc = got["status"]
    assert status == 200 and doc["node_id"] == GOV and doc["ready"] is True
    assert doc["replica_of"] is None and doc["indexes"]["pdq"]["size"] == 1
    assert got["healthz"] == (200, {"serving": True})


def test_frames_and_fingerprints_hashed_by_the_caller_match_as_over_grpc(
    node: Node, loop: LoopThread
) -> None:
    """POST /v1/match/video and /v1/match/audio: the platform hashes, the
    content never leaves it (as `ccnode match` does over gRPC)."""
    from node.media.audio import fingerprint_file
    from node.media.video import query_frames

    banked = bank_media(node, loop)
    base = f"http://{node.http_address}"
    _, frames = query_frames(vector(VPDQ_DIR / "a-mirrored.mp4"))
    rows = [
        {"pdq": f.pdq.hex(), "quality": f.quality, "ts_ms": f.ts_ms, "variant": f.variant}
        for f in frames
    ]
    values = list(fingerprint_file(vector(AUDIO_DIR / "a-room-echo.m4a")).values)
    unrelated = list(fingerprint_file(vector(AUDIO_DIR / "unrelated-b.m4a")).values)
    too_many = [rows[0]] * (MatchLimits().max_probes // 272 + 1)  # over the budget at 31

    async def post(url: str, doc: dict[str, Any]) -> tuple[int, Any]:
        body = io.BytesIO(json.dumps(doc).encode())  # streamed: a large body is fine
        return await call("POST", url, data=body, headers={"Content-Type": "application/json"})

    async def go() -> list[tuple[int, Any]]:
        url_v, url_a = f"{base}/v1/match/video", f"{base}/v1/match/audio"
        return [
            await post(url_v, {"frames": rows}),
            await post(url_a, {"fingerprint": values}),
            await post(url_a, {"fingerprint": ",".join(map(str, values))}),
            await post(url_a, {"fingerprint": unrelated}),
            await post(url_v, {"frames": [{"pdq": "zz", "ts_ms": 0}]}),
            await post(url_v, {"frames": rows, "thresholds": {"colour": 1}}),
            await post(url_v, {"frames": too_many}),
            await post(url_a, {"fingerprint": [-1]}),
        ]

    video, audio, audio_text, miss, bad_frame, bad_thresholds, costly, bad_audio = loop.run(
        go(), timeout=60
    )
    status, doc = video
    (v,) = doc["videos"]
    assert status == 200 and v["is_match"] and v["mirrored"]
    assert v["segments"] == [e.hex() for e in banked["video"]]
    assert v["match"]["origin"] == GOV and v["match"]["recommended_action"]
    status, doc = audio
    (a,) = doc["audio"]
    assert status == 200 and a["is_match"] and a["match"]["entry_id"] == banked["audio"][0].hex()
    assert audio_text == audio
    assert miss == (200, {"audio": []})
    assert bad_frame == _err(
        400,
        "INVALID_ARGUMENT",
        'frame 0: expected {"pdq": 64 hex digits, "quality": 0..100, "ts_ms": >= 0, '
        '"variant": 0..3}',
    )
    assert bad_thresholds == _err(
        400,
        "INVALID_ARGUMENT",
        "thresholds: expected an object of max_distance, quality_floor, min_coverage, "
        "min_frames, min_matched_ms, offset_tolerance_ms",
    )
    assert costly[0] == 429 and costly[1]["error"]["code"] == "RESOURCE_EXHAUSTED"
    assert costly[1]["error"]["message"].startswith("Match would probe ")
    assert bad_audio == _err(
        400,
        "INVALID_ARGUMENT",
        'expected {"fingerprint": [unsigned 32-bit integers] or "v1,v2,..."} '
        "(and numbers for min_similarity, min_aligned_s)",
    )


class _Media(BaseHTTPRequestHandler):
    """Serves the bridge photo at /media/photo.jpg; /media/redirect points elsewhere."""

    def do_GET(self) -> None:
        if self.path == "/media/photo.jpg":
            body = (PDQ_DIR / "aaa-orig.jpg").read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif self.path == "/media/redirect":
            self.send_response(302)
            self.send_header("Location", "/private/secret")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_url_fetching_only_under_the_allowlist_and_never_follows_redirects(
    tmp_path: Path, loop: LoopThread
) -> None:
    vector(PDQ_DIR / "aaa-orig.jpg")
    with http_server(_Media) as media:
        node = start_node(tmp_path, loop, http_url_allowlist=(f"{media}/media/",))
        photo = hash_file(PDQ_DIR / "aaa-orig.jpg").pdq
        assert photo is not None
        entry = Origin(GOV).next(algorithm="PDQ", hash=photo.value)
        loop.run(node.app.submit_async([entry]))
        base = f"http://{node.http_address}"
        try:

            async def go() -> list[tuple[int, Any]]:
                return [
                    await call("GET", f"{base}/h/hash", params={"url": f"{media}/media/photo.jpg"}),
                    await call(
                        "GET", f"{base}/m/lookup", params={"url": f"{media}/media/photo.jpg"}
                    ),
                    await call(
                        "GET",
                        f"{base}/m/lookup",
                        params={"url": f"{media}/media/photo.jpg", "signal_type": "pdq"},
                    ),
                    await call("GET", f"{base}/h/hash", params={"url": f"{media}/private/x"}),
                    await call(
                        "GET", f"{base}/h/hash", params={"url": f"{media}/media/../private/x"}
                    ),
                    await call("GET", f"{base}/h/hash", params={"url": f"{media}/media/redirect"}),
                    await call(
                        "GET", f"{base}/h/hash", params={"url": "http://169.254.169.254/media/"}
                    ),
                ]

            ok, lookup, lookup_pdq, outside, dotdot, redirect, metadata = loop.run(go())
        finally:
            loop.run(node.stop())
    body = (PDQ_DIR / "aaa-orig.jpg").read_bytes()
    digests = {"md5": hashlib.md5(body).hexdigest(), "sha256": hashlib.sha256(body).hexdigest()}
    assert ok == (200, {"pdq": expected_pdq("aaa-orig.jpg"), **digests})
    hit = {"bank_content_id": entry.entry_id.hex(), "distance": "0"}
    assert lookup == (200, {"pdq": {GOV: [hit]}, "md5": {}, "sha256": {}})
    assert lookup_pdq == (200, {GOV: [hit]})  # HMA: a signal type drops the outer key
    for got, url in (
        (outside, f"{media}/private/x"),
        (dotdot, f"{media}/media/../private/x"),
        (metadata, "http://169.254.169.254/media/"),
    ):
        message = f"url {url!r} is not under a prefix of this node's http_url_allowlist"
        assert got == (
            403,
            {"error": {"code": "PERMISSION_DENIED", "message": message}, "message": message},
        )
    message = "url answered HTTP 302: expected 200 (redirects are not followed)"
    assert redirect == (
        400,
        {"error": {"code": "INVALID_ARGUMENT", "message": message}, "message": message},
    )


def png_header(width: int, height: int) -> bytes:
    """A PNG declaring this size, with one row of pixel data."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(bytes(width + 1))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _err(status: int, code: str, message: str) -> tuple[int, dict[str, Any]]:
    return status, {"error": {"code": code, "message": message}, "message": message}


def test_the_bad_input_table(tmp_path: Path, loop: LoopThread) -> None:
    """Every refusal: its HTTP status, stable code and exact message; the
    node answers the next request as before."""
    node = start_node(tmp_path, loop, http_max_upload_mib=1)
    d = node.config.dir
    match_key, match_token = add_key(d, ["match"])
    _, hash_token = add_key(d, ["hash"])
    base = f"http://{node.http_address}"
    bearer = {"Authorization": f"Bearer {match_token}"}
    photo = vector(PDQ_DIR / "aaa-orig.jpg")
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(1536 * 1024))
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg" * 10)
    limits = MatchLimits()
    n = next(n for n in range(1, limits.max_queries + 1) if match_cost(n, 48) > limits.max_probes)
    costly = {
        "queries": [{"algorithm": "pdq", "hash": f"{i:064x}"} for i in range(n)],
        "max_distance": 48,
    }
    pdq = expected_pdq("aaa-orig.jpg")
    two = aiohttp.FormData()
    two.add_field("photo", photo.read_bytes(), filename="a.jpg")
    two.add_field("photo", photo.read_bytes(), filename="b.jpg")

    async def chunked() -> AsyncIterator[bytes]:
        yield b'--B\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n\r\n'
        for _ in range(24):  # 1.5 MiB
            yield bytes(64 * 1024)
        yield b"\r\n--B--\r\n"

    bomb = tmp_path / "bomb.png"  # declares 60000 x 60000: Pillow's bomb check, not a 500
    bomb.write_bytes(png_header(60000, 60000))
    huge = tmp_path / "huge.png"
    huge.write_bytes(png_header(10000, 10000))
    deep = b"[" * 100_000 + b"]" * 100_000  # valid JSON, deeper than the parser recurses
    zeros = "0" * 64
    bad_multipart = (
        b'--XYZ\r\nContent-Disposition: form-data; name="photo"; filename="a.jpg"\r\n\r\n'
        b"abc"  # never closed
    )
    table: list[tuple[str, str, dict[str, Any], tuple[int, dict[str, Any]]]] = [
        (
            "GET",
            "/m/raw_lookup?signal_type=pdq&signal=zz",
            {},
            _err(
                400,
                "INVALID_ARGUMENT",
                "PDQ hash is not hex: expected 32 bytes (64 hex digits), got 'zz'",
            ),
        ),
        (
            "GET",
            f"/m/raw_lookup?signal_type=pdq&signal={pdq[:60]}",
            {},
            _err(
                400, "INVALID_ARGUMENT", "PDQ hash has 30 bytes: expected 32 bytes (64 hex digits)"
            ),
        ),
        (
            "GET",
            f"/m/raw_lookup?signal_type=tmk&signal={pdq}",
            {},
            _err(
                400,
                "INVALID_ARGUMENT",
                "No such SignalType 'tmk': expected one of pdq, md5, sha256, video_md5",
            ),
        ),
        (
            "GET",
            "/m/lookup?signal_type=pdq",
            {},
            _err(400, "INVALID_ARGUMENT", "parameter 'signal' is required"),
        ),
        (
            "GET",
            f"/m/raw_lookup?signal_type=pdq&signal={pdq}&include_distance=maybe",
            {},
            _err(
                400,
                "INVALID_ARGUMENT",
                "parameter include_distance='maybe': expected true or false",
            ),
        ),
        (
            "POST",
            "/m/lookup",
            {"data": form(big, "file")},
            _err(413, "PAYLOAD_TOO_LARGE", "upload over 1 MiB (http_max_upload_mib): refused"),
        ),
        (
            "POST",
            "/m/lookup",  # chunked: no size declared, refused as it streams past the cap
            {"data": chunked(), "headers": {"Content-Type": "multipart/form-data; boundary=B"}},
            _err(413, "PAYLOAD_TOO_LARGE", "upload over 1 MiB (http_max_upload_mib): refused"),
        ),
        (
            "POST",
            "/m/lookup",
            {"data": b"{}", "headers": {"Content-Type": "application/json"}},
            _err(
                400,
                "INVALID_ARGUMENT",
                "expected a multipart/form-data upload with one file in a field named photo, "
                "video, audio, file; got application/json",
            ),
        ),
        (
            "POST",
            "/m/lookup",
            {
                "data": bad_multipart,
                "headers": {"Content-Type": "multipart/form-data; boundary=XYZ"},
            },
            _err(400, "INVALID_ARGUMENT", "malformed multipart/form-data body"),
        ),
        (
            "POST",
            "/m/lookup",
            {"data": b"abc", "headers": {"Content-Type": "multipart/form-data"}},
            _err(400, "INVALID_ARGUMENT", "malformed multipart/form-data body"),
        ),
        (
            "POST",
            "/m/lookup",
            {"data": form(photo, "image")},
            _err(
                400,
                "INVALID_ARGUMENT",
                "upload field 'image': expected one of photo, video, audio, file "
                "(HMA's convention: the field names the content type)",
            ),
        ),
        (
            "POST",
            "/m/lookup",
            {"data": two},
            _err(
                400, "INVALID_ARGUMENT", "one file per request: the body holds more than one part"
            ),
        ),
        (
            "POST",
            "/m/lookup",
            {"data": form(junk, "photo")},
            _err(400, "INVALID_ARGUMENT", "junk.jpg: cannot decode image: Truncated File Read"),
        ),
        (
            "POST",
            "/v1/match",
            {"json": costly},
            _err(429, "RESOURCE_EXHAUSTED", "PLACEHOLDER"),
        ),
        (
            "POST",
            "/v1/match",
            {"data": b"{not json", "headers": {"Content-Type": "application/json"}},
            _err(400, "INVALID_ARGUMENT", "request body is not valid JSON"),
        ),
        (
            "GET",
            f"/v1/match?algorithm=pdq&hash={zeros}&max_distance=%C2%B2",  # "²": isdigit()
            {},
            _err(400, "INVALID_ARGUMENT", "parameter max_distance='²': expected a whole number"),
        ),
        (
            "POST",
            "/v1/match",
            {"data": deep, "headers": {"Content-Type": "application/json"}},
            _err(400, "INVALID_ARGUMENT", "request body: JSON nested too deeply"),
        ),
        (
            "POST",
            "/v1/match",
            {"data": b"abcde", "headers": {"Content-Encoding": "gzip"}},
            _err(
                400,
                "INVALID_ARGUMENT",
                "request body could not be read: Can not decode content-encoding: gzip",
            ),
        ),
        (
            "POST",
            "/v1/match/audio",
            {"data": deep, "headers": {"Content-Type": "application/json"}},
            _err(400, "INVALID_ARGUMENT", "request body: JSON nested too deeply"),
        ),
        (
            "POST",
            "/v1/match/video",  # 1e400 parses as a float infinity
            {"data": b'{"frames": [{"pdq": "%s", "ts_ms": 1e400}]}' % zeros.encode()},
            _err(
                400,
                "INVALID_ARGUMENT",
                'frame 0: expected {"pdq": 64 hex digits, "quality": 0..100, "ts_ms": >= 0, '
                '"variant": 0..3}',
            ),
        ),
        (
            "POST",
            "/v1/match/video",  # int() would take "5" and true
            {"json": {"frames": [{"pdq": zeros, "ts_ms": "5", "variant": True}]}},
            _err(
                400,
                "INVALID_ARGUMENT",
                'frame 0: expected {"pdq": 64 hex digits, "quality": 0..100, "ts_ms": >= 0, '
                '"variant": 0..3}',
            ),
        ),
        (
            "POST",
            "/v1/match/audio",
            {"data": b'{"fingerprint": [1, 1e400]}'},
            _err(
                400,
                "INVALID_ARGUMENT",
                'expected {"fingerprint": [unsigned 32-bit integers] or "v1,v2,..."} '
                "(and numbers for min_similarity, min_aligned_s)",
            ),
        ),
        (
            "POST",
            "/v1/match/audio",  # int() would truncate 1.5 to 1
            {"json": {"fingerprint": [1, 1.5]}},
            _err(
                400,
                "INVALID_ARGUMENT",
                'expected {"fingerprint": [unsigned 32-bit integers] or "v1,v2,..."} '
                "(and numbers for min_similarity, min_aligned_s)",
            ),
        ),
        (
            "POST",
            "/m/lookup",
            {"data": form(bomb, "file")},
            _err(400, "INVALID_ARGUMENT", "bomb.png: image has more than 89478485 pixels"),
        ),
        (
            "POST",
            "/m/lookup",  # 100 M pixels: over the limit, under where Pillow itself refuses
            {"data": form(huge, "photo")},
            _err(400, "INVALID_ARGUMENT", "huge.png: image has more than 89478485 pixels"),
        ),
        (
            "GET",
            "/v1/entries/" + "ab" * 32,
            {},
            _err(404, "NOT_FOUND", f"no stored entry id begins with {'ab' * 32}"),
        ),
        (
            "GET",
            "/m/nothing",
            {},
            _err(404, "NOT_FOUND", "no such route: GET /m/nothing (GET /openapi.json lists them)"),
        ),
        (
            "DELETE",
            "/m/lookup",
            {},
            _err(405, "METHOD_NOT_ALLOWED", "method not allowed: DELETE /m/lookup"),
        ),
        (
            "GET",
            "/h/hash?url=http://127.0.0.1:9/x",
            {"headers": {"Authorization": f"Bearer {hash_token}"}},
            _err(
                403,
                "PERMISSION_DENIED",
                "url= fetching is off on this node (http_url_allowlist is empty): upload the "
                "file instead (POST)",
            ),
        ),
        (
            "GET",
            f"/m/raw_lookup?signal_type=pdq&signal={pdq}",
            {"headers": {"Authorization": None}},
            _err(
                401,
                "UNAUTHENTICATED",
                "GET /m/raw_lookup needs an API key: send 'Authorization: Bearer <token>' "
                "(`ccnode http-key add`)",
            ),
        ),
        (
            "GET",
            f"/m/raw_lookup?signal_type=pdq&signal={pdq}",
            {"headers": {"Authorization": "Bearer ccnk_not-a-key"}},
            _err(401, "UNAUTHENTICATED", "unknown or revoked API key"),
        ),
        (
            "GET",
            f"/m/raw_lookup?signal_type=pdq&signal={pdq}",
            {"headers": {"Authorization": "Basic Zm9vOmJhcg=="}},
            _err(401, "UNAUTHENTICATED", "Authorization header: expected 'Bearer <token>'"),
        ),
        (
            "POST",
            "/h/hash",
            {"data": form(photo, "photo")},
            _err(
                403,
                "PERMISSION_DENIED",
                f"API key {match_key.id} lacks scope 'hash' for POST /h/hash (it has: match)",
            ),
        ),
        (
            "GET",
            "/m/index/status",
            {},
            _err(
                403,
                "PERMISSION_DENIED",
                f"API key {match_key.id} lacks scope 'status' for GET /m/index/status "
                "(it has: match)",
            ),
        ),
    ]

    async def go() -> list[tuple[int, Any]]:
        out = []
        for method, path, kwargs, _ in table:
            merged = {**bearer, **kwargs.pop("headers", {})}
            headers = {k: v for k, v in merged.items() if v is not None}
            out.append(await call(method, base + path, headers=headers, **kwargs))
        out.append(
            await call("GET", f"{base}/m/raw_lookup?signal_type=pdq&signal={pdq}", headers=bearer)
        )
        return out

    try:
        got = loop.run(go(), timeout=120)
    finally:
        loop.run(node.stop())
    for (method, path, _, want), answer in zip(table, got, strict=False):
        if want[1]["error"]["message"] == "PLACEHOLDER":
            assert answer[0] == 429 and answer[1]["error"]["code"] == "RESOURCE_EXHAUSTED"
            assert answer[1]["error"]["message"].startswith("Match would probe ")
            continue
        assert answer == want, f"{method} {path[:60]}"
    assert got[-1] == (200, {"matches": []})  # and the node still answers
    count = node.metrics.registry.get_sample_value
    assert count("ccnode_http_requests_total", {"route": "unrouted", "status": "404"}) == 1
    assert count("ccnode_http_requests_total", {"route": "/m/lookup", "status": "413"}) == 2


def test_keys_are_added_listed_and_revoked_and_revocation_takes_effect_at_once(
    node: Node, loop: LoopThread, capsys: pytest.CaptureFixture[str]
) -> None:
    d = str(node.config.dir)
    out, _ = run_cli(capsys, "http-key", "add", d, "--scope", "status", "--name", "monitor")
    token = out.strip().splitlines()[-1]
    assert token.startswith("ccnk_") and len(token) == 5 + 43
    out, _ = run_cli(capsys, "http-key", "list", d, "--json")
    (listed,) = json.loads(out)
    assert listed["scopes"] == ["status"] and listed["name"] == "monitor"
    assert token not in out and "sha256" not in listed
    stored = (node.config.dir / "http_keys.json").read_text()
    assert token not in stored and (node.config.dir / "http_keys.json").stat().st_mode & 0o077 == 0
    url = f"http://{node.http_address}/v1/status"

    async def status(headers: dict[str, str]) -> int:
        return (await call("GET", url, headers=headers))[0]

    auth = {"Authorization": f"Bearer {token}"}
    # with a key on file the open loopback port now wants one
    assert loop.run(status({})) == 401
    assert loop.run(status(auth)) == 200
    run_cli(capsys, "http-key", "revoke", d, "--id", listed["id"])
    assert loop.run(status(auth)) == 401
    _, err = run_cli(capsys, "http-key", "revoke", d, "--id", listed["id"], code=4)
    assert f"no API key {listed['id']!r}" in err
    _, err = run_cli(capsys, "http-key", "add", d, "--scope", "everything", code=2)
    assert err == "ccnode: error: unknown scope 'everything': expected one of match, hash, status\n"


def test_without_keys_or_mutual_tls_the_port_is_refused_beyond_loopback(tmp_path: Path) -> None:
    cfg = write_node_dir(
        tmp_path, GOV, MembersFile.of([member(GOV, MemberKind.GOVERNMENT)]), MemberKind.GOVERNMENT
    )
    wide = replace(cfg, http_listen="192.0.2.7:8080")

    def api(config: NodeConfig) -> HttpApi:
        return HttpApi(None, config, rosters=None, ready=lambda: True, replica_lag=lambda: None)  # type: ignore[arg-type]

    with pytest.raises(ValidationError) as err:
        api(wide)
    assert str(err.value) == (
        "http_listen 192.0.2.7:8080: the HTTP API needs API keys (`ccnode http-key add DIR "
        "--scope match`) or http_mutual_tls = true to listen beyond loopback"
    )
    api(replace(cfg, http_listen="127.0.0.1:0"))  # loopback: open
    api(replace(cfg, http_listen="[::1]:0"))
    add_key(cfg.dir, ["match"])
    assert api(wide).open is False  # with a key, any address


def test_check_config_refuses_an_open_http_api_beyond_loopback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_node_dir(
        tmp_path,
        GOV,
        MembersFile.of([member(GOV, MemberKind.GOVERNMENT)]),
        MemberKind.GOVERNMENT,
        insecure=False,
        http_listen="192.0.2.7:8080",
    )
    _, err = run_cli(capsys, "check-config", str(cfg.dir), code=2)
    assert err == (
        "ccnode: error: http_listen 192.0.2.7:8080: the HTTP API needs API keys (`ccnode "
        "http-key add DIR --scope match`) or http_mutual_tls = true to listen beyond loopback\n"
    )
    add_key(cfg.dir, ["match"])
    out, _ = run_cli(capsys, "check-config", str(cfg.dir))
    assert "http 192.0.2.7:8080" in out


def test_mutual_tls_admits_pinned_member_certificates_only(
    tmp_path: Path, loop: LoopThread
) -> None:
    p1, gone = "platform-one.example", "platform-gone.example"
    node = start_node(
        tmp_path,
        loop,
        others=(member(p1), member(gone, revoked=True)),
        insecure=False,
        http_mutual_tls=True,
    )
    server = tls_for(GOV)
    for name in (GOV, p1, gone, "stranger.example"):
        (tmp_path / f"{name.replace('/', '_')}.crt").write_bytes(tls_for(name).cert_pem)
        (tmp_path / f"{name.replace('/', '_')}.key").write_bytes(tls_for(name).key_pem)

    def context(name: str | None) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cadata=server.cert_pem.decode())
        ctx.check_hostname = False  # the server's certificate is pinned above
        if name:
            stem = name.replace("/", "_")
            ctx.load_cert_chain(tmp_path / f"{stem}.crt", tmp_path / f"{stem}.key")
        return ctx

    base = f"https://{node.http_address}"
    pdq = expected_pdq("aaa-orig.jpg")

    async def go(name: str | None, path: str) -> tuple[int, Any] | str:
        try:
            return await call("GET", base + path, ssl=context(name))
        except aiohttp.ClientError as exc:
            return type(exc).__name__

    lookup = f"/m/raw_lookup?signal_type=pdq&signal={pdq}"
    try:
        got = {
            (name, path): loop.run(go(name, path))
            for name in (GOV, p1, gone, "stranger.example", None)
            for path in (lookup, "/v1/status")
        }
    finally:
        loop.run(node.stop())
    for name in (GOV, p1):  # the node's own member, and another member (READ role)
        assert got[name, lookup] == (200, {"matches": []})
        status = got[name, "/v1/status"]
        assert isinstance(status, tuple) and status[0] == 200
    for path in (lookup, "/v1/status"):
        what = f"GET {path.split('?')[0]}"
        assert got[gone, path] == _err(
            403, "PERMISSION_DENIED", f"caller {gone} is revoked in roster version 1"
        ), what
        # a certificate the roster does not pin, or none: the handshake fails
        assert isinstance(got["stranger.example", path], str)
        assert isinstance(got[None, path], str)


def test_a_replica_not_caught_up_answers_503_and_its_health_says_so(
    tmp_path: Path, loop: LoopThread
) -> None:
    # its primary never answers (nothing listens on port 1): never caught up
    node = start_node(tmp_path, loop, replica_of="127.0.0.1:1")
    base = f"http://{node.http_address}"
    pdq = expected_pdq("aaa-orig.jpg")

    async def go() -> list[tuple[int, Any]]:
        return [
            await call("GET", f"{base}/m/raw_lookup?signal_type=pdq&signal={pdq}"),
            await call("GET", f"{base}/healthz"),
            await call("GET", f"{base}/v1/status"),
        ]

    try:
        lookup, health, status = loop.run(go())
    finally:
        loop.run(node.stop())
    assert lookup == _err(
        503,
        "UNAVAILABLE",
        "this match replica is not caught up with its primary (no word from the primary yet; "
        "bound 1000): retry another replica",
    )
    assert health == (503, {"serving": False})
    assert status[0] == 200 and status[1]["replica_of"] == "127.0.0.1:1"


def test_a_caught_up_replica_serves_the_http_api_from_what_it_follows(
    tmp_path: Path, loop: LoopThread
) -> None:
    primary = start_node(tmp_path / "primary", loop)
    photo = hash_file(vector(PDQ_DIR / "aaa-orig.jpg")).pdq
    assert photo is not None
    entry = Origin(GOV).next(algorithm="PDQ", hash=photo.value)
    loop.run(primary.app.submit_async([entry]))
    replica = start_node(tmp_path / "replica", loop, replica_of=primary.address)
    base = f"http://{replica.http_address}"
    pdq = expected_pdq("blur-a-little.jpg")

    async def served() -> bool:
        return (await call("GET", f"{base}/healthz"))[0] == 200

    try:
        loop.run(aeventually(served, timeout=20, what="the replica caught up"))
        got = loop.run(call("GET", f"{base}/m/raw_lookup?signal_type=pdq&signal={pdq}"))
    finally:
        loop.run(replica.stop())
        loop.run(primary.stop())
    assert got == (200, {"matches": [entry.entry_id.hex()]})


def test_uploads_beyond_http_max_uploads_are_refused_with_429(
    tmp_path: Path, loop: LoopThread
) -> None:
    node = start_node(tmp_path, loop, http_max_uploads=1)
    url = f"http://{node.http_address}/h/hash"
    started, release = asyncio.Event(), asyncio.Event()

    async def slow() -> AsyncIterator[bytes]:  # holds the one slot until released
        yield b'--B\r\nContent-Disposition: form-data; name="file"; filename="x.bin"\r\n\r\n'
        yield b"x" * 1000
        started.set()
        await release.wait()
        yield b"\r\n--B--\r\n"

    async def go() -> tuple[tuple[int, Any], tuple[int, Any]]:
        first = asyncio.ensure_future(
            call(
                "POST",
                url,
                data=slow(),
                headers={"Content-Type": "multipart/form-data; boundary=B"},
            )
        )
        await started.wait()
        photo = vector(PDQ_DIR / "aaa-orig.jpg")

        async def refused() -> bool:
            return (await call("POST", url, data=form(photo, "photo")))[0] == 429

        await aeventually(refused, timeout=10, what="the second upload refused")
        second = await call("POST", url, data=form(photo, "photo"))
        release.set()
        return second, await first

    try:
        second, first = loop.run(go(), timeout=60)
    finally:
        loop.run(node.stop())
    assert second == _err(
        429,
        "RESOURCE_EXHAUSTED",
        "uploads being received or hashed: 1 (http_max_uploads 1): retry shortly",
    )
    assert first[0] == 200 and set(first[1]) == {"md5", "sha256"}


def test_an_upload_that_stalls_mid_body_is_refused_and_frees_its_slot(
    tmp_path: Path, loop: LoopThread
) -> None:
    """A client that sends part of an upload and then nothing would hold
    one of the http_max_uploads slots for ever: it is refused when the
    receive time limit passes, and the next upload is served."""
    node = start_node(tmp_path, loop, http_max_uploads=1)
    assert node.http is not None
    node.http.uploads.receive_timeout_s = 1.0  # 120 s in service
    host, port = node.http_address.rsplit(":", 1)
    photo = vector(PDQ_DIR / "aaa-orig.jpg")
    head = b'--B\r\nContent-Disposition: form-data; name="photo"; filename="x.jpg"\r\n\r\n'

    async def go() -> tuple[bytes, tuple[int, Any]]:
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            b"POST /h/hash HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"
            b"Content-Type: multipart/form-data; boundary=B\r\n\r\n" + head + bytes(1000)
        )
        await writer.drain()
        try:  # the node answers the stalled client, then closes
            stalled = await asyncio.wait_for(reader.read(), timeout=30)
        finally:
            writer.close()
        return stalled, await call("POST", f"http://{node.http_address}/h/hash",
                                   data=form(photo, "photo"))  # fmt: skip

    try:
        stalled, after = loop.run(go(), timeout=60)
    finally:
        loop.run(node.stop())
    status, _, body = stalled.partition(b"\r\n\r\n")
    assert status.startswith(b"HTTP/1.1 429 ")
    assert (
        json.loads(body)
        == _err(
            429,
            "RESOURCE_EXHAUSTED",
            "upload not received within 1 s: refused",
        )[1]
    )
    assert after[0] == 200 and after[1]["pdq"] == expected_pdq("aaa-orig.jpg")


def test_hashing_over_the_time_limit_is_refused_and_the_worker_replaced(
    tmp_path: Path, loop: LoopThread
) -> None:
    # Video a takes ~0.4 s to hash here; any file that is no media ~1 ms.
    node = start_node(tmp_path, loop, http_hash_timeout_s=0.1)
    url = f"http://{node.http_address}/h/hash"
    video = vector(VPDQ_DIR / "a.mp4")
    other = tmp_path / "notes.txt"
    other.write_bytes(b"a file that is no media")

    async def go() -> list[tuple[int, Any]]:
        return [
            await call("POST", url, data=form(other, "file")),  # starts the worker
            await call("POST", url, data=form(video, "video")),
            await call("POST", url, data=form(other, "file")),  # a new worker
        ]

    try:
        before, slow, after = loop.run(go(), timeout=60)
    finally:
        loop.run(node.stop())
    digests = {
        "md5": hashlib.md5(other.read_bytes()).hexdigest(),
        "sha256": hashlib.sha256(other.read_bytes()).hexdigest(),
    }
    assert before == after == (200, digests)
    assert slow == _err(
        429, "RESOURCE_EXHAUSTED", "a.mp4: hashing took over 0.1 s (http_hash_timeout_s): refused"
    )


def test_init_replica_copies_the_http_keys_owner_only(tmp_path: Path) -> None:
    from node.httpapi.keys import load_keys
    from node.member_dir import init_replica_dir

    cfg = write_node_dir(
        tmp_path, GOV, MembersFile.of([member(GOV, MemberKind.GOVERNMENT)]), MemberKind.GOVERNMENT
    )
    key, _ = add_key(cfg.dir, ["match"], "gate")
    replica = init_replica_dir(cfg.dir, tmp_path / "replica", "127.0.0.1:7001")
    assert load_keys(replica.dir) == (key,)
    assert (replica.dir / "http_keys.json").stat().st_mode & 0o777 == 0o600


def test_openapi_documents_exactly_the_served_routes(node: Node, loop: LoopThread) -> None:
    status, doc = loop.run(call("GET", f"http://{node.http_address}/openapi.json"))
    assert status == 200 and doc["openapi"].startswith("3.")
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    served = {(r.method, r.path) for r in ROUTES}
    assert documented == served
    for r in ROUTES:
        op = doc["paths"][r.path][r.method.lower()]
        assert op.get("x-scope", "") == r.scope, r


def test_an_unexpected_failure_is_internal_and_its_traceback_stays_in_the_log(
    node: Node, loop: LoopThread, caplog: pytest.LogCaptureFixture
) -> None:
    """The node's error middleware around a route that fails unexpectedly."""
    from aiohttp import web

    assert node.http is not None
    errors = node.http._errors

    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("detail that must not leak: /srv/ccnode/keys")

    async def go() -> tuple[int, Any]:
        app = web.Application(middlewares=[errors])
        app.router.add_get("/boom", boom)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        try:
            port = runner.addresses[0][1]
            return await call("GET", f"http://127.0.0.1:{port}/boom")
        finally:
            await runner.cleanup()

    got = loop.run(go())
    assert got == _err(500, "INTERNAL", "internal error; see the node's log")
    (record,) = [r for r in caplog.records if r.getMessage() == "internal error in GET /boom"]
    assert record.exc_info is not None and "must not leak" in str(record.exc_info[1])


def test_ccnode_serve_with_http_listen_serves_it_and_removes_its_address_on_sigterm(
    tmp_path: Path,
) -> None:
    """The real process: `ccnode serve DIR --http-listen 127.0.0.1:0` writes
    DIR/http.addr, answers, and on SIGTERM stops and removes the file."""
    import signal
    import subprocess
    import sys
    import urllib.request

    cfg = write_node_dir(
        tmp_path, GOV, MembersFile.of([member(GOV, MemberKind.GOVERNMENT)]), MemberKind.GOVERNMENT
    )
    addr = cfg.dir / "http.addr"
    log = (tmp_path / "node.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "node", "serve", str(cfg.dir), "--http-listen", "127.0.0.1:0"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        eventually(lambda: addr.exists() or proc.poll() is not None, timeout=60, what="http.addr")
        assert proc.poll() is None, (tmp_path / "node.log").read_text()
        url = f"http://{addr.read_text().strip()}/healthz"

        def serving() -> bool:
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    return bool(r.status == 200)
            except OSError:
                return False

        eventually(serving, timeout=60, what="/healthz 200")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    assert not addr.exists()
    assert "HTTP API on http://127.0.0.1:" in (tmp_path / "node.log").read_text()
