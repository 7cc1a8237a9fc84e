"""The operator's spool flusher: bundles spooled during a store outage are sent once the store
answers, without a new capture to carry them; a store still down leaves them spooled and the
thread alive. Ticks come from a scripted ``wait``, never from the clock."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path

from debugcap import delivering
from debugcap.errors import StorageError
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
    assert not flusher._thread.is_alive()
