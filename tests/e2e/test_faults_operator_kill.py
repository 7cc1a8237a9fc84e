"""Fault: ``kill -9`` of the operator (a real ``debugcap-operator`` process) at seeded random points of
a 20-pod capture, 20 times, each followed by a restart; the invariants of :mod:`tests.e2e.faults`
after each. The seed is printed (``DEBUGCAP_FAULTS_SEED`` replays it); ``DEBUGCAP_FAULTS_KILLS``
changes the number of kills."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from kubernetes import client as k8s

from debugcap.kube.client import Kube

from . import faults
from .conftest import Testbed

KILLS = int(os.environ.get("DEBUGCAP_FAULTS_KILLS") or 20)
PODS = 20
FAULT = "kill -9 operator, 20-pod capture (1 process)"


@dataclass
class Bed:
    namespace: str
    operator: faults.Operator
    env: dict[str, str]


@pytest.fixture(scope="module")
def bed(testbed: Testbed, crds: None, kube: Kube, core: k8s.CoreV1Api,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    namespace = f"faults-kill-{uuid.uuid4().hex[:6]}"
    faults.make_namespace(core, namespace)
    operator = faults.Operator(tmp_path_factory.mktemp("kill"), [namespace], testbed.env, concurrency=4)
    try:
        faults.make_pods(core, namespace, (f"p-{i:02d}" for i in range(1, PODS + 1)), {"app": "faults"})
        operator.start()
        yield Bed(namespace, operator, testbed.env)
        faults.delete_captures(kube, [namespace])
    finally:
        operator.stop()
        faults.strip_finalizers(kube, namespace)
        core.delete_namespace(namespace, grace_period_seconds=0)


def test_kill_9_at_random_points_of_a_20_pod_capture(bed: Bed, kube: Kube) -> None:
    rng = faults.seeded("kill")
    faults.say(f"\nkill -9: seed {faults.SEED} (DEBUGCAP_FAULTS_SEED={faults.SEED} replays it), {KILLS} kills")
    target = {"selector": {"matchLabels": {"app": "faults"}}, "maxPods": PODS}
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
        verdict = faults.check(kube, bed.env, [bed.namespace], [bed.operator.spool], fault_end=end)
        faults.RECORDER.run(FAULT, verdict)
        outcome = faults.outcome(kube, bed.namespace, f"k{run:02d}")
        faults.say(f"  kill {run:2d} at {delay:5.2f} s: {outcome}; recovered in {verdict.recovery:5.1f} s, "
                   f"{'held' if not verdict.problems else 'BROKEN: ' + '; '.join(verdict.problems[:3])}")
        failed += [f"kill {run} at {delay:.2f} s: {p}" for p in verdict.problems]
    assert not failed, "\n".join(failed[:20])
    assert not bed.operator.tracebacks(), bed.operator.tracebacks()[0]

