"""What a security review found in storage, checked against the testbed's real MinIO, disk and API server.

Cases:
* a put never replaces an object it did not write: another bundle at the key is a KeyConflictError
  naming the key, and the object stays; the same bundle again is stored (idempotent);
* the write itself is conditional (``If-None-Match: *`` on the PUT, and on CompleteMultipartUpload
  for a multipart bundle): another writer that takes the key between our check and our write is
  not overwritten, and no unfinished upload is left;
* an earlier try of ours whose answer was lost (the object is there, the check said absent) counts
  as stored, and its lost sidecar is written; a retry after a lost answer to
  CompleteMultipartUpload sends no part again;
* a capture's delivery to a key that holds another object is held in the spool, reported, and no
  later flush tries it again;
* an upload killed (SIGKILL) between parts leaves an unfinished multipart upload no later put of
  its key cleans; a sweep under the store's prefix aborts it once older than the age given, and
  not before; :func:`delivering.deliver` runs that sweep;
* a spool on a full file system (a real 64 KiB tmpfs): a bundle that does not fit stays where it
  was, never moved in without the sidecar that lists it;
* the API server refuses ``ttl: 3000000d`` in a DebugCapture, a DebugSchedule's and a
  DebugTrigger's captureTemplate, naming the field and the bound, and accepts 3660d.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from debugcap import delivering
from debugcap.bundle import layout
from debugcap.errors import StorageError
from debugcap.settings import MIB
from debugcap.storage import base, s3, spool

from .conftest import REPO, Testbed, kubectl
from .test_storage_s3 import _bundle, _incomplete, _minio, _settings
from .test_storage_s3 import bucket as bucket  # noqa: F401 - a fixture, used by name

UID = "0b9c6f1e-7d1a-4c55-9a39-2f8e2b7c1d10"


def _key(name: str, directory: str = f"cap_{UID}") -> str:
    _ns, pod, when = layout.parse_bundle_name(name)
    return layout.object_key("e2e/safety", "testbed", "shop", pod, when, name, directory)


def _file(path: Path, body: bytes) -> tuple[Path, str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    return path, hashlib.sha256(body).hexdigest()


def test_a_put_never_replaces_an_object_it_did_not_write(testbed: Testbed, bucket: str, tmp_path: Path) -> None:
    backend = s3.S3Backend(_settings(testbed, bucket))
    first = _bundle(tmp_path / "first")
    key = _key(first.path.name)
    backend.put(key=key, path=first.path, sha256=first.sha256)
    other, other_sha = _file(tmp_path / "other" / first.path.name, b"another writer's bundle")

    with pytest.raises(base.KeyConflictError) as caught:
        backend.put(key=key, path=other, sha256=other_sha)
    message = str(caught.value)
    assert f"s3://{bucket}" in message and key in message and "not replaced" in message
    assert first.sha256 in message and other_sha in message
    assert backend.sha256(key=key) == first.sha256
    download = tmp_path / "dl" / first.path.name
    backend.get(key=key, dest=download)
    assert download.read_bytes() == first.path.read_bytes()

    again = backend.put(key=key, path=first.path, sha256=first.sha256)  # our own retry: fine
    assert again.sha256 == first.sha256 and backend.sha256(key=key) == first.sha256


@pytest.mark.parametrize("big", [False, True], ids=["single-put", "multipart"])
def test_another_writer_between_our_check_and_our_write_is_not_overwritten(
    testbed: Testbed, bucket: str, tmp_path: Path, big: bool,
) -> None:
    settings = _settings(testbed, bucket, part_size_bytes=5 * MIB, parallel_uploads=1)
    backend = s3.S3Backend(settings)
    ours = _bundle(tmp_path / "ours", big_bytes=12 * MIB if big else 0)
    key = _key(ours.path.name)
    theirs, their_sha = _file(tmp_path / "theirs" / "x.tar.gz", b"written by someone else meanwhile")
    mc = _minio(testbed)
    checked = backend._stat_sha256

    def check_then_lose_the_race(k: str) -> tuple[str | None, int] | None:
        found = checked(k)
        if found is None:  # the other writer lands right after our check said the key was free
            mc.fput_object(bucket, k, str(theirs), metadata={"sha256": their_sha})
            backend._stat_sha256 = checked  # type: ignore[method-assign]
        return found

    backend._stat_sha256 = check_then_lose_the_race  # type: ignore[method-assign]
    with pytest.raises(base.KeyConflictError, match="not replaced"):
        backend.put(key=key, path=ours.path, sha256=ours.sha256)
    backend._stat_sha256 = checked  # type: ignore[method-assign]
    assert backend.sha256(key=key) == their_sha
    assert mc.stat_object(bucket, key).size == theirs.stat().st_size
    assert _incomplete(mc, bucket, key) == []


def test_an_earlier_try_whose_answer_was_lost_counts_as_stored(testbed: Testbed, bucket: str, tmp_path: Path) -> None:
    backend = s3.S3Backend(_settings(testbed, bucket))
    bundle = _bundle(tmp_path / "b")
    key = _key(bundle.path.name)
    backend.put(key=key, path=bundle.path, sha256=bundle.sha256)
    mc = _minio(testbed)
    mc.remove_object(bucket, key + ".sha256")  # the try ended between the object and its sidecar
    checked = backend._stat_sha256
    answers = iter([None])  # ...and its check after that try lost its answer too

    def lost_then_real(k: str) -> tuple[str | None, int] | None:
        return next(answers, checked(k)) if k == key else checked(k)

    backend._stat_sha256 = lost_then_real  # type: ignore[method-assign]
    stored = backend.put(key=key, path=bundle.path, sha256=bundle.sha256)  # 412, then ours: stored
    assert stored.sha256 == bundle.sha256
    sidecar = mc.get_object(bucket, key + ".sha256")
    try:
        assert sidecar.read() == base.checksum_line(bundle.sha256, key)
    finally:
        sidecar.close()
        sidecar.release_conn()


def test_a_capture_delivery_to_a_taken_key_is_held_and_never_retried(
    testbed: Testbed, bucket: str, tmp_path: Path,
) -> None:
    store = delivering.Store(s3.S3Backend(_settings(testbed, bucket)), "e2e/safety", "testbed",
                             spool.Spool(tmp_path / "spool"))
    bundle = _bundle(tmp_path / "b")
    capture = delivering.Capture("cap", UID)
    key = delivering.object_key(store, "shop", "api-1", bundle.manifest.started_at, bundle.path.name, capture)
    theirs, their_sha = _file(tmp_path / "theirs" / "x.tar.gz", b"already there")
    store.backend.put(key=key, path=theirs, sha256=their_sha)

    delivery, _ = delivering.deliver(store, bundle, namespace="shop", pod="api-1", when=bundle.manifest.started_at,
                                     capture=capture)
    assert not delivery.stored and delivery.held and delivery.key == key
    assert delivery.error and key in delivery.error and "not replaced" in delivery.error
    held = tmp_path / "spool" / ".held" / key
    assert delivery.location == str(held) and hashlib.sha256(held.read_bytes()).hexdigest() == bundle.sha256
    assert store.backend.sha256(key=key) == their_sha
    report = spool.flush_spool(store.backend, store.spool)
    assert report == spool.FlushReport()  # nothing to send, nothing failing, nothing retried
    assert [e.key for e in store.spool.held()] == [key]


_KILLED_UPLOADER = textwrap.dedent("""
    import dataclasses, sys, time
    from pathlib import Path
    import minio
    from debugcap.settings import MIB, S3Settings
    from debugcap.storage import s3

    upload_part = minio.Minio._upload_part

    def slow_part(self, *args, **kwargs):  # a slow link: time to be killed between parts
        etag = upload_part(self, *args, **kwargs)
        print("part", flush=True)
        time.sleep(0.5)
        return etag

    minio.Minio._upload_part = slow_part
    settings = dataclasses.replace(S3Settings.from_env(), part_size_bytes=5 * MIB, parallel_uploads=1)
    s3.S3Backend(settings).put(key=sys.argv[1], path=Path(sys.argv[2]), sha256=sys.argv[3])
""")


@pytest.fixture
def uploader_env(testbed: Testbed, bucket: str) -> dict[str, str]:
    return {**os.environ, **testbed.s3, "DEBUGCAP_S3_BUCKET": bucket}


def test_an_upload_killed_between_parts_is_swept_under_the_stores_prefix(
    testbed: Testbed, bucket: str, tmp_path: Path, uploader_env: dict[str, str],
) -> None:
    big, big_sha = _file(tmp_path / "big" / "shop_api-1_20261201T101500Z.tar.gz", os.urandom(30 * MIB))
    key = _key(big.name)
    mc = _minio(testbed)
    mc.make_bucket(bucket)
    child = subprocess.Popen([sys.executable, "-c", _KILLED_UPLOADER, key, str(big), big_sha], cwd=REPO,
                             env=uploader_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        line = child.stdout.readline()  # one part sent, the next not yet
        assert line == "part\n", line + (child.stderr.read() if child.stderr else "")
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(30)
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.close()
    assert child.returncode == -signal.SIGKILL
    left = _incomplete(mc, bucket, key)
    assert len(left) == 1, left
    assert not any(o.object_name == key for o in mc.list_objects(bucket, recursive=True))

    backend = s3.S3Backend(_settings(testbed, bucket))
    assert list(backend.abort_stale_uploads(prefix="e2e/safety/testbed/", older_than=timedelta(hours=1))) == []
    assert _incomplete(mc, bucket, key) == left  # younger than the age given: may still be running
    assert list(backend.abort_stale_uploads(prefix="e2e/other/", older_than=timedelta(0))) == []
    assert _incomplete(mc, bucket, key) == left  # not under the prefix given: another store's

    # The key is never retried (its bundle died with the process); the next delivery sweeps it.
    store = delivering.Store(backend, "e2e/safety", "testbed", spool.Spool(tmp_path / "spool"),
                             sweep=delivering.StaleSweep(older_than=timedelta(0)))
    other = _bundle(tmp_path / "other", pod="api-2")
    delivery, _ = delivering.deliver(store, other, namespace="shop", pod="api-2", when=other.manifest.started_at,
                                     capture=delivering.Upload.new())
    assert delivery.stored, delivery
    assert _incomplete(mc, bucket, key) == []
    assert mc._list_multipart_uploads(bucket).uploads == []


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A real file system of 64 KiB (tmpfs), unmounted afterwards. Needs root, as the testbed does."""
    mount = tmp_path / "small"
    mount.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True,
                         text=True)
    assert res.returncode == 0, f"mounting a 64 KiB tmpfs needs root (as the testbed does): {res.stderr}"
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


class _Down(base.StorageBackend):
    """A store that is down: every delivery spools."""

    def put(self, *, key: str, path: Path, sha256: str) -> base.StoredObject:
        raise StorageError(f"uploading {key} failed: connection refused")

    def sha256(self, *, key: str) -> str | None:
        raise StorageError("checking failed: connection refused")

    get = exists = list = delete = url = uri = put  # type: ignore[assignment] # never called here

    def describe(self) -> str:
        return "a store that is down"


def test_a_full_spool_never_strands_a_bundle(full_disk: Path, tmp_path: Path) -> None:
    # Exactly the file system's size: the bundle alone fits, the bundle and its sidecar do not.
    bundle, sha = _file(tmp_path / "work" / "shop_api-1_20261201T101500Z.tar.gz", os.urandom(64 * 1024))
    key = _key(bundle.name)
    sp = spool.Spool(full_disk / "spool")
    try:
        delivery = spool.deliver(_Down(), sp, key=key, bundle=bundle, sha256=sha)
    except StorageError as exc:  # the disk is full: the bundle must still be where the message says
        assert "No space left on device" in str(exc) and str(bundle) in str(exc)
        assert bundle.exists() and hashlib.sha256(bundle.read_bytes()).hexdigest() == sha
        assert not (full_disk / "spool" / key).exists()
    else:  # or it fits after all, and then the spool lists it
        assert [e.key for e in sp.entries()] == [key], delivery
    # Either way, never both gone from where it was and missing from what a flush sends.
    assert bundle.exists() or [(e.key, e.sha256) for e in sp.entries()] == [(key, sha)]


def _refusal(testbed: Testbed, namespace: str, kind: str, spec: dict[str, object]) -> str:
    body = {"apiVersion": "debugcap.io/v1alpha1", "kind": kind,
            "metadata": {"name": f"ttl-{uuid.uuid4().hex[:8]}", "namespace": namespace}, "spec": spec}
    res = kubectl(testbed, "apply", "--dry-run=server", "-f", "-", stdin=json.dumps(body), check=False)
    return "" if res.returncode == 0 else res.stderr


def test_the_api_server_refuses_a_ttl_past_the_bound_in_every_crd(crds: None, testbed: Testbed, namespace: str) -> None:
    def capture(ttl: str) -> dict[str, object]:
        return {"target": {"pod": "api-1"}, "ttl": ttl}

    def schedule(ttl: str) -> dict[str, object]:
        return {"schedule": "0 * * * *", "captureTemplate": {"spec": capture(ttl)}}

    def trigger(ttl: str) -> dict[str, object]:
        return {"target": {"pod": "api-1"}, "when": {"goroutines": 10000}, "captureTemplate": {"spec": {"ttl": ttl}}}

    for kind, spec, field in (("DebugCapture", capture, "spec.ttl"),
                              ("DebugSchedule", schedule, "spec.captureTemplate.spec.ttl"),
                              ("DebugTrigger", trigger, "spec.captureTemplate.spec.ttl")):
        refused = _refusal(testbed, namespace, kind, spec("3000000d"))
        assert field in refused and "at most 3660d" in refused, (kind, refused)
        assert "at most 3660d" in _refusal(testbed, namespace, kind, spec("3660d1s")), kind
        assert "longer than zero" in _refusal(testbed, namespace, kind, spec("0d")), kind
        for fine in ("7d", "3660d", "3659d23h60m"):
            assert _refusal(testbed, namespace, kind, spec(fine)) == "", (kind, fine)


def test_a_cli_upload_key_carries_a_directory_of_its_own(testbed: Testbed, bucket: str, tmp_path: Path) -> None:
    """The same pod in the same second, twice, under the default cluster name: both kept."""
    settings = _settings(testbed, bucket)
    store = delivering.Store(s3.S3Backend(settings), "e2e/safety", "default", spool.Spool(tmp_path / "spool"))
    started = datetime(2026, 12, 1, 10, 15, tzinfo=UTC)
    keys = []
    for run in range(2):
        made = _bundle(tmp_path / f"run{run}")
        renamed = made.path.with_name(layout.bundle_name("shop", "api-1", started))
        made.path.rename(renamed)
        bundle = dataclasses.replace(made, path=renamed)
        delivery, _ = delivering.deliver(store, bundle, namespace="shop", pod="api-1", when=started,
                                         capture=delivering.Upload.new())
        assert delivery.stored, delivery
        keys.append((delivery.key, bundle.sha256))
    assert keys[0][0] != keys[1][0]
    for key, sha in keys:
        assert store.backend.sha256(key=key) == sha


def test_a_retry_after_a_lost_answer_to_complete_multipart_upload_sends_nothing_again(
    testbed: Testbed, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import minio
    import urllib3.exceptions

    backend = s3.S3Backend(_settings(testbed, bucket, part_size_bytes=5 * MIB, parallel_uploads=1,
                                     backoff_base_seconds=0.01, backoff_max_seconds=0.01))
    bundle = _bundle(tmp_path / "b", big_bytes=12 * MIB)
    key = _key(bundle.path.name)
    parts: list[int] = []
    upload_part, complete = minio.Minio._upload_part, minio.Minio._complete_multipart_upload

    def counted_part(self: minio.Minio, *args: object, **kwargs: object) -> object:
        parts.append(1)
        return upload_part(self, *args, **kwargs)  # type: ignore[arg-type]

    def completed_but_answer_lost(self: minio.Minio, *args: object, **kwargs: object) -> object:
        complete(self, *args, **kwargs)  # type: ignore[arg-type]
        monkeypatch.setattr(minio.Minio, "_complete_multipart_upload", complete)
        raise urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError(104, "reset"))

    monkeypatch.setattr(minio.Minio, "_upload_part", counted_part)
    monkeypatch.setattr(minio.Minio, "_complete_multipart_upload", completed_but_answer_lost)
    stored = backend.put(key=key, path=bundle.path, sha256=bundle.sha256)

    assert stored.sha256 == bundle.sha256 and stored.size == bundle.size
    assert len(parts) == 3, f"{len(parts)} parts sent for a 3-part bundle: the retry sent it again"
    assert backend.sha256(key=key) == bundle.sha256
    mc = _minio(testbed)
    assert mc.stat_object(bucket, key).size == bundle.size
    assert _incomplete(mc, bucket, key) == []
