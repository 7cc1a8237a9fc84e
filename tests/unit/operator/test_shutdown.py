"""Runtime.close and Runtime.drain at a leader's stop: close returns at once (kopf's cleanup runs
inside the pod's grace period), drain waits, under one deadline, for every thread that may still
write a status or upload a bundle before the Lease is handed over."""

from __future__ import annotations

import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from debugcap import delivering
from debugcap.operator.runtime import Runtime
from debugcap.operator.spool_flushing import SpoolFlusher
from debugcap.storage import local, spool


def _runtime(executor: ThreadPoolExecutor, urgent: ThreadPoolExecutor, flusher: SpoolFlusher | None = None,
             order: list[str] | None = None) -> Runtime:
    order = order if order is not None else []

    def close_pods() -> None:
        order.append("pods")
        urgent.shutdown(wait=False, cancel_futures=True)

    pods = SimpleNamespace(urgent_executor=urgent, close=close_pods)
    kube = SimpleNamespace(close=lambda: None)
    return Runtime(config=None, kube=kube, store=None, executor=executor, pods=pods,  # type: ignore[arg-type]
                   flusher=flusher)


def test_drain_waits_for_an_urgent_capture_in_flight() -> None:
    """Triggered captures run on the urgent executor: the Lease was released while one uploaded."""
    gate, started = threading.Event(), threading.Event()
    urgent = ThreadPoolExecutor(max_workers=2)
    urgent.submit(lambda: (started.set(), gate.wait(30)))
    assert started.wait(30)
    rt = _runtime(ThreadPoolExecutor(max_workers=1), urgent)
    rt.close()
    try:
        assert rt.drain(0.0) is False
    finally:
        gate.set()
    assert rt.drain(30) is True


class _SlowBackend(local.LocalBackend):
    entered: threading.Event
    release: threading.Event

    def put(self, **kwargs: Any) -> Any:
        self.entered.set()
        assert self.release.wait(30), "the test never released the put"
        return super().put(**kwargs)


def test_close_returns_during_a_slow_spool_upload_and_drain_waits_for_it(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    bundle = work / "shop_api-1_20261205T060000Z.tar.gz"
    bundle.write_bytes(b"bundle")
    sp = spool.Spool(tmp_path / "spool")
    sp.add(key="debugcap/testbed/shop/api-1/shop_api-1_20261205T060000Z.tar.gz", bundle=bundle,
           sha256=hashlib.sha256(b"bundle").hexdigest())
    backend = _SlowBackend(tmp_path / "store")
    backend.entered, backend.release = threading.Event(), threading.Event()
    ticks = iter([False])
    flusher = SpoolFlusher(delivering.Store(backend, "debugcap", "testbed", sp),
                           wait=lambda _s: next(ticks, True)).start()
    assert backend.entered.wait(30)
    rt = _runtime(ThreadPoolExecutor(max_workers=1), ThreadPoolExecutor(max_workers=1), flusher)
    closing = threading.Thread(target=rt.close)
    closing.start()
    closing.join(30)
    try:
        assert not closing.is_alive()  # close() did not wait on the put
        assert rt.drain(0.0) is False  # the upload still runs: step_down keeps the Lease
    finally:
        backend.release.set()
    assert rt.drain(30) is True


def test_close_shuts_the_executors_before_stopping_the_flusher(tmp_path: Path) -> None:
    order: list[str] = []
    executor = ThreadPoolExecutor(max_workers=1)
    real_shutdown = executor.shutdown

    def shutdown(wait: bool = True, *, cancel_futures: bool = False) -> None:
        order.append(f"executor cancel_futures={cancel_futures}")
        real_shutdown(wait=wait, cancel_futures=cancel_futures)

    executor.shutdown = shutdown  # type: ignore[method-assign]
    store = delivering.Store(local.LocalBackend(tmp_path / "store"), "debugcap", "testbed",
                             spool.Spool(tmp_path / "spool"))
    flusher = SpoolFlusher(store)
    flusher.close = lambda: order.append("flusher")  # type: ignore[method-assign]
    rt = _runtime(executor, ThreadPoolExecutor(max_workers=1), flusher, order)
    rt.close()
    assert order == ["executor cancel_futures=True", "pods", "flusher"]
    assert rt.drain(0.0) is True  # a flusher never started has nothing to wait for
