"""The verbs on captures as a user types them, through the in-process operator, the real API server and MinIO.

* the loop: `create pod/x -t go-heap --wait --download`, `describe`, `download` (SHA-256 checked
  against the status and the manifest), `report NAME` (downloaded into the cache), `logs`; a
  tampered object in MinIO refused (exit 4, nothing kept), whether its S3 metadata was left as it
  was or rewritten to match; `delete --yes` (the bundle gone from S3 when it returns);
* every bad input is one line, a non-zero exit and no traceback: an unknown capture, the wrong
  namespace, conflicting flags, no S3 settings, an S3 that cannot be reached;
* a namespace user allowed DebugCaptures in their namespace only: the loop works, describe says
  Events are not theirs to list, and another namespace is refused naming what to ask for.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import minio
import pytest
from kopf.testing import KopfRunner
from kubernetes import client as k8s

from debugcap.kube.client import Kube
from debugcap.settings import S3Settings
from debugcap.storage.s3 import S3Backend
from testbed import layout

from .conftest import GoappPod, Testbed, kubectl

PLUGIN = str(layout.REPO / ".venv" / "bin" / "kubectl-debugcap")
GROUP, VERSION = "debugcap.io", "v1alpha1"

# kopf's aiohttp session drops its connections in its own thread (see test_operator.py).
pytestmark = pytest.mark.filterwarnings("ignore:unclosed <ssl.SSLSocket:ResourceWarning")


def plugin(testbed: Testbed, *args: str, env: dict[str, str | None] | None = None, kubeconfig: str | None = None,
           timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The installed executable, stdin no terminal (as in a script); ``env`` values None unset a variable."""
    merged: dict[str, str | None] = {**os.environ, "KUBECONFIG": kubeconfig or testbed.kubeconfig, **(env or {})}
    full = {k: v for k, v in merged.items() if v is not None}
    return subprocess.run([PLUGIN, *args], env=full, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout)


def one_line_error(res: subprocess.CompletedProcess[str], code: int = 1) -> str:
    assert res.returncode == code, (res.returncode, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr, res.stderr
    lines = [line for line in res.stderr.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1, res.stderr
    return lines[0]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def s3_client() -> tuple[minio.Minio, str]:
    settings = S3Settings.from_env()
    assert settings is not None
    return minio.Minio(settings.endpoint, access_key=settings.access_key, secret_key=settings.secret_key,
                       secure=settings.secure), settings.bucket


def read(kube: Kube, namespace: str, name: str) -> dict[str, Any]:
    obj: dict[str, Any] = kube.custom().get_namespaced_custom_object(GROUP, VERSION, namespace, "debugcaptures", name)
    return obj


def eventually(check: Any, seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.5)
    raise AssertionError(f"timed out after {seconds}s waiting for {what}")


def test_the_loop_create_wait_download_describe_download_report_tamper_delete(
        operator: KopfRunner, kube: Kube, testbed: Testbed, namespace: str, goapp_pod: GoappPod,
        s3_env: dict[str, str], tmp_path: Path) -> None:
    goapp_pod("x")
    env: dict[str, str | None] = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    ns = ["-n", namespace]

    made = plugin(testbed, "create", "pod/x", "-t", "go-heap", *ns, "--name", "cap-1", "--wait", "--download",
                  "-d", str(tmp_path / "first"), env=env, timeout=180)
    assert made.returncode == 0, made.stderr
    out = made.stdout.splitlines()
    assert out[:2] == ["debugcapture.debugcap.io/cap-1 created", "phase: Completed"], made.stdout
    [pod] = read(kube, namespace, "cap-1")["status"]["pods"]
    bundle = pod["bundle"]
    first = Path(out[2])
    assert first == tmp_path / "first" / Path(bundle["key"]).name and sha256(first) == bundle["sha256"]
    # Piped: plain lines, one per change (go-heap takes about a second: Running may fall between two polls).
    assert "] pod/x: Completed, bundle s3://" in made.stderr and "\x1b" not in made.stderr

    described = eventually(lambda: (r := plugin(testbed, "describe", "cap-1", *ns)) and "CaptureCompleted" in r.stdout
                           and r, 20, "describe to show the CaptureCompleted Event")
    for expected in ("Phase:          Completed", f"Bundle:     {bundle['uri']}", f"SHA-256:    {bundle['sha256']}",
                     "PodCaptured", f"kubectl debugcap download cap-1 -n {namespace}"):
        assert expected in described.stdout, described.stdout

    again = plugin(testbed, "download", "cap-1", *ns, "-d", str(tmp_path / "second"))
    assert again.returncode == 0, again.stderr
    second = Path(again.stdout.strip())
    assert sha256(second) == bundle["sha256"] and "matches the status; every file matches its manifest" in again.stderr
    verified = plugin(testbed, "verify", str(second))
    assert verified.returncode == 0 and "its .sha256 matches" in verified.stdout, verified.stdout + verified.stderr

    report = plugin(testbed, "report", "cap-1", *ns, env=env, timeout=120)
    assert report.returncode == 0, report.stderr
    assert "pod x: downloaded from s3://" in report.stderr
    cached = tmp_path / "cache" / "debugcap" / "bundles" / namespace / "cap-1" / "x" / first.name
    assert sha256(cached) == bundle["sha256"]
    assert "already here" in plugin(testbed, "report", "cap-1", *ns, env=env, timeout=120).stderr  # reused
    logs = plugin(testbed, "logs", "cap-1", *ns)
    assert logs.returncode == 0 and "CaptureStarted" in logs.stdout and "CaptureCompleted" in logs.stdout

    client, bucket = s3_client()
    original = client.get_object(bucket, bundle["key"]).read()
    forged = original[:-64] + bytes(64)
    # The object replaced, its S3 metadata left naming the old SHA-256; then both rewritten to agree.
    for metadata in ({"sha256": bundle["sha256"]}, {"sha256": hashlib.sha256(forged).hexdigest()}):
        client.put_object(bucket, bundle["key"], io.BytesIO(forged), len(forged), metadata=metadata)
        refused = plugin(testbed, "download", "cap-1", *ns, "-d", str(tmp_path / "tampered"))
        assert refused.returncode == 4, refused.stderr
        assert "is refused and was not kept" in refused.stderr and "Traceback" not in refused.stderr
        assert not list((tmp_path / "tampered").iterdir())
    fresh_cache = plugin(testbed, "report", "cap-1", *ns, env={"XDG_CACHE_HOME": str(tmp_path / "cache2")})
    assert fresh_cache.returncode == 4 and not list((tmp_path / "cache2").rglob("*.tar.gz"))
    client.put_object(bucket, bundle["key"], io.BytesIO(original), len(original),
                      metadata={"sha256": bundle["sha256"]})

    bad_inputs(testbed, namespace)

    gone = plugin(testbed, "delete", "cap-1", *ns, "--yes", timeout=120)
    assert gone.returncode == 0, gone.stderr
    assert gone.stdout == "debugcapture.debugcap.io/cap-1 deleted\n"
    settings = S3Settings.from_env()
    assert settings is not None
    assert not S3Backend(settings).exists(key=bundle["key"])  # delete returns once the operator removed it


def bad_inputs(testbed: Testbed, namespace: str) -> None:
    """Each one line saying what to do, a non-zero exit, no traceback (cap-1 exists with a bundle)."""
    for verb in ("describe", "download", "logs", "report"):
        line = one_line_error(plugin(testbed, verb, "nope", "-n", namespace))
        # report takes a file too: a mistyped path is told as neither.
        either = "there is no file or directory 'nope', and " if verb == "report" else ""
        assert line == (f'Error: {either}debugcapture "nope" not found in namespace "{namespace}"; list them with: '
                        f"kubectl debugcap get -n {namespace}"), line
    assert "kubectl debugcap get -n default" in one_line_error(plugin(testbed, "describe", "cap-1", "-n", "default"))
    assert "nope" in one_line_error(plugin(testbed, "delete", "cap-1", "nope", "-n", namespace, "--yes"))
    no_s3: dict[str, str | None] = {k: None for k in os.environ if k.startswith("DEBUGCAP_S3_")}
    # --s3: without it, a user with no S3 settings asks the operator instead (test_plugin_presigned.py).
    line = one_line_error(plugin(testbed, "download", "cap-1", "--s3", "-n", namespace, env=no_s3))
    assert "no S3 settings" in line and "set DEBUGCAP_S3_ENDPOINT" in line
    unreachable: dict[str, str | None] = {"DEBUGCAP_S3_ENDPOINT": "127.0.0.1:9", "DEBUGCAP_S3_SECURE": "false"}
    line = one_line_error(plugin(testbed, "download", "cap-1", "-n", namespace, env=unreachable))
    assert "127.0.0.1:9" in line and "check that" in line
    for args, flag in ((["create", "pod/x", "--download"], "--download applies with --wait"),
                       (["create", "pod/x", "--wait", "--local"], "--wait and --local"),
                       (["delete", "cap-1", "--all"], "--all"),
                       (["download", "cap-1", "--s3", "--presigned"], "--s3 and --presigned"),
                       (["delete", "cap-1"], "--yes")):
        assert flag in one_line_error(plugin(testbed, *args, "-n", namespace), code=2)


def test_a_namespace_user_runs_the_loop_in_their_namespace_and_is_told_what_to_ask_for_elsewhere(
        operator: KopfRunner, kube: Kube, core: k8s.CoreV1Api, testbed: Testbed, namespace: str,
        goapp_pod: GoappPod, s3_env: dict[str, str], tmp_path: Path) -> None:
    goapp_pod("x")
    rbac = k8s.RbacAuthorizationV1Api(kube.core().api_client)
    rbac.create_namespaced_role(namespace, k8s.V1Role(
        metadata=k8s.V1ObjectMeta(name="capturer"),
        rules=[k8s.V1PolicyRule(api_groups=[GROUP], resources=["debugcaptures"],
                                verbs=["create", "get", "list", "watch", "delete"])]))
    rbac.create_namespaced_role_binding(namespace, k8s.V1RoleBinding(
        metadata=k8s.V1ObjectMeta(name="capturer"),
        role_ref=k8s.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name="capturer"),
        subjects=[k8s.RbacV1Subject(kind="User", name="debugcap-user", api_group="rbac.authorization.k8s.io")]))
    user = testbed.user_kubeconfig
    eventually(lambda: kubectl(testbed, "auth", "can-i", "delete", "debugcaptures.debugcap.io", "-n", namespace,
                               kubeconfig=user, check=False).stdout.strip() == "yes", 10, "RBAC to apply")

    made = plugin(testbed, "create", "pod/x", "-t", "go-heap", "-n", namespace, "--name", "mine", "--wait",
                  "--download", "-d", str(tmp_path), kubeconfig=user, timeout=180)
    assert made.returncode == 0, made.stderr
    assert Path(made.stdout.splitlines()[-1]).is_file()
    described = plugin(testbed, "describe", "mine", "-n", namespace, kubeconfig=user)
    assert described.returncode == 0, described.stderr
    assert f'<not allowed to list events in namespace "{namespace}"' in described.stdout
    assert "Phase:          Completed" in described.stdout

    other = f"e2e-{uuid.uuid4().hex[:8]}"
    line = one_line_error(plugin(testbed, "describe", "mine", "-n", other, kubeconfig=user))
    assert "forbidden" in line.lower() and "debugcaptures" in line, line

    gone = plugin(testbed, "delete", "mine", "-n", namespace, "--yes", kubeconfig=user, timeout=120)
    assert gone.returncode == 0, gone.stderr
