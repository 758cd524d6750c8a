"""docs/operators.md's Prometheus files are the files Prometheus takes (issue 15 item 23)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml")  # dev extra

ROOT = Path(__file__).resolve().parents[2]
RULE_KEYS = {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}


def prometheus_files() -> dict[str, str]:
    """Each YAML block that a line naming its file (`prometheus.yml`:) introduces."""
    text = (ROOT / "docs" / "operators.md").read_text()
    blocks = re.findall(r"^`([\w.-]+\.yml)`:\n\n```yaml\n(.*?)```", text, re.M | re.S)
    return dict(blocks)


def test_the_scrape_config_and_the_rules_are_separate_files() -> None:
    files = prometheus_files()
    assert set(files) == {"prometheus.yml", "ccnode-rules.yml"}
    config: dict[str, Any] = yaml.safe_load(files["prometheus.yml"])
    rules: dict[str, Any] = yaml.safe_load(files["ccnode-rules.yml"])
    assert set(config) == {"scrape_configs", "rule_files"}
    assert config["rule_files"] == ["ccnode-rules.yml"]
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "ccnode" and job["static_configs"][0]["targets"]
    # A rules file has groups and nothing else: promtool refuses other keys.
    assert set(rules) == {"groups"}
    (group,) = rules["groups"]
    assert set(group) == {"name", "rules"}
    names = [r["alert"] for r in group["rules"]]
    assert len(names) == len(set(names)) >= 7
    metrics = (ROOT / "node" / "metrics.py").read_text()
    for rule in group["rules"]:
        assert set(rule) <= RULE_KEYS and {"alert", "expr"} <= set(rule), rule
        for name in re.findall(r"\bccnode_\w+", rule["expr"]):
            assert name.removesuffix("_total") in metrics, (rule["alert"], name)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_both_files(tmp_path: Path) -> None:
    for name, text in prometheus_files().items():
        (tmp_path / name).write_text(text)
    for argv in (["check", "rules", "ccnode-rules.yml"], ["check", "config", "prometheus.yml"]):
        done = subprocess.run(
            ["promtool", *argv],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
