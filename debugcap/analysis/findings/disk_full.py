"""Rule ``disk-full``: a filesystem the container sees is nearly full.

Registered in :data:`debugcap.analysis.findings.RULES`.
"""

from __future__ import annotations

from collections.abc import Iterator

from debugcap.analysis import model

SEVERITY = 70
# df's own "Use%"; from here, writes fail soon under any real load. Judgement call.
FULL_PCT = 90


def check(report: model.Report) -> Iterator[model.Finding]:
    for d in report.disk or ():
        if d.use_pct >= FULL_PCT:
            yield model.Finding(SEVERITY, "disk-full", d.mount,
                                f"filesystem {d.mount} ({d.filesystem}) is {d.use_pct}% full")
