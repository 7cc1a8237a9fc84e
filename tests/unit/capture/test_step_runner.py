"""Running steps without a cluster: stand-in collectors in a test-local registry, a fake clock.

Cases:
- a collector that raises (a bug, or a ``DebugcapError``) is recorded Failed with its message,
  the files it added before stay in the bundle, and the other steps go on;
- records come back in template order whatever order the steps end in, and each is reported
  as it ends;
- a step's duration is measured on the capture's clock;
- with ``parallelism=1`` steps run one after the other, in template order;
- a fault in the engine itself (a step naming no collector) is raised, not recorded;
- everything collected is in the bundle and its manifest, and the phase follows the records.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from debugcap import errors
from debugcap.bundle import manifest
from debugcap.capture import Phase
from debugcap.collectors import base

from .conftest import HANG, FakeClock, Rig, manifest_of, members, stand_in, step, template, writes

S = manifest.CollectorStatus
Registry = dict[str, type[base.Collector]]


def test_failed_collector_is_recorded_and_capture_continues(rig: Rig, registry: Registry) -> None:
    def buggy(ctx: base.CollectContext) -> base.CollectorResult:
        ctx.add_bytes("proc/half.txt", b"half\n")
        raise RuntimeError("boom")

    def refused(_ctx: base.CollectContext) -> base.CollectorResult:
        raise errors.CollectorError("the pod said no")

    stand_in(registry, "buggy", buggy)
    stand_in(registry, "refused", refused)
    stand_in(registry, "fine", writes("proc/fine.txt"))
    outcome = rig.run(template(step("buggy"), step("refused"), step("fine")))
    assert [(r.name, r.status, r.message, r.files) for r in outcome.records] == [
        ("buggy", S.FAILED, "internal error in buggy: RuntimeError: boom", ("proc/half.txt",)),
        ("refused", S.FAILED, "the pod said no", ()),
        ("fine", S.OK, "", ("proc/fine.txt",)),
    ]
    assert outcome.phase is Phase.PARTIALLY_FAILED
    files = members(outcome.bundle.path)
    assert (files["proc/half.txt"], files["proc/fine.txt"]) == (b"half\n", b"evidence\n")
    assert [c["status"] for c in manifest_of(outcome.bundle.path)["collectors"]] == ["failed", "failed", "ok"]


def test_records_come_back_in_template_order_whatever_order_steps_end(rig: Rig, registry: Registry) -> None:
    go = {name: threading.Event() for name in ("a", "b", "c")}

    def waits(name: str) -> Callable[[base.CollectContext], base.CollectorResult]:
        def behaviour(ctx: base.CollectContext) -> base.CollectorResult:
            assert go[name].wait(HANG)
            ctx.add_bytes(f"proc/{name}.txt", name.encode())
            return base.CollectorResult(base.Status.OK)
        return behaviour

    for name in go:
        stand_in(registry, name, waits(name))
    running = rig.start(template(step("a"), step("b"), step("c")))
    for name in ("c", "b", "a"):
        go[name].set()
        rig.until_reported(name)
    outcome = running.result(HANG)
    assert [r.name for r in outcome.records] == ["a", "b", "c"]
    assert [m for m, _r in rig.reported] == ["c", "b", "a"]
    assert outcome.phase is Phase.COMPLETED
    assert [r.bytes for r in outcome.records] == [1, 1, 1]


def test_step_duration_is_measured_on_the_capture_clock(rig: Rig, clock: FakeClock, registry: Registry) -> None:
    entered, go = threading.Event(), threading.Event()

    def slow(_ctx: base.CollectContext) -> base.CollectorResult:
        entered.set()
        assert go.wait(HANG)
        return base.CollectorResult(base.Status.OK)

    stand_in(registry, "slow", slow)
    running = rig.start(template(step("slow")))
    assert entered.wait(HANG)
    clock.advance(3.25)
    go.set()
    assert running.result(HANG).records[0].duration_ms == 3250


def test_parallelism_one_runs_steps_one_after_the_other_in_template_order(rig: Rig, registry: Registry) -> None:
    order: list[str] = []
    lock = threading.Lock()

    def records(name: str) -> Callable[[base.CollectContext], base.CollectorResult]:
        def behaviour(_ctx: base.CollectContext) -> base.CollectorResult:
            with lock:
                order.append(f"start {name}")
            with lock:
                order.append(f"end {name}")
            return base.CollectorResult(base.Status.OK)
        return behaviour

    for name in ("a", "b", "c"):
        stand_in(registry, name, records(name))
    rig.run(template(step("a"), step("b"), step("c")), parallelism=1)
    assert order == ["start a", "end a", "start b", "end b", "start c", "end c"]


def test_engine_fault_is_raised_not_recorded(rig: Rig, registry: Registry) -> None:
    stand_in(registry, "fine", writes("proc/fine.txt"))
    with pytest.raises(KeyError, match="missing"):
        rig.run(template(step("fine"), step("missing")))
    assert not list(rig.out_dir.glob("*.tar.gz"))


def test_nothing_useful_collected_is_failed(rig: Rig, registry: Registry) -> None:
    stand_in(registry, "skips", lambda _ctx: base.CollectorResult(base.Status.SKIPPED, "no shell"))
    outcome = rig.run(template(step("skips")))
    assert (outcome.phase, outcome.records[0].message) == (Phase.FAILED, "no shell")
    assert outcome.bundle.path.exists()
