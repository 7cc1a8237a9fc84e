"""The leader's renewal uses its whole budget on a loaded machine (second review, item 3): with
6 s / 4 s / 1 s leases, an API server stalled for 1.5-2.5 s made the leader exit, as each call had
half of what was left and a failed try waited a full retry period. The renew deadline stays a hard
limit. On a fake clock that moves only when a loop waits or a fake call takes time."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime
from typing import TypeVar

from test_leadership import FakeClock

from debugcap import errors
from debugcap.operator.leadership import WRITE_MINIMUM, Elector, LeaseRecord, LeaseSettings

T = TypeVar("T")
EPOCH = datetime(2026, 12, 5, 7, 0, tzinfo=UTC)
TIGHT = LeaseSettings(enabled=True, name="debugcap", namespace="ops", identity="a",
                      lease_duration=6.0, renew_deadline=4.0, retry_period=1.0)


class Clock(FakeClock):
    """test_leadership's clock, stopping the loop once the test's end (``stop_after``) is passed."""

    def __init__(self) -> None:
        super().__init__()
        self.stop_after: float | None = None

    def wait(self, stop: threading.Event, seconds: float) -> bool:
        self.t += seconds
        if self.stop_after is not None and self.t >= self.stop_after:
            stop.set()
        return stop.is_set()


class StalledLeases:
    """One Lease; every call takes ``latency`` seconds, and one started before ``stalled_until``
    answers only then. A call whose timeout runs out first fails at its timeout, as urllib3's would."""

    def __init__(self, clock: Clock, latency: float = 0.3) -> None:
        self.clock, self.latency = clock, latency
        self.stalled_until = 0.0
        self.record: LeaseRecord | None = None
        self.version = 0
        self.calls: list[tuple[str, float, float]] = []  # (call, started, timeout)

    def _take(self, call: str, timeout: float) -> None:
        self.calls.append((call, self.clock.t, timeout))
        answer_at = max(self.clock.t, self.stalled_until) + self.latency
        if answer_at - self.clock.t > timeout:
            self.clock.t += timeout
            raise errors.KubeError(f"lease ops/debugcap: {call} timed out after {timeout:g}s")
        self.clock.t = answer_at

    def read(self, timeout: float) -> LeaseRecord | None:
        self._take("read", timeout)
        return self.record

    def create(self, record: LeaseRecord, timeout: float) -> LeaseRecord:
        self._take("create", timeout)
        return self._store(record)

    def replace(self, record: LeaseRecord, timeout: float) -> LeaseRecord:
        self._take("replace", timeout)
        if self.record is None or record.resource_version != self.record.resource_version:
            raise errors.ConflictError("lease ops/debugcap was changed since it was read")
        return self._store(record)

    def _store(self, record: LeaseRecord) -> LeaseRecord:
        self.version += 1
        self.record = replace(record, resource_version=str(self.version))
        return self.record


def leader(clock: Clock, api: StalledLeases, lost: list[str]) -> Elector:
    a = Elector(settings=TIGHT, api=api, clock=clock, on_lost=lost.append)
    assert a.try_once()
    return a


def test_a_leader_rides_out_a_two_second_api_stall() -> None:
    # Renewed at t0 (each call takes 0.3 s); the next read, at t0+1.3, meets a stall until t0+3
    # and answers at t0+3.3, 2 s late: the write lands at t0+3.6. Given half of the 2.7 s left,
    # that read timed out at t0+2.65, and the retry a retry period later had 0.35 s: lost.
    clock = Clock()
    api = StalledLeases(clock)
    lost: list[str] = []
    a = leader(clock, api, lost)
    renewed = a.renewed_at
    assert renewed is not None
    api.stalled_until = renewed + 3.0
    clock.stop_after = renewed + 20
    a.keep()
    assert lost == []
    assert a.renewed_at is not None and a.renewed_at > renewed + 3  # renewed after the stall
    read_during_stall = api.calls[2]
    assert read_during_stall[0] == "read" and read_during_stall[2] > (renewed + TIGHT.renew_deadline
                                                                      - read_during_stall[1]) / 2


def test_a_failed_try_is_retried_at_once_and_the_deadline_stays_hard() -> None:
    clock = Clock()
    api = StalledLeases(clock)
    lost: list[str] = []
    a = leader(clock, api, lost)
    renewed = a.renewed_at
    assert renewed is not None
    api.stalled_until = clock.t + 60  # nothing answers any more
    clock.stop_after = renewed + 60
    a.keep()
    assert len(lost) == 1 and "could not renew lease ops/debugcap" in lost[0], lost
    assert clock.t <= renewed + TIGHT.renew_deadline + 1e-9  # never past the renew deadline
    reads = [(started, timeout) for call, started, timeout in api.calls[2:] if call == "read"]
    assert len(reads) >= 2
    first, second = reads[0], reads[1]
    # The second read starts as the first timed out, not a retry period later; each leaves room
    # for the write inside the deadline.
    assert second[0] == first[0] + first[1]
    for started, timeout in reads:
        assert started + timeout <= renewed + TIGHT.renew_deadline + 1e-9
    assert first[1] == renewed + TIGHT.renew_deadline - first[0] - WRITE_MINIMUM


def test_the_write_gets_what_the_read_left_and_no_write_starts_past_the_deadline() -> None:
    clock = Clock()
    api = StalledLeases(clock, latency=0.0)
    lost: list[str] = []
    a = leader(clock, api, lost)
    renewed = a.renewed_at
    assert renewed is not None
    start = clock.t + 1.0
    api.stalled_until = start + 2.8  # the read (given 3 - 0.5 s) answers at +2.8: 0.2 s left
    clock.stop_after = renewed + 10
    a.keep()
    assert lost == []
    write = next(c for c in api.calls[2:] if c[0] == "replace")
    assert write[1] + write[2] <= renewed + TIGHT.renew_deadline + 1e-9
