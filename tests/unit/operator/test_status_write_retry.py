"""StatusWriter: a capture-level write (phase, end) the API server did not answer is tried again
after PHASE_WRITE_WAITS, on a fake clock; a refused one (invalid, forbidden) is not; pod progress
writes are not retried here (the next write carries them). Found by the fault suite's API server
restart: a failed final write left the capture Running until kopf re-ran its handler 60 s later,
which closed it as orphaned."""

from __future__ import annotations

import asyncio
from typing import Any

import operator_fakes
import pytest

from debugcap import errors
from debugcap.operator.status_writing import (
    PHASE_WRITE_SECONDS,
    PHASE_WRITE_TRY_SECONDS,
    PHASE_WRITE_WAITS,
    StatusWriter,
)


def _flaky(clock: operator_fakes.FakeClock, failures: list[Exception], sent: list[tuple[float, dict[str, Any]]]
           ) -> StatusWriter:
    async def send(status: dict[str, Any]) -> bool:
        if failures:
            raise failures.pop(0)
        sent.append((clock.time(), dict(status)))
        return False

    return StatusWriter(send, what="ns/cap", clock=clock)


def test_a_phase_write_the_api_server_missed_is_tried_again_until_it_answers() -> None:
    clock, sent = operator_fakes.FakeClock(auto=True), []  # type: ignore[var-annotated]
    down = [errors.KubeError("cannot patch debugcaptures/status: no answer from the API server")] * 3
    run = _flaky(clock, down, sent)
    asyncio.run(run.write(phase="Completed"))
    assert [s["phase"] for _, s in sent] == ["Completed"]
    assert clock.asked == list(PHASE_WRITE_WAITS[:3])
    assert sent[0][0] == sum(PHASE_WRITE_WAITS[:3])


def test_a_phase_write_still_unanswered_after_every_wait_raises() -> None:
    clock, sent = operator_fakes.FakeClock(auto=True), []  # type: ignore[var-annotated]
    down = [errors.KubeError("no answer from the API server")] * (len(PHASE_WRITE_WAITS) + 1)
    run = _flaky(clock, down, sent)
    with pytest.raises(errors.KubeError):
        asyncio.run(run.write(phase="Completed"))
    assert clock.asked == list(PHASE_WRITE_WAITS) and not sent


@pytest.mark.parametrize("refusal", [errors.InvalidError("status.phase: Unsupported value"),
                                     errors.ForbiddenError("cannot patch debugcaptures/status")])
def test_a_refused_phase_write_is_not_tried_again(refusal: Exception) -> None:
    clock, sent = operator_fakes.FakeClock(auto=True), []  # type: ignore[var-annotated]
    run = _flaky(clock, [refusal], sent)
    with pytest.raises(type(refusal)):
        asyncio.run(run.write(phase="Completed"))
    assert clock.asked == [] and not sent


def test_tries_the_api_server_never_answers_all_end_within_the_bound() -> None:
    # Each try waits out the whole timeout it is given, as a request the API server never answers
    # does (the real client has no cap of its own below it): given the 30 s request timeout each,
    # the tries and waits took minutes; given the whole bound, the first try took all of it.
    clock = operator_fakes.FakeClock(auto=True)
    timeouts: list[float] = []

    async def send(_status: dict[str, Any]) -> bool:
        raise AssertionError("a capture-level write goes through send_within")

    async def send_within(_status: dict[str, Any], timeout: float) -> bool:
        timeouts.append(timeout)
        await clock.sleep(timeout)
        raise errors.KubeError("no answer from the API server")

    run = StatusWriter(send, what="ns/cap", clock=clock, send_within=send_within)
    start = clock.time()
    with pytest.raises(errors.KubeError):
        asyncio.run(run.write(phase="Completed"))
    assert clock.time() - start <= PHASE_WRITE_SECONDS
    assert len(timeouts) >= 3 and all(0 < t <= PHASE_WRITE_TRY_SECONDS for t in timeouts)


def test_a_phase_write_behind_a_slow_write_gets_only_the_time_left() -> None:
    # The try's timeout is measured once the writer's lock is held: a progress write in flight
    # before it has used part of the bound, and the phase write must not outlast it.
    clock = operator_fakes.FakeClock()
    timeouts: list[float] = []

    async def send(_status: dict[str, Any]) -> bool:
        await clock.sleep(PHASE_WRITE_SECONDS - 3.0)  # a progress write the API server is slow to answer
        return False

    async def send_within(_status: dict[str, Any], timeout: float) -> bool:
        timeouts.append(timeout)
        return False

    async def run() -> None:
        writer = StatusWriter(send, what="ns/cap", clock=clock, send_within=send_within)
        progress = writer.progress()
        await asyncio.sleep(0)  # the progress write holds the lock
        phase = asyncio.create_task(writer.write(phase="Completed"))
        await asyncio.sleep(0)  # its deadline taken, it waits for the lock
        clock.advance(PHASE_WRITE_SECONDS - 3.0)
        await asyncio.gather(progress, phase)

    asyncio.run(run())
    assert timeouts == [3.0]
