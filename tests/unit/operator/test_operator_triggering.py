"""What fires a DebugTrigger, as pure functions of readings, past firings and a time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from debugcap.errors import ConfigError
from debugcap.operator import triggering
from debugcap.operator.triggering import Crossing, Past, Reading, Termination, When

T0 = datetime(2026, 12, 4, 3, 0, 0, tzinfo=UTC)
MIB = 1 << 20
SPEC = {"target": {"selector": {"matchLabels": {"app": "api"}}}, "when": {"memoryPercentOfLimit": 80}}


def test_the_issues_example_parses_with_its_defaults() -> None:
    spec = triggering.parse_trigger({**SPEC, "when": {"memoryPercentOfLimit": 80, "goroutines": 10000,
                                                      "goroutineGrowthPerMinute": 500, "restarted": True,
                                                      "alert": {"name": "HighHeap"}},
                                     "cooldown": "15m", "captureTemplate": {"spec": {"ttl": "7d"}}})
    assert spec.when == When(80, 10000, 500, True, "HighHeap")
    assert spec.template == "go-heap" and spec.interval == timedelta(seconds=10)
    assert spec.cooldown == timedelta(minutes=15) and spec.max_per_hour == 6 and not spec.suspend
    assert spec.request.selector == "app=api" and spec.request.max_pods == 100


@pytest.mark.parametrize(("change", "field"), [
    ({"when": {}}, "spec.when"),
    ({"when": {"restarted": False}}, "spec.when"),
    ({"when": {"memoryPercentOfLimit": 150}}, "spec.when.memoryPercentOfLimit"),
    ({"when": {"memoryPercentOfLimit": "80"}}, "spec.when.memoryPercentOfLimit"),
    ({"when": {"goroutines": 0}}, "spec.when.goroutines"),
    ({"when": {"heapBytes": 5}}, "spec.when.heapBytes"),
    ({"when": {"alert": {}}}, "spec.when.alert"),
    ({"checkIntervalSeconds": 0}, "spec.checkIntervalSeconds"),
    ({"maxCapturesPerHour": 1000}, "spec.maxCapturesPerHour"),
    ({"cooldown": "soon"}, "spec.cooldown"),
    ({"target": {}}, "spec.target"),
    ({"captureTemplate": {"spec": {"target": {"pod": "x"}}}}, "spec.captureTemplate.spec.target"),
])
def test_bad_specs_name_the_field(change: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        triggering.parse_trigger({**SPEC, **change})
    assert str(caught.value).startswith(field)


def test_memory_crosses_at_its_share_of_the_limit() -> None:
    when = When(memory_percent=80)
    under = Reading("api-1", T0, memory_bytes=200 * MIB, memory_limit=256 * MIB)
    over = Reading("api-1", T0, memory_bytes=210 * MIB, memory_limit=256 * MIB)
    assert triggering.crossings(when, under, None, created=T0) == []
    (c,) = triggering.crossings(when, over, None, created=T0)
    assert (c.reason, c.observed, c.threshold) == ("memoryPercentOfLimit", 82.0, 80)
    assert "210.0 MiB of the 256.0 MiB limit (82%)" in c.value
    # No limit, no percentage: nothing crosses, whatever the memory.
    assert triggering.crossings(when, Reading("api-1", T0, memory_bytes=10 << 30), None, created=T0) == []


def test_goroutine_growth_needs_half_a_minute_of_checks_and_forgets_a_restart() -> None:
    g = triggering.GrowthTracker()
    assert g.add("p", T0, 100) is None
    assert g.add("p", T0 + timedelta(seconds=20), 300) is None  # 20 s: a burst, not yet a rate
    assert g.add("p", T0 + timedelta(seconds=30), 400) == pytest.approx(600.0)
    # The window slides: counts older than 90 s drop out, so a leak that stopped stops growing.
    for s in range(40, 200, 10):
        growth = g.add("p", T0 + timedelta(seconds=s), 400)
    assert growth == 0.0
    g.restart("p")
    assert g.add("p", T0 + timedelta(seconds=210), 10) is None


def test_growth_and_count_cross_their_thresholds() -> None:
    when = When(goroutines=5000, growth_per_minute=500)
    r = Reading("p", T0, goroutines=5200)
    assert [c.reason for c in triggering.crossings(when, r, 499.0, created=T0)] == ["goroutines"]
    assert [c.reason for c in triggering.crossings(when, r, 600.0, created=T0)] == ["goroutines",
                                                                                     "goroutineGrowthPerMinute"]


def test_a_restart_counts_only_when_recent_and_after_the_trigger_was_made() -> None:
    when = When(restarted=True)
    ended = Termination("OOMKilled", 137, T0)
    fresh = Reading("p", T0 + timedelta(seconds=20), restarts=1, termination=ended)
    (c,) = triggering.crossings(when, fresh, None, created=T0 - timedelta(hours=1))
    assert c.reason == "restarted" and c.observed == 1 and "OOMKilled (exit code 137)" in c.value
    assert triggering.crossings(when, fresh, None, created=T0 + timedelta(seconds=1)) == []  # before the trigger
    stale = Reading("p", T0 + timedelta(minutes=6), restarts=1, termination=ended)
    assert triggering.crossings(when, stale, None, created=T0 - timedelta(hours=1)) == []


def _crossing(pod: str = "p", reason: str = "goroutines", at: datetime = T0, observed: float = 6000) -> Crossing:
    return Crossing(pod, reason, observed, 5000, "", at)


def test_cooldown_is_per_pod_and_signal() -> None:
    past = [Past("p", "goroutines", T0 - timedelta(minutes=10))]
    found = [_crossing(), _crossing(reason="memoryPercentOfLimit"), _crossing(pod="q")]
    verdicts = triggering.judge(found, past, now=T0, cooldown=timedelta(minutes=15), max_per_hour=6, running={}, cap=4)
    assert [(v.fire, v.limit) for v in verdicts] == [(False, "cooldown"), (True, ""), (True, "")]
    later = triggering.judge([_crossing()], past, now=T0 + timedelta(minutes=5), cooldown=timedelta(minutes=15),
                             max_per_hour=6, running={}, cap=4)
    assert later[0].fire


def test_the_hourly_limit_counts_the_firings_of_this_check_too() -> None:
    past = [Past(f"old{i}", "goroutines", T0 - timedelta(minutes=50)) for i in range(4)]
    found = [_crossing(pod=f"p{i}") for i in range(3)]
    verdicts = triggering.judge(found, past, now=T0, cooldown=timedelta(0), max_per_hour=6, running={}, cap=10)
    assert [v.fire for v in verdicts] == [True, True, False]
    assert verdicts[2].limit == "maxCapturesPerHour" and "6" in verdicts[2].message
    # An hour after, the old ones no longer count.
    assert all(v.fire for v in triggering.judge(found, past, now=T0 + timedelta(minutes=11), cooldown=timedelta(0),
                                                max_per_hour=6, running={}, cap=10))


def test_the_operators_cap_on_running_triggered_captures() -> None:
    verdicts = triggering.judge([_crossing(pod="a"), _crossing(pod="b")], [], now=T0, cooldown=timedelta(0),
                                max_per_hour=6, running={"regular": 3}, cap=4)
    assert [(v.fire, v.limit) for v in verdicts] == [(True, ""), (False, "triggeredCaptures")]
    assert "DEBUGCAP_OPERATOR_TRIGGERED_CAPTURES" in verdicts[1].message
    # Memory firings count apart: slow regular captures cannot keep a pre-kill capture out.
    urgent = triggering.judge([_crossing(pod="c", reason="memoryPercentOfLimit")], [], now=T0,
                              cooldown=timedelta(0), max_per_hour=6, running={"regular": 4}, cap=4)
    assert urgent[0].fire


def test_a_restart_fires_once_however_many_checks_see_it() -> None:
    ended = T0 - timedelta(minutes=2)
    restart = Crossing("p", "restarted", 2, None, "", T0, since=ended)
    past = [Past("p", "restarted", ended + timedelta(seconds=5), observed=2)]
    (v,) = triggering.judge([restart], past, now=T0, cooldown=timedelta(0), max_per_hour=6, running={}, cap=4)
    assert not v.fire and v.limit == "restart seen"
    later = Crossing("p", "restarted", 3, None, "", T0, since=T0 - timedelta(seconds=10))
    (v,) = triggering.judge([later], past, now=T0, cooldown=timedelta(0), max_per_hour=6, running={}, cap=4)
    assert v.fire


def test_a_pod_recreated_under_its_name_has_new_restarts_though_its_count_starts_over() -> None:
    """web-0's restart 3 was captured last week; the new web-0's restart 1 is news."""
    past = [Past("web-0", "restarted", T0 - timedelta(days=7), observed=3)]
    new = Crossing("web-0", "restarted", 1, None, "", T0, since=T0 - timedelta(seconds=20))
    (v,) = triggering.judge([new], past, now=T0, cooldown=timedelta(minutes=15), max_per_hour=6, running={}, cap=4)
    assert v.fire


def test_a_long_interval_keeps_a_restart_fresh_for_three_checks() -> None:
    when = When(restarted=True)
    ended = Termination("Error", 1, T0)
    r = Reading("p", T0 + timedelta(minutes=8), restarts=1, termination=ended)
    created = T0 - timedelta(hours=1)
    assert triggering.crossings(when, r, None, created=created) == []
    fresh = triggering.restart_fresh(timedelta(minutes=10))
    assert [c.reason for c in triggering.crossings(when, r, None, created=created, fresh=fresh)] == ["restarted"]


@pytest.mark.parametrize(("template", "field"), [
    ({"metadata": {"labels": {"team": "has space"}}}, "spec.captureTemplate.metadata.labels.team"),
    ({"metadata": {"labels": {"bad key!": "x"}}}, "spec.captureTemplate.metadata.labels"),
    ({"spec": {"parameters": {"cpuSeconds": 0}}}, "spec.captureTemplate.spec.parameters.cpuSeconds"),
    ({"spec": {"ttl": "soon"}}, "spec.captureTemplate.spec.ttl"),
    ({"spec": {"ttl": "99999999999d"}}, "spec.captureTemplate.spec.ttl"),
])
def test_the_capture_template_is_checked_with_the_trigger(template: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        triggering.parse_trigger({**SPEC, "captureTemplate": template})
    assert str(caught.value).startswith(field)


def test_a_huge_cooldown_is_a_clear_error_not_an_overflow() -> None:
    with pytest.raises(ConfigError, match="spec.cooldown"):
        triggering.parse_trigger({**SPEC, "cooldown": "99999999999d"})
