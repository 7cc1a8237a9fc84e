"""Rule ``goroutine-leak``: a large group of goroutines parked on one frame, stronger if it grew.

A heuristic. The dump groups goroutines by their top frame that is not the runtime's, often the
standard library's (``net/http.(*persistConn).readLoop``); the finding names the application's
function those goroutines run in (:func:`.base.own_function`), the group's frame as context.
When the bundle has Go's own goroutineleak profile, a function it proved leaked is
left to ``goroutine-leak-proven`` (which outranks this rule), and a suspect the runtime's check
did not prove says so: what it waits on is still reachable, so it may yet be woken. Registered
in :data:`debugcap.analysis.findings.RULES`.
"""

from __future__ import annotations

from collections.abc import Iterator

from debugcap.analysis import appcode, model
from debugcap.analysis.findings.base import own_function

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
        if g["leaked"] or appcode.is_profiler(g["function"]):
            continue
        # The group is keyed by its top frame (net/http.(*persistConn).readLoop); name the application's.
        own = own_function(report, g["state"], g["function"]) or g["function"]
        if own in proven_functions or g["function"] in proven_functions:
            continue
        ch = by_group.get((g["state"], g["function"]))
        wait = f", parked up to {g['max_wait_minutes']} min" if g["max_wait_minutes"] else ""
        created = f"created by {g['created_by'] or 'unknown'}"
        if proven is not None:
            created += "; not proven by the runtime's leak check: what it waits on is still reachable"
        parked = f" (parked in {g['function']})" if own != g["function"] else ""
        head = f"goroutine leak suspect at {own}{parked}: {g['count']} goroutines in [{g['state']}]{wait}"
        leaf = g["function"] if parked else ""
        if ch and ch["change"] > 0:
            yield model.Finding(SEVERITY_GROWING, "goroutine-leak", own,
                                f"{head}, grew from {ch['before']} to {ch['after']} across snapshots ({created})",
                                leaf=leaf)
        else:
            yield model.Finding(SEVERITY, "goroutine-leak", own, f"{head} ({created})", leaf=leaf)
