"""Terminal text of a bundle report, a bundle diff and a goroutine dump summary.

Callers: the ``report``, ``diff`` and ``goroutines`` commands of
:mod:`debugcap.kubectl_plugin.commands.analyze`.
"""

from __future__ import annotations

from debugcap.analysis import bundle_reading, goroutines, model, pprof
from debugcap.analysis.rendering import pprof_text, trace_text

TOP_TITLES = (("cpu", "CPU"), ("heap", "Heap in use"), ("block", "Block delay"), ("mutex", "Mutex delay"))
# The manifest's runtime facts in the order a reader wants them; others follow by name.
RUNTIME_ORDER = ("goVersion", "GOMAXPROCS", "GOMEMLIMIT", "GODEBUG")


def runtime_line(facts: dict[str, str]) -> str:
    """``goVersion go1.26.8, GOMAXPROCS 2, GOMEMLIMIT 536870912``: the target's runtime facts."""
    keys = [k for k in RUNTIME_ORDER if k in facts] + sorted(k for k in facts if k not in RUNTIME_ORDER)
    return ", ".join(f"{k} {facts[k]}" for k in keys)


def proven_leaks_lines(leaks: model.ProvenLeaks) -> list[str]:
    head = f"Goroutine leaks proven by the runtime ({leaks.source}): {leaks.total}"
    if not leaks.groups:
        return [head + " (its leak check found no goroutine blocked forever)"]
    return [head, f"  {'count':>8}  function", *(f"  {g['count']:>8}  {g['function']}" for g in leaks.groups)]


def attribution_rows(att: model.Attribution) -> list[list[str]]:
    """Rows of (value, share, function, context) of one profile charged to the application's functions."""
    def value(v: int) -> str:
        # Each in its own scale: 53.43s and 2.22us side by side, as a reader says them.
        return pprof_text.format_value(v, *pprof_text.pick_scale(att.unit, [v]))

    rows = [[value(r.value), f"{pprof.pct(r.value, att.total):.1f}%", r.function,
             ("via " + r.leaf if r.leaf != r.function else "") if r.own else "no own frame"] for r in att.rows]
    if att.profiler:
        rows.append([value(att.profiler), f"{pprof.pct(att.profiler, att.total):.1f}%", "(the profiler's own)",
                     f"{profiler_part(att.profiler_leaf)}, from {att.profiler_leaf}"])
    return rows


def profiler_part(frame: str) -> str:
    """Which of the capture's machinery (or the program's own flight recorder) a profiler frame is:
    the reader is told what the set-apart share was, so the numbers left read right. It is a line
    of the attribution, never a finding: no finding is about the capture itself."""
    if "FlightRecorder" in frame:
        return "the flight recorder's trace buffers"
    if "trace" in frame.lower():
        return "the execution tracer"
    return "the pprof handlers and profile encoding" if "pprof" in frame else "the profiler"


def _attribution_lines(rep: model.Report) -> list[str]:
    lines: list[str] = []
    for key, title in TOP_TITLES:
        att = rep.attribution.get(key)
        if att and att.total:
            lines += [f"  {title}:"]
            lines += [f"    {v:>10} {share:>6}  {fn}" + (f"  ({ctx})" if ctx else "")
                      for v, share, fn, ctx in attribution_rows(att)]
    return ["", "By the application's own functions (each sample charged to its first own frame):", *lines] \
        if lines else []


def _indented(text: str) -> list[str]:
    return ["  " + ln for ln in text.splitlines()]


def _header(rep: model.Report) -> list[str]:
    lines = [f"Bundle: {rep.bundle}"]
    if rep.target:
        lines.append(f"Target: {rep.target.namespace}/{rep.target.pod} container {rep.target.container}")
    if rep.runtime:
        lines.append(f"Runtime: {runtime_line(dict(rep.runtime))}")
    # A bundle read with --force says so before any finding is read, not only under Problems.
    unverified = bundle_reading.unverified_lines(rep.problems)
    lines += ["", *(f"WARNING: {line}" for line in unverified)] if unverified else []
    lines += ["", "Findings (most serious first):"]
    lines += [f"  [{f.level:<6}] {f.message}" for f in rep.findings] or [f"  [{'':<6}] nothing stands out"]
    if rep.collectors:
        lines += ["", "Collectors:"]
        for c in rep.collectors:
            msg = f"  {c.message}" if c.message else ""
            lines.append(f"  {c.name:<20} {c.status.value:<8}{msg}")
    if rep.missing:
        lines += ["", "Missing: " + ", ".join(rep.missing)]
    return lines


def render_report(rep: model.Report) -> str:
    """The table form of a report: findings first, then the evidence behind them."""
    lines = _header(rep) + _attribution_lines(rep)
    tops = {"cpu": rep.cpu, "heap": rep.heap, "block": rep.block, "mutex": rep.mutex}
    for key, title in TOP_TITLES:
        top = tops[key]
        if top:
            lines += ["", f"{title}:", *_indented(pprof_text.render_top(top))]
    if rep.goroutines:
        lines += ["", "Goroutines:", *_indented(render_goroutines(rep.goroutines.total, rep.goroutines.truncated,
                                                                  list(rep.goroutines.groups)))]
    if rep.proven_leaks:
        lines += ["", *proven_leaks_lines(rep.proven_leaks)]
    if rep.trace:
        width = max(len(what) for what, _v in trace_text.summary_rows(rep.trace))
        lines += ["", "Execution trace:",
                  *(f"  {what:<{width}}  {value}" for what, value in trace_text.summary_rows(rep.trace))]
    if rep.sockets:
        st = rep.sockets.states
        lines += ["", "Sockets: " + (", ".join(f"{k} {v}" for k, v in sorted(st.items())) or "none")]
    if rep.fd_count is not None:
        lim = f" (limit {rep.fd_limit})" if rep.fd_limit else ""
        lines.append(f"Open fds: {rep.fd_count}{lim}")
    lines += [f"Disk: {d.mount} {d.use_pct}% used ({d.used} of {d.size})" for d in rep.disk or ()]
    if rep.memstats:
        lines.append("Memstats: " + ", ".join(f"{k}={v}" for k, v in rep.memstats.items()))
    if rep.gc_pauses:
        lines.append("GC pauses: " + trace_text.gc_pauses(rep.gc_pauses))
    for title, items in (("Hints", rep.hints), ("Problems", rep.problems), ("Notes", rep.notes)):
        if items:
            lines += ["", f"{title}:", *(f"  {h}" for h in items)]
    return "\n".join(lines) + "\n"


def render_bundle_diff(d: model.BundleDiff) -> str:
    """New minus old, section by section; a section missing from either bundle says so or is left out."""
    lines = [f"Old: {d.old}", f"New: {d.new}", ""]
    if d.heap:
        lines += ["Heap in use, new minus old:", *_indented(pprof_text.render_top(d.heap))]
    else:
        lines.append("Heap: not in both bundles")
    g = d.goroutines
    if g:
        lines += ["", f"Goroutines: {g.before} -> {g.after} ({g.after - g.before:+d})"]
        lines += [f"  {c['change']:+8d}  {c['before']:>7} -> {c['after']:<7} [{c['state']}] {c['function']}"
                  for c in g.groups]
    if d.fd_count:
        fd = d.fd_count
        lines += ["", f"Open fds: {fd.before} -> {fd.after} ({fd.change:+d})"]
    if d.sockets:
        lines += ["", "Sockets:"]
        lines += [f"  {state:<12} {v.before:>6} -> {v.after:<6} ({v.change:+d})" for state, v in d.sockets.items()]
    lines += [f"note: {h}" for h in d.hints + d.problems]
    return "\n".join(lines) + "\n"


def render_dump(dump: goroutines.DumpDict) -> str:
    """The ``goroutines`` command's table: one line per (state, top frame) group."""
    return render_goroutines(dump["total"], dump["truncated"], dump["groups"])


def render_goroutines(total: int, truncated: bool, groups: list[goroutines.GroupDict]) -> str:
    lines = [f"{total} goroutines in {len(groups)} groups"
             + (" (DUMP TRUNCATED at Go's 64 MB limit: counts are low)" if truncated else "")]
    lines.append(f"{'count':>8} {'wait':>6}  {'state':<24} {'function':<50} created by")
    for g in groups:
        wait = f"{g['max_wait_minutes']}m" if g["max_wait_minutes"] else "-"
        mark = (f"  <- {g['leaked']} leaked (proven by the runtime)" if g["leaked"]
                else "  <- leak suspect" if g["suspect"] else "")
        lines.append(f"{g['count']:>8} {wait:>6}  {g['state']:<24} {g['function']:<50} "
                     f"{g['created_by'] or '-'}{mark}")
    return "\n".join(lines) + "\n"
