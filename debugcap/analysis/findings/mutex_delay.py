"""Rule ``mutex-delay``: the application's functions whose lock releases kept others waiting longest.

The mutex profile records, at the stack that *releases* a contended lock, how long other
goroutines had waited for it: "goroutines waited N s for locks released in main.X", not time
main.X itself waited. Each sample is charged to its first frame of the application's own code; the
severity is the waiting rate (:data:`.thresholds.BANDS`), and the goroutines of the dump queued in
the same function join the message. Registered in :data:`debugcap.analysis.findings.RULES`.
"""

from __future__ import annotations

from collections.abc import Iterable

from debugcap.analysis import model
from debugcap.analysis.findings.base import contention


def check(report: model.Report) -> Iterable[model.Finding]:
    return contention(report, "mutex")
