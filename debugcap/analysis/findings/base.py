"""What every finding rule shares: the rule signature, message formatting, and the yardsticks.

The yardsticks turn a profile's totals into the rates :mod:`.thresholds` bands: the window a
profile covers, the cores and memory the container may use, the goroutines queued in a function.

Callers: the rule modules of :mod:`debugcap.analysis.findings`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

from debugcap.analysis import attribution, model
from debugcap.analysis.findings import thresholds


class Rule(Protocol):
    """A finding rule: reads a report, yields zero or more findings; never raises on missing data."""

    def __call__(self, report: model.Report, /) -> Iterable[model.Finding]: ...


def human_bytes(n: float | None) -> str:
    """``4.0MB``-style sizes for messages (1024-based, as pprof prints them)."""
    if n is None:
        return "?"
    v = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if abs(v) < 1024 or unit == "GB":
            return f"{v:.0f}{unit}" if unit == "B" else f"{v:.1f}{unit}"
        v /= 1024
    return f"{v:.1f}GB"


# A rule names its first row, and the next ones only when they too reach this band: a report
# shows where to look, not every function with samples.
MORE_FROM = "medium"
MAX_PER_RULE = 3


def named_rows(att: model.Attribution | None, band: thresholds.Band,
               measure: Callable[[model.OwnRow], float | None]) -> Iterator[tuple[model.OwnRow, float | None]]:
    """The rows a profile rule reports, with their measure: the largest, then any others in band."""
    for i, row in enumerate(att.rows[:MAX_PER_RULE] if att and att.total else ()):
        value = measure(row)
        if row.value > 0 and (i == 0 or band.level(value) in (MORE_FROM, "high")):
            yield row, value


def via(row: model.OwnRow | model.HeapGrowthRow) -> str:
    """How the named function reached the leaf: `` (via leaf)``, or that no frame was the application's."""
    if not row.own:
        return " (no frame of the application's own in these stacks)"
    return f" (via {row.leaf})" if row.leaf and row.leaf != row.function else ""


def window_seconds(report: model.Report, att: model.Attribution) -> tuple[float | None, str]:
    """The wall time a profile's values accrued over, and how to say it.

    A CPU profile covers its own duration. Block and mutex profiles count from when the program
    enabled them until they were written (their ``time_ns``): at most from the container's start,
    so a rate over that time is the lowest the truth can be. Without the profile's time, the
    container's uptime when the capture began stands in (a little short: the rate a little high).
    """
    if att.duration_ns > 0:
        return att.duration_ns / 1e9, f"in the {secs(att.duration_ns / 1e9)} profile window"
    c = report.container
    if c and c.started_at and att.time_ns and att.time_ns / 1e9 > c.started_at:
        up = att.time_ns / 1e9 - c.started_at
        return up, f"over the {secs(up)} from the container's start to the profile"
    if c and c.uptime_seconds:
        return c.uptime_seconds, f"over the {secs(c.uptime_seconds)} from the container's start to the capture's"
    return None, "(no window known: the bundle has no container start time)"


def cpu_capacity(report: model.Report) -> tuple[float | None, str]:
    """The cores the container may use: its CPU limit, else GOMAXPROCS, with how it was known."""
    if report.container and report.container.cpu_limit:
        return report.container.cpu_limit, f"the container's {report.container.cpu_limit:g}-core limit"
    procs = report.runtime.get("GOMAXPROCS", "")
    if procs.isdigit() and int(procs) > 0:
        return float(procs), f"GOMAXPROCS {procs}"
    return None, ""


def memory_limit(report: model.Report) -> tuple[int | None, str]:
    """The bytes the program may hold: the container's memory limit, else GOMEMLIMIT."""
    if report.container and report.container.memory_limit:
        return report.container.memory_limit, f"the {human_bytes(report.container.memory_limit)} memory limit"
    soft = report.runtime.get("GOMEMLIMIT", "")
    if soft.isdigit() and int(soft) > 0:
        return int(soft), f"GOMEMLIMIT {human_bytes(int(soft))}"
    return None, ""


def queued(report: model.Report, function: str) -> tuple[int, str]:
    """Goroutines of the dump waiting on a lock or channel in ``function``, and the sentence saying so."""
    here = [w for w in report.waiting if w.function == function and w.own and w.state in attribution.WAITING_STATES]
    count = sum(w.count for w in here)
    if not count:
        return 0, ""
    states = ", ".join(f"[{w.state}]" if len(here) == 1 else f"{w.count} [{w.state}]" for w in here)
    return count, f"; {count} goroutine{'s' if count > 1 else ''} queued in it in the dump {states}"


def parked_in(report: model.Report, state: str, function: str) -> str:
    """The frame most goroutines of a dump group (state, own function) wait in: "parked in" context.

    ``waiting`` counts the same parse the groups come from (:func:`debugcap.analysis.attribution.waiting`),
    with the first frame outside the runtime as ``top``: ``internal/sync.(*Mutex).lockSlow``,
    ``net/http.(*persistConn).readLoop``. "" when the goroutines wait in the function itself.
    """
    counts: dict[str, int] = {}
    for w in report.waiting:
        if w.state == state and w.function == function:
            counts[w.top] = counts.get(w.top, 0) + w.count
    top = max(counts, key=lambda t: (counts[t], t)) if counts else ""
    return "" if top == function else top


def secs(value: float) -> str:
    """Seconds as a person reads them: 3 significant digits, never 1.52e+03s (a day's uptime is 86400s)."""
    return f"{value:.3g}s" if value < 999.5 else f"{value:.0f}s"  # 999.5 would round to 1e+03


def contention(report: model.Report, kind: str) -> Iterator[model.Finding]:
    """The own functions that waited longest in a block or mutex profile (``kind``), by wait rate."""
    att = report.attribution.get(kind)
    band = thresholds.BANDS[f"{kind}-delay"]
    if att is None:
        return
    seconds, window = window_seconds(report, att)
    for row, rate in named_rows(att, band, lambda r: r.value / 1e9 / seconds if seconds else None):
        waited = secs(row.value / 1e9)
        pace = f", {rate:.2g} s/s" if rate is not None else ""
        _, queue = queued(report, row.function)
        if kind == "mutex":
            text = (f"mutex contention: goroutines waited {waited} for locks released in {row.function}"
                    f"{via(row)} {window}{pace}{queue}")
        else:
            text = f"block delay in {row.function}{via(row)}: goroutines were blocked {waited} {window}{pace}{queue}"
        yield model.Finding(band.severity(rate), f"{kind}-delay", row.function, text, leaf=row.leaf,
                            value=None if rate is None else round(rate, 3), unit=band.unit)
