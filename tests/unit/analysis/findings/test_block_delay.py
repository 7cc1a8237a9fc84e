"""Rule block-delay on a real block profile of goapp: the contending function, by its waiting rate.

goapp's four ``main.contendedSection`` goroutines queue on one mutex: pprof's top ranks
``sync.(*Mutex).Lock``. The rule must name main.contendedSection with that leaf as context, rate
the seconds waited per second of the process's life (the block profile counts from its start), and
join the goroutines the dump shows queued there. The execution tracer's own waits are not a subject.
"""

from __future__ import annotations

import pytest

from debugcap.analysis import appcode
from debugcap.analysis.findings import thresholds

from .reports import GOAPP_FACTS, container, goapp_attribution, goapp_waiting, kinds, report, the

BAND = thresholds.BANDS["block-delay"]
UPTIME = GOAPP_FACTS["uptime_seconds"]["block"]


def _waited(function: str) -> float:
    return next(r.value for r in goapp_attribution("block").rows if r.function == function) / 1e9


def test_the_contending_function_is_named_with_its_rate_and_its_queue() -> None:
    rep = report(attribution={"block": goapp_attribution("block")}, waiting=goapp_waiting(),
                 container=container(uptime=UPTIME))
    f = the(rep, "block-delay")
    assert (f.subject, f.leaf) == ("main.contendedSection", "sync.(*Mutex).Lock")
    rate = _waited("main.contendedSection") / UPTIME
    assert f.unit == "s/s" and f.value == pytest.approx(rate, rel=1e-3)
    assert f.severity == BAND.severity(rate)
    queued = sum(w.count for w in goapp_waiting() if w.function == "main.contendedSection")
    assert queued >= 1, "the fixture's dump has contendedSection goroutines waiting on the lock"
    assert f.message.startswith("block delay in main.contendedSection (via sync.(*Mutex).Lock): goroutines were "
                                f"blocked {_waited('main.contendedSection'):.3g}s over the {UPTIME:.3g}s since the "
                                "container started")
    assert f"{queued} goroutine" in f.message and "[sync.Mutex.Lock]" in f.message
    assert not any(appcode.is_profiler(s) for _, s in kinds(rep))


@pytest.mark.parametrize(("rate", "level"), [(1, "low"), (3, "medium"), (10, "high")])
def test_severity_follows_the_waiting_rate(rate: float, level: str) -> None:
    uptime = _waited("main.contendedSection") / rate
    f = the(report(attribution={"block": goapp_attribution("block")}, container=container(uptime=uptime)),
            "block-delay")
    assert f.subject == "main.contendedSection"
    assert (f.level, f.severity) == (level, BAND.severity(rate))


def test_without_a_window_the_wait_is_low_and_says_so() -> None:
    f = the(report(attribution={"block": goapp_attribution("block")}), "block-delay")
    assert f.subject == "main.contendedSection" and f.value is None and f.level == "low"
    assert "(no window known" in f.message


def test_an_empty_block_profile_is_not_a_finding() -> None:
    att = goapp_attribution("block")
    assert kinds(report(attribution={"block": att.__class__(att.sample_type, att.unit, 0, 0, 0, "", ())})) == []
