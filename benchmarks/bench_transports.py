"""HTTP transports: what one pod's Go GETs cost through direct, pods/proxy, port-forward and auto
(prints numbers; not a test).

Usage: .venv/bin/python benchmarks/bench_transports.py [--rounds 80]

Needs the testbed (``python -m testbed up``); creates its own namespace and goapp pod and deletes
them at the end. Each round opens a fresh transport (as one pod's capture does), runs the ten quick
GETs of ``go-profile`` (index, heap, allocs, goroutine twice, block, mutex, threadcreate,
``/debug/vars``, ``/metrics``) and closes it; the transports alternate round by round so a drift
of the machine's speed touches all of them alike; one warm-up round is not counted. Wall: median;
CPU: mean per round from ``/proc/<pid>/stat`` of the testbed's kube-apiserver, kubelet and
containerd (10 ms ticks, hence means), and this process's own. ``auto`` is measured twice: as the
operator's pod gets it (in the cluster: direct first) and as the CLI on a laptop gets it (pods/proxy
first). Numbers and their reading: docs/performance.md.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_operator import make_pods  # noqa: E402

from debugcap.capture import resolve_target, transport  # noqa: E402
from debugcap.collectors import base  # noqa: E402
from debugcap.kube import podhttp, podproxy, portforward  # noqa: E402
from debugcap.kube.client import Kube, KubeTarget  # noqa: E402
from testbed import cluster  # noqa: E402

PATHS = ["/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/allocs", "/debug/pprof/goroutine",
         "/debug/pprof/goroutine?debug=2", "/debug/pprof/block", "/debug/pprof/mutex",
         "/debug/pprof/threadcreate", "/debug/vars", "/metrics"]
WATCHED = ("kube-apiserver", "kubelet", "containerd")
HZ = os.sysconf("SC_CLK_TCK")


def pids(name: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if Path(f"/proc/{entry}/comm").read_text().strip() == name:
                    found.append(int(entry))
            except OSError:
                pass
    return found


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=80)
    args = parser.parse_args()
    health = cluster.status() if cluster.P.kubeconfig.exists() else {}
    if not health or not all(health.values()):
        raise SystemExit(f"the testbed is not healthy ({health}); run: .venv/bin/python -m testbed up")
    kube = Kube.load(KubeTarget(kubeconfig=str(cluster.P.kubeconfig)))
    core = kube.core()
    namespace = f"bench-tr-{uuid.uuid4().hex[:6]}"
    watched = {name: pids(name) for name in WATCHED}
    try:
        [pod] = make_pods(core, namespace, 1)
        target = resolve_target(kube, namespace, pod)
        makers: dict[str, Callable[[], base.HttpGets]] = {
            "direct": lambda: podhttp.Direct(namespace=namespace, pod=pod, host=target.pod_ip, port=6060),
            "proxy": lambda: podproxy.Proxy(kube, namespace=namespace, pod=pod, port=6060),
            "port-forward": lambda: portforward.Pool(kube, namespace=namespace, pod=pod, port=6060, size=3),
            "auto (in the cluster)": lambda: transport.Auto(kube, target, forwards=3, in_cluster=True),
            "auto (from a laptop)": lambda: transport.Auto(kube, target, forwards=3, in_cluster=False),
        }
        rows: dict[str, dict[str, list[float]]] = {m: {k: [] for k in ("wall", "client", *WATCHED)} for m in makers}
        for round_no in range(args.rounds + 1):
            for name, make in makers.items():
                before = {n: sum(cpu_seconds(p) for p in ps) for n, ps in watched.items()}
                c0, w0 = time.process_time(), time.monotonic()
                http = make()
                for path in PATHS:
                    res = http.get(path, io.BytesIO(), timeout=10, max_bytes=64 << 20)
                    assert res.status == 200, (name, path, res.status)
                http.close()  # type: ignore[attr-defined]
                w1, c1 = time.monotonic(), time.process_time()
                after = {n: sum(cpu_seconds(p) for p in ps) for n, ps in watched.items()}
                if round_no == 0:
                    continue  # warm-up
                rows[name]["wall"].append(w1 - w0)
                rows[name]["client"].append(c1 - c0)
                for n in WATCHED:
                    rows[name][n].append(after[n] - before[n])
    finally:
        core.delete_namespace(namespace, grace_period_seconds=0)
        kube.close()
    print(f"{args.rounds} rounds each; per pod ({len(PATHS)} GETs): wall median, CPU mean, in ms")
    print("| transport | wall | client CPU | kube-apiserver | kubelet | containerd |")
    print("|---|---|---|---|---|---|")
    for name, r in rows.items():
        cells = [f"{statistics.median(r['wall']) * 1000:.1f} ms"]
        cells += [f"{statistics.mean(r[k]) * 1000:.1f}" for k in ("client", *WATCHED)]
        print(f"| {name} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
