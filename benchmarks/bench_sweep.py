"""Sweeps at scale (issue 17): host CPU per pod, per process, sweep wall against the window floor,
and the light sweep over 200 pods, this checkout's operator side by side with another's.

Usage: .venv/bin/python benchmarks/bench_sweep.py [--base /tmp/base-17] [--rounds 2] [--pods 100]
       [--light-pods 200] [--concurrency 8] [--skip-full] [--skip-light] [--skip-impact]
       [--keep] [--namespace NS] [--unit-costs REPS]

``--keep`` leaves the namespace and its pods (creating 200 takes a minute or more and loads the
node); ``--namespace`` runs again on them. ``--unit-costs`` repeats each request the operator
makes for one pod (GET, LIST, Event, status PATCH of 10/50/100 pods, each group of debug-full's
steps) and prints the API server's CPU per request, less its idle rate.

Needs the testbed with ``maxPods`` >= ``--light-pods`` + the other tests' pods (testbed/cluster.py
sets 250). It creates one namespace with max(--pods, --light-pods) goapp pods; labels pick the
first ``--pods`` for the debug-full sweep (``sweep=full``) and all of them for the light one.
Each round runs, for each operator in turn (``new``: this checkout's venv; ``base``: ``--base``'s,
a ``git worktree`` of the older commit with its own ``.venv``), the same sweeps against the same
pods, so both see the same load from whatever else shares the machine. Each operator is started
for its sweep and stopped after it: its peak RSS (VmHWM) is that sweep's.

* ``full``: ``template: debug-full``, cpuSeconds=1, traceSeconds=1, transport direct (the operator
  runs on the host, where pod IPs are routed), ``--pods`` pods at ``--concurrency``.
* ``light``: ``template: go-vitals``, transport direct, ``--light-pods`` pods. The base checkout
  has no such template: the benchmark copies this checkout's file into it (data, not code).

CPU is read from /proc/<pid>/stat (utime+stime, plus cutime+cstime: the ``runc`` an exec runs
is the shim's reaped child) before and after each sweep for: kube-apiserver, etcd, the operator,
kubelet + containerd + every containerd-shim, and the pods of the namespace (their cgroups'
cpuacct.usage, which holds the Go programs and every command run in them). Other helpers' load
on the API server is counted too: the idle rate (a quiet interval before each round) is printed
for scale. Per pod = sweep's CPU / pods.

Target impact (``--skip-impact`` to leave out): one pod's cgroup CPU over a debug-full capture
against the same pod's over an equally long quiet interval and over a capture of ``go-profile``
(the profilers alone), and its Go memstats (/debug/vars, read directly) before and after.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_operator import (  # noqa: E402
    GROUP,
    MB,
    PLURAL,
    TERMINAL,
    VERSION,
    _proc_kb,
    check_bundles,
    delete_captures,
    make_pods,
    run_capture,
    say,
    start_operator,
    strip_finalizers,
    testbed_setup,
)
from kubernetes import client as k8s  # noqa: E402
from kubernetes import watch  # noqa: E402
from kubernetes.client.exceptions import ApiException  # noqa: E402
from urllib3.exceptions import ProtocolError  # noqa: E402

from testbed import builds, layout  # noqa: E402

FULL_PARAMS: dict[str, int | str] = {"cpuSeconds": 1, "traceSeconds": 1, "transport": "direct"}
LIGHT_PARAMS: dict[str, int | str] = {"transport": "direct"}
WINDOW_SECONDS = 1.0  # debug-full's window with cpuSeconds=1, traceSeconds=1
GOALS = {"host_per_pod": 0.2, "api_per_pod_full": 0.020, "floor_ratio": 1.2, "api_per_pod_light": 0.005,
         "rss_light": 150 * MB}
TICK = os.sysconf("SC_CLK_TCK")
CGROUP = Path("/sys/fs/cgroup/cpuacct/kubepods")


# ---- CPU per process ----


def _stat_seconds(pid: int, children: bool = True) -> float:
    try:
        parts = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    ticks = int(parts[11]) + int(parts[12]) + (int(parts[13]) + int(parts[14]) if children else 0)
    return ticks / TICK


def _testbed_pid(name: str) -> int:
    return int((layout.STATE / "pids" / f"{name}.pid").read_text())


def _shim_pids() -> list[int]:
    pids = []
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().startswith("containerd-shim"):
                pids.append(int(comm.parent.name))
        except (FileNotFoundError, ProcessLookupError):
            pass
    return pids


def _pod_cgroups(core: k8s.CoreV1Api, namespace: str) -> list[Path]:
    uids = [p.metadata.uid for p in core.list_namespaced_pod(namespace).items]
    return [d for uid in uids for d in CGROUP.glob(f"*/pod{uid}")] + [CGROUP / f"pod{uid}" for uid in uids
                                                                      if (CGROUP / f"pod{uid}").exists()]


def _cgroup_seconds(path: Path) -> float:
    try:
        return int((path / "cpuacct.usage").read_text()) / 1e9
    except OSError:
        return 0.0


class CpuMeter:
    """CPU seconds so far of each process group the issue names; :meth:`read` gives a snapshot."""

    def __init__(self, cgroups: list[Path], operator_pid: Callable[[], int]) -> None:
        self.cgroups, self.operator_pid = cgroups, operator_pid
        self.fixed = {name: _testbed_pid(name) for name in ("kube-apiserver", "etcd", "kubelet", "containerd")}

    def read(self) -> dict[str, float]:
        pids = {name: _testbed_pid(name) for name in self.fixed}
        out = {name: _stat_seconds(pid) for name, pid in pids.items()}
        out.update({f"pid:{name}": float(pid) for name, pid in pids.items()})
        out.update({f"shim:{p}": _stat_seconds(p) for p in _shim_pids()})
        out["operator"] = _stat_seconds(self.operator_pid()) if self.operator_pid() else 0.0
        out["pods"] = sum(_cgroup_seconds(c) for c in self.cgroups)
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        out["host_busy"] = (sum(fields) - fields[3] - fields[4]) / TICK
        return out


def api_requests() -> dict[str, float]:
    """The API server's request counts so far, by verb, resource and subresource (its /metrics)."""
    kubectl = str(builds.binary("kubernetes", "kubectl"))
    for _ in range(30):  # another helper may be restarting the API server
        done = subprocess.run([kubectl, "get", "--raw", "/metrics"], capture_output=True, text=True)
        if done.returncode == 0:
            break
        time.sleep(2)
    text = done.stdout
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels = dict(kv.split("=", 1) for kv in line[line.index("{") + 1:line.rindex("}")].split(","))
        key = " ".join(v.strip('"') for v in (labels["verb"], labels["resource"], labels["subresource"]) if v != '""')
        if labels["resource"] in ('""', '"leases"', '"events"') and labels["verb"] != '"LIST"' and "/" in key:
            continue
        out[key] = out.get(key, 0.0) + float(line.rsplit(" ", 1)[1])
    return out


def _delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """``after - before`` per group. Shims are summed per pid: one that ended in between (another
    test deleted its pod) would otherwise count negative; one that started counts from zero."""
    d = {k: after[k] - before.get(k, 0.0) for k in after if not k.startswith(("shim:", "pid:"))}
    # A component restarted in between (by another helper) counts from its new start, and says so.
    d["restarted"] = float(sum(after[k] != before.get(k) for k in after if k.startswith("pid:")))
    for k in after:
        if k.startswith("pid:") and after[k] != before.get(k):
            d[k[4:]] = after[k[4:]]
    d["shims"] = sum(v - before.get(k, 0.0) for k, v in after.items() if k.startswith("shim:"))
    d["node"] = d["kubelet"] + d["containerd"] + d["shims"]
    d["total"] = d["kube-apiserver"] + d["etcd"] + d["operator"] + d["node"] + d["pods"]
    return d


# ---- one sweep ----


class Operators:
    """Starts and stops the operator of one checkout for one sweep at a time."""

    def __init__(self, namespace: str, env: dict[str, str], concurrency: int, tmp: Path) -> None:
        self.namespace, self.env, self.concurrency, self.tmp = namespace, env, concurrency, tmp
        self.proc: subprocess.Popen[bytes] | None = None

    def pid(self) -> int:
        return self.proc.pid if self.proc is not None else 0

    def start(self, which: str, binary: str) -> None:
        import bench_operator
        bench_operator.OPERATOR = binary
        work = self.tmp / f"{which}-{uuid.uuid4().hex[:4]}"
        work.mkdir()
        self.proc, _ = start_operator(self.namespace, self.env, self.concurrency, work, work / "operator.log")
        self.log = work / "operator.log"

    def stop(self) -> int:
        """Stop it; its VmHWM in bytes."""
        assert self.proc is not None
        hwm = _proc_kb(self.proc.pid, "VmHWM") * 1024
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        return hwm


def watch_captures(kube: Any, namespace: str, targets: dict[str, dict[str, Any]], template: str,
                   params: dict[str, int | str], timeout: float = 900) -> dict[str, Any]:
    """Create DebugCaptures (name -> target) at once and watch them until all ended (a watch, not
    polls: reading a 100-pod status five times a second would be this benchmark's cost, not the
    operator's); their statuses merged, pods listed together."""
    custom = kube.custom()
    started = time.monotonic()
    for name, target in targets.items():
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "DebugCapture", "metadata": {"name": name},
                "spec": {"target": target, "template": template, "parameters": params}}
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
    ended: dict[str, dict[str, Any]] = {}
    while time.monotonic() - started < timeout:
        try:
            for event in watch.Watch().stream(custom.list_namespaced_custom_object, GROUP, VERSION, namespace,
                                              PLURAL, timeout_seconds=30):
                obj = event["object"]
                status = obj.get("status") or {}
                if obj["metadata"]["name"] in targets and status.get("phase") in TERMINAL:
                    ended[obj["metadata"]["name"]] = status
                if len(ended) == len(targets):
                    pods = [p for s in ended.values() for p in s.get("pods") or []]
                    return {"name": "+".join(targets), "status": {"pods": pods},
                            "observed": time.monotonic() - started}
        except (ProtocolError, ApiException, OSError):  # the API server restarted (another helper's fault test)
            time.sleep(1)
    raise SystemExit(f"{sorted(set(targets) - set(ended))} did not end within {timeout:.0f} s")


def sweep(kube: Any, s3: Any, ops: Operators, which: str, binary: str, kind: str, pods: int,
          meter: CpuMeter, problems: list[str]) -> dict[str, Any]:
    ops.start(which, binary)
    try:
        # The operator's start-up (kopf, its first lists) is not the sweep's; the quiet seconds after
        # it give the idle rate of everything measured, this operator included.
        time.sleep(1)
        idle = idle_rate(meter, 4.0)
        tag = uuid.uuid4().hex[:4]
        # spec.target.maxPods is at most 100 (a status holds every pod's entry): more pods are
        # several captures at once, 100 pods each (label part=<n>), as a user would sweep them.
        if kind == "full":
            targets = {f"full-{which}-{tag}": {"selector": {"matchLabels": {"sweep": "full"}}, "maxPods": pods}}
        else:
            targets = {f"light-{which}-{tag}-{n}": {"selector": {"matchLabels": {"part": str(n)}}, "maxPods": 100}
                       for n in range(math.ceil(pods / 100))}
        before, requests = meter.read(), api_requests()
        r = watch_captures(kube, ops.namespace, targets, template="debug-full" if kind == "full" else "go-vitals",
                           params=FULL_PARAMS if kind == "full" else LIGHT_PARAMS)
        r["cpu"] = _delta(before, meter.read())
        r["idle"] = {k: v * r["observed"] for k, v in idle.items()}
        after = api_requests()
        r["requests"] = {k: v - requests.get(k, 0.0) for k, v in after.items() if v - requests.get(k, 0.0) > 0}
        if r["cpu"]["restarted"]:
            problems.append(f"{which} {kind}: a testbed component restarted during the sweep: its CPU undercounted")
        problems += [f"{which}: {p}" for p in check_bundles(s3, r, pods)]
        delete_captures(kube, ops.namespace)
    finally:
        r_hwm = ops.stop()
        if "Traceback" in ops.log.read_text(errors="replace"):
            problems.append(f"{which} {kind}: the operator log has a Traceback ({ops.log})")
    r["hwm"], r["which"], r["kind"], r["pods"] = r_hwm, which, kind, pods
    r["steps"] = _step_medians(r["status"])
    return r


def _step_medians(status: dict[str, Any]) -> dict[str, float]:
    by: dict[str, list[float]] = {}
    for pod in status.get("pods") or []:
        for c in pod.get("collectors") or []:
            by.setdefault(c["name"], []).append(float(c.get("durationMs") or 0))
    return {k: statistics.median(v) for k, v in by.items()}


def idle_rate(meter: CpuMeter, seconds: float = 5.0) -> dict[str, float]:
    before = meter.read()
    time.sleep(seconds)
    return {k: v / seconds for k, v in _delta(before, meter.read()).items()}


# ---- target impact ----


def _vars(ip: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://{ip}:6060/debug/vars", timeout=5) as res:
        return dict(json.load(res)["memstats"])


def target_impact(kube: Any, s3: Any, core: k8s.CoreV1Api, ops: Operators, binary: str, pod: str,
                  problems: list[str]) -> dict[str, Any]:
    obj = core.read_namespaced_pod(pod, ops.namespace)
    ip, uid = obj.status.pod_ip, obj.metadata.uid
    cg = [d for d in CGROUP.glob(f"*/pod{uid}")] or [CGROUP / f"pod{uid}"]
    out: dict[str, Any] = {}
    ops.start("impact", binary)
    try:
        time.sleep(2)
        for template, params in (("go-profile", {"cpuSeconds": 1, "traceSeconds": 1, "transport": "direct"}),
                                 ("debug-full", FULL_PARAMS)):
            mem_before = _vars(ip)
            quiet0 = _cgroup_seconds(cg[0])
            t0 = time.monotonic()
            time.sleep(3.0)
            quiet = (_cgroup_seconds(cg[0]) - quiet0) / (time.monotonic() - t0)
            c0, w0 = _cgroup_seconds(cg[0]), time.monotonic()
            r = run_capture(kube, ops.namespace, f"impact-{template}-{uuid.uuid4().hex[:4]}", {"pod": pod}, ops.pid(),
                            template=template, params=params)
            used, wall = _cgroup_seconds(cg[0]) - c0, time.monotonic() - w0
            problems += check_bundles(s3, r, 1)
            mem_after = _vars(ip)
            out[template] = {"cpu": used, "wall": wall, "quiet_rate": quiet, "net": used - quiet * wall,
                             "mem_before": mem_before, "mem_after": mem_after}
        delete_captures(kube, ops.namespace)
    finally:
        ops.stop()
    return out


# ---- what each of a pod's API requests costs the API server ----


def _api_seconds() -> float:
    return _stat_seconds(_testbed_pid("kube-apiserver"))


def _steps_of(kind: str) -> Any:
    """debug-full's steps of one kind (exec, go, kubernetes), or the one step named ``kind``."""
    from debugcap import templates
    from debugcap.collectors import COLLECTORS
    full = templates.expand("debug-full", {"cpu_seconds": 1, "trace_seconds": 1})
    return dataclasses.replace(full, steps=tuple(s for s in full.steps
                                                 if kind in (s.collector, str(COLLECTORS[s.collector].kind))))


def unit_costs(kube: Any, namespace: str, pod: str, reps: int) -> dict[str, tuple[float, float]]:
    """API-server CPU (ms) per operation, as the operator does it for one pod of a debug-full
    sweep, each repeated ``reps`` times, less the API server's idle rate measured just before over
    as long (another helper's tests are counted in both). Returns name -> (ms each, idle ms/s)."""
    from debugcap import capture as engine
    from debugcap.kube.client import core_path
    from debugcap.operator import captures as op_captures
    from debugcap.settings import CaptureSettings

    settings = CaptureSettings(http_transport="direct", durable_bundles=False)
    target = engine.resolve_target(kube, namespace, pod)
    out_root = Path(tempfile.mkdtemp(prefix="bench-sweep-units-"))
    custom = kube.custom()
    name = f"units-{uuid.uuid4().hex[:4]}"
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "DebugCapture", "metadata": {"name": name},
        "spec": {"target": {"pod": pod}, "template": "go-vitals"}})
    # A 100-pod debug-full status as the operator writes it: every pod with its 26 collector entries.
    entry = {"name": "bench-000", "phase": "Completed", "container": "app", "node": "debugcap-node",
             "bundle": {"uri": "s3://debugcap/" + "k" * 120, "key": "k" * 120, "sha256": "0" * 64, "sizeBytes": 123456},
             "collectors": [{"name": f"collector-{i}", "status": "ok", "bytes": 12345, "durationMs": 1234}
                            for i in range(26)], "access": {"commands": "exec", "http": "direct"}}
    def status(pods: int) -> dict[str, Any]:
        return {"phase": "Running", "pods": [{**entry, "name": f"bench-{i:03d}"} for i in range(pods)]}
    counter = [0]

    def capture_part(kind: str) -> Callable[[], None]:
        template = _steps_of(kind)

        def run() -> None:
            counter[0] += 1
            out = out_root / str(counter[0])
            out.mkdir()
            engine.capture(kube, target, template, out_dir=out, capture_name="units", settings=settings)
            shutil.rmtree(out, ignore_errors=True)
        return run

    def event() -> None:
        kube.post_json(core_path("events", namespace), {
            "metadata": {"generateName": "bench-sweep-"}, "involvedObject": {"kind": "Pod", "name": pod,
                                                                            "namespace": namespace},
            "reason": "Captured", "message": "bench", "type": "Normal", "source": {"component": "bench"}})

    ops: dict[str, Callable[[], None]] = {
        "GET pod": lambda: kube.get_json(core_path("pods", namespace, pod)),
        "LIST 100 pods (selector)": lambda: kube.get_json(core_path("pods", namespace),
                                                          [("labelSelector", "sweep=full")]),
        "POST event": event,
        **{f"PATCH status, {n}-pod debug-full": functools.partial(op_captures.patch_status, kube, namespace, name,
                                                                   status(n)) for n in (10, 50, 100)},
        "Kubernetes steps (pod-yaml, events, node, logs)": capture_part("kubernetes"),
        **{f"Kubernetes step {c}": capture_part(c) for c in ("pod-yaml", "events", "node-conditions", "logs")},
        "exec steps (one shell session, 9 commands)": capture_part("exec"),
        "Go steps, transport direct": capture_part("go"),
    }
    result: dict[str, tuple[float, float]] = {}
    try:
        for label, op in ops.items():
            n = max(3, reps // 10) if "step" in label or "100-pod" in label else reps
            idle0, t0 = _api_seconds(), time.monotonic()
            time.sleep(3.0)
            idle = (_api_seconds() - idle0) / (time.monotonic() - t0)
            c0, w0 = _api_seconds(), time.monotonic()
            for _ in range(n):
                op()
            used, wall = _api_seconds() - c0, time.monotonic() - w0
            result[label] = ((used - idle * wall) / n * 1000, idle * 1000)
            say(f"  {label}: {result[label][0]:.1f} ms of API-server CPU each ({n} in {wall:.1f} s; idle "
                f"{idle * 1000:.0f} ms/s)")
    finally:
        custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        shutil.rmtree(out_root, ignore_errors=True)
    return result


# ---- report ----


def _mmm(values: list[float], fmt: str = "{:.3f}") -> str:
    return "/".join(fmt.format(v) for v in (min(values), statistics.median(values), max(values)))


def _verdict(value: float, goal: float) -> str:
    return "MET" if value <= goal else "NOT MET"


def _net(r: dict[str, Any], key: str) -> float:
    """CPU seconds of ``key`` over the sweep less what it used at its idle rate over as long."""
    return r["cpu"][key] - r["idle"][key]


def report(results: list[dict[str, Any]], concurrency: int) -> None:
    """Per kind of sweep, per checkout: min/median/max per pod, then the goals (for "new")."""
    keys = ("total", "kube-apiserver", "etcd", "operator", "node", "pods")
    for kind in ("full", "light"):
        rows = [r for r in results if r["kind"] == kind]
        if not rows:
            continue
        pods = rows[0]["pods"]
        say("")
        say(f"== {kind}: {pods} pods, concurrency {concurrency}, transport direct; CPU-s per pod, "
            "min/median/max over rounds; 'net': less the idle rate measured just before ==")
        say(f"{'':5} {'wall s':>15} " + " ".join(f"{k[:10] + ' net':>20}" for k in keys)
            + f" {'apiserver raw':>20} {'host busy':>20} {'VmHWM MB':>11}")
        for which in ("base", "new"):
            mine = [r for r in rows if r["which"] == which]
            if not mine:
                continue
            say(f"{which:5} {_mmm([r['observed'] for r in mine], '{:.2f}'):>15} "
                + " ".join(f"{_mmm([_net(r, k) / pods for r in mine]):>20}" for k in keys)
                + f" {_mmm([r['cpu']['kube-apiserver'] / pods for r in mine]):>20}"
                + f" {_mmm([r['cpu']['host_busy'] / pods for r in mine]):>20}"
                + f" {_mmm([r['hwm'] / MB for r in mine], '{:.0f}'):>11}")
        for which in ("base", "new"):
            mine = [r for r in rows if r["which"] == which]
            if not mine:
                continue
            steps = mine[-1]["steps"]
            say(f"  {which} step medians (last round, ms): "
                + ", ".join(f"{k} {v:.0f}" for k, v in sorted(steps.items(), key=lambda kv: -kv[1])[:8]))
            reqs = mine[-1]["requests"]
            say(f"  {which} API requests per pod (last round, all clients): "
                + ", ".join(f"{k} {v / pods:.2f}" for k, v in sorted(reqs.items(), key=lambda kv: -kv[1])[:10]))
            say(f"  {which} status writes per sweep (PATCH debugcaptures/status, all clients; each round): "
                + ", ".join(f"{r['requests'].get('PATCH debugcaptures status', 0):.0f}" for r in mine))
        new = [r for r in rows if r["which"] == "new"]
        if not new:
            continue
        api = statistics.median(_net(r, "kube-apiserver") / pods for r in new)
        raw_api = statistics.median(r["cpu"]["kube-apiserver"] / pods for r in new)
        if kind == "full":
            total = statistics.median(_net(r, "total") / pods for r in new)
            floor = math.ceil(pods / concurrency) * WINDOW_SECONDS
            ratio = statistics.median(r["observed"] for r in new) / floor
            say(f"GOAL host CPU per pod <= {GOALS['host_per_pod']} s: {total:.3f} s net "
                f"{_verdict(total, GOALS['host_per_pod'])}")
            say(f"GOAL API server CPU per pod <= {GOALS['api_per_pod_full'] * 1000:.0f} ms: {api * 1000:.1f} ms net "
                f"({raw_api * 1000:.1f} raw) {_verdict(api, GOALS['api_per_pod_full'])}")
            say(f"GOAL sweep wall <= {GOALS['floor_ratio']}x the window floor ({floor:.0f} s = ceil({pods}/"
                f"{concurrency}) x {WINDOW_SECONDS:.0f} s): {ratio:.2f}x {_verdict(ratio, GOALS['floor_ratio'])}")
        else:
            hwm = max(r["hwm"] for r in new)
            say(f"GOAL light API server CPU per pod <= {GOALS['api_per_pod_light'] * 1000:.0f} ms: "
                f"{api * 1000:.1f} ms net ({raw_api * 1000:.1f} raw) {_verdict(api, GOALS['api_per_pod_light'])}")
            say(f"GOAL light operator RSS <= {GOALS['rss_light'] / MB:.0f} MB: {hwm / MB:.0f} MB "
                f"{_verdict(hwm, GOALS['rss_light'])}")


def report_impact(impacts: dict[str, dict[str, Any]]) -> None:
    for which, impact in impacts.items():
        say(f"== target impact ({which}): one pod's cgroup CPU, and its Go memstats before -> after ==")
        for template, m in impact.items():
            b, a = m["mem_before"], m["mem_after"]
            say(f"{template:11} pod CPU {m['cpu'] * 1000:.0f} ms over {m['wall']:.2f} s (quiet rate "
                f"{m['quiet_rate'] * 1000:.1f} ms/s: net {m['net'] * 1000:.0f} ms); "
                + ", ".join(f"{k} {b[k] / 2**20:.1f}->{a[k] / 2**20:.1f} MiB"
                            for k in ("Sys", "HeapSys", "HeapInuse", "StackInuse", "OtherSys", "MSpanInuse")))
        if {"go-profile", "debug-full"} <= impact.keys():
            extra = impact["debug-full"]["net"] - impact["go-profile"]["net"]
            say(f"  debug-full beyond the profilers (net debug-full - net go-profile): {extra * 1000:.0f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", default="/tmp/base-17", help="a checkout with its own .venv ('' for none)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--pods", type=int, default=100)
    parser.add_argument("--light-pods", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--skip-full", action="store_true")
    parser.add_argument("--skip-light", action="store_true")
    parser.add_argument("--skip-impact", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the namespace and the operator logs")
    parser.add_argument("--unit-costs", type=int, default=0, metavar="REPS",
                        help="also measure each of a pod's API requests REPS times (API-server CPU each)")
    parser.add_argument("--namespace", default="", help="reuse the pods of a namespace --keep left")
    args = parser.parse_args()

    binaries = {"new": str(REPO / ".venv/bin/debugcap-operator")}
    if args.base:
        base = Path(args.base)
        binaries = {"base": str(base / ".venv/bin/debugcap-operator"), **binaries}
        shutil.copy(REPO / "debugcap/templates/go-vitals.yaml", base / "debugcap/templates/go-vitals.yaml")
    env, s3, kube = testbed_setup()
    core = kube.core()
    namespace = args.namespace or f"bench-sweep-{uuid.uuid4().hex[:6]}"
    tmp = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    problems: list[str] = []
    results: list[dict[str, Any]] = []
    impacts: dict[str, dict[str, Any]] = {}
    count = max(0 if args.skip_full else args.pods, 0 if args.skip_light else args.light_pods, 1)
    ops = Operators(namespace, env, args.concurrency, tmp)
    try:
        if args.namespace:
            names = sorted((p.metadata.name for p in core.list_namespaced_pod(namespace).items),
                           key=lambda n: int(n.rsplit("-", 1)[1]))[:count]
            say(f"namespace {namespace}: reusing its {len(names)} pods")
            # Captures an interrupted run left would be resumed by the first operator started.
            strip_finalizers(kube, namespace)
            kube.custom().delete_collection_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
        else:
            say(f"namespace {namespace}: creating {count} goapp pods")
            t0 = time.monotonic()
            names = make_pods(core, namespace, count)
            say(f"  all Running in {time.monotonic() - t0:.0f} s; a quiet minute for the node to settle")
            time.sleep(60)
        for i, name in enumerate(names):
            labels = {"part": str(i // 100), **({"sweep": "full"} if i < args.pods else {})}
            core.patch_namespaced_pod(name, namespace, {"metadata": {"labels": labels}})
        meter = CpuMeter(_pod_cgroups(core, namespace), ops.pid)
        say(f"  {len(meter.cgroups)} pod cgroups found")
        for rnd in range(1, args.rounds + 1):
            # Alternated, and the order swapped every round: neither checkout always goes first.
            order = list(binaries.items()) if rnd % 2 else list(reversed(binaries.items()))
            for kind, pods in (("full", args.pods), ("light", args.light_pods)):
                if (kind == "full" and args.skip_full) or (kind == "light" and args.skip_light):
                    continue
                for which, binary in order:
                    r = sweep(kube, s3, ops, which, binary, kind, pods, meter, problems)
                    results.append(r)
                    c = r["cpu"]
                    say(f"round {rnd} {kind:5} {which:4}: {r['observed']:.2f} s, CPU total {c['total']:.1f} s "
                        f"(apiserver {c['kube-apiserver']:.2f}, etcd {c['etcd']:.2f}, operator {c['operator']:.2f}, "
                        f"node {c['node']:.2f}, pods {c['pods']:.2f}; host busy {c['host_busy']:.1f}), "
                        f"VmHWM {r['hwm'] / MB:.0f} MB, bundles {r['bundles_in_s3']}/{pods}")
        if args.unit_costs:
            say("API-server CPU per request, as the operator makes them for one pod:")
            unit_costs(kube, namespace, names[0], args.unit_costs)
        if not args.skip_impact:
            for which, binary in binaries.items():
                impacts[which] = target_impact(kube, s3, core, ops, binary, names[-1], problems)
    finally:
        if ops.proc is not None:
            ops.stop()
        if not args.keep and not args.namespace:
            try:
                strip_finalizers(kube, namespace)
            except ApiException:
                pass
            core.delete_namespace(namespace, grace_period_seconds=0)
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            say(f"kept namespace {namespace} and logs in {tmp}")
        kube.close()
    report(results, args.concurrency)
    report_impact(impacts)
    for p in problems:
        say(f"PROBLEM: {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
