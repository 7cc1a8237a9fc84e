"""Fault: the target pod deleted (grace 0) in the middle of its capture, at a seeded random point
of its 2 s CPU profile window; alone, and as one pod of a 3-pod selector capture. The pod is made
again after each run. Invariants of :mod:`tests.e2e.faults` after each."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from kubernetes import client as k8s

from debugcap.kube.client import Kube

from . import faults
from .conftest import Testbed

FAULT = "target pod deleted mid-capture"
LABELS = {"app": "faults-del"}
PODS = ["d-1", "d-2", "d-3"]
RUNS = 2


@pytest.fixture(scope="module")
def bed(testbed: Testbed, crds: None, kube: Kube, core: k8s.CoreV1Api,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[faults.Bed]:
    with faults.operator_bed(testbed.env, kube, core, tmp_path_factory.mktemp("del"), "faults-del", PODS,
                             LABELS) as bed:
        yield bed


def _in_window(kube: Kube, namespace: str, name: str, pod: str) -> bool:
    pods = (faults.read(kube, namespace, name).get("status") or {}).get("pods") or []
    return any(p["name"] == pod and p.get("phase") == "Running" for p in pods)


def test_target_pod_deleted_mid_capture(bed: faults.Bed, kube: Kube, core: k8s.CoreV1Api) -> None:
    rng = faults.seeded("pod-deleted")
    failed: list[str] = []
    for run in range(1, RUNS + 1):
        victim = rng.choice(PODS)
        target = {"pod": victim} if run % 2 else {"selector": {"matchLabels": LABELS}, "maxPods": len(PODS)}
        name = f"del{run}"
        faults.create_capture(kube, bed.namespace, name, target, template="go-profile",
                              params={"cpuSeconds": 2, "traceSeconds": 1})
        faults.wait_for(lambda name=name, victim=victim: _in_window(kube, bed.namespace, name, victim), 60,
                        f"{victim} to be captured", every=0.1)
        delay = rng.uniform(0, 2.0)
        time.sleep(delay)
        core.delete_namespaced_pod(victim, bed.namespace, grace_period_seconds=0)
        end = time.monotonic()
        verdict = faults.check(kube, bed.env, [bed.namespace], [bed.operator.spool], fault_end=end)
        faults.RECORDER.run(FAULT, verdict)
        obj = faults.read(kube, bed.namespace, name)
        mine = next(p for p in obj["status"]["pods"] if p["name"] == victim)
        faults.say(f"  {name}: {victim} deleted {delay:.2f} s into its window: "
                   f"{faults.outcome(kube, bed.namespace, name)}; the pod {mine.get('phase')}: "
                   f"{str(mine.get('message', ''))[:160]}; "
                   f"recovered in {verdict.recovery:.1f} s; {verdict.problems or 'held'}")
        failed += [f"{name}: {p}" for p in verdict.problems]
        faults.wait_for(lambda victim=victim: not faults._exists(
            lambda: core.read_namespaced_pod(victim, bed.namespace)), 60, f"{victim} to be gone")
        faults.make_pods(core, bed.namespace, [victim], LABELS)
    assert not failed, "\n".join(failed)
    assert not bed.operator.tracebacks(), bed.operator.tracebacks()[0]
