"""Checkpoint verifier keys in C2SP signed-note vkey form (issue 14 item 16):
`roster show` and `status` publish them, and a verifier written from the
spec alone (hashlib and cryptography, none of our code) checks a real
node's checkpoint with them, as Go's note.NewVerifier would."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from node.cli import main
from node.core.trust import MemberKind, MembersFile
from node.rpc._pb.consortium.v1 import node_pb2 as pb
from node.rpc._pb.consortium.v1 import node_pb2_grpc as pb_grpc
from node.rpc.client import CHANNEL_OPTIONS
from node.server import Node
from tests.helpers import LoopThread, Origin, eventually, member, write_node_dir

pytestmark = pytest.mark.integration

GOV, PLAT = "gov.example/ct", "platform.example"


def spec_verify(note: str, vkey: str) -> str:
    """C2SP signed-note, from the spec: parse the vkey, check its key ID, find
    the signature line of that (name, key ID), verify Ed25519 over the text.
    Returns the text; raises AssertionError otherwise."""
    name, key_id_hex, blob_b64 = vkey.split("+", 2)  # base64 may hold "+" too
    blob = base64.b64decode(blob_b64, validate=True)
    assert blob[0] == 0x01 and len(blob) == 33, "an Ed25519 vkey"
    key_id = hashlib.sha256(name.encode() + b"\x0a" + blob).digest()[:4]
    assert key_id.hex() == key_id_hex, (
        "the vkey's key ID is SHA-256(name || 0x0A || 0x01 || key)[:4]"
    )
    split = note.rindex("\n\n")
    text, signatures = note[: split + 1], note[split + 2 :]
    for line in signatures.splitlines():
        assert line.startswith("\u2014 ")
        line_name, sig_b64 = line[2:].split(" ")
        sig = base64.b64decode(sig_b64)
        if line_name != name or sig[:4] != key_id:
            continue  # another key: ignored
        try:
            Ed25519PublicKey.from_public_bytes(blob[1:]).verify(sig[4:], text.encode())
        except InvalidSignature:
            raise AssertionError("signature does not verify") from None
        return text
    raise AssertionError(f"no signature by {name}+{key_id_hex}")


@pytest.fixture
def node(tmp_path: Path, loop: LoopThread) -> Iterator[tuple[Node, Any, Path]]:
    members = MembersFile.of([member(GOV, MemberKind.GOVERNMENT), member(PLAT)])
    config = write_node_dir(tmp_path, PLAT, members)
    n = Node(config)
    address = loop.run(n.start())
    channel = grpc.insecure_channel(address, options=CHANNEL_OPTIONS)
    try:
        yield n, pb_grpc.NodeServiceStub(channel), config.dir / "roster.json"
    finally:
        channel.close()
        loop.run(n.stop())


def test_published_vkeys_verify_a_real_checkpoint(
    node: tuple[Node, Any, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, stub, roster = node
    own = Origin(PLAT)
    entries = [own.next() for _ in range(3)]
    stub.Submit(
        pb.SubmitRequest(
            entries=[pb.SignedEntry(body=e.body_bytes, signature=e.signature) for e in entries]
        ),
        timeout=10,
    )
    got: list[str] = []

    def signed() -> bool:
        try:
            answer = stub.GetCheckpoint(pb.GetCheckpointRequest(origin=PLAT), timeout=5)
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.NOT_FOUND  # not signed yet
            return False
        got[:] = [answer.checkpoint]
        return True

    eventually(signed, timeout=15, what="the node signs a checkpoint of its log")
    note = got[0]

    status = stub.Status(pb.StatusRequest(), timeout=5)
    assert status.checkpoint_vkey.startswith(f"ccnode/v1/{PLAT}+")
    assert spec_verify(note, status.checkpoint_vkey) == note[: note.rindex("\n\n") + 1]

    assert main(["roster", "show", str(roster)]) == 0
    lines = capsys.readouterr().out.splitlines()
    shown = [line.split("checkpoint vkey ")[1] for line in lines if "checkpoint vkey " in line]
    assert len(shown) == 2
    assert status.checkpoint_vkey in shown
    assert main(["roster", "show", str(roster), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [m["checkpoint_vkey"] for m in doc["members"]] == shown

    # The other member's vkey is not this log's key: the spec verifier refuses.
    other = next(v for v in shown if v != status.checkpoint_vkey)
    with pytest.raises(AssertionError, match="no signature by"):
        spec_verify(note, other)
    # A tampered checkpoint fails.
    with pytest.raises(AssertionError, match="does not verify"):
        spec_verify(note.replace("\n3\n", "\n4\n", 1), status.checkpoint_vkey)
