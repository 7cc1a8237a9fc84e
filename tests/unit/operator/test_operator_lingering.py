"""Collection threads that outlive their pod's slot (issue 16 review): counted in
``debugcap_pod_captures_lingering`` and capped (``DEBUGCAP_OPERATOR_LINGERING_CAPTURES``).

Cases: a pod whose engine is still writing its partial bundle after its deadline freed the slot
is counted, and at the cap the next pod waits, saying so, before it is prepared, and goes on when
that thread ends; a thread abandoned after the grace that stays stuck still counts, so stuck
threads cannot pile up; the cap defaults to the concurrency; the setting is read and checked.

Time is a fake clock moved by the test; threads are ordered with events (see
test_operator_pod_deadline.py, whose fakes these are).
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import operator_fakes
import pytest
from test_operator_pod_deadline import DEADLINE, GRACE, GUARD, Work, _until, _writer

from debugcap.errors import ConfigError
from debugcap.operator import capturing, metrics
from debugcap.operator.config import DebugcapConfig
from debugcap.operator.pod_scheduling import PodScheduler
from debugcap.operator.results import PodResult

WAITS = "waits before taking a slot"


def _lingering() -> float:
    return float(metrics.LINGERING._value.get())


def _waited(caplog: pytest.LogCaptureFixture, pod: str) -> bool:
    return any(WAITS in r.getMessage() and f"ns/{pod}" in r.getMessage() for r in caplog.records)


def test_at_the_cap_a_new_pod_waits_for_a_thread_still_writing_past_its_deadline(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    work = Work(tmp_path)
    p1_may_return = threading.Event()

    def p1_writes_its_partial_bundle(_abandoned: threading.Event) -> None:
        assert p1_may_return.wait(GUARD)

    work.hold = {"p1": p1_writes_its_partial_bundle}
    clock = operator_fakes.FakeClock()
    before = _lingering()

    async def one_slot_one_lingering() -> tuple[list[PodResult], float]:
        scheduler = PodScheduler(1, ThreadPoolExecutor(max_workers=4), clock=clock, deadline_grace=GRACE,
                                 lingering_limit=1)
        tasks = [asyncio.ensure_future(scheduler.capture(_writer(), "ns", p, work, deadline_seconds=DEADLINE))
                 for p in ("p1", "p2")]
        await _until(lambda: "collect p1" in work.events, "p1 collecting")
        await clock.parked()  # p1's deadline
        clock.advance(DEADLINE)  # p1's slot is free; its thread still writes
        await _until(lambda: _waited(caplog, "p2"), "p2 saying it waits")
        assert "collect p2" not in work.events and not scheduler.slots.locked()  # the slot is free: the cap holds p2
        lingering = _lingering()
        p1_may_return.set()
        return list(await asyncio.wait_for(asyncio.gather(*tasks), GUARD)), lingering

    caplog.set_level("INFO", logger="debugcap.operator.lingering")
    (p1, p2), lingering = asyncio.run(one_slot_one_lingering())
    assert lingering == before + 1
    assert _lingering() == before  # p1's thread ended
    assert (p1.phase, p2.phase) == ("Completed", "Completed")
    assert work.events.index("collected p1") < work.events.index("collect p2"), work.events
    assert any("p2: capture goes on" in r.getMessage() for r in caplog.records)


def test_a_stuck_abandoned_thread_still_counts_until_it_ends(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    work = Work(tmp_path)
    thread_may_return = threading.Event()

    def stuck(_abandoned: threading.Event) -> None:
        assert thread_may_return.wait(GUARD)

    work.hold = {"p1": stuck}
    clock = operator_fakes.FakeClock()
    before = _lingering()

    async def abandoned_then_next() -> tuple[PodResult, PodResult]:
        scheduler = PodScheduler(1, ThreadPoolExecutor(max_workers=4), clock=clock, deadline_grace=GRACE,
                                 lingering_limit=1)
        first = asyncio.ensure_future(scheduler.capture(_writer(), "ns", "p1", work, deadline_seconds=DEADLINE))
        await _until(lambda: "collect p1" in work.events, "p1 collecting")
        for n, step in enumerate((DEADLINE, GRACE, capturing.ABANDONED_STEPS_SECONDS), start=1):
            await _until(lambda n=n: len(clock.asked) == n, f"wait {n} on the clock")  # type: ignore[misc]
            clock.advance(step)
        abandoned = await asyncio.wait_for(first, GUARD)
        assert scheduler.lingering.count == 1  # abandoned, its pod Failed, its thread still alive
        second = asyncio.ensure_future(scheduler.capture(_writer(), "ns", "p2", work, deadline_seconds=DEADLINE))
        await _until(lambda: _waited(caplog, "p2"), "p2 saying it waits")
        assert "collect p2" not in work.events
        thread_may_return.set()
        return abandoned, await asyncio.wait_for(second, GUARD)

    caplog.set_level("INFO", logger="debugcap.operator.lingering")
    abandoned, p2 = asyncio.run(abandoned_then_next())
    assert (abandoned.phase, p2.phase) == ("Failed", "Completed")
    assert _lingering() == before


def test_below_the_cap_no_pod_waits(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Two slots, so the default cap is two: one pod lingering holds no one back."""
    work = Work(tmp_path)
    p1_may_return, p2_collected = threading.Event(), threading.Event()

    def p1(_abandoned: threading.Event) -> None:
        assert p2_collected.wait(GUARD) and p1_may_return.wait(GUARD)

    work.hold = {"p1": p1, "p2": lambda _a: p2_collected.set()}
    clock = operator_fakes.FakeClock()

    async def run() -> list[PodResult]:
        scheduler = PodScheduler(1, ThreadPoolExecutor(max_workers=4), clock=clock, deadline_grace=GRACE,
                                 lingering_limit=2)
        tasks = [asyncio.ensure_future(scheduler.capture(_writer(), "ns", p, work, deadline_seconds=DEADLINE))
                 for p in ("p1", "p2")]
        await _until(lambda: "collect p1" in work.events, "p1 collecting")
        await clock.parked()
        clock.advance(DEADLINE)
        await _until(p2_collected.is_set, "p2 collecting while p1 lingers")
        p1_may_return.set()
        return list(await asyncio.wait_for(asyncio.gather(*tasks), GUARD))

    caplog.set_level("INFO", logger="debugcap.operator.lingering")
    assert [r.phase for r in asyncio.run(run())] == ["Completed", "Completed"]
    assert not any(WAITS in r.getMessage() for r in caplog.records)


def test_the_cap_defaults_to_the_concurrency_and_is_a_setting() -> None:
    async def limits() -> tuple[int, int]:
        return (PodScheduler(3, ThreadPoolExecutor(max_workers=1)).lingering.limit,
                PodScheduler(3, ThreadPoolExecutor(max_workers=1), lingering_limit=5).lingering.limit)

    assert asyncio.run(limits()) == (3, 5)
    assert DebugcapConfig.from_env({}).lingering_captures is None
    assert DebugcapConfig.from_env({"DEBUGCAP_OPERATOR_LINGERING_CAPTURES": "6"}).lingering_captures == 6
    with pytest.raises(ConfigError, match="DEBUGCAP_OPERATOR_LINGERING_CAPTURES='0' must be at least 1"):
        DebugcapConfig.from_env({"DEBUGCAP_OPERATOR_LINGERING_CAPTURES": "0"})
