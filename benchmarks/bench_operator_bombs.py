"""Operator memory under seven concurrent gzip bombs, on the testbed (prints numbers; not a test).

Usage: .venv/bin/python benchmarks/bench_operator_bombs.py [--runs 3] [--pods 7] [--concurrency 7]
       [--template go-profile] [--no-baseline] [--root DIR]

Needs the testbed (``python -m testbed up``) with the goapp image of this checkout (it is built and
imported here if the fixture's source changed). Issue 16: "The operator's memory under seven
concurrent bombs stays under its limit" (the chart's ``limits: {memory: 384Mi}``).

Two kinds of round, each with a fresh real ``debugcap-operator`` process (started as
``benchmarks/bench_operator.py`` starts it: ``DEBUGCAP_OPERATOR_CONCURRENCY=--concurrency``, the
testbed's MinIO, the chart's ``DEBUGCAP_OPERATOR_ANALYSIS_TRACE_LIMIT_MIB=4``), in a namespace of
its own with ``--pods`` goapp pods, and one DebugCapture over all of them (selector, ``maxPods``)
with ``--template`` (go-profile: heap, allocs, goroutine, CPU, block, mutex, threadcreate and
goroutineleak profiles, a trace and a flight recorder snapshot, cpuSeconds=1, traceSeconds=1):

* ``baseline``: plain goapp pods;
* ``bombs``: ``GOAPP_HOSTILE=bomb``: every profile endpoint answers a 1 MiB gzip that inflates to
  1 GiB (tests/fixtures/goapp/README.md), so the capture meets 7 x 8 = 56 bombs, seven at a time.

``--runs`` rounds of each, alternated. For each round it prints the wall time, the operator's peak
RSS (its ``VmHWM`` from /proc, read just before it is stopped; and the largest summed ``VmRSS`` of
it and its children, polled every 0.1 s), the phase, how many profiles were stored partial naming
the 16 MiB check bound, and the bundles found in S3; then min/median/max of the bombs' peaks
against the limit (MET / NOT MET: every round under it, every bundle in S3, no traceback) and
against the baseline's. ``--root`` runs the operator from another checkout (``PYTHONPATH``), for a
before/after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_operator import (  # noqa: E402
    RssSampler,
    _proc_kb,
    check_bundles,
    delete_captures,
    make_pods,
    run_capture,
    say,
    start_operator,
    testbed_setup,
)

from debugcap.kube.client import Kube  # noqa: E402
from debugcap.storage.s3 import S3Backend  # noqa: E402
from testbed import cluster, images, layout  # noqa: E402

MIB = 1 << 20
LIMIT_MIB = 384  # charts/debugcap/values.yaml: resources.limits.memory
BOUND_TEXT = "decompresses to more than 16 MiB"
CHART_ENV = {"DEBUGCAP_OPERATOR_ANALYSIS_TRACE_LIMIT_MIB": "4"}


def one_round(kube: Kube, s3: S3Backend, env: dict[str, str], args: argparse.Namespace, label: str,
              pod_env: dict[str, str]) -> dict[str, Any]:
    namespace = f"bench-bombs-{label}-{uuid.uuid4().hex[:6]}"
    core = kube.core()
    tmp = Path(tempfile.mkdtemp(prefix=f"bench-bombs-{label}-"))
    say(f"[{label}] namespace {namespace}: {args.pods} goapp pods {pod_env or '(plain)'}")
    proc: subprocess.Popen[bytes] | None = None
    sampler: RssSampler | None = None
    try:
        make_pods(core, namespace, args.pods, env=pod_env)
        proc, _ = start_operator(namespace, {**env, **CHART_ENV}, args.concurrency, tmp, tmp / "operator.log")
        sampler = RssSampler(proc.pid)
        sampler.start()
        at_start = _proc_kb(proc.pid, "VmRSS") * 1024
        result = run_capture(kube, namespace, "bombs", {"selector": {"matchLabels": {"app": "bench"}},
                                                        "maxPods": args.pods}, proc.pid,
                             timeout=args.timeout, template=args.template,
                             params={"cpuSeconds": 1, "traceSeconds": 1,
                                     **({"deadlineSeconds": args.deadline} if args.deadline else {})})
        problems = check_bundles(s3, result, args.pods)
        hwm = _proc_kb(proc.pid, "VmHWM") * 1024
        pods = result["status"].get("pods") or []
        collectors = [c for p in pods for c in p.get("collectors") or []]
        bounded = sum(1 for c in collectors if c["status"] == "partial" and BOUND_TEXT in c.get("message", ""))
        result.update(label=label, hwm=hwm, at_start=at_start, problems=problems, bounded=bounded,
                      profiles=len(collectors))
        delete_captures(kube, namespace)
    finally:
        if sampler is not None:
            sampler.stop()
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        core.delete_namespace(namespace, grace_period_seconds=0)
    log = (tmp / "operator.log").read_text(errors="replace")
    result["tracebacks"] = log.count("Traceback")
    result["tree_peak"] = sampler.peak if sampler else 0
    phases = sorted({p.get("phase", "?") for p in pods})
    say(f"[{label}] {result['observed']:.1f} s, phase {result['status'].get('phase')} (pods: {', '.join(phases)}); "
        f"operator RSS at start {at_start / MIB:.0f} MiB, peak VmHWM {hwm / MIB:.0f} MiB, "
        f"peak RSS of its tree {result['tree_peak'] / MIB:.0f} MiB; {bounded}/{result['profiles']} collectors "
        f"partial at the 16 MiB check; bundles in S3 {result['bundles_in_s3']}/{args.pods}; "
        f"tracebacks in its log {result['tracebacks']}; CPU {result['operator_cpu']:.1f} s")
    for problem in problems:
        say(f"[{label}]   problem: {problem}")
    return result


def _spread(values: list[float]) -> str:
    mid = statistics.median(values)
    return f"min {min(values) / MIB:.0f} / median {mid / MIB:.0f} / max {max(values) / MIB:.0f} MiB"


def _each(rounds: list[dict[str, Any]], key: str) -> str:
    return ", ".join(f"{r[key]:.1f}" for r in rounds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pods", type=int, default=7)
    parser.add_argument("--concurrency", type=int, default=7,
                        help="DEBUGCAP_OPERATOR_CONCURRENCY (the chart's default is 4; 7 puts every bomb at once)")
    parser.add_argument("--template", default="go-profile")
    parser.add_argument("--runs", type=int, default=3, help="rounds of each kind, alternated")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--no-baseline", action="store_true", help="only the rounds of bombs")
    parser.add_argument("--hostile", default="bomb", help="GOAPP_HOSTILE of the bomb pods (bomb,trickle: the "
                        "gzip profiles bomb, the trace and flight recorder trickle past --deadline)")
    parser.add_argument("--deadline", type=int, default=0, help="spec.parameters.deadlineSeconds (0: unset)")
    parser.add_argument("--root", type=Path, default=None,
                        help="run the operator from another checkout's debugcap (git archive <commit> debugcap "
                             "| tar -x -C DIR), to compare before and after")
    args = parser.parse_args()

    env, s3, kube = testbed_setup()
    if args.root is not None:
        env["PYTHONPATH"] = str(args.root.resolve())
    # goapp as this checkout's fixture builds it (GOAPP_HOSTILE), in the node's containerd.
    cluster.import_image(images.build_all()[layout.IMAGES["goapp"]])

    say(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs; {args.pods} pods, concurrency "
        f"{args.concurrency}, template {args.template}, {args.runs} run(s); limit {LIMIT_MIB} MiB; operator from "
        f"{args.root or REPO}")
    started = time.monotonic()
    base: list[dict[str, Any]] = []
    bombs: list[dict[str, Any]] = []
    for i in range(1, args.runs + 1):
        if not args.no_baseline:
            base.append(one_round(kube, s3, env, args, f"baseline-{i}", {}))
        bombs.append(one_round(kube, s3, env, args, f"bombs-{i}", {"GOAPP_HOSTILE": args.hostile}))
    peaks = [float(max(r["hwm"], r["tree_peak"])) for r in bombs]
    failed = [p for r in bombs for p in r["problems"]] + [f"{r['label']}: traceback" for r in bombs if r["tracebacks"]]
    verdict = "MET" if max(peaks) < LIMIT_MIB * MIB and not failed else "NOT MET"
    say("")
    say(f"bombs: operator peak RSS {_spread(peaks)} against the {LIMIT_MIB} MiB limit "
        f"(worst {max(peaks) / (LIMIT_MIB * MIB):.0%}): {verdict}")
    say(f"bombs: wall {_each(bombs, 'observed')} s; operator CPU {_each(bombs, 'operator_cpu')} s")
    if base:
        base_peaks = [float(max(r["hwm"], r["tree_peak"])) for r in base]
        say(f"baseline (plain pods): peak RSS {_spread(base_peaks)}; bombs / baseline (medians) "
            f"{statistics.median(peaks) / statistics.median(base_peaks):.2f}x; wall "
            f"{_each(base, 'observed')} s")
    say(f"total {time.monotonic() - started:.0f} s")
    return 0 if verdict == "MET" else 1


if __name__ == "__main__":
    sys.exit(main())
