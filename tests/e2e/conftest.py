"""Fixtures for tests that run against the real testbed (cluster + S3) of ``testbed/``.

The session brings the testbed up, or reuses a healthy one. If it cannot
start, every e2e test fails with the testbed's own error: they never skip.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kopf.testing import KopfRunner
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from debugcap.kube.client import Kube, KubeTarget
from testbed import builds, cluster, layout

from .faults.report import pytest_terminal_summary  # noqa: F401 - the fault suite's table, a hook

REPO = layout.REPO


@dataclass(frozen=True)
class Testbed:
    __test__ = False  # a fixture value, not a test class

    kubeconfig: str
    user_kubeconfig: str
    env: dict[str, str]
    images: dict[str, str]

    @property
    def s3(self) -> dict[str, str]:
        return {k: v for k, v in self.env.items() if k.startswith("DEBUGCAP_S3_")}


@pytest.fixture(scope="session")
def testbed() -> Testbed:
    health = cluster.status() if cluster.P.kubeconfig.exists() else {}
    if not health or not all(health.values()):
        started = time.monotonic()
        res = subprocess.run([sys.executable, "-m", "testbed", "up"], cwd=REPO, capture_output=True, text=True)
        if res.returncode != 0:
            pytest.fail(f"the testbed did not start (python -m testbed up, exit {res.returncode}):\n"
                        f"{res.stderr[-4000:]}", pytrace=False)
        print(f"testbed up in {time.monotonic() - started:.0f}s", file=sys.stderr)
    env = {k: v for k, v in cluster.env_vars().items() if k != "PATH"}
    return Testbed(kubeconfig=env["KUBECONFIG"], user_kubeconfig=env["DEBUGCAP_TESTBED_USER_KUBECONFIG"],
                   env=env, images=dict(layout.IMAGES))


def kubectl(testbed: Testbed, *args: str, kubeconfig: str | None = None, stdin: str | None = None,
            check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The testbed's own kubectl (never whatever kubectl the machine has on PATH)."""
    env = {**os.environ, "KUBECONFIG": kubeconfig or testbed.kubeconfig}
    res = subprocess.run([str(builds.binary("kubernetes", "kubectl")), *args], env=env, input=stdin,
                         capture_output=True, text=True, timeout=timeout)
    if check and res.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed: {res.stderr}")
    return res


@pytest.fixture(scope="session")
def crds(testbed: Testbed) -> None:
    """debugcap's CRDs installed and established (tests of the operator and the chart need them)."""
    kubectl(testbed, "apply", "-f", str(REPO / "crds"))
    # Right after a first apply, `kubectl wait` fails outright ("status.conditions accessor
    # error") until the API server has written any condition: ask again until it answers.
    deadline = time.monotonic() + 60
    while True:
        res = kubectl(testbed, "wait", "--for=condition=Established", "--timeout=30s", "-f", str(REPO / "crds"),
                      check=False)
        if res.returncode == 0:
            return
        if "accessor error" not in res.stderr or time.monotonic() > deadline:
            raise AssertionError(f"debugcap's CRDs were not Established: {res.stderr}")
        time.sleep(0.5)


@pytest.fixture(scope="session")
def kube(testbed: Testbed) -> Iterator[Kube]:
    kube = Kube.load(KubeTarget(kubeconfig=testbed.kubeconfig))
    yield kube
    kube.close()


@pytest.fixture(scope="session")
def core(kube: Kube) -> k8s.CoreV1Api:
    return kube.core()


@pytest.fixture
def namespace(core: k8s.CoreV1Api) -> Iterator[str]:
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name, labels={"debugcap-e2e": "1"})))
    # Pods cannot be created until the namespace's default ServiceAccount exists.
    _wait(lambda: _exists(lambda: core.read_namespaced_service_account("default", name)), 30,
          f"default ServiceAccount in {name}")
    yield name
    core.delete_namespace(name, grace_period_seconds=0)


def _exists(read: Callable[[], Any]) -> bool:
    try:
        read()
        return True
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise


def _wait(ok: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if ok():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {seconds}s waiting for {what}")


GoappPod = Callable[..., k8s.V1Pod]


@pytest.fixture
def goapp_pod(core: k8s.CoreV1Api, testbed: Testbed, namespace: str) -> GoappPod:
    """Create a goapp pod (image variant, env pathologies, labels) and wait until it is Running."""

    def make(name: str = "goapp", *, image: str = "goapp", env: dict[str, str] | None = None,
             labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None,
             command: list[str] | None = None, wait: bool = True) -> k8s.V1Pod:
        container = k8s.V1Container(
            name="app", image=testbed.images[image], image_pull_policy="Never", command=command,
            env=[k8s.V1EnvVar(name=k, value=v) for k, v in (env or {}).items()],
        )
        pod = k8s.V1Pod(
            metadata=k8s.V1ObjectMeta(name=name, labels={"app": "goapp", **(labels or {})},
                                      annotations=annotations),
            spec=k8s.V1PodSpec(containers=[container], termination_grace_period_seconds=0,
                               automount_service_account_token=False),
        )
        core.create_namespaced_pod(namespace, pod)
        if wait:
            wait_running(core, namespace, name)
        return core.read_namespaced_pod(name, namespace)

    return make


def wait_running(core: k8s.CoreV1Api, namespace: str, name: str, seconds: float = 90) -> None:
    def running() -> bool:
        pod = core.read_namespaced_pod(name, namespace)
        return bool(pod.status.phase == "Running" and all(cs.ready for cs in pod.status.container_statuses or []))

    try:
        _wait(running, seconds, f"pod {namespace}/{name} to run")
    except AssertionError:
        pod = core.read_namespaced_pod(name, namespace)
        events = core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}")
        raise AssertionError(f"pod {namespace}/{name} is {pod.status.phase}: {pod.status.container_statuses}\n"
                             + "\n".join(f"{e.reason}: {e.message}" for e in events.items)) from None


@pytest.fixture
def s3_env(testbed: Testbed, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for k, v in testbed.s3.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("DEBUGCAP_CLUSTER", "testbed")
    return dict(os.environ)


def changes_within(kube: Kube, group: str, version: str, namespace: str, plural: str, name: str,
                   seconds: int) -> list[tuple[str, dict[str, Any]]]:
    """The object as it is now (``("CURRENT", obj)``), then every change the API server reports
    to it within ``seconds``: (event type, object). A watch from the object's resourceVersion sees
    every write, however brief, where a read after a sleep sees only the state at that instant."""
    from kubernetes import watch

    custom = kube.custom()
    current = custom.get_namespaced_custom_object(group, version, namespace, plural, name)
    events = watch.Watch().stream(custom.list_namespaced_custom_object, group, version, namespace, plural,
                                  field_selector=f"metadata.name={name}",
                                  resource_version=current["metadata"]["resourceVersion"],
                                  timeout_seconds=seconds, allow_watch_bookmarks=False)
    return [("CURRENT", current), *((e["type"], e["object"]) for e in events if e["type"] != "BOOKMARK")]


# ---------------------------------------------------------------- the operator, in-process


@pytest.fixture
def operator_env(testbed: Testbed, s3_env: dict[str, str], tmp_path: Path,
                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", testbed.kubeconfig)
    monkeypatch.setenv("DEBUGCAP_OPERATOR_WORK_DIR", str(tmp_path / "work"))
    monkeypatch.setenv("DEBUGCAP_SPOOL_DIR", str(tmp_path / "spool"))


def collect_runner_leftovers() -> None:
    """kopf's aiohttp connections to the apiserver are dropped, not closed, when KopfRunner stops
    its loop in a thread; collect them here so their ResourceWarnings do not land on a later test."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


def strip_finalizers(kube: Kube, namespace: str) -> None:
    """Without the operator nothing removes its finalizers, and the namespace would hang deleting."""
    for plural in ("debugcaptures", "debugschedules", "debugtriggers", "debugdownloads"):
        try:
            items = kube.custom().list_namespaced_custom_object("debugcap.io", "v1alpha1", namespace, plural)["items"]
        except ApiException:
            continue
        for item in items:
            if item["metadata"].get("finalizers"):
                try:
                    kube.custom().patch_namespaced_custom_object(
                        "debugcap.io", "v1alpha1", namespace, plural, item["metadata"]["name"],
                        {"metadata": {"finalizers": None}}, _content_type="application/merge-patch+json")
                except ApiException:
                    pass


@pytest.fixture
def operator(crds: None, operator_env: None, kube: Kube, namespace: str) -> Iterator[KopfRunner]:
    """The operator serving only this test's namespace, as `kopf run` would start it."""
    args = ["run", "--standalone", "-n", namespace, "-m", "debugcap.operator.handlers"]
    with KopfRunner(args, timeout=60) as runner:
        yield runner
    collect_runner_leftovers()
    strip_finalizers(kube, namespace)
    assert runner.exception is None, runner.output
    assert "Traceback" not in runner.output, runner.output
