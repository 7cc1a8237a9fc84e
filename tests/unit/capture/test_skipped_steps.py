"""Steps the caller left out (``templates.Step.skipped``): recorded, never run.

Cases:
- a skipped step's collector is never called; its record (skipped, the reason, no files) is in
  the outcome and the manifest in its place, and the capture is Completed;
- the capture a DebugTrigger fires on memory (debug-full cut by ``firing_steps``) takes the heap
  first and never starts a CPU profile or trace: the collectors that would are recorded skipped
  with the reason, and every one that ran is in the bundle.
"""

from __future__ import annotations

import threading

from debugcap import templates
from debugcap.bundle import manifest
from debugcap.capture import Phase
from debugcap.collectors import COLLECTORS, base
from debugcap.operator import firing_steps
from debugcap.operator.requests import MEMORY_REASON, Firing

from .conftest import STARTED, Rig, manifest_of, stand_in, step, template, writes

S = manifest.CollectorStatus
Registry = dict[str, type[base.Collector]]


def test_a_skipped_step_is_recorded_with_its_reason_and_never_run(rig: Rig, registry: Registry) -> None:
    def must_not_run(_ctx: base.CollectContext) -> base.CollectorResult:
        raise AssertionError("a skipped step ran")

    stand_in(registry, "cpu", must_not_run)
    stand_in(registry, "heap", writes("pprof/heap.pb.gz"))
    skipped = templates.Step(collector="cpu", params={}, skipped="not now: the heap first")
    outcome = rig.run(template(step("heap"), skipped))
    assert [(r.name, r.status, r.message, r.files) for r in outcome.records] == [
        ("heap", S.OK, "", ("pprof/heap.pb.gz",)), ("cpu", S.SKIPPED, "not now: the heap first", ())]
    assert outcome.phase is Phase.COMPLETED
    recorded = manifest_of(outcome.bundle.path)["collectors"][1]
    assert (recorded["name"], recorded["status"], recorded["message"]) == ("cpu", "skipped", "not now: the heap first")


def test_a_memory_firings_capture_takes_the_heap_first_and_no_cpu_profile_or_trace(
        rig: Rig, registry: Registry) -> None:
    ran: list[str] = []
    lock = threading.Lock()

    def noting(name: str) -> base.CollectorResult:
        with lock:
            ran.append(name)
        return base.CollectorResult(base.Status.OK)

    for name in COLLECTORS:
        stand_in(registry, name, lambda _ctx, name=name: noting(name))  # type: ignore[misc]
    memory = Firing(trigger="api-pre-oom", reason=MEMORY_REASON, value="83%", time=STARTED)
    fired = firing_steps.fired_template(templates.expand("debug-full", collectors=COLLECTORS), memory)
    outcome = rig.run(fired, parallelism=1)  # one at a time: the order they start in
    assert ran[0] == "pprof-heap"
    assert not {"pprof-cpu", "trace", "pprof-goroutine", "ps", "disk"} & set(ran)
    records = {r.name: r for r in outcome.records}
    assert (records["pprof-cpu"].status, records["pprof-cpu"].message) == (S.SKIPPED, firing_steps.NO_PROFILE)
    assert records["trace"].message == firing_steps.NO_PROFILE and records["ps"].message == firing_steps.NO_COMMANDS
    assert sorted(ran) == sorted(r.name for r in outcome.records if r.status is S.OK)
    assert rig.window_calls == 1  # no window to wait for: told at once
