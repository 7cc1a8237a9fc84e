"""The self-contained HTML report: the report's sections as tables, then flame graphs.

Callers: the ``report --html`` command. The page loads nothing from the network: its
script and style are ``debugcap/analysis/assets/flamegraph.js`` and ``.css``, read
with :mod:`importlib.resources` and inlined. The JavaScript is our own (no code from
flamegraph.pl, which is CDDL).
"""

from __future__ import annotations

import html
import json
import os
from importlib import resources
from typing import Any

from debugcap.analysis import flames, model
from debugcap.analysis.rendering import pprof_text, text, trace_text

# The asset files sit in the analysis package (package data, not a package of their own).
_PACKAGE = "debugcap.analysis"


def _asset(name: str) -> str:
    return resources.files(_PACKAGE).joinpath("assets").joinpath(name).read_text(encoding="utf-8")


def _table(headers: list[str], rows: list[list[Any]], numeric: set[int] | None = None) -> str:
    numeric = numeric or set()
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td{' class=n' if i in numeric else ''}>{html.escape(str(v))}</td>"
                         for i, v in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _attribution_sections(rep: model.Report) -> list[str]:
    out = []
    for key, title in text.TOP_TITLES:
        att = rep.attribution.get(key)
        if att and att.total:
            out.append(f"<h3>{title}</h3>" + _table(["value", "share", "function", "context"],
                                                    text.attribution_rows(att), {0, 1}))
    return ["<h2>By the application's own functions</h2><p>Each sample charged to its first frame of the "
            "application's own code; the profiler's own samples set apart.</p>", *out] if out else []


def _top_sections(rep: model.Report) -> list[str]:
    out = []
    tops = {"cpu": rep.cpu, "heap": rep.heap, "block": rep.block, "mutex": rep.mutex}
    for key, title in text.TOP_TITLES:
        t = tops[key]
        if not t:
            continue
        suffix, div = pprof_text.pick_scale(t["unit"], [v for r in t["rows"] for v in (r["flat"], r["cum"])])
        out.append(f"<h2>{title}</h2>" + _table(
            ["flat", "flat%", "sum%", "cum", "cum%", "function"],
            [[pprof_text.format_value(r["flat"], suffix, div), f"{r['flat_pct']:.2f}%", f"{r['sum_pct']:.2f}%",
              pprof_text.format_value(r["cum"], suffix, div), f"{r['cum_pct']:.2f}%", r["function"]]
             for r in t["rows"]], {0, 1, 2, 3, 4}))
    return out


def _evidence_sections(rep: model.Report) -> list[str]:
    out = []
    g = rep.goroutines
    if g:
        out.append(f"<h2>Goroutines ({g.total})</h2>" + _table(
            ["count", "state", "function", "max wait (min)", "created by", "suspect", "proven leaked"],
            [[x["count"], x["state"], x["function"], x["max_wait_minutes"], x["created_by"],
              "yes" if x["suspect"] else "", x["leaked"] or ""] for x in g.groups], {0, 3, 6}))
    leaks = rep.proven_leaks
    if leaks:
        out.append(f"<h2>Goroutine leaks proven by the runtime ({leaks.total})</h2>"
                   f"<p>{html.escape(leaks.source)}"
                   + ("" if leaks.groups else ": its leak check found no goroutine blocked forever") + "</p>"
                   + (_table(["count", "function"], [[x["count"], x["function"]] for x in leaks.groups], {0})
                      if leaks.groups else ""))
    if rep.trace:
        out.append("<h2>Execution trace</h2>" + _table(["what", "value"], trace_text.summary_rows(rep.trace)))
    if rep.sockets:
        out.append("<h2>Sockets</h2>" + _table(
            ["state", "count"], [[k, v] for k, v in sorted(rep.sockets.states.items())], {1}))
    misc: list[list[Any]] = []
    if rep.fd_count is not None:
        misc.append(["open fds", rep.fd_count])
    misc += [[f"disk {d.mount}", f"{d.use_pct}% used"] for d in rep.disk or ()]
    misc += [[k, v] for k, v in (rep.memstats or {}).items()]
    if rep.gc_pauses:
        misc.append(["GC pauses", trace_text.gc_pauses(rep.gc_pauses)])
    if misc:
        out.append("<h2>Resources</h2>" + _table(["what", "value"], misc))
    for title, items in (("Hints", rep.hints), ("Problems", rep.problems), ("Notes", rep.notes)):
        if items:
            out.append(f"<h2>{title}</h2><ul>" + "".join(f"<li>{html.escape(h)}</li>" for h in items) + "</ul>")
    return out


def render_report(rep: model.Report, flame_graphs: list[flames.Flame]) -> str:
    """The whole page for one report and the flame graphs built while reading its bundle."""
    tgt = rep.target
    sections = [f"<p>Bundle {html.escape(rep.bundle)}"
                + (f", pod {html.escape(tgt.namespace)}/{html.escape(tgt.pod)}" if tgt else "") + "</p>"]
    if rep.runtime:
        sections.append(f"<p>Runtime: {html.escape(text.runtime_line(dict(rep.runtime)))}</p>")
    sections.append("<h2>Findings</h2><ol>" + "".join(
        f"<li class=\"sev-{f.level}\">{html.escape(f.message)}</li>" for f in rep.findings) + "</ol>")
    if rep.collectors:
        sections.append("<h2>Collectors</h2>" + _table(
            ["collector", "status", "message"], [[c.name, c.status.value, c.message] for c in rep.collectors]))
    if rep.missing:
        sections.append("<h2>Missing files</h2><p>" + html.escape(", ".join(rep.missing)) + "</p>")
    sections += _attribution_sections(rep) + _top_sections(rep) + _evidence_sections(rep)
    name = tgt.pod if tgt and tgt.pod else os.path.basename(rep.bundle)
    return render_page(f"debugcap report: {name}", sections, flame_graphs)


def _script_json(obj: Any) -> str:
    # Inside <script>, "</" would end the element early; "<\/" is the same JSON string.
    return json.dumps(obj, separators=(",", ":")).replace("</", "<\\/")


def render_page(title: str, sections: list[str], flame_graphs: list[flames.Flame]) -> str:
    """One self-contained page: ``sections`` are trusted HTML fragments, flames are drawn by our JS."""
    parts = ["<!DOCTYPE html><html><head><meta charset=\"utf-8\">",
             f"<title>{html.escape(title)}</title><style>\n{_asset('flamegraph.css')}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>"]
    parts.extend(sections)
    if flame_graphs:
        parts.append("<h2>Flame graphs</h2><p>Hover for details, click a frame to zoom, "
                     "search takes a regular expression.</p>")
    for fl in flame_graphs:
        parts.append(
            "<div class=\"flamebox\">"
            f"<h3>{html.escape(fl.title)}</h3>"
            "<div class=\"tools\"><button type=\"button\">Reset zoom</button> "
            "<input type=\"search\" placeholder=\"search (regexp)\"> <span class=\"matched\"></span></div>"
            "<div class=\"bar\"></div><div class=\"flame\"></div>"
            f"<script type=\"application/json\">{_script_json(flames.flame_json(fl))}</script></div>")
    parts.append(f"<script>\n{_asset('flamegraph.js')}</script></body></html>")
    return "".join(parts)
