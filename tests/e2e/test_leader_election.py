"""Two replicas, one active (issue 15 item 3): two real ``debugcap-operator`` processes elect a
leader on a Lease; only it captures; ``kill -9`` of it during a 20-pod capture loses nothing.

Each process has its own work and spool directories (as each pod of the chart has its own
emptyDir), its own liveness and metrics ports, and serves only this test's namespace, which also
holds the Lease. Short lease settings (8 s / 5 s / 1 s) keep the test short; the chart's defaults
are measured by benchmarks/bench_failover.py.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s

from debugcap.kube.client import Kube, group_path
from debugcap.settings import S3Settings

from .conftest import Testbed, strip_finalizers, wait_running
from .test_operator import GROUP, PLURAL, REPO, TERMINAL, VERSION, create, read, rewrites, s3, wait_done, wait_for

PODS = [f"api-{i:02d}" for i in range(1, 21)]
LEASE = "debugcap-e2e-leader"
FAST_LEASE = {"DEBUGCAP_OPERATOR_LEASE_DURATION": "8s", "DEBUGCAP_OPERATOR_LEASE_RENEW_DEADLINE": "5s",
              "DEBUGCAP_OPERATOR_LEASE_RETRY_PERIOD": "1s"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Replica:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    spool: Path
    liveness: int
    metrics: int

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def get(self, port: int, path: str) -> tuple[int, str]:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return resp.status, resp.read().decode()


def start_replica(name: str, namespace: str, tmp_path: Path, extra: dict[str, str] | None = None) -> Replica:
    liveness, metrics = free_port(), free_port()
    root = tmp_path / name
    env = {**os.environ, "DEBUGCAP_OPERATOR_NAMESPACES": namespace, "DEBUGCAP_OPERATOR_CONCURRENCY": "4",
           "DEBUGCAP_OPERATOR_LEADER_ELECTION": "true", "DEBUGCAP_OPERATOR_LEASE_NAMESPACE": namespace,
           "DEBUGCAP_OPERATOR_LEASE_NAME": LEASE, "POD_NAME": name,
           "DEBUGCAP_OPERATOR_LIVENESS_PORT": str(liveness), "DEBUGCAP_OPERATOR_METRICS_PORT": str(metrics),
           "DEBUGCAP_OPERATOR_WORK_DIR": str(root / "work"), "DEBUGCAP_SPOOL_DIR": str(root / "spool"),
           **FAST_LEASE, **(extra or {})}
    root.mkdir(parents=True)
    log = root / "operator.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen([str(REPO / ".venv" / "bin" / "debugcap-operator")], env=env, stdout=fh,
                                stderr=subprocess.STDOUT)
    return Replica(name, proc, log, root / "spool", liveness, metrics)


def holder(kube: Kube, namespace: str) -> str:
    try:
        lease = kube.get_json(group_path("coordination.k8s.io", "v1", "leases", namespace, LEASE))
    except Exception:  # noqa: BLE001 - not created yet
        return ""
    return str((lease.get("spec") or {}).get("holderIdentity") or "")


def lease_spec(kube: Kube, namespace: str) -> dict[str, Any]:
    lease = kube.get_json(group_path("coordination.k8s.io", "v1", "leases", namespace, LEASE))
    return dict(lease.get("spec") or {})


def spooled(replica: Replica) -> list[str]:
    """Every bundle left in a replica's spool, sent or held (dot files are the spool's own markers)."""
    if not replica.spool.exists():
        return []
    return sorted(str(p.relative_to(replica.spool)) for p in replica.spool.rglob("*")
                  if p.is_file() and not p.name.startswith(".last-"))


@pytest.fixture
def replicas(crds: None, operator_env: None, kube: Kube, namespace: str) -> Iterator[list[Replica]]:
    started: list[Replica] = []
    yield started
    for replica in started:
        if replica.proc.poll() is None:
            replica.proc.terminate()
            try:
                replica.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                replica.proc.kill()
    strip_finalizers(kube, namespace)


def make_pods(core: k8s.CoreV1Api, testbed: Testbed, namespace: str) -> None:
    for name in PODS:
        container = k8s.V1Container(name="app", image=testbed.images["goapp"], image_pull_policy="Never")
        core.create_namespaced_pod(namespace, k8s.V1Pod(
            metadata=k8s.V1ObjectMeta(name=name, labels={"app": "goapp"}),
            spec=k8s.V1PodSpec(containers=[container], termination_grace_period_seconds=0,
                               automount_service_account_token=False)))
    for name in PODS:
        wait_running(core, namespace, name, 180)


def capture_keys(namespace: str) -> list[str]:
    settings = S3Settings.from_env()
    assert settings is not None
    return list(s3().list(prefix=f"{settings.prefix}/{settings.cluster}/{namespace}/"))


def test_kill_9_of_the_leader_mid_capture_loses_nothing_and_captures_no_pod_twice(
        replicas: list[Replica], kube: Kube, core: k8s.CoreV1Api, testbed: Testbed, namespace: str,
        tmp_path: Path) -> None:
    make_pods(core, testbed, namespace)
    a = start_replica("op-a", namespace, tmp_path)
    replicas.append(a)
    wait_for(lambda: holder(kube, namespace).startswith("op-a_"), 60, "op-a to take the lease")
    wait_for(lambda: "debugcap operator ready" in a.output(), 60, "op-a to start kopf")
    b = start_replica("op-b", namespace, tmp_path)
    replicas.append(b)
    wait_for(lambda: "standby: lease" in b.output(), 60, "op-b to wait as a standby")

    # The standby is alive and ready (rolling updates and the PodDisruptionBudget count it) and
    # says who leads; its /metrics says it is not the leader; it has started nothing of kopf's.
    status, body = b.get(b.liveness, "/healthz")
    assert status == 200 and body.startswith(f"standby: lease {namespace}/{LEASE} held by op-a_"), body
    assert "debugcap_operator_leader 0.0" in b.get(b.metrics, "/metrics")[1]
    assert "debugcap_operator_leader 1.0" in a.get(a.metrics, "/metrics")[1]

    create(kube, namespace, "failover", {"target": {"selector": {"matchLabels": {"app": "goapp"}}, "maxPods": 20},
                                         "template": "go-profile",
                                         "parameters": {"cpuSeconds": 2, "traceSeconds": 2}})

    def mid_capture() -> list[dict[str, Any]] | None:
        pods = (read(kube, namespace, "failover").get("status") or {}).get("pods") or []
        ended = [p for p in pods if p.get("phase") in TERMINAL]
        running = [p for p in pods if p.get("phase") == "Running"]
        return pods if len(ended) >= 2 and running else None

    before = wait_for(mid_capture, 120, "two pods captured and more being captured")
    assert "debugcap operator ready" not in b.output()  # exactly one replica captures
    assert "took over" not in b.output()
    a.proc.send_signal(signal.SIGKILL)
    a.proc.wait(timeout=10)

    done = wait_done(kube, namespace, "failover", 180)
    final = done["status"]
    assert holder(kube, namespace).startswith("op-b_")
    assert lease_spec(kube, namespace)["leaseTransitions"] >= 1
    assert "took over lease" in b.output() and "closing orphaned capture" in b.output(), b.output()[-3000:]
    assert rewrites(kube, namespace, "failover", final) == []  # closed once, not re-run

    # Every pod once, each ended; the pods ended before the kill keep what the leader wrote.
    names = [p["name"] for p in final["pods"]]
    assert sorted(names) == PODS, names
    assert all(p["phase"] in TERMINAL for p in final["pods"]), final["pods"]
    ended_before = {p["name"]: p for p in before if p.get("phase") in TERMINAL}
    for pod in final["pods"]:
        if pod["name"] in ended_before and ended_before[pod["name"]].get("bundle"):
            assert pod["bundle"] == ended_before[pod["name"]]["bundle"]

    # No pod captured twice, and every object under the namespace named by the status.
    named = {(p.get("bundle") or {}).get("key") or p.get("uploadKey") for p in final["pods"]} - {None, ""}
    keys = capture_keys(namespace)
    assert set(keys) <= named, (sorted(set(keys) - named), final)
    per_pod = [k.split("/")[3] for k in keys]
    assert len(per_pod) == len(set(per_pod)), keys
    assert all(p.get("bundle", {}).get("key") in keys for p in final["pods"] if p.get("bundle"))
    assert spooled(a) == [] and spooled(b) == []
    assert "Traceback" not in b.output(), b.output()[-3000:]

    # The new leader deletes the capture's bundles with it, as the old one would have.
    kube.custom().delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "failover")
    wait_for(lambda: not capture_keys(namespace), 60, "the capture's bundles to be deleted with it")

    # A clean stop hands the lease back at once (holder cleared) instead of letting it expire.
    b.proc.terminate()
    assert b.proc.wait(timeout=60) == 0
    assert lease_spec(kube, namespace).get("holderIdentity") in (None, "")


def test_a_clean_stop_of_the_leader_hands_over_well_before_the_lease_would_expire(
        replicas: list[Replica], kube: Kube, namespace: str, tmp_path: Path) -> None:
    """SIGTERM (a rolling update, a drain): the leader releases the Lease as it stops, so the
    standby need not wait out a 60 s lease; without the release this takes 60 s or more."""
    slow = {"DEBUGCAP_OPERATOR_LEASE_DURATION": "60s", "DEBUGCAP_OPERATOR_LEASE_RENEW_DEADLINE": "40s",
            "DEBUGCAP_OPERATOR_LEASE_RETRY_PERIOD": "1s"}
    a = start_replica("op-a", namespace, tmp_path, slow)
    replicas.append(a)
    wait_for(lambda: "debugcap operator ready" in a.output(), 60, "op-a to lead")
    b = start_replica("op-b", namespace, tmp_path, slow)
    replicas.append(b)
    wait_for(lambda: "standby: lease" in b.output(), 60, "op-b to wait as a standby")
    stopped = time.monotonic()
    a.proc.terminate()
    assert a.proc.wait(timeout=60) == 0
    wait_for(lambda: "debugcap operator ready" in b.output(), 40, "op-b to take over the released lease")
    assert time.monotonic() - stopped < 60
    assert "released lease" in a.output() and holder(kube, namespace).startswith("op-b_")


def test_a_standby_stopped_before_it_leads_exits_cleanly_having_started_nothing(
        replicas: list[Replica], kube: Kube, namespace: str, tmp_path: Path) -> None:
    a = start_replica("op-a", namespace, tmp_path)
    replicas.append(a)
    wait_for(lambda: "debugcap operator ready" in a.output(), 60, "op-a to lead")
    b = start_replica("op-b", namespace, tmp_path)
    replicas.append(b)
    wait_for(lambda: "standby: lease" in b.output(), 60, "op-b to wait as a standby")
    b.proc.terminate()
    assert b.proc.wait(timeout=30) == 0
    assert "stopped while waiting as a standby" in b.output()
    assert "debugcap operator ready" not in b.output()
    assert holder(kube, namespace).startswith("op-a_")


def test_the_crash_window_after_a_failover_a_stored_unlisted_bundle_is_adopted_an_unstored_one_failed(
        replicas: list[Replica], kube: Kube, namespace: str, goapp_pod: Any, tmp_path: Path) -> None:
    """Issue 15 item 5's crash window with a failover in between: the leader stored a pod's bundle
    under the uploadKey its status names and died before the status write listing the bundle;
    another pod's upload never happened. The standby, another process with its own spool and work
    directory, takes over and adopts the first (so expiry deletes it) and fails the second. A long
    lease leaves the test time to leave that state behind between the kill and the take-over."""
    from datetime import UTC, datetime, timedelta

    from debugcap import capture as engine
    from debugcap import delivering, templates
    from debugcap.collectors import COLLECTORS
    from debugcap.operator import capturing

    from .test_operator import leave_running

    goapp_pod("api-1")
    goapp_pod("api-2")
    slow = {"DEBUGCAP_OPERATOR_LEASE_DURATION": "40s", "DEBUGCAP_OPERATOR_LEASE_RENEW_DEADLINE": "20s",
            "DEBUGCAP_OPERATOR_LEASE_RETRY_PERIOD": "1s"}
    a = start_replica("op-a", namespace, tmp_path, slow)
    replicas.append(a)
    wait_for(lambda: "debugcap operator ready" in a.output(), 60, "op-a to lead")
    b = start_replica("op-b", namespace, tmp_path, slow)
    replicas.append(b)
    wait_for(lambda: "standby: lease" in b.output(), 60, "op-b to wait as a standby")
    a.proc.send_signal(signal.SIGKILL)
    a.proc.wait(timeout=10)

    # What op-a left: the capture Running, each pod with the uploadKey its status write named
    # before the upload; api-1's bundle stored under it, api-2's not.
    create(kube, namespace, "crashed", {"target": {"selector": {"matchLabels": {"app": "goapp"}}},
                                        "template": "go-profile", "parameters": {"cpuSeconds": 1, "traceSeconds": 1}})
    uid = read(kube, namespace, "crashed")["metadata"]["uid"]
    store = delivering.store_from_env()
    owner = delivering.Capture("crashed", uid)
    started = datetime.now(UTC) - timedelta(seconds=5)
    stored_key = capturing.planned_key(store, namespace, "api-1", started, owner)
    missing_key = capturing.planned_key(store, namespace, "api-2", started, owner)
    template = templates.expand("go-profile", {"cpu_seconds": 1, "trace_seconds": 1}, collectors=COLLECTORS)
    (tmp_path / "dead-leader").mkdir()
    outcome = engine.capture(kube, engine.resolve_target(kube, namespace, "api-1"), template,
                             out_dir=tmp_path / "dead-leader", capture_name="crashed", started=started)
    delivery, _ = delivering.deliver(store, outcome.bundle, namespace=namespace, pod="api-1", when=started,
                                     capture=owner)
    assert delivery.stored and delivery.key == stored_key
    leave_running(kube, namespace, "crashed", [{"name": "api-1", "phase": "Running", "uploadKey": stored_key},
                                                {"name": "api-2", "phase": "Running", "uploadKey": missing_key}])
    assert holder(kube, namespace).startswith("op-a_"), "op-b took over before the crash state was in place"
    assert "took over" not in b.output()

    status = wait_done(kube, namespace, "crashed", 90)["status"]
    assert holder(kube, namespace).startswith("op-b_") and "took over lease" in b.output()
    assert rewrites(kube, namespace, "crashed", status) == []
    pods = {p["name"]: p for p in status["pods"]}
    assert status["phase"] == "PartiallyFailed", status
    assert pods["api-1"]["phase"] == "Completed" and pods["api-1"]["bundle"]["key"] == stored_key, pods["api-1"]
    assert pods["api-1"]["bundle"]["sha256"] == outcome.bundle.sha256
    assert pods["api-2"]["phase"] == "Failed" and "nothing was uploaded" in pods["api-2"]["message"], pods["api-2"]
    assert capture_keys(namespace) == [stored_key]
    kube.custom().delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "crashed")
    wait_for(lambda: not capture_keys(namespace), 60, "the adopted bundle to go with its capture")
    assert spooled(a) == [] and spooled(b) == []
