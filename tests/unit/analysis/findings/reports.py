"""Typed reports for the finding-rule tests: an empty one, plus the sections each test sets.

The profile rules are tested on real profiles of the goapp fixture with every pathology on
(tests/fixtures/goapp-profiles, made by its regenerate.py): :func:`goapp_attribution`,
:func:`goapp_waiting` and :func:`goapp_profile` read them as the report does; :func:`dump_report`
reads any real dump (tests/fixtures/ownframes-data) into the sections the goroutine rules read.
"""

from __future__ import annotations

import functools
import gzip
import json
from pathlib import Path
from typing import Any

from debugcap.analysis import appcode, attribution, findings, goroutines, model, pprof
from debugcap.formats import pprof as pprof_format

GOAPP = Path(__file__).resolve().parents[3] / "fixtures" / "goapp-profiles"
OWNFRAMES = Path(__file__).resolve().parents[3] / "fixtures" / "ownframes-data"
# How the fixture was taken: when the process started (the block and mutex profiles count from then).
GOAPP_FACTS: dict[str, Any] = json.loads((GOAPP / "facts.json").read_text())

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


@functools.cache
def goapp_profile(name: str) -> pprof_format.Profile:
    """``cpu``, ``heap``, ``heap-00`` (5 s before ``heap``), ``block`` or ``mutex`` of the fixture."""
    return pprof_format.load(GOAPP / f"{name}.pb.gz")


@functools.cache
def goapp_code() -> appcode.Code:
    return attribution.code_of(goapp_profile(n) for n in ("cpu", "heap", "heap-00", "block", "mutex"))


def goapp_attribution(kind: str) -> model.Attribution:
    return attribution.attribute(goapp_profile(kind), goapp_code(), "inuse_space" if kind == "heap" else None)


def goapp_waiting() -> tuple[model.Waiters, ...]:
    return attribution.waiting(goroutines.read_path(GOAPP / "goroutine-debug2.txt").stacks, goapp_code())


def goapp_dump() -> goroutines.DumpDict:
    return goroutines.load_dump(GOAPP / "goroutine-debug2.txt")


def ownframes_dump(name: str) -> goroutines.Dump:
    """A dump of tests/fixtures/ownframes-data (``.gz``: gzipped), parsed as the report parses it."""
    if name.endswith(".gz"):
        with gzip.open(OWNFRAMES / name) as fh:
            return goroutines.read_stream(fh, name)
    return goroutines.read_path(OWNFRAMES / name)


def dump_report(dump: goroutines.Dump, source: str = "pprof/goroutine-debug2.txt", **sections: Any) -> model.Report:
    """A report of one real dump as report.build reads it: its section, suspects and ``waiting``."""
    return report(goroutines=model.GoroutineSection(source, dump.summary["total"], False,
                                                    tuple(dump.summary["groups"])),
                  leak_suspects=tuple(goroutines.suspects(dump.summary)),
                  waiting=attribution.waiting(dump.stacks, dump.code), **sections)


def container(*, cpu: float | None = None, memory: int | None = None, uptime: float | None = None,
              started: float | None = None) -> model.Container:
    return model.Container(name="app", cpu_limit=cpu, memory_limit=memory, uptime_seconds=uptime, started_at=started)


def the(rep: model.Report, kind: str) -> model.Finding:
    """The first finding of ``kind``."""
    return next(f for f in findings.evaluate(rep) if f.kind == kind)
