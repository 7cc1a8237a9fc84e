"""The execution trace's summary in words: the ``trace`` command's table and the report's section
(and the memstats GC pauses, said with the same durations).

Callers: :mod:`debugcap.kubectl_plugin.commands.trace` and :mod:`debugcap.analysis.rendering.text`
and ``html``.
"""

from __future__ import annotations

from debugcap.analysis.traces import TraceSummary
from debugcap.formats.gostats import GcPauses


def summary_rows(s: TraceSummary) -> list[list[str]]:
    """The summary as two columns: what, and its values in a sentence's words."""
    p99 = "-" if s.sched_latency_p99_ns is None else duration(s.sched_latency_p99_ns)
    longest = "-" if s.sched_latency_max_ns is None else duration(s.sched_latency_max_ns)
    rows = [
        ["trace", f"{s.source} (Go {s.go_format} format, {_n(s.generations, 'generation')}, "
                  f"{_n(s.events, 'event')})"],
        ["duration", duration(s.duration_ns)],
        ["GOMAXPROCS", f"{'-' if s.gomaxprocs is None else s.gomaxprocs} ({s.procs_seen} procs seen)"],
        ["goroutines", f"{s.goroutines_created} created, {s.goroutines_at_end} at the end, "
                       f"{s.goroutines_max} at most"],
        ["scheduler latency", f"p99 {p99}, longest {longest} over {_n(s.sched_waits, 'wait')} "
                              f"(total {duration(s.sched_latency_total_ns)})"],
        ["GC", f"{_n(s.gc_count, 'cycle')}; stop-the-world {_n(s.stw_count, 'pause')}, total "
               f"{duration(s.stw_total_ns)}, longest {duration(s.stw_max_ns)}"],
        ["CPU samples", str(s.cpu_samples)],
        ["heap", "-" if s.heap_max_bytes is None else f"{s.heap_max_bytes / (1 << 20):.1f} MiB at most"],
    ]
    if s.cut:
        rows.append(["cut", s.cut])
    return rows


def gc_pauses(p: GcPauses) -> str:
    """The memstats GC pauses in a sentence (the report's ``GC pauses`` line)."""
    if not p.num_gc:
        return "no GC cycle yet"
    return (f"longest {duration(p.recent_max_ns)} in the last {_n(p.recent_cycles, 'cycle')}; "
            f"{duration(p.total_ns)} in all {_n(p.num_gc, 'cycle')} (memstats)")


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def duration(ns: int) -> str:
    """``3.77ms``-style: three significant digits in the largest unit under the value."""
    for unit, size in (("s", 10**9), ("ms", 10**6), ("us", 10**3)):
        if abs(ns) >= size:
            return f"{ns / size:.3g}{unit}"
    return f"{ns}ns"
