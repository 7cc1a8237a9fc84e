"""Engine decisions that need no cluster: when each step starts, and what phase a capture ends in.

Cases for ``window.schedule``: windowed steps come first and start at once; an instant step in the
window (the goroutine dump) waits half the shortest window so it lands mid-window; other steps
start at once after them; a template without a window starts everything at once.
Cases for ``phase_of``: all ok is Completed; skipped collectors do not spoil Completed; a failed
or a partial collector beside useful ones is PartiallyFailed; nothing ok or partial is Failed.
"""

from __future__ import annotations

import pytest

from debugcap import capture, templates
from debugcap.bundle import manifest
from debugcap.capture import window
from debugcap.collectors import COLLECTORS

S = manifest.CollectorStatus


def _plan(name: str, **params: object) -> list[tuple[str, float]]:
    expanded = templates.expand(name, params, collectors=COLLECTORS)
    return [(step.collector, delay) for _i, step, delay in window.schedule(expanded)]


def test_window_starts_together_and_goroutine_dump_lands_mid_window() -> None:
    plan = _plan("go-profile", cpu_seconds=10, trace_seconds=4)
    assert plan[:3] == [("pprof-cpu", 0.0), ("pprof-goroutine", 2.0), ("trace", 0.0)]
    assert [delay for _c, delay in plan[3:]] == [0.0] * 9
    assert [c for c, _d in plan[3:]] == ["pprof-goroutineleak", "flight-recorder", "pprof-heap", "pprof-allocs",
                                        "pprof-block", "pprof-mutex",
                                        "pprof-threadcreate", "expvar", "metrics"]


def test_snapshots_go_before_the_window_so_it_cannot_pollute_them() -> None:
    expanded = templates.expand("go-profile", {"cpu_seconds": 10, "trace_seconds": 4}, collectors=COLLECTORS)
    before = frozenset(name for name, c in COLLECTORS.items() if c.before_window)
    plan = [(step.collector, delay) for _i, step, delay in window.schedule(expanded, before)]
    snapshots = ["pprof-goroutineleak", "pprof-heap", "pprof-allocs", "pprof-threadcreate", "expvar", "metrics"]
    assert plan[:6] == [(c, 0.0) for c in snapshots]
    assert plan[6:9] == [("pprof-cpu", 0.0), ("pprof-goroutine", 2.0), ("trace", 0.0)]
    assert [c for c, _d in plan[9:]] == ["flight-recorder", "pprof-block", "pprof-mutex"]


def test_windowed_steps_are_scheduled_first_whatever_the_template_order() -> None:
    plan = _plan("network-trace", trace_seconds=3)
    assert plan == [("pprof-goroutine", 1.5), ("trace", 0.0), ("sockets", 0.0), ("resolv-conf", 0.0)]


def test_every_step_is_scheduled_exactly_once() -> None:
    expanded = templates.expand("debug-full", {"cpu_seconds": 1}, collectors=COLLECTORS)
    planned = sorted(step.collector for _i, step, _delay in window.schedule(expanded))
    assert planned == sorted(expanded.collectors)


def test_template_without_window_starts_everything_at_once() -> None:
    assert _plan("disk-usage") == [("disk", 0.0), ("deleted-files", 0.0)]


def _records(*statuses: manifest.CollectorStatus) -> list[manifest.CollectorRecord]:
    return [manifest.CollectorRecord(name=f"c{i}", status=s, duration_ms=1) for i, s in enumerate(statuses)]


@pytest.mark.parametrize(
    ("statuses", "phase"),
    [
        ([S.OK, S.OK], capture.Phase.COMPLETED),
        ([S.OK, S.SKIPPED], capture.Phase.COMPLETED),
        ([S.OK, S.FAILED], capture.Phase.PARTIALLY_FAILED),
        ([S.OK, S.PARTIAL], capture.Phase.PARTIALLY_FAILED),
        ([S.PARTIAL, S.SKIPPED], capture.Phase.PARTIALLY_FAILED),
        ([S.FAILED, S.SKIPPED], capture.Phase.FAILED),
        ([S.SKIPPED], capture.Phase.FAILED),
        ([], capture.Phase.FAILED),
    ],
    ids=["all-ok", "ok+skipped", "ok+failed", "ok+partial", "partial+skipped", "failed+skipped", "all-skipped",
         "nothing"],
)
def test_phase(statuses: list[manifest.CollectorStatus], phase: capture.Phase) -> None:
    assert capture.phase_of(_records(*statuses)) is phase
