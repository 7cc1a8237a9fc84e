"""Rule cpu-hot: the first row of the CPU top (highest flat) with its share of the sampled time."""

from __future__ import annotations

from .reports import kinds, messages, report, top


def test_hottest_function_is_a_finding() -> None:
    rep = report(cpu=top("nanoseconds", 10**9, ("main.mixStep", 7 * 10**8, 9 * 10**8),
                         ("main.hotLoop", 2 * 10**8, 10**9)))
    assert kinds(rep) == [("cpu-hot", "main.mixStep")]
    assert messages(rep) == ["CPU: main.mixStep is the hottest function, 70.0% flat, 90.0% cum of 1s sampled"]


def test_idle_cpu_profile_is_not_a_finding() -> None:
    assert kinds(report(cpu=top("nanoseconds", 0))) == []
