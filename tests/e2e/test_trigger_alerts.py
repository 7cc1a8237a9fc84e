"""Alertmanager fires a DebugTrigger, end to end: the testbed's real Alertmanager, a real operator
serving the webhook on the testbed's port with the testbed's token, a goapp pod, MinIO.

One test, because the operator, the trigger and the pods are the expensive part:
* refused first, and nothing captured: a wrong token (401), a malformed body (400), 10 MB of JSON
  (413), an alert naming a pod of the same name in another namespace than the trigger's, and one
  naming a pod of the namespace the trigger does not target (both 422, the message says why);
* then HighHeap naming the targeted pod is POSTed to Alertmanager's API: Alertmanager notifies the
  receiver with its bearer token and exactly one DebugCapture is fired, labelled with the trigger
  and the alert reason, and completes; Alertmanager's repeat notifications are suppressed by the
  trigger's cooldown (seen in the receiver's counter) and still one capture exists.
Each request is counted under its outcome in ``debugcap_alert_webhook_requests_total``.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kopf.testing import KopfRunner
from kubernetes import client as k8s
from prometheus_client import REGISTRY

from debugcap.kube.client import Kube

from .conftest import GoappPod, Testbed, collect_runner_leftovers, strip_finalizers

GROUP, VERSION = "debugcap.io", "v1alpha1"
TERMINAL = {"Completed", "PartiallyFailed", "Failed"}
TRIGGER = "heap-alert"
ALERT = "HighHeap"
pytestmark = pytest.mark.filterwarnings("ignore:unclosed <ssl.SSLSocket:ResourceWarning")


def wait_for(ok: Callable[[], Any], seconds: float, what: str, every: float = 0.5) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        got = ok()
        if got:
            return got
        time.sleep(every)
    raise AssertionError(f"timed out after {seconds}s waiting for {what}")


def requests_counted(outcome: str) -> float:
    return REGISTRY.get_sample_value("debugcap_alert_webhook_requests_total", {"outcome": outcome}) or 0.0


class Receiver:
    """The operator's webhook on the testbed's port, and the testbed's Alertmanager."""

    def __init__(self, testbed: Testbed) -> None:
        self.url = f"http://127.0.0.1:{testbed.env['DEBUGCAP_TESTBED_ALERT_WEBHOOK_PORT']}/alerts"
        self.token = Path(testbed.env["DEBUGCAP_TESTBED_ALERT_TOKEN_FILE"]).read_text().strip()
        self.alertmanager = testbed.env["ALERTMANAGER_URL"]

    def post(self, body: bytes, token: str | None = None) -> tuple[int, dict[str, Any], dict[str, str]]:
        req = urllib.request.Request(self.url, data=body, method="POST", headers={
            "Content-Type": "application/json", "Authorization": f"Bearer {token or self.token}"})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, json.load(resp), dict(resp.headers)
        except urllib.error.HTTPError as err:
            with err:
                return err.code, json.load(err), dict(err.headers)

    def listening(self) -> bool:
        try:
            return self.post(b"{}", token="not-the-token")[0] == 401
        except (urllib.error.URLError, OSError):
            return False

    def alert(self, labels: dict[str, str], ends_in: timedelta) -> None:
        """POST one alert to Alertmanager's API (what Prometheus does); ``ends_in`` <= 0 resolves it."""
        now = datetime.now(UTC)
        body = json.dumps([{"labels": labels, "annotations": {"summary": "heap over 80% of the limit"},
                            "startsAt": (now - timedelta(seconds=1)).isoformat(),
                            "endsAt": (now + ends_in).isoformat(),
                            "generatorURL": "http://prometheus.example/graph"}]).encode()
        req = urllib.request.Request(f"{self.alertmanager}/api/v2/alerts", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 200


def v4(*alerts: dict[str, str]) -> bytes:
    """A webhook payload as Alertmanager sends it, with one firing alert per label set."""
    return json.dumps({
        "version": "4", "groupKey": "{}:{alertname=\"HighHeap\"}", "truncatedAlerts": 0, "status": "firing",
        "receiver": "debugcap-operator", "groupLabels": {"alertname": ALERT}, "commonLabels": {},
        "commonAnnotations": {}, "externalURL": "http://alertmanager.example",
        "alerts": [{"status": "firing", "labels": labels, "annotations": {}, "startsAt": "2026-12-04T21:00:00Z",
                    "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "", "fingerprint": f"{i:016x}"}
                   for i, labels in enumerate(alerts)]}).encode()


@pytest.fixture
def alert_operator(crds: None, operator_env: None, testbed: Testbed, kube: Kube, namespace: str,
                   monkeypatch: pytest.MonkeyPatch) -> Iterator[KopfRunner]:
    """The operator of this test's namespace with the Alertmanager receiver on the testbed's port."""
    monkeypatch.setenv("DEBUGCAP_OPERATOR_ALERT_WEBHOOK_PORT", testbed.env["DEBUGCAP_TESTBED_ALERT_WEBHOOK_PORT"])
    monkeypatch.setenv("DEBUGCAP_OPERATOR_ALERT_WEBHOOK_TOKEN_FILE", testbed.env["DEBUGCAP_TESTBED_ALERT_TOKEN_FILE"])
    # The operator runs on the node, which routes to pod IPs: the capture goes direct, as from a pod.
    monkeypatch.setenv("DEBUGCAP_OPERATOR_TRANSPORT", "direct")
    with KopfRunner(["run", "--standalone", "-n", namespace, "-m", "debugcap.operator.handlers"],
                    timeout=60) as runner:
        yield runner
    collect_runner_leftovers()
    strip_finalizers(kube, namespace)
    for item in kube.custom().list_namespaced_custom_object(GROUP, VERSION, namespace, "debugtriggers")["items"]:
        if item["metadata"].get("finalizers"):
            kube.custom().patch_namespaced_custom_object(
                GROUP, VERSION, namespace, "debugtriggers", item["metadata"]["name"],
                {"metadata": {"finalizers": None}}, _content_type="application/merge-patch+json")
    assert runner.exception is None, runner.output
    assert "Traceback" not in runner.output, runner.output
    assert Receiver(testbed).token not in runner.output


def captures(kube: Kube, namespace: str) -> list[dict[str, Any]]:
    return list(kube.custom().list_namespaced_custom_object(GROUP, VERSION, namespace, "debugcaptures")["items"])


def test_an_alertmanager_alert_fires_one_capture_and_bad_requests_fire_none(
        alert_operator: KopfRunner, testbed: Testbed, kube: Kube, core: k8s.CoreV1Api, namespace: str,
        goapp_pod: GoappPod) -> None:
    receiver = Receiver(testbed)
    target = goapp_pod("api-0", labels={"role": "api"}).metadata.name
    other = goapp_pod("worker-0", labels={"role": "worker"}).metadata.name
    kube.custom().create_namespaced_custom_object(GROUP, VERSION, namespace, "debugtriggers", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "DebugTrigger", "metadata": {"name": TRIGGER},
        "spec": {"target": {"selector": {"matchLabels": {"role": "api"}}}, "when": {"alert": {"name": ALERT}},
                 "cooldown": "15m", "maxCapturesPerHour": 6}})
    wait_for(receiver.listening, 60, f"the operator's Alertmanager receiver at {receiver.url}")
    counted = {o: requests_counted(o) for o in ("unauthorized", "malformed", "too_large", "refused", "fired")}

    status, body, headers = receiver.post(v4({"alertname": ALERT, "namespace": namespace, "pod": target}),
                                          token="wrong-token")
    assert (status, headers.get("WWW-Authenticate")) == (401, "Bearer"), body
    status, body, _ = receiver.post(b'{"version": "4", "alerts": [{"status": "firing", ')
    assert status == 400 and "not JSON" in body["error"], body
    padding = {"alertname": ALERT, "namespace": namespace, "pod": target, "blob": "x" * 10_000_000}
    status, body, _ = receiver.post(v4(padding))
    assert status == 413 and "over 1 MiB" in body["error"], body
    status, body, _ = receiver.post(v4({"alertname": ALERT, "namespace": "default", "pod": target}))
    assert status == 422, body
    assert body["alerts"][0]["outcome"] == "refused" and 'namespace "default"' in body["alerts"][0]["message"]
    status, body, _ = receiver.post(v4({"alertname": ALERT, "namespace": namespace, "pod": other}))
    assert status == 422, body
    assert other in body["alerts"][0]["message"] and TRIGGER in body["alerts"][0]["message"], body
    assert captures(kube, namespace) == []  # each answer came after its decision: nothing was fired
    assert {o: requests_counted(o) - n for o, n in counted.items()} == {
        "unauthorized": 1, "malformed": 1, "too_large": 1, "refused": 2, "fired": 0}

    labels = {"alertname": ALERT, "namespace": namespace, "pod": target, "severity": "warning"}
    receiver.alert(labels, ends_in=timedelta(minutes=10))
    try:
        (fired,) = wait_for(lambda: captures(kube, namespace), 60, "Alertmanager's notification to fire a capture")
        assert fired["metadata"]["labels"]["debugcap.io/trigger"] == TRIGGER
        assert fired["metadata"]["labels"]["debugcap.io/trigger-reason"] == "alert"
        assert fired["spec"]["target"]["pod"] == target and fired["spec"]["firing"]["reason"] == "alert"
        assert requests_counted("fired") - counted["fired"] == 1
        # Alertmanager sends the group again every repeat_interval (10 s on the testbed): the
        # cooldown suppresses it, and the count of captures stays one.
        suppressed = requests_counted("suppressed")
        wait_for(lambda: requests_counted("suppressed") > suppressed, 60, "Alertmanager's repeat notification")
        assert [c["metadata"]["name"] for c in captures(kube, namespace)] == [fired["metadata"]["name"]]
    finally:
        receiver.alert(labels, ends_in=timedelta(0))  # resolved: Alertmanager stops notifying
    done = wait_for(lambda: next((c for c in captures(kube, namespace)
                                  if (c.get("status") or {}).get("phase") in TERMINAL), None),
                    180, "the fired capture to end")
    assert done["status"]["phase"] == "Completed", done["status"]
    trigger = kube.custom().get_namespaced_custom_object(GROUP, VERSION, namespace, "debugtriggers", TRIGGER)
    assert [f["reason"] for f in trigger["status"]["firings"]] == ["alert"], trigger["status"]
