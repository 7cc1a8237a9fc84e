"""Fault: the operator's spool volume full (a 1 MiB tmpfs mounted at its spool directory, filled
but for 16 KiB by a file that is no bundle), first with S3 up, then with S3 (this suite's own
MinIO) down, so that every bundle has to go to the full spool. Unmounted in a finally.

With S3 up nothing needs the spool: the captures complete. With S3 down a bundle cannot be
spooled: the pod Fails naming where its bundle stays (the work directory); nothing half-written
may be left in the spool for a later flush to send, and no object may appear that no status names.
"""

from __future__ import annotations

import re
import subprocess
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

FAULT_UP = "spool volume full, S3 up"
FAULT_DOWN = "spool volume full, S3 down"
LABELS = {"app": "faults-spool"}
PODS = ["f-1", "f-2", "f-3"]
FILLER = "filler.bin"


@dataclass
class Bed:
    namespace: str
    operator: faults.Operator
    minio: faults.OwnMinio
    env: dict[str, str]


def _mount_full(spool: Path) -> None:
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(spool)], check=True, capture_output=True)
    (spool / FILLER).write_bytes(b"\0" * (1024 * 1024 - 16 * 1024))


@pytest.fixture(scope="module")
def bed(testbed: Testbed, crds: None, kube: Kube, core: k8s.CoreV1Api,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    root = tmp_path_factory.mktemp("spoolfull")
    namespace = f"faults-spool-{uuid.uuid4().hex[:6]}"
    minio = faults.OwnMinio(root / "minio")
    faults.make_namespace(core, namespace)
    minio.start()
    env = {**testbed.env, **minio.env("faults-spool")}
    operator = faults.Operator(root / "op", [namespace], env)
    mounted = False
    try:
        _mount_full(operator.spool)
        mounted = True
        faults.make_pods(core, namespace, PODS, LABELS)
        operator.start()
        yield Bed(namespace, operator, minio, env)
        faults.delete_captures(kube, [namespace])
    finally:
        operator.stop()
        minio.stop()
        if mounted:
            subprocess.run(["umount", "-l", str(operator.spool)], capture_output=True)
        faults.strip_finalizers(kube, namespace)
        core.delete_namespace(namespace, grace_period_seconds=0)


TARGET = {"selector": {"matchLabels": LABELS}, "maxPods": len(PODS)}


def _strays(spool: Path) -> list[str]:
    """Files in the spool that are neither the filler nor the sweep marker: a half-written bundle."""
    return [str(p) for p in spool.rglob("*") if p.is_file() and p.name not in (FILLER, ".last-upload-sweep")]


def test_spool_volume_full(bed: Bed, kube: Kube) -> None:
    faults.create_capture(kube, bed.namespace, "up", TARGET)
    end = time.monotonic()
    verdict = faults.check(kube, bed.env, [bed.namespace], [bed.operator.spool], fault_end=end, expected=["up"])
    up = faults.outcome(kube, bed.namespace, "up")
    faults.RECORDER.run(FAULT_UP, verdict)
    faults.RECORDER.note(FAULT_UP, up)
    faults.say(f"\n{FAULT_UP}: {up}; {verdict.problems or 'held'}")
    assert up.startswith("Completed"), up

    bed.minio.stop()
    try:
        faults.create_capture(kube, bed.namespace, "down", TARGET)
        faults.wait_for(lambda: faults.phase(faults.read(kube, bed.namespace, "down")) in faults.TERMINAL, 120,
                        "the capture to end with S3 down and the spool full", every=1)
    finally:
        bed.minio.start()
    end = time.monotonic()
    verdict = faults.check(kube, bed.env, [bed.namespace], [bed.operator.spool], fault_end=end,
                           expected=["up", "down"])
    strays = _strays(bed.operator.spool)
    if strays:
        verdict.problems.append(f"half-written files left in the full spool: {strays[:3]}")
    down = faults.outcome(kube, bed.namespace, "down")
    pods = faults.read(kube, bed.namespace, "down")["status"]["pods"]
    faults.RECORDER.run(FAULT_DOWN, verdict)
    faults.RECORDER.note(FAULT_DOWN, f"{down}; a pod says: {str(pods[0].get('message'))[:200]}")
    faults.say(f"{FAULT_DOWN}: {down}; {pods[0].get('message')}; {verdict.problems or 'held'}")
    assert not verdict.problems, "\n".join(verdict.problems)
    # "spool" alone also matched the normal "kept in the operator's spool and sent later": the pod
    # must have Failed for the full spool, naming the work directory its bundle stays in, and the
    # bundle must be there (spool.Spool.add's wording).
    for pod in pods:
        message = str(pod.get("message"))
        assert pod.get("phase") == "Failed" and "No space left" in message, pod
        kept = re.search(r"the bundle is still at (/\S+?);", message)
        assert kept is not None, f"{pod['name']}'s message names no place its bundle stays: {message}"
        assert Path(kept[1]).is_file(), f"{pod['name']}'s bundle is not at {kept[1]}, where its message says"
    assert not bed.operator.tracebacks(), bed.operator.tracebacks()[0]
