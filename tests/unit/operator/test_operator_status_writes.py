"""Status writes of a running DebugCapture: changes made during a write go out together."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

import pytest

from debugcap.operator import handlers
from debugcap.operator.capturing import PodResult


def test_a_burst_of_pod_updates_costs_two_writes_and_the_last_carries_all(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[dict[str, Any]] = []

    def patch_status(_kube: Any, _namespace: str, _name: str, status: dict[str, Any]) -> None:
        sent.append(status)
        time.sleep(0.05)  # an API round trip, during which the other pods finish

    monkeypatch.setattr(handlers, "_patch_status", patch_status)
    rt: Any = SimpleNamespace(kube=None, status_locks={})
    body: Any = SimpleNamespace(metadata=SimpleNamespace(name="cap", namespace="ns", uid="u1", labels={}))
    run = handlers._Capture(rt, body, None)

    async def burst() -> None:
        async def pod_done(i: int) -> None:
            run.pods[f"p{i}"] = PodResult(name=f"p{i}", phase="Completed")
            await run.write()

        await asyncio.gather(*(pod_done(i) for i in range(10)))
        await run.write(phase="Completed")

    asyncio.run(burst())
    # One write for the first pod, one for the nine that finished while it was in flight, one
    # for the phase; one write per change would be eleven.
    assert len(sent) == 3, [len(s.get("pods", [])) for s in sent]
    assert len(sent[1]["pods"]) == 10
    assert sent[-1]["phase"] == "Completed" and len(sent[-1]["pods"]) == 10


def _capture(monkeypatch: pytest.MonkeyPatch, sent: list[tuple[float, dict[str, Any]]]) -> Any:
    def patch_status(_kube: Any, _namespace: str, _name: str, status: dict[str, Any]) -> None:
        sent.append((time.monotonic(), dict(status)))

    monkeypatch.setattr(handlers, "_patch_status", patch_status)
    rt: Any = SimpleNamespace(kube=None, status_locks={})
    body: Any = SimpleNamespace(metadata=SimpleNamespace(name="cap", namespace="ns", uid="u2", labels={}))
    return handlers._Capture(rt, body, None)


def test_pod_progress_written_at_most_every_interval_carries_what_happened_meanwhile(
        monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[tuple[float, dict[str, Any]]] = []
    run = _capture(monkeypatch, sent)

    async def pods_one_by_one() -> None:
        for i in range(4):
            run.pods[f"p{i}"] = PodResult(name=f"p{i}", phase="Completed")
            run.progress()
            await asyncio.sleep(0.05)  # each pod ends after the previous write has returned
        await asyncio.gather(*run._progress)

    asyncio.run(pods_one_by_one())
    # The first goes at once; the other three end within the interval and share one write.
    assert [len(s["pods"]) for _, s in sent] == [1, 4]
    assert sent[1][0] - sent[0][0] >= handlers.PROGRESS_WRITE_SECONDS - 0.01


def test_a_capture_level_write_goes_at_once_and_carries_waiting_pod_progress(
        monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[tuple[float, dict[str, Any]]] = []
    run = _capture(monkeypatch, sent)

    async def finish_while_progress_waits() -> float:
        run.pods["p0"] = PodResult(name="p0", phase="Running")
        await run.write()  # sent; the next progress write must wait out the interval
        run.pods["p0"] = PodResult(name="p0", phase="Completed")
        run.progress()
        await asyncio.sleep(0.01)
        t0 = time.monotonic()
        await run.write(phase="Completed")
        await asyncio.gather(*run._progress)
        return t0

    t0 = asyncio.run(finish_while_progress_waits())
    assert len(sent) == 2, [s for _, s in sent]
    when, last = sent[1]
    assert when - t0 < 0.1  # not held back by the pending progress write
    assert last["phase"] == "Completed" and last["pods"][0]["phase"] == "Completed"


def test_a_write_answered_with_a_deletion_timestamp_marks_the_capture_deleted() -> None:
    class Kube:
        def __init__(self, answer: dict[str, Any]) -> None:
            self.answer = answer

        def merge_patch(self, _path: str, _body: Any) -> dict[str, Any]:
            return self.answer

    gone: Any = Kube({"metadata": {"name": "cap", "deletionTimestamp": "2026-12-01T10:00:00Z"}})
    alive: Any = Kube({"metadata": {"name": "cap"}})
    assert handlers._patch_status(gone, "ns", "cap", {"phase": "Running"}) is True
    assert handlers._patch_status(alive, "ns", "cap", {"phase": "Running"}) is False

    rt: Any = SimpleNamespace(kube=gone, status_locks={})
    body: Any = SimpleNamespace(metadata=SimpleNamespace(name="cap", namespace="ns", uid="u3", labels={}))
    run = handlers._Capture(rt, body, None)
    asyncio.run(run.write(phase="Running"))
    assert run.deleted


def test_no_pod_of_a_deleted_capture_is_started(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[tuple[float, dict[str, Any]]] = []
    run = _capture(monkeypatch, sent)
    # No kube, store or executor: capturing anything would fail loudly.
    rt = handlers.Runtime(settings=None, kube=None, store=None, executor=None,  # type: ignore[arg-type]
                          slots=asyncio.Semaphore(1), ahead=asyncio.Semaphore(1), uploads=asyncio.Semaphore(1))
    run.rt = rt
    run.deleted = True

    async def capture_one() -> PodResult:
        result = await handlers._capture_one(rt, run, "api-1", None, NO_WINDOW)  # type: ignore[arg-type]
        await asyncio.gather(*run._progress)
        return result

    result = asyncio.run(capture_one())
    assert result.phase == "Failed" and "deleted" in result.message
    assert sent[-1][1]["pods"] == [{"name": "api-1", "phase": "Failed", "message": result.message}]


def test_a_pods_slot_is_free_for_the_next_pod_while_its_bundle_uploads(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    import threading

    from debugcap.operator import capturing

    events: list[str] = []
    upload_may_end = threading.Event()

    def collect_pod(_kube: Any, prepared: capturing.Prepared, *_a: Any, **_k: Any) -> capturing.Collected:
        pod = prepared.target.pod
        events.append(f"collect {pod}")
        return capturing.Collected(target=prepared.target, outcome=SimpleNamespace(),  # type: ignore[arg-type]
                                   out_dir=tmp_path / pod, collectors=(), clock=time.monotonic())

    def store_pod(_store: Any, collected: capturing.Collected, **_k: Any) -> PodResult:
        pod = collected.target.pod
        events.append(f"upload {pod} starts")
        if pod == "p1":
            assert upload_may_end.wait(10), "the next pod never started"
        events.append(f"upload {pod} ends")
        return PodResult(name=pod, phase="Completed")

    def collect_second(*args: Any, **kwargs: Any) -> capturing.Collected:
        got = collect_pod(*args, **kwargs)
        if got.target.pod == "p2":
            upload_may_end.set()
        return got

    monkeypatch.setattr(capturing, "prepare_pod", _prepare_pod)
    monkeypatch.setattr(capturing, "collect_pod", collect_second)
    monkeypatch.setattr(capturing, "store_pod", store_pod)
    monkeypatch.setattr(handlers, "_event", lambda *_a: None)  # kopf posts Events only inside its loop
    results = _capture_pods(monkeypatch, tmp_path, "p1", "p2")
    assert [r.phase for r in results] == ["Completed", "Completed"]
    # p2 was collected while p1's upload was still going: the slot does not cover the upload.
    assert events.index("collect p2") < events.index("upload p1 ends"), events


# A template without a window: the next pod is prepared as soon as a pod reports its window open.
NO_WINDOW: Any = SimpleNamespace(steps=())


def _capture_pods(monkeypatch: pytest.MonkeyPatch, tmp_path: Any, *pods: str) -> list[PodResult]:
    """``_capture_one`` for each pod of one capture, with one slot and one pod ahead, on a local
    store; status writes go nowhere."""
    from concurrent.futures import ThreadPoolExecutor

    from debugcap import delivering
    from debugcap.storage import local, spool

    monkeypatch.setattr(handlers, "_patch_status", lambda *_a: False)
    settings: Any = SimpleNamespace(work_dir=tmp_path, pprof_probe_seconds=5.0)
    store = delivering.Store(local.LocalBackend(tmp_path / "store"), "debugcap", "c", spool.Spool(tmp_path / "spool"))
    request: Any = SimpleNamespace(deadline_seconds=None)
    body: Any = SimpleNamespace(metadata=SimpleNamespace(name="cap", namespace="ns", uid="u-pods", labels={}))

    async def run_all() -> list[PodResult]:
        rt = handlers.Runtime(settings=settings, kube=None, store=store,  # type: ignore[arg-type]
                              executor=ThreadPoolExecutor(max_workers=3), slots=asyncio.Semaphore(1),
                              ahead=asyncio.Semaphore(1), uploads=asyncio.Semaphore(1))
        run = handlers._Capture(rt, body, None)
        try:
            return list(await asyncio.gather(*(handlers._capture_one(rt, run, p, request, NO_WINDOW) for p in pods)))
        finally:
            await asyncio.gather(*run._progress)
            rt.executor.shutdown()

    return asyncio.run(run_all())


def _prepare_pod(_kube: Any, _ns: str, pod: str, *_a: Any, **_k: Any) -> Any:
    from debugcap.operator import capturing

    nothing: Any = SimpleNamespace(close=lambda: None)
    return capturing.Prepared(target=SimpleNamespace(pod=pod, container="app", node="n"),  # type: ignore[arg-type]
                              settings=None, http=nothing, commands=nothing)  # type: ignore[arg-type]


def test_the_next_pod_is_prepared_once_a_window_opens_and_its_connections_close_after_its_capture(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    import threading

    from debugcap.operator import capturing

    events: list[str] = []
    lock = threading.Lock()

    def note(what: str) -> None:
        with lock:
            events.append(what)

    def prepare_pod(_kube: Any, _ns: str, pod: str, *_a: Any, **_k: Any) -> capturing.Prepared:
        note(f"prepare {pod}")
        conn: Any = SimpleNamespace(close=lambda: note(f"close {pod}"))
        return capturing.Prepared(target=SimpleNamespace(pod=pod, container="app", node="n"),  # type: ignore[arg-type]
                                  settings=None, http=conn, commands=conn)  # type: ignore[arg-type]

    def collect_pod(_kube: Any, prepared: capturing.Prepared, *_a: Any, window_open: Any, **_k: Any) -> PodResult:
        pod = prepared.target.pod
        note(f"collect {pod} starts")
        time.sleep(0.1)  # long enough for the event loop to prepare whatever it would
        note(f"window {pod} open")
        window_open()
        time.sleep(0.2)
        note(f"collect {pod} ends")
        return PodResult(name=pod, phase="Failed", message="no evidence")

    monkeypatch.setattr(capturing, "prepare_pod", prepare_pod)
    monkeypatch.setattr(capturing, "collect_pod", collect_pod)
    monkeypatch.setattr(handlers, "_event", lambda *_a: None)
    results = _capture_pods(monkeypatch, tmp_path, "p1", "p2", "p3", "p4")  # one slot, one pod ahead
    assert [r.name for r in results] == ["p1", "p2", "p3", "p4"]
    at = events.index
    # p2 was prepared while p1 held the slot, once p1's window was open...
    assert at("window p1 open") < at("prepare p2") < at("collect p1 ends"), events
    # ...and p3 only once p2's window was: one pod ahead, not all of them.
    assert at("window p2 open") < at("prepare p3") < at("collect p2 ends"), events
    # Each pod's connections (its shell sessions, then its port-forward) closed after its capture.
    for pod in ("p1", "p2", "p3", "p4"):
        assert events.count(f"close {pod}") == 2 and at(f"close {pod}") > at(f"collect {pod} ends"), events


def test_a_pod_that_cannot_be_resolved_gets_its_event_and_is_counted(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:

    from debugcap.operator import capturing, metrics

    gone = PodResult(name="api-1", phase="Failed", message='pod "api-1" not found in namespace "ns"')
    monkeypatch.setattr(capturing, "prepare_pod", lambda *_a, **_k: gone)
    events: list[tuple[Any, ...]] = []
    monkeypatch.setattr(handlers, "_event", lambda *a: events.append(a))
    failed_before = metrics.POD_CAPTURES.labels("Failed")._value.get()
    assert _capture_pods(monkeypatch, tmp_path, "api-1") == [gone]
    assert [(e[1], e[2]) for e in events] == [(False, "PodCaptureFailed")], events
    assert gone.message in events[0][3]
    assert metrics.POD_CAPTURES.labels("Failed")._value.get() == failed_before + 1


def test_the_next_pod_is_prepared_half_a_second_before_a_window_ends() -> None:
    def template(*seconds: int) -> Any:
        return SimpleNamespace(steps=[SimpleNamespace(window=True, params={"seconds": s}) for s in seconds])

    assert handlers._prepare_after(template(30, 5)) == 29.5
    assert handlers._prepare_after(template(1, 1)) == 0.5
    assert handlers._prepare_after(NO_WINDOW) == 0.0


def test_a_pod_cancelled_while_it_waits_for_a_slot_closes_its_connections_and_gives_its_place_back(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from debugcap.operator import capturing

    closed = threading.Event()
    prepared = threading.Event()

    def prepare_pod(_kube: Any, _ns: str, pod: str, *_a: Any, **_k: Any) -> capturing.Prepared:
        prepared.set()
        conn: Any = SimpleNamespace(close=closed.set)
        return capturing.Prepared(target=SimpleNamespace(pod=pod),  # type: ignore[arg-type]
                                  settings=None, http=conn, commands=conn)  # type: ignore[arg-type]

    monkeypatch.setattr(capturing, "prepare_pod", prepare_pod)
    monkeypatch.setattr(handlers, "_patch_status", lambda *_a: False)
    body: Any = SimpleNamespace(metadata=SimpleNamespace(name="cap", namespace="ns", uid="u8", labels={}))

    async def cancelled_in_the_queue() -> bool:
        # No free slot at all: the pod can only wait for one.
        rt = handlers.Runtime(settings=None, kube=None, store=None,  # type: ignore[arg-type]
                              executor=ThreadPoolExecutor(max_workers=2), slots=asyncio.Semaphore(0),
                              ahead=asyncio.Semaphore(1), uploads=asyncio.Semaphore(1))
        run = handlers._Capture(rt, body, None)
        task = asyncio.ensure_future(handlers._capture_one(rt, run, "api-1", SimpleNamespace(), NO_WINDOW))  # type: ignore[arg-type]
        while not prepared.is_set():
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        rt.executor.shutdown(wait=True)  # the close runs in the executor
        return rt.ahead.locked()

    assert asyncio.run(cancelled_in_the_queue()) is False
    assert closed.is_set()
