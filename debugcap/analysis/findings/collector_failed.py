"""Rule ``collector-failed``: a collector failed or delivered only part of its files.

Registered in :data:`debugcap.analysis.findings.RULES`.
"""

from __future__ import annotations

from collections.abc import Iterator

from debugcap.analysis import model
from debugcap.bundle import manifest

SEVERITY = 60


def check(report: model.Report) -> Iterator[model.Finding]:
    for c in report.collectors:
        if c.status in (manifest.CollectorStatus.FAILED, manifest.CollectorStatus.PARTIAL):
            yield model.Finding(SEVERITY, "collector-failed", c.name,
                                f"collector {c.name} {c.status.value}: {c.message or 'no message'}")
