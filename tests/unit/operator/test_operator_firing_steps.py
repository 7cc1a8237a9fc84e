"""What a DebugTrigger's firing changes in its capture's steps (``firing_steps``).

Cases: a memory firing of debug-full keeps the quick steps, heap first then the other snapshots,
and marks the rest skipped with why (CPU profile and trace, the goroutine dump of their window,
every command in the container); a step that lasts outside a window (leak snapshots, a CPU
profile or a flight recorder's fallback trace without one) is skipped too; no built-in template
fired on memory starts a CPU profile or trace, which is what lets its pod skip the pod lock; a
restart firing adds the pod's YAML and logs once, and makes a logs step read the previous
container; other firings, and no firing, change nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from debugcap import templates
from debugcap.collectors import COLLECTORS
from debugcap.operator import firing_steps
from debugcap.operator.requests import Firing

WHEN = datetime(2026, 12, 4, 21, 0, tzinfo=UTC)


def firing(reason: str) -> Firing:
    return Firing(trigger="api-pre-oom", reason=reason, value="83% of the limit", time=WHEN, observed=83.0,
                  threshold=80.0)


MEMORY, RESTART = firing("memoryPercentOfLimit"), firing("restarted")
EXEC = ("ps", "proc-status", "fd-count", "open-files", "sockets", "resolv-conf", "disk", "deleted-files", "environment")


def expand(name: str, **overrides: object) -> templates.ExpandedTemplate:
    return templates.expand(name, overrides, collectors=COLLECTORS)


def custom(*steps: templates.Step) -> templates.ExpandedTemplate:
    return templates.ExpandedTemplate(name="mine", description="", parameters={}, steps=steps)


def test_a_memory_firing_keeps_the_quick_steps_heap_first_and_says_why_it_skips_the_others() -> None:
    fired = firing_steps.fired_template(expand("debug-full"), MEMORY)
    ran = [s.collector for s in fired.steps if not s.skipped]
    assert ran == ["pprof-heap",  # first: the kill may come any moment
                   "pprof-goroutineleak", "pprof-allocs", "pprof-threadcreate", "expvar", "metrics",  # snapshots
                   "pod-yaml", "events", "node-conditions", "logs", "flight-recorder", "pprof-block", "pprof-mutex"]
    skipped = {s.collector: s.skipped for s in fired.steps if s.skipped}
    assert skipped == {**dict.fromkeys(EXEC, firing_steps.NO_COMMANDS), "pprof-cpu": firing_steps.NO_PROFILE,
                       "pprof-goroutine": firing_steps.NO_WINDOW, "trace": firing_steps.NO_PROFILE}
    assert firing_steps.NO_PROFILE == ("a memory trigger's capture takes no CPU profile or trace: the heap comes "
                                       "first, before the kill")
    # Nothing skipped keeps a window or a duration that would size the capture's window or deadline.
    assert all(s.window is None and s.params == {} for s in fired.steps if s.skipped)
    assert all(s.window is None for s in fired.steps)
    assert (fired.name, fired.parameters) == ("debug-full", expand("debug-full").parameters)


def test_a_memory_firing_skips_whatever_lasts_even_outside_a_window() -> None:
    leak = firing_steps.fired_template(expand("go-leak", snapshots=3, interval_seconds=60), MEMORY)
    assert [(s.collector, s.skipped) for s in leak.steps] == [
        ("pprof-goroutineleak", ""),
        ("go-leak-snapshots", "a memory trigger's capture takes nothing that lasts (120 s here): the heap comes "
                              "first, before the kill")]
    mine = custom(templates.Step("pprof-cpu", {"seconds": 5}),
                  templates.Step("flight-recorder", {"fallback_seconds": 3}),
                  templates.Step("flight-recorder", {"fallback_seconds": 0}), templates.Step("pprof-goroutine", {}),
                  templates.Step("command", {"argv": ["id"]}))
    fired = firing_steps.fired_template(mine, MEMORY)
    assert [(s.collector, bool(s.skipped)) for s in fired.steps] == [
        ("pprof-goroutine", False), ("flight-recorder", False),  # a goroutine dump outside a window; a snapshot
        ("pprof-cpu", True), ("flight-recorder", True), ("command", True)]  # a CPU profile; a fallback trace
    assert fired.steps[2].skipped == firing_steps.NO_PROFILE
    assert "(3 s here)" in fired.steps[3].skipped and fired.steps[4].skipped == firing_steps.NO_COMMANDS


@pytest.mark.parametrize("name", [t.name for t in templates.list_templates()])
def test_no_template_fired_on_memory_starts_a_cpu_profile_or_trace(name: str) -> None:
    """Go serves one CPU profile and one trace at a time; the pod of a memory firing's capture
    skips the pod lock, which is safe only because its capture starts neither."""
    fired = firing_steps.fired_template(expand(name), MEMORY)
    assert not firing_steps.takes_time(fired)
    assert not {"pprof-cpu", "trace"} & {s.collector for s in fired.steps if not s.skipped}
    assert all(COLLECTORS[s.collector].expected_seconds(s.params) == 0 for s in fired.steps if not s.skipped)
    # The check captures.py makes before choosing the urgent path holds an unfired template back.
    assert firing_steps.takes_time(expand(name)) is (name not in ("disk-usage", "go-heap"))


def test_the_heap_first_template_is_unchanged_by_a_memory_firing() -> None:
    heap = expand("go-heap")
    assert firing_steps.fired_template(heap, MEMORY) == heap


def test_a_restart_firing_adds_the_pods_yaml_and_its_logs_once() -> None:
    profile = firing_steps.fired_template(expand("go-profile"), RESTART)
    assert profile.collectors[:2] == ("pod-yaml", "logs") and profile.collectors[2:] == expand("go-profile").collectors
    assert profile.steps[1].params == {}  # the collector's defaults: previous logs after a restart
    for name in ("debug-full", "go-heap"):  # both already have them: nothing duplicated
        assert firing_steps.fired_template(expand(name), RESTART) == expand(name)
    told_not_to = custom(templates.Step("logs", {"lines": 10, "previous": False}))
    fired = firing_steps.fired_template(told_not_to, RESTART)
    assert [(s.collector, dict(s.params)) for s in fired.steps] == [
        ("pod-yaml", {}), ("logs", {"lines": 10, "previous": True})]
    assert not any(s.skipped for s in fired.steps)


@pytest.mark.parametrize("reason", ["goroutines", "goroutineGrowthPerMinute", "alert"])
def test_other_firings_and_no_firing_change_nothing(reason: str) -> None:
    profile = expand("go-profile")
    assert firing_steps.fired_template(profile, firing(reason)) == profile
    assert firing_steps.fired_template(profile, None) == profile
