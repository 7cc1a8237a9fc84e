"""Rule ``fd-limit``: open file descriptors close to the process's limit.

Registered in :data:`debugcap.analysis.findings.RULES`.
"""

from __future__ import annotations

from collections.abc import Iterator

from debugcap.analysis import model

SEVERITY = 75
# Past this share of the limit, the next burst of connections fails with EMFILE. Judgement call.
LIMIT_SHARE = 0.8


def check(report: model.Report) -> Iterator[model.Finding]:
    fd, limit = report.fd_count, report.fd_limit
    if fd is not None and limit and fd >= limit * LIMIT_SHARE:
        yield model.Finding(SEVERITY, "fd-limit", "file descriptors",
                            f"{fd} open file descriptors, {100 * fd / limit:.0f}% of the limit {limit}")
