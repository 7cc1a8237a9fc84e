"""Rule ``truncated-dump``: the goroutine dump hit Go's 64 MB limit, so every count in it is low.

Registered in :data:`debugcap.analysis.findings.RULES`.
"""

from __future__ import annotations

from collections.abc import Iterator

from debugcap.analysis import model

SEVERITY = 68


def check(report: model.Report) -> Iterator[model.Finding]:
    gor = report.goroutines
    if gor and gor.truncated:
        yield model.Finding(SEVERITY, "truncated-dump", gor.source,
                            f"goroutine dump {gor.source} was cut at Go's 64 MB limit; counts are too low")
