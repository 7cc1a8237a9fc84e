"""What the chart gives operators of the operator: probes, resources, a disruption budget, the
metrics Service and ServiceMonitor, and NOTES with the next commands; rendered by helm.

Cases:
* liveness and readiness probes ask kopf's /healthz on the container port the operator is told
  to serve it on (DEBUGCAP_OPERATOR_LIVENESS_PORT, read back by DebugcapConfig.from_env)
* resources: CPU and memory requested, memory limited to 384Mi (docs/performance.md's headroom)
* the PodDisruptionBudget: minAvailable 1 of the two replicas by default, over the operator's pods
  only; none with one replica unless maxUnavailable alone; neither set fails naming both
* metrics: no Service by default; metrics.service.enabled renders <fullname>-metrics on the
  metrics port; serviceMonitor.enabled renders it with a ServiceMonitor that selects only it, on
  its named port, with the user's labels; with metrics.port 0 both fail, naming metrics.port
* NOTES: how to check the operator, create/get/describe a capture in a served namespace, where
  bundles go and how to fetch and read them, and to apply the CRDs before an upgrade
* 0.2.0's values.yaml (helm upgrade --reuse-values) renders: the new values read as off or defaults
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from debugcap.operator.config import DebugcapConfig

from .test_chart_alert_webhook import render_notes
from .test_chart_namespaces import CHART, operator_env, render, run_helm

# Chart 0.2.0, the version before values.schema.json (tests/e2e/test_chart_upgrade.py installs it).
PREVIOUS_VALUES = Path(__file__).resolve().parents[2] / "fixtures" / "chart-0.2.0" / "values.yaml"

# helm is a Go program, built once (minutes) when the testbed has not built it yet.
pytestmark = pytest.mark.slow


def one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    [doc] = [d for d in docs if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    return doc


def container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    c: dict[str, Any] = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    return c


def pod_labels(docs: list[dict[str, Any]]) -> dict[str, str]:
    labels: dict[str, str] = one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    return labels


@pytest.mark.parametrize("port", [8080, 8181])
def test_liveness_and_readiness_ask_kopfs_healthz_where_the_operator_serves_it(helm: Path, port: int) -> None:
    docs = render(helm, "--set", f"liveness.port={port}", "--set", "readiness.periodSeconds=7")
    c = container(docs)
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    served = DebugcapConfig.from_env({k: v for k, v in operator_env(docs).items() if v is not None}).liveness_port
    assert served == port
    for probe in (c["livenessProbe"], c["readinessProbe"]):
        assert probe["httpGet"]["path"] == "/healthz"
        assert ports[probe["httpGet"]["port"]] == served
    assert c["readinessProbe"]["periodSeconds"] == 7
    assert c["livenessProbe"]["failureThreshold"] == 3


def test_resources_are_requested_and_memory_limited(helm: Path) -> None:
    resources = container(render(helm))["resources"]
    assert resources["limits"]["memory"] == "384Mi"
    assert set(resources["requests"]) == {"cpu", "memory"}


def test_the_disruption_budget_keeps_one_of_the_two_replicas_and_covers_only_the_operator(helm: Path) -> None:
    docs = render(helm)
    pdb = one(docs, "PodDisruptionBudget")
    assert one(docs, "Deployment")["spec"]["replicas"] == 2
    assert pdb["apiVersion"] == "policy/v1" and pdb["metadata"]["namespace"] == "ops"
    assert pdb["spec"]["minAvailable"] == 1 and "maxUnavailable" not in pdb["spec"]
    # One replica: a minAvailable budget would block every drain, so none; maxUnavailable alone renders.
    assert not [d for d in render(helm, "--set", "replicaCount=1") if d["kind"] == "PodDisruptionBudget"]
    single = one(render(helm, "--set", "replicaCount=1", "--set", "podDisruptionBudget.minAvailable=null",
                        "--set", "podDisruptionBudget.maxUnavailable=1"), "PodDisruptionBudget")
    assert single["spec"]["maxUnavailable"] == 1
    assert not [d for d in render(helm, "--set", "podDisruptionBudget.enabled=false")
                if d["kind"] == "PodDisruptionBudget"]
    assert pdb["spec"]["selector"]["matchLabels"] == one(docs, "Deployment")["spec"]["selector"]["matchLabels"]
    assert pdb["spec"]["selector"]["matchLabels"]["app.kubernetes.io/instance"] == "dc"

    on = ("--set", "podDisruptionBudget.minAvailable=null")
    pinned = one(render(helm, *on, "--set", "podDisruptionBudget.maxUnavailable=1"), "PodDisruptionBudget")
    assert pinned["spec"] == {"maxUnavailable": 1, "selector": pdb["spec"]["selector"]}
    res = run_helm(helm, *on, "--set", "podDisruptionBudget.maxUnavailable=null")
    assert res.returncode != 0 and "podDisruptionBudget: set minAvailable or maxUnavailable" in res.stderr


def test_no_metrics_service_or_monitor_by_default(helm: Path) -> None:
    kinds = {d["kind"] for d in render(helm)}
    assert "Service" not in kinds and "ServiceMonitor" not in kinds


def test_the_metrics_service_serves_the_metrics_port_of_the_operators_pod(helm: Path) -> None:
    docs = render(helm, "--set", "metrics.service.enabled=true", "--set", "metrics.port=9191")
    service = one(docs, "Service", "dc-debugcap-metrics")
    assert service["spec"]["type"] == "ClusterIP" and service["metadata"]["namespace"] == "ops"
    [port] = service["spec"]["ports"]
    ports = {p["name"]: p["containerPort"] for p in container(docs)["ports"]}
    assert port["port"] == 9191 and ports[port["targetPort"]] == 9191
    assert DebugcapConfig.from_env({k: v for k, v in operator_env(docs).items() if v is not None}).metrics_port == 9191
    assert service["spec"]["selector"].items() <= pod_labels(docs).items()
    assert not [d for d in docs if d["kind"] == "ServiceMonitor"]


def test_the_service_monitor_scrapes_that_service_alone(helm: Path) -> None:
    docs = render(helm, "--set", "metrics.serviceMonitor.enabled=true",
                  "--set", "metrics.serviceMonitor.labels.release=kube-prometheus-stack",
                  "--set", "metrics.serviceMonitor.interval=1m")
    service = one(docs, "Service", "dc-debugcap-metrics")
    monitor = one(docs, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["ops"]}
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    # Only the metrics Service: the Alertmanager receiver's carries the same instance labels.
    alerts = one(render(helm, "--set", "metrics.serviceMonitor.enabled=true", "--set", "alertWebhook.enabled=true",
                        "--set", "alertWebhook.token.secretName=am"), "Service", "dc-debugcap-alerts")
    assert not monitor["spec"]["selector"]["matchLabels"].items() <= alerts["metadata"]["labels"].items()
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["port"] == service["spec"]["ports"][0]["name"] and endpoint["path"] == "/metrics"
    assert (endpoint["interval"], endpoint["scrapeTimeout"]) == ("1m", "10s")


@pytest.mark.parametrize("enable", ["metrics.service.enabled", "metrics.serviceMonitor.enabled"])
def test_a_metrics_service_without_the_metrics_endpoint_is_refused(helm: Path, enable: str) -> None:
    res = run_helm(helm, "--set", f"{enable}=true", "--set", "metrics.port=0")
    assert res.returncode != 0 and "set metrics.port" in res.stderr


def test_notes_give_the_next_commands(helm: Path, tmp_path: Path) -> None:
    notes = render_notes(helm, tmp_path, "--set", "namespaces={shop,web}")
    for line in ["kubectl -n ops rollout status deployment/dc-debugcap",
                 "kubectl debugcap create pod/<pod> -n shop -t go-profile --wait --download",
                 "kubectl get dcap -n shop", "kubectl debugcap describe <capture> -n shop",
                 "s3://debugcap/debugcap/", "kubectl debugcap download <capture> -n shop",
                 "ClusterRole dc-debugcap-download", "kubectl debugcap verify", "kubectl debugcap report",
                 "kubectl apply --server-side --force-conflicts -f <chart>/crds/"]:
        assert line in notes, line
    assert "shop, web" in notes
    everywhere = render_notes(helm, tmp_path / "all", "--set-json", "namespaces=[]", "--set", "serveKubeSystem=true",
                              "--set", "operator.presignedDownloads=false")
    assert "every namespace" in everywhere and "-n <namespace>" in everywhere
    assert "presigned URLs\nare off" in everywhere and "ClusterRole" not in everywhere


def test_values_of_the_previous_chart_version_render(helm: Path, tmp_path: Path) -> None:
    """``helm upgrade --reuse-values`` from 0.2.0 renders this chart with 0.2.0's values.yaml
    (Helm keeps the old chart's defaults): values added since are missing, and the templates read
    them as off, or as values.yaml's numbers."""
    chart = tmp_path / "debugcap"
    shutil.copytree(CHART, chart, ignore=shutil.ignore_patterns("crds"))
    old = PREVIOUS_VALUES.read_text()
    assert "readiness" not in old and "podDisruptionBudget" not in old
    (chart / "values.yaml").write_text(old)
    res = subprocess.run([str(helm), "template", "dc", str(chart), "--namespace", "ops",
                          "--set", "s3.endpoint=minio.example:9000", "--kube-version", "1.30.0"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    docs = [d for d in yaml.safe_load_all(res.stdout) if d]
    assert not [d for d in docs if d["kind"] in ("PodDisruptionBudget", "ServiceMonitor", "Service")]
    probe = container(docs)["readinessProbe"]
    assert (probe["initialDelaySeconds"], probe["periodSeconds"], probe["timeoutSeconds"],
            probe["failureThreshold"]) == (5, 10, 5, 3)
    assert probe == container(render(helm))["readinessProbe"]
