"""Who may use a DebugCaptureTemplate, against the testbed's API server and a goapp pod (issue 16).

Cases:
* a template whose spec.allowedNamespaces does not list the capture's namespace: the capture Fails
  at once, its message naming the template, the namespace and the field
* a template with an admin command: in the unlabelled namespace the command step is Skipped with
  the fix and no custom/ file is in the bundle, the other steps run; once the namespace carries
  debugcap.io/commands=allowed, the same template runs the command
"""

from __future__ import annotations

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


@pytest.fixture
def make_template(kube: Kube) -> Iterator[Callable[[dict[str, Any]], str]]:
    made: list[str] = []

    def make(spec: dict[str, Any]) -> str:
        name = f"e2e-{uuid.uuid4().hex[:8]}"
        kube.custom().create_cluster_custom_object(GROUP, VERSION, "debugcapturetemplates", {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "DebugCaptureTemplate", "metadata": {"name": name},
            "spec": spec})
        made.append(name)
        wait_for(lambda: (kube.custom().get_cluster_custom_object(
            GROUP, VERSION, "debugcapturetemplates", name).get("status") or {}).get("valid"), 20,
            "the template check")
        return name

    yield make
    for name in made:
        kube.custom().delete_cluster_custom_object(GROUP, VERSION, "debugcapturetemplates", name)


def test_a_template_refuses_a_namespace_it_does_not_list(
        operator: KopfRunner, kube: Kube, namespace: str, goapp_pod: GoappPod,
        make_template: Callable[[dict[str, Any]], str]) -> None:
    goapp_pod("plain")
    name = make_template({"allowedNamespaces": ["somewhere-else"], "steps": [{"collector": "pod-yaml"}]})
    create_capture(kube, namespace, "refused", {"target": {"pod": "plain"}, "template": name})
    status = wait_done(kube, namespace, "refused", 60)["status"]
    assert status["phase"] == "Failed", status
    assert f'DebugCaptureTemplate "{name}"' in status["message"]
    assert f'namespace "{namespace}"' in status["message"] and "spec.allowedNamespaces" in status["message"]
    assert not status.get("pods")


def test_admin_commands_run_only_once_the_namespace_opts_in(
        operator: KopfRunner, kube: Kube, namespace: str, goapp_pod: GoappPod, tmp_path: Path,
        make_template: Callable[[dict[str, Any]], str]) -> None:
    goapp_pod("plain")
    name = make_template({"steps": [{"collector": "pod-yaml"},
                                    {"collector": "command",
                                     "params": {"name": "loadavg", "argv": ["cat", "/proc/loadavg"]}}]})

    create_capture(kube, namespace, "unlabelled", {"target": {"pod": "plain"}, "template": name})
    status = wait_done(kube, namespace, "unlabelled")["status"]
    [pod] = status["pods"]
    by_name = {c["name"]: c for c in pod["collectors"]}
    assert by_name["pod-yaml"]["status"] == "ok", pod
    assert by_name["command"]["status"] == "skipped", pod
    assert "debugcap.io/commands=allowed" in by_name["command"]["message"]
    assert not [m for m in members(_fetch(pod, tmp_path)) if m.startswith("custom/")]

    kube.core().patch_namespace(namespace, {"metadata": {"labels": {"debugcap.io/commands": "allowed"}}})
    create_capture(kube, namespace, "labelled", {"target": {"pod": "plain"}, "template": name})
    status = wait_done(kube, namespace, "labelled")["status"]
    [pod] = status["pods"]
    by_name = {c["name"]: c for c in pod["collectors"]}
    assert by_name["command"]["status"] == "ok", pod
    assert "custom/loadavg.txt" in members(_fetch(pod, tmp_path))
