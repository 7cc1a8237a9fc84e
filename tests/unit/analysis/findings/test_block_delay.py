"""Rule block-delay on a real block profile of goapp: the contending function, by its waiting rate.

goapp's four ``main.contendedSection`` goroutines queue on one mutex: pprof's top ranks
``sync.(*Mutex).Lock``. The rule must name main.contendedSection with that leaf as context, rate
the seconds waited per second of the process's life (the block profile counts from its start), and
join the goroutines the dump shows queued there. The execution tracer's own waits are not a subject.
"""

from __future__ import annotations

import pytest

from debugcap.analysis import appcode, attribution
from debugcap.analysis.findings import thresholds

from .reports import GOAPP_FACTS, container, goapp_attribution, goapp_waiting, kinds, report, the

BAND = thresholds.BANDS["block-delay"]
STARTED = GOAPP_FACTS["started_at"]


def _window() -> float:
    """From goapp's start to when the block profile was written: what the profile counts over."""
    return goapp_attribution("block").time_ns / 1e9 - STARTED


def _waited(function: str) -> float:
    return next(r.value for r in goapp_attribution("block").rows if r.function == function) / 1e9


def test_the_contending_function_is_named_with_its_rate_and_its_queue() -> None:
    rep = report(attribution={"block": goapp_attribution("block")}, waiting=goapp_waiting(),
                 container=container(uptime=1, started=STARTED))
    f = the(rep, "block-delay")
    assert (f.subject, f.leaf) == ("main.contendedSection", "sync.(*Mutex).Lock")
    assert 0 < _window() < 60
    rate = _waited("main.contendedSection") / _window()
    assert f.unit == "s/s" and f.value == pytest.approx(rate, rel=1e-3)
    assert f.severity == BAND.severity(rate)
    queued = sum(w.count for w in goapp_waiting()
                 if w.function == "main.contendedSection" and w.state in attribution.WAITING_STATES)
    assert queued >= 1, "the fixture's dump has contendedSection goroutines waiting on the lock"
    assert f.message.startswith("block delay in main.contendedSection (via sync.(*Mutex).Lock): goroutines were "
                                f"blocked {_waited('main.contendedSection'):.3g}s over the {_window():.3g}s from the "
                                "container's start to the profile")
    assert f"{queued} goroutine" in f.message and "[sync.Mutex.Lock]" in f.message
    assert not any(appcode.is_profiler(s) for _, s in kinds(rep))


@pytest.mark.parametrize(("rate", "level"), [(1, "low"), (3, "medium"), (10, "high")])
def test_severity_follows_the_waiting_rate(rate: float, level: str) -> None:
    # The start that makes the profile's window this long.
    started = goapp_attribution("block").time_ns / 1e9 - _waited("main.contendedSection") / rate
    f = the(report(attribution={"block": goapp_attribution("block")}, container=container(started=started)),
            "block-delay")
    assert f.subject == "main.contendedSection"
    assert (f.level, f.severity) == (level, BAND.severity(rate))


def test_without_the_profiles_time_the_uptime_at_the_capture_is_the_window() -> None:
    att = goapp_attribution("block")
    untimed = att.__class__(att.sample_type, att.unit, att.total, 0, att.profiler, att.profiler_leaf, att.rows)
    f = the(report(attribution={"block": untimed}, container=container(uptime=10, started=STARTED)), "block-delay")
    assert f.value == pytest.approx(_waited("main.contendedSection") / 10, rel=1e-3)
    assert "over the 10s from the container's start to the capture's" in f.message


def test_without_a_window_the_wait_is_low_and_says_so() -> None:
    f = the(report(attribution={"block": goapp_attribution("block")}), "block-delay")
    assert f.subject == "main.contendedSection" and f.value is None and f.level == "low"
    assert "(no window known" in f.message


def test_an_empty_block_profile_is_not_a_finding() -> None:
    att = goapp_attribution("block")
    assert kinds(report(attribution={"block": att.__class__(att.sample_type, att.unit, 0, 0, 0, "", ())})) == []


def test_long_waits_and_uptimes_read_as_seconds_not_exponents() -> None:
    from debugcap.analysis.findings.base import secs

    assert [secs(v) for v in (0.5, 193.4, 999.4, 999.7, 1520.2, 6050.0, 86400.0)] == [
        "0.5s", "193s", "999s", "1000s", "1520s", "6050s", "86400s"]
