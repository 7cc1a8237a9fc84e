"""Rule ``goroutine-leak``: a large group of goroutines parked on one frame, stronger if it grew.

A heuristic. The dump groups goroutines by state and the application's function they run in
(:mod:`debugcap.analysis.goroutines`); the finding names that function, with the frame they are
parked in as context (``internal/sync.(*Mutex).lockSlow``, ``net/http.(*persistConn).readLoop``:
:func:`.base.parked_in`). A group of the capture's own goroutines (pprof handlers waiting for their
profile) is never a suspect: the dump parser tells them from their stacks. When the bundle has
Go's own goroutineleak profile, a function it proved leaked is left to ``goroutine-leak-proven``
(which outranks this rule), and a suspect the runtime's check did not prove says so: what it
waits on is still reachable, so it may yet be woken.

A debug=1 dump has no states, so a large group there may as well be a pool of busy workers (in a
system call, running) as a leak: it is one low finding that says the state is unknown, never a
high one. Registered in :data:`debugcap.analysis.findings.RULES`.
"""

from __future__ import annotations

from collections.abc import Iterator

from debugcap.analysis import appcode, goroutines, model
from debugcap.analysis.findings.base import parked_in

# A group that both looks leaked and grows across snapshots is the strongest
# evidence a bundle can hold; a parked pool alone may still be a sized worker pool.
SEVERITY_GROWING = 100
SEVERITY = 80
# A large group of a debug=1 dump: worth a look, never enough to call a pod unhealthy.
SEVERITY_STATE_UNKNOWN = 45


def check(report: model.Report) -> Iterator[model.Finding]:
    changes = report.snapshots.goroutine_changes if report.snapshots else None
    by_group = {(c["state"], c["function"]): c for c in changes or ()}
    proven = report.proven_leaks
    proven_functions = {p["function"] for p in proven.groups} if proven else set()
    for g in report.leak_suspects:
        if g["leaked"] or g["function"] in proven_functions:
            continue
        ch = by_group.get((g["state"], g["function"]))
        wait = f", parked up to {g['max_wait_minutes']} min" if g["max_wait_minutes"] else ""
        created = f"created by {g['created_by'] or 'unknown'}"
        if proven is not None:
            created += "; not proven by the runtime's leak check: what it waits on is still reachable"
        top = parked_in(report, g["state"], g["function"])
        parked = f" (parked in {top})" if top else ""
        head = f"goroutine leak suspect at {g['function']}{parked}: {g['count']} goroutines in [{g['state']}]{wait}"
        if ch and ch["change"] > 0:
            yield model.Finding(SEVERITY_GROWING, "goroutine-leak", g["function"],
                                f"{head}, grew from {ch['before']} to {ch['after']} across snapshots ({created})",
                                leaf=top)
        else:
            yield model.Finding(SEVERITY, "goroutine-leak", g["function"], f"{head} ({created})", leaf=top)
    yield from _state_unknown(report, proven_functions)


def _state_unknown(report: model.Report, proven_functions: set[str]) -> Iterator[model.Finding]:
    """Large groups of a debug=1 dump (state ""), which the parser never calls suspects."""
    for g in report.goroutines.groups if report.goroutines else ():
        # A profiler group is named by its profiler frame (goroutines.charge): the capture's, not a leak.
        if (g["state"] or g["count"] < goroutines.LEAK_SUSPECT_MIN or g["leaked"]
                or g["function"] in proven_functions or appcode.is_profiler(g["function"])):
            continue
        top = parked_in(report, "", g["function"])
        where = f" (in {top})" if top else ""
        yield model.Finding(
            SEVERITY_STATE_UNKNOWN, "goroutine-leak", g["function"],
            f"{g['count']} goroutines at {g['function']}{where}, state unknown: debug=1 dump (a leak if they "
            "are parked, a busy pool if they are not; a debug=2 dump tells which)", leaf=top)
