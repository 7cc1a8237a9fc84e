"""A check's reads of its pods: a hung pod keeps what the pod object says and goes last next time,
and it holds its trigger's place until its thread ends. No time is measured: the hung read waits
on an event the test sets."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from debugcap.operator import trigger_checks, triggering
from debugcap.operator.config import DebugcapConfig
from debugcap.operator.triggering import Reading

SPEC = triggering.parse_trigger({"target": {"selector": {"matchLabels": {"app": "api"}}},
                                 "when": {"goroutines": 10}, "checkIntervalSeconds": 1})


def pod(name: str, restarts: int = 0) -> dict[str, Any]:
    return {"metadata": {"name": name, "uid": f"uid-{name}"},
            "spec": {"containers": [{"name": "app", "resources": {"limits": {"memory": "128Mi"}}}]},
            "status": {"containerStatuses": [{"name": "app", "restartCount": restarts}]}}


def states() -> trigger_checks.TriggerStates:
    return trigger_checks.TriggerStates(None, DebugcapConfig(http_transport="proxy"))  # type: ignore[arg-type]


def test_a_hung_pod_keeps_its_pod_facts_goes_last_and_holds_its_place_until_its_thread_ends(
        monkeypatch: pytest.MonkeyPatch) -> None:
    hang = threading.Event()
    calls: list[str] = []

    def read_pod(kube: Any, reader: Any, namespace: str, p: dict[str, Any], spec: Any) -> Reading:
        calls.append(p["metadata"]["name"])
        if p["metadata"]["name"] == "a":
            hang.wait(60)
        return Reading(p["metadata"]["name"], trigger_checks.datetime.now(trigger_checks.UTC), goroutines=5)

    monkeypatch.setattr(trigger_checks, "read_pod", read_pod)
    monkeypatch.setattr(trigger_checks, "MIN_WAIT_SECONDS", 0.01)
    all_states = states()

    async def go() -> None:
        state = all_states.of("t")
        (first,) = await trigger_checks.read_all(all_states, state, "ns", [pod("a", restarts=2)], SPEC)
        assert first.error.startswith("no reading within") and first.restarts == 2 and first.memory_limit
        assert state.slow == {"a"}
        assert state.reads._value == trigger_checks.READS_PER_TRIGGER - 1  # noqa: SLF001 - still held
        hang.set()
        for _ in range(10_000):  # loop turns until the thread's end gives the place back
            if state.reads._value == trigger_checks.READS_PER_TRIGGER:  # noqa: SLF001
                break
            await asyncio.sleep(0.001)
        assert state.reads._value == trigger_checks.READS_PER_TRIGGER  # noqa: SLF001
        # Next check, one place: the pod unread last time goes after the others.
        state.reads = asyncio.Semaphore(1)
        calls.clear()
        monkeypatch.setattr(trigger_checks, "MIN_WAIT_SECONDS", 60)
        got = await trigger_checks.read_all(all_states, state, "ns", [pod("a"), pod("b")], SPEC)
        assert calls == ["b", "a"] and {r.pod for r in got} == {"a", "b"} and state.slow == set()

    try:
        asyncio.run(go())
    finally:
        hang.set()
        all_states.close()
