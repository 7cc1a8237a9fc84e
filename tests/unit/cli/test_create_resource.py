"""`kubectl debugcap create` without --local: the DebugCapture it builds, checked without a cluster."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import click
import pytest
import yaml
from click.testing import CliRunner

from debugcap.kubectl_plugin import debugcaptures
from debugcap.kubectl_plugin.cli import cli
from debugcap.kubectl_plugin.options import KubeFlags


@pytest.mark.parametrize(("target", "spec"), [
    ("pod/api-1", {"pod": "api-1"}),
    ("api-1", {"pod": "api-1"}),
    ("deploy/api", {"workload": {"kind": "Deployment", "name": "api"}}),
    ("statefulset/db", {"workload": {"kind": "StatefulSet", "name": "db"}}),
    ("ds/agent", {"workload": {"kind": "DaemonSet", "name": "agent"}}),
])
def test_target_forms(target: str, spec: dict[str, object]) -> None:
    assert debugcaptures.target_spec(target, None)[0] == spec


def test_selector_becomes_match_labels_and_only_equality_is_accepted() -> None:
    assert debugcaptures.target_spec(None, "app=api, tier=web")[0] == {
        "selector": {"matchLabels": {"app": "api", "tier": "web"}}}
    assert debugcaptures.target_spec(None, "app.kubernetes.io/name==api")[0] == {
        "selector": {"matchLabels": {"app.kubernetes.io/name": "api"}}}
    for bad in ("app!=api", "app in (a,b)", "=api", "app=a b"):
        with pytest.raises(click.BadParameter, match="equality"):
            debugcaptures.target_spec(None, bad)
    with pytest.raises(click.UsageError, match="exactly one target"):
        debugcaptures.target_spec("pod/x", "app=api")
    with pytest.raises(click.BadParameter, match="deployment"):
        debugcaptures.target_spec("service/api", None)


def test_parameters_map_template_names_to_the_crd_and_refuse_the_rest() -> None:
    assert debugcaptures.parameters({"cpu_seconds": "10", "intervalSeconds": "5"}, 7070, 20, 600) == {
        "cpuSeconds": 10, "intervalSeconds": 5, "pprofPort": 7070, "timeoutSeconds": 20, "deadlineSeconds": 600}
    with pytest.raises(click.BadParameter, match="not a DebugCapture parameter"):
        debugcaptures.parameters({"command": "rm -rf /"}, None, None)
    with pytest.raises(click.BadParameter, match="whole number"):
        debugcaptures.parameters({"cpu_seconds": "ten"}, None, None)


def test_generated_names_are_valid_kubernetes_names() -> None:
    name = debugcaptures.capture_name("A_Very/Long.Pod.Name" * 5, "debug-full",
                                      datetime(2026, 11, 23, 16, 0, tzinfo=UTC))
    assert len(name) <= 63 and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name)
    assert name.endswith("-20261123160000")


def test_output_yaml_prints_the_resource_without_any_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", "/nonexistent/kubeconfig")
    res = CliRunner().invoke(cli, ["create", "pod/api-1", "-t", "go-leak", "-n", "prod", "-p", "snapshots=4",
                                   "--ttl", "7d", "--name", "leak-1", "--dry-run=client", "-o", "yaml"])
    assert res.exit_code == 0, res.output
    assert yaml.safe_load(res.output) == {
        "apiVersion": "debugcap.io/v1alpha1", "kind": "DebugCapture",
        "metadata": {"name": "leak-1", "namespace": "prod"},
        "spec": {"target": {"pod": "api-1"}, "template": "go-leak", "parameters": {"snapshots": 4}, "ttl": "7d"}}



def test_engine_flags_become_spec_parameters_and_container_the_target_container(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", "/nonexistent/kubeconfig")
    res = CliRunner().invoke(cli, ["create", "pod/api-1", "-n", "prod", "--name", "c-1", "-c", "app",
                                   "--pprof-port", "7070", "--timeout", "20", "--deadline", "600", "--dry-run=client",
                                   "-o", "json"])
    assert res.exit_code == 0, res.output
    spec = json.loads(res.stdout)["spec"]
    assert spec["target"] == {"pod": "api-1", "container": "app"}
    assert spec["parameters"] == {"pprofPort": 7070, "timeoutSeconds": 20, "deadlineSeconds": 600}


def test_printing_without_a_namespace_or_kubeconfig_uses_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", "/nonexistent/kubeconfig")
    res = CliRunner().invoke(cli, ["create", "pod/api-1", "--name", "c-1", "--dry-run=client", "-o", "yaml"])
    assert res.exit_code == 0, res.output
    assert yaml.safe_load(res.stdout)["metadata"] == {"name": "c-1", "namespace": "default"}
    res = CliRunner().invoke(cli, ["create", "pod/api-1", "--name", "c-1", "--dry-run=client"])
    assert res.stdout == "debugcapture.debugcap.io/c-1 created (dry run)\n"  # as kubectl says it


def test_output_prints_the_capture_created_as_kubectl_create_does(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[Any] = []

    class Api:
        default_namespace = "team"

        def post_json(self, path: str, body: Any) -> Any:
            made.append(path)
            return {**body, "metadata": {**body["metadata"], "uid": "u-1"}}

        def close(self) -> None:
            pass

    monkeypatch.setattr(KubeFlags, "load", lambda self: Api())
    res = CliRunner().invoke(cli, ["create", "pod/api-1", "--name", "c-1", "-o", "yaml"])
    assert res.exit_code == 0, res.output
    assert made == ["/apis/debugcap.io/v1alpha1/namespaces/team/debugcaptures"]
    assert yaml.safe_load(res.stdout)["metadata"] == {"name": "c-1", "namespace": "team", "uid": "u-1"}
    res = CliRunner().invoke(cli, ["create", "pod/api-1", "--name", "c-2", "-o", "name"])
    assert res.stdout == "debugcapture.debugcap.io/c-2\n" and len(made) == 2
