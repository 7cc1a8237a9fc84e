"""Admin redaction patterns, against the testbed's API server, a goapp pod and MinIO (issue 16).

Cases:
* the operator's DEBUGCAP_OPERATOR_REDACTION_PATTERNS (a file, as the chart mounts its ConfigMap)
  and a DebugCaptureTemplate's spec.redaction.patterns: a goapp pod whose log and environment
  carry the company's tokens (formats no built-in detector knows) is captured through that
  template; the bundle fetched from MinIO holds neither token in any member (profiles
  decompressed too), and its manifest records custom:<name> for each, never the value
* a template whose pattern RE2 refuses is invalid in its status, and a capture of it Fails at
  once, the message naming the template, the pattern and the fix
* a template pattern named like one of the operator's setting with another regex: the template is
  invalid and its capture Fails at once, naming both sources (not the regexes)
* a collector message quoting a pod's answer (HTTP 500 with a body) has the template's pattern
  masked in the status, the Events and the manifest
* a template whose namespaceSelector has a label value Kubernetes would reject is invalid, and its
  capture Fails naming the template and the field (issue 16's left-over)
"""

from __future__ import annotations

import gzip
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kopf.testing import KopfRunner

from debugcap.kube.client import Kube

from .conftest import GoappPod
from .test_capture import members
from .test_go_diagnostics import _fetch
from .test_operator import GROUP, VERSION, wait_done, wait_for
from .test_operator import create as create_capture

pytestmark = pytest.mark.filterwarnings("ignore:unclosed <ssl.SSLSocket:ResourceWarning")

TEMPLATES = "debugcapturetemplates"
# The template's format: acme_ and 32 alphanumerics; the operator's: acmetenant- and 24 hex digits.
TOKEN = "acme_" + uuid.uuid4().hex[:16] + "Zq7KpW3xMv9TnB2c"
TENANT = "acmetenant-" + uuid.uuid4().hex[:24]
TEMPLATE_PATTERN = {"name": "acme-token", "regex": "acme_[A-Za-z0-9]{32}"}
OPERATOR_PATTERN = {"name": "acme-tenant", "regex": "acmetenant-[0-9a-f]{24}"}


@pytest.fixture
def operator_patterns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The operator's setting, set before the operator fixture starts it (it is read at start-up)."""
    path = tmp_path / "redaction" / "patterns.yaml"
    path.parent.mkdir()
    path.write_text(json.dumps({"patterns": [OPERATOR_PATTERN]}))
    monkeypatch.setenv("DEBUGCAP_OPERATOR_REDACTION_PATTERNS", str(path))


@pytest.fixture
def make_template(kube: Kube) -> Iterator[Callable[..., str]]:
    made: list[str] = []

    def make(spec: dict[str, Any], *, valid: bool = True) -> str:
        name = f"e2e-{uuid.uuid4().hex[:8]}"
        kube.custom().create_cluster_custom_object(GROUP, VERSION, TEMPLATES, {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "DebugCaptureTemplate", "metadata": {"name": name},
            "spec": spec})
        made.append(name)
        wait_for(lambda: (kube.custom().get_cluster_custom_object(GROUP, VERSION, TEMPLATES, name).get("status")
                          or {}).get("valid") is valid, 20, "the template check")
        return name

    yield make
    for name in made:
        kube.custom().delete_cluster_custom_object(GROUP, VERSION, TEMPLATES, name)


def test_the_company_tokens_are_masked_in_the_bundle_and_recorded_by_kind(
        operator_patterns: None, operator: KopfRunner, kube: Kube, namespace: str, goapp_pod: GoappPod,
        tmp_path: Path, make_template: Callable[..., str]) -> None:
    # The log line and the variable say nothing a built-in detector reads as a secret.
    goapp_pod("acme", command=["/bin/sh", "-c", f"echo 'tenant {TENANT} signed in with {TOKEN}'; exec /goapp"],
              env={"APP_TENANT_REF": TENANT, "APP_UPSTREAM": TOKEN})
    name = make_template({"redaction": {"patterns": [TEMPLATE_PATTERN]},
                          "steps": [{"collector": "pod-yaml"}, {"collector": "logs"}, {"collector": "environment"},
                                    {"collector": "pprof-heap"}]})
    create_capture(kube, namespace, "acme", {"target": {"pod": "acme"}, "template": name})
    status = wait_done(kube, namespace, "acme", 120)["status"]
    assert status["phase"] == "Completed", status
    [pod] = status["pods"]
    got = members(_fetch(pod, tmp_path))
    haystacks = {**got, **{p + " (decompressed)": gzip.decompress(d) for p, d in got.items() if p.endswith(".gz")}}
    for needle in (TOKEN, TENANT):
        leaks = [path for path, data in haystacks.items() if needle.encode() in data]
        assert not leaks, f"{needle!r} reached {leaks}"
    assert TOKEN not in json.dumps(status) and TENANT not in json.dumps(status)
    log = next(data for path, data in got.items() if path.startswith("logs/")).decode()
    assert "tenant ***REDACTED*** signed in with ***REDACTED***" in log
    manifest = json.loads(got["manifest.json"])
    kinds = {(r["file"].split("/")[0], r["redactor"]) for r in manifest["redactions"]}
    # (The environment's allowlist masks APP_UPSTREAM's random-looking value itself: high-entropy.)
    assert {("logs", "custom:acme-token"), ("logs", "custom:acme-tenant"), ("env", "custom:acme-tenant"),
            ("k8s", "custom:acme-token"), ("k8s", "custom:acme-tenant")} <= kinds, kinds


def test_a_template_with_a_pattern_re2_refuses_is_invalid_and_its_capture_fails(
        operator: KopfRunner, kube: Kube, namespace: str, goapp_pod: GoappPod,
        make_template: Callable[..., str]) -> None:
    goapp_pod("plain")
    name = make_template({"redaction": {"patterns": [{"name": "acme-token", "regex": "acme_(?=[A-Za-z0-9]{32})"}]},
                          "steps": [{"collector": "pod-yaml"}]}, valid=False)
    template_status = kube.custom().get_cluster_custom_object(GROUP, VERSION, TEMPLATES, name)["status"]
    assert f"DebugCaptureTemplate {name} spec.redaction.patterns[0]" in template_status["message"]
    create_capture(kube, namespace, "refused", {"target": {"pod": "plain"}, "template": name})
    status = wait_done(kube, namespace, "refused", 60)["status"]
    assert status["phase"] == "Failed", status
    message = status["message"]
    assert f"DebugCaptureTemplate {name} spec.redaction.patterns[0]" in message and '"acme-token"' in message
    assert "look-around" in message and f"kubectl edit debugcapturetemplate {name}" in message
    assert not status.get("pods")


def test_a_template_whose_namespace_selector_kubernetes_would_reject_is_invalid_and_refuses_captures(
        operator: KopfRunner, kube: Kube, namespace: str, goapp_pod: GoappPod,
        make_template: Callable[..., str]) -> None:
    # The CRD's schema takes any string here; the operator checks what Kubernetes' selectors accept.
    goapp_pod("plain")
    name = make_template({"namespaceSelector": {"matchLabels": {"team": "payments and billing"}},
                          "steps": [{"collector": "pod-yaml"}]}, valid=False)
    template_status = kube.custom().get_cluster_custom_object(GROUP, VERSION, TEMPLATES, name)["status"]
    assert f'DebugCaptureTemplate {name} spec.namespaceSelector.matchLabels["team"]' in template_status["message"]
    create_capture(kube, namespace, "refused", {"target": {"pod": "plain"}, "template": name})
    status = wait_done(kube, namespace, "refused", 60)["status"]
    assert status["phase"] == "Failed", status
    assert "is not a label value" in status["message"] and f"DebugCaptureTemplate {name}" in status["message"]


def test_a_template_pattern_named_like_the_operators_with_another_regex_is_invalid_and_refused(
        operator_patterns: None, operator: KopfRunner, kube: Kube, namespace: str, goapp_pod: GoappPod,
        make_template: Callable[..., str]) -> None:
    # Both would apply to every capture: the template shows it, rather than each capture failing.
    goapp_pod("plain")
    weaker = {"name": OPERATOR_PATTERN["name"], "regex": "acmetenant-[0-9a-f]{4}"}
    name = make_template({"redaction": {"patterns": [weaker]}, "steps": [{"collector": "pod-yaml"}]}, valid=False)
    message = kube.custom().get_cluster_custom_object(GROUP, VERSION, TEMPLATES, name)["status"]["message"]
    assert f'DebugCaptureTemplate {name} spec.redaction.patterns[0] ("acme-tenant")' in message
    assert "DEBUGCAP_OPERATOR_REDACTION_PATTERNS" in message and "[0-9a-f]" not in message
    create_capture(kube, namespace, "clash", {"target": {"pod": "plain"}, "template": name})
    status = wait_done(kube, namespace, "clash", 60)["status"]
    assert status["phase"] == "Failed" and "DEBUGCAP_OPERATOR_REDACTION_PATTERNS" in status["message"], status
    assert not status.get("pods")


def test_a_collector_message_quoting_a_pods_answer_gets_the_patterns_in_manifest_status_and_events(
        operator: KopfRunner, kube: Kube, core: Any, namespace: str, goapp_pod: GoappPod, tmp_path: Path,
        make_template: Callable[..., str]) -> None:
    # GOAPP_HOSTILE=secret-error answers every pprof path with HTTP 500 and a body; its words
    # "profile store" stand in for a company token only the template's pattern knows.
    goapp_pod("store", env={"GOAPP_HOSTILE": "secret-error"})
    store_word = {"name": "store-word", "regex": "upstream profile (?P<secret>store)"}
    name = make_template({"redaction": {"patterns": [store_word]},
                          "steps": [{"collector": "pod-yaml"}, {"collector": "pprof-heap"}]})
    create_capture(kube, namespace, "store", {"target": {"pod": "store"}, "template": name})
    status = wait_done(kube, namespace, "store", 120)["status"]
    [pod] = status["pods"]
    heap = next(c for c in pod["collectors"] if c["name"] == "pprof-heap")
    assert heap["status"] == "failed" and "answered HTTP 500" in heap["message"], heap
    assert "upstream profile ***REDACTED***" in heap["message"], heap
    texts = [json.dumps(status)]
    deadline = time.monotonic() + 15  # the Events of the end come right after the phase
    while True:
        events = core.list_namespaced_event(namespace, field_selector="involvedObject.name=store").items
        if any(e.reason.startswith("Capture") and e.reason != "CaptureStarted" for e in events) \
                or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    texts += [e.message or "" for e in events]
    manifest = json.loads(members(_fetch(pod, tmp_path))["manifest.json"])
    texts.append(json.dumps(manifest["collectors"]))
    leaks = [t for t in texts if "profile store" in t]
    assert not leaks, leaks
