"""Shell-less pods end to end: the exec collectors' evidence through an ephemeral debug container.

Real pods on the testbed: goapp as distroless ``nonroot`` (UID 65532 in the image config only,
read-only root) in a namespace that enforces the ``restricted`` Pod Security Standard, goapp
``FROM scratch`` (root, nothing but the binary), the busybox goapp for comparison, and a user
whose RBAC lacks ``pods/ephemeralcontainers``.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s

from debugcap.bundle import layout
from testbed import layout as layout_tb

from .conftest import Testbed, kubectl, wait_running
from .test_capture import collector, create, members, read_manifest, statuses
from .test_operator import (
    FAST,
    assert_bundle_matches,
    wait_done,
    wait_for,
)
from .test_operator import create as create_capture

SECRET = "s3cr3t-hunter2-value"
EXEC_COLLECTORS = ("ps", "proc-status", "fd-count", "open-files", "sockets", "disk", "deleted-files", "environment",
                   "resolv-conf")


@pytest.fixture
def restricted(core: k8s.CoreV1Api, namespace: str) -> str:
    """The test's namespace, enforcing the restricted Pod Security Standard."""
    core.patch_namespace(namespace, {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted",
                                                             "pod-security.kubernetes.io/enforce-version": "latest"}}})
    return namespace


def goapp(core: k8s.CoreV1Api, testbed: Testbed, namespace: str, name: str, image: str, *,
          restricted: bool = False) -> None:
    """goapp with planted open files and a secret in its environment; restricted: the securityContext
    the restricted policy requires (runAsNonRoot, no UID: the image's USER decides), read-only root."""
    env = [{"name": "GOAPP_FD_LEAK", "value": "1"}, {"name": "APP_DB_PASSWORD", "value": SECRET},
           {"name": "GOMAXPROCS", "value": "2"}]
    container: dict[str, Any] = {"name": "app", "image": testbed.images[image], "imagePullPolicy": "Never", "env": env}
    spec: dict[str, Any] = {"terminationGracePeriodSeconds": 0, "automountServiceAccountToken": False,
                            "containers": [container]}
    if restricted:
        spec["securityContext"] = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
        container["securityContext"] = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                        "capabilities": {"drop": ["ALL"]}}
        container["volumeMounts"] = [{"name": "tmp", "mountPath": "/tmp"}]
        spec["volumes"] = [{"name": "tmp", "emptyDir": {}}]
    core.create_namespaced_pod(namespace, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                                           "spec": spec})
    wait_running(core, namespace, name)


def ephemeral_names(core: k8s.CoreV1Api, namespace: str, pod: str) -> list[str]:
    return [c.name for c in core.read_namespaced_pod(pod, namespace).spec.ephemeral_containers or []]


def assert_process_evidence(files: dict[str, bytes]) -> None:
    """What the exec collectors promise: the goapp process, its listening socket, its planted open
    files, df of its root, its environment with the secret masked."""
    assert b"/goapp" in files[layout.PROC_PS]
    assert b"Name:\tgoapp" in files[layout.PROC_STATUS] and b"Max open files" in files[layout.PROC_LIMITS]
    assert b"goapp-fdleak-" in files[layout.PROC_FD]
    assert int(files[layout.PROC_FD_COUNT].strip()) >= 4
    assert b":6060" in files[layout.NET_SOCKETS] and b"LISTEN" in files[layout.NET_SOCKETS]
    df = files[layout.FS_DF].decode()
    assert any(line.split()[-1] == "/" for line in df.splitlines()[1:]), df
    env = files[layout.ENV_ENVIRONMENT].decode()
    assert "GOMAXPROCS=2" in env and "APP_DB_PASSWORD=" in env
    assert b"nameserver" in files[layout.NET_RESOLV_CONF]
    for path, data in files.items():
        assert SECRET.encode() not in data, f"the planted secret reached {path}"


def test_restricted_distroless_nonroot_gives_the_shell_images_evidence_and_reuses_its_container(
        core: k8s.CoreV1Api, testbed: Testbed, restricted: str, tmp_path: Path) -> None:
    goapp(core, testbed, restricted, "dl", "goapp-nonroot", restricted=True)
    run = create(testbed, restricted, "dl", "debug-full", tmp_path / "one")
    assert run.returncode == 0 and run.bundle is not None, run
    files = members(run.bundle)
    doc = read_manifest(files)
    assert [n for n, s in statuses(doc).items() if s != "ok"] == [], doc["collectors"]
    assert_process_evidence(files)
    access = doc["access"]
    assert access["commands"] == "ephemeral" and access["ephemeralContainerAdded"] == "true", access
    assert access["debugUser"] == "65532:65532" and "ephemeralProbe" not in access, access
    assert ephemeral_names(core, restricted, "dl") == [access["ephemeralContainer"]]
    assert "added ephemeral container" in run.stderr

    again = create(testbed, restricted, "dl", "debug-full", tmp_path / "two")
    assert again.returncode == 0 and again.bundle is not None, again
    second = read_manifest(members(again.bundle))
    assert second["access"]["ephemeralContainerAdded"] == "false"
    assert second["access"]["ephemeralContainer"] == access["ephemeralContainer"]
    assert ephemeral_names(core, restricted, "dl") == [access["ephemeralContainer"]]


def test_scratch_image_running_as_root_is_read_by_a_root_debug_container(
        core: k8s.CoreV1Api, testbed: Testbed, namespace: str, tmp_path: Path) -> None:
    goapp(core, testbed, namespace, "scratch", "goapp-scratch")
    run = create(testbed, namespace, "scratch", "debug-full", tmp_path)
    assert run.returncode == 0 and run.bundle is not None, run
    files = members(run.bundle)
    doc = read_manifest(files)
    assert {n: s for n, s in statuses(doc).items() if n in EXEC_COLLECTORS and s != "ok"} == {}, doc["collectors"]
    assert doc["access"]["debugUser"] == "0:0"
    # The pod names no user: a probe as nobody read the root user from the process first.
    assert doc["access"]["ephemeralProbe"].startswith("debugcap-app-65534-"), doc["access"]
    assert b"/goapp" in files[layout.PROC_PS] and b":6060" in files[layout.NET_SOCKETS]
    # FROM scratch has no /tmp: the fd leak fails, but the descriptors are listed all the same.
    assert b"socket:[" in files[layout.PROC_FD]


def test_user_the_spec_does_not_name_is_read_from_the_process(
        core: k8s.CoreV1Api, testbed: Testbed, namespace: str, tmp_path: Path) -> None:
    # No runAsNonRoot, no runAsUser: the probe runs as nobody (never root), the process says 65532.
    goapp(core, testbed, namespace, "silent", "goapp-nonroot")
    run = create(testbed, namespace, "silent", "debug-full", tmp_path)
    assert run.returncode == 0 and run.bundle is not None, run
    files = members(run.bundle)
    access = read_manifest(files)["access"]
    assert access["debugUser"] == "65532:65532" and access["ephemeralProbe"].startswith("debugcap-app-65534-"), access
    assert_process_evidence(files)
    assert sorted(ephemeral_names(core, namespace, "silent")) == sorted([access["ephemeralProbe"],
                                                                          access["ephemeralContainer"]])


def test_exec_mode_skips_with_a_hint_and_the_busybox_image_stays_on_exec(
        core: k8s.CoreV1Api, testbed: Testbed, namespace: str, tmp_path: Path) -> None:
    goapp(core, testbed, namespace, "dl", "goapp-distroless")
    goapp(core, testbed, namespace, "bb", "goapp")
    run = create(testbed, namespace, "dl", "debug-full", tmp_path / "dl", "--command-mode", "exec")
    assert run.returncode == 0 and run.bundle is not None, run
    doc = read_manifest(members(run.bundle))
    assert statuses(doc)["ps"] == "skipped" and "--command-mode" in collector(doc, "ps")["message"]
    assert ephemeral_names(core, namespace, "dl") == []
    shell = create(testbed, namespace, "bb", "debug-full", tmp_path / "bb")
    assert shell.returncode == 0 and shell.bundle is not None, shell
    files = members(shell.bundle)
    assert read_manifest(files)["access"]["commands"] == "exec"
    assert_process_evidence(files)
    assert ephemeral_names(core, namespace, "bb") == []


def test_a_restart_of_the_target_ends_its_debug_container_and_the_next_capture_adds_the_next(
        core: k8s.CoreV1Api, testbed: Testbed, namespace: str, tmp_path: Path) -> None:
    goapp(core, testbed, namespace, "dl", "goapp-nonroot")
    first = create(testbed, namespace, "dl", "disk-usage", tmp_path / "one")
    assert first.returncode == 0 and first.bundle is not None, first
    name = read_manifest(members(first.bundle))["access"]["ephemeralContainer"]
    # Kill the target from the node, as the OOM killer would: its process namespace ends, and
    # the debug container in it with it.
    container_id = core.read_namespaced_pod("dl", namespace).status.container_statuses[0].container_id
    subprocess.run(["ctr", "--address", str(layout_tb.containerd_socket()), "-n", "k8s.io", "task", "kill", "-s",
                    "SIGKILL", container_id.removeprefix("containerd://")], check=True, capture_output=True)

    def restarted() -> bool:
        status = core.read_namespaced_pod("dl", namespace).status
        return bool(status.container_statuses[0].restart_count >= 1 and status.container_statuses[0].ready
                    and any(e.state.terminated for e in status.ephemeral_container_statuses or []))

    wait_for(restarted, 60, "the target to restart and its debug container to end")
    second = create(testbed, namespace, "dl", "disk-usage", tmp_path / "two")
    assert second.returncode == 0 and second.bundle is not None, second
    doc = read_manifest(members(second.bundle))
    assert doc["access"]["ephemeralContainer"] == f"{name}-2" and doc["access"]["ephemeralContainerAdded"] == "true"
    assert statuses(doc) == {"disk": "ok", "deleted-files": "ok"}, doc["collectors"]


@pytest.fixture
def limited_user(kube: Any, testbed: Testbed, namespace: str) -> Iterator[str]:
    """The testbed's user, allowed to read pods and exec and port-forward in them, not to add
    ephemeral containers: its kubeconfig."""
    rbac = k8s.RbacAuthorizationV1Api(kube.core().api_client)
    name = f"no-ephemeral-{uuid.uuid4().hex[:6]}"
    rbac.create_namespaced_role(namespace, {"metadata": {"name": name}, "rules": [
        {"apiGroups": [""], "resources": ["pods", "pods/log", "events"], "verbs": ["get", "list"]},
        {"apiGroups": [""], "resources": ["pods/exec", "pods/portforward"], "verbs": ["create", "get"]},
        {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]}]})
    rbac.create_namespaced_role_binding(namespace, {
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "User", "name": "debugcap-user", "apiGroup": "rbac.authorization.k8s.io"}]})
    yield testbed.user_kubeconfig


def test_user_without_ephemeral_rights_gets_one_clear_message_and_the_rest_of_the_bundle(
        core: k8s.CoreV1Api, testbed: Testbed, namespace: str, limited_user: str, tmp_path: Path) -> None:
    goapp(core, testbed, namespace, "dl", "goapp-distroless")
    assert kubectl(testbed, "auth", "can-i", "patch", "pods/ephemeralcontainers", "-n", namespace,
                   kubeconfig=limited_user, check=False).stdout.strip() == "no"
    run = create(testbed, namespace, "dl", "debug-full", tmp_path, env={"KUBECONFIG": limited_user})
    assert run.returncode == 0 and run.bundle is not None, run
    doc = read_manifest(members(run.bundle))
    for name in EXEC_COLLECTORS:
        record = collector(doc, name)
        assert record["status"] == "failed" and "pods/ephemeralcontainers" in record["message"], record
    assert statuses(doc)["pprof-heap"] == "ok" and statuses(doc)["pod-yaml"] == "ok"
    # Said once on the terminal, before the per-collector lines.
    assert run.stderr.count("cannot run commands in") == 1, run.stderr
    assert ephemeral_names(core, namespace, "dl") == []


def test_debug_image_that_cannot_be_pulled_ends_the_exec_collectors_with_the_reason(
        core: k8s.CoreV1Api, testbed: Testbed, namespace: str, tmp_path: Path) -> None:
    goapp(core, testbed, namespace, "dl", "goapp-distroless")
    run = create(testbed, namespace, "dl", "debug-full", tmp_path, "--debug-image",
                 "debugcap.test/no-such-toolbox:dev", "--timeout", "30")
    assert run.returncode == 0 and run.bundle is not None, run
    doc = read_manifest(members(run.bundle))
    message = collector(doc, "ps")["message"]
    assert collector(doc, "ps")["status"] == "failed", message
    assert "ErrImagePull" in message or "ImagePullBackOff" in message, message
    assert "--debug-image" in message, message
    assert statuses(doc)["pprof-heap"] == "ok"
    # It stays in the pod though it never ran: the manifest says it was added.
    assert doc["access"]["ephemeralContainerAdded"] == "true", doc["access"]
    assert ephemeral_names(core, namespace, "dl") == [doc["access"]["ephemeralContainer"]]
    assert run.seconds < 120, run


@pytest.mark.usefixtures("operator")
def test_debug_container_is_recorded_in_the_status_through_the_operator(
        kube: Any, core: k8s.CoreV1Api, testbed: Testbed, restricted: str, tmp_path: Path) -> None:
    goapp(core, testbed, restricted, "dl", "goapp-nonroot", restricted=True)
    create_capture(kube, restricted, "dl-full", {"target": {"pod": "dl"}, "template": "debug-full",
                                                 "parameters": FAST})
    status = wait_done(kube, restricted, "dl-full", seconds=120)["status"]
    assert status["phase"] == "Completed", json.dumps(status, indent=1)
    pod = status["pods"][0]
    assert pod["access"]["commands"] == "ephemeral" and pod["access"]["ephemeralContainerAdded"] == "true", pod
    assert_bundle_matches(pod, tmp_path)
    assert all(c["status"] == "ok" for c in pod["collectors"]), pod["collectors"]
    files = members(tmp_path / Path(pod["bundle"]["key"]).name)
    assert b"/goapp" in files[layout.PROC_PS] and b"goapp-fdleak-" in files[layout.PROC_FD]
    assert read_manifest(files)["access"] == pod["access"]
    # A second capture reuses it.
    create_capture(kube, restricted, "dl-again", {"target": {"pod": "dl"}, "template": "disk-usage"})
    again = wait_done(kube, restricted, "dl-again", seconds=120)["status"]
    assert again["phase"] == "Completed", json.dumps(again, indent=1)
    assert again["pods"][0]["access"]["ephemeralContainerAdded"] == "false"
    assert ephemeral_names(core, restricted, "dl") == [pod["access"]["ephemeralContainer"]]


@pytest.fixture
def no_debug_containers(monkeypatch: pytest.MonkeyPatch) -> None:
    """The operator-wide switch off, as the chart's debugContainer.enabled=false sets it."""
    monkeypatch.setenv("DEBUGCAP_OPERATOR_EPHEMERAL_CONTAINERS", "false")


@pytest.mark.usefixtures("no_debug_containers", "operator")  # in this order: the switch, then the operator
def test_operator_with_debug_containers_off_skips_with_the_hint_and_refuses_ephemeral(
        kube: Any, core: k8s.CoreV1Api, testbed: Testbed,
        namespace: str) -> None:
    goapp(core, testbed, namespace, "dl", "goapp-distroless")
    create_capture(kube, namespace, "auto", {"target": {"pod": "dl"}, "template": "disk-usage"})
    create_capture(kube, namespace, "forced", {"target": {"pod": "dl"}, "template": "disk-usage",
                                               "parameters": {"commandMode": "ephemeral"}})
    create_capture(kube, namespace, "image", {"target": {"pod": "dl"}, "template": "disk-usage",
                                              "parameters": {"debugImage": "evil.example/shell:1"}})
    auto = wait_done(kube, namespace, "auto")["status"]
    disk = next(c for c in auto["pods"][0]["collectors"] if c["name"] == "disk")
    assert disk["status"] == "skipped" and "--command-mode" in disk["message"], auto
    forced = wait_done(kube, namespace, "forced")["status"]
    assert forced["phase"] == "Failed" and "debugContainer.enabled" in forced["message"], forced
    image = wait_done(kube, namespace, "image")["status"]
    assert image["phase"] == "Failed" and 'debugImage "evil.example/shell:1" is not an image' in image["message"]
    assert ephemeral_names(core, namespace, "dl") == []


@pytest.fixture
def missing_debug_image(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEBUGCAP_OPERATOR_DEBUG_IMAGE", "debugcap.test/no-such-toolbox:dev")


@pytest.mark.usefixtures("missing_debug_image", "operator")
def test_operator_with_a_debug_image_that_cannot_be_pulled_keeps_the_rest(
        kube: Any, core: k8s.CoreV1Api, testbed: Testbed,
        namespace: str) -> None:
    goapp(core, testbed, namespace, "scratch", "goapp-scratch")
    create_capture(kube, namespace, "pull", {"target": {"pod": "scratch"}, "template": "debug-full",
                                             "parameters": {**FAST, "timeoutSeconds": 30}})
    status = wait_done(kube, namespace, "pull", seconds=150)["status"]
    assert status["phase"] == "PartiallyFailed", json.dumps(status, indent=1)
    records = {c["name"]: c for c in status["pods"][0]["collectors"]}
    assert records["ps"]["status"] == "failed", records["ps"]
    assert "ErrImagePull" in records["ps"]["message"] or "ImagePullBackOff" in records["ps"]["message"]
    assert records["pprof-heap"]["status"] == "ok" and status["pods"][0]["bundle"]["key"]
