"""A forged status key deletes and adopts nothing outside the capture's own prefix (real RBAC, MinIO).

A user whose Role allows ``patch`` on ``debugcaptures/status`` (broad roles often do) rewrites a
capture's ``status.pods[]`` to name (a) a bundle of another namespace's capture and (b) an
unrelated object ``backups/prod/db.dump`` the test put in the bucket.

Cases:
* a completed capture is deleted: its own bundle goes, both forged keys stay in S3, and a
  ``BundleKeyRefused`` Warning Event names each one;
* a capture left Running with a forged ``uploadKey`` is closed by a restarted operator: the object
  is neither adopted (no bundle listed) nor deleted, and the pod's message says why.

The other namespace's bundle is a real bundle copied under that namespace's key layout (with a
capture directory of its own): the operator under test serves only this test's namespace.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kopf.testing import KopfRunner
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from debugcap.kube.client import Kube
from debugcap.settings import S3Settings
from debugcap.storage import base as storage_base

from .conftest import GoappPod, Testbed, collect_runner_leftovers, kubectl, strip_finalizers
from .test_operator import FAST, GROUP, PLURAL, VERSION, create, read, s3, wait_done, wait_for

UNRELATED = "backups/prod/db.dump"
USER = "debugcap-user"  # the testbed's user kubeconfig

pytestmark = pytest.mark.filterwarnings("ignore:unclosed <ssl.SSLSocket:ResourceWarning")


@pytest.fixture
def status_patcher(kube: Kube, testbed: Testbed, namespace: str) -> str:
    """The user kubeconfig, allowed to read DebugCaptures and patch their status in ``namespace``."""
    rbac = k8s.RbacAuthorizationV1Api(kube.core().api_client)
    rbac.create_namespaced_role(namespace, k8s.V1Role(
        metadata=k8s.V1ObjectMeta(name="status-patcher"),
        rules=[k8s.V1PolicyRule(api_groups=[GROUP], resources=["debugcaptures"], verbs=["get", "list"]),
               k8s.V1PolicyRule(api_groups=[GROUP], resources=["debugcaptures/status"], verbs=["get", "patch"])]))
    rbac.create_namespaced_role_binding(namespace, k8s.V1RoleBinding(
        metadata=k8s.V1ObjectMeta(name="status-patcher"),
        role_ref=k8s.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name="status-patcher"),
        subjects=[k8s.RbacV1Subject(kind="User", name=USER, api_group="rbac.authorization.k8s.io")]))
    user = testbed.user_kubeconfig
    wait_for(lambda: kubectl(testbed, "auth", "can-i", "patch", "debugcaptures.debugcap.io", "--subresource=status",
                             "-n", namespace, kubeconfig=user, check=False).stdout.strip() == "yes", 10,
             "RBAC to apply")
    # Only the status: the user may neither delete captures nor patch their spec.
    assert kubectl(testbed, "auth", "can-i", "delete", "debugcaptures.debugcap.io", "-n", namespace,
                   kubeconfig=user, check=False).stdout.strip() == "no"
    return user


@pytest.fixture
def planted(tmp_path: Path, namespace: str) -> Iterator[dict[str, str]]:
    """``backups/prod/db.dump`` in the bucket, and the key a bundle of another namespace's capture
    goes under (filled by :func:`plant_foreign`); both removed afterwards."""
    dump = tmp_path / "db.dump"
    dump.write_bytes(b"-- PostgreSQL database dump\n" * 100)
    s3().put(key=UNRELATED, path=dump, sha256=storage_base.file_sha256(dump)[0])
    keys = {"unrelated": UNRELATED, "foreign": ""}
    try:
        yield keys
    finally:
        for key in keys.values():
            if key:
                s3().delete(key=key)


def plant_foreign(own_key: str, namespace: str, tmp_path: Path) -> str:
    """A copy of the bundle at ``own_key`` under another namespace's layout (``<namespace>x``: a
    name that starts like this one), in a capture directory of its own."""
    settings = S3Settings.from_env()
    assert settings is not None
    other = f"{namespace}x"
    *_, pod, year, month, day, _capture, name = own_key.split("/")
    foreign_name = name.replace(f"{namespace}_", f"{other}_", 1)
    key = (f"{settings.prefix}/{settings.cluster}/{other}/{pod}/{year}/{month}/{day}/"
           f"cap_{uuid.uuid4()}/{foreign_name}")
    local = tmp_path / foreign_name
    stored = s3().get(key=own_key, dest=local)
    s3().put(key=key, path=local, sha256=stored.sha256)
    return key


def patch_status_as(testbed: Testbed, user: str, namespace: str, name: str, status: dict[str, Any]) -> None:
    kubectl(testbed, "patch", "debugcaptures.debugcap.io", name, "-n", namespace, "--subresource=status",
            "--type=merge", "-p", json.dumps({"status": status}), kubeconfig=user)


def refusals(core: k8s.CoreV1Api, namespace: str, name: str) -> list[str]:
    listed = core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}")
    return [e.message or "" for e in listed.items if e.reason == "BundleKeyRefused"]


def gone(kube: Kube, namespace: str, name: str) -> bool:
    try:
        read(kube, namespace, name)
        return False
    except ApiException as exc:
        return bool(exc.status == 404)


def test_deleting_a_capture_with_forged_keys_deletes_only_its_own_bundle(
        operator: KopfRunner, kube: Kube, core: k8s.CoreV1Api, testbed: Testbed, namespace: str,
        goapp_pod: GoappPod, status_patcher: str, planted: dict[str, str], tmp_path: Path) -> None:
    goapp_pod("api-1")
    create(kube, namespace, "own", {"target": {"pod": "api-1"}, "template": "go-profile", "parameters": FAST})
    obj = wait_done(kube, namespace, "own")
    [pod] = obj["status"]["pods"]
    own_key = pod["bundle"]["key"]
    assert f"/own_{obj['metadata']['uid']}/" in own_key  # the capture's own directory
    planted["foreign"] = foreign = plant_foreign(own_key, namespace, tmp_path)

    forged = [pod,
              {"name": "api-1", "phase": "Completed", "bundle": {**pod["bundle"], "key": foreign}},
              {"name": "db", "phase": "PartiallyFailed", "uploadKey": UNRELATED}]
    patch_status_as(testbed, status_patcher, namespace, "own", {"pods": forged})
    assert [p.get("bundle", {}).get("key") or p.get("uploadKey")
            for p in read(kube, namespace, "own")["status"]["pods"]] == [own_key, foreign, UNRELATED]

    kube.custom().delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "own")
    wait_for(lambda: gone(kube, namespace, "own"), 40, "the capture to be deleted")
    assert not s3().exists(key=own_key)
    assert s3().exists(key=foreign), "another namespace's bundle was deleted"
    assert s3().exists(key=UNRELATED), f"{UNRELATED} was deleted"
    messages = wait_for(lambda: (m := refusals(core, namespace, "own")) and len(m) >= 2 and m, 10,
                        "BundleKeyRefused Events")
    assert any(foreign in m and "not under this capture's prefix" in m for m in messages), messages
    assert any(UNRELATED in m and "left in place" in m for m in messages), messages


def test_a_forged_upload_key_of_an_orphaned_capture_is_not_adopted_nor_deleted(
        crds: None, operator_env: None, kube: Kube, testbed: Testbed, namespace: str, goapp_pod: GoappPod,
        status_patcher: str, planted: dict[str, str]) -> None:
    goapp_pod("api-1")
    create(kube, namespace, "orphan", {"target": {"pod": "api-1"}, "parameters": FAST})
    # What a dead operator leaves, but naming an object that is not this capture's.
    patch_status_as(testbed, status_patcher, namespace, "orphan", {
        "phase": "Running", "startTime": "2026-01-01T00:00:00Z",
        "pods": [{"name": "api-1", "phase": "Running", "uploadKey": UNRELATED}]})
    args = ["run", "--standalone", "-n", namespace, "-m", "debugcap.operator.handlers"]
    try:
        with KopfRunner(args, timeout=60) as runner:
            status = wait_done(kube, namespace, "orphan", 30)["status"]
            kube.custom().delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "orphan")
            wait_for(lambda: gone(kube, namespace, "orphan"), 30, "the capture to be deleted")
            time.sleep(1)
    finally:
        collect_runner_leftovers()
        strip_finalizers(kube, namespace)
    assert runner.exception is None, runner.output
    [pod] = status["pods"]
    assert pod["phase"] == "Failed" and "bundle" not in pod and "uploadKey" not in pod, pod
    assert UNRELATED in pod["message"] and "not adopted" in pod["message"]
    assert s3().exists(key=UNRELATED)
