"""The time the operator's engines read and wait on, replaceable in tests.

:mod:`~debugcap.operator.status_writing` and :mod:`~debugcap.operator.pod_scheduling` take a
:class:`Clock`; outside tests it is :class:`LoopClock`. A unit test passes a fake one that moves
only when told to, so it asserts exact times and never how fast the machine is (kopf's tests do
the same with ``looptime``).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float:
        """Seconds on a monotonic scale, for intervals."""

    def now(self) -> datetime:
        """The wall-clock time, in UTC."""

    async def sleep(self, seconds: float) -> None:
        """Return ``seconds`` from now."""

    async def wait(self, event: asyncio.Event, seconds: float) -> bool:
        """Return once ``event`` is set (True) or ``seconds`` have passed (False)."""


class LoopClock:
    """The running event loop's time and asyncio's waits; the wall clock from the system."""

    def time(self) -> float:
        return asyncio.get_running_loop().time()

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def wait(self, event: asyncio.Event, seconds: float) -> bool:
        try:
            await asyncio.wait_for(event.wait(), seconds)
        except TimeoutError:
            return False
        return True
