"""Rule ``cpu-hot``: the function with the most CPU time of its own.

Registered in :data:`debugcap.analysis.findings.RULES`.
"""

from __future__ import annotations

from collections.abc import Iterator

from debugcap.analysis import model
from debugcap.analysis.findings.base import leader

SEVERITY = 40


def check(report: model.Report) -> Iterator[model.Finding]:
    r = leader(report.cpu)
    if r and report.cpu:
        yield model.Finding(SEVERITY, "cpu-hot", r["function"],
                            f"CPU: {r['function']} is the hottest function, {r['flat_pct']:.1f}% flat, "
                            f"{r['cum_pct']:.1f}% cum of {report.cpu['total'] / 1e9:.3g}s sampled")
