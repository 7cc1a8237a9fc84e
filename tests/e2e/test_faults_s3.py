"""Faults of S3, on a MinIO of this suite's own (the testbed's binary and credentials, another port
and data directory: the shared MinIO is never stopped):

* MinIO stopped for 60 s while a capture's bundles are being uploaded, then started again;
* the operator's bucket removed under it (every put answers NoSuchBucket), then made again.

The bundles must wait in the operator's spool and reach S3 once it answers, without a new capture
to carry them; every object named by a status, no pod twice, nothing left in the spool.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client as k8s

from debugcap.kube.client import Kube

from . import faults
from .conftest import Testbed

PODS = 4
OUTAGE_SECONDS = 60


@dataclass
class Bed:
    namespace: str
    minio: faults.OwnMinio
    env: dict[str, str]
    root: Path


@pytest.fixture(scope="module")
def bed(testbed: Testbed, crds: None, kube: Kube, core: k8s.CoreV1Api,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    root = tmp_path_factory.mktemp("s3")
    namespace = f"faults-s3-{uuid.uuid4().hex[:6]}"
    minio = faults.OwnMinio(root / "minio")
    faults.make_namespace(core, namespace)
    try:
        minio.start()
        faults.make_pods(core, namespace, (f"s-{i}" for i in range(1, PODS + 1)), {"app": "faults-s3"})
        yield Bed(namespace, minio, testbed.env, root)
    finally:
        minio.stop()
        faults.strip_finalizers(kube, namespace)
        core.delete_namespace(namespace, grace_period_seconds=0)


def _operator(bed: Bed, bucket: str, name: str) -> tuple[faults.Operator, dict[str, str]]:
    env = {**bed.env, **bed.minio.env(bucket)}
    return faults.Operator(bed.root / name, [bed.namespace], env), env


def _wait_running(kube: Kube, namespace: str, name: str) -> None:
    def started() -> bool:
        pods = (faults.read(kube, namespace, name).get("status") or {}).get("pods") or []
        return any(p.get("phase") == "Running" for p in pods)

    faults.wait_for(started, 60, f"{namespace}/{name} to start its pods", every=0.1)


TARGET = {"selector": {"matchLabels": {"app": "faults-s3"}}, "maxPods": PODS}


def test_minio_stopped_for_60_s_during_uploads(bed: Bed, kube: Kube) -> None:
    fault = f"MinIO stopped {OUTAGE_SECONDS} s during uploads"
    operator, env = _operator(bed, "faults", "stopped")
    operator.start()
    try:
        faults.create_capture(kube, bed.namespace, "warm", {"pod": "s-1"})  # the bucket exists before the fault
        faults.wait_for(lambda: faults.phase(faults.read(kube, bed.namespace, "warm")) in faults.TERMINAL, 60,
                        "the warm-up capture")
        # A CPU profile window of 1 s: MinIO goes down while the pods are in it, before any upload.
        faults.create_capture(kube, bed.namespace, "outage", TARGET, template="go-profile",
                              params={"cpuSeconds": 1, "traceSeconds": 1})
        _wait_running(kube, bed.namespace, "outage")
        bed.minio.stop()
        stopped = time.monotonic()
        faults.wait_for(lambda: faults.phase(faults.read(kube, bed.namespace, "outage")) in faults.TERMINAL,
                        OUTAGE_SECONDS, "the capture to end while MinIO is down", every=1)
        during = faults.outcome(kube, bed.namespace, "outage")
        spooled = len(faults.spooling.Spool(operator.spool).entries())
        time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - stopped)))
        bed.minio.start()
        end = time.monotonic()
        verdict = faults.check(kube, env, [bed.namespace], [operator.spool], fault_end=end)
        faults.RECORDER.run(fault, verdict)
        faults.RECORDER.note(fault, f"during the outage: {during}, {spooled} bundle(s) spooled")
        faults.say(f"\n{fault}: {during}; {spooled} spooled; after: {faults.outcome(kube, bed.namespace, 'outage')}; "
                   f"recovered in {verdict.recovery:.1f} s; {verdict.problems or 'held'}")
        assert spooled, f"no bundle was spooled while MinIO was down ({during}): the fault missed the uploads"
        assert not verdict.problems, "\n".join(verdict.problems)
        faults.delete_captures(kube, [bed.namespace])
    finally:
        operator.stop()
    assert not operator.tracebacks(), operator.tracebacks()[0]


def test_bucket_removed_under_the_operator(bed: Bed, kube: Kube) -> None:
    fault = "bucket removed under the operator (NoSuchBucket)"
    bucket = "faults-gone"
    operator, env = _operator(bed, bucket, "bucket")
    mc = faults.minio_client(env)
    operator.start()
    try:
        faults.create_capture(kube, bed.namespace, "before", {"pod": "s-1"})  # the operator has made the bucket
        faults.wait_for(lambda: faults.phase(faults.read(kube, bed.namespace, "before")) in faults.TERMINAL, 60,
                        "the capture before the fault")
        faults.delete_captures(kube, [bed.namespace])  # its bundle goes with it: the bucket can then be removed
        mc.remove_bucket(bucket)
        faults.create_capture(kube, bed.namespace, "nobucket", TARGET)
        faults.wait_for(lambda: faults.phase(faults.read(kube, bed.namespace, "nobucket")) in faults.TERMINAL, 120,
                        "the capture to end without its bucket", every=1)
        during = faults.outcome(kube, bed.namespace, "nobucket")
        spooled = len(faults.spooling.Spool(operator.spool).entries())
        mc.make_bucket(bucket)
        end = time.monotonic()
        verdict = faults.check(kube, env, [bed.namespace], [operator.spool], fault_end=end)
        faults.RECORDER.run(fault, verdict)
        faults.RECORDER.note(fault, f"without the bucket: {during}, {spooled} bundle(s) spooled")
        faults.say(f"\n{fault}: {during}; {spooled} spooled; recovered in {verdict.recovery:.1f} s; "
                   f"{verdict.problems or 'held'}")
        assert spooled, f"no bundle was spooled without the bucket ({during})"
        assert not verdict.problems, "\n".join(verdict.problems)
        faults.delete_captures(kube, [bed.namespace])
    finally:
        operator.stop()
    assert not operator.tracebacks(), operator.tracebacks()[0]
