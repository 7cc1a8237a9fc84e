"""The one table of severity bands for the rules that measure a rate; docs/findings.md mirrors it.

Callers: the rules ``cpu-hot``, ``heap-top``, ``heap-growth``, ``block-delay``, ``mutex-delay`` and
``goroutine-growth`` and ``sched-latency`` of :mod:`debugcap.analysis.findings`; a unit test checks the docs table
against :data:`BANDS`. A measured value at or above ``medium`` is medium, at or above ``high`` is
high, below is low; a value that cannot be measured (no window, no yardstick) is low, and the
message says what was missing. Each band's severity places the finding among all others
(:data:`debugcap.analysis.model.HIGH_FROM` and ``MEDIUM_FROM`` name the levels).

The bands are judgement calls, each with its reason:

- mutex-delay, seconds goroutines waited for a lock per second of the window, i.e. how many
  goroutines on average stood in the queue: a lock wait is always lost time, so a quarter of a
  goroutine is already worth a look and a whole one is severe;
- block-delay, the same over channels and locks together: a worker parked on its channel waiting
  for work is 1 s/s of ordinary idleness, so only several goroutines at once count;
- cpu-hot, the function's share of the CPU the container may use (its limit, else GOMAXPROCS):
  past three quarters, the container is throttled or out of cores because of this one function;
- heap-top, the function's in-use heap against the memory limit (else GOMEMLIMIT): the share the
  OOM killer will look at;
- heap-growth, in-use growth per minute against that limit: 1 %/min fills it within two hours,
  5 %/min within twenty minutes; without a limit, MiB per minute;
- goroutine-growth, goroutines added per minute: a service's pool grows with load in bursts,
  a steady hundred a minute is a leak;
- sched-latency, the p99 wait of a runnable goroutine for a processor: the scheduler's time slice
  (10 ms) waited out regularly is CPU starvation; five slices, a CPU quota throttling the
  container or GOMAXPROCS far below the work (findings/sched_latency.py says more).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class Band:
    measure: str  # what the value is, as docs/findings.md words it
    unit: str
    medium: float
    high: float
    severities: tuple[int, int, int]  # low, medium, high

    def level(self, value: float | None) -> str:
        if value is None or value < self.medium:
            return "low"
        return "high" if value >= self.high else "medium"

    def severity(self, value: float | None) -> int:
        return self.severities[("low", "medium", "high").index(self.level(value))]


BANDS: Final[dict[str, Band]] = {
    "mutex-delay": Band("seconds goroutines waited for locks released in the function, per second of window",
                        "s/s", 0.25, 1.0, (45, 62, 84)),
    "block-delay": Band("seconds goroutines were blocked in the function (channels, locks), per second of window",
                        "s/s", 2.0, 8.0, (42, 58, 83)),
    "cpu-hot": Band("the function's CPU as a share of the container's CPU limit (else GOMAXPROCS cores)",
                    "%", 25.0, 75.0, (40, 60, 82)),
    "heap-top": Band("the function's in-use heap as a share of the memory limit (else GOMEMLIMIT)",
                     "%", 25.0, 50.0, (35, 57, 81)),
    "heap-growth": Band("the function's in-use heap growth per minute as a share of the memory limit",
                        "%/min", 1.0, 5.0, (50, 70, 90)),
    "heap-growth-no-limit": Band("the function's in-use heap growth per minute, when no limit is known",
                                 "MiB/min", 1.0, 10.0, (50, 70, 90)),
    "goroutine-growth": Band("goroutines added per minute across the snapshots", "/min", 10.0, 100.0,
                             (45, 65, 85)),
    "sched-latency": Band("the execution trace's p99 wait from runnable to running (none under 1 ms)", "ms",
                          10.0, 50.0, (40, 60, 82)),
}
