"""What a DebugTrigger's firing changes in its capture's steps (``firing_steps``).

Cases: a memory firing of debug-full keeps the quick steps, heap first then the other snapshots,
and marks the rest skipped with why (CPU profile and trace, the goroutine dump of their window,
the goroutineleak profile's GC, every command in the container); a step that lasts outside a
window (leak snapshots, a CPU profile or a flight recorder's fallback trace without one) is
skipped too, and a CPU profile or trace whatever its seconds (Go turns seconds<=0 into 30 s);
a heap step's forced GC and a goroutine step's debug2 are taken out and said; a template without
a heap profile gets one, said, and keeps_heap/check_memory_template tell a trigger's check; no
built-in template fired on memory starts a CPU profile or trace, which is what lets its pod skip
the pod lock; a restart firing adds the pod's YAML and logs once, and makes a logs step read the
previous container; for a container that is not running, its Go and exec steps are skipped with
its state; other firings, and no firing, change nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from debugcap import templates
from debugcap.collectors import COLLECTORS
from debugcap.errors import ConfigError
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
                   "pprof-allocs", "pprof-threadcreate", "expvar", "metrics",  # snapshots
                   "pod-yaml", "events", "node-conditions", "logs", "flight-recorder", "pprof-block", "pprof-mutex"]
    skipped = {s.collector: s.skipped for s in fired.steps if s.skipped}
    assert skipped == {**dict.fromkeys(EXEC, firing_steps.NO_COMMANDS), "pprof-cpu": firing_steps.NO_PROFILE,
                       "pprof-goroutine": firing_steps.NO_WINDOW, "trace": firing_steps.NO_PROFILE,
                       "pprof-goroutineleak": firing_steps.NO_GC}  # a GC cycle per request
    assert firing_steps.NO_PROFILE == ("a memory trigger's capture takes no CPU profile or trace: the heap comes "
                                       "first, before the kill")
    # Nothing skipped keeps a window or a duration that would size the capture's window or deadline.
    assert all(s.window is None and s.params == {} for s in fired.steps if s.skipped)
    assert all(s.window is None for s in fired.steps)
    assert (fired.name, fired.parameters) == ("debug-full", expand("debug-full").parameters)


def test_a_memory_firing_skips_whatever_lasts_even_outside_a_window() -> None:
    leak = firing_steps.fired_template(expand("go-leak", snapshots=3, interval_seconds=60), MEMORY)
    assert [(s.collector, s.skipped) for s in leak.steps] == [
        ("pprof-heap", ""),  # added: go-leak has none of its own
        ("go-leak-snapshots", "a memory trigger's capture takes nothing that lasts (120 s here): the heap comes "
                              "first, before the kill"),
        ("pprof-goroutineleak", firing_steps.NO_GC)]
    mine = custom(templates.Step("pprof-cpu", {"seconds": 5}),
                  templates.Step("flight-recorder", {"fallback_seconds": 3}),
                  templates.Step("flight-recorder", {"fallback_seconds": 0}), templates.Step("pprof-goroutine", {}),
                  templates.Step("command", {"argv": ["id"]}))
    fired = firing_steps.fired_template(mine, MEMORY)
    assert [(s.collector, bool(s.skipped)) for s in fired.steps] == [
        ("pprof-heap", False),  # added
        ("pprof-goroutine", False), ("flight-recorder", False),  # a goroutine dump outside a window; a snapshot
        ("pprof-cpu", True), ("flight-recorder", True), ("command", True)]  # a CPU profile; a fallback trace
    assert fired.steps[3].skipped == firing_steps.NO_PROFILE
    assert "(3 s here)" in fired.steps[4].skipped and fired.steps[5].skipped == firing_steps.NO_COMMANDS


@pytest.mark.parametrize("seconds", [0, -1, "x"])
def test_a_cpu_profile_or_trace_is_skipped_whatever_its_seconds(seconds: object) -> None:
    """Go's handlers turn seconds<=0 (and a bad value) into 30 s for a CPU profile, 1 s for a trace."""
    mine = custom(templates.Step("pprof-heap", {}), templates.Step("pprof-cpu", {"seconds": seconds}),
                  templates.Step("trace", {"seconds": seconds}))
    fired = firing_steps.fired_template(mine, MEMORY)
    assert [(s.collector, s.skipped) for s in fired.steps] == [
        ("pprof-heap", ""), ("pprof-cpu", firing_steps.NO_PROFILE), ("trace", firing_steps.NO_PROFILE)]
    assert firing_steps.takes_time(mine) and not firing_steps.takes_time(fired)


def test_a_memory_firing_forces_no_gc_and_takes_no_full_goroutine_dump() -> None:
    mine = custom(templates.Step("pprof-goroutine", {}),  # the collector's default: proto and debug2
                  templates.Step("pprof-heap", {"gc": True, "note": 1}),
                  templates.Step("pprof-goroutine", {"formats": ["debug2"]}),
                  templates.Step("pprof-goroutineleak", {"formats": ["proto"]}),
                  templates.Step("go-leak-snapshots", {"snapshots": 1}))  # no wait, but heap?gc=1
    fired = firing_steps.fire(mine, MEMORY)
    assert [(s.collector, dict(s.params), s.skipped) for s in fired.template.steps] == [
        ("pprof-heap", {"gc": False, "note": 1}, ""),
        ("pprof-goroutine", {"formats": ["proto"]}, ""),
        ("pprof-goroutine", {"formats": ["proto", "debug1"]}, ""),  # nothing left: the quick ones
        ("pprof-goroutineleak", {}, firing_steps.NO_GC), ("go-leak-snapshots", {}, firing_steps.NO_GC)]
    assert fired.changes == (firing_steps.GOROUTINES_WITHOUT_DEBUG2, firing_steps.HEAP_WITHOUT_GC)  # each once
    assert firing_steps.fire(expand("go-heap"), MEMORY).changes == ()


@pytest.mark.parametrize("name", ["network-trace", "disk-usage"])
def test_a_template_without_a_heap_gets_one_and_a_trigger_can_refuse_it(name: str) -> None:
    template = expand(name)
    fired = firing_steps.fire(template, MEMORY)
    assert fired.template.steps[0] == templates.Step("pprof-heap", {"gc": False})
    assert all(s.skipped for s in fired.template.steps[1:])
    assert fired.changes == (f'pprof-heap added: template "{name}" takes no heap profile, which is what a memory '
                             "trigger's capture is for",)
    assert not firing_steps.keeps_heap(template)
    with pytest.raises(ConfigError, match=f'^spec.template: template "{name}" takes no heap profile'):
        firing_steps.check_memory_template(template)
    for kept in ("go-heap", "go-profile", "debug-full"):
        assert firing_steps.keeps_heap(expand(kept))
        firing_steps.check_memory_template(expand(kept))
    in_window = custom(templates.Step("pprof-heap", {}, window="profile"))
    assert not firing_steps.keeps_heap(in_window)


@pytest.mark.parametrize("name", [t.name for t in templates.list_templates()])
def test_no_template_fired_on_memory_starts_a_cpu_profile_or_trace(name: str) -> None:
    """Go serves one CPU profile and one trace at a time; the pod of a memory firing's capture
    skips the pod lock, which is safe only because its capture starts neither."""
    fired = firing_steps.fired_template(expand(name), MEMORY)
    assert not firing_steps.takes_time(fired)
    assert not {"pprof-cpu", "trace"} & {s.collector for s in fired.steps if not s.skipped}
    assert all(COLLECTORS[s.collector].expected_seconds(s.params) == 0 for s in fired.steps if not s.skipped)
    # The check captures.py makes before choosing the urgent path holds an unfired template back.
    assert firing_steps.takes_time(expand(name)) is (name not in ("disk-usage", "go-heap", "go-vitals"))


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


def test_a_container_not_running_keeps_only_the_kubernetes_steps() -> None:
    fired = firing_steps.not_running(firing_steps.fired_template(expand("debug-full"), RESTART),
                                     "waiting: CrashLoopBackOff")
    kept = [s.collector for s in fired.steps if not s.skipped]
    assert kept == ["pod-yaml", "events", "node-conditions", "logs"]
    why = {s.skipped for s in fired.steps if s.skipped}
    assert why == {firing_steps.NOT_RUNNING.format(state="waiting: CrashLoopBackOff")}
    assert "waiting: CrashLoopBackOff" in why.pop()
    assert all(s.params == {} and s.window is None for s in fired.steps if s.skipped)


@pytest.mark.parametrize("reason", ["goroutines", "goroutineGrowthPerMinute", "alert"])
def test_other_firings_and_no_firing_change_nothing(reason: str) -> None:
    profile = expand("go-profile")
    assert firing_steps.fired_template(profile, firing(reason)) == profile
    assert firing_steps.fired_template(profile, None) == profile
