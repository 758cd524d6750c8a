"""The roster drives the transparency log, the operator-only RPCs and alerts.

Real grpc.aio nodes over mutual TLS:

- who witnesses and how many cosignatures settle an entry come from the
  roster. Under roster 1 (witness threshold 0) nothing is cosigned or
  settled; roster 2 gives NGO the WITNESS role and threshold 1, and once the
  nodes adopt it (no restart, no config change) GOV's node asks NGO to
  cosign over mutual TLS and GOV's entries settle at both nodes;
- the policy and match-log RPCs are for the node's own TLS key only;
- a roster that expires while the node runs is an alert in Status.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from node.cli import main
from node.core.roster import Role, SignedRoster
from node.core.trust import MemberKind
from node.errors import ProvenanceError
from node.rpc.client import NodeClient
from node.rpc.tls import secure_client
from node.server import Node
from tests.helpers import (
    FAR_FUTURE_MS,
    GOVERNANCE,
    LoopThread,
    Origin,
    eventually,
    genesis,
    member,
    peer_file,
    sign,
    tls_for,
    write_node_dir,
)

pytestmark = pytest.mark.integration

GOV, NGO, P = "gov.example/ct", "ngo.example", "platform.example"
NO_WITNESS = frozenset({Role.SUBMIT, Role.ENDORSE, Role.READ})


def client(name: str, address: str, trust: tuple[str, ...] = (GOV, NGO, P)) -> NodeClient:
    """Speak as ``name``'s TLS key, trusting ``trust``'s certificates."""
    return secure_client(address, tls_for(name), [tls_for(t).cert_der for t in trust])


def _call(loop: LoopThread, make: Callable[[], NodeClient], fn: str, *args: object) -> Any:
    async def go() -> object:
        async with make() as c:  # made in the loop that uses it
            return await getattr(c, fn)(*args)

    return loop.run(go())


def v1() -> SignedRoster:
    """Nobody witnesses: threshold 0, and no member holds the WITNESS role."""
    return genesis(
        [
            member(GOV, MemberKind.GOVERNMENT, roles=NO_WITNESS),
            member(NGO, MemberKind.NGO, roles=NO_WITNESS),
            member(P, roles=NO_WITNESS),
        ]
    )


def v2(prev: SignedRoster) -> SignedRoster:
    """NGO gets the WITNESS role; one cosignature settles."""
    ngo = prev.roster.member(NGO)
    draft = prev.roster.next_draft(FAR_FUTURE_MS).with_member(
        dataclasses.replace(ngo, roles=ngo.roles | {Role.WITNESS})
    )
    draft = dataclasses.replace(draft, witness_threshold=1)
    return sign(SignedRoster.draft(draft), GOVERNANCE[:1])


def test_witnesses_and_threshold_follow_the_adopted_roster(
    tmp_path: Path, loop: LoopThread
) -> None:
    roster = v1()
    gov_cfg = write_node_dir(
        tmp_path, GOV, roster, MemberKind.GOVERNMENT, (peer_file(NGO),), insecure=False
    )
    ngo_cfg = write_node_dir(
        tmp_path, NGO, roster, MemberKind.NGO, (peer_file(GOV),), insecure=False
    )
    gov, ngo = Node(gov_cfg), Node(ngo_cfg)
    try:
        loop.run(gov.start())
        loop.run(ngo.start())
        origin = Origin(GOV)
        entries = [origin.next() for _ in range(3)]
        _call(loop, lambda: client(GOV, gov.address), "submit", entries)
        eventually(
            lambda: (ngo.store.tlog.latest_checkpoint(GOV) or (0,))[0] == 3,
            what="NGO holds GOV's entries and its size-3 checkpoint",
        )
        # Roster 1: no witnesses, so nothing is asked for and nothing settles.
        assert gov.app.tlog.policy.witnesses == frozenset()
        assert gov.app.tlog.witness_targets() == []
        assert (gov.app.tlog.settled_sizes(), ngo.app.tlog.settled_sizes()) == ({}, {})
        with pytest.raises(ProvenanceError) as info:
            _call(loop, lambda: client(GOV, ngo.address), "add_checkpoint", 0, [], "x")
        assert str(info.value) == (
            f"node {NGO} is not a witness (the roster's WITNESS role, with a witness "
            "threshold of at least 1)"
        )

        # Roster 2, offered to GOV's node by its operator, reaches NGO by gossip.
        offered = _call(loop, lambda: client(GOV, gov.address), "offer_roster", [v2(roster)])
        assert (offered.adopted, offered.version) == (1, 2)
        eventually(lambda: ngo.rosters.version == 2, what="NGO adopted roster 2")
        assert gov.app.tlog.witness_targets() == [NGO]
        eventually(
            lambda: gov.app.tlog.settled_sizes() == {GOV: 3},
            timeout=20,
            what="GOV's checkpoint cosigned by NGO, which only roster 2 made a witness",
        )
        eventually(
            lambda: ngo.app.tlog.settled_sizes() == {GOV: 3},
            what="the cosigned checkpoint reached NGO with Pull",
        )
        assert ngo.store.tlog.witnessed(GOV).size == 3
        e = entries[1]
        response = _call(
            loop, lambda: client(NGO, ngo.address), "match", [(e.body.algorithm, e.body.hash)]
        )
        (hit,) = response.results[0].matches
        assert (hit.provenance.settled, hit.provenance.origin_status) == (True, "active")
    finally:
        for n in (gov, ngo):
            if n._server is not None:
                loop.run(n.stop())


def test_operator_rpcs_need_the_nodes_own_tls_key(tmp_path: Path, loop: LoopThread) -> None:
    node = Node(write_node_dir(tmp_path, P, v1(), insecure=False))
    loop.run(node.start())
    try:
        calls: list[tuple[str, tuple[object, ...], str]] = [
            ("reload_policy", (), "ReloadPolicy"),
            ("prune_match_log", (0,), "PruneMatchLog"),
            ("record_action", (bytes(32), 1), "RecordAction"),
        ]
        for fn, args, name in calls:
            with pytest.raises(ProvenanceError) as info:
                _call(loop, lambda: client(GOV, node.address), fn, *args)
            assert str(info.value) == (
                f"{name} is for this node's operator (its own TLS key): caller {GOV} may not"
            )
        reloaded = _call(loop, lambda: client(P, node.address), "reload_policy")
        assert reloaded.source  # the operator's own key: allowed
    finally:
        loop.run(node.stop())


def test_a_roster_that_expires_while_the_node_runs_is_an_alert(
    tmp_path: Path, loop: LoopThread, capsys: pytest.CaptureFixture[str]
) -> None:
    expires = time.time_ns() // 1_000_000 + 1500
    config = write_node_dir(tmp_path, P, genesis([member(P)], expires_ms=expires), insecure=False)
    node = Node(config)
    loop.run(node.start())
    try:

        def alerts() -> list[tuple[str, str]]:
            status = _call(loop, lambda: client(P, node.address), "status")
            return [(a.kind, a.detail) for a in status.alerts]

        eventually(lambda: bool(alerts()), what="the roster expired")
        ((kind, detail),) = alerts()
        assert kind == "roster"
        assert detail.startswith("roster version 1 expired at ")
        assert detail.endswith("; still enforced until governance publishes the next version")
        # Still enforced: the node keeps accepting its members' entries.
        _call(loop, lambda: client(P, node.address), "submit", [Origin(P).next()])
        capsys.readouterr()
        assert main(["status", str(config.dir)]) == 0
        assert "ALERT roster: roster version 1 expired at " in capsys.readouterr().out
    finally:
        loop.run(node.stop())
