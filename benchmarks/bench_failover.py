"""Failover of the operator's leader (issue 15 item 3) on the testbed (prints numbers; not a test).

Usage: .venv/bin/python benchmarks/bench_failover.py [--runs 5] [--pods 4] [--lease 15s,10s,2s]

Starts two real ``debugcap-operator`` processes with the leader election on (its Lease in a
namespace of its own, as the chart runs two replicas) and ``--pods`` goapp pods. Each run creates
a DebugCapture of those pods (go-profile, cpuSeconds=3, traceSeconds=3), waits until a pod is
being captured, stops the leader, and polls (every 50 ms) the Lease and the capture:

* ``lease``: from the stop to the Lease naming the other process;
* ``handler``: from the stop to the new leader's first write to the capture's status (it closes
  the orphaned capture, ``recovery.py``): when users see the operator act again;
* ``kopf up``: from the new leader's "leading" log line to kopf's "debugcap operator ready".

``kill -9`` runs first (the Lease must expire: about ``leaseDuration`` plus up to one
``retryPeriod``), then SIGTERM runs, a rolling update's stop (the leader releases the Lease). The
stopped process is started again as the next standby, so every run has two replicas. Prints
min/median/max of each over ``--runs``, and checks that each capture ended with every pod in its
status and no stray bundle in S3 (no pod captured twice).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.bench_operator import (  # noqa: E402
    GROUP,
    OPERATOR,
    PLURAL,
    TERMINAL,
    VERSION,
    free_port,
    make_pods,
    say,
    testbed_setup,
)
from debugcap.kube.client import Kube, group_path  # noqa: E402
from debugcap.settings import S3Settings  # noqa: E402
from debugcap.storage.s3 import S3Backend  # noqa: E402

LEASE = "debugcap-bench-failover"
_LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")


@dataclass
class Proc:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def start(name: str, namespace: str, env: dict[str, str], lease: list[str], tmp: Path, n: int) -> Proc:
    root = tmp / f"{name}-{n}"
    root.mkdir(parents=True)
    op_env = {**os.environ, **env, "DEBUGCAP_OPERATOR_NAMESPACES": namespace,
              "DEBUGCAP_OPERATOR_LEADER_ELECTION": "true", "DEBUGCAP_OPERATOR_LEASE_NAMESPACE": namespace,
              "DEBUGCAP_OPERATOR_LEASE_NAME": LEASE, "POD_NAME": name,
              "DEBUGCAP_OPERATOR_LEASE_DURATION": lease[0], "DEBUGCAP_OPERATOR_LEASE_RENEW_DEADLINE": lease[1],
              "DEBUGCAP_OPERATOR_LEASE_RETRY_PERIOD": lease[2],
              "DEBUGCAP_OPERATOR_LIVENESS_PORT": str(free_port()),
              "DEBUGCAP_OPERATOR_WORK_DIR": str(root / "work"), "DEBUGCAP_SPOOL_DIR": str(root / "spool")}
    log = root / "operator.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen([OPERATOR], env=op_env, stdout=fh, stderr=subprocess.STDOUT)
    return Proc(name, proc, log)


def holder(kube: Kube, namespace: str) -> str:
    try:
        lease = kube.get_json(group_path("coordination.k8s.io", "v1", "leases", namespace, LEASE))
    except Exception:  # noqa: BLE001 - not there yet, or a moment's error: polled again
        return ""
    return str((lease.get("spec") or {}).get("holderIdentity") or "")


def wait(what: str, ok: Any, seconds: float, every: float = 0.2) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            got = ok()
        except Exception:  # noqa: BLE001 - the shared testbed's API server may blink: ask again
            got = None
        if got:
            return got
        time.sleep(every)
    raise SystemExit(f"timed out after {seconds:.0f}s waiting for {what}")


def log_stamp(text: str, marker: str) -> float | None:
    """The wall time (epoch seconds) of the first log line containing ``marker``."""
    for line in text.splitlines():
        if marker in line:
            m = _LOG_TIME.match(line)
            if m:
                return datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
    return None


def one_run(kube: Kube, s3: S3Backend, namespace: str, pods: int, leader: Proc, standby: Proc, sig: int,
            run: int) -> dict[str, float | str]:
    custom = kube.custom()
    name = f"failover-{run}"
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "DebugCapture", "metadata": {"name": name},
        "spec": {"target": {"selector": {"matchLabels": {"app": "bench"}}, "maxPods": pods},
                 "template": "go-profile", "parameters": {"cpuSeconds": 3, "traceSeconds": 3}}})

    def running() -> dict[str, Any] | None:
        obj = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        status = obj.get("status") or {}
        return obj if any(p.get("phase") == "Running" for p in status.get("pods") or []) else None

    before = wait("a pod being captured", running, 120)
    if leader.proc.poll() is not None:
        # It lost the Lease by itself (the shared testbed's API server was down past the renew
        # deadline, say) and the standby leads already: not a failover this run can time.
        _terminal_within(custom, namespace, name)
        return {"skipped": f"{leader.name} no longer led when the run began (exit {leader.proc.poll()})"}
    stopped_wall, stopped = time.time(), time.monotonic()
    leader.proc.send_signal(sig)
    took: dict[str, float] = {}
    deadline = stopped + 120
    while "handler" not in took or "lease" not in took:
        if time.monotonic() > deadline:
            raise SystemExit(f"run {run}: no take-over within 120 s: {took}\n{standby.text()[-3000:]}")
        if "lease" not in took and holder(kube, namespace).startswith(f"{standby.name}_"):
            took["lease"] = time.monotonic() - stopped
        if "handler" not in took:
            try:
                obj = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
            except Exception:  # noqa: BLE001 - the shared testbed's API server may blink: poll again
                time.sleep(0.05)
                continue
            if (obj.get("status") or {}) != (before.get("status") or {}):
                if "took over lease" in standby.text():
                    took["handler"] = time.monotonic() - stopped
                else:  # the stopping leader's own last write (SIGTERM), not the new leader's
                    before = obj
        time.sleep(0.05)
    leader.proc.wait(timeout=60)
    final = wait("the capture to end", lambda: _terminal(custom, namespace, name), 120)
    text = standby.text()
    leading, ready = log_stamp(text, "leading: lease"), log_stamp(text, "debugcap operator ready")
    problems = check(s3, namespace, name, final, pods)
    return {"lease": took["lease"], "handler": took["handler"],
            "kopf_up": (ready - leading) if leading and ready else float("nan"),
            "leading_after": (leading - stopped_wall) if leading else float("nan"),
            "phase": str(final.get("phase")), "problems": "; ".join(problems)}


def _terminal_within(custom: Any, namespace: str, name: str) -> None:
    wait("the capture to end", lambda: _terminal(custom, namespace, name), 120)


def _terminal(custom: Any, namespace: str, name: str) -> dict[str, Any] | None:
    status: dict[str, Any] = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name).get(
        "status") or {}
    return status if status.get("phase") in TERMINAL else None


def check(s3: S3Backend, namespace: str, name: str, status: dict[str, Any], pods: int) -> list[str]:
    """Every pod once in the status; every object of the capture in S3 named by it (its keys carry
    the directory ``<name>_<uid>``), at most one per pod."""
    problems = []
    names = [p["name"] for p in status.get("pods") or []]
    if len(names) != pods or len(set(names)) != pods:
        problems.append(f"{name}: {len(names)} pod entries ({len(set(names))} distinct), want {pods}")
    named = {(p.get("bundle") or {}).get("key") or p.get("uploadKey") for p in status.get("pods") or []}
    settings = S3Settings.from_env()
    assert settings is not None
    keys = [k for k in s3.list(prefix=f"{settings.prefix}/{settings.cluster}/{namespace}/")
            if k.split("/")[-2].startswith(f"{name}_")]
    problems += [f"{name}: stray object {k}" for k in keys if k not in named]
    per_pod = [k.split("/")[3] for k in keys]
    if len(per_pod) != len(set(per_pod)):
        problems.append(f"{name}: a pod has two bundles: {keys}")
    return problems


def summary(label: str, values: list[float]) -> str:
    good = [v for v in values if v == v]
    if not good:
        return f"{label}: no data"
    return (f"{label}: min {min(good):.2f}s, median {statistics.median(good):.2f}s, max {max(good):.2f}s "
            f"({len(good)} runs)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--pods", type=int, default=4)
    parser.add_argument("--lease", default="15s,10s,2s", help="leaseDuration,renewDeadline,retryPeriod")
    args = parser.parse_args()
    lease = args.lease.split(",")

    env, s3, kube = testbed_setup()
    core = kube.core()
    namespace = f"bench-fo-{uuid.uuid4().hex[:6]}"
    tmp = Path(tempfile.mkdtemp(prefix="bench-failover-"))
    procs: list[Proc] = []
    results: dict[str, list[dict[str, float | str]]] = {"kill -9": [], "SIGTERM": []}
    try:
        say(f"namespace {namespace}: {args.pods} goapp pods; lease {args.lease} (duration, renew deadline, retry)")
        make_pods(core, namespace, args.pods)
        a = start("op-a", namespace, env, lease, tmp, 0)
        procs.append(a)
        wait("op-a to lead", lambda: "debugcap operator ready" in a.text(), 90)
        b = start("op-b", namespace, env, lease, tmp, 0)
        procs.append(b)
        wait("op-b to wait as a standby", lambda: "standby: lease" in b.text(), 90)
        leader, standby = a, b
        n = 0
        for label, sig in (("kill -9", signal.SIGKILL), ("SIGTERM", signal.SIGTERM)):
            for _ in range(args.runs):
                n += 1
                r = one_run(kube, s3, namespace, args.pods, leader, standby, sig, n)
                if "skipped" in r:
                    say(f"run {n} ({label}): not counted: {r['skipped']}")
                else:
                    results[label].append(r)
                    say(f"run {n} ({label}): lease taken after {r['lease']:.2f}s, first status write after "
                        f"{r['handler']:.2f}s, kopf up {r['kopf_up']:.2f}s after leading; capture {r['phase']}"
                        + (f"; PROBLEMS: {r['problems']}" if r["problems"] else ""))
                wait("the new leader's kopf", lambda s=standby: "debugcap operator ready" in s.text(), 90)
                restarted = start(leader.name, namespace, env, lease, tmp, n)
                procs.append(restarted)
                wait("the restarted process to wait as a standby",
                     lambda r=restarted: "standby: lease" in r.text(), 90)
                leader, standby = standby, restarted
        for label, rows in results.items():
            say(f"{label}, {len(rows)} runs, lease {args.lease}:")
            say("  " + summary("stop -> Lease taken", [float(r["lease"]) for r in rows]))
            say("  " + summary("stop -> first status write (orphan closed)", [float(r["handler"]) for r in rows]))
            say("  " + summary("leading -> kopf ready", [float(r["kopf_up"]) for r in rows]))
        problems = [f"{r['problems']}" for rows in results.values() for r in rows if r["problems"]]
        say("deleting the captures (the leader deletes their bundles from S3)")
        for item in kube.custom().list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["items"]:
            kube.custom().delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL,
                                                          item["metadata"]["name"])
        wait("the captures to be deleted", lambda: not kube.custom().list_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL)["items"], 120, every=0.5)
        say("invariants: every pod once per capture, no stray bundle: " + ("held" if not problems else
                                                                           f"BROKEN: {problems}"))
        return 1 if problems else 0
    finally:
        for p in procs:
            if p.proc.poll() is None:
                p.proc.terminate()
                try:
                    p.proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.proc.kill()
        try:
            for item in kube.custom().list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["items"]:
                kube.custom().patch_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, item["metadata"]["name"], {"metadata": {"finalizers": None}},
                    _content_type="application/merge-patch+json")
            core.delete_namespace(namespace, grace_period_seconds=0)
        except Exception as exc:  # noqa: BLE001 - say what is left rather than hide the run's own error
            say(f"could not clean up namespace {namespace} ({type(exc).__name__}); delete it by hand")
        kube.close()
        say(f"operator logs: {tmp}")


if __name__ == "__main__":
    raise SystemExit(main())
