"""PodScheduler's urgent path: the capture a DebugTrigger fires on memory, racing an OOM kill.

Cases: an urgent pod is prepared, collected, stored and analysed while another capture of the
same pod holds its lock, other pods hold every slot, place ahead and upload, and long captures
hold every thread of the shared executor; its work runs on the urgent executor's threads; the
capture of the same pod queued behind the lock still waits for it. Urgent pods keep to their own
limit of places. An urgent pod of a capture deleted before its turn is asked for nothing. An
urgent capture of a pod starts in another second than the pod's last capture.

The pod work is a fake :class:`PodWork`; ordering is asserted with events, never with timing.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import operator_fakes

from debugcap.operator import capturing
from debugcap.operator.pod_scheduling import PodScheduler
from debugcap.operator.results import PodResult
from debugcap.operator.status_writing import StatusWriter

GUARD = 10.0  # seconds a wait for what must come may take; reached only when a test fails


class Work:
    """A fake pod work noting each step, and the thread it ran on."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.events: list[str] = []
        self.threads: set[str] = set()
        self.started: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def note(self, what: str) -> None:
        with self._lock:
            self.events.append(what)
            self.threads.add(threading.current_thread().name)

    def prepare(self, pod: str) -> capturing.Prepared | PodResult:
        self.note(f"prepare {pod}")
        conn: Any = SimpleNamespace(close=lambda: None)
        return capturing.Prepared(target=SimpleNamespace(namespace="ns", pod=pod, container="app", node="n"),  # type: ignore[arg-type]
                                  settings=None, http=conn, commands=conn)  # type: ignore[arg-type]

    def planned_key(self, pod: str, started: datetime) -> str:
        return f"k/{pod}.tar.gz"

    def collect(self, prepared: capturing.Prepared, *, started: datetime, abandoned: threading.Event,
                window_open: Callable[[], None]) -> capturing.Collected | PodResult:
        self.note(f"collect {prepared.target.pod}")
        self.started[prepared.target.pod] = started
        return capturing.Collected(target=prepared.target, outcome=SimpleNamespace(),  # type: ignore[arg-type]
                                   out_dir=self.tmp_path / prepared.target.pod, collectors=(), clock=0.0)

    def store(self, collected: capturing.Collected, *, key_sent: threading.Event | None) -> PodResult:
        self.note(f"store {collected.target.pod}")
        return PodResult(name=collected.target.pod, phase="Completed", key=f"k/{collected.target.pod}.tar.gz")

    def assess(self, collected: capturing.Collected, stored: PodResult, *, analyse: bool) -> PodResult:
        self.note(f"assess {collected.target.pod}")
        return stored


def _writer() -> StatusWriter:
    async def send(_status: dict[str, Any]) -> bool:
        return False

    return StatusWriter(send, what="ns/cap", interval=0.0)


def test_an_urgent_pod_is_captured_while_its_lock_every_slot_and_the_shared_executor_are_held(
        tmp_path: Path) -> None:
    work = Work(tmp_path)
    shared, sweep_ends = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shared"), threading.Event()
    shared.submit(sweep_ends.wait, GUARD)  # a long capture holds the shared executor's one thread

    async def urgent_beside_a_sweep() -> tuple[PodResult, set[str], PodResult]:
        scheduler = PodScheduler(2, shared, uploads=1, urgent=1, clock=operator_fakes.FakeClock(auto=True))
        lock = scheduler.pod_lock("ns", "api-1")
        await lock.acquire()  # a 30 s sweep of the same pod
        held = (scheduler.slots, scheduler.slots, scheduler.ahead, scheduler.ahead, scheduler.uploads)
        for limit in held:
            await limit.acquire()  # other pods hold every slot, place ahead and upload
        queued = asyncio.ensure_future(scheduler.capture(_writer(), "ns", "api-1", work))  # a regular one
        urgent = await asyncio.wait_for(scheduler.capture(_writer(), "ns", "api-1", work, urgent=True), GUARD)
        assert work.events == ["prepare api-1", "collect api-1", "store api-1", "assess api-1"]  # not the queued one
        threads = set(work.threads)
        lock.release()
        for limit in held:
            limit.release()
        sweep_ends.set()
        regular = await asyncio.wait_for(queued, GUARD)  # the lock's, once the sweep let it go
        scheduler.close()
        return urgent, threads, regular

    try:
        urgent, threads, regular = asyncio.run(urgent_beside_a_sweep())
    finally:
        sweep_ends.set()
        shared.shutdown(wait=True)
    assert (urgent.phase, urgent.key, regular.phase) == ("Completed", "k/api-1.tar.gz", "Completed")
    # None of the shared executor's: the urgent executor's, and the collection's own thread.
    assert threads and not any(t.startswith("shared") for t in threads), threads
    assert work.events.count("collect api-1") == 2


def test_urgent_pods_keep_to_their_own_places(tmp_path: Path) -> None:
    work = Work(tmp_path)
    collecting: list[str] = []
    most = [0]
    lock = threading.Lock()
    collect = work.collect

    def collect_counting(prepared: capturing.Prepared, **kwargs: Any) -> capturing.Collected | PodResult:
        with lock:
            collecting.append(prepared.target.pod)
            most[0] = max(most[0], len(collecting))
        threading.Event().wait(0.02)  # gives a second urgent pod the chance to overlap
        with lock:
            collecting.remove(prepared.target.pod)
        return collect(prepared, **kwargs)

    work.collect = collect_counting  # type: ignore[method-assign]

    async def three() -> list[PodResult]:
        scheduler = PodScheduler(4, ThreadPoolExecutor(max_workers=1), urgent=1,
                                 clock=operator_fakes.FakeClock(auto=True))
        try:
            return list(await asyncio.gather(*(scheduler.capture(_writer(), "ns", p, work, urgent=True)
                                               for p in ("p1", "p2", "p3"))))
        finally:
            scheduler.close()

    assert [r.phase for r in asyncio.run(three())] == ["Completed"] * 3
    assert most[0] == 1


def test_an_urgent_pod_of_a_deleted_capture_is_asked_for_nothing(tmp_path: Path) -> None:
    work = Work(tmp_path)

    async def deleted() -> PodResult:
        run = _writer()
        run.deleted = True
        scheduler = PodScheduler(1, ThreadPoolExecutor(max_workers=1), urgent=1)
        try:
            return await scheduler.capture(run, "ns", "api-1", work, urgent=True)
        finally:
            scheduler.close()

    result = asyncio.run(deleted())
    assert result.phase == "Failed" and "deleted before" in result.message and work.events == []


def test_an_urgent_capture_starts_in_another_second_than_the_pods_last_one(tmp_path: Path) -> None:
    """Bundle names carry whole seconds: two captures of a pod named alike would overwrite each other."""
    work = Work(tmp_path)
    clock = operator_fakes.FakeClock(auto=True)  # a wait for the next second moves the clock

    async def twice() -> datetime:
        scheduler = PodScheduler(1, ThreadPoolExecutor(max_workers=1), urgent=1, clock=clock)
        try:
            before = await scheduler.distinct_start("ns", "api-1")  # a regular capture, this second
            await scheduler.capture(_writer(), "ns", "api-1", work, urgent=True)
            return before
        finally:
            scheduler.close()

    before = asyncio.run(twice())
    assert work.started["api-1"].replace(microsecond=0) > before.replace(microsecond=0)
    assert clock.asked == [0.75]  # to the next whole second
