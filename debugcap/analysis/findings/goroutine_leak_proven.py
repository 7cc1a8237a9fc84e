"""Rule ``goroutine-leak-proven``: goroutines the Go runtime itself proved blocked forever.

Go 1.26's goroutineleak profile (``GOEXPERIMENT=goroutineleakprofile``, standard from Go 1.27)
comes from a GC cycle that finds goroutines blocked on channels, mutexes or wait groups that no
running goroutine can reach: nothing can ever wake them. That is proof, where the
``goroutine-leak`` rule's suspects (a large group parked on one frame) are a heuristic, so this
rule ranks above every suspect, growing ones included, and a function it names is no longer
listed as a suspect. Registered in :data:`debugcap.analysis.findings.RULES`.
"""

from __future__ import annotations

from collections.abc import Iterator

from debugcap.analysis import model
from debugcap.analysis.findings import goroutine_leak

SEVERITY = goroutine_leak.SEVERITY_GROWING + 10


def check(report: model.Report) -> Iterator[model.Finding]:
    leaks = report.proven_leaks
    for g in leaks.groups if leaks else ():
        yield model.Finding(SEVERITY, "goroutine-leak-proven", g["function"],
                            f"goroutine leak proven by the Go runtime at {g['function']}: {g['count']} goroutines "
                            "blocked forever on something no running goroutine can reach "
                            f"({leaks.source if leaks else ''})")
