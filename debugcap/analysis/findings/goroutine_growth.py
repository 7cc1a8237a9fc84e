"""Rule ``goroutine-growth``: the goroutine count grew across snapshots, and where most of it went.

The severity is the growth in goroutines per minute (:data:`.thresholds.BANDS`), over the time
between the first and last snapshot: the heap snapshots' own timestamps, else the capture's
``interval_seconds``. The function named is the application's function of the group that grew
most: a dump group is named by its first own frame (its first frame outside the runtime when it
has none), and a group of the capture's own goroutines, named by its profiler frame, is never it.
Registered in :data:`debugcap.analysis.findings.RULES`.
"""

from __future__ import annotations

from collections.abc import Iterator

from debugcap.analysis import appcode, model
from debugcap.analysis.findings import thresholds

BAND = thresholds.BANDS["goroutine-growth"]
# Fewer new goroutines than this between snapshots is ordinary churn. Judgement call.
GROWTH_MIN = 10


def _minutes(report: model.Report, snapshots: int) -> float | None:
    growth = report.snapshots.heap_growth if report.snapshots else None
    if growth is not None and growth.minutes > 0:
        return growth.minutes
    interval = report.capture.parameters.get("interval_seconds") if report.capture else None
    if isinstance(interval, int | float) and interval > 0 and snapshots > 1:
        return interval * (snapshots - 1) / 60
    return None


def check(report: model.Report) -> Iterator[model.Finding]:
    snaps = report.snapshots
    totals = snaps.goroutine_totals if snaps else None
    if snaps is None or not totals or len(totals) < 2 or totals[-1].total - totals[0].total < GROWTH_MIN:
        return
    added = totals[-1].total - totals[0].total
    top_change = next((c for c in snaps.goroutine_changes or ()
                       if c["change"] > 0 and not appcode.is_profiler(c["function"])), None)
    where = top_change["function"] if top_change else "?"
    minutes = _minutes(report, len(totals))
    per_minute = added / minutes if minutes else None
    rate = f" ({per_minute:.0f}/min)" if per_minute is not None else " (no times known for the snapshots)"
    yield model.Finding(BAND.severity(per_minute), "goroutine-growth", where,
                        f"goroutine count grew from {totals[0].total} to {totals[-1].total}{rate} "
                        f"across {len(totals)} snapshots, most in {where}",
                        value=None if per_minute is None else round(per_minute, 1), unit=BAND.unit)
