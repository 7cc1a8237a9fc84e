"""Finding rules: the short list a human reads first, most serious first.

Callers: :mod:`debugcap.analysis.report` fills :attr:`debugcap.analysis.model.Report.findings`
with :func:`evaluate`. Each rule is one module with one ``check(report)`` function over
the typed report, listed once in :data:`RULES` (as collectors are in
:data:`debugcap.collectors.COLLECTORS`); each module owns its severity, and the
severities only rank. The rules that measure a rate read their bands from the one
table :data:`debugcap.analysis.findings.thresholds.BANDS` (mirrored in docs/findings.md), and
the profile rules name the application's own function (:mod:`debugcap.analysis.attribution`).
Adding a rule: a module here, a line in RULES, a row in docs/findings.md, and
``tests/unit/analysis/findings/test_<rule>.py``.
"""

from __future__ import annotations

from debugcap.analysis import model
from debugcap.analysis.findings import (
    block_delay,
    close_wait,
    collector_failed,
    cpu_hot,
    disk_full,
    fd_limit,
    goroutine_growth,
    goroutine_leak,
    goroutine_leak_proven,
    heap_growth,
    heap_top,
    mutex_delay,
    readiness_hints,
    sched_latency,
    truncated_dump,
)
from debugcap.analysis.findings.base import Rule

# The order breaks ties between equal severities (the sort is stable).
RULES: tuple[Rule, ...] = (
    goroutine_leak_proven.check,
    goroutine_leak.check,
    heap_growth.check,
    goroutine_growth.check,
    fd_limit.check,
    disk_full.check,
    truncated_dump.check,
    close_wait.check,
    collector_failed.check,
    readiness_hints.check,
    block_delay.check,
    mutex_delay.check,
    sched_latency.check,
    cpu_hot.check,
    heap_top.check,
)


def evaluate(report: model.Report) -> tuple[model.Finding, ...]:
    """Every rule's findings, most serious first."""
    out = [f for rule in RULES for f in rule(report)]
    out.sort(key=lambda f: -f.severity)
    return tuple(out)
