"""deploy/k8s/ against the Kubernetes schemas (kubernetes-validate, whose
schemas ship in its wheel: no network) and against the node's own rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from node.config import apply_env, load_config
from node.server import SERVICE_NAME

pytestmark = pytest.mark.integration
# In the dev extra (pyproject.toml), so CI always has it; a venv made before
# it was added says how to get it instead of failing every other test's run.
kubernetes_validate = pytest.importorskip(
    "kubernetes_validate", reason="the dev extra is not installed: pip install -e '.[dev]'"
)

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
#: The oldest Kubernetes the manifests are meant for: native gRPC probes
#: are GA from 1.27.
VERSIONS = ("1.27", kubernetes_validate.latest_version())


def _docs() -> list[dict[str, Any]]:
    out = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        out += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return out


def _by_kind() -> dict[tuple[str, str], dict[str, Any]]:
    return {(d["kind"], d["metadata"]["name"]): d for d in _docs()}


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_validates_strictly_against_the_schemas(version: str) -> None:
    docs = _docs()
    assert len(docs) == 7
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)


def test_kustomization_lists_every_manifest() -> None:
    listed = yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == sorted(
        p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml"
    )


def test_manifests_follow_the_nodes_rules(tmp_path: Path) -> None:
    k = _by_kind()
    member = k["StatefulSet", "ccnode-member"]["spec"]
    replicas = k["Deployment", "ccnode-replica"]["spec"]
    assert member["replicas"] == 1  # one signer per member, ever
    assert member["volumeClaimTemplates"][0]["spec"]["accessModes"] == ["ReadWriteOnce"]
    # The shared config.toml is a valid node config with a health port the probes use.
    config_map = k["ConfigMap", "ccnode-config"]["data"]
    (tmp_path / "config.toml").write_text(config_map["config.toml"])
    config = load_config(tmp_path)
    health_port = int(config.health_listen.rsplit(":", 1)[1])
    for spec in (member, replicas):
        pod = spec["template"]["spec"]
        (node,) = pod["containers"]
        assert pod["terminationGracePeriodSeconds"] > config.shutdown_grace_s + 5
        assert node["readinessProbe"]["grpc"] == {"port": health_port, "service": SERVICE_NAME}
        for probe in ("livenessProbe", "startupProbe"):
            assert node[probe]["grpc"] == {"port": health_port}
        assert set(node["resources"]) == {"requests", "limits"}
        assert spec["selector"]["matchLabels"].items() <= pod_labels(spec).items()
    # Replicas hold the TLS identity only, and follow the member's pod by its stable name.
    secret = replicas["template"]["spec"]["volumes"][2]["secret"]["secretName"]
    assert secret == "ccnode-replica-keys"
    replica = replicas["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in replica["env"]}
    assert env["CCNODE_REPLICA_OF"] == "ccnode-member-0.ccnode-member:7001"
    # The HTTP API listens where the container port and the Service send it.
    overridden = apply_env(config, env)
    http_port = int(overridden.http_listen.rsplit(":", 1)[1])
    ports = {p["name"]: p["containerPort"] for p in replica["ports"]}
    assert ports["http"] == http_port
    (http,) = k["Service", "ccnode-http"]["spec"]["ports"]
    assert http["targetPort"] == "http"
    assert k["Service", "ccnode-member"]["spec"]["clusterIP"] == "None"
    # Client-side balancing over the replicas; the PDB covers the same pods.
    headless = k["Service", "ccnode-replicas"]["spec"]
    assert headless["clusterIP"] == "None"
    assert headless["selector"] == replicas["selector"]["matchLabels"]
    assert k["Service", "ccnode-http"]["spec"]["selector"] == replicas["selector"]["matchLabels"]
    pdb = k["PodDisruptionBudget", "ccnode-replicas"]["spec"]
    assert pdb["selector"]["matchLabels"] == replicas["selector"]["matchLabels"]


def pod_labels(spec: dict[str, Any]) -> dict[str, str]:
    return dict(spec["template"]["metadata"]["labels"])


def test_the_validation_catches_a_misspelt_field() -> None:
    """The check can fail: strict schemas refuse a field Kubernetes does not know."""
    import copy

    doc = copy.deepcopy(_by_kind()["Deployment", "ccnode-replica"])
    probe = doc["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    probe["grpc"]["servcie"] = probe["grpc"].pop("service")
    with pytest.raises(kubernetes_validate.ValidationError) as bad:
        kubernetes_validate.validate(doc, VERSIONS[0], strict=True)
    assert "servcie" in str(bad.value)
