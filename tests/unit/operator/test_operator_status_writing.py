"""StatusWriter: how a running capture's status reaches the API server, on a fake clock.

Cases: a burst of pod updates costs two writes, the second carrying all; pod progress goes at
most every interval and carries what happened meanwhile, an interval that grows with the pods
beyond PROGRESS_WRITE_PODS; a capture-level write goes at once and
carries waiting progress; an answer that the object is being deleted marks it deleted; a failed
progress write is not fatal and the next write carries its change.
"""

from __future__ import annotations

import asyncio
from typing import Any

import operator_fakes
import pytest

from debugcap.operator.results import PodResult
from debugcap.operator.status_writing import PROGRESS_WRITE_PODS, PROGRESS_WRITE_SECONDS, StatusWriter


def _writer(clock: operator_fakes.FakeClock, sent: list[tuple[float, dict[str, Any]]],
            answer: bool = False) -> StatusWriter:
    async def send(status: dict[str, Any]) -> bool:
        sent.append((clock.time(), status))
        await asyncio.sleep(0)  # the API round trip: others run meanwhile
        return answer

    return StatusWriter(send, what="ns/cap", clock=clock)


def _pod(i: int, phase: str = "Completed") -> PodResult:
    return PodResult(name=f"p{i}", phase=phase)


def test_a_burst_of_pod_updates_costs_two_writes_and_the_last_carries_all() -> None:
    clock, sent = operator_fakes.FakeClock(), []  # type: ignore[var-annotated]
    run = _writer(clock, sent)

    async def burst() -> None:
        async def pod_done(i: int) -> None:
            run.pods[f"p{i}"] = _pod(i)
            await run.write()

        pods = asyncio.gather(*(pod_done(i) for i in range(10)))
        await clock.parked()  # the second write waits out the interval after the first
        assert len(sent) == 1
        clock.advance(PROGRESS_WRITE_SECONDS)
        await pods
        await run.write(phase="Completed")

    asyncio.run(burst())
    # One write for the first pod, one for the nine that finished while it was in flight, one
    # for the phase; one write per change would be eleven.
    assert [(t, len(s["pods"])) for t, s in sent] == [(0.0, 1), (PROGRESS_WRITE_SECONDS, 10),
                                                      (PROGRESS_WRITE_SECONDS, 10)]
    assert sent[-1][1]["phase"] == "Completed"


def test_pod_progress_written_at_most_every_interval_carries_what_happened_meanwhile() -> None:
    clock, sent = operator_fakes.FakeClock(), []  # type: ignore[var-annotated]
    run = _writer(clock, sent)

    async def pods_one_by_one() -> None:
        await run.set_pod(_pod(0))  # the first goes at once
        for i in range(1, 4):
            clock.advance(0.05)
            run.set_pod(_pod(i))
            await clock.parked()
        assert len(sent) == 1, "progress went before the interval was over"
        clock.advance(PROGRESS_WRITE_SECONDS - 0.15)
        await run.settle()

    asyncio.run(pods_one_by_one())
    assert [(t, len(s["pods"])) for t, s in sent] == [(0.0, 1), (PROGRESS_WRITE_SECONDS, 4)]
    assert clock.asked == [PROGRESS_WRITE_SECONDS - 0.05]  # waited once, for the rest of the interval


def test_with_many_pods_progress_waits_in_proportion_so_a_sweeps_writes_grow_linearly() -> None:
    # Each write carries every pod's entry: at a fixed interval a sweep's writes would cost the
    # square of its pods. Up to PROGRESS_WRITE_PODS pods the interval is the usual one.
    clock, sent = operator_fakes.FakeClock(), []  # type: ignore[var-annotated]
    run = _writer(clock, sent)
    pods = 4 * PROGRESS_WRITE_PODS

    async def many_pods() -> None:
        for i in range(pods - 1):
            run.pods[f"p{i}"] = _pod(i, "Running")
        await run.set_pod(_pod(pods - 1))  # the first write goes at once
        run.set_pod(_pod(0))
        await clock.parked()
        clock.advance(PROGRESS_WRITE_SECONDS)
        await clock.parked()
        assert len(sent) == 1, "a 60-pod status was written again after the interval for 15 pods"
        clock.advance(3 * PROGRESS_WRITE_SECONDS)
        await run.settle()
        await asyncio.wait_for(run.write(phase="Completed"), timeout=10)  # capture-level: at once

    asyncio.run(many_pods())
    assert [t for t, _ in sent] == [0.0, 4 * PROGRESS_WRITE_SECONDS, 4 * PROGRESS_WRITE_SECONDS]
    assert clock.asked[0] == pytest.approx(4 * PROGRESS_WRITE_SECONDS)


def test_a_capture_level_write_goes_at_once_and_carries_waiting_pod_progress() -> None:
    clock, sent = operator_fakes.FakeClock(), []  # type: ignore[var-annotated]
    run = _writer(clock, sent)

    async def finish_while_progress_waits() -> None:
        await run.set_pod(_pod(0, "Running"))
        run.set_pod(_pod(0, "Completed"))
        await clock.parked()  # the progress write waits out the interval...
        # ...and the capture-level write does not; a guard in case it would wait for ever:
        await asyncio.wait_for(run.write(phase="Completed"), timeout=10)
        await run.settle()

    asyncio.run(finish_while_progress_waits())
    assert [t for t, _ in sent] == [0.0, 0.0]  # the clock never moved: nothing was held back
    assert sent[1][1]["phase"] == "Completed" and sent[1][1]["pods"][0]["phase"] == "Completed"


def test_a_write_answered_with_a_deletion_timestamp_marks_the_capture_deleted() -> None:
    clock, sent = operator_fakes.FakeClock(), []  # type: ignore[var-annotated]
    run = _writer(clock, sent, answer=True)
    assert not run.deleted
    asyncio.run(run.write(phase="Running"))
    assert run.deleted


def test_a_failed_progress_write_is_logged_and_the_next_write_carries_its_change(
        caplog: pytest.LogCaptureFixture) -> None:
    clock, sent = operator_fakes.FakeClock(), []  # type: ignore[var-annotated]
    failures = [RuntimeError("apiserver said 500")]

    async def send(status: dict[str, Any]) -> bool:
        if failures:
            raise failures.pop()
        sent.append((clock.time(), status))
        return False

    run = StatusWriter(send, what="ns/cap", clock=clock)

    async def fail_then_finish() -> None:
        run.set_pod(_pod(0))
        await run.settle()
        await run.write(phase="Completed")

    asyncio.run(fail_then_finish())
    assert "a status write of ns/cap failed: apiserver said 500" in caplog.text
    assert [s["pods"] for _, s in sent] == [[{"name": "p0", "phase": "Completed"}]]


RECORDS = ({"name": "pprof-cpu", "status": "ok", "bytes": 4096, "durationMs": 1010},
           {"name": "events", "status": "ok", "bytes": 900, "durationMs": 12},
           {"name": "disk", "status": "failed", "bytes": 0, "durationMs": 3, "message": "df: not found"})


def _done(i: int) -> PodResult:
    return PodResult(name=f"p{i}", phase="Completed", key=f"k/{i}.tar.gz", collectors=RECORDS)


def test_progress_writes_leave_the_ok_records_out_and_the_capture_level_write_carries_them() -> None:
    clock, sent = operator_fakes.FakeClock(), []  # type: ignore[var-annotated]
    run = _writer(clock, sent)

    async def sweep() -> None:
        await run.set_pod(_done(0))
        clock.advance(PROGRESS_WRITE_SECONDS)
        await run.set_pod(_done(1))
        await run.write(phase="Completed")

    asyncio.run(sweep())
    progress, final = [s for _, s in sent[:-1]], sent[-1][1]
    assert len(progress) == 2
    # The ok steps' records left out; the failed one stays, saying why.
    assert all(p["collectors"] == [RECORDS[2]] and p["bundle"]["key"] for s in progress for p in s["pods"])
    assert [p["collectors"] for p in final["pods"]] == [list(RECORDS)] * 2


def test_a_progress_write_that_carries_a_queued_capture_level_change_carries_the_records_too() -> None:
    """A progress write queued behind one in flight goes first when a capture-level write is queued
    after it, and carries that change: the capture-level write then sends nothing, so the progress
    write must be whole."""
    clock, sent = operator_fakes.FakeClock(), []  # type: ignore[var-annotated]
    answer = asyncio.Event()

    async def send(status: dict[str, Any]) -> bool:
        sent.append((clock.time(), status))
        await answer.wait()  # the first write stays in flight until the test lets it answer
        return False

    run = StatusWriter(send, what="ns/cap", clock=clock)

    async def finish_while_progress_queues() -> None:
        run.set_pod(_done(0))
        await asyncio.sleep(0)
        assert len(sent) == 1  # in flight, holding the writer's lock
        run.set_pod(_done(1))  # queued on the lock
        await asyncio.sleep(0)
        final = asyncio.ensure_future(run.write(phase="Completed"))  # queued behind it
        await asyncio.sleep(0)
        answer.set()
        await asyncio.wait_for(final, timeout=10)
        await run.settle()

    asyncio.run(finish_while_progress_queues())
    last = sent[-1][1]
    assert last["phase"] == "Completed"
    assert [p.get("collectors") for p in last["pods"]] == [list(RECORDS)] * 2
