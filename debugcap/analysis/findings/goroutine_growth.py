"""Rule ``goroutine-growth``: the goroutine count grew across snapshots, and where most of it went.

Registered in :data:`debugcap.analysis.findings.RULES`.
"""

from __future__ import annotations

from collections.abc import Iterator

from debugcap.analysis import model

SEVERITY = 85
# Fewer new goroutines than this between snapshots is ordinary churn. Judgement call.
GROWTH_MIN = 10


def check(report: model.Report) -> Iterator[model.Finding]:
    snaps = report.snapshots
    totals = snaps.goroutine_totals if snaps else None
    if snaps is None or not totals or len(totals) < 2 or totals[-1].total - totals[0].total < GROWTH_MIN:
        return
    top_change = next((c for c in snaps.goroutine_changes or () if c["change"] > 0), None)
    where = top_change["function"] if top_change else "?"
    yield model.Finding(SEVERITY, "goroutine-growth", where,
                        f"goroutine count grew from {totals[0].total} to {totals[-1].total} "
                        f"across {len(totals)} snapshots, most in {where}")
