"""Fault: ``kill -9`` of the operator (a real ``debugcap-operator`` process) at seeded random points of
a 20-pod capture, 20 times, each followed by a restart; the invariants of :mod:`tests.e2e.faults`
after each. The seed is printed (``DEBUGCAP_FAULTS_SEED`` replays it); ``DEBUGCAP_FAULTS_KILLS``
changes the number of kills."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest
from kubernetes import client as k8s

from debugcap.kube.client import Kube, group_path

from . import faults
from .conftest import Testbed

KILLS = int(os.environ.get("DEBUGCAP_FAULTS_KILLS") or 20)
# pytest's 900 s default does not fit 20 kills on a loaded 2-core machine: each run waits up to its
# capture's terminal phase (a restart, a takeover, the capture itself), so the bound grows with them.
KILL_TIMEOUT = 300 + 120 * KILLS
PODS = 20
FAULT = "kill -9 operator, 20-pod capture (1 process)"
FAULT_2 = "kill -9 leader, 20-pod capture (2 replicas)"
LEASE = "debugcap-faults-leader"
# Short lease settings, as tests/e2e/test_leader_election.py's: a failover within about 7 s keeps 20
# kills short (the chart's defaults are benchmarks/bench_failover.py's). Shorter (3s/2s/1s) had
# leaders on a loaded 2-core host give up their lease and exit by themselves, as they must.
FAST_LEASE = {"DEBUGCAP_OPERATOR_LEASE_DURATION": "6s", "DEBUGCAP_OPERATOR_LEASE_RENEW_DEADLINE": "4s",
              "DEBUGCAP_OPERATOR_LEASE_RETRY_PERIOD": "1s"}
TARGET = {"selector": {"matchLabels": {"app": "faults"}}, "maxPods": PODS}


@pytest.fixture(scope="module")
def bed(testbed: Testbed, crds: None, kube: Kube, core: k8s.CoreV1Api,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[faults.Bed]:
    pods = [f"p-{i:02d}" for i in range(1, PODS + 1)]
    with faults.operator_bed(testbed.env, kube, core, tmp_path_factory.mktemp("kill"), "faults-kill", pods,
                             {"app": "faults"}) as bed:
        yield bed


@pytest.mark.timeout(KILL_TIMEOUT)
def test_kill_9_at_random_points_of_a_20_pod_capture(bed: faults.Bed, kube: Kube) -> None:
    rng = faults.seeded("kill")
    faults.say(f"\nkill -9: seed {faults.SEED} (DEBUGCAP_FAULTS_SEED={faults.SEED} replays it), {KILLS} kills")
    target = TARGET
    # How long an undisturbed capture takes: the kills fall anywhere in it (and a little after).
    started = time.monotonic()
    faults.create_capture(kube, bed.namespace, "whole", target)
    faults.wait_for(lambda: faults.phase(kube.custom().get_namespaced_custom_object(
        faults.GROUP, faults.VERSION, bed.namespace, faults.PLURAL, "whole")) in faults.TERMINAL, 180,
        "the undisturbed 20-pod capture")
    length = time.monotonic() - started
    faults.RECORDER.note(FAULT, f"an undisturbed 20-pod capture took {length:.1f} s; "
                                f"kills at U(0, {1.1 * length:.1f}) s")
    failed: list[str] = []
    for run in range(1, KILLS + 1):
        delay = rng.uniform(0, 1.1 * length)
        faults.create_capture(kube, bed.namespace, f"k{run:02d}", target)
        time.sleep(delay)
        bed.operator.kill9()
        end = time.monotonic()
        bed.operator.start()
        verdict = faults.check(kube, bed.env, [bed.namespace], [bed.operator.spool], fault_end=end,
                               expected=[f"k{run:02d}"])
        faults.RECORDER.run(FAULT, verdict)
        outcome = faults.outcome(kube, bed.namespace, f"k{run:02d}")
        faults.say(f"  kill {run:2d} at {delay:5.2f} s: {outcome}; recovered in {verdict.recovery:5.1f} s, "
                   f"{'held' if not verdict.problems else 'BROKEN: ' + '; '.join(verdict.problems[:3])}")
        failed += [f"kill {run} at {delay:.2f} s: {p}" for p in verdict.problems]
    assert not failed, "\n".join(failed[:20])
    assert not bed.operator.tracebacks(), bed.operator.tracebacks()[0]


def _holder(kube: Kube, namespace: str) -> str:
    try:
        lease = kube.get_json(group_path("coordination.k8s.io", "v1", "leases", namespace, LEASE))
    except Exception:  # noqa: BLE001 - not created yet
        return ""
    return str((lease.get("spec") or {}).get("holderIdentity") or "")


@pytest.mark.timeout(KILL_TIMEOUT)
def test_kill_9_of_the_leader_of_two_replicas_at_random_points(bed: faults.Bed, kube: Kube,
                                                                tmp_path_factory: pytest.TempPathFactory) -> None:
    """The chart's two replicas: two processes elect a leader on a Lease; the leader is killed at a
    seeded random point of a 20-pod capture and started again (as the kubelet would), now a standby."""
    bed.operator.stop()  # the one-process variant's operator: one leader among these two only
    root = tmp_path_factory.mktemp("replicas")
    replicas = {name: faults.Operator(root / name, [bed.namespace], bed.env, concurrency=4, extra={
        "DEBUGCAP_OPERATOR_LEADER_ELECTION": "true", "DEBUGCAP_OPERATOR_LEASE_NAMESPACE": bed.namespace,
        "DEBUGCAP_OPERATOR_LEASE_NAME": LEASE, "POD_NAME": name, **FAST_LEASE}) for name in ("op-a", "op-b")}
    rng = faults.seeded("kill-leader")
    failed: list[str] = []
    kubelet = faults.Kubelet(replicas.values())
    try:
        for replica in replicas.values():
            replica.start()
        kubelet.start()
        faults.wait_for(lambda: _holder(kube, bed.namespace), 60, "a replica to lead")
        # Kills at U(0, 1.1 x an undisturbed capture), as the one-process test: some land during
        # the uploads, the failover's crash window (U(0, 2 s) only ever hit the start).
        started = time.monotonic()
        faults.create_capture(kube, bed.namespace, "whole-r", TARGET)
        faults.wait_for(lambda: faults.phase(kube.custom().get_namespaced_custom_object(
            faults.GROUP, faults.VERSION, bed.namespace, faults.PLURAL, "whole-r")) in faults.TERMINAL, 180,
            "the undisturbed 20-pod capture of two replicas")
        length = time.monotonic() - started
        faults.RECORDER.note(FAULT_2, f"two replicas: an undisturbed 20-pod capture took {length:.1f} s; "
                                    f"kills at U(0, {1.1 * length:.1f}) s")
        for run in range(1, KILLS + 1):
            faults.wait_for(lambda: _holder(kube, bed.namespace), 60, "a replica to lead")
            leader = replicas[_holder(kube, bed.namespace).split("_")[0]]
            delay = rng.uniform(0, 1.1 * length)
            name = f"r{run:02d}"
            faults.create_capture(kube, bed.namespace, name, TARGET)
            time.sleep(delay)
            leader.kill9()
            end = time.monotonic()
            leader.start()
            verdict = faults.check(kube, bed.env, [bed.namespace], [r.spool for r in replicas.values()],
                                   fault_end=end, expected=[name])
            faults.RECORDER.run(FAULT_2, verdict)
            faults.say(f"  kill {run:2d} of {leader.root.name} at {delay:4.2f} s: "
                       f"{faults.outcome(kube, bed.namespace, name)}; recovered in {verdict.recovery:5.1f} s, "
                       f"{'held' if not verdict.problems else 'BROKEN: ' + '; '.join(verdict.problems[:3])}")
            failed += [f"kill {run} at {delay:.2f} s: {p}" for p in verdict.problems]
        faults.wait_for(lambda: _holder(kube, bed.namespace), 60, "a replica to lead")
        faults.delete_captures(kube, [bed.namespace])
    finally:
        kubelet.stopped.set()
        kubelet.join()
        for replica in replicas.values():
            replica.stop()
        bed.operator.start()  # the fixture's clean-up deletes what is left through it
    exits = {r.root.name: r.exits for r in replicas.values() if r.exits}
    if exits:
        faults.RECORDER.note(FAULT_2, f"replicas that exited by themselves (restarted): {exits}")
    assert not failed, "\n".join(failed[:20])
    for replica in replicas.values():
        assert not replica.tracebacks(), replica.tracebacks()[0]
