"""Bundles in the testbed's real MinIO: the S3 backend, ``create --upload``, and an outage mid-upload.

Cases:
* put/get/exists/sha256/list/delete round trip with a real bundle, into a bucket that did not
  exist (created on first upload); the object carries its SHA-256 as metadata and has a
  ``<key>.sha256`` sidecar that ``sha256sum -c`` accepts beside the download; the download
  passes ``debugcap.bundle.verify``;
* ``kubectl debugcap create --upload`` stores the bundle under
  ``<prefix>/<cluster>/<namespace>/<pod>/<YYYY>/<MM>/<DD>/cli-<32 hex>/<bundle>``;
* MinIO stopped in the middle of a multipart upload: the bundle waits in the spool with its
  checksum, and the next ``create --upload`` sends it first; it verifies, the spool is empty and
  no incomplete multipart upload is left.

Every test uses its own bucket (removed afterwards) and its own spool and local store directories.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from minio import Minio

from debugcap import delivering
from debugcap.bundle import layout, manifest, verify, writer
from debugcap.settings import MIB, S3Settings
from debugcap.storage import s3, spool
from testbed import cluster

from .conftest import REPO, GoappPod, Testbed

CLI = REPO / ".venv" / "bin" / "kubectl-debugcap"


def _start_s3() -> None:
    """Start MinIO again (a no-op when it is healthy).

    The testbed's Proc.start leaves its Popen object to the garbage collector while MinIO keeps
    running, which Python reports as a ResourceWarning; that is the testbed's business, not ours.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        cluster.proc("s3").start()


def _minio(testbed: Testbed) -> Minio:
    env = testbed.s3
    return Minio(env["DEBUGCAP_S3_ENDPOINT"], access_key=env["DEBUGCAP_S3_ACCESS_KEY"],
                 secret_key=env["DEBUGCAP_S3_SECRET_KEY"], secure=False)


def _incomplete(mc: Minio, bucket: str, key: str) -> list[str]:
    result = mc._list_multipart_uploads(bucket, prefix=key)
    return [u.upload_id for u in result.uploads if u.object_name == key]


@pytest.fixture
def bucket(testbed: Testbed) -> Iterator[str]:
    name = f"e2e-{uuid.uuid4().hex[:10]}"
    yield name
    _start_s3()  # a failed test must not leave MinIO down
    mc = _minio(testbed)
    if not mc.bucket_exists(name):
        return
    for obj in mc.list_objects(name, recursive=True):
        mc.remove_object(name, obj.object_name)
    for upload in mc._list_multipart_uploads(name).uploads:
        mc._abort_multipart_upload(name, upload.object_name, upload.upload_id)
    mc.remove_bucket(name)


def _settings(testbed: Testbed, bucket: str, **changes: object) -> S3Settings:
    env = {**testbed.s3, "DEBUGCAP_S3_BUCKET": bucket, "DEBUGCAP_S3_PREFIX": "e2e/s3", "DEBUGCAP_CLUSTER": "testbed"}
    settings = S3Settings.from_env(env)
    assert settings is not None
    return dataclasses.replace(settings, **changes)  # type: ignore[arg-type]


def _bundle(directory: Path, *, namespace: str = "shop", pod: str = "api-1", big_bytes: int = 0,
            ) -> writer.WrittenBundle:
    """A real bundle; ``big_bytes`` of random trace data make it large (stored, not compressed)."""
    started = datetime.now(UTC)
    with writer.BundleWriter(directory=directory, name=layout.bundle_name(namespace, pod, started),
                             compresslevel=0 if big_bytes else 6) as w:
        w.add_bytes(layout.PROC_PS, b"PID   USER     TIME  COMMAND\n    1 root      0:01 /goapp\n")
        w.add_bytes(layout.METRICS_PROMETHEUS, b"goapp_goroutines 12\n")
        if big_bytes:
            w.add_stream(layout.TRACE, (os.urandom(MIB) for _ in range(big_bytes // MIB)))
        return w.finish(manifest.ManifestFields(
            capture=manifest.CaptureInfo(name="e2e", template="debug-full"),
            target=manifest.TargetInfo(namespace=namespace, pod=pod, container="app"),
            started_at=started, finished_at=datetime.now(UTC),
            collectors=(manifest.CollectorRecord(name="ps", status=manifest.CollectorStatus.OK, duration_ms=1,
                                                 files=(layout.PROC_PS,)),)))


def test_backend_round_trip_with_a_real_bundle(testbed: Testbed, bucket: str, tmp_path: Path) -> None:
    mc = _minio(testbed)
    assert not mc.bucket_exists(bucket)
    backend = s3.S3Backend(_settings(testbed, bucket))
    bundle = _bundle(tmp_path / "local")
    key = layout.object_key("e2e/s3", "testbed", "shop", "api-1", bundle.manifest.started_at, bundle.path.name)

    assert not backend.exists(key=key) and backend.sha256(key=key) is None
    stored = backend.put(key=key, path=bundle.path, sha256=bundle.sha256)
    assert stored.sha256 == bundle.sha256 and stored.size == bundle.size
    assert mc.bucket_exists(bucket)  # created on first use

    assert backend.exists(key=key) and backend.sha256(key=key) == bundle.sha256
    stat = mc.stat_object(bucket, key)
    assert stat.size == bundle.size
    assert {k.lower(): v for k, v in stat.metadata.items()}["x-amz-meta-sha256"] == bundle.sha256
    sidecar = mc.get_object(bucket, key + ".sha256")
    try:
        assert sidecar.read() == f"{bundle.sha256}  {bundle.path.name}\n".encode()
    finally:
        sidecar.close()
        sidecar.release_conn()

    other = _bundle(tmp_path / "local2", pod="api-2")
    other_key = layout.object_key("e2e/s3", "testbed", "shop", "api-2", other.manifest.started_at, other.path.name)
    backend.put(key=other_key, path=other.path, sha256=other.sha256)
    assert list(backend.list(prefix="e2e/s3/testbed/shop/")) == sorted([key, other_key])
    assert list(backend.list(prefix="e2e/s3/testbed/shop/api-2/")) == [other_key]

    download = tmp_path / "download" / bundle.path.name
    got = backend.get(key=key, dest=download)
    assert got.sha256 == bundle.sha256 and download.read_bytes() == bundle.path.read_bytes()
    mc.fget_object(bucket, key + ".sha256", str(download) + ".sha256")
    check = subprocess.run(["sha256sum", "-c", download.name + ".sha256"], cwd=download.parent, capture_output=True,
                           text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    result = verify.verify(download)
    assert result.ok and result.bundle_checksum_ok is True, result.summary()

    backend.delete(key=key)
    assert not backend.exists(key=key)
    assert [o.object_name for o in mc.list_objects(bucket, prefix="e2e/s3/testbed/shop/api-1/", recursive=True)] == []
    backend.delete(key=key)  # deleting a missing key is fine
    assert list(backend.list(prefix="e2e/s3/")) == [other_key]


def _cli_env(testbed: Testbed, bucket: str, tmp_path: Path) -> dict[str, str]:
    return {**os.environ, **testbed.s3, "KUBECONFIG": testbed.kubeconfig, "DEBUGCAP_S3_BUCKET": bucket,
            "DEBUGCAP_S3_PREFIX": "e2e/s3", "DEBUGCAP_CLUSTER": "testbed",
            "DEBUGCAP_SPOOL_DIR": str(tmp_path / "spool"), "DEBUGCAP_LOCAL_STORE": str(tmp_path / "store")}


def _create_upload(testbed: Testbed, bucket: str, namespace: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), "create", "pod/goapp", "-t", "disk-usage", "--local", "--upload", "-n", namespace,
         "--output-dir", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=120, env=_cli_env(testbed, bucket, tmp_path))


def test_create_upload_stores_under_the_documented_key(
    testbed: Testbed, goapp_pod: GoappPod, namespace: str, bucket: str, tmp_path: Path,
) -> None:
    goapp_pod("goapp")
    res = _create_upload(testbed, bucket, namespace, tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    bundle = Path(re.search(r"^bundle: (.+)$", res.stdout, re.MULTILINE).group(1))  # type: ignore[union-attr]
    _ns, _pod, when = layout.parse_bundle_name(bundle.name)
    # A directory of its own (cli-<32 hex>): another upload of the pod in the same second, from
    # this or another cluster left at the same cluster name, gets another key.
    stored = re.search(rf"^stored: s3://{bucket} at http://{re.escape(testbed.s3['DEBUGCAP_S3_ENDPOINT'])} key (.+)$",
                       res.stdout, re.MULTILINE)
    assert stored, res.stdout
    key = stored.group(1)
    assert re.fullmatch(rf"e2e/s3/testbed/{namespace}/goapp/{when:%Y}/{when:%m}/{when:%d}/cli-[0-9a-f]{{32}}/"
                        rf"{re.escape(bundle.name)}", key), key
    assert bundle.exists()  # the local copy is kept
    assert not list((tmp_path / "spool").rglob("*.tar.gz"))

    backend = s3.S3Backend(_settings(testbed, bucket))
    assert list(backend.list(prefix="e2e/s3/")) == [key]
    download = tmp_path / "download" / bundle.name
    backend.get(key=key, dest=download)
    assert download.read_bytes() == bundle.read_bytes()
    assert verify.verify(download).ok


def test_s3_outage_mid_upload_spools_the_bundle_and_the_next_run_sends_it(
    testbed: Testbed, goapp_pod: GoappPod, namespace: str, bucket: str, tmp_path: Path,
) -> None:
    goapp_pod("goapp")
    big = _bundle(tmp_path / "out", namespace=namespace, pod="goapp", big_bytes=80 * MIB)
    # Small parts one at a time: the upload takes long enough to be caught in the middle, and a
    # failed attempt is not retried for long (the bundle must end in the spool, not in MinIO).
    settings = _settings(testbed, bucket, part_size_bytes=5 * MIB, parallel_uploads=1, upload_attempts=2,
                         backoff_base_seconds=0.2)
    store = delivering.Store(s3.S3Backend(settings), "e2e/s3", "testbed", spool.Spool(tmp_path / "spool"))
    upload = delivering.Upload.new()
    key = delivering.object_key(store, namespace, "goapp", big.manifest.started_at, big.path.name, upload)
    mc = _minio(testbed)
    mc.make_bucket(bucket)
    stopped = threading.Event()

    def stop_once_uploading() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if _incomplete(mc, bucket, key):
                cluster.proc("s3").stop()
                stopped.set()
                return
            time.sleep(0.005)

    watcher = threading.Thread(target=stop_once_uploading, daemon=True)
    try:
        watcher.start()
        delivery, _flushed = delivering.deliver(store, big, namespace=namespace, pod="goapp",
                                                when=big.manifest.started_at, capture=upload)
        watcher.join(5)
    finally:
        _start_s3()
    assert stopped.is_set(), "the upload finished before MinIO could be stopped"
    assert not delivery.stored and delivery.key == key, delivery
    assert delivery.error and settings.endpoint in delivery.error
    spooled = tmp_path / "spool" / key
    assert delivery.location == str(spooled) and spooled.is_file()
    assert (spooled.parent / (spooled.name + ".sha256")).read_text() == f"{big.sha256}  {big.path.name}\n"
    assert not big.path.exists()  # moved, not copied: one copy of the evidence, in the spool
    assert [e.key for e in spool.Spool(tmp_path / "spool").entries()] == [key]

    # The next run flushes the spool before its own upload.
    res = _create_upload(testbed, bucket, namespace, tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"uploaded earlier spooled bundle: {key}" in res.stderr, res.stderr
    assert not spool.Spool(tmp_path / "spool").entries() and not spooled.exists()
    assert _incomplete(mc, bucket, key) == []
    backend = s3.S3Backend(_settings(testbed, bucket))
    assert backend.sha256(key=key) == big.sha256
    download = tmp_path / "download" / big.path.name
    backend.get(key=key, dest=download)
    result = verify.verify(download)
    assert result.ok and result.sha256 == big.sha256, result.summary()
