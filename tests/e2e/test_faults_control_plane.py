"""Faults of the shared testbed's control plane and node, once each, mid-capture (a 4-pod capture
inside its 2 s CPU profile window): the API server restarted; etcd stopped for 5 s; the node's
kubelet restarted. Each disturbs every test using the testbed for seconds, so each runs once, and
the testbed is waited on until every process is healthy and the node Ready again."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator

import pytest
from kubernetes import client as k8s

from debugcap.kube.client import Kube
from testbed import cluster

from . import faults
from .conftest import Testbed

LABELS = {"app": "faults-cp"}
PODS = ["c-1", "c-2", "c-3", "c-4"]


@pytest.fixture(scope="module")
def bed(testbed: Testbed, crds: None, kube: Kube, core: k8s.CoreV1Api,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[faults.Bed]:
    with faults.operator_bed(testbed.env, kube, core, tmp_path_factory.mktemp("cp"), "faults-cp", PODS,
                             LABELS, after_stop=faults.wait_healthy) as bed:
        yield bed


def _restart(name: str, down_seconds: float = 0) -> Callable[[], None]:
    def fault() -> None:
        proc = cluster.proc(name)
        proc.stop()
        time.sleep(down_seconds)
        # Proc.start drops its Popen of the process it leaves running (the testbed's CLI way):
        # its ResourceWarning is the testbed's, not the product's.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            proc.start()

    return fault


CASES = {
    "API server restarted mid-capture": _restart("kube-apiserver"),
    "etcd stopped 5 s mid-capture": _restart("etcd", 5),
    "kubelet restarted mid-capture": _restart("kubelet"),
}


@pytest.mark.parametrize("fault", list(CASES))
def test_control_plane_fault_mid_capture(bed: faults.Bed, kube: Kube, fault: str) -> None:
    name = f"cp-{list(CASES).index(fault)}"
    faults.create_capture(kube, bed.namespace, name, {"selector": {"matchLabels": LABELS}, "maxPods": len(PODS)},
                          template="go-profile", params={"cpuSeconds": 2, "traceSeconds": 1})

    def in_window() -> bool:
        pods = (faults.read(kube, bed.namespace, name).get("status") or {}).get("pods") or []
        return any(p.get("phase") == "Running" for p in pods)

    faults.wait_for(in_window, 60, f"{name} to start its pods", every=0.1)
    began = time.monotonic()
    try:
        CASES[fault]()
    finally:
        faults.wait_healthy()
    end = time.monotonic()
    verdict = faults.check(kube, bed.env, [bed.namespace], [bed.operator.spool], fault_end=end)
    faults.RECORDER.run(fault, verdict)
    outcome = faults.outcome(kube, bed.namespace, name)
    messages = {str(p.get("message", ""))[:200] for p in faults.read(kube, bed.namespace, name)["status"]["pods"]
                if p.get("message")}
    faults.RECORDER.note(fault, f"{outcome} (fault lasted {end - began:.1f} s)"
                         + (f"; pods say: {sorted(messages)[0]}" if messages else ""))
    faults.say(f"\n{fault}: {outcome}; the fault lasted {end - began:.1f} s; recovered in {verdict.recovery:.1f} s; "
               f"{sorted(messages)}; {verdict.problems or 'held'}")
    assert not verdict.problems, "\n".join(verdict.problems)
    assert not bed.operator.tracebacks(), bed.operator.tracebacks()[0]
