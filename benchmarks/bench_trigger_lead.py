"""DebugTrigger: how long before the OOM kill a memory trigger has the heap, and what a check costs
(prints numbers; not a test).

Usage: .venv/bin/python benchmarks/bench_trigger_lead.py [--pods 10] [--rate-kb 2048] [--limit 128Mi]
       [--threshold 80] [--interval 2[,10]] [--stagger 1.5] [--check-rounds 5] [--keep-log]

Needs the testbed (``python -m testbed up``). For each ``--interval`` (a comma list runs one round
per value, each with new pods) it creates its own namespace, applies ``crds/``, starts the real
``debugcap-operator`` as a subprocess serving only that namespace (with the testbed's S3, MinIO;
``DEBUGCAP_OPERATOR_TRANSPORT=direct``, as the operator runs on the node, which routes to pod IPs;
``DEBUGCAP_OPERATOR_TRIGGERED_CAPTURES=--pods``), applies a DebugTrigger

    when: {memoryPercentOfLimit: --threshold, restarted: true}, checkIntervalSeconds: --interval,
    cooldown: 15m, maxCapturesPerHour: 100  (template: the built-in go-heap)

then starts ``--pods`` goapp pods, ``--stagger`` seconds apart, with ``GOAPP_HEAP_GROWTH_KB=--rate-kb``
(``main.(*growingCache).add`` fills that much a second) under a ``--limit`` memory limit, and waits
until every pod has been OOMKilled and every capture of the trigger has ended.

Per pod it prints, as seconds before the kill (positive: before it):

* ``fired``: the memory capture's object seen created (a watch on DebugCaptures; sub-second);
* ``heap``: when the Go runtime wrote the heap profile (the profile's ``time_nanos``; the GET ends a
  few ms later, its ``pprof-heap`` duration_ms is printed too);
* ``stored``: the bundle's S3 object LastModified (MinIO: ms);
* the kill itself from the kernel log (``dmesg``'s ``oom-kill: ... task_memcg=.../<container id>``,
  microseconds, its clock matched to the wall clock by a marker line written to /dev/kmsg) when this
  process may read it, else from ``lastState.terminated.finishedAt``;
* ``lead(s)``, in whole seconds as the API gives them: finishedAt (whole seconds, truncated) minus
  manifest ``started_at`` (whole seconds, truncated) + pprof-heap ``duration_ms``: good to +-1 s.

then min/median/max of each lead, "caught before the kill: k of N" (heap profile written before the
kill; and how many bundles were stored before it), whether each heap's top in-use function is the
hoarding one, and a post-mortem check (the restart capture exists for each pod).

Then the trigger is suspended and the cost of one check is measured in this process with the
operator's own code (``trigger_checks.find`` + ``read_pod``, ``READS_PER_TRIGGER`` at a time, over
``SignalReader(transport="direct")``), ``--check-rounds`` times, on the same pods (restarted, hoarding
again), for memory alone and for memory + goroutines: wall time, CPU time, per-pod read latency, the
bytes read per pod (``/debug/vars``; ``goroutine?debug=1``'s head of at most 4 KiB against its whole
size) and the bytes of the pod list; and extrapolates them to 1,000 pods every 10 s.

At the end the captures and the trigger are deleted while the operator still runs (it removes
their finalizers, deleting the bundles from S3), the operator is stopped and the namespace deleted.
Numbers and their reading: docs/performance.md.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import math
import os
import re
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import minio  # noqa: E402
from bench_operator import delete_captures, host_cpu, proc_cpu_seconds, start_operator, testbed_setup  # noqa: E402
from bench_operator import strip_finalizers as strip_capture_finalizers  # noqa: E402
from kubernetes import client as k8s  # noqa: E402
from kubernetes import watch  # noqa: E402
from kubernetes.client.exceptions import ApiException  # noqa: E402

from debugcap.analysis import pprof  # noqa: E402
from debugcap.analysis.sections import quantity  # noqa: E402
from debugcap.bundle import layout as bundle_layout  # noqa: E402
from debugcap.capture import signals  # noqa: E402
from debugcap.capture.target import resolve_target  # noqa: E402
from debugcap.formats import gostats  # noqa: E402
from debugcap.formats import pprof as pprof_format  # noqa: E402
from debugcap.kube import podhttp  # noqa: E402
from debugcap.kube.client import Kube, KubeTarget, core_path  # noqa: E402
from debugcap.operator import trigger_checks, triggering  # noqa: E402
from debugcap.storage.s3 import S3Backend, parse_endpoint  # noqa: E402
from testbed import layout  # noqa: E402

GROUP, VERSION = "debugcap.io", "v1alpha1"
TERMINAL = {"Completed", "PartiallyFailed", "Failed"}
HOARDER = "main.(*growingCache).add"
APP = "hoarder"
TRIGGER = "pre-oom"


def say(msg: str = "") -> None:
    print(msg, flush=True)


def _stamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def hms(t: float | None) -> str:
    if t is None:
        return "-"
    return datetime.fromtimestamp(t, UTC).strftime("%H:%M:%S.%f")[:-3]


def fmt(v: float | None, digits: int = 2) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


# ---- the kernel's OOM kills ----


class KernelLog:
    """OOM kills from ``dmesg``, on the wall clock. The kernel stamps its lines with its own
    monotonic clock; a marker line written to /dev/kmsg ties that clock to this one's."""

    LINE = re.compile(r"^\[\s*(\d+\.\d+)\]\s*(.*)$")

    def __init__(self) -> None:
        self.offset: float | None = None  # wall = kernel stamp + offset
        self.how = ""
        try:
            lines = self._lines()
        except (OSError, subprocess.CalledProcessError) as exc:
            self.how = f"dmesg not readable ({exc}); kills from finishedAt (whole seconds)"
            return
        if not lines:
            self.how = "dmesg printed nothing; kills from finishedAt (whole seconds)"
            return
        mark = f"debugcap bench_trigger_lead clock mark {uuid.uuid4().hex[:8]}"
        try:
            before_w, before_m = time.time(), time.monotonic()
            with open("/dev/kmsg", "w") as kmsg:
                kmsg.write(mark + "\n")
            after_w, after_m = time.time(), time.monotonic()
            stamp = next(float(m.group(1)) for line in reversed(self._lines())
                         if (m := self.LINE.match(line)) and mark in m.group(2))
            self.offset = (before_w + after_w) / 2 - stamp
            self.how = (f"kernel log, its clock tied to the wall clock by a /dev/kmsg marker "
                        f"(kernel clock {1000 * ((before_m + after_m) / 2 - stamp):+.1f} ms from CLOCK_MONOTONIC)")
        except (OSError, StopIteration):
            self.offset = time.time() - time.monotonic()
            self.how = "kernel log, its clock taken as CLOCK_MONOTONIC (no /dev/kmsg marker: +-10 ms)"

    @staticmethod
    def _lines() -> list[str]:
        out = subprocess.run(["dmesg"], capture_output=True, text=True, check=True, timeout=20).stdout
        return out.splitlines()

    def kills(self) -> dict[str, float]:
        """container id -> wall time of its oom-kill line."""
        if self.offset is None:
            return {}
        found: dict[str, float] = {}
        for line in self._lines():
            m = self.LINE.match(line)
            if not m or "oom-kill:" not in m.group(2):
                continue
            memcg = re.search(r"task_memcg=(\S+?),", m.group(2))
            if memcg:
                cid = memcg.group(1).rstrip("/").rsplit("/", 1)[-1]
                cid = cid.removeprefix("cri-containerd-").removesuffix(".scope")
                found[cid] = float(m.group(1)) + self.offset
        return found


# ---- watching the captures ----


class CaptureWatch(threading.Thread):
    """Watches the namespace's DebugCaptures; per capture the wall time it was first seen, first
    listed a stored bundle, and first seen ended, plus its latest object."""

    def __init__(self, kube: Kube, namespace: str) -> None:
        super().__init__(daemon=True)
        self.kube, self.namespace = kube, namespace
        self.seen: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()
        self._stop_event = threading.Event()
        self.errors: list[str] = []

    def run(self) -> None:
        custom = self.kube.custom()
        version: str | None = None
        while not self._stop_event.is_set():
            w = watch.Watch()
            try:
                kwargs: dict[str, Any] = {"timeout_seconds": 5}
                if version:
                    kwargs["resource_version"] = version
                for event in w.stream(custom.list_namespaced_custom_object, GROUP, VERSION, self.namespace,
                                      "debugcaptures", **kwargs):
                    now = time.time()
                    obj = event["object"]
                    version = obj["metadata"].get("resourceVersion") or version
                    self._note(event["type"], obj, now)
                    if self._stop_event.is_set():
                        w.stop()
            except ApiException as exc:
                if exc.status == 410:
                    version = None
                else:
                    self.errors.append(str(exc)[:200])
                    time.sleep(0.5)
            except Exception as exc:  # noqa: BLE001 - a dropped watch is retried
                self.errors.append(f"{type(exc).__name__}: {exc}"[:200])
                time.sleep(0.5)

    def _note(self, kind: str, obj: dict[str, Any], now: float) -> None:
        if kind == "DELETED":
            return
        name = obj["metadata"]["name"]
        with self.lock:
            entry = self.seen.setdefault(name, {"added": now})
            entry["obj"] = obj
            status = obj.get("status") or {}
            if any(p.get("bundle") for p in status.get("pods") or []):
                entry.setdefault("bundle", now)
            if status.get("phase") in TERMINAL:
                entry.setdefault("ended", now)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        with self.lock:
            return {k: dict(v) for k, v in self.seen.items()}

    def stop(self) -> None:
        self._stop_event.set()


class MemorySampler(threading.Thread):
    """Samples one pod every ``every`` s until its first restart: what the trigger reads (the Go
    runtime's Sys - HeapReleased from /debug/vars) beside what the kernel charges its memory
    cgroup (cgroup v1 ``memory.usage_in_bytes`` of the pod, read on this node), to explain the leads."""

    def __init__(self, kube: Kube, namespace: str, pod: str, every: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.kube, self.namespace, self.pod, self.every = kube, namespace, pod, every
        self.samples: list[tuple[float, int | None, int | None]] = []  # (wall, go held, cgroup usage)
        self._stop_event = threading.Event()
        self.note = ""

    def run(self) -> None:
        core = self.kube.core()
        deadline = time.monotonic() + 120
        target = None
        while target is None and not self._stop_event.is_set():
            try:
                target = resolve_target(self.kube, self.namespace, self.pod)
            except Exception:  # noqa: BLE001 - not Running yet
                if time.monotonic() > deadline:
                    self.note = f"{self.pod} never Running"
                    return
                time.sleep(0.5)
        if target is None:
            return
        cgroup = next((p for p in (Path("/sys/fs/cgroup/memory/kubepods/burstable") / f"pod{target.pod_uid}",
                                   Path("/sys/fs/cgroup/memory/kubepods") / f"pod{target.pod_uid}")
                       if (p / "memory.usage_in_bytes").exists()), None)
        if cgroup is None:
            self.note = "no cgroup v1 memory.usage_in_bytes for the pod on this node"
        conn = podhttp.Direct(namespace=self.namespace, pod=self.pod, host=target.pod_ip, port=target.pprof_port)
        try:
            while not self._stop_event.is_set():
                now = time.time()
                held = None
                try:
                    sink = io.BytesIO()
                    conn.get(signals.EXPVAR_PATH, sink, timeout=2, max_bytes=signals.EXPVAR_BYTES)
                    held = gostats.held_from_expvar(sink.getvalue())
                except Exception:  # noqa: BLE001 - killed
                    pass
                usage = None
                if cgroup is not None:
                    try:
                        usage = int((cgroup / "memory.usage_in_bytes").read_text())
                    except (OSError, ValueError):
                        pass
                self.samples.append((now, held, usage))
                pod = core.read_namespaced_pod(self.pod, self.namespace)
                statuses = pod.status.container_statuses if pod.status else None
                if statuses and statuses[0].restart_count >= 1:
                    return
                self._stop_event.wait(self.every)
        finally:
            conn.close()

    def stop(self) -> None:
        self._stop_event.set()


# ---- cluster ----


def wait_namespace(core: k8s.CoreV1Api, namespace: str) -> None:
    core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=namespace, labels={"debugcap-bench": "1"})))
    deadline = time.monotonic() + 30
    while True:
        try:
            core.read_namespaced_service_account("default", namespace)
            return
        except ApiException as exc:
            if exc.status != 404 or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def make_hoarder(core: k8s.CoreV1Api, namespace: str, name: str, rate_kb: int, limit: str) -> None:
    container = k8s.V1Container(
        name="app", image=layout.IMAGES["goapp"], image_pull_policy="Never",
        env=[k8s.V1EnvVar(name="GOAPP_HEAP_GROWTH_KB", value=str(rate_kb))],
        resources=k8s.V1ResourceRequirements(limits={"memory": limit}, requests={"memory": limit}))
    core.create_namespaced_pod(namespace, k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(name=name, labels={"app": APP}),
        spec=k8s.V1PodSpec(containers=[container], termination_grace_period_seconds=0,
                           automount_service_account_token=False)))


def trigger_spec(threshold: int, interval: int) -> dict[str, Any]:
    return {"target": {"selector": {"matchLabels": {"app": APP}}},
            "when": {"memoryPercentOfLimit": threshold, "restarted": True},
            "checkIntervalSeconds": interval, "cooldown": "15m", "maxCapturesPerHour": 100}


def first_kills(core: k8s.CoreV1Api, namespace: str, kills: dict[str, dict[str, Any]]) -> None:
    """Record each pod's first termination (the one a later restart would overwrite in lastState)."""
    for pod in core.list_namespaced_pod(namespace, label_selector=f"app={APP}").items:
        name = pod.metadata.name
        statuses = pod.status.container_statuses or []
        if name in kills or not statuses or statuses[0].restart_count < 1:
            continue
        ended = statuses[0].last_state.terminated if statuses[0].last_state else None
        if ended is None or ended.finished_at is None:
            continue
        kills[name] = {"reason": ended.reason, "finished": ended.finished_at.timestamp(),
                       "started": ended.started_at.timestamp() if ended.started_at else None,
                       "container": (ended.container_id or "").split("://", 1)[-1], "seen": time.time()}


def delete_triggers(kube: Kube, namespace: str, timeout: float = 60) -> None:
    """Delete the triggers while the operator runs: they carry its finalizer, which only it removes."""
    custom = kube.custom()
    custom.delete_collection_namespaced_custom_object(GROUP, VERSION, namespace, "debugtriggers")
    deadline = time.monotonic() + timeout
    while custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "debugtriggers")["items"]:
        if time.monotonic() > deadline:
            say(f"  triggers still present after {timeout:.0f} s; stripping finalizers")
            strip_trigger_finalizers(kube, namespace)
            return
        time.sleep(0.5)


def strip_trigger_finalizers(kube: Kube, namespace: str) -> None:
    """Without the operator nothing removes its finalizer, and the namespace would hang deleting."""
    custom = kube.custom()
    for item in custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "debugtriggers")["items"]:
        if item["metadata"].get("finalizers"):
            try:
                custom.patch_namespaced_custom_object(
                    GROUP, VERSION, namespace, "debugtriggers", item["metadata"]["name"],
                    {"metadata": {"finalizers": None}}, _content_type="application/merge-patch+json")
            except ApiException:
                pass


# ---- one round: pods, a trigger, the kills ----


def lead_round(args: argparse.Namespace, interval: int, env: dict[str, str], kube: Kube, s3: S3Backend,
               kernel: KernelLog) -> dict[str, Any]:
    core = kube.core()
    custom = kube.custom()
    namespace = f"bench-trig-{uuid.uuid4().hex[:6]}"
    tmp = Path(tempfile.mkdtemp(prefix="bench-trigger-"))
    proc: subprocess.Popen[bytes] | None = None
    capture_watch: CaptureWatch | None = None
    sampler: MemorySampler | None = None
    problems: list[str] = []
    result: dict[str, Any] = {"interval": interval, "problems": problems}
    pods = [f"{APP}-{i:02d}" for i in range(args.pods)]
    try:
        say(f"\n## interval {interval}s: namespace {namespace}, {args.pods} pods hoarding {args.rate_kb} KiB/s "
            f"under {args.limit}, threshold {args.threshold}%")
        wait_namespace(core, namespace)
        op_env = {**env, "DEBUGCAP_OPERATOR_TRANSPORT": "direct",
                  "DEBUGCAP_OPERATOR_TRIGGERED_CAPTURES": str(max(args.pods, 1))}
        proc, _ = start_operator(namespace, op_env, 8, tmp, tmp / "operator.log")
        say(f"operator pid {proc.pid} healthy (transport direct, triggered captures {args.pods})")
        op_cpu0, host0 = proc_cpu_seconds(proc.pid), host_cpu()
        watch_kube = Kube.load(KubeTarget(kubeconfig=env["KUBECONFIG"]))
        capture_watch = CaptureWatch(watch_kube, namespace)
        capture_watch.start()
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "debugtriggers", {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "DebugTrigger", "metadata": {"name": TRIGGER},
            "spec": trigger_spec(args.threshold, interval)})
        started = time.monotonic()
        for i, name in enumerate(pods):
            make_hoarder(core, namespace, name, args.rate_kb, args.limit)
            if i + 1 < len(pods):
                time.sleep(args.stagger)
        sampler = MemorySampler(watch_kube, namespace, pods[0])
        sampler.start()
        limit_bytes = int(quantity(args.limit) or 0)
        life = limit_bytes / (args.rate_kb * 1024)
        timeout = args.stagger * args.pods + 1.5 * life + 180
        say(f"pods created; each should die ~{life:.0f} s after it starts; waiting up to {timeout:.0f} s")
        kills: dict[str, dict[str, Any]] = {}
        done_at = None
        while time.monotonic() - started < timeout:
            first_kills(core, namespace, kills)
            seen = capture_watch.snapshot()
            restart_caps = {e["obj"]["spec"]["target"]["pod"] for e in seen.values()
                            if e["obj"]["spec"].get("firing", {}).get("reason") == "restarted"}
            all_ended = all("ended" in e for e in seen.values())
            if len(kills) == len(pods) and all_ended and restart_caps >= set(pods):
                done_at = time.monotonic()
                break
            time.sleep(0.5)
        if done_at is None:
            problems.append(f"timed out: {len(kills)}/{len(pods)} pods killed; captures: "
                            + ", ".join(f"{k} {(v['obj'].get('status') or {}).get('phase')}"
                                        for k, v in capture_watch.snapshot().items()))
        result["wall"] = time.monotonic() - started
        result["operator_cpu"] = proc_cpu_seconds(proc.pid) - op_cpu0
        host1 = host_cpu()
        result["host_busy"] = 1 - (host1[1] - host0[1]) / max(host1[0] - host0[0], 1)
        # Stop the firings (deleting the trigger would delete its captures and their bundles).
        custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, "debugtriggers", TRIGGER,
                                              {"spec": {"suspend": True}})
        kernel_kills = kernel.kills()
        result["rows"] = rows = analyse(args, pods, kills, kernel_kills, capture_watch.snapshot(), s3, tmp,
                                        problems)
        print_leads(args, interval, rows, kernel.how if kernel_kills else "finishedAt (whole seconds)")
        sampler.stop()
        result["memory"] = print_memory(args, sampler, rows[0])
        trigger = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "debugtriggers", TRIGGER)
        tstatus = trigger.get("status") or {}
        say(f"trigger status: firedTotal {tstatus.get('firedTotal')}, suppressedTotal "
            f"{tstatus.get('suppressedTotal', 0)}, firings listed {len(tstatus.get('firings') or [])}; "
            f"operator CPU {result['operator_cpu']:.1f}s over {result['wall']:.0f}s; host CPU busy "
            f"{result['host_busy']:.0%} of {os.cpu_count()} cores")
        if args.check_rounds:
            result["cost"] = check_cost(args, kube, namespace)
        capture_watch.stop()
        watch_kube.close()
        say("deleting the captures (the operator deletes their bundles from S3) and the trigger")
        delete_captures(kube, namespace)
        delete_triggers(kube, namespace)
    finally:
        if capture_watch is not None:
            capture_watch.stop()
        if sampler is not None:
            sampler.stop()
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        try:
            strip_capture_finalizers(kube, namespace)
            strip_trigger_finalizers(kube, namespace)
            core.delete_namespace(namespace, grace_period_seconds=0)
        except ApiException as exc:
            if exc.status != 404:
                problems.append(f"cleaning up namespace {namespace}: {exc.reason}")
        log = (tmp / "operator.log").read_text(errors="replace") if (tmp / "operator.log").exists() else ""
        if "Traceback" in log:
            problems.append(f"the operator log has a Traceback (see {tmp / 'operator.log'})")
        elif args.keep_log:
            say(f"operator log: {tmp / 'operator.log'}")
        else:
            for p in sorted(tmp.rglob("*"), reverse=True):
                p.rmdir() if p.is_dir() else p.unlink()
            tmp.rmdir()
    return result


def analyse(args: argparse.Namespace, pods: list[str], kills: dict[str, dict[str, Any]],
            kernel_kills: dict[str, float], seen: dict[str, dict[str, Any]], s3: S3Backend, tmp: Path,
            problems: list[str]) -> list[dict[str, Any]]:
    by_pod: dict[str, dict[str, dict[str, Any]]] = {}
    for entry in seen.values():
        spec = entry["obj"]["spec"]
        by_pod.setdefault(spec["target"]["pod"], {})[spec["firing"]["reason"]] = entry
    listing = _s3_client(s3)
    rows = []
    for name in pods:
        kill = kills.get(name)
        row: dict[str, Any] = {"pod": name}
        rows.append(row)
        if kill is None:
            problems.append(f"{name}: no kill seen")
            continue
        row["reason"] = kill["reason"]
        row["kill_whole"] = kill["finished"]
        row["kill"] = kernel_kills.get(kill["container"])
        row["kill_source"] = "kernel" if row["kill"] is not None else "finishedAt"
        if row["kill"] is None:
            row["kill"] = kill["finished"]
        if kill["reason"] != "OOMKilled":
            problems.append(f"{name}: ended {kill['reason']}, not OOMKilled")
        row["post_mortem"] = "restarted" in by_pod.get(name, {})
        mem = by_pod.get(name, {}).get("memoryPercentOfLimit")
        if mem is None:
            row["missed"] = "no memory firing"
            continue
        obj = mem["obj"]
        row["observed"] = obj["spec"]["firing"].get("observed")
        row["fired"] = mem["added"]
        row["fired_stamp"] = _stamp(obj["spec"]["firing"]["time"])
        (pod_status,) = (obj.get("status") or {}).get("pods") or [{}]
        row["phase"] = pod_status.get("phase")
        key = (pod_status.get("bundle") or {}).get("key")
        if not key:
            row["missed"] = f"no bundle ({pod_status.get('phase')}: {pod_status.get('message', '')[:120]})"
            continue
        row["stored_seen"] = mem.get("bundle")
        stat = next(iter(listing.list_objects(s3.settings.bucket, prefix=key)), None)
        row["stored"] = stat.last_modified.timestamp() if stat is not None and stat.last_modified else None
        dest = tmp / Path(key).name
        s3.get(key=key, dest=dest)
        members: dict[str, bytes] = {}
        with tarfile.open(dest) as tar:
            for member in tar.getmembers():
                if member.isfile():
                    extracted = tar.extractfile(member)
                    if extracted is not None:
                        members[member.name.split("/", 1)[1]] = extracted.read()
        dest.unlink()
        manifest = json.loads(members["manifest.json"])
        heap_rec = next((c for c in manifest["collectors"] if c["name"] == "pprof-heap"), None)
        heap = members.get(bundle_layout.PPROF_HEAP)
        if heap_rec is None or heap is None:
            row["missed"] = f"no heap profile in the bundle ({heap_rec})"
            continue
        row["heap_ms"] = heap_rec["duration_ms"]
        row["heap_whole"] = _stamp(manifest["started_at"]) + heap_rec["duration_ms"] / 1000
        profile = pprof_format.parse(gzip.decompress(heap) if heap[:2] == b"\x1f\x8b" else heap)
        row["heap"] = profile.time_ns / 1e9 if profile.time_ns else None
        top = pprof.top(profile, "inuse_space")["rows"]
        row["top"] = str(max(top, key=lambda r: r["flat"])["function"]) if top else ""
        row["cpu_or_trace"] = any(m.startswith(("pprof/cpu", "trace")) for m in members)
        if row["top"] != HOARDER:
            problems.append(f"{name}: the heap's top in-use function is {row['top']}, not {HOARDER}")
        if row["cpu_or_trace"]:
            problems.append(f"{name}: the pre-kill capture took a CPU profile or trace")
    return rows


def _s3_client(s3: S3Backend) -> minio.Minio:
    """A client of our own for ListObjects, whose LastModified has milliseconds (HEAD's has seconds)."""
    settings = s3.settings
    host, secure = parse_endpoint(settings.endpoint, settings.secure)
    return minio.Minio(host, access_key=settings.access_key, secret_key=settings.secret_key, secure=secure,
                       region=settings.region)


def _lead(row: dict[str, Any], key: str, kill: str = "kill") -> float | None:
    return None if row.get(key) is None or row.get(kill) is None else row[kill] - row[key]


def print_leads(args: argparse.Namespace, interval: int, rows: list[dict[str, Any]], how: str) -> None:
    limit_bytes = int(quantity(args.limit) or 0)
    span = (100 - args.threshold) / 100 * limit_bytes / (args.rate_kb * 1024)
    say(f"\nkill times: {how}. Leads in seconds before the kill (positive: before it).")
    say(f"threshold -> limit at {args.rate_kb} KiB/s: (100-{args.threshold})% x {args.limit} / rate = {span:.1f} s; "
        f"check interval {interval} s")
    header = ("| pod | fired at % | killed (UTC) | fired | heap written | heap GET ms | stored | "
              "lead heap→kill | lead stored→kill | lead, whole s | top in-use | post-mortem |")
    say(header)
    say("|" + "---|" * (header.count("|") - 1))
    for r in rows:
        if "kill" not in r:
            say(f"| {r['pod']} | no kill seen |")
            continue
        lead_heap, lead_stored = _lead(r, "heap"), _lead(r, "stored")
        lead_whole = _lead(r, "heap_whole", "kill_whole")
        killed = hms(r["kill"]) + ("" if r["kill_source"] == "kernel" else " (finishedAt)")
        top = "hoarder" if r.get("top") == HOARDER else r.get("top", "-")
        say(f"| {r['pod']} | {fmt(r.get('observed'), 1)} | {killed} | {fmt(_lead(r, 'fired'))} | "
            f"{fmt(lead_heap)} | {r.get('heap_ms', '-')} | {fmt(lead_stored)} | {fmt(lead_heap, 1)} | "
            f"{fmt(lead_stored, 1)} | {fmt(lead_whole, 0)} | {top} | "
            f"{'yes' if r.get('post_mortem') else 'no'} |" + (f" MISSED: {r['missed']}" if r.get("missed") else ""))
    n = len(rows)
    for label, key in (("fired → kill", "fired"), ("heap → kill", "heap"), ("stored → kill", "stored")):
        leads = [v for r in rows if (v := _lead(r, key)) is not None]
        if leads:
            say(f"{label}: min {min(leads):.2f} s, median {statistics.median(leads):.2f} s, max {max(leads):.2f} s "
                f"({len(leads)} pods)")
    heap_before = sum(1 for r in rows if (v := _lead(r, "heap")) is not None and v > 0)
    stored_before = sum(1 for r in rows if (v := _lead(r, "stored")) is not None and v > 0)
    whole = [v for r in rows if (v := _lead(r, "heap_whole", "kill_whole")) is not None]
    if whole:
        say(f"whole-second lead (finishedAt - manifest started_at - heap duration): min {min(whole):.0f}, "
            f"median {statistics.median(whole):.0f}, max {max(whole):.0f} s (+-1 s)")
    say(f"caught before the kill: {heap_before} of {n} (heap profile written); bundle stored before the kill: "
        f"{stored_before} of {n}; post-mortem capture: {sum(1 for r in rows if r.get('post_mortem'))} of {n}")


def print_memory(args: argparse.Namespace, sampler: MemorySampler, row: dict[str, Any]) -> dict[str, Any]:
    """What the trigger read against what the kernel charged, for the first pod, near its end."""
    limit = int(quantity(args.limit) or 0)
    samples = [s for s in sampler.samples if s[1] is not None]
    if sampler.note:
        say(f"memory of {row['pod']}: {sampler.note}")
    if len(samples) < 4 or not limit:
        return {}
    kill = row.get("kill") or samples[-1][0]

    def rate(points: list[tuple[float, int]]) -> float:
        """Least-squares slope, bytes a second."""
        n = len(points)
        mt, mv = sum(t for t, _ in points) / n, sum(v for _, v in points) / n
        den = sum((t - mt) ** 2 for t, _ in points)
        return sum((t - mt) * (v - mv) for t, v in points) / den if den else 0.0

    recent = [s for s in samples if kill - 20 <= s[0] <= kill]
    go_rate = rate([(t, g) for t, g, _ in recent if g is not None])
    cg = [(t, c) for t, _, c in recent if c is not None]
    cg_rate = rate(cg) if len(cg) >= 4 else None
    before = [s for s in samples if s[0] < kill]  # the sampler may see the next container start
    if not before:
        return {}
    last = before[-1]
    fired = row.get("fired")
    at_fire = min(samples, key=lambda s: abs(s[0] - fired)) if fired else None
    say(f"\nmemory of {row['pod']} ({len(sampler.samples)} samples every {sampler.every} s; "
        f"limit {limit / 2**20:.0f} MiB):")
    say(f"  growth over its last 20 s: Go runtime's Sys - HeapReleased {go_rate / 2**20:.2f} MiB/s"
        + (f", memory cgroup {cg_rate / 2**20:.2f} MiB/s" if cg_rate is not None else "")
        + f" (GOAPP_HEAP_GROWTH_KB={args.rate_kb}: {args.rate_kb / 1024:.2f} MiB/s)")
    out: dict[str, Any] = {"go_rate": go_rate, "cgroup_rate": cg_rate}
    if at_fire is not None:
        go_pct = 100 * (at_fire[1] or 0) / limit
        cg_pct = 100 * at_fire[2] / limit if at_fire[2] is not None else None
        out.update(fire_go=go_pct, fire_cgroup=cg_pct)
        say(f"  sample nearest the capture's creation: Go {go_pct:.1f}% of the limit"
            + (f", cgroup {cg_pct:.1f}%" if cg_pct else ""))
    go_pct = 100 * (last[1] or 0) / limit
    cg_pct = 100 * last[2] / limit if last[2] is not None else None
    out.update(last_go=go_pct, last_cgroup=cg_pct, last_before_kill=kill - last[0])
    say(f"  last sample, {kill - last[0]:.1f} s before the kill: Go {go_pct:.1f}%"
        + (f", cgroup {cg_pct:.1f}%" if cg_pct else ""))
    return out


# ---- the cost of one check ----


def check_cost(args: argparse.Namespace, kube: Kube, namespace: str) -> dict[str, Any]:
    """One check as the operator makes it, timed here: the pod list, then every pod read in
    READS_PER_TRIGGER at a time over one SignalReader (connections kept between rounds)."""
    core = kube.core()
    deadline = time.monotonic() + 60
    running: list[Any] = []
    while time.monotonic() < deadline:  # the restarted pods, back to Running
        running = [p for p in core.list_namespaced_pod(namespace, label_selector=f"app={APP}").items
                   if p.status.phase == "Running" and all(c.ready for c in p.status.container_statuses or [])]
        if len(running) == args.pods:
            break
        time.sleep(1)
    say(f"\n### the cost of one check ({len(running)} of {args.pods} pods Running, direct transport, "
        f"{trigger_checks.READS_PER_TRIGGER} reads at once (a trigger's share of the operator's "
        f"{trigger_checks.READ_THREADS} read threads), {args.check_rounds} rounds after one that opens the "
        "connections)")
    listed = kube.get_json(core_path("pods", namespace), [("labelSelector", f"app={APP}")])
    items = listed.get("items") or []
    list_bytes = len(json.dumps(listed, separators=(",", ":")))
    per_pod_list = list_bytes / max(len(items), 1)
    sizes = _endpoint_sizes(kube, namespace, [p.metadata.name for p in running[:5]])
    out: dict[str, Any] = {"pods": len(running), "list_bytes": list_bytes, "per_pod_list": per_pod_list, **sizes}
    say(f"pod list (JSON): {list_bytes} bytes for {len(items)} pods, {per_pod_list / 1024:.1f} KiB a pod")
    say(f"per pod: /debug/vars {sizes['vars']} bytes (read whole); goroutine?debug=1 {sizes['goroutine_full']} bytes, "
        f"of which a check reads {sizes['goroutine_read']} (head <= {gostats.GOROUTINE_HEAD_BYTES})")
    say("| signals | pods | GETs a pod | check wall, median (first) | pod list | read, median / p90 / max a pod | "
        "CPU a check | CPU a pod |")
    say("|---|---|---|---|---|---|---|---|")
    for label, when in (("memory", {"memoryPercentOfLimit": 99}),
                        ("memory + goroutines", {"memoryPercentOfLimit": 99, "goroutines": 1_000_000})):
        spec = triggering.parse_trigger({"target": {"selector": {"matchLabels": {"app": APP}}}, "when": when,
                                         "checkIntervalSeconds": 10})
        out[label] = m = _measure(args.check_rounds, kube, namespace, spec)
        say(f"| {label} | {m['pods']} | {m['gets']} | {m['wall'] * 1000:.0f} ms ({m['first_wall'] * 1000:.0f} ms) | "
            f"{m['list'] * 1000:.0f} ms | {m['read_med'] * 1000:.1f} / {m['read_p90'] * 1000:.1f} / "
            f"{m['read_max'] * 1000:.1f} ms | {m['cpu'] * 1000:.0f} ms | {m['cpu'] / max(m['pods'], 1) * 1000:.2f} ms |"
            + (f" errors: {m['errors']}" if m["errors"] else ""))
    extrapolate(out)
    return out


def _measure(rounds: int, kube: Kube, namespace: str, spec: triggering.TriggerSpec) -> dict[str, Any]:
    reader = signals.SignalReader(kube, transport="direct")
    pool = ThreadPoolExecutor(max_workers=trigger_checks.READS_PER_TRIGGER)
    walls, lists, cpus, reads, errs, first = [], [], [], [], [], 0.0
    pods = 0

    def timed(pod: dict[str, Any]) -> tuple[float, str]:
        t = time.perf_counter()
        reading = trigger_checks.read_pod(kube, reader, namespace, pod, spec)
        return time.perf_counter() - t, reading.error

    try:
        for i in range(rounds + 1):
            c0, t0 = time.process_time(), time.perf_counter()
            selection = trigger_checks.find(kube, namespace, spec)
            t1 = time.perf_counter()
            got = list(pool.map(timed, [selection.objects[p] for p in selection.pods]))
            t2, c1 = time.perf_counter(), time.process_time()
            pods = len(got)
            if i == 0:
                first = t2 - t0
                continue
            walls.append(t2 - t0)
            lists.append(t1 - t0)
            cpus.append(c1 - c0)
            reads += [d for d, _ in got]
            errs += [e for _, e in got if e]
            time.sleep(0.5)
    finally:
        reader.close()
        pool.shutdown()
    reads.sort()
    gets = 1 + (1 if spec.when.goroutines is not None else 0)
    return {"pods": pods, "gets": gets, "wall": statistics.median(walls), "first_wall": first,
            "list": statistics.median(lists), "cpu": statistics.median(cpus),
            "read_med": statistics.median(reads), "read_p90": reads[int(0.9 * (len(reads) - 1))],
            "read_max": reads[-1], "errors": len(errs), "error_sample": errs[:1]}


def _endpoint_sizes(kube: Kube, namespace: str, pods: list[str]) -> dict[str, int]:
    vars_sizes, full, read = [], [], []
    for name in pods:
        try:
            target = resolve_target(kube, namespace, name)
        except Exception:  # noqa: BLE001 - a pod killed meanwhile
            continue
        conn = podhttp.Direct(namespace=namespace, pod=name, host=target.pod_ip, port=target.pprof_port)
        try:
            for path, limit, into in ((signals.EXPVAR_PATH, signals.EXPVAR_BYTES, vars_sizes),
                                      (signals.GOROUTINE_PATH, 64 << 20, full),
                                      (signals.GOROUTINE_PATH, gostats.GOROUTINE_HEAD_BYTES, read)):
                sink = io.BytesIO()
                conn.get(path, sink, timeout=5, max_bytes=limit)
                into.append(len(sink.getvalue()))
        except Exception:  # noqa: BLE001
            continue
        finally:
            conn.close()
    med = (lambda v: int(statistics.median(v)) if v else 0)  # noqa: E731
    return {"vars": med(vars_sizes), "goroutine_full": med(full), "goroutine_read": med(read)}


def extrapolate(cost: dict[str, Any], pods: int = 1000, interval: int = 10) -> None:
    say(f"\nextrapolated to {pods} pods checked every {interval} s by one trigger (direct transport):")
    for label in ("memory", "memory + goroutines"):
        m = cost[label]
        n = max(m["pods"], 1)
        gets_s = pods * m["gets"] / interval
        cpu = m["cpu"] / n * pods
        # The reads wait on the network READS_PER_TRIGGER at a time, but their parsing holds the GIL:
        # a check takes the longer of the two, plus the pod list (scaled with the pods: its JSON is).
        waits = math.ceil(pods / trigger_checks.READS_PER_TRIGGER) * m["read_med"]
        wall = max(waits, cpu) + m["list"] * pods / n
        nbytes = pods * (cost["vars"] + (cost["goroutine_read"] if m["gets"] == 2 else 0))
        say(f"  {label}: {gets_s:.0f} GETs/s to pods ({pods * m['gets']} a check, {nbytes / 1024:.0f} KiB read); "
            f"operator CPU ~{cpu:.1f} s a check = {cpu / interval:.0%} of a core; a check ~{wall:.1f} s wall "
            f"(the longer of {waits:.1f} s of reads {trigger_checks.READS_PER_TRIGGER} at a time and the CPU, plus the "
            f"pod list scaled linearly: {m['list'] * pods / n:.1f} s)")
    say(f"  API server: 1 pod list per trigger per check = {1 / interval:.1f}/s, "
        f"~{cost['per_pod_list'] * pods / 1e6:.1f} MB "
        f"of JSON each ({cost['per_pod_list'] / 1024:.1f} KiB a pod); no request per pod (pods/proxy would add "
        f"{pods * cost['memory']['gets'] / interval:.0f}/s through the API server)")


# ---- main ----


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pods", type=int, default=10)
    parser.add_argument("--rate-kb", type=int, default=2048, help="GOAPP_HEAP_GROWTH_KB: KiB hoarded a second")
    parser.add_argument("--limit", default="128Mi", help="the container's memory limit (and request)")
    parser.add_argument("--threshold", type=int, default=80, help="spec.when.memoryPercentOfLimit")
    parser.add_argument("--interval", default="2", help="checkIntervalSeconds; a comma list runs one round each")
    parser.add_argument("--stagger", type=float, default=1.5, help="seconds between pod creations")
    parser.add_argument("--check-rounds", type=int, default=5, help="rounds of the check-cost measurement (0: skip)")
    parser.add_argument("--keep-log", action="store_true", help="keep the operator log and print its path")
    parser.add_argument("--json", type=Path, help="also write every number as JSON here")
    args = parser.parse_args()
    intervals = [int(x) for x in args.interval.split(",") if x.strip()]

    env, s3, kube = testbed_setup()
    kernel = KernelLog()
    say(f"kill times from: {kernel.how}")
    results = []
    try:
        for interval in intervals:
            results.append(lead_round(args, interval, env, kube, s3, kernel))
    finally:
        kube.close()
    problems = [p for r in results for p in r["problems"]]
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "rounds": results},
                                        indent=1, default=str))
    say("")
    for r in results:
        rows = r.get("rows") or []
        caught = sum(1 for row in rows if (lead := _lead(row, "heap")) is not None and lead > 0)
        say(f"interval {r['interval']} s: caught before the kill {caught} of {len(rows)}")
    for p in problems:
        say(f"PROBLEM: {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
