"""The operator's spool flusher: bundles spooled during a store outage are sent once the store
answers, without a new capture to carry them; a store still down leaves them spooled and the
thread alive. Ticks come from a scripted ``wait``, never from the clock."""

from __future__ import annotations

import copy
import hashlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from debugcap import delivering, errors
from debugcap.errors import StorageError
from debugcap.operator import spool_flushing
from debugcap.operator.spool_flushing import SpoolFlusher
from debugcap.storage import base, local, spool

KEY = "debugcap/testbed/shop/api-1/2026/12/05/cap_0f0e/shop_api-1_20261205T060000Z.tar.gz"


class DownBackend(local.LocalBackend):
    """A local store that fails every request, as S3 does while it is down."""

    def put(self, *, key: str, path: Path, sha256: str) -> base.StoredObject:
        raise StorageError(f"uploading {key} failed: connection refused")

    def sha256(self, *, key: str) -> str | None:
        raise StorageError("checking failed: connection refused")


def _spooled(tmp_path: Path) -> tuple[spool.Spool, str]:
    """A bundle whose upload failed: in the spool, as the operator's delivery leaves it."""
    work = tmp_path / "work"
    work.mkdir()
    bundle = work / "shop_api-1_20261205T060000Z.tar.gz"
    bundle.write_bytes(b"evidence" * 1000)
    sha = hashlib.sha256(bundle.read_bytes()).hexdigest()
    sp = spool.Spool(tmp_path / "spool")
    delivery = spool.deliver(DownBackend(tmp_path / "store"), sp, key=KEY, bundle=bundle, sha256=sha)
    assert not delivery.stored and [e.key for e in sp.entries()] == [KEY]
    return sp, sha


def _ticks(n: int) -> Callable[[float], bool]:
    """A ``wait`` that lets ``n`` ticks through, then asks the flusher to stop."""
    answers: Iterator[bool] = iter([False] * n + [True])
    return lambda _seconds: next(answers)


def test_a_spooled_bundle_is_sent_once_the_store_answers_with_no_new_capture(tmp_path: Path) -> None:
    sp, sha = _spooled(tmp_path)
    backend = local.LocalBackend(tmp_path / "store")  # the store is back
    store = delivering.Store(backend, "debugcap", "testbed", sp)
    SpoolFlusher(store, wait=_ticks(1)).run()
    assert backend.sha256(key=KEY) == sha
    assert sp.entries() == []


def test_a_store_still_down_keeps_the_bundle_spooled_and_the_flusher_tries_again(tmp_path: Path) -> None:
    sp, sha = _spooled(tmp_path)
    flushes: list[spool.FlushReport | None] = []
    flusher = SpoolFlusher(delivering.Store(DownBackend(tmp_path / "store"), "debugcap", "testbed", sp),
                           wait=_ticks(2))
    flush_once = flusher.flush_once
    flusher.flush_once = lambda: flushes.append(flush_once()) or flushes[-1]  # type: ignore[method-assign]
    flusher.run()
    assert len(flushes) == 2 and all(r is not None and r.failed for r in flushes)
    assert [e.key for e in sp.entries()] == [KEY]
    # Once the store is back, the next tick sends it.
    flusher.store = delivering.Store(local.LocalBackend(tmp_path / "store"), "debugcap", "testbed", sp)
    assert flusher.flush_once() is not None and sp.entries() == []
    assert local.LocalBackend(tmp_path / "store").sha256(key=KEY) == sha


def test_an_empty_spool_touches_no_store(tmp_path: Path) -> None:
    store = delivering.Store(DownBackend(tmp_path / "store"), "debugcap", "testbed", spool.Spool(tmp_path / "spool"))
    assert SpoolFlusher(store).flush_once() is None


def test_close_stops_the_thread(tmp_path: Path) -> None:
    store = delivering.Store(local.LocalBackend(tmp_path / "store"), "debugcap", "testbed",
                             spool.Spool(tmp_path / "spool"))
    flusher = SpoolFlusher(store).start()
    flusher.close()
    flusher.thread.join(30)
    assert not flusher.thread.is_alive()


# --- the owner of a spooled bundle, asked before and after each upload --------------------------

UID = "0f0e"
CAPTURE_PATH = "/apis/debugcap.io/v1alpha1/namespaces/shop/debugcaptures/cap"


class FakeKube:
    """The API server as the flusher sees it: ``captures`` by path (absent: 404), status patches kept."""

    def __init__(self, capture: dict[str, Any] | None) -> None:
        self.capture = capture
        self.patches: list[tuple[str, Any]] = []
        self.conflicts = 0  # patches answered 409 before one goes through

    def get_json(self, path: str, query: Any = (), *, timeout: float | None = None) -> Any:
        if path == CAPTURE_PATH and self.capture is not None:
            return copy.deepcopy(self.capture)
        if path == CAPTURE_PATH.rsplit("/", 1)[0]:
            return {"items": [copy.deepcopy(self.capture)] if self.capture else []}
        raise errors.NotFoundError(f"{path} not found")

    def merge_patch(self, path: str, body: Any, *, timeout: float | None = None) -> Any:
        if self.conflicts:
            self.conflicts -= 1
            assert self.capture is not None
            self.capture["metadata"]["resourceVersion"] = str(int(self.capture["metadata"]["resourceVersion"]) + 1)
            raise errors.ConflictError("the object has been modified")
        self.patches.append((path, copy.deepcopy(body)))
        return {}


def _capture(uid: str = UID) -> dict[str, Any]:
    return {"metadata": {"name": "cap", "namespace": "shop", "uid": uid, "resourceVersion": "7"},
            "status": {"phase": "PartiallyFailed", "pods": [
                {"name": "api-1", "phase": "PartiallyFailed", "uploadKey": KEY,
                 "message": "upload failed, bundle kept in the operator's spool and sent later: refused"},
                {"name": "api-2", "phase": "Completed", "bundle": {"key": "other"}}]}}


def _owned_store(tmp_path: Path, kube: FakeKube, backend: base.StorageBackend | None = None,
                 ) -> tuple[delivering.Store, spool.Spool, str]:
    sp, sha = _spooled(tmp_path)
    store = delivering.Store(backend or local.LocalBackend(tmp_path / "store"), "debugcap", "testbed", sp)
    return spool_flushing.watch_owners(kube, store), sp, sha  # type: ignore[arg-type]


def test_a_deleted_captures_spooled_bundle_is_discarded_not_sent(tmp_path: Path) -> None:
    store, sp, _sha = _owned_store(tmp_path, FakeKube(None))
    report = SpoolFlusher(store).flush_once()
    assert report is not None and report.discarded == [KEY] and not report.uploaded
    assert sp.entries() == [] and store.backend.sha256(key=KEY) is None


def test_a_capture_of_the_same_name_but_another_uid_does_not_own_the_bundle(tmp_path: Path) -> None:
    store, sp, _sha = _owned_store(tmp_path, FakeKube(_capture(uid="another")))
    SpoolFlusher(store).flush_once()
    assert sp.entries() == [] and store.backend.sha256(key=KEY) is None


def test_an_api_server_that_cannot_tell_leaves_the_bundle_spooled(tmp_path: Path) -> None:
    kube = FakeKube(None)
    kube.get_json = lambda *a, **k: (_ for _ in ()).throw(errors.KubeError("connection refused"))  # type: ignore[method-assign]
    store, sp, _sha = _owned_store(tmp_path, kube)
    report = SpoolFlusher(store).flush_once()
    assert report is not None and report.failed and [e.key for e in sp.entries()] == [KEY]
    assert store.backend.sha256(key=KEY) is None


class VanishingBackend(local.LocalBackend):
    """The capture is deleted while its bundle is being put."""

    kube: FakeKube

    def put(self, *, key: str, path: Path, sha256: str) -> base.StoredObject:
        stored = super().put(key=key, path=path, sha256=sha256)
        self.kube.capture = None
        return stored


def test_a_capture_deleted_during_the_put_gets_its_object_deleted_again(tmp_path: Path) -> None:
    kube = FakeKube(_capture())
    backend = VanishingBackend(tmp_path / "store")
    backend.kube = kube
    store, sp, _sha = _owned_store(tmp_path, kube, backend)
    report = SpoolFlusher(store).flush_once()
    assert report is not None and report.discarded == [KEY] and report.uploaded == []
    assert backend.sha256(key=KEY) is None and sp.entries() == [] and kube.patches == []


def test_a_sent_bundle_is_named_in_its_captures_status(tmp_path: Path) -> None:
    kube = FakeKube(_capture())
    kube.conflicts = 1  # another writer got there first: read again, patch again
    store, sp, sha = _owned_store(tmp_path, kube)
    SpoolFlusher(store).flush_once()
    assert store.backend.sha256(key=KEY) == sha and sp.entries() == []
    [(path, body)] = kube.patches
    assert path == CAPTURE_PATH + "/status" and body["metadata"] == {"resourceVersion": "8"}
    first, second = body["status"]["pods"]
    assert "uploadKey" not in first and first["bundle"] == {
        "uri": store.backend.uri(key=KEY), "key": KEY, "sha256": sha, "sizeBytes": 8000}
    assert "stored later by the operator's spool flush" in first["message"]
    assert second == _capture()["status"]["pods"][1]  # the other pods' entries as they were


def test_the_store_lock_is_taken_per_bundle_not_for_the_backlog(tmp_path: Path) -> None:
    sp, _sha = _spooled(tmp_path)
    work = tmp_path / "work2"
    work.mkdir()
    second = work / "shop_api-2_20261205T060000Z.tar.gz"
    second.write_bytes(b"more")
    key2 = KEY.replace("api-1", "api-2")
    sp.add(key=key2, bundle=second, sha256=hashlib.sha256(b"more").hexdigest())
    free: list[bool] = []

    def wanted(_key: str) -> bool:  # asked between bundles: a delete could run right now
        free.append(store.lock.acquire(blocking=False))
        store.lock.release()
        return True

    store = delivering.Store(local.LocalBackend(tmp_path / "store"), "debugcap", "testbed", sp, wanted=wanted)
    report = SpoolFlusher(store).flush_once()
    assert report is not None and report.uploaded == [KEY, key2]
    assert free == [True, True, True, True]  # before and after each put


class BlockingBackend(local.LocalBackend):
    """A put that waits until the test lets it go."""

    entered: threading.Event
    release: threading.Event

    def put(self, *, key: str, path: Path, sha256: str) -> base.StoredObject:
        self.entered.set()
        assert self.release.wait(30), "the test never released the put"
        return super().put(key=key, path=path, sha256=sha256)


def test_close_returns_during_the_upload_in_flight_which_ends_and_sends_no_more(tmp_path: Path) -> None:
    sp, sha = _spooled(tmp_path)
    work = tmp_path / "work2"
    work.mkdir()
    second = work / "shop_api-2_20261205T060000Z.tar.gz"
    second.write_bytes(b"more")
    key2 = KEY.replace("api-1", "api-2")
    sp.add(key=key2, bundle=second, sha256=hashlib.sha256(b"more").hexdigest())
    backend = BlockingBackend(tmp_path / "store")
    backend.entered, backend.release = threading.Event(), threading.Event()
    ticks = iter([False])
    flusher = SpoolFlusher(delivering.Store(backend, "debugcap", "testbed", sp),
                           wait=lambda _s: next(ticks, True)).start()
    assert backend.entered.wait(30)
    closing = threading.Thread(target=flusher.close)
    closing.start()
    closing.join(30)
    assert not closing.is_alive() and flusher._stopped.is_set()  # returned while the put still runs
    assert flusher.thread.is_alive()
    backend.release.set()
    flusher.thread.join(30)
    assert not flusher.thread.is_alive()
    assert backend.sha256(key=KEY) == sha  # the upload in flight finished
    assert backend.sha256(key=key2) is None and [e.key for e in sp.entries()] == [key2]  # the next one waits


def test_close_only_asks_the_thread_to_stop(tmp_path: Path) -> None:
    """close() runs in kopf's cleanup: joining a flusher stuck in a slow S3 put there kept kopf
    past the pod's grace period, and the Lease was never released. Runtime.drain joins it, bounded."""
    store = delivering.Store(local.LocalBackend(tmp_path / "store"), "debugcap", "testbed",
                             spool.Spool(tmp_path / "spool"))
    flusher = SpoolFlusher(store)

    class Thread:
        def is_alive(self) -> bool:
            return True

        def join(self, timeout: float | None = None) -> None:
            raise AssertionError(f"close() joined the flusher (timeout {timeout})")

    flusher._thread = Thread()  # type: ignore[assignment]
    flusher.close()
    assert flusher._stopped.is_set()
    assert flusher.thread is flusher._thread
