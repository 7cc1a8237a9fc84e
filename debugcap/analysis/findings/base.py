"""What every finding rule shares: the rule signature and the byte formatting of messages.

Callers: the rule modules of :mod:`debugcap.analysis.findings`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from debugcap.analysis import model, pprof


class Rule(Protocol):
    """A finding rule: reads a report, yields zero or more findings; never raises on missing data."""

    def __call__(self, report: model.Report, /) -> Iterable[model.Finding]: ...


def human_bytes(n: float | None) -> str:
    """``4.0MB``-style sizes for messages (1024-based, as pprof prints them)."""
    if n is None:
        return "?"
    v = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if abs(v) < 1024 or unit == "GB":
            return f"{v:.0f}{unit}" if unit == "B" else f"{v:.1f}{unit}"
        v /= 1024
    return f"{v:.1f}GB"


def leader(top: pprof.TopReport | None) -> pprof.TopRow | None:
    """The first row of a top that has samples: the function a top-of-profile rule names."""
    return top["rows"][0] if top and top["rows"] and top["total"] else None


def contention(top: pprof.TopReport | None, kind: str, severity: int) -> Iterable[model.Finding]:
    """The function that waited longest in a block or mutex profile (``kind``)."""
    if top and top["rows"] and top["total"]:
        r = max(top["rows"], key=lambda r: (r["flat"], r["function"]))
        yield model.Finding(severity, f"{kind}-delay", r["function"],
                            f"{kind} delay: {r['function']} waited {r['flat'] / 1e9:.3g}s "
                            f"({r['flat_pct']:.1f}% of {top['total'] / 1e9:.3g}s)")
