"""Test doubles for the operator's engines: a clock that moves only when told, a Kube that answers
raw-JSON calls from a dict, and a small real bundle. Imported by the tests beside it
(``import operator_fakes``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from debugcap import errors
from debugcap.bundle import layout, manifest, writer

WHEN = datetime(2026, 12, 1, 10, 15, tzinfo=UTC)
PS_RECORD = manifest.CollectorRecord(name="ps", status=manifest.CollectorStatus.OK, duration_ms=12, bytes=13,
                                     files=("proc/ps.txt",))


def write_bundle(directory: Path) -> writer.WrittenBundle:
    """A verifiable bundle of pod shop/api-1 started at WHEN, with one collector (ps)."""
    fields = manifest.ManifestFields(
        capture=manifest.CaptureInfo(name="cap", template="go-profile", parameters={}),
        target=manifest.TargetInfo(namespace="shop", pod="api-1", container="app", node="n1", image="img:1"),
        started_at=WHEN, finished_at=WHEN, collectors=(PS_RECORD,))
    with writer.BundleWriter(directory=directory, name=layout.bundle_name("shop", "api-1", WHEN)) as w:
        w.add_bytes(layout.PROC_PS, b"root 1 /app\n")
        return w.finish(fields)


class FakeClock:
    """A :class:`debugcap.operator.clocks.Clock` whose time moves only in :meth:`advance`.

    ``sleep`` and ``wait`` park until the time reaches their deadline (or, for ``wait``, the event
    is set); ``asked`` lists the seconds each asked for. No real time passes: a test asserts exact
    times, never how fast the machine is. With ``auto``, a sleep moves the time itself.
    """

    def __init__(self, start: datetime = datetime(2026, 12, 1, 10, 15, 0, 250_000, tzinfo=UTC), *,
                 auto: bool = False) -> None:
        self.start = start
        self.auto = auto
        self.elapsed = 0.0
        self.asked: list[float] = []
        self._parked: list[tuple[float, asyncio.Future[None]]] = []

    def time(self) -> float:
        return self.elapsed

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.elapsed)

    async def sleep(self, seconds: float) -> None:
        if self.auto:
            self.asked.append(seconds)
            self.advance(seconds)
            await asyncio.sleep(0)
            return
        await self._park(seconds, None)

    async def wait(self, event: asyncio.Event, seconds: float) -> bool:
        if event.is_set():
            return True
        return await self._park(seconds, event)

    def advance(self, seconds: float) -> None:
        self.elapsed = round(self.elapsed + seconds, 9)
        for deadline, moved in list(self._parked):
            if deadline <= self.elapsed and not moved.done():
                moved.set_result(None)

    async def parked(self, count: int = 1) -> None:
        """Let the loop run until ``count`` coroutines wait on this clock."""
        for _ in range(1000):  # loop turns, not time: each turn runs every ready task once
            if len(self._parked) >= count:
                return
            await asyncio.sleep(0)
        raise AssertionError(f"{len(self._parked)} coroutine(s) wait on the clock, expected {count}")

    async def _park(self, seconds: float, event: asyncio.Event | None) -> bool:
        self.asked.append(seconds)
        moved: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (round(self.elapsed + seconds, 9), moved)
        self._parked.append(entry)
        waits: list[asyncio.Future[Any]] = [moved]
        if event is not None:
            waits.append(asyncio.ensure_future(event.wait()))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._parked.remove(entry)
            for other in waits[1:]:
                other.cancel()
        return event is not None and event.is_set()


class FakeKube:
    """Answers ``get_json``/``post_json``/``delete``/``merge_patch`` from ``answers`` (path -> JSON,
    or an exception to raise) and records every call as ``(method, path, query or body)``."""

    def __init__(self, answers: dict[str, Any] | None = None) -> None:
        self.answers = answers or {}
        self.calls: list[tuple[str, str, Any]] = []
        self.timeouts: list[float] = []  # of the GETs that named one

    def _answer(self, method: str, path: str, extra: Any) -> Any:
        self.calls.append((method, path, extra))
        answer = self.answers.get(f"{method} {path}", self.answers.get(path))
        if isinstance(answer, BaseException):
            raise answer
        if isinstance(answer, Callable):  # type: ignore[arg-type]
            return answer(extra)
        return answer

    def get_json(self, path: str, query: Sequence[tuple[str, str]] = (), *, timeout: float | None = None) -> Any:
        if timeout is not None:
            self.timeouts.append(timeout)
        return self._answer("GET", path, list(query))

    def post_json(self, path: str, body: Any) -> Any:
        return self._answer("POST", path, body)

    def merge_patch(self, path: str, body: Any, *, timeout: float | None = None) -> Any:
        return self._answer("PATCH", path, body)

    def delete(self, path: str, *, missing_ok: bool = False) -> None:
        try:
            self._answer("DELETE", path, None)
        except errors.NotFoundError:
            if not missing_ok:
                raise


def not_found(what: str = "x") -> errors.NotFoundError:
    return errors.NotFoundError(f"cannot get {what}: not found", status=404, reason="NotFound",
                                api_message=f'"{what}" not found')
