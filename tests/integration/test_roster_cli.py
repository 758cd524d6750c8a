"""``ccnode roster`` in process: drafting, k-of-n signing, verify, show, publish."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from node.cli import main
from node.config import load_config
from node.core.roster import Role, default_roles, loads_file, raw_public_key
from tests.helpers import signer_for

pytestmark = pytest.mark.integration


def _ok(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


def _fails(argv: list[str], code: int, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert main(argv) == code
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    return err


@pytest.fixture
def consortium(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Path]:
    """Three governance keys, two members' directories, and a draft roster 1 (2-of-3)."""
    paths: dict[str, Path] = {}
    for i in range(3):
        paths[f"g{i}"] = tmp_path / f"g{i}.pem"
        assert "public key" in _ok(["roster", "keygen", str(paths[f"g{i}"])], capsys)
    paths["gov"] = tmp_path / "gov"
    paths["desk"] = tmp_path / "desk"
    paths["plat"] = tmp_path / "plat"
    _ok(
        [
            "init",
            str(paths["gov"]),
            "--id",
            "gov.example/ct",
            "--kind",
            "government",
            "--jurisdiction",
            "NZ",
        ],
        capsys,
    )
    _ok(["init", str(paths["plat"]), "--id", "platform.example", "--kind", "platform"], capsys)
    out = _ok(
        [
            "init",
            str(paths["desk"]),
            "--id",
            "gov.example/desk",
            "--kind",
            "government",
            "--jurisdiction",
            "NZ",
            "--key-only",
        ],
        capsys,
    )
    assert "initialised key-only member gov.example/desk" in out
    assert not (paths["desk"] / "keys" / "checkpoint.pem").exists()
    paths["roster"] = tmp_path / "roster.json"
    _ok(
        [
            "roster",
            "init",
            str(paths["roster"]),
            "--threshold",
            "2",
            *[a for i in range(3) for a in ("--governance", str(paths[f"g{i}"]))],
            "--member",
            str(paths["gov"] / "member.json"),
            "--member",
            str(paths["desk"] / "member.json"),
        ],
        capsys,
    )
    return paths


def test_k_of_n_signing_by_separate_holders(
    consortium: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    roster = consortium["roster"]
    err = _fails(["roster", "verify", str(roster)], 2, capsys)
    assert err == (
        "ccnode: error: roster version 1 is signed by 0/3 governance keys of version 1 "
        "(its own): needs 2"
    )
    # Each holder signs a copy of the same draft; the copies merge.
    copies = [tmp_path / f"copy{i}.json" for i in range(2)]
    for i, copy in enumerate(copies):
        shutil.copy(roster, copy)
        _ok(["roster", "sign", str(copy), "--key", str(consortium[f"g{i * 2}"])], capsys)
    out = _ok(
        ["roster", "sign", str(roster), "--merge", str(copies[0]), "--merge", str(copies[1])],
        capsys,
    )
    assert "2/3 of its own governance keys (needs 2)" in out
    out = _ok(["roster", "verify", str(roster)], capsys)
    assert "roster version 1" in out and "valid as a trust anchor" in out
    # The same key signing twice still counts once.
    once = tmp_path / "once.json"
    shutil.copy(copies[0], once)
    _ok(
        ["roster", "sign", str(once), "--key", str(consortium["g0"]), "--merge", str(copies[0])],
        capsys,
    )
    assert "signed by 1/3 governance keys" in _fails(["roster", "verify", str(once)], 2, capsys)

    shown = json.loads(_ok(["roster", "show", str(roster), "--json"], capsys))
    assert shown["version"] == 1 and shown["governance_threshold"] == 2
    assert [m["id"] for m in shown["members"]] == ["gov.example/ct", "gov.example/desk"]
    text = _ok(["roster", "show", str(roster)], capsys)
    assert "governance: 2 of 3 keys; signed by 2 of them" in text


def test_drafting_chains_versions_and_publish_installs_them(
    consortium: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    roster, g0, g1, g2 = (consortium[k] for k in ("roster", "g0", "g1", "g2"))
    _ok(["roster", "sign", str(roster), "--key", str(g0), "--key", str(g1)], capsys)
    v1 = tmp_path / "v1.json"
    shutil.copy(roster, v1)

    # Editing a fully signed roster starts version 2, chained to it.
    out = _ok(
        [
            "roster",
            "add-member",
            str(roster),
            "--card",
            str(consortium["plat"] / "member.json"),
            "--roles",
            "submit,read",
        ],
        capsys,
    )
    assert "started draft version 2 after signed version 1" in out
    set_role = ["roster", "set-role", str(roster), "--id", "gov.example/desk", "--roles", "submit"]
    err = _fails(set_role, 2, capsys)
    assert err == (
        "ccnode: error: set-role removes ENDORSE from gov.example/desk: give --until-seq S "
        "(its entries up to seq S keep the old roles: S is its next_seq in `ccnode status` "
        "minus 1), or --whole-log"
    )
    out = _ok([*set_role, "--until-seq", "3"], capsys)
    assert "gov.example/desk now has roles SUBMIT after seq 3" in out
    shown = _ok(["roster", "show", str(roster)], capsys)
    assert "roles SUBMIT (up to seq 3: SUBMIT, ENDORSE, WITNESS, READ)" in shown
    gov_key = load_config(consortium["gov"]).signer()
    old = gov_key.public_key
    err = _fails(
        ["roster", "rotate-key", str(roster), "--id", "gov.example/ct", "--entry-key", "abcd"],
        2,
        capsys,
    )
    assert err == (
        "ccnode: error: --entry-key: expected 64 hex digits (a raw Ed25519 public key) "
        "or a PEM key file"
    )
    new_hex = raw_public_key(signer_for("rotated").public_key).hex()
    _ok(
        [
            "roster",
            "rotate-key",
            str(roster),
            "--id",
            "gov.example/ct",
            "--entry-key",
            new_hex,
            "--retire",
            raw_public_key(old).hex(),
            "--until-seq",
            "7",
        ],
        capsys,
    )
    v2 = loads_file(roster.read_text())
    assert v2.version == 2 and not v2.signatures  # a draft
    gov = v2.roster.member("gov.example/ct")
    assert sorted((k.valid_until_seq for k in gov.entry_keys), key=str) == [7, None]
    assert v2.roster.member("platform.example").roles == {Role.SUBMIT, Role.READ}
    desk = v2.roster.member("gov.example/desk")
    assert desk.roles == {Role.SUBMIT}
    assert desk.roles_at(3) == default_roles(desk.kind) and desk.roles_at(4) == {Role.SUBMIT}

    # Version 2 also rotates governance to 2-of-2 {g2, g3}: both thresholds needed.
    g3 = tmp_path / "g3.pem"
    _ok(["roster", "keygen", str(g3)], capsys)
    _ok(
        [
            "roster",
            "rotate-key",
            str(roster),
            "--governance",
            str(g2),
            "--governance",
            str(g3),
            "--threshold",
            "2",
        ],
        capsys,
    )
    _ok(["roster", "sign", str(roster), "--key", str(g2), "--key", str(g3)], capsys)
    err = _fails(["roster", "verify", str(roster), "--prev", str(v1)], 2, capsys)
    assert (
        err
        == "ccnode: error: roster version 2 is signed by 1/3 governance keys of version 1: needs 2"
    )
    _ok(["roster", "sign", str(roster), "--key", str(g1)], capsys)
    assert "chains from version 1" in _ok(
        ["roster", "verify", str(roster), "--prev", str(v1)], capsys
    )

    # Publish: version 1 to a fresh node directory (anchor), then version 2 (chains).
    plat = consortium["plat"]
    err = _fails(
        ["roster", "publish", str(consortium["desk"] / "member.json"), str(plat)], 2, capsys
    )
    assert 'roster file: expected "format": "consortium-roster/v1"' in err
    assert "as its trust anchor" in _ok(["roster", "publish", str(v1), str(plat)], capsys)
    assert "after version 1" in _ok(["roster", "publish", str(roster), str(plat)], capsys)
    assert load_config(plat).roster().version == 2
    assert "already holds roster version 2" in _ok(
        ["roster", "publish", str(roster), str(plat)], capsys
    )
    err = _fails(["roster", "publish", str(v1), str(plat)], 2, capsys)
    assert err == (
        "ccnode: error: rollback refused: roster version 1 is older than the held version 2"
    )

    # Version 3 removes the desk: revoked, kept as a tombstone, no longer pinned.
    remove = ["roster", "remove-member", str(roster), "--id", "gov.example/desk"]
    err = _fails(remove, 2, capsys)
    assert err == (
        "ccnode: error: remove-member needs --until-seq S (its entries up to seq S stay valid "
        "on every node: S is gov.example/desk's next_seq in `ccnode status` minus 1) or "
        "--refuse-unstored (its key may be compromised: nodes that lack its entries refuse them)"
    )
    err = _fails([*remove, "--until-seq", "4", "--refuse-unstored"], 2, capsys)
    assert (
        err == "ccnode: error: remove-member: --until-seq and --refuse-unstored exclude each other"
    )
    out = _ok(
        ["roster", "remove-member", str(roster), "--id", "gov.example/desk", "--until-seq", "4"],
        capsys,
    )
    assert "started draft version 3 after signed version 2" in out
    _ok(
        [
            "roster",
            "revoke-key",
            str(roster),
            "--id",
            "gov.example/ct",
            "--key",
            new_hex,
            "--until-seq",
            "9",
        ],
        capsys,
    )
    err = _fails(
        ["roster", "revoke-key", str(roster), "--id", "gov.example/ct", "--key", "22" * 32],
        4,
        capsys,
    )
    assert "is not an entry key of gov.example/ct" in err
    _ok(["roster", "sign", str(roster), "--key", str(g2), "--key", str(g3)], capsys)
    v3 = loads_file(roster.read_text()).roster
    desk = v3.member("gov.example/desk")
    assert desk.revoked and all(k.valid_until_seq == 4 for k in desk.entry_keys)
    assert desk.tls_cert not in v3.pinned_certs()
    assert "REVOKED" in _ok(["roster", "show", str(roster)], capsys)
    assert "after version 2" in _ok(["roster", "publish", str(roster), str(plat)], capsys)


def test_key_only_directories_and_plaintext_need_saying(
    consortium: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    desk = consortium["desk"]
    err = _fails(["serve", str(desk)], 2, capsys)
    assert "is a key-only member directory" in err
    err = _fails(
        [
            "submit",
            "--key",
            str(desk / "keys" / "entry.pem"),
            "--origin",
            "gov.example/desk",
            "--to",
            "127.0.0.1:1",
            "--algo",
            "md5",
            "--hash",
            "ab" * 16,
        ],
        2,
        capsys,
    )
    assert "--to without a member directory has no TLS identity" in err
    err = _fails(["status", "--to", "127.0.0.1:1"], 2, capsys)
    assert "--insecure for a plaintext dev node" in err
    err = _fails(["serve", str(consortium["plat"])], 2, capsys)
    assert "no roster in " in err and "ccnode roster publish ROSTER DIR" in err
