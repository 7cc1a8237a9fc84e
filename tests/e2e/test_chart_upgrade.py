"""``helm install`` of the previous chart version, then ``helm upgrade`` to this one and
``helm uninstall``, for real against the testbed's API server (docs/operator.md, "Upgrading the chart").

Cases:
* chart 0.2.0 installed with a namespace list and the operator image ``make image`` pushed to the
  testbed's registry; a DebugCapture and a (suspended) DebugSchedule created in that namespace;
  ``helm upgrade`` to this checkout's chart keeps the user's values, rolls the Deployment to this
  chart's (readiness probe) until its pods are Ready, and leaves both objects as they were (same
  uid, same spec). The old release runs without the election, as 0.2.0's operator did (its image
  had none; this test's image would elect, so DEBUGCAP_OPERATOR_LEADER_ELECTION=false): the upgrade
  replaces its pod with strategy Recreate, never a new electing pod beside the old operator (which
  would find the Lease free and lead too); the next upgrade, from electing pods, rolls again
* an upgrade with a value the schema refuses fails before anything changes: the release stays at
  its revision
* ``helm uninstall`` removes the Deployment and leaves the CRDs and both objects
The operator runs from the registry's image before and after the upgrade; the chart's Deployment
carrying out a capture is tests/e2e/test_chart.py's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import yaml

from debugcap.kube.client import Kube
from testbed import builds, image_build, layout, registry

from .conftest import Testbed, kubectl, strip_finalizers
from .test_chart import operator_image  # noqa: F401 (a fixture: `make image`, built once and cached)

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "debugcap"
# Chart 0.2.0, the version before values.schema.json, kept as it was (its CRDs are the current
# ones, applied by the crds fixture), so no git history is needed.
PREVIOUS_CHART = REPO / "tests" / "fixtures" / "chart-0.2.0"


def helm(testbed: Testbed, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    res = subprocess.run([str(builds.binary("helm")), *args], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "KUBECONFIG": testbed.kubeconfig})
    if check and res.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
    return res


def previous_chart(dest: Path) -> Path:
    """Chart 0.2.0, copied where the test may change it."""
    chart = dest / "debugcap"
    shutil.copytree(PREVIOUS_CHART, chart)
    assert yaml.safe_load((chart / "Chart.yaml").read_text())["version"] == "0.2.0"
    return chart


def get(testbed: Testbed, namespace: str, kind: str, name: str) -> dict[str, Any]:
    obj: dict[str, Any] = yaml.safe_load(kubectl(testbed, "-n", namespace, "get", kind, name, "-o", "yaml").stdout)
    return obj


def revision(testbed: Testbed, release: str, namespace: str) -> tuple[int, str]:
    [status] = yaml.safe_load(helm(testbed, "list", "-n", namespace, "--filter", f"^{release}$", "-o", "yaml").stdout)
    return int(status["revision"]), str(status["chart"])


def test_helm_upgrade_from_the_previous_chart_keeps_captures_and_schedules(
        testbed: Testbed, crds: None, kube: Kube, namespace: str, operator_image: str,  # noqa: F811
        tmp_path: Path) -> None:
    release = f"upg-{uuid.uuid4().hex[:6]}"
    old = previous_chart(tmp_path)
    kubectl(testbed, "apply", "-f", "-", stdin=image_build.s3_secret_manifest(namespace))
    # Always: the tag is the version, reused by every rebuild; IfNotPresent would run whatever
    # the node pulled last under it.
    values = image_build.chart_values(operator_image, api_host=layout.NODE_IP, api_port=layout.APISERVER_PORT,
                                      pull_policy="Always")
    helm(testbed, "install", release, str(old), "-n", namespace, "--set", f"namespaces={{{namespace}}}",
         *values, "--set", "operator.concurrency=2",
         "--set", "operator.extraEnv[2].name=DEBUGCAP_OPERATOR_LEADER_ELECTION",
         "--set-string", "operator.extraEnv[2].value=false")
    try:
        assert revision(testbed, release, namespace) == (1, "debugcap-0.2.0")
        rollout = kubectl(testbed, "-n", namespace, "rollout", "status", f"deployment/{release}-debugcap",
                          "--timeout=180s", check=False, timeout=190)
        assert rollout.returncode == 0, rollout.stderr
        kubectl(testbed, "-n", namespace, "apply", "-f", "-", stdin=yaml.safe_dump_all([
            {"apiVersion": "debugcap.io/v1alpha1", "kind": "DebugCapture", "metadata": {"name": "before-upgrade"},
             "spec": {"target": {"pod": "gone"}, "template": "go-profile"}},
            {"apiVersion": "debugcap.io/v1alpha1", "kind": "DebugSchedule", "metadata": {"name": "nightly"},
             "spec": {"schedule": "0 3 * * *", "suspend": True,
                      "captureTemplate": {"spec": {"target": {"pod": "gone"}, "template": "go-profile"}}}}]))
        before = {kind: get(testbed, namespace, kind, name)
                  for kind, name in (("debugcapture", "before-upgrade"), ("debugschedule", "nightly"))}

        # The user's values, but not the env that stood for 0.2.0's election-less operator.
        testbed_env = [a for a in values if a.startswith("operator.extraEnv[")]
        helm(testbed, "upgrade", release, str(CHART), "-n", namespace, "--reuse-values",
             "--set-json", "operator.extraEnv=[]",
             *[arg for pair in zip(["--set-string"] * len(testbed_env), testbed_env, strict=True) for arg in pair])
        assert revision(testbed, release, namespace) == (2, "debugcap-0.3.0")
        assert get(testbed, namespace, "deployment", f"{release}-debugcap")["spec"]["strategy"] == \
            {"type": "Recreate"}
        rollout = kubectl(testbed, "-n", namespace, "rollout", "status", f"deployment/{release}-debugcap",
                          "--timeout=180s", check=False, timeout=190)
        assert rollout.returncode == 0, (rollout.stderr, kubectl(testbed, "-n", namespace, "get", "pods", "-o",
                                                                 "wide", check=False).stdout)
        repository, _, tag = operator_image.rpartition(":")
        pulled = registry.manifest_digest(repository.partition("/")[2], tag)
        pods = yaml.safe_load(kubectl(testbed, "-n", namespace, "get", "pods", "-l",
                                      f"app.kubernetes.io/instance={release}", "-o", "yaml").stdout)["items"]
        image_ids = {s["imageID"] for pod in pods for s in pod["status"].get("containerStatuses", [])}
        assert image_ids == {f"{repository}@{pulled}"}, (image_ids, pulled)
        deployment = get(testbed, namespace, "deployment", f"{release}-debugcap")
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert [e["name"] for e in container["env"]].count("DEBUGCAP_OPERATOR_LEADER_ELECTION") == 1
        assert env["DEBUGCAP_OPERATOR_LEADER_ELECTION"] == "true"
        # The values given to the first install are kept.
        assert (env["DEBUGCAP_OPERATOR_NAMESPACES"], env["DEBUGCAP_OPERATOR_CONCURRENCY"]) == (namespace, "2")
        for kind, obj in before.items():
            after = get(testbed, namespace, kind, obj["metadata"]["name"])
            assert after["metadata"]["uid"] == obj["metadata"]["uid"] and after["spec"] == obj["spec"], kind

        # From pods that elect, an upgrade rolls: a new standby comes up before an old pod stops.
        helm(testbed, "upgrade", release, str(CHART), "-n", namespace, "--reuse-values")
        assert revision(testbed, release, namespace) == (3, "debugcap-0.3.0")
        assert get(testbed, namespace, "deployment", f"{release}-debugcap")["spec"]["strategy"]["type"] == \
            "RollingUpdate"

        refused = helm(testbed, "upgrade", release, str(CHART), "-n", namespace, "--reuse-values",
                       "--set", "replica=2", check=False)
        assert refused.returncode != 0 and "'replica' not allowed" in refused.stderr, refused.stderr
        assert revision(testbed, release, namespace) == (3, "debugcap-0.3.0")

        helm(testbed, "uninstall", release, "-n", namespace)
        assert kubectl(testbed, "-n", namespace, "get", "deployment", f"{release}-debugcap",
                       check=False).returncode != 0
        assert kubectl(testbed, "get", "crd", "debugcaptures.debugcap.io", "debugschedules.debugcap.io",
                       check=False).returncode == 0
        for kind, obj in before.items():
            assert get(testbed, namespace, kind, obj["metadata"]["name"])["metadata"]["uid"] == obj["metadata"]["uid"]
    finally:
        helm(testbed, "uninstall", release, "-n", namespace, "--ignore-not-found", check=False)
        # The operator put its finalizer on the capture; with it gone, the namespace could never go.
        strip_finalizers(kube, namespace)
