"""Rule ``sched-latency``: runnable goroutines wait long for a processor (the execution trace's p99).

Registered in :data:`debugcap.analysis.findings.RULES`. Reads :attr:`Report.trace` (the
summary of ``trace/trace.out``, :mod:`debugcap.analysis.traces`) and, for its cause, the
container's CPU limit (:attr:`Report.container`).

The measure is the 99th percentile of the waits from runnable to running. The bands, judgement
calls:

- under 1 ms, no finding: Go's scheduler starts a runnable goroutine within microseconds while a
  processor (P) is free;
- from 1 ms, low: goroutines queue now and then for one of the GOMAXPROCS processors;
- from 10 ms, medium: one wait in a hundred lasts longer than the scheduler's time slice (10 ms,
  after which a running goroutine is preempted): runnable work regularly waits out a whole slice,
  which is CPU starvation, and every request that waits pays it in latency;
- from 50 ms, high: five time slices; at that point a CFS quota (the CPU limit) is usually
  throttling the container, or GOMAXPROCS is far below the work.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Final

from debugcap.analysis import model
from debugcap.analysis.findings.thresholds import BANDS

KIND: Final = "sched-latency"
NOTICE_NS: Final = 1_000_000  # under this, no finding at all
BAND: Final = BANDS[KIND]  # medium from 10 ms, high from 50 ms (the one table)


def check(report: model.Report) -> Iterator[model.Finding]:
    t = report.trace
    if t is None or t.sched_latency_p99_ns is None or t.sched_latency_p99_ns < NOTICE_NS:
        return
    p99 = t.sched_latency_p99_ns
    level = BAND.level(p99 / 1e6)
    what = "goroutines queue for a processor" if level == "low" else "CPU starvation"
    longest = f"longest {_ms(t.sched_latency_max_ns or p99)} of {t.sched_waits} waits"
    yield model.Finding(BAND.severity(p99 / 1e6), KIND, "scheduler latency",
                        f"p99 scheduler latency {_ms(p99)} ({longest}): {what}, {_cause(report, t.gomaxprocs)}",
                        value=round(p99 / 1e6, 3), unit="ms")


def _cause(report: model.Report, gomaxprocs: int | None) -> str:
    procs = f"GOMAXPROCS {gomaxprocs}" if gomaxprocs else "GOMAXPROCS unknown"
    limit = report.container.cpu_limit if report.container else None
    if not limit:
        return f"{procs}, no CPU limit known"
    text = f"{procs} against a {_millicores(limit)} CPU limit"
    if gomaxprocs and gomaxprocs > math.ceil(limit):
        # More Ps than the quota pays for: the kernel stops the whole container until its next period.
        text += " (more processors than the limit: the container is throttled; set GOMAXPROCS to the limit)"
    return text


def _ms(ns: int) -> str:
    return f"{ns / 1e6:.3g} ms"


def _millicores(cores: float) -> str:
    return f"{round(cores * 1000)}m"
