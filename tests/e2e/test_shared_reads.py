"""A sweep's pods share their Kubernetes reads (issue 17), and each bundle still holds its own pod's.

One DebugCapture over six goapp pods with debug-full: the namespace's Events are listed fewer
times than there are pods (without sharing, each pod's events step made its own field-selected
LIST, which the API server answers by scanning every Event of the namespace), and each bundle's
``k8s/events.yaml`` holds its own pod's scheduling Event and no other pod's, its ``k8s/pod.yaml``
its own pod, its ``k8s/node-conditions.yaml`` the node.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest
import yaml
from kopf.testing import KopfRunner
from kubernetes import client as k8s

from debugcap.bundle import layout
from debugcap.kube.client import Kube

from .conftest import GoappPod, Testbed, kubectl
from .test_operator import FAST, create, s3, wait_done

pytestmark = pytest.mark.filterwarnings("ignore:unclosed <ssl.SSLSocket:ResourceWarning")

PODS = [f"shared-{i}" for i in range(6)]


def event_lists(testbed: Testbed) -> float:
    """LISTs of namespaced Events the API server has answered so far (its /metrics)."""
    text = kubectl(testbed, "get", "--raw", "/metrics").stdout
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("apiserver_request_total{") and 'resource="events"' in line
               and 'verb="LIST"' in line and 'scope="namespace"' in line)


def test_sweep_lists_events_once_for_its_pods_and_each_bundle_keeps_its_own(
        operator: KopfRunner, kube: Kube, core: k8s.CoreV1Api, namespace: str, goapp_pod: GoappPod,
        testbed: Testbed, tmp_path: Path) -> None:
    for name in PODS:
        goapp_pod(name, labels={"sweep": "shared"})
    before = event_lists(testbed)
    create(kube, namespace, "sweep", {"target": {"selector": {"matchLabels": {"sweep": "shared"}}},
                                      "template": "debug-full", "parameters": FAST})
    status = wait_done(kube, namespace, "sweep", 180)["status"]
    lists = event_lists(testbed) - before
    assert status["phase"] == "Completed", status
    # One LIST per 5 s of sweep (kube.shared_reads): six pods at once share one or two.
    assert 1 <= lists < len(PODS) / 2, lists
    for pod in status["pods"]:
        name = pod["name"]
        dest = tmp_path / f"{name}.tar.gz"
        s3().get(key=pod["bundle"]["key"], dest=dest)
        with tarfile.open(dest, "r:gz") as tar:
            files = {m.name.split("/", 1)[1]: tar.extractfile(m).read()  # type: ignore[union-attr]
                     for m in tar.getmembers() if m.isfile()}
        events = yaml.safe_load(files[layout.K8S_EVENTS])["events"]
        assigned = [e["message"] for e in events if e["reason"] == "Scheduled"]
        assert assigned and all(f"{namespace}/{name} " in m for m in assigned), (name, events)
        others = [e for e in events for o in PODS if o != name and f"{namespace}/{o} " in (e["message"] or "")]
        assert others == [], (name, others)
        assert yaml.safe_load(files[layout.K8S_POD])["metadata"]["name"] == name
        assert yaml.safe_load(files[layout.K8S_NODE_CONDITIONS])["name"] == pod["node"]
