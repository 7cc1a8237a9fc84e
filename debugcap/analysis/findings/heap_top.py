"""Rule ``heap-top``: the function holding the most in-use heap.

Registered in :data:`debugcap.analysis.findings.RULES`.
"""

from __future__ import annotations

from collections.abc import Iterator

from debugcap.analysis import model
from debugcap.analysis.findings.base import human_bytes, leader

SEVERITY = 35


def check(report: model.Report) -> Iterator[model.Finding]:
    r = leader(report.heap)
    if r and report.heap:
        yield model.Finding(SEVERITY, "heap-top", r["function"],
                            f"heap: {r['function']} holds {human_bytes(r['flat'])} in use "
                            f"({r['flat_pct']:.1f}% of {human_bytes(report.heap['total'])})")
