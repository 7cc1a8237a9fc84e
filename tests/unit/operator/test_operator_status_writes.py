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
