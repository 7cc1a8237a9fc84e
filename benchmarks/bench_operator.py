"""Operator: a debug-full DebugCapture of 1 pod against one of 20 pods, on the testbed (prints numbers; not a test).

Usage: .venv/bin/python benchmarks/bench_operator.py [--runs 2] [--pods 20] [--concurrency 8]

Needs the testbed (``python -m testbed up``). It creates its own namespace with ``--pods`` goapp
pods labelled ``app=bench``, applies ``crds/``, and starts the real ``debugcap-operator`` as a
subprocess serving only that namespace, with ``DEBUGCAP_OPERATOR_CONCURRENCY=--concurrency`` and
the testbed's S3 (MinIO). Then, ``--runs`` times each, alternated:

* a DebugCapture of pod ``bench-01`` alone (``template: debug-full``, cpuSeconds=1, traceSeconds=1);
* one with ``selector: {matchLabels: {app: bench}}``, ``maxPods: --pods``, same parameters.

One single-pod capture runs first as a warm-up (kopf's watch, the template cache, MinIO's bucket)
and is printed but not counted. For each capture it prints two wall times:

* ``observed``: from the create call returning to the first status poll (every 0.2 s) showing a
  terminal phase: what a user waiting on the object sees;
* ``stamped``: ``status.completionTime - metadata.creationTimestamp``; both are whole seconds,
  so this one is only good to +-1 s.

It prints the medians, the ratio of the 20-pod median to the 1-pod median (observed times), and
the operator's peak RSS: its ``VmHWM`` read from /proc just before it is stopped, and the largest
sum of ``VmRSS`` over it and its children, polled every 0.1 s. Every bundle that the status lists
must exist in S3, and a selector capture must list ``--pods`` Completed pods.

To explain the numbers, each capture also prints: the most pods seen Running at once in the
status, the median time a pod took (first poll Running to first poll ended), how busy the host's
CPUs were during the capture (/proc/stat), the operator's own CPU seconds, and the slowest
collectors by median ``durationMs``.

At the end the captures are deleted while the operator still runs (its finalizer deletes the
bundles from S3), then the operator is stopped and the namespace deleted.

Goals (issue): the 20-pod capture takes under 3x one pod's time; operator RSS under 200 MB.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kubernetes import client as k8s  # noqa: E402
from kubernetes.client.exceptions import ApiException  # noqa: E402

from debugcap.kube.client import Kube, KubeTarget  # noqa: E402
from debugcap.settings import S3Settings  # noqa: E402
from debugcap.storage.s3 import S3Backend  # noqa: E402
from testbed import builds, cluster, layout  # noqa: E402

GROUP, VERSION, PLURAL = "debugcap.io", "v1alpha1", "debugcaptures"
TERMINAL = {"Completed", "PartiallyFailed", "Failed"}
PARAMS: dict[str, int | str] = {"cpuSeconds": 1, "traceSeconds": 1}
OPERATOR = str(Path(sys.executable).with_name("debugcap-operator"))
MB = 1000 * 1000
RATIO_GOAL = 3.0
RSS_GOAL = 200 * MB


def say(msg: str) -> None:
    print(msg, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---- the operator's memory ----


def _proc_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def _tree(pid: int) -> list[int]:
    """``pid`` and all its descendants, from /proc/<pid>/task/*/children."""
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                todo.extend(int(c) for c in (task / "children").read_text().split())
            except (FileNotFoundError, ProcessLookupError):
                pass
    return pids


class RssSampler(threading.Thread):
    """Polls the summed VmRSS of a process tree; ``peak`` is the largest sum seen, in bytes."""

    def __init__(self, pid: int, every: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.pid, self.every, self.peak, self.children_seen = pid, every, 0, 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            tree = _tree(self.pid)
            self.children_seen = max(self.children_seen, len(tree) - 1)
            self.peak = max(self.peak, sum(_proc_kb(p, "VmRSS") for p in tree) * 1024)
            self._stop_event.wait(self.every)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


# ---- cluster ----


def make_pods(core: k8s.CoreV1Api, namespace: str, count: int, env: dict[str, str] | None = None) -> list[str]:
    """``count`` goapp pods ``bench-NN`` (label app=bench, ``env`` set) in a new ``namespace``, Running."""
    core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=namespace, labels={"debugcap-bench": "1"})))
    deadline = time.monotonic() + 30
    while True:
        try:
            core.read_namespaced_service_account("default", namespace)
            break
        except ApiException as exc:
            if exc.status != 404 or time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    names = [f"bench-{i:02d}" for i in range(1, count + 1)]
    for name in names:
        container = k8s.V1Container(name="app", image=layout.IMAGES["goapp"], image_pull_policy="Never",
                                    env=[k8s.V1EnvVar(name=k, value=v) for k, v in (env or {}).items()])
        pod = k8s.V1Pod(
            metadata=k8s.V1ObjectMeta(name=name, labels={"app": "bench"}),
            spec=k8s.V1PodSpec(containers=[container], termination_grace_period_seconds=0,
                               automount_service_account_token=False),
        )
        core.create_namespaced_pod(namespace, pod)
    deadline = time.monotonic() + 180
    while True:
        pods = core.list_namespaced_pod(namespace, label_selector="app=bench").items
        ready = [p for p in pods if p.status.phase == "Running"
                 and all(cs.ready for cs in p.status.container_statuses or [])]
        if len(ready) == count:
            return names
        if time.monotonic() > deadline:
            raise SystemExit(f"only {len(ready)}/{count} pods Running after 180 s")
        time.sleep(1)


def start_operator(namespace: str, env: dict[str, str], concurrency: int, work: Path,
                   log_path: Path) -> tuple[subprocess.Popen[bytes], int]:
    liveness = free_port()
    op_env = {**os.environ, **env,
              "DEBUGCAP_OPERATOR_NAMESPACES": namespace,
              "DEBUGCAP_OPERATOR_CONCURRENCY": str(concurrency),
              "DEBUGCAP_OPERATOR_LIVENESS_PORT": str(liveness),
              "DEBUGCAP_OPERATOR_WORK_DIR": str(work / "work"),
              "DEBUGCAP_SPOOL_DIR": str(work / "spool")}
    log = log_path.open("wb")
    proc = subprocess.Popen([OPERATOR], env=op_env, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"debugcap-operator exited {proc.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{liveness}/healthz", timeout=2):
                return proc, liveness
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"debugcap-operator not healthy after 60 s:\n{log_path.read_text()[-3000:]}")


def _stamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def run_capture(kube: Kube, namespace: str, name: str, target: dict[str, Any], operator_pid: int = 0,
                timeout: float = 600, template: str = "debug-full",
                params: dict[str, int | str] | None = None) -> dict[str, Any]:
    """Create one DebugCapture, poll until it ends; its status plus the two wall times."""
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "DebugCapture", "metadata": {"name": name},
            "spec": {"target": target, "template": template, "parameters": PARAMS if params is None else params}}
    custom = kube.custom()
    seen_running: dict[str, float] = {}  # pod -> first poll showing it Running, seconds after create
    seen_done: dict[str, float] = {}  # pod -> first poll showing it ended
    cpu_before, op_before = host_cpu(), proc_cpu_seconds(operator_pid) if operator_pid else 0.0
    pods_before = pods_cpu_seconds()
    by_command = cpu_by_command()
    started = time.monotonic()
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
    deadline = started + timeout
    while True:
        obj = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        status = obj.get("status") or {}
        now = time.monotonic() - started
        for pod in status.get("pods") or []:
            if pod.get("phase") == "Running":
                seen_running.setdefault(pod["name"], now)
            elif pod.get("phase") in TERMINAL:
                seen_done.setdefault(pod["name"], now)
        if status.get("phase") in TERMINAL:
            observed = now
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"{name} did not end within {timeout:.0f} s: {status}")
        time.sleep(0.2)
    cpu_after, op_after = host_cpu(), proc_cpu_seconds(operator_pid) if operator_pid else 0.0
    pods_used = pods_cpu_seconds() - pods_before
    top = top_cpu(by_command, cpu_by_command())
    stamped = (_stamp(status["completionTime"]) - _stamp(obj["metadata"]["creationTimestamp"])).total_seconds()
    # Most pods seen Running in one poll, and how long a pod took from first seen Running to ended.
    events = sorted([(t, 1) for t in seen_running.values()] + [(t, -1) for t in seen_done.values()])
    level = peak_running = 0
    for _, step in events:
        level += step
        peak_running = max(peak_running, level)
    per_pod = [seen_done[p] - seen_running[p] for p in seen_done if p in seen_running]
    busy = 1 - (cpu_after[1] - cpu_before[1]) / max(cpu_after[0] - cpu_before[0], 1)
    return {"name": name, "status": status, "observed": observed, "stamped": stamped,
            "peak_running": peak_running, "pod_seconds": statistics.median(per_pod) if per_pod else 0.0,
            "host_busy": busy, "operator_cpu": op_after - op_before,
            "collector_ms": _slowest_collectors(status), "top_cpu": top, "pods_cpu": pods_used,
            "host_cpu_seconds": (cpu_after[0] - cpu_before[0] - (cpu_after[1] - cpu_before[1]))
            / os.sysconf("SC_CLK_TCK")}


def _slowest_collectors(status: dict[str, Any]) -> str:
    """The three collectors with the largest median durationMs over the capture's pods."""
    by_name: dict[str, list[float]] = {}
    for pod in status.get("pods") or []:
        for c in pod.get("collectors") or []:
            by_name.setdefault(c["name"], []).append(float(c.get("durationMs") or 0))
    medians = sorted(((statistics.median(v), k) for k, v in by_name.items()), reverse=True)[:3]
    return ", ".join(f"{k} {ms:.0f}ms" for ms, k in medians)


def host_cpu() -> tuple[int, int]:
    """(total, idle+iowait) jiffies of all CPUs, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(fields), fields[3] + fields[4]


def pods_cpu_seconds() -> float:
    """CPU seconds used so far inside all pods (their cgroups): the Go programs and every command
    a capture runs in them, which the per-command list misses because those processes are short."""
    for path in ("/sys/fs/cgroup/cpuacct/kubepods/cpuacct.usage", "/sys/fs/cgroup/kubepods/cpu.stat"):
        try:
            text = Path(path).read_text()
        except OSError:
            continue
        if path.endswith("cpuacct.usage"):
            return int(text) / 1e9
        for line in text.splitlines():
            if line.startswith("usage_usec"):
                return int(line.split()[1]) / 1e6
    return 0.0


def cpu_by_command() -> dict[str, float]:
    """CPU seconds used so far by every process on the host, summed by command name."""
    totals: dict[str, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        comm = text[text.index("(") + 1:text.rindex(")")]
        parts = text.rsplit(")", 1)[1].split()
        totals[comm] = totals.get(comm, 0.0) + (int(parts[11]) + int(parts[12])) / tick
    return totals


def top_cpu(before: dict[str, float], after: dict[str, float], n: int = 8) -> str:
    """The ``n`` commands that used the most CPU between two :func:`cpu_by_command` readings.

    Processes that started and ended in between are missed (short ``runc`` and ``kubectl``
    helpers), so the sum is below the host total."""
    used = sorted(((after[k] - before.get(k, 0.0), k) for k in after), reverse=True)[:n]
    return ", ".join(f"{k} {v:.1f}s" for v, k in used if v >= 0.05)


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process so far."""
    try:
        parts = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def check_bundles(s3: S3Backend, result: dict[str, Any], expected_pods: int) -> list[str]:
    """The problems with one finished capture: phase, pod count, bundles missing from S3."""
    status = result["status"]
    problems = []
    pods = status.get("pods") or []
    done = [p for p in pods if p.get("bundle")]
    if len(done) != expected_pods:
        problems.append(f"{result['name']}: {len(done)}/{expected_pods} pods with a bundle: "
                        + "; ".join(f"{p['name']} {p.get('phase')} {p.get('message', '')}" for p in pods
                                    if p not in done))
    # A pod whose bundle was stored but one collector failed is PartiallyFailed: a note, not a
    # benchmark failure, but printed with the failing collectors.
    result["notes"] = [f"{p['name']} {p.get('phase')}: "
                       + "; ".join(f"{c['name']} {c['status']}: {c.get('message', '')}"
                                   for c in p.get("collectors") or [] if c["status"] not in ("ok", "skipped"))
                       for p in pods if p.get("phase") != "Completed"]
    missing = [p["bundle"]["key"] for p in done if not s3.exists(key=p["bundle"]["key"])]
    if missing:
        problems.append(f"{result['name']}: {len(missing)} bundles not in S3: {missing[:3]}")
    result["bundles_in_s3"] = len(done) - len(missing)
    return problems


def delete_captures(kube: Kube, namespace: str, timeout: float = 120) -> None:
    """Delete every DebugCapture while the operator runs, so its finalizer removes the bundles."""
    custom = kube.custom()
    custom.delete_collection_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
    deadline = time.monotonic() + timeout
    while custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["items"]:
        if time.monotonic() > deadline:
            say(f"  captures still present after {timeout:.0f} s; stripping finalizers")
            strip_finalizers(kube, namespace)
            return
        time.sleep(0.5)


def strip_finalizers(kube: Kube, namespace: str) -> None:
    custom = kube.custom()
    for item in custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["items"]:
        if item["metadata"].get("finalizers"):
            try:
                custom.patch_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, item["metadata"]["name"], {"metadata": {"finalizers": None}},
                    _content_type="application/merge-patch+json")
            except ApiException:
                pass


# ---- report ----


def fmt_runs(results: list[dict[str, Any]]) -> str:
    return ", ".join(f"{r['observed']:.2f}s (stamped {r['stamped']:.0f}s)" for r in results)



def testbed_setup() -> tuple[dict[str, str], S3Backend, Kube]:
    """The running testbed's environment (also put in os.environ: S3Settings and the operator read
    it), its CRDs applied and established, its MinIO and API server; exits unless it is healthy."""
    health = cluster.status() if cluster.P.kubeconfig.exists() else {}
    if not health or not all(health.values()):
        raise SystemExit(f"the testbed is not healthy ({health}); run: .venv/bin/python -m testbed up")
    env = {k: v for k, v in cluster.env_vars().items() if k != "PATH"}
    os.environ.update(env)
    kubectl = str(builds.binary("kubernetes", "kubectl"))
    kenv = {**os.environ, "KUBECONFIG": env["KUBECONFIG"]}
    subprocess.run([kubectl, "apply", "-f", str(REPO / "crds")], env=kenv, check=True, capture_output=True)
    subprocess.run([kubectl, "wait", "--for=condition=Established", "--timeout=30s", "-f", str(REPO / "crds")],
                   env=kenv, check=True, capture_output=True)
    s3_settings = S3Settings.from_env()
    assert s3_settings is not None, "DEBUGCAP_S3_* not set"
    return env, S3Backend(s3_settings), Kube.load(KubeTarget(kubeconfig=env["KUBECONFIG"]))

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--pods", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--keep-log", action="store_true", help="print the operator log path and keep it")
    parser.add_argument("--transport", choices=("auto", "direct", "proxy", "port-forward"), default=None,
                        help="spec.parameters.transport of every capture (default: the operator's, auto)")
    args = parser.parse_args()
    if args.transport:
        PARAMS["transport"] = args.transport

    env, s3, kube = testbed_setup()
    core = kube.core()
    namespace = f"bench-op-{uuid.uuid4().hex[:6]}"
    tmp = Path(tempfile.mkdtemp(prefix="bench-operator-"))
    proc: subprocess.Popen[bytes] | None = None
    sampler: RssSampler | None = None
    hwm = 0
    problems: list[str] = []
    one: list[dict[str, Any]] = []
    many: list[dict[str, Any]] = []
    try:
        say(f"namespace {namespace}: creating {args.pods} goapp pods (app=bench)")
        t0 = time.monotonic()
        names = make_pods(core, namespace, args.pods)
        say(f"  all Running in {time.monotonic() - t0:.1f}s")
        proc, _ = start_operator(namespace, env, args.concurrency, tmp, tmp / "operator.log")
        sampler = RssSampler(proc.pid)
        sampler.start()
        say(f"operator pid {proc.pid} (concurrency {args.concurrency}), healthy; "
            f"RSS at start {_proc_kb(proc.pid, 'VmRSS') / 1000:.0f} MB")

        warm = run_capture(kube, namespace, "warmup", {"pod": names[0]}, proc.pid)
        problems += check_bundles(s3, warm, 1)
        say(f"warm-up, 1 pod: {warm['observed']:.2f}s (not counted)")
        for i in range(1, args.runs + 1):
            r = run_capture(kube, namespace, f"one-{i}", {"pod": names[0]}, proc.pid)
            problems += check_bundles(s3, r, 1)
            one.append(r)
            say(f"run {i}, 1 pod:   {r['observed']:.2f}s observed, {r['stamped']:.0f}s stamped, "
                f"bundles in S3 {r['bundles_in_s3']}/1")
            r = run_capture(kube, namespace, f"many-{i}",
                            {"selector": {"matchLabels": {"app": "bench"}}, "maxPods": args.pods}, proc.pid)
            problems += check_bundles(s3, r, args.pods)
            many.append(r)
            say(f"run {i}, {args.pods} pods: {r['observed']:.2f}s observed, {r['stamped']:.0f}s stamped, "
                f"bundles in S3 {r['bundles_in_s3']}/{args.pods}")
        for r in [warm, *one, *many]:
            say(f"  {r['name']:8} most pods Running at once {r['peak_running']:2d}; median pod "
                f"{r['pod_seconds']:.1f}s; host CPU busy {r['host_busy']:.0%} of {os.cpu_count()} cores; "
                f"operator CPU {r['operator_cpu']:.1f}s; slowest collectors (median): {r['collector_ms']}")
            say(f"           CPU used on the host {r['host_cpu_seconds']:.1f}s, inside the pods {r['pods_cpu']:.1f}s, "
                f"by command: {r['top_cpu']}")
            for note in r["notes"]:
                say(f"           not Completed: {note}")
        hwm = _proc_kb(proc.pid, "VmHWM") * 1024
        say("deleting the captures (the operator deletes their bundles from S3)")
        delete_captures(kube, namespace)
    finally:
        if sampler is not None:
            sampler.stop()
        if proc is not None:
            if not hwm:
                hwm = _proc_kb(proc.pid, "VmHWM") * 1024
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        try:
            strip_finalizers(kube, namespace)
        except ApiException:
            pass
        core.delete_namespace(namespace, grace_period_seconds=0)
        kube.close()
        log = (tmp / "operator.log").read_text(errors="replace") if (tmp / "operator.log").exists() else ""
        if "Traceback" in log:
            problems.append(f"the operator log has a Traceback (see {tmp / 'operator.log'})")
        elif not args.keep_log:
            for p in sorted(tmp.rglob("*"), reverse=True):
                p.rmdir() if p.is_dir() else p.unlink()
            tmp.rmdir()
        else:
            say(f"operator log: {tmp / 'operator.log'}")

    med_one = statistics.median(r["observed"] for r in one)
    med_many = statistics.median(r["observed"] for r in many)
    ratio = med_many / med_one
    peak = max(hwm, sampler.peak if sampler else 0)
    say("")
    say(f"== debug-full (cpuSeconds=1, traceSeconds=1), {args.pods} pods, concurrency {args.concurrency}, "
        f"{args.runs} runs each ==")
    say(f"1 pod:    {fmt_runs(one)}; median {med_one:.2f}s")
    say(f"{args.pods} pods:  {fmt_runs(many)}; median {med_many:.2f}s")
    say(f"ratio {args.pods}-pod / 1-pod (median, observed): {ratio:.2f}x  "
        f"(goal < {RATIO_GOAL:.0f}x: {'MET' if ratio < RATIO_GOAL else 'NOT MET'})")
    polled = sampler.peak if sampler else 0
    say(f"operator peak RSS: VmHWM {hwm / MB:.0f} MB; polled VmRSS of process tree {polled / MB:.0f} MB "
        f"(children seen: {sampler.children_seen if sampler else 0})  "
        f"(goal < {RSS_GOAL / MB:.0f} MB: {'MET' if peak < RSS_GOAL else 'NOT MET'})")
    say(f"bundles verified in S3: {sum(r['bundles_in_s3'] for r in many)}/{args.pods * len(many)} (selector runs), "
        f"{sum(r['bundles_in_s3'] for r in one)}/{len(one)} (1-pod runs)")
    for p in problems:
        say(f"PROBLEM: {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
