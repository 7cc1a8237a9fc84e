"""Rule ``cpu-hot``: the application's functions that spend most of the CPU, leaves included.

Each CPU sample is charged to its first frame of the application's own code, so a loop hashing
with ``crypto/sha256`` is ``main.burnCPU`` (leaf ``crypto/internal/fips140/sha256.blockSHANI``) and
not the library's leaf. The severity is the function's cores as a share of what the container may
use (:data:`.thresholds.BANDS`). Registered in :data:`debugcap.analysis.findings.RULES`.
"""

from __future__ import annotations

from collections.abc import Iterator

from debugcap.analysis import model
from debugcap.analysis.findings import thresholds
from debugcap.analysis.findings.base import cpu_capacity, named_rows, via, window_seconds

BAND = thresholds.BANDS["cpu-hot"]


def check(report: model.Report) -> Iterator[model.Finding]:
    att = report.attribution.get("cpu")
    if att is None:
        return
    seconds, window = window_seconds(report, att)
    capacity, yardstick = cpu_capacity(report)

    def cores(row: model.OwnRow) -> float | None:
        return row.value / 1e9 / seconds if seconds else None

    def share(row: model.OwnRow) -> float | None:
        used = cores(row)
        return 100 * used / capacity if used is not None and capacity else None

    for row, pct in named_rows(att, BAND, share):
        used = cores(row)
        rate = f", {used:.2f} cores {window}" if used is not None else ""
        of = f" = {pct:.0f}% of {yardstick}" if pct is not None else " (no CPU limit or GOMAXPROCS known)"
        yield model.Finding(
            BAND.severity(pct), "cpu-hot", row.function,
            f"CPU: {row.function} spends {100 * row.value / att.total:.1f}% of the sampled CPU"
            f"{rate}{of if used is not None else ''}{via(row)}",
            leaf=row.leaf, value=None if pct is None else round(pct, 1), unit=BAND.unit)
