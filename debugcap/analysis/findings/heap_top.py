"""Rule ``heap-top``: the application's functions holding the most in-use heap.

Each heap sample is charged to its first frame of the application's own code; what the profiler
allocated itself (trace buffers) is left out here and shown apart in the report's attribution
(the profiler's own row). The severity is the bytes held as a share of the memory limit
(:data:`.thresholds.BANDS`). Registered in :data:`debugcap.analysis.findings.RULES`.
"""

from __future__ import annotations

from collections.abc import Iterator

from debugcap.analysis import model
from debugcap.analysis.findings import thresholds
from debugcap.analysis.findings.base import human_bytes, memory_limit, named_rows, via

BAND = thresholds.BANDS["heap-top"]


def check(report: model.Report) -> Iterator[model.Finding]:
    att = report.attribution.get("heap")
    if att is None:
        return
    limit, yardstick = memory_limit(report)
    for row, pct in named_rows(att, BAND, lambda r: 100 * r.value / limit if limit else None):
        of = f", {pct:.1f}% of {yardstick}" if pct is not None else " (no memory limit known)"
        yield model.Finding(
            BAND.severity(pct), "heap-top", row.function,
            f"heap: {row.function} holds {human_bytes(row.value)} in use "
            f"({100 * row.value / att.total:.1f}% of the sampled {human_bytes(att.total)}){of}{via(row)}",
            leaf=row.leaf, value=None if pct is None else round(pct, 2), unit=BAND.unit)
