"""Rule ``profiler-own``: how much of a profile is the capture measuring itself.

A capture runs the execution tracer and the CPU profiler while it takes the other evidence, and
a program may run its own flight recorder: their buffers and goroutines show up in the heap, CPU
and block profiles. Those samples (:func:`debugcap.analysis.appcode.is_profiler`) are charged to
no function of the application and never become a finding's subject; this rule says how large
they were, so totals read right. Registered in :data:`debugcap.analysis.findings.RULES`.
"""

from __future__ import annotations

from collections.abc import Iterator

from debugcap.analysis import model
from debugcap.analysis.findings.base import human_bytes

# Below every finding about the application: it explains the evidence, it is not a problem in it.
SEVERITY = 20
# A smaller share does not change how a reader ranks what is left. Judgement call.
MIN_SHARE = 0.10

_WHAT = {"cpu": "of the sampled CPU", "heap": "of the in-use heap", "block": "of the block delay",
         "mutex": "of the mutex delay"}


def _amount(att: model.Attribution, value: int) -> str:
    return human_bytes(value) if att.unit == "bytes" else f"{value / 1e9:.3g}s"


def _who(frame: str) -> str:
    if "FlightRecorder" in frame:
        return "the flight recorder's trace buffers"
    if "trace" in frame.lower():
        return "the execution tracer"
    return "the pprof handlers and profile encoding" if "pprof" in frame else "the profiler"


def check(report: model.Report) -> Iterator[model.Finding]:
    for kind, att in report.attribution.items():
        if not att.total or att.profiler < MIN_SHARE * att.total:
            continue
        share = 100 * att.profiler / att.total
        yield model.Finding(
            SEVERITY, "profiler-own", f"profiler ({kind})",
            f"{_amount(att, att.profiler)} {_WHAT.get(kind, 'of the ' + kind + ' profile')} ({share:.0f}%) is "
            f"the profiler's own ({_who(att.profiler_leaf)}, from {att.profiler_leaf}), not the application's",
            leaf=att.profiler_leaf, value=round(share, 1), unit="%")
