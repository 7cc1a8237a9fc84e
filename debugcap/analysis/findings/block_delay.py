"""Rule ``block-delay``: the function that waited longest on channels and sync primitives.

Registered in :data:`debugcap.analysis.findings.RULES`.
"""

from __future__ import annotations

from collections.abc import Iterable

from debugcap.analysis import model
from debugcap.analysis.findings.base import contention

SEVERITY = 45


def check(report: model.Report) -> Iterable[model.Finding]:
    return contention(report.block, "block", SEVERITY)
