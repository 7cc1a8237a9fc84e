"""A sweep's pods share their Kubernetes reads (issue 17), and each bundle still holds its own pod's.

One DebugCapture over six goapp pods with debug-full (the in-process operator, its requests
counted): the namespace's Events are listed at most half as many times as there are pods (without
sharing, each pod's events step made its own field-selected LIST, which the API server answers by
scanning every Event of the namespace), and each bundle's ``k8s/events.yaml`` holds its own pod's
scheduling Event and no other pod's, its ``k8s/pod.yaml`` its own pod (a Pod, though read from a
list), its ``k8s/node-conditions.yaml`` the node.
"""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from kopf.testing import KopfRunner
from kubernetes import client as k8s

from debugcap.bundle import layout
from debugcap.kube.client import Kube

from .conftest import GoappPod
from .test_operator import FAST, create, s3, wait_done

pytestmark = pytest.mark.filterwarnings("ignore:unclosed <ssl.SSLSocket:ResourceWarning")

PODS = [f"shared-{i}" for i in range(6)]


def count_event_lists(monkeypatch: pytest.MonkeyPatch, namespace: str) -> list[tuple[tuple[str, str], ...]]:
    """The Events LISTs of ``namespace`` the in-process operator makes from now on (their queries)."""
    made: list[tuple[tuple[str, str], ...]] = []
    get_json = Kube.get_json

    def spy(self: Kube, path: str, query: Any = (), **kw: Any) -> Any:
        if path == f"/api/v1/namespaces/{namespace}/events":
            made.append(tuple(query))
        return get_json(self, path, query, **kw)

    monkeypatch.setattr(Kube, "get_json", spy)
    return made


def test_sweep_lists_events_once_for_its_pods_and_each_bundle_keeps_its_own(
        operator: KopfRunner, kube: Kube, core: k8s.CoreV1Api, namespace: str, goapp_pod: GoappPod,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PODS:
        goapp_pod(name, labels={"sweep": "shared"})
    lists = count_event_lists(monkeypatch, namespace)
    create(kube, namespace, "sweep", {"target": {"selector": {"matchLabels": {"sweep": "shared"}}},
                                      "template": "debug-full", "parameters": FAST})
    status = wait_done(kube, namespace, "sweep", 180)["status"]
    assert status["phase"] == "Completed", status
    # One LIST per 5 s of sweep (kube.shared_reads), of the whole namespace: six pods share one to three.
    assert 1 <= len(lists) <= len(PODS) // 2, lists
    assert all(dict(q).get("fieldSelector") == "involvedObject.kind=Pod" for q in lists), lists
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
        stored = yaml.safe_load(files[layout.K8S_POD])
        assert (stored["kind"], stored["metadata"]["name"]) == ("Pod", name)
        assert yaml.safe_load(files[layout.K8S_NODE_CONDITIONS])["name"] == pod["node"]
