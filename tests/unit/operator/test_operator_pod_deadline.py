"""A pod's deadline in the scheduler (issue 16): it frees the pod's slot, and a collection that
outlives it and its grace is abandoned without holding anything.

Cases: at the deadline the slot goes to the next pod while the late pod's engine still writes its
partial bundle, which is then stored (nothing already collected is lost); a collection that never
ends is abandoned at deadline + grace: the pod ends Failed saying so, its connections close, the
pod's lock is given back (the next capture of the pod runs), a counter and a log line say so, and
what the thread returns later is dropped, never stored; the deadline the operator enforces is the
engine's own, explicit or automatic; a pod cancelled while collecting (the operator stopping)
gives its slot back and drops the bundle its thread finishes later.

Time is a fake clock moved by the test; threads are ordered with events. GUARD only bounds a wait
that must end, so a missing feature fails the test instead of hanging it.
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
import pytest

from debugcap import templates
from debugcap.operator import capturing, metrics, pod_scheduling
from debugcap.operator.pod_scheduling import PodScheduler
from debugcap.operator.results import PodResult
from debugcap.operator.status_writing import StatusWriter
from debugcap.settings import CaptureSettings

GUARD = 10.0
DEADLINE, GRACE = 20.0, 30.0


class Work:
    """Fake pod work: ``collect`` runs ``hold[pod]`` (if any) before it returns its bundle."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.events: list[str] = []
        self.hold: dict[str, Callable[[threading.Event], None]] = {}
        self.closed = threading.Event()
        self.returned = threading.Event()
        self._lock = threading.Lock()

    def note(self, what: str) -> None:
        with self._lock:
            self.events.append(what)

    def prepare(self, pod: str) -> capturing.Prepared | PodResult:
        def close() -> None:
            self.note(f"close {pod}")
            self.closed.set()

        conn: Any = SimpleNamespace(close=close)
        return capturing.Prepared(target=SimpleNamespace(namespace="ns", pod=pod, container="app", node="n"),  # type: ignore[arg-type]
                                  settings=None, http=conn, commands=conn)  # type: ignore[arg-type]

    def planned_key(self, pod: str, started: datetime) -> str:
        return f"k/{pod}.tar.gz"

    def collect(self, prepared: capturing.Prepared, *, started: datetime, abandoned: threading.Event,
                window_open: Callable[[], None]) -> capturing.Collected | PodResult:
        pod = prepared.target.pod
        self.note(f"collect {pod}")
        scratch = self.tmp_path / f"{pod}-{len(self.events)}"
        scratch.mkdir()
        hold = self.hold.pop(pod, None)
        if hold is not None:
            hold(abandoned)
        self.note(f"collected {pod}")
        self.returned.set()
        return capturing.Collected(target=prepared.target, outcome=SimpleNamespace(),  # type: ignore[arg-type]
                                   out_dir=scratch, collectors=(), clock=0.0)

    def store(self, collected: capturing.Collected, *, key_sent: threading.Event | None) -> PodResult:
        self.note(f"store {collected.target.pod}")
        return PodResult(name=collected.target.pod, phase="Completed", key=f"k/{collected.target.pod}.tar.gz")

    def assess(self, collected: capturing.Collected, stored: PodResult, *, analyse: bool) -> PodResult:
        collected.discard()
        return stored


def _writer() -> StatusWriter:
    async def send(_status: dict[str, Any]) -> bool:
        return False

    return StatusWriter(send, what="ns/cap", interval=0.0)


async def _until(ok: Callable[[], bool], what: str) -> None:
    """Let the loop and the threads run until ``ok()``; bounded by GUARD, never timed."""
    loop = asyncio.get_running_loop()
    end = loop.time() + GUARD
    while not ok():
        assert loop.time() < end, f"never happened: {what}"
        await asyncio.sleep(0.001)


def test_at_its_deadline_a_pod_gives_its_slot_to_the_next_pod_and_keeps_its_partial_bundle(tmp_path: Path) -> None:
    work = Work(tmp_path)
    p2_collected = threading.Event()

    def p1_writes_its_partial_bundle(_abandoned: threading.Event) -> None:
        # The engine cut its steps at the deadline and is still writing the bundle: the next pod
        # must not wait for that (before, the slot was held until this thread returned).
        assert p2_collected.wait(GUARD), "the next pod did not get the slot at p1's deadline"

    def p2(_abandoned: threading.Event) -> None:
        p2_collected.set()

    work.hold = {"p1": p1_writes_its_partial_bundle, "p2": p2}
    clock = operator_fakes.FakeClock()

    async def two_pods_one_slot() -> list[PodResult]:
        # Room for a second collection thread past its deadline (the cap defaults to the one slot):
        # test_operator_lingering.py has the cap itself.
        scheduler = PodScheduler(1, ThreadPoolExecutor(max_workers=4), clock=clock, deadline_grace=GRACE,
                                 lingering_limit=2)
        run = _writer()
        tasks = [asyncio.ensure_future(scheduler.capture(run, "ns", p, work, deadline_seconds=DEADLINE))
                 for p in ("p1", "p2")]
        await _until(lambda: "collect p1" in work.events, "p1 collecting")
        await clock.parked()  # p1's deadline
        assert "collect p2" not in work.events  # one slot: p2 waits
        clock.advance(DEADLINE)
        return list(await asyncio.wait_for(asyncio.gather(*tasks), GUARD))

    p1, p2_result = asyncio.run(two_pods_one_slot())
    assert (p1.phase, p1.key, p2_result.phase) == ("Completed", "k/p1.tar.gz", "Completed")
    assert work.events.index("collect p2") < work.events.index("collected p1"), work.events
    assert "store p1" in work.events  # what p1 collected before its deadline is kept


def test_a_collection_that_never_ends_is_abandoned_and_holds_nothing(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    work = Work(tmp_path)
    thread_may_return = threading.Event()
    seen_abandoned: list[bool] = []

    def hung(abandoned: threading.Event) -> None:
        # A stuck engine: it ignores its deadline and returns only once the test lets it.
        assert thread_may_return.wait(GUARD)
        seen_abandoned.append(abandoned.is_set())

    work.hold = {"p1": hung}
    clock = operator_fakes.FakeClock(auto=False)
    before = metrics.ABANDONED._value.get()

    async def abandoned_then_again() -> tuple[PodResult, PodResult, dict[str, Any]]:
        # Room for a second collection thread past its deadline (the cap defaults to the one slot):
        # test_operator_lingering.py has the cap itself.
        scheduler = PodScheduler(1, ThreadPoolExecutor(max_workers=4), clock=clock, deadline_grace=GRACE,
                                 lingering_limit=2)
        run = _writer()
        first = asyncio.ensure_future(scheduler.capture(run, "ns", "p1", work, deadline_seconds=DEADLINE))
        await _until(lambda: "collect p1" in work.events, "p1 collecting")
        for n, step in enumerate((DEADLINE, GRACE, capturing.ABANDONED_STEPS_SECONDS), start=1):
            await _until(lambda n=n: len(clock.asked) == n, f"wait {n} on the clock")  # type: ignore[misc]
            assert clock.asked[-1] == step
            clock.advance(step)
        result = await asyncio.wait_for(first, GUARD)
        status = dict(run.status)
        # The pod's lock is free although the thread still runs: the next capture of p1 collects.
        clock.advance(1.0)  # the next capture of the pod starts in a later second
        again = await asyncio.wait_for(scheduler.capture(_writer(), "ns", "p1", work), GUARD)
        thread_may_return.set()
        await _until(lambda: work.events.count("collected p1") == 2 and not (tmp_path / "p1-1").exists(),
                     "the late bundle dropped")
        return result, again, status

    caplog.set_level("INFO", logger="debugcap.operator.lingering")
    with caplog.at_level("INFO", logger="debugcap.operator.pod_scheduling"):
        result, again, status = asyncio.run(abandoned_then_again())
    assert result.phase == "Failed", result
    assert "capture deadline of 20 s" in result.message and "abandoned" in result.message, result.message
    assert status["pods"] == [result.as_status()]  # said at once, not when the thread returns
    assert work.closed.wait(GUARD), "the abandoned pod's connections were not closed"
    assert again.phase == "Completed"
    assert work.events.count("store p1") == 1  # the second capture's; the late bundle is not stored
    assert seen_abandoned == [True]
    assert metrics.ABANDONED._value.get() == before + 1
    assert any("capture abandoned" in r.getMessage() for r in caplog.records)
    assert any("late bundle" in r.getMessage() for r in caplog.records)


def test_the_operator_enforces_the_engines_own_deadline_explicit_or_automatic() -> None:
    template = templates.expand("go-profile", {"cpu_seconds": 30, "trace_seconds": 5})
    automatic = pod_scheduling.pod_deadline(CaptureSettings(), template)
    assert automatic == 30 + CaptureSettings().capture_slack_seconds  # type: ignore[operator]
    assert pod_scheduling.pod_deadline(CaptureSettings(capture_timeout_seconds=7.0), template) == 7.0
    assert pod_scheduling.pod_deadline(CaptureSettings(capture_slack_seconds=None), template) is None


def test_a_collection_whose_pod_is_cancelled_drops_what_it_returns_later(tmp_path: Path) -> None:
    """The operator stopping cancels the pod's task: the thread, still collecting, is told it was
    abandoned, and the bundle it finishes afterwards is removed (it used to stay in the work
    directory, neither stored nor listed)."""
    work = Work(tmp_path)
    thread_may_return = threading.Event()
    seen_abandoned: list[bool] = []

    def collecting(abandoned: threading.Event) -> None:
        assert thread_may_return.wait(GUARD)
        seen_abandoned.append(abandoned.is_set())

    work.hold = {"p1": collecting}

    async def cancelled() -> None:
        scheduler = PodScheduler(1, ThreadPoolExecutor(max_workers=4), clock=operator_fakes.FakeClock())
        task = asyncio.ensure_future(scheduler.capture(_writer(), "ns", "p1", work, deadline_seconds=DEADLINE))
        await _until(lambda: "collect p1" in work.events, "p1 collecting")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not scheduler.slots.locked()  # the slot is back
        thread_may_return.set()
        await _until(lambda: work.returned.is_set() and not (tmp_path / "p1-1").exists(), "the late bundle dropped")

    asyncio.run(cancelled())
    assert seen_abandoned == [True] and "store p1" not in work.events
