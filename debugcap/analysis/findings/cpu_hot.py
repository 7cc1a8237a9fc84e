"""Rule ``cpu-hot``: the function with the most CPU time of its own.

Registered in :data:`debugcap.analysis.findings.RULES`.
"""

from __future__ import annotations

from collections.abc import Iterator

from debugcap.analysis import model

SEVERITY = 40


def check(report: model.Report) -> Iterator[model.Finding]:
    cpu = report.cpu
    if cpu and cpu["rows"] and cpu["total"]:
        r = cpu["rows"][0]
        yield model.Finding(SEVERITY, "cpu-hot", r["function"],
                            f"CPU: {r['function']} is the hottest function, {r['flat_pct']:.1f}% flat, "
                            f"{r['cum_pct']:.1f}% cum of {cpu['total'] / 1e9:.3g}s sampled")
