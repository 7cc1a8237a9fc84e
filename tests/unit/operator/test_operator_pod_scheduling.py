"""PodScheduler: slots, per-pod locks, pods prepared ahead, uploads apart from slots.

Cases: no pod of a deleted capture is asked for anything; a pod's slot is free for the next pod
while its bundle uploads; the next pod is prepared once a window opens, one pod ahead, and each
pod's connections close after its capture; a pod that cannot be resolved is reported; a pod past
its deadline is failed and its late bundle dropped; a pod cancelled while it waits for a slot
closes its connections and gives its place back; two captures of one pod collect one after the
other (pod lock) and start in different seconds (fake clock); uploads keep to their limit; the
next pod is prepared half a second before a window ends; a bundle is analysed after its upload,
once a status lists it, outside the upload limit and one at a time; a pod with nothing to analyse
(refused, spooled, Failed) does not wait for another pod's analysis, and a refused pod's bundle
stays when its task is cancelled; a capture being deleted does not analyse; a pod whose reporting
raises still ends its capture; the upload is told its key is written only after a write carrying
it succeeded, a failed one being tried again a bounded number of times.

The pod work is a fake :class:`PodWork`; ordering is asserted with events, never with timing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import kopf
import operator_fakes
import pytest

from debugcap.analysis import model
from debugcap.operator import captures, capturing, health, metrics, pod_scheduling
from debugcap.operator.pod_scheduling import PodScheduler
from debugcap.operator.results import PodResult
from debugcap.operator.status_writing import StatusWriter

GUARD = 10.0  # seconds a thread waits for an event that must come; reached only when a test fails


class Work:
    """A fake pod work that notes what happened, in order; each step can be replaced."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.events: list[str] = []
        self._lock = threading.Lock()
        self.prepared = {f"p{i}": threading.Event() for i in range(1, 6)}

    def note(self, what: str) -> None:
        with self._lock:
            self.events.append(what)

    def at(self, what: str) -> int:
        return self.events.index(what)

    def prepare(self, pod: str) -> capturing.Prepared | PodResult:
        self.note(f"prepare {pod}")
        self.prepared[pod].set()
        conn: Any = SimpleNamespace(close=lambda: self.note(f"close {pod}"))
        return capturing.Prepared(target=SimpleNamespace(namespace="ns", pod=pod, container="app", node="n"),  # type: ignore[arg-type]
                                  settings=None, http=conn, commands=conn)  # type: ignore[arg-type]

    def planned_key(self, pod: str, started: datetime) -> str:
        return f"k/{pod}.tar.gz"

    def collect(self, prepared: capturing.Prepared, *, started: datetime, abandoned: threading.Event,
                window_open: Callable[[], None]) -> capturing.Collected | PodResult:
        pod = prepared.target.pod
        self.note(f"collect {pod}")
        return capturing.Collected(target=prepared.target, outcome=SimpleNamespace(),  # type: ignore[arg-type]
                                   out_dir=self.tmp_path / pod, collectors=(), clock=0.0)

    def store(self, collected: capturing.Collected, *, key_sent: threading.Event | None) -> PodResult:
        self.note(f"store {collected.target.pod}")
        return PodResult(name=collected.target.pod, phase="Completed", key=f"k/{collected.target.pod}.tar.gz")

    def assess(self, collected: capturing.Collected, stored: PodResult, *, analyse: bool) -> PodResult:
        self.note(f"{'assess' if analyse else 'skip'} {collected.target.pod}")
        return stored


class MustNotBeCalled:
    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"Must not be called: {name}")


def _writer(work: Work | None = None) -> StatusWriter:
    async def send(status: dict[str, Any]) -> bool:
        if work is not None:  # which pods a write listed as stored
            work.note("write " + " ".join(p["name"] for p in status.get("pods") or [] if p.get("bundle")))
        return False

    return StatusWriter(send, what="ns/cap", interval=0.0)  # every progress write at once


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(max_workers=8)
    yield pool
    pool.shutdown(wait=True)


def _capture(executor: ThreadPoolExecutor, work: Any, *pods: str, slots: int = 1,
             done: list[PodResult] | None = None, grace: float = 0.0,
             on_done: Callable[[PodResult], None] | None = None, **kwargs: Any) -> list[PodResult]:
    """Every pod of one capture through one scheduler of ``slots`` slots (and places ahead)."""
    async def run_all() -> list[PodResult]:
        scheduler, run = PodScheduler(slots, executor, deadline_grace=grace), _writer()
        report = on_done or (done if done is not None else []).append
        got = await asyncio.gather(*(scheduler.capture(run, "ns", p, work, on_done=report, **kwargs) for p in pods))
        await run.settle()
        return list(got)

    return asyncio.run(run_all())


def test_no_pod_of_a_deleted_capture_is_asked_for_anything(executor: ThreadPoolExecutor) -> None:
    done: list[PodResult] = []

    async def deleted() -> tuple[PodResult, StatusWriter]:
        run = _writer()
        run.deleted = True
        result = await PodScheduler(1, executor).capture(run, "ns", "api-1", MustNotBeCalled(), on_done=done.append)
        await run.settle()
        return result, run

    result, run = asyncio.run(deleted())
    assert result.phase == "Failed" and "deleted before" in result.message
    assert run.status["pods"] == [result.as_status()]
    assert done == []  # nothing was asked of the pod: no Event, not counted


def test_a_pods_slot_is_free_for_the_next_pod_while_its_bundle_uploads(
        executor: ThreadPoolExecutor, tmp_path: Path) -> None:
    work = Work(tmp_path)
    upload_may_end = threading.Event()
    store, collect = work.store, work.collect

    def slow_store(collected: capturing.Collected, **kwargs: Any) -> PodResult:
        if collected.target.pod == "p1":
            assert upload_may_end.wait(GUARD), "the next pod was not collected while this one uploaded"
        return store(collected, **kwargs)

    def collect_then_free(prepared: capturing.Prepared, **kwargs: Any) -> capturing.Collected | PodResult:
        got = collect(prepared, **kwargs)
        if prepared.target.pod == "p2":
            upload_may_end.set()
        return got

    work.store, work.collect = slow_store, collect_then_free  # type: ignore[method-assign]
    results = _capture(executor, work, "p1", "p2")
    assert [r.phase for r in results] == ["Completed", "Completed"]
    assert work.at("collect p2") < work.at("store p1"), work.events


def test_the_next_pod_is_prepared_once_a_window_opens_and_its_connections_close_after_its_capture(
        executor: ThreadPoolExecutor, tmp_path: Path) -> None:
    work = Work(tmp_path)

    def collect(prepared: capturing.Prepared, *, window_open: Callable[[], None], **_: Any) -> PodResult:
        pod = prepared.target.pod
        work.note(f"collect {pod} starts")
        following = f"p{int(pod[1:]) + 1}"
        # Had the next pod a place ahead already, it would be prepared by now (this only makes
        # a missing limit more likely to show; the test passes the same on any machine).
        work.prepared[following].wait(0.05)
        work.note(f"window {pod} open")
        window_open()
        if following != "p5":  # p4 is the last: nothing follows it
            assert work.prepared[following].wait(GUARD), f"{following} was not prepared during {pod}'s window"
        work.note(f"collect {pod} ends")
        return PodResult(name=pod, phase="Failed", message="no evidence")

    work.collect = collect  # type: ignore[method-assign,assignment]
    results = _capture(executor, work, "p1", "p2", "p3", "p4")  # one slot, one pod ahead
    assert [r.name for r in results] == ["p1", "p2", "p3", "p4"]
    at = work.at
    for pod, following in (("p1", "p2"), ("p2", "p3"), ("p3", "p4")):
        # The next pod was prepared while this one held the slot, once its window was open.
        assert at(f"window {pod} open") < at(f"prepare {following}") < at(f"collect {pod} ends"), work.events
    # Each pod's connections (its shell sessions, then its port-forward) closed after its capture.
    executor.shutdown(wait=True)  # the closes run in the executor, after the pod's result
    for pod in ("p1", "p2", "p3", "p4"):
        assert work.events.count(f"close {pod}") == 2 and at(f"close {pod}") > at(f"collect {pod} ends")


def test_two_captures_of_one_pod_collect_one_after_the_other_even_with_slots_free(
        executor: ThreadPoolExecutor, tmp_path: Path) -> None:
    work = Work(tmp_path)
    started = threading.Event()
    collect = work.collect

    def collect_noting(prepared: capturing.Prepared, **kwargs: Any) -> capturing.Collected | PodResult:
        work.note("collect starts")
        if started.is_set():
            work.note("overlap")
        started.set()
        # Without the pod lock the other capture would start now (this only gives it the chance).
        threading.Event().wait(0.05)
        started.clear()
        work.note("collect ends")
        return collect(prepared, **kwargs)

    work.collect = collect_noting  # type: ignore[method-assign]

    async def twice() -> list[PodResult]:
        scheduler = PodScheduler(4, executor, clock=operator_fakes.FakeClock(auto=True))  # no second to wait
        run = _writer()
        return list(await asyncio.gather(scheduler.capture(run, "ns", "p1", work),
                                         scheduler.capture(_writer(), "ns", "p1", work)))

    assert [r.phase for r in asyncio.run(twice())] == ["Completed", "Completed"]
    assert [e for e in work.events if e.startswith("collect") or e == "overlap"] == [
        "collect starts", "collect ends", "collect p1", "collect starts", "collect ends", "collect p1"]


def test_bundles_upload_no_more_at_once_than_the_limit(executor: ThreadPoolExecutor, tmp_path: Path) -> None:
    work = Work(tmp_path)
    uploading: list[str] = []
    most = [0]
    lock = threading.Lock()
    store = work.store

    def store_counting(collected: capturing.Collected, **kwargs: Any) -> PodResult:
        with lock:
            uploading.append(collected.target.pod)
            most[0] = max(most[0], len(uploading))
        threading.Event().wait(0.02)  # gives a second upload the chance to overlap
        with lock:
            uploading.remove(collected.target.pod)
        return store(collected, **kwargs)

    work.store = store_counting  # type: ignore[method-assign]

    async def three() -> None:
        scheduler, run = PodScheduler(3, executor, uploads=1), _writer()
        await asyncio.gather(*(scheduler.capture(run, "ns", p, work) for p in ("p1", "p2", "p3")))

    asyncio.run(three())
    assert most[0] == 1 and work.events.count("store p1") == 1


def test_a_pod_that_cannot_be_resolved_is_reported_and_nothing_else_is_asked(
        executor: ThreadPoolExecutor, tmp_path: Path) -> None:
    gone = PodResult(name="api-1", phase="Failed", message='pod "api-1" not found in namespace "ns"')
    work = Work(tmp_path)
    work.prepare = lambda pod: gone  # type: ignore[method-assign,assignment,return-value]
    done: list[PodResult] = []
    assert _capture(executor, work, "api-1", done=done) == [gone]
    assert done == [gone]  # gets its Event and is counted
    assert work.events == []  # neither collected nor stored


def test_a_pod_past_its_deadline_fails_and_its_late_bundle_is_dropped(
        executor: ThreadPoolExecutor, tmp_path: Path) -> None:
    work = Work(tmp_path)
    collect = work.collect

    def collect_until_abandoned(prepared: capturing.Prepared, *, abandoned: threading.Event,
                                **kwargs: Any) -> capturing.Collected | PodResult:
        assert abandoned.wait(GUARD), "the pod was never abandoned"
        (tmp_path / prepared.target.pod).mkdir()  # its scratch bundle, finished too late
        return collect(prepared, abandoned=abandoned, **kwargs)

    work.collect = collect_until_abandoned  # type: ignore[method-assign]
    [result] = _capture(executor, work, "p1", deadline_seconds=0.001)
    assert result.phase == "Failed" and "deadlineSeconds" in result.message
    assert "store p1" not in work.events
    assert not (tmp_path / "p1").exists()


def test_a_pod_cancelled_while_it_waits_for_a_slot_closes_its_connections_and_gives_its_place_back(
        executor: ThreadPoolExecutor, tmp_path: Path) -> None:
    work = Work(tmp_path)

    async def cancelled_in_the_queue() -> bool:
        scheduler = PodScheduler(1, executor)
        await scheduler.slots.acquire()  # no free slot at all: the pod can only wait for one
        task = asyncio.ensure_future(scheduler.capture(_writer(), "ns", "p1", work))
        while not work.prepared["p1"].is_set():
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        executor.shutdown(wait=True)  # the close runs in the executor
        return scheduler.ahead.locked()

    assert asyncio.run(cancelled_in_the_queue()) is False
    assert work.events.count("close p1") == 2


def test_two_captures_of_one_pod_start_in_different_seconds_and_other_pods_do_not_wait() -> None:
    clock = operator_fakes.FakeClock()  # starts at 10:15:00.25

    async def starts() -> tuple[datetime, datetime, datetime]:
        scheduler = PodScheduler(1, ThreadPoolExecutor(max_workers=1), clock=clock)
        first = await scheduler.distinct_start("shop", "api-1")
        other_pod = await scheduler.distinct_start("shop", "api-2")
        assert clock.asked == []  # another pod does not wait
        again = asyncio.ensure_future(scheduler.distinct_start("shop", "api-1"))
        await clock.parked()
        clock.advance(clock.asked[-1])
        return first, other_pod, await again

    first, other_pod, second = asyncio.run(starts())
    assert first == other_pod == clock.start
    assert clock.asked == [0.75]  # to the next whole second, not a whole second more
    assert second == clock.start.replace(microsecond=0).replace(second=1)


def test_the_next_pod_is_prepared_half_a_second_before_a_window_ends() -> None:
    def template(*seconds: int) -> Any:
        return SimpleNamespace(steps=[SimpleNamespace(window=True, params={"seconds": s}) for s in seconds])

    assert pod_scheduling.prepare_after(template(30, 5)) == 29.5
    assert pod_scheduling.prepare_after(template(1, 1)) == 0.5
    assert pod_scheduling.prepare_after(SimpleNamespace(steps=())) == 0.0  # type: ignore[arg-type]


def test_a_bundle_is_analysed_after_its_upload_once_listed_outside_the_upload_limit_one_at_a_time(
        executor: ThreadPoolExecutor, tmp_path: Path) -> None:
    """An operator killed while analysing (the memory-hungry part) must lose no evidence: the
    bundle is stored and listed first. Analyses run one at a time and hold no upload: p2 uploads
    while p1's analysis waits, and p2's analysis waits for p1's."""
    work = Work(tmp_path)
    p1_analysing, p2_analysing, p2_stored = threading.Event(), threading.Event(), threading.Event()
    store, assess, collect = work.store, work.assess, work.collect
    analysing: list[str] = []

    def collect_late(prepared: capturing.Prepared, **kwargs: Any) -> capturing.Collected | PodResult:
        if prepared.target.pod == "p2":  # so its upload comes while p1's analysis runs
            assert p1_analysing.wait(GUARD), "p1 was never analysed"
        return collect(prepared, **kwargs)

    def store_noting(collected: capturing.Collected, **kwargs: Any) -> PodResult:
        got = store(collected, **kwargs)
        if collected.target.pod == "p2":
            p2_stored.set()
        return got

    def slow_assess(collected: capturing.Collected, stored: PodResult, **kwargs: Any) -> PodResult:
        analysing.append(collected.target.pod)
        if collected.target.pod == "p1":
            p1_analysing.set()
            assert p2_stored.wait(GUARD), "p2 was not uploaded while p1 was analysed"
            # Were analyses not one at a time, p2's would begin now (this only gives it the chance).
            p2_analysing.wait(0.2)
        else:
            p2_analysing.set()
        assert len(analysing) == 1, f"analyses at once: {analysing}"
        got = assess(collected, stored, **kwargs)
        analysing.remove(collected.target.pod)
        return got

    work.store, work.assess, work.collect = store_noting, slow_assess, collect_late  # type: ignore[method-assign]

    async def two() -> list[PodResult]:
        scheduler, run = PodScheduler(2, executor, uploads=1), _writer(work)
        got = await asyncio.gather(*(scheduler.capture(run, "ns", p, work) for p in ("p1", "p2")))
        await run.settle()
        return list(got)

    assert [r.phase for r in asyncio.run(two())] == ["Completed", "Completed"]
    at = work.at
    for pod in ("p1", "p2"):
        listed = next(i for i, e in enumerate(work.events) if e.startswith("write") and pod in e.split())
        assert at(f"store {pod}") < listed < at(f"assess {pod}"), work.events
    assert at("store p2") < at("assess p2") and at("assess p1") < at("assess p2"), work.events


REFUSED = {"phase": "Failed", "key": "", "upload_key": "k/p2.tar.gz"}  # left in place for a person
SPOOLED = {"phase": "PartiallyFailed", "key": "", "upload_key": "k/p2.tar.gz"}  # the spool has it
FAILED = {"phase": "Failed", "key": "k/p2.tar.gz"}  # stored, but nothing collected to read


@pytest.mark.parametrize("outcome", [REFUSED, SPOOLED, FAILED], ids=["refused", "spooled", "failed"])
def test_a_pod_with_nothing_to_analyse_does_not_wait_for_another_pods_analysis(
        executor: ThreadPoolExecutor, tmp_path: Path, outcome: dict[str, str]) -> None:
    """Its status, Event and clean-up came only once p1's long analysis ended."""
    work = Work(tmp_path)
    store, assess = work.store, work.assess
    p2_done = threading.Event()

    def store_p2(collected: capturing.Collected, **kwargs: Any) -> PodResult:
        got = store(collected, **kwargs)
        return PodResult(name="p2", **outcome) if collected.target.pod == "p2" else got

    def long_assess(collected: capturing.Collected, stored: PodResult, **kwargs: Any) -> PodResult:
        if collected.target.pod == "p1":
            assert p2_done.wait(GUARD), "p2 waited for p1's analysis"
        return assess(collected, stored, **kwargs)

    work.store, work.assess = store_p2, long_assess  # type: ignore[method-assign]
    done: list[PodResult] = []

    def note_done(result: PodResult) -> None:
        done.append(result)
        if result.name == "p2":
            p2_done.set()

    _capture(executor, work, "p1", "p2", slots=2, on_done=note_done)
    assert [r.name for r in done] == ["p2", "p1"]
    assert "skip p2" in work.events and "assess p1" in work.events


class Queue:
    """An analysis limit never free (another pod's analysis that does not end); notes who queued."""

    def __init__(self, reached: asyncio.Event) -> None:
        self.reached, self.free = reached, asyncio.Semaphore(0)

    async def __aenter__(self) -> None:
        self.reached.set()
        await self.free.acquire()

    async def __aexit__(self, *_exc: object) -> None:
        self.free.release()


def test_a_refused_pods_bundle_stays_when_its_capture_is_cancelled(
        executor: ThreadPoolExecutor, tmp_path: Path) -> None:
    """store_pod leaves a bundle it could neither store nor spool where the message says, for a
    person: cancelling the pod's task afterwards (the operator stopping) must not delete it."""
    work = Work(tmp_path)
    bundle = tmp_path / "p2" / "bundle.tar.gz"
    bundle.parent.mkdir()
    bundle.write_bytes(b"evidence")
    go_on = threading.Event()

    def refused(collected: capturing.Collected, **_kwargs: Any) -> PodResult:
        return PodResult(name="p2", **REFUSED)

    async def cancelled() -> None:
        loop, reached = asyncio.get_running_loop(), asyncio.Event()

        def held_assess(collected: capturing.Collected, stored: PodResult, **kwargs: Any) -> PodResult:
            loop.call_soon_threadsafe(reached.set)
            assert go_on.wait(GUARD)
            return stored

        work.store, work.assess = refused, held_assess  # type: ignore[method-assign]
        scheduler = PodScheduler(1, executor)
        scheduler.analyses = Queue(reached)  # type: ignore[assignment]
        task = asyncio.create_task(scheduler.capture(_writer(), "ns", "p2", work))
        await reached.wait()  # queued for an analysis, or in assess
        task.cancel()
        go_on.set()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancelled())
    assert bundle.read_bytes() == b"evidence"


def test_a_capture_being_deleted_does_not_analyse(executor: ThreadPoolExecutor, tmp_path: Path) -> None:
    work = Work(tmp_path)
    store = work.store

    async def deleted_after_the_upload() -> PodResult:
        scheduler, run = PodScheduler(1, executor), _writer()

        def store_then_delete(collected: capturing.Collected, **kwargs: Any) -> PodResult:
            run.deleted = True  # the delete handler removes the bundle; an analysis would be wasted
            return store(collected, **kwargs)

        work.store = store_then_delete  # type: ignore[method-assign]
        return await scheduler.capture(run, "ns", "p1", work)

    asyncio.run(deleted_after_the_upload())
    assert "skip p1" in work.events and "assess p1" not in work.events


def test_a_pod_whose_reporting_fails_still_ends_its_capture(
        executor: ThreadPoolExecutor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """on_done runs inside the pod's capture: before, a KeyError from a gauge (prometheus-client
    before 0.22) aborted the gather and failed the whole capture."""
    secret = "hunter2hunter2hunter2"

    def broken(*_args: Any, **_kwargs: Any) -> None:
        raise KeyError(f"token=https://admin:{secret}@db.internal")

    monkeypatch.setattr(metrics.POD_HEALTH, "record", broken)
    monkeypatch.setattr(kopf, "event", broken)  # the Events fail too
    work = Work(tmp_path)
    assessed = health.judge([model.Finding(100, "goroutine-leak", "main.leak", "parked")], {}, generation=1,
                            now=operator_fakes.WHEN)
    work.assess = lambda collected, stored, **_: dataclasses.replace(stored, health=assessed)  # type: ignore[method-assign]
    body = kopf.Body({"apiVersion": "debugcap.io/v1alpha1", "kind": "DebugCapture",
                      "metadata": {"name": "cap", "namespace": "ns"}})
    results = _capture(executor, work, "p1", "p2", on_done=functools.partial(captures.pod_done, body, {}))
    assert [r.phase for r in results] == ["Completed", "Completed"]
    failures = [r.getMessage() for r in caplog.records if "reporting its" in r.getMessage()]
    assert len(failures) == 4 and all("KeyError" in m for m in failures)  # capture and health, per pod
    assert not any(secret in r.getMessage() for r in caplog.records)


def _key_capture(executor: ThreadPoolExecutor, tmp_path: Path,
                 failures: int) -> tuple[list[str], list[str], bool, list[float]]:
    """One pod through a writer whose first ``failures`` sends fail: the writes (``failed`` or
    ``ok``, with the pod's uploadKey), those made when the upload stopped waiting, whether the
    upload was told the key was written, and the waits asked of the clock."""
    writes: list[str] = []
    tries_over = threading.Event()
    seen: dict[str, Any] = {}

    async def send(status: dict[str, Any]) -> bool:
        keys = ",".join(p.get("uploadKey", "-") for p in status.get("pods") or [])
        ok = len(writes) >= failures
        writes.append(f"{'ok' if ok else 'failed'} {keys}")
        if len(writes) == pod_scheduling.KEY_WRITE_TRIES:
            tries_over.set()
        if not ok:
            raise kopf.TemporaryError("the API server is restarting")
        return False

    work = Work(tmp_path)

    def store(collected: capturing.Collected, *, key_sent: threading.Event | None) -> PodResult:
        assert key_sent is not None
        if failures >= pod_scheduling.KEY_WRITE_TRIES:  # nothing will set it: wait for the last try
            assert tries_over.wait(GUARD)
        seen["sent"] = key_sent.wait(GUARD if failures < pod_scheduling.KEY_WRITE_TRIES else 0)
        seen["writes"] = list(writes)
        return PodResult(name=collected.target.pod, phase="Completed", key="k/p1.tar.gz")

    work.store = store  # type: ignore[method-assign]

    clock = operator_fakes.FakeClock(auto=True)  # the waits between tries pass at once

    async def run_one() -> None:
        scheduler, run = PodScheduler(1, executor, clock=clock), StatusWriter(send, what="ns/cap", interval=0.0)
        await scheduler.capture(run, "ns", "p1", work)
        await run.settle()

    asyncio.run(run_one())
    return writes, seen["writes"], seen["sent"], clock.asked


def test_a_failed_status_write_naming_the_key_is_tried_again_before_the_upload(
        executor: ThreadPoolExecutor, tmp_path: Path) -> None:
    """The upload waits for a write naming its key that succeeded, not one that merely ended."""
    writes, before_upload, sent, waits = _key_capture(executor, tmp_path, failures=1)
    assert sent and waits == [pod_scheduling.KEY_WRITE_WAITS[0]]
    assert before_upload == ["failed k/p1.tar.gz", "ok k/p1.tar.gz"]  # the retry carried the key
    assert writes[-1] == "ok -"  # the final result (stored: bundle, no uploadKey)


def test_an_api_server_back_after_20_s_still_names_the_key_before_the_upload_gives_up(
        executor: ThreadPoolExecutor, tmp_path: Path) -> None:
    """Writes at 0, 5 and 15 s fail; the one at 25 s names the key, inside the upload's 60 s."""
    writes, before_upload, sent, waits = _key_capture(executor, tmp_path, failures=3)
    assert sent and before_upload == ["failed k/p1.tar.gz"] * 3 + ["ok k/p1.tar.gz"]
    assert sum(waits) == 25 < capturing.KEY_SENT_SECONDS


def test_an_upload_key_no_write_could_name_is_never_reported_written(
        executor: ThreadPoolExecutor, tmp_path: Path) -> None:
    tries = pod_scheduling.KEY_WRITE_TRIES
    writes, before_upload, sent, waits = _key_capture(executor, tmp_path, failures=tries)
    assert waits == list(pod_scheduling.KEY_WRITE_WAITS)
    assert sum(waits) < capturing.KEY_SENT_SECONDS  # the last try answers before the upload gives up
    assert not sent  # store_pod then keeps the bundle out of the store (test_operator_capturing)
    assert before_upload == ["failed k/p1.tar.gz"] * tries  # bounded: no more tries than that
