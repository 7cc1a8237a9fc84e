"""pprof's ``-top`` text, byte for byte, and the unit scaling and percentages it prints.

Callers: the ``top``/``diff`` commands (:func:`render_table`), and
:mod:`debugcap.analysis.rendering.text` and :mod:`debugcap.analysis.rendering.html`, which show
tops inside reports (:func:`render_top`, :func:`pick_scale`, :func:`format_value`).

Mirrors google/pprof: ``internal/measurement/measurement.go`` (``Scale``, ``ScaledLabel``,
``Percentage``, the unit table), ``internal/report/report.go`` (``selectOutputUnit``,
``ProfileLabels``, ``reportLabels``, ``printText``). Go's ``%5.2g`` and Python's ``5.2g`` agree,
exponent digits included (``1.9e-05``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from debugcap.analysis import pprof
from debugcap.formats import pprof as pprof_format


class _Unit(NamedTuple):
    name: str
    aliases: tuple[str, ...]
    factor: float


# pprof's measurement.UnitTypes: each family's units, then its default unit.
_UNIT_TYPES: tuple[tuple[tuple[_Unit, ...], _Unit], ...] = (
    ((_Unit("B", ("b", "byte"), 1.0), _Unit("kB", ("kb", "kbyte", "kilobyte"), float(1 << 10)),
      _Unit("MB", ("mb", "mbyte", "megabyte"), float(1 << 20)),
      _Unit("GB", ("gb", "gbyte", "gigabyte"), float(1 << 30)),
      _Unit("TB", ("tb", "tbyte", "terabyte"), float(1 << 40)),
      _Unit("PB", ("pb", "pbyte", "petabyte"), float(1 << 50))),
     _Unit("B", ("b", "byte"), 1.0)),
    ((_Unit("ns", ("ns", "nanosecond"), 1.0), _Unit("us", ("μs", "us", "microsecond"), 1e3),
      _Unit("ms", ("ms", "millisecond"), 1e6), _Unit("s", ("s", "sec", "second"), 1e9),
      _Unit("hrs", ("hour", "hr"), 3600e9)),
     _Unit("s", (), 1e9)),
    ((_Unit("n*GCU", ("nanogcu",), 1e-9), _Unit("u*GCU", ("microgcu",), 1e-6),
      _Unit("m*GCU", ("milligcu",), 1e-3), _Unit("GCU", ("gcu",), 1.0), _Unit("k*GCU", ("kilogcu",), 1e3),
      _Unit("M*GCU", ("megagcu",), 1e6), _Unit("G*GCU", ("gigagcu",), 1e9),
      _Unit("T*GCU", ("teragcu",), 1e12), _Unit("P*GCU", ("petagcu",), 1e15)),
     _Unit("GCU", (), 1.0)),
)
_UNSCALED = ("count", "sample", "unit", "minimum", "auto")


def _sniff(units: Sequence[_Unit], unit: str) -> _Unit | None:
    alias = unit.lower()
    if len(alias) > 2:
        alias = alias.removesuffix("s")
    return next((u for u in units if alias in u.aliases), None)


def scale(value: int, from_unit: str, to_unit: str) -> tuple[float, str]:
    """pprof's measurement.Scale: ``value`` in ``to_unit`` ("minimum"/"auto": the largest unit
    it is at least 1 of), and that unit's name; "" for units pprof leaves unscaled."""
    if value < 0:
        v, u = scale(-value, from_unit, to_unit)
        return -v, u
    for units, default in _UNIT_TYPES:
        source = _sniff(units, from_unit)
        if source is None:
            continue
        v = float(value) * source.factor
        if to_unit in ("minimum", "auto"):
            best: _Unit | None = None
            for candidate in units:
                if (best is None or candidate.factor >= best.factor) and v / candidate.factor >= 1.0:
                    best = candidate
            chosen = best or default
            return v / chosen.factor, chosen.name
        target = _sniff(units, to_unit) or default
        return v / target.factor, target.name
    return float(value), "" if to_unit in _UNSCALED else to_unit


def scaled_label(value: int, from_unit: str, to_unit: str) -> str:
    """pprof's measurement.ScaledLabel: ``5.90s``, ``512kB``, ``0``."""
    v, u = scale(value, from_unit, to_unit)
    text = f"{v:.2f}".removesuffix(".00")
    return "0" if text in ("0", "-0") else text + u


def percentage(value: int, total: int) -> str:
    """pprof's measurement.Percentage: at least two digits, ``  100%`` near 100."""
    ratio = abs(value / total) * 100 if total else 0.0
    if 99.95 <= ratio <= 100.05:
        return "  100%"
    if ratio >= 1.0:
        return f"{ratio:5.2f}%"
    return f"{ratio:5.2g}%"


def output_unit(unit: str, nodes: Iterable[tuple[int, int]], total: int) -> str:
    """pprof's selectOutputUnit: the unit every value of a table is printed in.

    The smallest node (its flat, else its cum) picks the unit, unless the total is in a larger
    one and over 100 times bigger: then the unit 100 times the smallest node would have, so that
    the smallest prints as 0.01 or more rather than in a unit too fine for the total.
    """
    values = [abs(flat) or abs(cum) for flat, cum in nodes]
    if not values:
        return "minimum"  # no rows: each value is scaled on its own
    nonzero = [v for v in values if v]
    smallest = min(nonzero) if nonzero else total
    _, small_unit = scale(smallest, unit, "minimum")
    _, total_unit = scale(total, unit, "minimum")
    chosen = small_unit
    if small_unit != total_unit and smallest * 100 < total:
        _, chosen = scale(100 * smallest, unit, "minimum")
    return chosen or unit


def _go_time(ns: int) -> str:
    # Go's "2006-01-02 15:04:05 MST" in the local zone, as pprof prints a profile's time.
    return time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(ns // 10**9))


def _profile_labels(table: pprof.Table, fmt: str) -> list[str]:
    head, rep = table.labels, table.report
    lines = [f"File: {head.file}"] if head.file else []
    if head.build_id:
        lines.append(f"Build ID: {head.build_id}")
    lines += [c for c in head.comments if not c.startswith("#")]
    if rep["sample_type"]:
        lines.append(f"Type: {rep['sample_type']}")
    if head.doc_url:
        lines.append(f"Doc: {head.doc_url}")
    if head.time_ns:
        lines.append(f"Time: {_go_time(head.time_ns)}")
    if head.duration_ns:
        total_ns, total_unit = scale(rep["total"], rep["unit"], "nanoseconds")
        ratio = f"({percentage(int(total_ns), head.duration_ns)})" if total_unit == "ns" and total_ns else ""
        # The space before an empty ratio is pprof's too.
        lines.append(f"Duration: {scaled_label(head.duration_ns, 'nanoseconds', 'auto')}, "
                     f"Total samples = {scaled_label(rep['total'], rep['unit'], fmt)} {ratio}")
    return lines


def render_table(table: pprof.Table) -> str:
    """``go tool pprof -top`` text: labels, then aligned flat/flat%/sum%/cum/cum% rows."""
    rep = table.report
    rows, total, unit = rep["rows"], rep["total"], rep["unit"]
    fmt = output_unit(unit, ((r["flat"], r["cum"]) for r in rows), total)
    lines = _profile_labels(table, fmt)
    shown = sum(r["flat"] for r in rows)
    lines.append(f"Showing nodes accounting for {scaled_label(shown, unit, fmt)}, "
                 f"{percentage(shown, total).strip()} of {scaled_label(total, unit, fmt)} total")
    if total:
        if table.dropped:
            cut = abs(int(float(total) * table.node_fraction))
            lines.append(f"Dropped {table.dropped} node{'s' if table.dropped > 1 else ''} "
                         f"(cum <= {scaled_label(cut, unit, fmt)})")
        if table.limit and table.limit < table.kept:
            lines.append(f"Showing top {table.limit} nodes out of {table.kept}")
    lines.append(f"{'flat':>10} {'flat':>5}% {'sum':>5}% {'cum':>10} {'cum':>5}%")
    running = 0
    for r in rows:
        running += r["flat"]
        inl = table.inline.get(r["function"], "")
        lines.append(
            f"{scaled_label(r['flat'], unit, fmt):>10} {percentage(r['flat'], total)} "
            f"{percentage(running, total)} {scaled_label(r['cum'], unit, fmt):>10} "
            f"{percentage(r['cum'], total)}  {r['function']}{' ' + inl if inl else ''}")
    return "\n".join(lines) + "\n"


def render_top(report: pprof.TopReport, profile: pprof_format.Profile | None = None,
               limit: int | None = None) -> str:
    """A top inside a report: pprof's text with the header its TopReport can give (type, duration)."""
    rows = report["rows"] if limit is None else report["rows"][:limit]
    labels = profile.inline_label if profile else {}
    names = profile.node_names if profile else []
    inline = {names[n]: label for n, label in labels.items() if label}
    table = pprof.Table({**report, "rows": rows}, pprof.Labels(duration_ns=report["duration_ns"]),
                        kept=len(report["rows"]), limit=limit, inline=inline)
    return render_table(table)


def pick_scale(unit: str, values: Iterable[int]) -> tuple[str, float]:
    """Suffix and divisor for printing ``values`` in one unit, chosen as pprof's output unit."""
    vals = list(values)
    nodes = [(v, v) for v in vals]
    chosen = output_unit(unit, nodes, max((abs(v) for v in vals), default=0))
    if chosen == "minimum":
        return "", 1.0
    one, suffix = scale(1, unit, chosen)
    return suffix, (1 / one if one else 1.0)


def format_value(value: int, suffix: str, div: float) -> str:
    text = f"{value / div:.2f}".removesuffix(".00")
    return "0" if text in ("0", "-0") else text + suffix


def format_pct(pct: float) -> str:
    """A percentage (0-100, sign ignored) as pprof prints it."""
    ratio = abs(pct)
    if 99.95 <= ratio <= 100.05:
        return "  100%"
    return f"{ratio:5.2f}%" if ratio >= 1.0 else f"{ratio:5.2g}%"
