"""Typed reports for the finding-rule tests: an empty one, plus the sections each test sets."""

from __future__ import annotations

from typing import Any

from debugcap.analysis import findings, goroutines, model, pprof

EMPTY = model.Report(
    bundle="b", target=None, capture=None, collectors=(), missing=(), errors={}, cpu=None, heap=None,
    block=None, mutex=None, snapshots=None, goroutines=None, leak_suspects=(), sockets=None, fd_count=None,
    fd_limit=None, disk=None, memstats=None, hints=(), problems=())


def report(**sections: Any) -> model.Report:
    return model.Report(**{**EMPTY.__dict__, **sections})


def kinds(rep: model.Report) -> list[tuple[str, str]]:
    """(kind, subject) of every finding the registered rules give, most serious first."""
    return [(f.kind, f.subject) for f in findings.evaluate(rep)]


def messages(rep: model.Report) -> list[str]:
    return [f.message for f in findings.evaluate(rep)]


def top(unit: str, total: int, *rows: tuple[str, int, int]) -> pprof.TopReport:
    """A top of (function, flat, cum) rows, percentages of ``total``."""
    out: list[pprof.TopRow] = []
    running = 0
    for function, flat, cum in rows:
        running += flat
        out.append(pprof.TopRow(function=function, flat=flat, flat_pct=pprof.pct(flat, total),
                                sum_pct=pprof.pct(running, total), cum=cum, cum_pct=pprof.pct(cum, total)))
    return pprof.TopReport(sample_type="x", unit=unit, total=total, duration_ns=0, rows=out)


def group(function: str, count: int, *, state: str = "chan receive", wait: int = 0,
          created_by: str = "main.start") -> goroutines.GroupDict:
    return goroutines.GroupDict(state=state, function=function, count=count, max_wait_minutes=wait,
                                created_by=created_by, suspect=True, leaked=0)


def change(function: str, before: int, after: int, state: str = "chan receive") -> goroutines.GroupChange:
    return goroutines.GroupChange(state=state, function=function, before=before, after=after,
                                  change=after - before)
