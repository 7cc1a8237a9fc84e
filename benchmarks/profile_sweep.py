"""Where a debug-full sweep's operator CPU and wall time go (issue 17): one bench_sweep.py sweep,
profiled from outside.

Usage: .venv/bin/python benchmarks/profile_sweep.py --namespace NS [--out DIR] [--rate 200]
       [--no-pyspy] [--pods 100] [--concurrency 8]

Runs ``bench_sweep.py --base '' --rounds 1 --skip-light --skip-impact --namespace NS`` (pods a
``--keep`` run left) and, while its capture runs (from the DebugCapture's creation to its terminal
phase, seen on one watch; the operator's start-up and the benchmark's idle interval are left out):

* ``py-spy record --nonblocking --threads --format raw`` on the operator's pid (``pip install
  py-spy``; ``--no-pyspy`` to measure without it: the sampler takes CPU from the same two cores);
  the collapsed stacks are reduced to self and inclusive shares per function and per library,
  scaled to the operator's measured CPU per pod;
* every 1 s, each host process's CPU from /proc/<pid>/stat, grouped (API server, etcd, kubelet,
  containerd, shims with their reaped runc children, MinIO, the operator, py-spy, the pods'
  cgroups, the rest), and the host's busy share: totals per pod and a timeline;
* the capture's final status (every collector's durationMs, not only the top 8 bench prints).

Writes DIR/{bench.log,pyspy.txt,status.json,timeline.json,report.txt} and prints the report.
Needs the testbed; does nothing else to the cluster than bench_sweep.py does.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kubernetes import client as k8s  # noqa: E402
from kubernetes import config as k8s_config  # noqa: E402
from kubernetes import watch  # noqa: E402

from testbed import cluster, layout  # noqa: E402

GROUP, VERSION, PLURAL = "debugcap.io", "v1alpha1", "debugcaptures"
TERMINAL = {"Completed", "PartiallyFailed", "Failed"}
TICK = os.sysconf("SC_CLK_TCK")
CGROUP = Path("/sys/fs/cgroup/cpuacct/kubepods/cpuacct.usage")


def say(msg: str, out: list[str] | None = None) -> None:
    print(msg, flush=True)
    if out is not None:
        out.append(msg)


# ---- per-process CPU ----


def _procs() -> dict[int, tuple[str, int, float]]:
    """pid -> (comm, ppid, CPU seconds with reaped children)."""
    out = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        comm = text[text.index("(") + 1:text.rindex(")")]
        f = text.rsplit(")", 1)[1].split()
        out[int(stat.parent.name)] = (comm, int(f[1]), sum(int(x) for x in f[11:15]) / TICK)
    return out


def _group(pid: int, comm: str, operator: int, pyspy: int, fixed: dict[int, str]) -> str:
    if pid in fixed:
        return fixed[pid]
    if pid == operator:
        return "operator"
    if pid == pyspy:
        return "py-spy"
    if comm.startswith("containerd-shim"):
        return "shims"
    if comm.startswith("minio"):
        return "minio"
    if comm in ("goapp", "pause", "sh", "ps", "ss", "find", "du", "df", "ls", "cat", "runc:[2:INIT]"):
        return "in pods (by comm)"
    if comm.startswith(("kube-", "etcd", "kubelet", "containerd")):
        return comm
    return "other"


class Sampler(threading.Thread):
    """Per-group CPU seconds between start() and stop(), and a 1 s timeline."""

    def __init__(self, operator: int) -> None:
        super().__init__(daemon=True)
        self.operator, self.pyspy = operator, 0
        self.fixed = {}
        for name in ("kube-apiserver", "etcd", "kubelet", "containerd"):
            try:
                self.fixed[int((layout.STATE / "pids" / f"{name}.pid").read_text())] = name
            except (OSError, ValueError):
                pass
        self.timeline: list[dict[str, float]] = []
        self.halt = threading.Event()

    def snapshot(self) -> tuple[dict[str, float], float, float, dict[int, tuple[str, float]]]:
        groups: dict[str, float] = collections.defaultdict(float)
        others: dict[int, tuple[str, float]] = {}
        for pid, (comm, _, cpu) in _procs().items():
            group = _group(pid, comm, self.operator, self.pyspy, self.fixed)
            if group in ("other", "in pods (by comm)"):
                others[pid] = (comm, cpu)
            else:
                groups[group] += cpu
        try:
            groups["pods' cgroups"] = int(CGROUP.read_text()) / 1e9
        except OSError:
            pass
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        return groups, (sum(fields) - fields[3] - fields[4]) / TICK, sum(fields) / TICK, others

    def run(self) -> None:
        self.first = prev = self.snapshot()
        self.own0 = time.process_time()
        self.other_by_comm: collections.Counter[str] = collections.Counter()  # CPU seconds
        t0 = time.monotonic()
        # 1 s: a snapshot reads ~700 /proc entries, itself ~0.05 CPU-s, which "sampler" reports.
        while not self.halt.wait(1.0):
            cur = self.snapshot()
            row = {k: v - prev[0].get(k, 0.0) for k, v in cur[0].items() if k in prev[0]}
            row = {k: round(v, 3) for k, v in row.items() if v > 0}
            row["host busy s"] = round(cur[1] - prev[1], 3)
            # The rest of the host's busy time: processes outside the groups (exited ones included),
            # the kernel's threads, this script. Not pods' commands: their cgroup has them.
            row["other (host - groups)"] = round(row["host busy s"] - sum(
                v for k, v in row.items() if k not in ("host busy s",)), 3)
            for pid, (comm, cpu) in cur[3].items():
                was = prev[3].get(pid)
                self.other_by_comm[comm] += cpu - was[1] if was else 0  # type: ignore[assignment]
            row["t"] = round(time.monotonic() - t0, 2)
            row["host busy %"] = round(100 * (cur[1] - prev[1]) / max(cur[2] - prev[2], 1e-9), 1)
            self.timeline.append(row)
            prev = cur
        self.last = prev
        self.own = time.process_time() - self.own0

    def stop(self) -> None:
        self.halt.set()
        self.join()

    def totals(self) -> dict[str, float]:
        """CPU seconds per group over the sampled intervals; "other" is the host's busy time less
        the groups (processes that started and ended between two samples land there)."""
        skip = ("t", "host busy %", "host busy s")
        out = {k: sum(r.get(k, 0.0) for r in self.timeline) for k in {k for r in self.timeline for k in r}
               if k not in skip}
        out["host busy (all)"] = sum(r["host busy s"] for r in self.timeline)
        out["this script (sampler, watch)"] = self.own
        return out


# ---- py-spy's collapsed stacks ----

FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")
SITE = next((REPO / ".venv/lib").glob("python3*/site-packages"), REPO)
THIRD_PARTY = {p.name.removesuffix(".py") for p in SITE.iterdir()} if SITE.is_dir() else set()


def _where(frame: str) -> tuple[str, str]:
    """(function label, library) of one collapsed frame ``func (file:line)``; py-spy shortens the
    file to its path under site-packages or the standard library."""
    m = FRAME.match(frame.strip())
    if not m:
        return frame.strip(), "?"
    func, file = m["func"], m["file"]
    head = file.split("/", 1)[0].removesuffix(".py")
    if head == "debugcap" and "/" in file:
        lib = "debugcap/" + file.split("/")[1].removesuffix(".py")
    elif head in THIRD_PARTY:
        lib = head
    else:
        lib = "stdlib:" + head
    return f"{func} ({file})", lib


def analyse_pyspy(path: Path, cpu_seconds: float, pods: int, out: list[str], top: int = 30) -> None:
    self_f: collections.Counter[str] = collections.Counter()
    incl_f: collections.Counter[str] = collections.Counter()
    self_lib: collections.Counter[str] = collections.Counter()
    incl_lib: collections.Counter[str] = collections.Counter()
    thread_root: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [f for f in stack.split(";") if f]
        thread = "?"
        while frames and frames[0].startswith(("thread (", "process ")):
            if frames[0].startswith("thread ("):
                # py-spy writes "thread (tid): name"; threads of one pool differ by a number or pod.
                thread = re.sub(r"[0-9]+|bench-sweep-\w+/bench-\d+", "N", frames[0].partition(": ")[2]).strip()
            frames = frames[1:]
        where = [_where(f) for f in frames]
        if not where:
            continue
        thread_root[thread] += n
        self_f[where[-1][0]] += n
        self_lib[where[-1][1]] += n
        for label in {w[0] for w in where}:
            incl_f[label] += n
        for lib in {w[1] for w in where}:
            incl_lib[lib] += n
    if not total:
        say("py-spy: no samples", out)
        return
    per = cpu_seconds / pods / total  # CPU-s per pod per sample

    def table(title: str, counter: collections.Counter[str], k: int) -> None:
        say(f"-- {title} (share of the operator's sampled CPU; ms per pod scaled to its measured CPU) --", out)
        for label, n in counter.most_common(k):
            say(f"  {100 * n / total:5.1f}%  {1000 * n * per:6.1f} ms/pod  {label}", out)

    say(f"py-spy: {total} active samples; the operator used {cpu_seconds:.2f} CPU-s over the capture "
        f"({1000 * cpu_seconds / pods:.0f} ms per pod)", out)
    table("self, by library", self_lib, 20)
    table("inclusive, by library", incl_lib, 25)
    table("self, by function", self_f, top)
    table("inclusive, by function", incl_f, top + 20)
    table("by thread (name, numbers as N)", thread_root, 15)


# ---- the sweep ----


EXEC_STEPS = {"ps", "proc-status", "fd-count", "open-files", "sockets", "resolv-conf", "disk", "deleted-files",
              "environment"}


def slot_path(status: dict[str, Any], concurrency: int, report: list[str]) -> None:
    """What holds a pod's slot: its longest exec step (the commands share one shell session, so
    an exec step's durationMs includes its wait for the session) against its window steps, and
    how far apart each ``concurrency`` pods started (the bundle names' whole seconds)."""
    pods = status.get("pods") or []
    longest_exec, window, starts = [], [], []
    for pod in pods:
        ms = {c["name"]: float(c.get("durationMs") or 0) for c in pod.get("collectors") or []}
        longest_exec.append(max((v for k, v in ms.items() if k in EXEC_STEPS), default=0.0))
        window.append(max(ms.get("trace", 0.0), ms.get("pprof-cpu", 0.0)))
        m = re.search(r"_(\d{8}T\d{6})Z\.tar", str((pod.get("bundle") or {}).get("key", "")))
        if m:
            starts.append(time.mktime(time.strptime(m[1], "%Y%m%dT%H%M%S")))
    if not pods:
        return
    say(f"slot: longest exec step median {statistics.median(longest_exec):.0f} ms, window steps (trace, pprof-cpu) "
        f"median {statistics.median(window):.0f} ms; exec longer than the window in "
        f"{sum(e > w for e, w in zip(longest_exec, window, strict=True))}/{len(pods)} pods", report)
    if len(starts) > concurrency:
        starts.sort()
        turns = [b - a for a, b in zip(starts[::concurrency], starts[concurrency::concurrency], strict=False)]
        say(f"pods started {concurrency} per {statistics.mean(turns):.2f} s on average (bundle names, 1 s resolution): "
            f"a slot lasts about that long", report)


def find_operator(parent: int, timeout: float = 120) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid, (_, ppid, _) in _procs().items():
            if ppid == parent:
                try:
                    if b"debugcap-operator" in Path(f"/proc/{pid}/cmdline").read_bytes():
                        return pid
                except OSError:
                    pass
        time.sleep(0.2)
    raise SystemExit("the benchmark started no debugcap-operator")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--namespace", default="")
    parser.add_argument("--out", default="")
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--no-pyspy", action="store_true")
    parser.add_argument("--gil", action="store_true",
                        help="py-spy --gil: only samples holding the GIL (runnable threads waiting for a CPU or "
                             "the GIL count as active otherwise; C code that releases the GIL is then missed)")
    parser.add_argument("--pods", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--analyse", nargs=2, metavar=("DIR", "OPERATOR_CPU_S"),
                        help="only reduce DIR/pyspy.txt of an earlier run, scaled to OPERATOR_CPU_S over --pods")
    args = parser.parse_args()
    if args.analyse:
        if (Path(args.analyse[0]) / "pyspy.txt").exists():
            analyse_pyspy(Path(args.analyse[0]) / "pyspy.txt", float(args.analyse[1]), args.pods, [])
        status_file = Path(args.analyse[0]) / "status.json"
        if status_file.exists():
            slot_path(json.loads(status_file.read_text()), args.concurrency, [])
        return 0
    if not args.namespace:
        parser.error("--namespace is required (a namespace bench_sweep.py --keep left)")
    out_dir = Path(args.out or f"/tmp/profile-sweep-{int(time.time())}")
    out_dir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in cluster.env_vars().items() if k != "PATH"}
    k8s_config.load_kube_config(env["KUBECONFIG"])  # type: ignore[no-untyped-call]
    custom = k8s.CustomObjectsApi()
    report: list[str] = []

    cmd = [str(REPO / ".venv/bin/python"), str(REPO / "benchmarks/bench_sweep.py"), "--base", "", "--rounds", "1",
           "--skip-light", "--skip-impact", "--namespace", args.namespace, "--pods", str(args.pods),
           "--concurrency", str(args.concurrency)]
    bench_log = (out_dir / "bench.log").open("wb")
    bench = subprocess.Popen(cmd, stdout=bench_log, stderr=subprocess.STDOUT, cwd=REPO)
    operator = find_operator(bench.pid)
    say(f"operator pid {operator}", report)
    sampler = Sampler(operator)
    state: dict[str, Any] = {}
    started = threading.Event()

    def watcher() -> None:
        while "status" not in state and bench.poll() is None:
            try:
                stream = watch.Watch().stream  # type: ignore[no-untyped-call]
                for ev in stream(custom.list_namespaced_custom_object, GROUP, VERSION,  # type: ignore[no-untyped-call]
                                 args.namespace, PLURAL, timeout_seconds=20):
                    obj = ev["object"]
                    if not obj["metadata"]["name"].startswith("full-"):
                        continue
                    if "t0" not in state:
                        state["t0"] = time.monotonic()
                        started.set()
                    status = obj.get("status") or {}
                    for pod in status.get("pods") or []:
                        key = (pod["name"], pod.get("phase"))
                        state.setdefault("seen", {}).setdefault(key, time.monotonic() - state["t0"])
                    if status.get("phase") in TERMINAL:
                        state["t1"], state["status"] = time.monotonic(), status
                        return
            except Exception as exc:  # noqa: BLE001 - the API server may be restarted by others
                state.setdefault("watch_errors", []).append(repr(exc))
                time.sleep(0.5)

    w = threading.Thread(target=watcher, daemon=True)
    w.start()
    while not started.wait(0.2):
        if bench.poll() is not None:
            raise SystemExit(f"bench_sweep.py ended before the capture started; see {out_dir / 'bench.log'}")
    pyspy = None
    if not args.no_pyspy:
        pyspy = subprocess.Popen([str(REPO / ".venv/bin/py-spy"), "record", "--pid", str(operator), "--rate",
                                  str(args.rate), "--nonblocking", "--threads", "--format", "raw",
                                  "-o", str(out_dir / "pyspy.txt"), *(["--gil"] if args.gil else [])],
                                 stdout=subprocess.DEVNULL, stderr=(out_dir / "pyspy.err").open("wb"))
        sampler.pyspy = pyspy.pid
    sampler.start()
    w.join()
    sampler.stop()
    if pyspy is not None:
        pyspy.send_signal(signal.SIGINT)
        pyspy.wait(timeout=60)
    bench.wait()
    bench_log.close()
    status = state.get("status") or {}
    (out_dir / "status.json").write_text(json.dumps(status, indent=1))
    (out_dir / "timeline.json").write_text(json.dumps(sampler.timeline))

    wall = state.get("t1", 0) - state.get("t0", 0)
    pods = len(status.get("pods") or []) or args.pods
    say(f"capture wall (watch: created -> terminal) {wall:.2f} s for {pods} pods; "
        f"floor {-(-pods // args.concurrency)} s", report)
    totals = sampler.totals()
    say("-- CPU seconds over the capture, per group (total, ms per pod, % of 2 cores x wall) --", report)
    for k, v in sorted(totals.items(), key=lambda kv: -kv[1]):
        say(f"  {k:28} {v:7.2f} s  {1000 * v / pods:7.1f} ms/pod  {100 * v / (2 * max(wall, 1e-9)):5.1f}%", report)
    say("  'other' by command (long-lived processes outside the groups): " + ", ".join(
        f"{c} {v:.2f}" for c, v in sampler.other_by_comm.most_common(8)), report)
    busy = [r["host busy %"] for r in sampler.timeline]
    if busy:
        say(f"host busy % per 1 s: min {min(busy):.0f} median {statistics.median(busy):.0f} max {max(busy):.0f}; "
            f"share of samples >= 95%: {100 * sum(b >= 95 for b in busy) / len(busy):.0f}%", report)
    steps: dict[str, list[float]] = {}
    per_pod_sum = []
    for pod in status.get("pods") or []:
        per_pod_sum.append(sum(float(c.get("durationMs") or 0) for c in pod.get("collectors") or []))
        for c in pod.get("collectors") or []:
            steps.setdefault(c["name"], []).append(float(c.get("durationMs") or 0))
    say("-- collector durationMs, median / p90 / max over pods --", report)
    for name, ms in sorted(steps.items(), key=lambda kv: -statistics.median(kv[1])):
        ms.sort()
        say(f"  {name:22} {statistics.median(ms):7.0f} {ms[int(0.9 * (len(ms) - 1))]:7.0f} {ms[-1]:7.0f}", report)
    if per_pod_sum:
        say(f"sum of a pod's step durations (steps overlap): median {statistics.median(per_pod_sum):.0f} ms", report)
    slot_path(status, args.concurrency, report)
    seen = state.get("seen", {})
    ends = sorted(t for (_, phase), t in seen.items() if phase in TERMINAL)
    if ends:
        say("pods seen ended by t (s, from the watch; status writes are batched): "
            + ", ".join(f"{n}@{ends[min(n, len(ends)) - 1]:.1f}" for n in (1, 8, 25, 50, 75, 100) if n <= len(ends)),
            report)
    op_cpu = totals.get("operator", 0.0)
    if pyspy is not None and (out_dir / "pyspy.txt").exists():
        analyse_pyspy(out_dir / "pyspy.txt", op_cpu, pods, report)
    say(f"bench_sweep.py's output: {out_dir / 'bench.log'}", report)
    (out_dir / "report.txt").write_text("\n".join(report) + "\n")
    return bench.returncode or 0


if __name__ == "__main__":
    sys.exit(main())
