"""Rule mutex-delay on a real mutex profile of goapp: waits charged to the function releasing the lock.

The mutex profile records at ``sync.(*Mutex).Unlock`` how long *other* goroutines waited for the
lock: the message says so ("goroutines waited N s for locks released in main.contendedSection")
instead of claiming the function itself waited.
"""

from __future__ import annotations

import pytest

from debugcap.analysis import findings
from debugcap.analysis.findings import thresholds

from .reports import GOAPP_FACTS, container, goapp_attribution, goapp_waiting, report, the

BAND = thresholds.BANDS["mutex-delay"]
STARTED = GOAPP_FACTS["started_at"]


def _waited() -> float:
    return next(r.value for r in goapp_attribution("mutex").rows if r.function == "main.contendedSection") / 1e9


def test_waits_are_charged_to_the_releasing_function_and_worded_as_others_waiting() -> None:
    f = the(report(attribution={"mutex": goapp_attribution("mutex")}, waiting=goapp_waiting(),
                   container=container(started=STARTED)), "mutex-delay")
    assert (f.subject, f.leaf) == ("main.contendedSection", "sync.(*Mutex).Unlock")
    rate = _waited() / (goapp_attribution("mutex").time_ns / 1e9 - STARTED)
    assert f.value == pytest.approx(rate, rel=1e-3) and f.severity == BAND.severity(rate)
    assert f.message.startswith(f"mutex contention: goroutines waited {_waited():.3g}s for locks released in "
                                "main.contendedSection (via sync.(*Mutex).Unlock) over the ")
    assert "queued in it in the dump [sync.Mutex.Lock]" in f.message


@pytest.mark.parametrize(("rate", "level"), [(0.1, "low"), (0.5, "medium"), (2, "high")])
def test_severity_follows_the_waiting_rate(rate: float, level: str) -> None:
    started = goapp_attribution("mutex").time_ns / 1e9 - _waited() / rate
    f = the(report(attribution={"mutex": goapp_attribution("mutex")}, container=container(started=started)),
            "mutex-delay")
    assert (f.level, f.severity) == (level, BAND.severity(rate))


def test_at_the_same_level_mutex_contention_ranks_above_block_delay() -> None:
    # A lock wait is always lost time; a block wait may be a worker idle on its channel.
    rep = report(attribution={"mutex": goapp_attribution("mutex"), "block": goapp_attribution("block")})
    got = [(f.kind, f.level) for f in findings.evaluate(rep) if f.kind.endswith("-delay")]
    assert got == [("mutex-delay", "low"), ("block-delay", "low")]
