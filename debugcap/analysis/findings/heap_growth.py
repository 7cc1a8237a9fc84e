"""Rule ``heap-growth``: the application's function whose in-use heap grew most between snapshots.

The growth is charged to each sample's first frame of the application's own code
(:func:`debugcap.analysis.attribution.growth`); the severity is the growth per minute as a share of
the memory limit, or in MiB per minute when no limit is known (:data:`.thresholds.BANDS`).
Registered in :data:`debugcap.analysis.findings.RULES`.
"""

from __future__ import annotations

from collections.abc import Iterator

from debugcap.analysis import model
from debugcap.analysis.findings import thresholds
from debugcap.analysis.findings.base import human_bytes, memory_limit, via


def check(report: model.Report) -> Iterator[model.Finding]:
    growth = report.snapshots.heap_growth if report.snapshots else None
    if growth is None or not growth.rows:
        return
    r = growth.rows[0]
    limit, yardstick = memory_limit(report)
    if limit:
        band = thresholds.BANDS["heap-growth"]
        value = None if r.per_minute is None else 100 * r.per_minute / limit
        rate = "" if value is None else f" ({human_bytes(r.per_minute)}/min, {value:.2g}%/min of {yardstick})"
    else:
        band = thresholds.BANDS["heap-growth-no-limit"]
        value = None if r.per_minute is None else r.per_minute / (1 << 20)
        rate = "" if value is None else f" ({human_bytes(r.per_minute)}/min; no memory limit known)"
    others = ", ".join([f"{x.function} +{human_bytes(x.growth)}" for x in growth.rows[1:] if x.own][:3])
    yield model.Finding(
        band.severity(value), "heap-growth", r.function,
        f"heap growth: {r.function}{via(r)} in-use memory grew by {human_bytes(r.growth)}"
        f"{rate} from {growth.first} to {growth.last}" + (f"; next: {others}" if others else ""),
        leaf=r.leaf, value=None if value is None else round(value, 3), unit=band.unit)
