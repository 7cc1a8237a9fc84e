"""Capture: debugcap against the seed article's shell script, on the testbed (prints numbers; not a test).

Usage: .venv/bin/python benchmarks/bench_capture.py [--runs 3] [--big-mib 1024] [--skip-big]

Needs the testbed (``python -m testbed up``); creates its own namespace and goapp pod and
deletes them at the end.

1. ``kubectl-debugcap create pod/goapp -t debug-full --local -p cpu_seconds=1 -p trace_seconds=1``
   against ``benchmarks/baseline_capture.sh`` (the same evidence, one ``kubectl exec`` per
   command, ``kubectl port-forward`` + ``curl`` per endpoint, ``tar czf`` + ``sha256sum``),
   alternated, ``--runs`` times each: median wall time of each and the ratio. Each side runs
   under a small wrapper process whose ``RUSAGE_CHILDREN`` max RSS is the largest single
   process it started: for debugcap, our process; for the script, its largest command (kubectl).
2. A capture whose exec output is ``--big-mib`` MiB: the pod holds a file of base64 text of
   random bytes (text, so the redaction pass reads every line; it does not compress to
   nothing, so gzip and the disk really move ~3/4 of it), and the capture engine runs one exec
   step that ``cat``s it, with ``CaptureSettings(output_cap_bytes=...)`` raised above its size,
   in a child process that reports its own peak RSS. The script's equivalent
   (``kubectl exec cat`` > file, ``sha256sum``, ``tar czf``, ``sha256sum``) runs once beside it.

Goals (issue): at least 5x faster than the script; peak RSS under 150 MB whatever the bundle size.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

BASELINE = REPO / "benchmarks" / "baseline_capture.sh"
CLI = str(Path(sys.executable).with_name("kubectl-debugcap"))
POD = "goapp"
BIG_POD = "goapp-big"
BIG_FILE = "/tmp/big.txt"
# Mild pathologies so every profile has content, without a hot loop eating one of the two cores.
POD_ENV = {"GOAPP_CONTENTION": "1", "GOAPP_LEAK_GOROUTINES": "5", "GOAPP_HEAP_GROWTH_KB": "64"}
MB = 1000 * 1000
MIB = 1024 * 1024


# ---- children ----


def child_measure(cmd: list[str]) -> None:
    """Run ``cmd``; print its wall time, exit code, first stdout line and the peak RSS of its processes."""
    start = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    lines = res.stdout.strip().splitlines()
    print(json.dumps({"wall": wall, "rss": rss, "rc": res.returncode, "stdout": lines[0] if lines else "",
                      "stderr": res.stderr[-2000:]}))


def child_big(namespace: str, pod: str, out: Path, cap: int) -> None:
    """One capture, through the engine, of a pod's big file as exec output; print wall, size, peak RSS."""
    from debugcap import capture as engine
    from debugcap import templates
    from debugcap.bundle import writer
    from debugcap.collectors import base, execution
    from debugcap.kube.client import Kube, KubeTarget
    from debugcap.settings import CaptureSettings

    class BigExec(base.Collector):
        name = "bench-big-exec"
        kind = base.Kind.EXEC
        description = f"cat {BIG_FILE}"

        def collect(self, ctx: base.CollectContext) -> base.CollectorResult:
            return execution.run(ctx, "proc/bench-big.txt", [["cat", BIG_FILE]])

    engine.COLLECTORS = {**engine.COLLECTORS, BigExec.name: BigExec}  # type: ignore[misc]
    # Time spent writing into the bundle (redact, gzip, hash), to tell it from receiving the output.
    writing = [0.0]
    add_stream = writer.BundleWriter.add_stream

    def timed_add_stream(self: Any, *a: Any, **kw: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return add_stream(self, *a, **kw)
        finally:
            writing[0] += time.perf_counter() - t0

    writer.BundleWriter.add_stream = timed_add_stream  # type: ignore[method-assign]
    template = templates.ExpandedTemplate(name="bench-big", description="one big exec output", parameters={},
                                          steps=(templates.Step(BigExec.name, {}),))
    out.mkdir(parents=True, exist_ok=True)
    kube = Kube.load(KubeTarget(kubeconfig=os.environ["KUBECONFIG"]))
    start = time.perf_counter()
    target = engine.resolve_target(kube, namespace, pod)
    outcome = engine.capture(kube, target, template, out_dir=out, capture_name="bench-big",
                             settings=CaptureSettings(output_cap_bytes=cap, exec_timeout_seconds=1800))
    wall = time.perf_counter() - start
    kube.close()
    rec = outcome.records[0]
    print(json.dumps({"wall": wall, "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                      "phase": str(outcome.phase), "status": str(rec.status), "message": rec.message,
                      "exec_bytes": rec.bytes, "exec_ms": rec.duration_ms, "writing": writing[0],
                      "bundle_bytes": outcome.bundle.size}))


def run_child(*args: str, env: dict[str, str]) -> dict[str, Any]:
    res = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, env=env)
    if res.returncode:
        raise SystemExit(f"benchmark child {args[:3]} failed:\n{res.stderr}")
    data: dict[str, Any] = json.loads(res.stdout.strip().splitlines()[-1])
    return data


def measured(cmd: list[str], env: dict[str, str]) -> dict[str, Any]:
    data = run_child("measure", *cmd, env=env)
    if data["rc"] != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {data['rc']}:\n{data['stderr']}")
    return data


# ---- the testbed ----


def kubectl(env: dict[str, str], *args: str, stdin: str | None = None, check: bool = True) -> str:
    res = subprocess.run(["kubectl", *args], input=stdin, capture_output=True, text=True, env=env)
    if check and res.returncode:
        raise SystemExit(f"kubectl {' '.join(args)} failed: {res.stderr.strip()}")
    return res.stdout


def testbed_env() -> dict[str, str]:
    from testbed import cluster

    health = cluster.status() if cluster.P.kubeconfig.exists() else {}
    if not health or not all(health.values()):
        raise SystemExit(f"the testbed is not healthy ({health}); start it: .venv/bin/python -m testbed up")
    tb = cluster.env_vars()
    # Its PATH is shell text ("...:$PATH"), meant for eval.
    path = tb.pop("PATH").replace("$PATH", os.environ.get("PATH", os.defpath))
    env = {**os.environ, **tb, "PATH": path}
    if not shutil.which("kubectl", path=env["PATH"]):
        raise SystemExit("kubectl not found on the testbed PATH")
    return env


def ensure_curl() -> None:
    if shutil.which("curl"):
        return
    print("curl is missing; installing it with apt-get (the baseline script needs it)", file=sys.stderr)
    subprocess.run(["apt-get", "install", "-y", "-q", "curl"], check=True, stdout=subprocess.DEVNULL)


def create_pod(env: dict[str, str], ns: str, name: str, pod_env: dict[str, str]) -> None:
    from testbed import layout

    manifest = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "goapp"}},
        "spec": {"terminationGracePeriodSeconds": 0, "automountServiceAccountToken": False,
                 "containers": [{"name": "app", "image": layout.IMAGES["goapp"], "imagePullPolicy": "Never",
                                 "env": [{"name": k, "value": v} for k, v in pod_env.items()]}]},
    }
    deadline = time.monotonic() + 30
    while True:  # the namespace's default ServiceAccount must exist first
        res = subprocess.run(["kubectl", "-n", ns, "apply", "-f", "-"], input=json.dumps(manifest),
                             capture_output=True, text=True, env=env)
        if res.returncode == 0:
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"cannot create pod {ns}/{name}: {res.stderr.strip()}")
        time.sleep(0.5)
    kubectl(env, "-n", ns, "wait", "--for=condition=Ready", f"pod/{name}", "--timeout=90s")


# ---- main ----


def _median(rows: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in rows))


def bench_debug_full(env: dict[str, str], ns: str, work: Path, runs: int) -> None:
    ours_cmd = [CLI, "create", f"pod/{POD}", "-t", "debug-full", "--local", "-n", ns, "-p", "cpu_seconds=1",
                "-p", "trace_seconds=1", "--output-dir"]
    ours: list[dict[str, Any]] = []
    script: list[dict[str, Any]] = []
    print(f"debug-full, cpu_seconds=1 trace_seconds=1, pod {ns}/{POD}, {runs} runs each (alternated)")
    for i in range(runs):
        out = work / f"ours-{i}"
        ours.append(measured([*ours_cmd, str(out)], env))
        out = work / f"script-{i}"
        out.mkdir()
        script.append(measured(["sh", str(BASELINE), ns, POD, str(out), "1", "1"], env))
        print(f"  run {i + 1}: debugcap {ours[-1]['wall']:.2f} s, script {script[-1]['wall']:.2f} s", flush=True)
    bundle = Path(ours[-1]["stdout"].removeprefix("bundle: "))
    base_bundle = Path(script[-1]["stdout"])
    header = f"{'variant':<34} {'median s':>9} {'min s':>7} {'max s':>7} {'peak RSS MB':>12} {'bundle kB':>10}"
    print(header)
    print("-" * len(header))
    for name, rows, path in (("debugcap create --local", ours, bundle),
                             ("baseline_capture.sh (kubectl+curl)", script, base_bundle)):
        walls = [r["wall"] for r in rows]
        print(f"{name:<34} {statistics.median(walls):>9.2f} {min(walls):>7.2f} {max(walls):>7.2f} "
              f"{max(r['rss'] for r in rows) / MB:>12.1f} {path.stat().st_size / 1000:>10.1f}")
    ratio = _median(script, "wall") / _median(ours, "wall")
    print(f"speed-up (script median / debugcap median): {ratio:.2f}x (goal: >= 5x)")
    print(f"debugcap peak RSS: {max(r['rss'] for r in ours) / MB:.1f} MB (goal: < 150 MB); "
          f"script: largest single process (kubectl) {max(r['rss'] for r in script) / MB:.1f} MB")
    print()


def bench_big(env: dict[str, str], ns: str, work: Path, size_mib: int) -> None:
    size = size_mib * MIB
    print(f"one exec output of {size_mib} MiB (base64 text of random bytes), pod {ns}/{BIG_POD}")
    gen = time.perf_counter()
    kubectl(env, "-n", ns, "exec", BIG_POD, "--", "sh", "-c",
            f"busybox base64 /dev/urandom | head -c {size} > {BIG_FILE} && wc -c < {BIG_FILE}")
    print(f"  (file written in the pod in {time.perf_counter() - gen:.1f} s, not timed)", flush=True)
    ours = run_child("big", ns, BIG_POD, str(work / "big-ours"), str(size + MIB), env=env)
    if ours["exec_bytes"] != size or ours["status"] != "ok":
        raise SystemExit(f"the big capture kept {ours['exec_bytes']} of {size} bytes: {ours}")
    shutil.rmtree(work / "big-ours", ignore_errors=True)
    (work / "big-script").mkdir()
    script = measured(["sh", str(BASELINE), ns, BIG_POD, str(work / "big-script")],
                      {**env, "ONLY_EXEC": f"cat {BIG_FILE}"})
    script_bundle = Path(script["stdout"]).stat().st_size
    shutil.rmtree(work / "big-script", ignore_errors=True)
    header = f"{'variant':<34} {'wall s':>8} {'MB/s':>8} {'peak RSS MB':>12} {'bundle MB':>10}"
    print(header)
    print("-" * len(header))
    for name, row, bundle in (("debugcap capture engine", ours, ours["bundle_bytes"]),
                              ("kubectl exec cat + tar czf", script, script_bundle)):
        print(f"{name:<34} {row['wall']:>8.2f} {size / MB / row['wall']:>8.1f} {row['rss'] / MB:>12.1f} "
              f"{bundle / MB:>10.1f}")
    receiving = ours["exec_ms"] / 1000 - ours["writing"]
    print(f"debugcap breakdown: receiving the exec output into a scratch file {receiving:.2f} s "
          f"({size / MB / receiving:.1f} MB/s), redacting + gzip + SHA-256 into the bundle "
          f"{ours['writing']:.2f} s ({size / MB / ours['writing']:.1f} MB/s), "
          f"rest {ours['wall'] - ours['exec_ms'] / 1000:.2f} s")
    print(f"speed-up (script / debugcap): {script['wall'] / ours['wall']:.2f}x; "
          f"debugcap peak RSS {ours['rss'] / MB:.1f} MB (goal: < 150 MB)")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="runs of each side (median reported)")
    parser.add_argument("--big-mib", type=int, default=1024, help="size of the big exec output, MiB")
    parser.add_argument("--skip-big", action="store_true", help="skip the big exec output case")
    parser.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        if args.child[0] == "measure":
            child_measure(args.child[1:])
        else:
            child_big(args.child[1], args.child[2], Path(args.child[3]), int(args.child[4]))
        return

    env = testbed_env()
    ensure_curl()
    ns = f"bench-capture-{uuid.uuid4().hex[:6]}"
    work = Path(tempfile.mkdtemp(prefix="debugcap-bench-capture-"))
    kubectl(env, "create", "namespace", ns)
    try:
        create_pod(env, ns, POD, POD_ENV)
        if not args.skip_big:
            create_pod(env, ns, BIG_POD, {})
        time.sleep(2)  # let the goapp's pathologies put something in the profiles
        bench_debug_full(env, ns, work, args.runs)
        if not args.skip_big:
            bench_big(env, ns, work, args.big_mib)
    finally:
        kubectl(env, "delete", "namespace", ns, "--wait=false", check=False)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
