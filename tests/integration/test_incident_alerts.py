"""Alerting the platform: WatchIncidents over gRPC and the signed webhook,
against a real node and a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from node.alerts import IncidentFeed, lagged_message
from node.config import WebhookConfig, load_config
from node.core.entry import SignedEntry
from node.core.trust import MemberKind, MembersFile
from node.errors import LimitError, ValidationError
from node.rpc._pb.consortium.v1 import node_pb2 as pb
from node.rpc.client import NodeClient
from node.server import Node
from node.webhook import (
    IDEMPOTENCY_HEADER,
    QUEUE_DIR,
    SIGNATURE_HEADER,
    sign_body,
    verify_signature,
)
from tests.helpers import LoopThread, Origin, eventually, http_server, member, write_node_dir

pytestmark = pytest.mark.integration

GOV, PLATFORM = "gov.example/ct", "platform.example"
INC_A, INC_B = "christchurch-2019-03-15", "halle-2019-10-09"
SECRET = b"0123456789abcdef-shared-secret"


def _members() -> MembersFile:
    return MembersFile.of([member(GOV, MemberKind.GOVERNMENT), member(PLATFORM)])


@pytest.fixture
def node(tmp_path: Path, loop: LoopThread) -> Iterator[Node]:
    n = Node(write_node_dir(tmp_path, PLATFORM, _members()), anti_entropy_s=0)
    loop.run(n.start())
    yield n
    loop.run(n.stop())


async def _collect(address: str, incidents: list[str], n: int) -> list[pb.IncidentNotification]:
    out: list[pb.IncidentNotification] = []
    async with NodeClient(address) as c:
        async for note in c.watch_incidents(incidents):
            out.append(note)
            if len(out) == n:
                break
    return out


def _wait_subscribers(node: Node, n: int) -> None:
    eventually(lambda: node.incidents.subscribers == n, what=f"{n} subscriber(s)")


def test_watch_incidents_streams_urgent_incident_entries_with_policy(
    node: Node, loop: LoopThread
) -> None:
    gov = Origin(GOV)
    only_a = asyncio.run_coroutine_threadsafe(_collect(node.address, [INC_A], 2), loop.loop)
    every = asyncio.run_coroutine_threadsafe(_collect(node.address, [], 3), loop.loop)
    _wait_subscribers(node, 2)
    a1 = gov.next(urgent=True, incident=INC_A)
    quiet = gov.next(incident=INC_A)  # not urgent: no notification
    no_incident = gov.next(urgent=True, incident="")  # urgent, no incident: none
    b1 = gov.next(urgent=True, incident=INC_B)
    a2 = gov.next(urgent=True, incident=INC_A)
    for e in (a1, quiet, no_incident, b1, a2):
        loop.run(node.app.submit_async([e]))
    got_a = only_a.result(10)
    got_all = every.result(10)
    assert [bytes(n.provenance.entry_id) for n in got_a] == [a1.entry_id, a2.entry_id]
    assert [bytes(n.provenance.entry_id) for n in got_all] == [
        a1.entry_id,
        b1.entry_id,
        a2.entry_id,
    ]
    note = got_a[0]
    assert bytes(note.entry.body) == a1.body_bytes
    assert bytes(note.entry.signature) == a1.signature
    assert note.provenance.origin == GOV
    assert note.provenance.origin_kind == "government"
    assert note.provenance.urgent and note.provenance.incident == INC_A
    assert note.node_id == PLATFORM
    expected = node.app.get(a1.entry_id)
    assert note.recommended_action == expected.action != ""
    assert note.rule == expected.rule != ""
    eventually(lambda: node.incidents.subscribers == 0, what="streams closed")


def test_a_lagging_subscriber_is_ended_and_commits_go_on(node: Node, loop: LoopThread) -> None:
    node.incidents.queue = 2
    gov = Origin(GOV)
    entries = [gov.next(urgent=True, incident=INC_A) for _ in range(5)]
    got: list[bytes] = []

    async def slow() -> str:
        async with NodeClient(node.address) as c:
            try:
                async for note in c.watch_incidents():
                    got.append(bytes(note.provenance.entry_id))
            except LimitError as exc:
                return str(exc)
        return "stream ended without an error"

    ended = asyncio.run_coroutine_threadsafe(slow(), loop.loop)
    _wait_subscribers(node, 1)
    # One batch: five notifications are queued before the stream can send one.
    loop.run(node.app.submit_async(entries))
    assert ended.result(10) == lagged_message(2)
    assert got == [e.entry_id for e in entries[:2]]
    assert node.store.head(GOV).next_seq == 5  # every entry committed
    assert node.incidents.subscribers == 0


def test_a_filtered_subscription_skips_other_incidents(node: Node, loop: LoopThread) -> None:
    feed = IncidentFeed(node.app)
    with feed.subscribe([INC_B]) as sub:
        gov = Origin(GOV)
        loop.run(node.app.submit_async([gov.next(urgent=True, incident=INC_A)]))
        assert sub._queue.empty()  # filtered out
    assert feed.subscribers == 0


# -- the webhook ------------------------------------------------------------------


@dataclass
class Receiver:
    """A real HTTP receiver: fails the first ``fail_first`` requests (503),
    or every request while ``down``, then answers 204."""

    fail_first: int = 0
    down: bool = False
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    accepted: dict[str, dict[str, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, headers: dict[str, str], body: bytes) -> int:
        with self.lock:
            self.requests.append((headers, body))
            if self.down or len(self.requests) <= self.fail_first:
                return 503
            doc = verify_signature(SECRET, body, headers.get(SIGNATURE_HEADER.lower()))
            self.accepted.setdefault(headers[IDEMPOTENCY_HEADER.lower()], doc)
            return 204


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            code = state.handle({k.lower(): v for k, v in self.headers.items()}, body)
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    with http_server(Handler) as base:
        yield state, f"{base}/ccnode"


def _webhook_node(tmp_path: Path, url: str) -> Node:
    hook = WebhookConfig(url=url, backoff_s=0.02, max_backoff_s=0.1, timeout_s=5.0)
    config = write_node_dir(tmp_path, PLATFORM, _members(), webhook=hook)
    (config.dir / hook.secret_file).write_bytes(SECRET + b"\n")
    return Node(load_config(config.dir), anti_entropy_s=0)


def _submit(node: Node, loop: LoopThread, entries: list[SignedEntry]) -> None:
    for e in entries:
        loop.run(node.app.submit_async([e]))


def test_webhook_retries_until_accepted_with_a_stable_key(
    tmp_path: Path, loop: LoopThread, receiver: tuple[Receiver, str]
) -> None:
    state, url = receiver
    state.fail_first = 3
    node = _webhook_node(tmp_path, url)
    loop.run(node.start())
    try:
        gov = Origin(GOV)
        first = gov.next(urgent=True, incident=INC_A)
        quiet = gov.next(incident=INC_A)  # not urgent: not notified
        entries = [first, *(gov.next(urgent=True, incident=INC_A) for _ in range(2))]
        _submit(node, loop, [first, quiet, *entries[1:]])
        keys = [e.entry_id.hex() for e in entries]
        eventually(lambda: len(state.accepted) == 3, what="three notifications accepted")
        assert list(state.accepted) == keys  # in commit order, each once accepted
        # The first notification was tried four times: same key, same bytes.
        tries = [(h, b) for h, b in state.requests if h[IDEMPOTENCY_HEADER.lower()] == keys[0]]
        assert len(tries) == 4
        assert len({b for _h, b in tries}) == 1
        doc = state.accepted[keys[0]]
        assert doc["idempotency_key"] == keys[0]
        note = doc["notification"]
        assert note["provenance"]["origin"] == GOV
        assert note["provenance"]["incident"] == INC_A
        assert note["recommended_action"] == node.app.get(entries[0].entry_id).action
        assert note["node_id"] == PLATFORM
        eventually(lambda: not list((node.config.dir / QUEUE_DIR).iterdir()), what="queue empty")
    finally:
        loop.run(node.stop())


def test_queued_notifications_survive_a_restart(
    tmp_path: Path, loop: LoopThread, receiver: tuple[Receiver, str]
) -> None:
    state, url = receiver
    state.down = True
    node = _webhook_node(tmp_path, url)
    loop.run(node.start())
    gov = Origin(GOV)
    entries = [gov.next(urgent=True, incident=INC_B) for _ in range(2)]
    queue = node.config.dir / QUEUE_DIR
    try:
        _submit(node, loop, entries)
        eventually(lambda: len(list(queue.glob("*.json"))) == 2, what="two queued")
        eventually(lambda: len(state.requests) >= 2, what="delivery attempted")
    finally:
        loop.run(node.stop())
    assert len(list(queue.glob("*.json"))) == 2  # still queued after the stop
    assert state.accepted == {}
    state.down = False
    node = _webhook_node(tmp_path, url)
    loop.run(node.start())
    try:
        eventually(lambda: len(state.accepted) == 2, what="delivered after the restart")
        assert list(state.accepted) == [e.entry_id.hex() for e in entries]
        eventually(lambda: not list(queue.glob("*.json")), what="queue empty")
    finally:
        loop.run(node.stop())


def test_receiver_detects_a_bad_signature() -> None:
    body = json.dumps({"idempotency_key": "00" * 32}).encode()
    good = sign_body(SECRET, body)
    assert verify_signature(SECRET, body, good) == {"idempotency_key": "00" * 32}
    with pytest.raises(ValidationError) as e:
        verify_signature(b"another-secret-of-16+bytes", body, good)
    assert str(e.value) == "webhook signature does not match the body (wrong secret?)"
    with pytest.raises(ValidationError) as e:
        verify_signature(SECRET, body + b" ", good)
    assert str(e.value) == "webhook signature does not match the body (wrong secret?)"
    with pytest.raises(ValidationError) as e:
        verify_signature(SECRET, body, None)
    assert str(e.value) == "webhook request has no X-Ccnode-Signature header"


def test_webhook_config_errors(tmp_path: Path) -> None:
    config = write_node_dir(tmp_path, PLATFORM, _members())
    path = config.dir / "config.toml"
    base = path.read_text()
    path.write_text(base + '\n[webhook]\nurl = "ftp://example"\n')
    with pytest.raises(ValidationError) as e:
        load_config(config.dir)
    assert str(e.value) == f"{path}: webhook.url must be an http:// or https:// URL"
    path.write_text(base + '\n[webhook]\nurl = "http://127.0.0.1:9/x"\nretries = 3\n')
    with pytest.raises(ValidationError) as e:
        load_config(config.dir)
    assert str(e.value) == f"{path}: unknown option webhook.retries"
    path.write_text(base + '\n[webhook]\nurl = "http://127.0.0.1:9/x"\n')
    loaded = load_config(config.dir)
    assert loaded.webhook.url == "http://127.0.0.1:9/x"
    with pytest.raises(ValidationError) as e:
        Node(loaded, anti_entropy_s=0)
    secret = config.dir / "keys" / "webhook.secret"
    assert str(e.value) == f"cannot read webhook secret {secret}: No such file or directory"
    secret.write_bytes(b"short")
    with pytest.raises(ValidationError) as e:
        Node(loaded, anti_entropy_s=0)
    assert str(e.value) == f"webhook secret {secret}: expected at least 16 bytes, got 5"


def test_a_live_streams_soundtrack_reaches_the_webhook(
    tmp_path: Path, loop: LoopThread, receiver: tuple[Receiver, str]
) -> None:
    """``submit --live`` of a stream with sound: each urgent CHROMAPRINT
    segment is POSTed, signed, with its provenance and the node's policy."""
    import subprocess

    from node.core.chromaprint import ChromaprintSegment
    from node.media.audio import fingerprint_file
    from tests.integration.test_live_publish import NODE, ROOT, SOUNDTRACK, VECTORS, WRITER

    state, url = receiver
    ts = tmp_path / "stream.ts"
    argv = [*WRITER, str(VECTORS / "a.mp4"), str(ts), "--speed", "1000"]
    subprocess.run([*argv, "--audio", str(SOUNDTRACK)], cwd=ROOT, check=True)
    node = _webhook_node(tmp_path, url)
    loop.run(node.start())
    try:
        argv = [*NODE, "submit", str(node.config.dir), "--live", str(ts), "--incident", INC_A]
        argv += ["--segment-seconds", "4", "--stall-seconds", "0.5"]
        subprocess.run(argv, cwd=ROOT, check=True, capture_output=True)
        # 12 s of picture in 4 s segments; 75 sub-fingerprints (to 9.2 s): 3 audio segments
        eventually(lambda: len(state.accepted) == 6, what="six notifications accepted")
    finally:
        loop.run(node.stop())
    notes = [doc["notification"] for doc in state.accepted.values()]
    algorithms = [n["provenance"]["algorithm"] for n in notes]
    assert algorithms.count("CHROMAPRINT") == 3 and algorithms[-1] == "VPDQ"
    sound = [n for n in notes if n["provenance"]["algorithm"] == "CHROMAPRINT"]
    assert all(n["provenance"]["incident"] == INC_A and n["recommended_action"] for n in sound)
    segs = [ChromaprintSegment.decode(base64.b64decode(n["provenance"]["hash"])) for n in sound]
    assert [s.index for s in segs] == [0, 1, 2] and segs[-1].final
    assert tuple(v for s in segs for v in s.values) == fingerprint_file(ts).values
