"""Fault: load. 50 DebugCaptures created at once (10 threads) in 5 namespaces, 10 per pod, while a
DebugSchedule fires every minute; the operator serves the 5 namespaces at its default concurrency.
The run lasts until the schedule has fired at least once; invariants of :mod:`tests.e2e.faults`
then (the recovery time is from the last create to every capture terminal)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
from kubernetes import client as k8s

from debugcap.kube.client import Kube

from . import faults
from .conftest import Testbed

FAULT = "50 captures at once, 5 namespaces, + schedule 1/min"
NAMESPACES, PER_NAMESPACE = 5, 10
LABELS = {"app": "faults-load"}


@dataclass
class Bed:
    namespaces: list[str]
    operator: faults.Operator
    env: dict[str, str]


@pytest.fixture(scope="module")
def bed(testbed: Testbed, crds: None, kube: Kube, core: k8s.CoreV1Api,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    run = uuid.uuid4().hex[:6]
    namespaces = [f"faults-load-{run}-{i}" for i in range(NAMESPACES)]
    operator = faults.Operator(tmp_path_factory.mktemp("load"), namespaces, testbed.env)
    try:
        for ns in namespaces:
            faults.make_namespace(core, ns)
            core.create_namespaced_pod(ns, faults.goapp_pod("l", LABELS))
        for ns in namespaces:
            faults.wait_running(core, ns, ["l"])
        operator.start()
        yield Bed(namespaces, operator, testbed.env)
        for ns in namespaces:
            kube.custom().delete_collection_namespaced_custom_object(faults.GROUP, faults.VERSION, ns,
                                                                     "debugschedules")
        faults.delete_captures(kube, namespaces)
    finally:
        operator.stop()
        for ns in namespaces:
            faults.strip_finalizers(kube, ns)
            core.delete_namespace(ns, grace_period_seconds=0)


def _schedule(kube: Kube, namespace: str) -> None:
    body = {"apiVersion": f"{faults.GROUP}/{faults.VERSION}", "kind": "DebugSchedule",
            "metadata": {"name": "every-minute"},
            "spec": {"schedule": "* * * * *", "concurrencyPolicy": "Allow", "successfulHistoryLimit": 2,
                     "captureTemplate": {"spec": {"target": {"selector": {"matchLabels": LABELS}},
                                                  "template": faults.LIGHT}}}}
    kube.custom().create_namespaced_custom_object(faults.GROUP, faults.VERSION, namespace, "debugschedules", body)


def _fired(kube: Kube, namespace: str) -> bool:
    obj = kube.custom().get_namespaced_custom_object(faults.GROUP, faults.VERSION, namespace, "debugschedules",
                                                     "every-minute")
    return bool((obj.get("status") or {}).get("lastScheduleTime"))


def test_50_captures_at_once_and_a_schedule(bed: Bed, kube: Kube) -> None:
    _schedule(kube, bed.namespaces[0])
    jobs = [(ns, f"c{i:02d}") for ns in bed.namespaces for i in range(PER_NAMESPACE)]
    with ThreadPoolExecutor(10) as pool:
        list(pool.map(lambda job: faults.create_capture(kube, job[0], job[1], {"pod": "l"}), jobs))
    end = time.monotonic()
    verdict = faults.check(kube, bed.env, bed.namespaces, [bed.operator.spool], fault_end=end)
    drained = verdict.recovery
    faults.wait_for(lambda: _fired(kube, bed.namespaces[0]), 75, "the schedule to fire", every=1)
    after = faults.check(kube, bed.env, bed.namespaces, [bed.operator.spool], fault_end=end)
    verdict.problems += after.problems
    faults.RECORDER.run(FAULT, verdict)
    outcomes = {}
    for ns in bed.namespaces:
        for c in faults.captures(kube, ns):
            outcomes[faults.phase(c)] = outcomes.get(faults.phase(c), 0) + 1
    faults.RECORDER.note(FAULT, f"{sum(outcomes.values())} captures: {outcomes}; the 50 drained in {drained:.1f} s")
    faults.say(f"\n{FAULT}: {outcomes}; drained in {drained:.1f} s; {verdict.problems or 'held'}")
    assert not verdict.problems, "\n".join(verdict.problems)
    assert not bed.operator.tracebacks(), bed.operator.tracebacks()[0]
