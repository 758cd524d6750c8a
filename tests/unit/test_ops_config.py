"""config.toml: every option validated with errors naming the key; env overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.cli import main
from node.config import NodeConfig, apply_env, load_config, with_overrides
from node.core.trust import MemberKind
from node.errors import ValidationError

BASE = 'id = "gov.example/ct"\nkind = "government"\njurisdiction = "NZ"\n'


def _write(tmp_path: Path, extra: str) -> Path:
    (tmp_path / "config.toml").write_text(BASE + extra)
    return tmp_path


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("listen = 7001\n", "option 'listen' must be a string 'host:port', got int 7001"),
        (
            'listen = "localhost"\n',
            "option 'listen' must be 'host:port' with a port 0..65535, got 'localhost'",
        ),
        (
            'listen = "127.0.0.1:70000"\n',
            "option 'listen' must be 'host:port' with a port 0..65535, got '127.0.0.1:70000'",
        ),
        (
            'metrics_listen = "9464"\n',
            "option 'metrics_listen' must be 'host:port' with a port 0..65535, got '9464'",
        ),
        ('log_json = "yes"\n', "option 'log_json' must be true or false, got str 'yes'"),
        (
            'log_level = "loud"\n',
            "option 'log_level' must be one of debug, info, warning, error, got str 'loud'",
        ),
        (
            "lmdb_map_size_mib = 0\n",
            "option 'lmdb_map_size_mib' must be an integer >= 1, got int 0",
        ),
        (
            "lmdb_map_max_mib = 1.5\n",
            "option 'lmdb_map_max_mib' must be an integer >= 0, got float 1.5",
        ),
        (
            "shutdown_grace_s = -1\n",
            "option 'shutdown_grace_s' must be a number of seconds >= 0, got int -1",
        ),
        (
            "withholding_after_s = true\n",
            "option 'withholding_after_s' must be a number of seconds >= 0, got bool True",
        ),
        ('roster_file = ""\n', "option 'roster_file' must be a non-empty string, got str ''"),
        ('insecure = "yes"\n', "option 'insecure' must be true or false, got str 'yes'"),
        (
            "roster_poll_s = -1\n",
            "option 'roster_poll_s' must be a number of seconds >= 0, got int -1",
        ),
        (
            'members_file = "members.toml"\n',
            "'members_file' is retired: membership now comes from a signed roster. Make this "
            "member's keys and card with `ccnode init NEWDIR ...`, have governance add the card "
            "(`ccnode roster add-member`), then `ccnode roster publish ROSTER NEWDIR`",
        ),
        (
            '[tlog]\nwitnesses = ["ngo.example"]\n',
            "'tlog.witnesses' is retired: the witnesses are the roster's members with the "
            "WITNESS role (`ccnode roster set-role FILE --id ID --roles ...,witness`); "
            "remove the option",
        ),
        (
            "[tlog]\nwitness_threshold = 2\n",
            "'tlog.witness_threshold' is retired: the roster's witness threshold settles "
            "entries (`ccnode roster set-role FILE --witness-threshold K`); remove the option",
        ),
        ("[tlog]\ncolour = 1\n", "unknown option tlog.colour"),
        ("colour = 1\n", "unknown option 'colour'"),
        ('[[peer]]\naddress = "127.0.0.1:1"\n', "peer #1 needs an 'id'"),
        ('[[peer]]\nid = "p.example"\n', "peer 'p.example' needs 'address' or 'address_file'"),
        (
            '[[peer]]\nid = "p.example"\naddress = "x"\nport = 1\n',
            "peer 'p.example': unknown option 'port'",
        ),
        (
            '[[peer]]\nid = "p.example"\naddress = "nohost"\n',
            "peer 'p.example': option 'address' must be 'host:port' with a port 0..65535, "
            "got 'nohost'",
        ),
    ],
)
def test_bad_options_name_the_key(tmp_path: Path, extra: str, message: str) -> None:
    _write(tmp_path, extra)
    with pytest.raises(ValidationError) as info:
        load_config(tmp_path)
    assert str(info.value) == f"{tmp_path / 'config.toml'}: {message}"


def test_bad_kind_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('id = "a.example"\nkind = "bank"\njurisdiction = "NZ"\n')
    with pytest.raises(ValidationError, match=r"config.toml: unknown member kind 'bank'"):
        load_config(tmp_path)


def test_every_option_round_trips(tmp_path: Path) -> None:
    config = NodeConfig(
        dir=tmp_path,
        id="gov.example/ct",
        kind=MemberKind.GOVERNMENT,
        jurisdiction="NZ",
        listen="127.0.0.1:7001",
        metrics_listen="127.0.0.1:9464",
        log_json=True,
        log_level="debug",
        lmdb_map_size_mib=64,
        lmdb_map_max_mib=1024,
        shutdown_grace_s=1.5,
        withholding_after_s=60.0,
        insecure=True,
        roster_poll_s=2.5,
    )
    config.save()
    text = (tmp_path / "config.toml").read_text()
    for name in ("metrics_listen", "log_json", "lmdb_map_max_mib", "insecure", "roster_file"):
        assert f"{name} = " in text  # the file an operator edits shows every option
    assert load_config(tmp_path) == config


def test_defaults_when_only_the_required_keys_are_given(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, ""))
    assert (config.listen, config.metrics_listen, config.log_json) == ("127.0.0.1:0", "", False)
    assert (config.lmdb_map_size_mib, config.lmdb_map_max_mib) == (16384, 0)


def test_environment_overrides_are_validated_and_never_saved(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, ""))
    env = {
        "CCNODE_LISTEN": "127.0.0.1:7009",
        "CCNODE_METRICS_LISTEN": "127.0.0.1:0",
        "CCNODE_LOG_JSON": "true",
        "CCNODE_LOG_LEVEL": "debug",
        "CCNODE_UNRELATED": "x",
    }
    got = apply_env(config, env)
    assert (got.listen, got.metrics_listen, got.log_json, got.log_level) == (
        "127.0.0.1:7009",
        "127.0.0.1:0",
        True,
        "debug",
    )
    assert apply_env(config, {"CCNODE_LOG_JSON": "0"}).log_json is False
    assert apply_env(config, {}) is config
    assert load_config(tmp_path) == config  # nothing written back


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"CCNODE_LISTEN": "nope"},
            "environment CCNODE_LISTEN: option 'listen' must be 'host:port' with a port "
            "0..65535, got 'nope'",
        ),
        ({"CCNODE_LOG_JSON": "maybe"}, "environment CCNODE_LOG_JSON: expected 1/0 or true/false"),
        (
            {"CCNODE_LOG_LEVEL": "chatty"},
            "environment CCNODE_LOG_LEVEL: option 'log_level' must be one of debug, info, "
            "warning, error, got str 'chatty'",
        ),
    ],
)
def test_bad_environment_names_the_variable(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    config = load_config(_write(tmp_path, ""))
    with pytest.raises(ValidationError) as info:
        apply_env(config, env)
    assert str(info.value).startswith(message)


def test_command_line_overrides(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, ""))
    assert with_overrides(config, metrics_listen="127.0.0.1:9").metrics_listen == "127.0.0.1:9"
    assert with_overrides(config, metrics_listen=None) is config
    with pytest.raises(ValidationError, match="command line: option 'metrics_listen'"):
        with_overrides(config, metrics_listen="9")


def test_check_config_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "n"
    assert main(["init", str(d), "--id", "ngo.example", "--kind", "ngo"]) == 0
    capsys.readouterr()
    assert main(["check-config", str(d)]) == 2  # no roster installed yet
    assert "no roster in" in capsys.readouterr().err
    d = tmp_path / "g"
    assert main(["init", str(d), "--id", "ngo.example", "--kind", "ngo", "--genesis"]) == 0
    capsys.readouterr()
    assert main(["check-config", str(d)]) == 0
    assert "config.toml: ok (ngo.example, listen 127.0.0.1:0, metrics off, http off, 0 peers)" in (
        capsys.readouterr().out
    )
    text = (d / "config.toml").read_text()
    (d / "config.toml").write_text(text.replace('log_level = "info"', "log_level = 3"))
    assert main(["check-config", str(d)]) == 2
    assert "option 'log_level' must be one of" in capsys.readouterr().err
