"""Rule heap-top on a real heap profile of goapp: the growing cache, never the tracer's buffers.

goapp starts a flight recorder at boot, whose trace buffers
(``runtime/trace.(*traceMultiplexer).startLocked``) hold a large share of its small heap: the
rule must name ``main.(*growingCache).add`` and leave the profiler's bytes to the attribution's profiler row.
"""

from __future__ import annotations

import pytest

from debugcap.analysis import appcode
from debugcap.analysis.findings import thresholds

from .reports import container, goapp_attribution, kinds, report, the

BAND = thresholds.BANDS["heap-top"]


def _cache_bytes() -> int:
    return next(r.value for r in goapp_attribution("heap").rows if r.function == "main.(*growingCache).add")


def test_the_cache_is_named_and_the_profilers_buffers_are_not() -> None:
    att = goapp_attribution("heap")
    assert att.profiler > 0, "the fixture's heap holds the flight recorder's buffers"
    rep = report(attribution={"heap": att})
    assert kinds(rep)[0] == ("heap-top", "main.(*growingCache).add")
    assert not any(appcode.is_profiler(subject) for _, subject in kinds(rep))
    assert "(no memory limit known)" in the(rep, "heap-top").message


@pytest.mark.parametrize(("share", "level"), [(5, "low"), (30, "medium"), (80, "high")])
def test_severity_is_the_share_of_the_memory_limit(share: float, level: str) -> None:
    limit = int(_cache_bytes() / (share / 100))
    f = the(report(attribution={"heap": goapp_attribution("heap")}, container=container(memory=limit)), "heap-top")
    assert f.value == pytest.approx(share, abs=0.01)
    assert (f.level, f.severity) == (level, BAND.severity(share))
    assert "memory limit" in f.message


def test_gomemlimit_is_the_yardstick_without_a_container_limit() -> None:
    limit = _cache_bytes() * 2
    f = the(report(attribution={"heap": goapp_attribution("heap")}, runtime={"GOMEMLIMIT": str(limit)}), "heap-top")
    assert f.value == pytest.approx(50) and f.level == "high" and "GOMEMLIMIT" in f.message


def test_heap_top_comes_after_cpu_hot() -> None:
    rep = report(attribution={"heap": goapp_attribution("heap"), "cpu": goapp_attribution("cpu")})
    assert [k for k, _ in kinds(rep) if k in ("cpu-hot", "heap-top")] == ["cpu-hot", "heap-top"]
