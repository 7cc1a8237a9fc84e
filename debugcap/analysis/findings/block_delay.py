"""Rule ``block-delay``: the application's functions where goroutines waited longest on channels and locks.

Each sample of the block profile is charged to its first frame of the application's own code
(``main.contendedSection``, not ``sync.(*Mutex).Lock``); the severity is the waiting rate, seconds
per second of the window (:data:`.thresholds.BANDS`), and the goroutines of the dump queued in the
same function join the message. Registered in :data:`debugcap.analysis.findings.RULES`.
"""

from __future__ import annotations

from collections.abc import Iterable

from debugcap.analysis import model
from debugcap.analysis.findings.base import contention


def check(report: model.Report) -> Iterable[model.Finding]:
    return contention(report, "block")
