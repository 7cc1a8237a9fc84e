"""Hostile pods on the real testbed (issue 16): goapp run with ``GOAPP_HOSTILE`` (bomb, flood,
trickle, escapes, secret-error; tests/fixtures/goapp/README.md), captured by the real
``kubectl-debugcap create --local`` and, for bomb, escapes and secret-error, by the operator; and
the real ``debugcap-operator`` process with seven bombs at once, against the chart's memory limit.

Every case holds to the same bounds:

* the CLI's peak RSS (``ru_maxrss`` of the CLI alone, from ``os.wait4`` in a small launcher)
  stays under CLI_PEAK_RSS_MIB = 300 MiB, for ``create --local`` with a 1 GiB bomb, 64 MiB-capped
  floods and a ``ps`` that never ends in the pod, and for ``report``/``verify`` of the bundles made
  (measured 2026-12-05: create 92 MiB with the bomb, 71 MiB flood, 55-58 MiB the others;
  ``report`` of the bomb's bundle 164 MiB, it inflates at most 128 MiB of a profile);
* the operator process's peak RSS (``VmHWM``) with seven bomb pods captured at once (go-profile:
  eight bombed profiles each) stays under OPERATOR_LIMIT_MIB = 384 MiB, the chart's limit
  (measured 146-160 MiB);
* it ends: every wait is polled against a deadline (the CLI is killed at its own), and
  pytest-timeout stops the test as a last resort;
* no ``Traceback`` anywhere, no raw ESC byte on the CLI's stdout/stderr nor in the
  DebugCapture's status or Events (escapes are shown escaped, ``\\x1b``), the pod's fake JWT and
  password in none of the CLI's output, the status, the Events, the operator's log or any bundle
  member (compressed members are read inflated, at most 64 MiB each);
* the outcome names the limit: ``decompresses to more than 16 MiB``, ``cut at 67108864 bytes``,
  ``did not finish within 3s``.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kopf.testing import KopfRunner
from kubernetes import client as k8s

from debugcap.kube.client import Kube
from testbed import cluster, images, layout

from .conftest import REPO, GoappPod, Testbed, collect_runner_leftovers, strip_finalizers, wait_running
from .test_operator import create as create_capture
from .test_operator import read, s3, wait_done

pytestmark = [pytest.mark.timeout(900),
              pytest.mark.filterwarnings("ignore:unclosed <ssl.SSLSocket:ResourceWarning")]

CLI = REPO / ".venv" / "bin" / "kubectl-debugcap"
CLI_PEAK_RSS_MIB = 300
MEMBER_READ_MAX = 64 << 20
ESC = "\x1b"
MIB = 1 << 20


def _fake(name: str) -> str:
    """The fixture's own fake secret, read from its source so the two never drift apart."""
    source = (REPO / "tests" / "fixtures" / "goapp" / "hostile.go").read_text()
    found = re.search(rf'^\s*{name}\s*=\s*"([^"]+)"', source, re.MULTILINE)
    assert found, f"{name} not found in tests/fixtures/goapp/hostile.go"
    return found.group(1)


FAKE_JWT = _fake("fakeJWT")
FAKE_PASSWORD = _fake("fakePassword")
# The JWT's payload and signature each on their own: a mask that kept either leaks it.
SECRETS = (FAKE_PASSWORD, *FAKE_JWT.split(".")[1:])


@pytest.fixture(scope="module", autouse=True)
def goapp_image(testbed: Testbed) -> None:
    """The goapp image built from this checkout's fixture source, in the node's containerd.

    A testbed that was already up when tests/fixtures/goapp changed still has the image it
    imported then, without GOAPP_HOSTILE: build (cached by the sources' hash) and import again."""
    archives = images.build_all()
    cluster.import_image(archives[layout.IMAGES["goapp"]])


# ---------------------------------------------------------------- the CLI, measured


@dataclass(frozen=True)
class CliRun:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    peak_rss_mib: float

    @property
    def bundle(self) -> Path:
        found = re.search(r"^bundle: (.+)$", self.stdout, re.MULTILINE)
        assert found, f"no bundle line:\n{self}"
        return Path(found.group(1))

    def __str__(self) -> str:
        return (f"exit {self.returncode} after {self.seconds:.1f}s, peak RSS {self.peak_rss_mib:.0f} MiB\n"
                f"stdout:\n{self.stdout[-4000:]}\nstderr:\n{self.stderr[-8000:]}")


# Linux copies a process's RSS high-water mark into its children across fork and exec, so a
# child of this (large) pytest process reports at least pytest's own peak. The CLI is started by a
# small Python launcher instead, whose wait4 sees only the CLI; it writes ru_maxrss (KiB) to argv[1]
# and kills the CLI at argv[2] seconds (exit 124).
_LAUNCHER = """
import os, signal, subprocess, sys, time
out, deadline, argv = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
started = time.monotonic()
while True:
    pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
    if pid:
        code = os.waitstatus_to_exitcode(status)
        break
    if time.monotonic() - started > deadline:
        proc.send_signal(signal.SIGKILL)
        _, status, usage = os.wait4(proc.pid, 0)
        code = 124
        break
    time.sleep(0.1)
with open(out, "w") as f:
    f.write(str(usage.ru_maxrss))
sys.exit(code)
"""


def run_cli(testbed: Testbed, *args: str, deadline: float = 240) -> CliRun:
    """``kubectl-debugcap ARGS`` and its peak RSS, killed at ``deadline`` (a failure)."""
    env = {**os.environ, "KUBECONFIG": testbed.kubeconfig, **testbed.s3, "DEBUGCAP_CLUSTER": "testbed"}
    with tempfile.TemporaryDirectory() as tmp:
        rss_file = Path(tmp) / "maxrss"
        started = time.monotonic()
        try:
            res = subprocess.run([sys.executable, "-c", _LAUNCHER, str(rss_file), str(deadline), str(CLI), *args],
                                 capture_output=True, env=env, timeout=deadline + 60)
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(f"kubectl-debugcap {' '.join(args)}: its launcher hung:\n{exc}") from None
        stdout, stderr = res.stdout.decode(errors="replace"), res.stderr.decode(errors="replace")
        assert res.returncode != 124, f"kubectl-debugcap {' '.join(args)} still running after {deadline}s " \
            f"(killed):\n{stdout[-4000:]}\n{stderr[-8000:]}"
        peak_kib = int(rss_file.read_text())
    print(f"kubectl-debugcap {args[0]} {args[1]}: exit {res.returncode}, {time.monotonic() - started:.1f} s, "
          f"peak RSS {peak_kib / 1024:.0f} MiB")  # the measured numbers, with -s
    return CliRun(res.returncode, stdout, stderr, time.monotonic() - started, peak_kib / 1024)


def capture_local(testbed: Testbed, namespace: str, pod: str, template: str, out: Path, *extra: str) -> CliRun:
    params = ["-p", "cpu_seconds=1", "-p", "trace_seconds=1"] if template in ("debug-full", "go-profile") else []
    return run_cli(testbed, "create", f"pod/{pod}", "-t", template, "--local", "-n", namespace,
                   "--output-dir", str(out), *params, *extra)


def assert_clean_cli(run: CliRun, bound_mib: int = CLI_PEAK_RSS_MIB) -> None:
    assert run.peak_rss_mib < bound_mib, f"peak RSS over {bound_mib} MiB: {run}"
    assert "Traceback" not in run.stdout + run.stderr, run
    assert ESC not in run.stdout and ESC not in run.stderr, f"raw ESC reached the terminal: {run}"
    for secret in SECRETS:
        assert secret not in run.stdout + run.stderr, f"{secret!r} printed: {run}"


def bundle_members(bundle: Path) -> dict[str, bytes]:
    """Every regular member (a gzip member inflated), each read to at most MEMBER_READ_MAX bytes."""
    found: dict[str, bytes] = {}
    with tarfile.open(bundle, "r:gz") as tar:
        for member in tar.getmembers():
            handle = tar.extractfile(member) if member.isfile() else None
            if handle is None:
                continue
            data = handle.read(MEMBER_READ_MAX)
            if data[:2] == b"\x1f\x8b":
                try:
                    data = gzip.GzipFile(fileobj=io.BytesIO(data)).read(MEMBER_READ_MAX)
                except (OSError, EOFError):
                    pass  # a cut or damaged stream: its bytes as stored were searched-for enough
            found[member.name.split("/", 1)[1]] = data
    return found


def assert_no_secret_in(members: dict[str, bytes]) -> None:
    for name, data in members.items():
        for secret in SECRETS:
            assert secret.encode() not in data, f"{secret!r} in bundle member {name}"


def manifest_of(members: dict[str, bytes]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in json.loads(members["manifest.json"])["collectors"]}


def step_line(run: CliRun, collector: str) -> str:
    found = re.search(rf"^  (\S+)\s+{re.escape(collector)}\s.*$", run.stderr, re.MULTILINE)
    assert found, f"no line for {collector}:\n{run}"
    return found.group(0)


# ---------------------------------------------------------------- kubectl-debugcap create --local


def test_bomb_is_stored_unchecked_never_inflated(testbed: Testbed, goapp_pod: GoappPod, namespace: str,
                                                 tmp_path: Path) -> None:
    goapp_pod("bomb", env={"GOAPP_HOSTILE": "bomb"})
    run = capture_local(testbed, namespace, "bomb", "go-heap", tmp_path / "out")
    assert_clean_cli(run)
    assert run.returncode == 0 and "phase: PartiallyFailed" in run.stderr, run
    members = bundle_members(run.bundle)
    steps = manifest_of(members)
    for name in ("pprof-heap", "pprof-goroutine"):
        assert steps[name]["status"] == "partial", steps[name]
        assert "decompresses to more than 16 MiB" in steps[name]["message"], steps[name]
    # Kept as the pod sent it (1 MiB on the wire), to be read with care on the user's machine.
    with tarfile.open(run.bundle, "r:gz") as tar:
        heap = next(m for m in tar.getmembers() if m.name.endswith("/pprof/heap.pb.gz"))
    assert 512 << 10 < heap.size < 4 * MIB, heap.size

    # Reading the bundle back stays bounded too (the CLI inflates at most 128 MiB of a profile).
    report = run_cli(testbed, "report", str(run.bundle))
    assert_clean_cli(report)
    assert "decompresses to more than 128 MiB" in report.stdout, report
    assert report.returncode in (0, 1), report


def test_flood_is_cut_at_the_output_cap(testbed: Testbed, goapp_pod: GoappPod, namespace: str,
                                        tmp_path: Path) -> None:
    goapp_pod("flood", env={"GOAPP_HOSTILE": "flood"})
    run = capture_local(testbed, namespace, "flood", "debug-full", tmp_path / "out")
    assert_clean_cli(run)
    assert run.returncode == 0 and "phase: PartiallyFailed" in run.stderr, run
    steps = manifest_of(bundle_members(run.bundle))
    assert steps["pprof-heap"]["status"] == "partial", steps["pprof-heap"]
    assert "cut at 67108864 bytes" in steps["pprof-heap"]["message"], steps["pprof-heap"]
    assert "cut at 67108864 bytes" in steps["pprof-goroutine"]["message"], steps["pprof-goroutine"]
    # `ps aux` in the pod never ends (`yes` behind it): cut at the cap, the session dropped.
    assert steps["ps"]["status"] == "partial" and "cut at 67108864 bytes" in steps["ps"]["message"], steps["ps"]
    assert steps["logs"]["status"] == "ok", steps["logs"]
    # What came after the flood in the same shell still ran.
    assert steps["proc-status"]["status"] == "ok", steps["proc-status"]


def test_trickle_ends_each_request_at_its_timeout(testbed: Testbed, goapp_pod: GoappPod, namespace: str,
                                                  tmp_path: Path) -> None:
    goapp_pod("trickle", env={"GOAPP_HOSTILE": "trickle"})
    run = capture_local(testbed, namespace, "trickle", "go-heap", tmp_path / "out", "--timeout", "3")
    assert_clean_cli(run)
    assert run.returncode == 0 and "phase: PartiallyFailed" in run.stderr, run
    steps = manifest_of(bundle_members(run.bundle))
    for name in ("pprof-heap", "pprof-goroutine"):
        assert steps[name]["status"] == "failed", steps[name]
        assert "did not finish within 3s" in steps[name]["message"], steps[name]
    # Not trickled: still collected.
    assert steps["metrics"]["status"] == "ok" and steps["logs"]["status"] == "ok", steps
    # Three requests of 3 s and their queueing, not the trickle's 30 minutes.
    assert run.seconds < 120, run


def test_escapes_are_shown_escaped(testbed: Testbed, goapp_pod: GoappPod, namespace: str, tmp_path: Path) -> None:
    goapp_pod("escapes", env={"GOAPP_HOSTILE": "escapes"})
    run = capture_local(testbed, namespace, "escapes", "debug-full", tmp_path / "out")
    assert_clean_cli(run)
    block = step_line(run, "pprof-block")
    assert "answered HTTP 500" in block and "\\x1b[2J" in block and "\\x1b]52;c;" in block, block
    members = bundle_members(run.bundle)
    # The evidence keeps what the pod wrote; only what reaches a terminal is escaped.
    assert ESC.encode() in members[next(n for n in members if n.startswith("logs/"))]

    for args in (["report", str(run.bundle)], ["verify", str(run.bundle)]):
        shown = run_cli(testbed, *args)
        assert_clean_cli(shown)
        assert shown.returncode in (0, 1), shown


def test_secret_in_an_error_body_reaches_nothing(testbed: Testbed, goapp_pod: GoappPod, namespace: str,
                                                 tmp_path: Path) -> None:
    goapp_pod("secret", env={"GOAPP_HOSTILE": "secret-error"})
    run = capture_local(testbed, namespace, "secret", "debug-full", tmp_path / "out")
    assert_clean_cli(run)
    assert run.returncode == 0 and "phase: PartiallyFailed" in run.stderr, run
    heap = step_line(run, "pprof-heap")
    assert "answered HTTP 500" in heap and "Authorization: Bearer ***REDACTED***" in heap, heap
    # The body's line breaks stay inside its step's line: no line of the pod's making.
    assert not re.search(r"^(GET|Authorization|dsn)", run.stderr, re.MULTILINE), run
    members = bundle_members(run.bundle)
    assert any(n.startswith("errors/") for n in members), sorted(members)
    assert_no_secret_in(members)


# ---------------------------------------------------------------- through the operator


@dataclass
class OperatorRun:
    runner: KopfRunner


@pytest.fixture
def operator_run(crds: None, operator_env: None, kube: Kube, namespace: str) -> Iterator[OperatorRun]:
    """conftest's ``operator``, but its log is searched here once it has stopped."""
    args = ["run", "--standalone", "-n", namespace, "-m", "debugcap.operator.handlers"]
    held = OperatorRun(KopfRunner(args, timeout=60))
    with held.runner:
        yield held
    collect_runner_leftovers()
    strip_finalizers(kube, namespace)
    output = held.runner.output
    assert held.runner.exception is None, output
    assert "Traceback" not in output, output
    for secret in SECRETS:
        assert secret not in output, f"{secret!r} in the operator's log"


def operator_capture(kube: Kube, core: k8s.CoreV1Api, namespace: str, pod: str, template: str,
                     tmp_path: Path) -> tuple[dict[str, Any], list[str], dict[str, bytes]]:
    """The capture's final status, its Events' messages and its bundle's members (from MinIO)."""
    name = f"cap-{uuid.uuid4().hex[:6]}"
    create_capture(kube, namespace, name, {"target": {"pod": pod}, "template": template,
                                           "parameters": {"cpuSeconds": 1, "traceSeconds": 1, "timeoutSeconds": 5}})
    status = wait_done(kube, namespace, name, seconds=240)["status"]
    # The Events of the end are written right after the phase; give them a moment, polled.
    deadline = time.monotonic() + 15
    while True:
        events = core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}").items
        if any(e.reason in ("CaptureCompleted", "CaptureFailed", "CapturePartiallyFailed") for e in events) \
                or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    [pod_status] = status["pods"]
    dest = tmp_path / Path(pod_status["bundle"]["key"]).name
    s3().get(key=pod_status["bundle"]["key"], dest=dest)
    text = json.dumps(read(kube, namespace, name)["status"])  # as a reader of the object gets it
    assert ESC not in text and "\\u001b" not in text, f"raw ESC in status: {text}"
    messages = [e.message or "" for e in events]
    for message in messages:
        assert ESC not in message, f"raw ESC in an Event: {message!r}"
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} in status"
        assert not any(secret in m for m in messages), f"{secret!r} in an Event: {messages}"
    return status, messages, bundle_members(dest)


def _steps(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in status["pods"][0]["collectors"]}


def test_operator_bomb_secret_and_escapes(operator_run: OperatorRun, kube: Kube, core: k8s.CoreV1Api,
                                          namespace: str, goapp_pod: GoappPod, tmp_path: Path) -> None:
    goapp_pod("bomb", env={"GOAPP_HOSTILE": "bomb"})
    goapp_pod("secret", env={"GOAPP_HOSTILE": "secret-error"})
    goapp_pod("escapes", env={"GOAPP_HOSTILE": "escapes"})

    status, _, members = operator_capture(kube, core, namespace, "bomb", "go-profile", tmp_path)
    assert status["phase"] == "PartiallyFailed", status
    steps = _steps(status)
    for name in ("pprof-heap", "pprof-allocs", "pprof-cpu"):
        assert steps[name]["status"] == "partial", steps[name]
        assert "decompresses to more than 16 MiB" in steps[name]["message"], steps[name]
    assert_no_secret_in(members)

    status, messages, members = operator_capture(kube, core, namespace, "secret", "go-profile", tmp_path)
    assert status["phase"] in ("PartiallyFailed", "Failed"), status
    heap = _steps(status)["pprof-heap"]
    assert heap["status"] == "failed" and "answered HTTP 500" in heap["message"], heap
    assert_no_secret_in(members)

    status, messages, members = operator_capture(kube, core, namespace, "escapes", "go-profile", tmp_path)
    block = _steps(status)["pprof-block"]
    assert block["status"] == "failed" and "answered HTTP 500" in block["message"], block
    assert "[2J" in block["message"], block  # told, not obeyed: the ESC itself is checked above


# ---------------------------------------------------------------- the operator process, measured

# charts/debugcap/values.yaml: resources.limits.memory. Measured 2026-12-05: 146-160 MiB (VmHWM)
# with seven bombs at once, 98-100 MiB with seven plain pods (benchmarks/bench_operator_bombs.py).
OPERATOR_LIMIT_MIB = 384
BOMB_PODS = 7


def _vm_hwm_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmHWM in /proc/{pid}/status")


def test_operator_process_under_seven_concurrent_bombs_stays_under_its_limit(
        crds: None, operator_env: None, kube: Kube, core: k8s.CoreV1Api, namespace: str, goapp_pod: GoappPod,
        tmp_path: Path) -> None:
    """The real ``debugcap-operator`` (the chart's command), capturing seven goapp bomb pods at
    once with go-profile (eight bombed profiles each): its peak RSS stays under the chart's limit."""
    from .test_operator import _free_port, wait_for

    names = [f"bomb-{i}" for i in range(BOMB_PODS)]
    for name in names:
        goapp_pod(name, env={"GOAPP_HOSTILE": "bomb"}, labels={"hostile": "bomb"}, wait=False)
    for name in names:
        wait_running(core, namespace, name)
    liveness = _free_port()
    env = {**os.environ, "DEBUGCAP_OPERATOR_NAMESPACES": namespace, "DEBUGCAP_OPERATOR_CONCURRENCY": str(BOMB_PODS),
           "DEBUGCAP_OPERATOR_LIVENESS_PORT": str(liveness), "DEBUGCAP_OPERATOR_ANALYSIS_TRACE_LIMIT_MIB": "4"}
    log_path = tmp_path / "operator.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([str(REPO / ".venv" / "bin" / "debugcap-operator")], env=env, stdout=log,
                                stderr=subprocess.STDOUT)
    try:
        def healthy() -> bool:
            assert proc.poll() is None, log_path.read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{liveness}/healthz", timeout=2):
                    return True
            except OSError:
                return False

        wait_for(healthy, 60, "the operator's liveness endpoint")
        create_capture(kube, namespace, "bombs", {
            "target": {"selector": {"matchLabels": {"hostile": "bomb"}}, "maxPods": BOMB_PODS},
            "template": "go-profile", "parameters": {"cpuSeconds": 1, "traceSeconds": 1}})
        status = wait_done(kube, namespace, "bombs", seconds=300)["status"]
        peak = _vm_hwm_mib(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
        strip_finalizers(kube, namespace)
    output = log_path.read_text(errors="replace")
    print(f"operator under {BOMB_PODS} bombs: peak RSS (VmHWM) {peak:.0f} MiB, limit {OPERATOR_LIMIT_MIB} MiB")
    assert "Traceback" not in output, output[-8000:]
    assert peak < OPERATOR_LIMIT_MIB, f"operator peak RSS {peak:.0f} MiB over {OPERATOR_LIMIT_MIB} MiB"
    assert status["phase"] == "PartiallyFailed", status
    assert len(status["pods"]) == BOMB_PODS and all(p.get("bundle") for p in status["pods"]), status["pods"]
    for pod in status["pods"]:
        steps = {c["name"]: c for c in pod["collectors"]}
        assert steps["pprof-heap"]["status"] == "partial", pod
        assert "decompresses to more than 16 MiB" in steps["pprof-heap"]["message"], pod
