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
                          slots=asyncio.Semaphore(1), uploads=asyncio.Semaphore(1))
    run.rt = rt
    run.deleted = True

    async def capture_one() -> PodResult:
        result = await handlers._capture_one(rt, run, "api-1", None, None)  # type: ignore[arg-type]
        await asyncio.gather(*run._progress)
        return result

    result = asyncio.run(capture_one())
    assert result.phase == "Failed" and "deleted" in result.message
    assert sent[-1][1]["pods"] == [{"name": "api-1", "phase": "Failed", "message": result.message}]
