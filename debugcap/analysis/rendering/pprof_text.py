"""pprof's ``-top`` text, and the unit scaling and percentages it prints.

Callers: the ``top``/``diff`` commands, and :mod:`debugcap.analysis.rendering.text`
and :mod:`debugcap.analysis.rendering.html`, which show tops inside reports.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import chain

from debugcap.analysis import pprof
from debugcap.formats import pprof as pprof_format

_TIME_UNITS = [("ns", 1), ("us", 1000), ("ms", 1000**2), ("s", 1000**3), ("hrs", 3600 * 1000**3)]
_BYTE_UNITS = [("B", 1), ("kB", 1024), ("MB", 1024**2), ("GB", 1024**3), ("TB", 1024**4)]


def pick_scale(unit: str, values: Iterable[int]) -> tuple[str, int]:
    """Suffix and divisor for the smallest non-zero value, as pprof's "minimum" output unit."""
    scale = _TIME_UNITS if unit in ("nanoseconds", "ns") else _BYTE_UNITS if unit in ("bytes", "B") else []
    if not scale:
        return "", 1
    nz = [abs(v) for v in values if v]
    smallest = min(nz) if nz else 0
    chosen = scale[0]
    for name, div in scale:
        if smallest >= div:
            chosen = (name, div)
    return chosen


def format_value(value: int, suffix: str, div: int) -> str:
    if value == 0:
        return "0"
    if div == 1:
        return f"{value}{suffix}"
    text = f"{value / div:.2f}".removesuffix(".00")
    return f"{text}{suffix}"


def format_pct(pct: float) -> str:
    ratio = abs(pct)
    if 99.95 <= ratio <= 100.05:
        return "  100%"
    if ratio >= 1.0:
        return f"{ratio:5.2f}%"
    return f"{_go_g(ratio):>5}%"


def _go_g(x: float) -> str:
    # Go's %5.2g prints 0 as "0" and small values like 0.12 or 5e-05.
    if x == 0:
        return "0"
    text = f"{x:.2g}"
    return text.replace("e-0", "e-").replace("e+0", "e+")


def render_top(report: pprof.TopReport, profile: pprof_format.Profile | None = None,
               limit: int | None = None) -> str:
    """Text like pprof's -top: a header, then aligned flat/flat%/sum%/cum/cum% columns."""
    rows = report["rows"] if limit is None else report["rows"][:limit]
    suffix, div = pick_scale(report["unit"], chain.from_iterable((r["flat"], r["cum"]) for r in rows))
    head = [f"Type: {report['sample_type']}"]
    if report["duration_ns"]:
        dur = report["duration_ns"]
        head.append(f"Duration: {format_value(dur, *pick_scale('ns', [dur]))}")
    shown = sum(r["flat"] for r in rows)
    head.append(f"Showing nodes accounting for {format_value(shown, suffix, div)}, "
                f"{format_pct(pprof.pct(shown, report['total'])).strip()} of "
                f"{format_value(report['total'], suffix, div)} total")
    if limit is not None and len(report["rows"]) > limit:
        head.append(f"Showing top {limit} nodes out of {len(report['rows'])}")
    lines = head + [f"{'flat':>10} {'flat':>5}% {'sum':>5}% {'cum':>10} {'cum':>5}%"]
    labels = profile.inline_label if profile else {}
    index = {n: i for i, n in enumerate(profile.node_names)} if profile else {}
    for r in rows:
        inl = labels.get(index.get(r["function"], -1), "")
        lines.append(
            f"{format_value(r['flat'], suffix, div):>10} {format_pct(r['flat_pct'])} "
            f"{format_pct(r['sum_pct'])} {format_value(r['cum'], suffix, div):>10} "
            f"{format_pct(r['cum_pct'])}  {r['function']}{' ' + inl if inl else ''}")
    return "\n".join(lines) + "\n"
