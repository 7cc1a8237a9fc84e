"""The chart's values for DebugTriggers and the Alertmanager webhook receiver, rendered by helm.

``helm template`` (the testbed's helm, built from its Go module once and cached) renders the chart
offline; the rendered environment is read back by ``DebugcapConfig.from_env``, so the chart and
the operator agree on every variable. Cases:
* by default: DEBUGCAP_OPERATOR_TRIGGERED_CAPTURES, and no receiver (no env, port, volume, Service)
* enabled with the user's token Secret: the receiver's env, its container port, the token's key
  mounted read-only as the file the env names, a ClusterIP Service on that port; no Secret made
* TLS: the kubernetes.io/tls Secret mounted read-only, cert and key env pointing into it
* token.create: the chart's Secret holds the token, which appears nowhere else (nor in NOTES)
* refusals: enabled without a token Secret, create without a value, a port clash, no triggered
  captures; each message names the value to set
* docs/alertmanager.md's URL is the one the chart's Service gives
"""

from __future__ import annotations

import base64
import shutil
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
WITH_SECRET = ("--set", "alertWebhook.enabled=true", "--set", "alertWebhook.token.secretName=am-token")

# helm is a Go program, built once (minutes) when the testbed has not built it yet.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def helm() -> Path:
    component = builds.component("helm")
    builds.build(component)  # nothing to do once the testbed built it
    return builds.binary("helm")


def run_helm(helm: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(helm), *args], capture_output=True, text=True, timeout=60)


def render(helm: Path, *values: str, release: str = "dc", namespace: str = "ops") -> list[dict[str, Any]]:
    res = run_helm(helm, "template", release, str(CHART), "--namespace", namespace, *S3_VALUES, *values)
    assert res.returncode == 0, res.stderr
    return [d for d in yaml.safe_load_all(res.stdout) if d]


def refusal(helm: Path, *values: str) -> str:
    res = run_helm(helm, "template", "dc", str(CHART), *S3_VALUES, *values)
    assert res.returncode != 0, "helm template should have failed"
    return res.stderr


def render_notes(helm: Path, tmp_path: Path, *values: str) -> str:
    """NOTES.txt as ``helm install`` prints it. helm template leaves the notes out and helm install
    needs a cluster even with --dry-run, so a copy of the chart (without its CRDs) renders them
    through ``tpl`` into a manifest of their own."""
    chart = tmp_path / "debugcap"
    shutil.copytree(CHART, chart, ignore=shutil.ignore_patterns("crds"))
    (chart / "templates" / "NOTES.txt").rename(chart / "notes.tpl")
    (chart / "templates" / "notes.yaml").write_text('notes: {{ tpl (.Files.Get "notes.tpl") . | toJson }}\n')
    res = run_helm(helm, "template", "dc", str(chart), "--namespace", "ops", *S3_VALUES, *values,
                   "--show-only", "templates/notes.yaml")
    assert res.returncode == 0, res.stderr
    notes: str = yaml.safe_load(res.stdout)["notes"]
    return notes


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    [doc] = [d for d in docs if d["kind"] == kind]
    return doc


def pod_spec(docs: list[dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = one(docs, "Deployment")["spec"]["template"]["spec"]
    return spec


def env_of(docs: list[dict[str, Any]]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in pod_spec(docs)["containers"][0]["env"] if "value" in e}


def config_of(docs: list[dict[str, Any]]) -> DebugcapConfig:
    """The operator's settings from the rendered env, as the pod would read them."""
    return DebugcapConfig.from_env(env_of(docs))


def mounted_file(docs: list[dict[str, Any]], path: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    """(volume, mount, key in the Secret) of the file ``path`` in the operator container."""
    spec = pod_spec(docs)
    volumes = {v["name"]: v for v in spec["volumes"]}
    for mount in spec["containers"][0]["volumeMounts"]:
        prefix = mount["mountPath"].rstrip("/") + "/"
        if path.startswith(prefix):
            volume = volumes[mount["name"]]
            [key] = [i["key"] for i in volume["secret"]["items"] if i["path"] == path[len(prefix):]]
            return volume, mount, key
    raise AssertionError(f"{path} is on no volume")


def test_by_default_triggered_captures_are_set_and_no_receiver_is_served(helm: Path) -> None:
    docs = render(helm)
    kinds = sorted(d["kind"] for d in docs)
    # No Service and no Secret: the receiver is off (the download policy's objects are another feature's).
    assert "Service" not in kinds and "Secret" not in kinds and "Deployment" in kinds
    env = env_of(docs)
    assert env["DEBUGCAP_OPERATOR_TRIGGERED_CAPTURES"] == "4"
    assert not any("ALERT" in name for name in env)
    config = config_of(docs)
    assert config.triggered_captures == 4 and config.alert_webhook_port == 0
    spec = pod_spec(docs)
    assert "alerts" not in {p["name"] for p in spec["containers"][0]["ports"]}
    assert {v["name"] for v in spec["volumes"]} == {"tmp", "spool"}
    assert config_of(render(helm, "--set", "operator.triggeredCaptures=2")).triggered_captures == 2


def test_enabled_with_a_token_secret_serves_the_receiver_on_its_port(helm: Path) -> None:
    docs = render(helm, *WITH_SECRET)
    config = config_of(docs)
    assert config.alert_webhook_port == 9093
    assert config.alert_webhook_tls_cert_file is None and config.alert_webhook_tls_key_file is None
    assert (config.alert_namespace_label, config.alert_pod_label) == ("namespace", "pod")
    assert config.alert_webhook_port not in (config.metrics_port, config.liveness_port)

    # The token: the Secret's key "token" alone, read-only, at the file the env names.
    assert config.alert_webhook_token_file is not None
    volume, mount, key = mounted_file(docs, str(config.alert_webhook_token_file))
    assert volume["secret"]["secretName"] == "am-token" and key == "token"
    assert len(volume["secret"]["items"]) == 1
    assert mount["readOnly"] is True

    container = pod_spec(docs)["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["alerts"] == 9093 and len(set(ports.values())) == len(ports)

    service = one(docs, "Service")
    assert service["metadata"]["name"] == "dc-debugcap-alerts" and service["metadata"]["namespace"] == "ops"
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"] == [{"name": "alerts", "port": 9093, "targetPort": "alerts", "protocol": "TCP",
                                         "appProtocol": "http"}]
    # It selects the operator's pod by labels the pod always has, and the leading replica's only
    # by the label the leader sets on its own pod (debugcap/operator/election.py).
    pod_labels = one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    selector = dict(service["spec"]["selector"])
    assert selector.pop("debugcap.io/leader") == "true"
    assert selector.items() <= pod_labels.items()
    assert selector == one(docs, "Deployment")["spec"]["selector"]["matchLabels"]
    # The user's Secret is the user's: the chart makes none and grants no right to read one.
    assert not [d for d in docs if d["kind"] == "Secret"]


def test_values_reach_the_operator(helm: Path) -> None:
    docs = render(helm, *WITH_SECRET, "--set", "alertWebhook.port=9443", "--set", "alertWebhook.token.key=bearer",
                  "--set", "alertWebhook.namespaceLabel=kubernetes_namespace",
                  "--set", "alertWebhook.podLabel=kubernetes_pod_name", "--set", "alertWebhook.service.type=NodePort",
                  "--set", "alertWebhook.service.annotations.team=sre", "--set", "operator.triggeredCaptures=8")
    config = config_of(docs)
    assert (config.alert_webhook_port, config.triggered_captures) == (9443, 8)
    assert (config.alert_namespace_label, config.alert_pod_label) == ("kubernetes_namespace", "kubernetes_pod_name")
    _volume, _mount, key = mounted_file(docs, str(config.alert_webhook_token_file))
    assert key == "bearer"
    assert {p["name"]: p["containerPort"] for p in pod_spec(docs)["containers"][0]["ports"]}["alerts"] == 9443
    service = one(docs, "Service")
    assert service["spec"]["type"] == "NodePort" and service["spec"]["ports"][0]["port"] == 9443
    assert service["metadata"]["annotations"] == {"team": "sre"}


def test_tls_mounts_the_certificate_and_key_read_only(helm: Path) -> None:
    docs = render(helm, *WITH_SECRET, "--set", "alertWebhook.tls.secretName=am-tls")
    config = config_of(docs)
    for path, key in ((config.alert_webhook_tls_cert_file, "tls.crt"), (config.alert_webhook_tls_key_file, "tls.key")):
        volume, mount, in_secret = mounted_file(docs, str(path))
        assert volume["secret"]["secretName"] == "am-tls" and in_secret == key and mount["readOnly"] is True
    assert one(docs, "Service")["spec"]["ports"][0]["appProtocol"] == "https"


def test_a_chart_created_token_is_only_in_its_secret(helm: Path, tmp_path: Path) -> None:
    token = "s3cr3t-T0ken-9f8e7d"
    values = ("--set", "alertWebhook.enabled=true", "--set", "alertWebhook.token.create=true",
              "--set", f"alertWebhook.token.value={token}")
    docs = render(helm, *values)
    secret = one(docs, "Secret")
    assert secret["metadata"]["name"] == "dc-debugcap-alert-token"
    assert base64.b64decode(secret["data"]["token"]).decode() == token
    volume, _mount, _key = mounted_file(docs, str(config_of(docs).alert_webhook_token_file))
    assert volume["secret"]["secretName"] == "dc-debugcap-alert-token"
    others = [d for d in docs if d is not secret]
    assert token not in yaml.safe_dump_all(others) and token not in yaml.safe_dump(secret["metadata"])
    named = render(helm, *values, "--set", "alertWebhook.token.secretName=mine")
    assert one(named, "Secret")["metadata"]["name"] == "mine"

    # The install notes give the URL and where the token is, not the token.
    notes = render_notes(helm, tmp_path, *values)
    assert "http://dc-debugcap-alerts.ops.svc:9093/alerts" in notes and "dc-debugcap-alert-token" in notes
    assert token not in notes and base64.b64encode(token.encode()).decode() not in notes


@pytest.mark.parametrize(("values", "names"), [
    (("--set", "alertWebhook.enabled=true"), ["alertWebhook.token.secretName", "alertWebhook.token.create"]),
    (("--set", "alertWebhook.enabled=true", "--set", "alertWebhook.token.create=true"),
     ["alertWebhook.token.value"]),
    ((*WITH_SECRET, "--set", "alertWebhook.port=9090"), ["alertWebhook.port", "metrics.port"]),
    ((*WITH_SECRET, "--set", "alertWebhook.port=8080"), ["alertWebhook.port", "liveness.port"]),
    ((*WITH_SECRET, "--set", "alertWebhook.port=0"), ["alertWebhook.port"]),
    ((*WITH_SECRET, "--set", "alertWebhook.token.key="), ["alertWebhook.token.key"]),
    (("--set", "operator.triggeredCaptures=0"), ["operator.triggeredCaptures"]),
])
def test_values_the_operator_would_refuse_fail_rendering_naming_the_value(helm: Path, values: tuple[str, ...],
                                                                          names: list[str]) -> None:
    message = refusal(helm, *values)
    for name in names:
        # The chart's own checks name it dotted; values.schema.json, which refuses some first, as a path.
        assert name in message or f"'/{name.replace('.', '/')}'" in message, message


def test_enabled_chart_passes_helm_lint(helm: Path) -> None:
    res = run_helm(helm, "lint", "--strict", str(CHART), *S3_VALUES, *WITH_SECRET,
                   "--set", "alertWebhook.tls.secretName=am-tls")
    assert res.returncode == 0, res.stdout + res.stderr


def test_the_url_in_the_docs_is_the_services(helm: Path) -> None:
    """docs/alertmanager.md installs the chart as release debugcap in namespace debugcap."""
    docs = render(helm, *WITH_SECRET, release="debugcap", namespace="debugcap")
    service = one(docs, "Service")
    url = (f"http://{service['metadata']['name']}.{service['metadata']['namespace']}.svc:"
           f"{service['spec']['ports'][0]['port']}/alerts")
    assert url == "http://debugcap-alerts.debugcap.svc:9093/alerts"
    assert url in (REPO / "docs" / "alertmanager.md").read_text()
