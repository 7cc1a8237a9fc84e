"""The namespaces the chart serves and the rights for template restrictions, rendered by helm.

Cases:
* by default: an explicit list ("default"): a Role and RoleBinding there, no namespaced rule in the
  ClusterRole, DEBUGCAP_OPERATOR_NAMESPACES=default; nothing in kube-system
* kube-system only when asked: a list naming it, or [] (every namespace), fails to render naming
  serveKubeSystem; with serveKubeSystem=true both render (the second with the cluster-wide role)
* the ClusterRole grants get namespaces (by name only: no list or watch), which template namespace
  selectors and the commands opt-in label need
* operator.commandNamespaces becomes DEBUGCAP_OPERATOR_COMMAND_NAMESPACES, which the operator reads back
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from debugcap.operator.config import DebugcapConfig
from testbed import builds

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "debugcap"
# Offline helm knows of no ValidatingAdmissionPolicy: the helm test's policy needs Kubernetes 1.30.
S3_VALUES = ("--set", "s3.endpoint=minio.example:9000", "--kube-version", "1.30.0")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def helm() -> Path:
    component = builds.component("helm")
    builds.build(component)
    return builds.binary("helm")


def run_helm(helm: Path, *values: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(helm), "template", "dc", str(CHART), "--namespace", "ops", *S3_VALUES, *values],
                          capture_output=True, text=True, timeout=60)


def render(helm: Path, *values: str) -> list[dict[str, Any]]:
    res = run_helm(helm, *values)
    assert res.returncode == 0, res.stderr
    return [d for d in yaml.safe_load_all(res.stdout) if d]


def operator_env(docs: list[dict[str, Any]]) -> dict[str, str]:
    [deploy] = [d for d in docs if d["kind"] == "Deployment"]
    return {e["name"]: e.get("value") for e in deploy["spec"]["template"]["spec"]["containers"][0]["env"]}


def operator_cluster_role(docs: list[dict[str, Any]]) -> dict[str, Any]:
    [role] = [d for d in docs if d["kind"] == "ClusterRole" and d["metadata"]["name"] == "dc-debugcap-cluster"]
    return role


def is_election_role(doc: dict[str, Any]) -> bool:
    """The leader election's Role and binding, in the release's namespace, not a served one's."""
    return str(doc["metadata"]["name"]).endswith("-leader-election") and doc["metadata"].get("namespace") == "ops"


def test_the_default_serves_an_explicit_list_without_kube_system(helm: Path) -> None:
    docs = render(helm)
    roles = {(d["kind"], d["metadata"].get("namespace")) for d in docs if d["kind"] in ("Role", "RoleBinding")
             and not is_election_role(d)}
    assert roles == {("Role", "default"), ("RoleBinding", "default")}
    assert not any(d["metadata"].get("namespace") == "kube-system" for d in docs)
    assert operator_env(docs)["DEBUGCAP_OPERATOR_NAMESPACES"] == "default"
    resources = {r for rule in operator_cluster_role(docs)["rules"] for r in rule["resources"]}
    assert not resources & {"pods", "pods/exec", "pods/portforward"}  # no namespaced right cluster-wide
    assert not any(d["kind"] == "ClusterRoleBinding" and "pods/exec" in str(d) for d in docs)
    assert DebugcapConfig.from_env(operator_env(docs)).namespaces == ("default",)


@pytest.mark.parametrize("values", [("--set", "namespaces={shop,kube-system}"), ("--set-json", "namespaces=[]")],
                         ids=["listed", "every-namespace"])
def test_kube_system_is_served_only_when_asked(helm: Path, values: tuple[str, str]) -> None:
    res = run_helm(helm, *values)
    assert res.returncode != 0
    assert "kube-system" in res.stderr and "serveKubeSystem=true" in res.stderr
    docs = render(helm, *values, "--set", "serveKubeSystem=true")
    if values[1].endswith("[]"):
        assert "DEBUGCAP_OPERATOR_NAMESPACES" not in operator_env(docs)
        assert any("pods/exec" in rule["resources"] for rule in operator_cluster_role(docs)["rules"])
    else:
        assert {d["metadata"]["namespace"] for d in docs if d["kind"] == "Role" and not is_election_role(d)} == \
            {"shop", "kube-system"}


def test_the_operator_may_get_namespaces_by_name_only(helm: Path) -> None:
    rules = operator_cluster_role(render(helm))["rules"]
    [rule] = [r for r in rules if "namespaces" in r["resources"]]
    assert rule == {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get"]}


def test_command_namespaces_reach_the_operator(helm: Path) -> None:
    assert "DEBUGCAP_OPERATOR_COMMAND_NAMESPACES" not in operator_env(render(helm))
    env = operator_env(render(helm, "--set", "operator.commandNamespaces={default,ops}"))
    assert env["DEBUGCAP_OPERATOR_COMMAND_NAMESPACES"] == "default,ops"
    assert DebugcapConfig.from_env(env).command_namespaces == ("default", "ops")
