"""Rule ``goroutine-leak``: a large group of goroutines parked on one frame, stronger if it grew.

A heuristic. When the bundle has Go's own goroutineleak profile, a function it proved leaked is
left to ``goroutine-leak-proven`` (which outranks this rule), and a suspect the runtime's check
did not prove says so: what it waits on is still reachable, so it may yet be woken. Registered
in :data:`debugcap.analysis.findings.RULES`.
"""

from __future__ import annotations

from collections.abc import Iterator

from debugcap.analysis import appcode, model

# A group that both looks leaked and grows across snapshots is the strongest
# evidence a bundle can hold; a parked pool alone may still be a sized worker pool.
SEVERITY_GROWING = 100
SEVERITY = 80


def check(report: model.Report) -> Iterator[model.Finding]:
    changes = report.snapshots.goroutine_changes if report.snapshots else None
    by_group = {(c["state"], c["function"]): c for c in changes or ()}
    proven = report.proven_leaks
    proven_functions = {p["function"] for p in proven.groups} if proven else set()
    for g in report.leak_suspects:
        # A pool of the capture's own (pprof handlers waiting for their profile) is not the target's leak.
        if g["function"] in proven_functions or g["leaked"] or appcode.is_profiler(g["function"]):
            continue
        ch = by_group.get((g["state"], g["function"]))
        wait = f", parked up to {g['max_wait_minutes']} min" if g["max_wait_minutes"] else ""
        created = f"created by {g['created_by'] or 'unknown'}"
        if proven is not None:
            created += "; not proven by the runtime's leak check: what it waits on is still reachable"
        head = f"goroutine leak suspect at {g['function']}: {g['count']} goroutines in [{g['state']}]{wait}"
        if ch and ch["change"] > 0:
            yield model.Finding(SEVERITY_GROWING, "goroutine-leak", g["function"],
                                f"{head}, grew from {ch['before']} to {ch['after']} across snapshots ({created})")
        else:
            yield model.Finding(SEVERITY, "goroutine-leak", g["function"], f"{head} ({created})")
