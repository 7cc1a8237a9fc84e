"""Rule ``heap-growth``: the function whose in-use heap grew most between the first and last snapshot.

Registered in :data:`debugcap.analysis.findings.RULES`.
"""

from __future__ import annotations

from collections.abc import Iterator

from debugcap.analysis import model
from debugcap.analysis.findings.base import human_bytes

SEVERITY = 90


def check(report: model.Report) -> Iterator[model.Finding]:
    growth = report.snapshots.heap_growth if report.snapshots else None
    if growth is None or not growth.rows:
        return
    r = growth.rows[0]
    rate = f" ({human_bytes(r.per_minute)}/min)" if r.per_minute else ""
    others = ", ".join(f"{x.function} +{human_bytes(x.growth)}" for x in growth.rows[1:4])
    yield model.Finding(SEVERITY, "heap-growth", r.function,
                        f"heap growth: {r.function} in-use memory grew by {human_bytes(r.growth)}"
                        f"{rate} from {growth.first} to {growth.last}" + (f"; next: {others}" if others else ""))
