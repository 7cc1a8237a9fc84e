"""Rule ``mutex-delay``: the function whose lock holders kept others waiting longest.

Registered in :data:`debugcap.analysis.findings.RULES`.
"""

from __future__ import annotations

from collections.abc import Iterable

from debugcap.analysis import model
from debugcap.analysis.findings.base import contention

SEVERITY = 45


def check(report: model.Report) -> Iterable[model.Finding]:
    return contention(report.mutex, "mutex", SEVERITY)
