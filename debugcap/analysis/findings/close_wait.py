"""Rule ``close-wait``: sockets the peer closed and the program never did (a missing Close).

Registered in :data:`debugcap.analysis.findings.RULES`.
"""

from __future__ import annotations

from collections.abc import Iterator

from debugcap.analysis import model

SEVERITY = 65
# A few CLOSE_WAIT sockets are a moment's lag; this many is a leak. Judgement call.
MIN_SOCKETS = 10


def check(report: model.Report) -> Iterator[model.Finding]:
    count = report.sockets.states.get("CLOSE_WAIT", 0) if report.sockets else 0
    if count >= MIN_SOCKETS:
        yield model.Finding(SEVERITY, "close-wait", "sockets",
                            f"{count} sockets in CLOSE_WAIT: the peer closed but "
                            "the program never closed its side (missing Close, e.g. on resp.Body)")
