"""Closing a capture a dead operator left Running: status entries read back, bundles adopted.

Cases: ``PodResult.from_status`` is the exact inverse of ``as_status`` (stored bundle, spooled
upload key, running pod, collectors); recovery keeps ended pods as written, adopts a running
pod's uploadKey, fails a running pod without one and counts what was interrupted; adoption from
a local store: a verified bundle is adopted with its manifest's phase, a file:// URI and its
analysis, a missing
one leaves the key listed, a damaged one is deleted.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import operator_fakes
import pytest

from debugcap import delivering
from debugcap.analysis import model
from debugcap.operator import health, recovery
from debugcap.operator.results import PodResult
from debugcap.storage import base, local, spool

KEY = "debugcap/testbed/shop/api-1/2026/12/01/shop_api-1_20261201T101500Z.tar.gz"
# The capture of these tests: a selector target (no one pod), so the older layout's KEY is its own.
OWNER = delivering.KeyOwner("debugcap", "testbed", "shop", delivering.Capture("cap", "uid-1"))
COLLECTOR = {"name": "pprof-cpu", "status": "ok", "bytes": 10, "durationMs": 5}


@pytest.mark.parametrize("result", [
    PodResult(name="api-1", phase="Completed", container="app", node="n1", uri=f"s3://b/{KEY}", key=KEY,
              sha256="a" * 64, size_bytes=10, collectors=(COLLECTOR,)),
    PodResult(name="api-1", phase="PartiallyFailed", message="upload failed, spooled", upload_key=KEY),
    PodResult(name="api-1", phase="Running", upload_key=KEY),
    PodResult(name="api-1", phase="Failed", message="no pprof", collectors=({**COLLECTOR, "status": "failed"},)),
    PodResult(name="api-1", phase="Pending"),
    PodResult(name="api-1", phase="Completed", key=KEY, uri=f"s3://b/{KEY}", health=health.judge(
        [model.Finding(90, "goroutine-leak", "main.f", "parked")], {"goroutines": 300, "cpuShare": 0.5},
        generation=2, now=operator_fakes.WHEN)),
], ids=["stored", "spooled", "running", "failed", "pending", "analysed"])
def test_from_status_reads_back_exactly_what_as_status_wrote(result: PodResult) -> None:
    assert PodResult.from_status(result.as_status()) == result
    assert PodResult.from_status(result.as_status()).as_status() == result.as_status()


def test_a_running_pod_lists_its_upload_key_and_a_stored_one_its_bundle_instead() -> None:
    running = PodResult(name="api-1", phase="Running", upload_key=KEY).as_status()
    assert running == {"name": "api-1", "phase": "Running", "uploadKey": KEY}
    stored = PodResult(name="api-1", phase="Completed", key=KEY, uri=f"s3://b/{KEY}", sha256="a" * 64,
                       size_bytes=10, upload_key=KEY).as_status()
    assert "uploadKey" not in stored and stored["bundle"]["key"] == KEY


def test_recovery_keeps_ended_pods_adopts_uploads_and_fails_the_rest() -> None:
    stored = PodResult(name="a", phase="Completed", uri=f"s3://b/{KEY}", key=KEY, sha256="a" * 64, size_bytes=1)
    spooled = PodResult(name="b", phase="PartiallyFailed", upload_key="k/b.tar.gz", message="spooled")
    entries = [stored.as_status(), spooled.as_status(),
               {"name": "c", "phase": "Running", "uploadKey": "k/c.tar.gz", "node": "n1"},
               {"name": "d", "phase": "Running", "node": "n2"},
               {"name": "e", "phase": "Pending"}]
    asked: list[str] = []

    def adopt(entry: Mapping[str, Any]) -> PodResult:
        asked.append(entry["uploadKey"])
        return PodResult(name=entry["name"], phase="Completed", key=entry["uploadKey"], uri="s3://b/k/c.tar.gz")

    pods, lost = recovery.recover_pods(entries, adopt)
    assert asked == ["k/c.tar.gz"]  # only a running pod's key is looked up; nothing is re-run
    assert pods["a"] == stored and pods["b"] == spooled
    assert pods["c"].key == "k/c.tar.gz"
    assert pods["d"] == PodResult(name="d", phase="Failed", node="n2", message=recovery.LOST_MESSAGE)
    assert pods["e"].phase == "Failed"
    assert lost == 2
    assert "2 pod capture(s) were interrupted" in recovery.orphan_message(lost)


@pytest.fixture
def store(tmp_path: Path) -> delivering.Store:
    return delivering.Store(local.LocalBackend(tmp_path / "store"), "debugcap", "testbed",
                            spool.Spool(tmp_path / "spool"))


def _running(key: str = KEY) -> dict[str, Any]:
    return {"name": "api-1", "phase": "Running", "uploadKey": key, "container": "app", "node": "n1"}


def test_a_verified_bundle_is_adopted_with_its_manifests_phase_and_a_file_uri(
        store: delivering.Store, tmp_path: Path) -> None:
    bundle = operator_fakes.write_bundle(tmp_path / "out")
    store.backend.put(key=KEY, path=bundle.path, sha256=bundle.sha256)

    result = recovery.adopt_upload(store, _running(), tmp_path / "work", owner=OWNER)
    assert result.phase == "Completed" and result.key == KEY and result.sha256 == bundle.sha256
    assert result.uri == (tmp_path / "store" / KEY).as_uri()  # file:///..., not "file://local directory ..."
    assert [c["name"] for c in result.collectors] == ["ps"]
    assert "adopted" in result.message
    assert result.health is not None and result.health.status == "True"  # read like any stored bundle


def test_an_adopted_bundle_whose_sidecar_a_kill_cut_gets_it_back(store: delivering.Store, tmp_path: Path) -> None:
    # The fault suite's kill -9 landed between a bundle's put and its .sha256's: the successor
    # adopted the bundle, and no .sha256 was ever stored beside it. S3 knows a bundle's SHA-256
    # from its metadata, without the sidecar: so does this store.
    class MetadataBackend(local.LocalBackend):
        def sha256(self, *, key: str) -> str | None:
            path = tmp_path / "store" / key
            return base.file_sha256(path)[0] if path.is_file() else None

    store = dataclasses.replace(store, backend=MetadataBackend(tmp_path / "store"))
    bundle = operator_fakes.write_bundle(tmp_path / "out")
    store.backend.put(key=KEY, path=bundle.path, sha256=bundle.sha256)
    sidecar = tmp_path / "store" / f"{KEY}.sha256"
    sidecar.unlink()
    result = recovery.adopt_upload(store, _running(), tmp_path / "work", owner=OWNER)
    assert result.key == KEY and sidecar.read_text().split()[0] == bundle.sha256


def test_a_missing_bundle_fails_the_pod_and_keeps_its_key_listed(store: delivering.Store, tmp_path: Path) -> None:
    result = recovery.adopt_upload(store, _running(), tmp_path / "work", owner=OWNER)
    assert result.phase == "Failed" and result.upload_key == KEY and not result.key
    assert result.message == recovery.LOST_MESSAGE


def test_a_damaged_bundle_is_deleted(store: delivering.Store, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.tar.gz"
    garbage.write_bytes(b"not a bundle")
    store.backend.put(key=KEY, path=garbage, sha256=base.file_sha256(garbage)[0])
    result = recovery.adopt_upload(store, _running(), tmp_path / "work", owner=OWNER)
    assert result.phase == "Failed" and "failed verification and was deleted" in result.message
    assert not store.backend.exists(key=KEY)
