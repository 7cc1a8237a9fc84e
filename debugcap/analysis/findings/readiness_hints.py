"""Rule ``hint``: every readiness hint (empty block profile, CPU profile cut short...) as a finding.

Registered in :data:`debugcap.analysis.findings.RULES`; the hints themselves come
from :mod:`debugcap.analysis.hints` while the bundle is read.
"""

from __future__ import annotations

from collections.abc import Iterator

from debugcap.analysis import model

# Above the profile tops: a hint says the evidence below it is incomplete.
SEVERITY = 55


def check(report: model.Report) -> Iterator[model.Finding]:
    for h in report.hints:
        yield model.Finding(SEVERITY, "hint", h.split(" ", 1)[0], h)
