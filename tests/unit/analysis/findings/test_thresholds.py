"""The severity bands: one table in thresholds.py, mirrored row for row in docs/findings.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from debugcap.analysis import findings, model
from debugcap.analysis.findings import thresholds

DOCS = Path(__file__).resolve().parents[4] / "docs" / "findings.md"


def _docs_bands() -> dict[str, tuple[str, str, float, float, tuple[int, ...]]]:
    out = {}
    for line in DOCS.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        m = re.fullmatch(r"`([a-z-]+)`", cells[0]) if len(cells) == 6 else None
        if m and re.fullmatch(r"[\d.]+", cells[3]):
            sev = tuple(int(x) for x in cells[5].split("/"))
            out[m.group(1)] = (cells[1], cells[2], float(cells[3]), float(cells[4]), sev)
    return out


def test_docs_mirror_the_table() -> None:
    assert _docs_bands() == {k: (b.measure, b.unit, b.medium, b.high, b.severities)
                             for k, b in thresholds.BANDS.items()}


@pytest.mark.parametrize("rule", sorted(thresholds.BANDS))
def test_each_bands_severities_have_the_levels_they_name(rule: str) -> None:
    band = thresholds.BANDS[rule]
    assert band.medium < band.high
    for value, level in ((None, "low"), (band.medium / 2, "low"), (band.medium, "medium"), (band.high, "high")):
        assert band.level(value) == level
        assert model.Finding(band.severity(value), rule, "s", "m").level == level


def test_every_rule_is_documented() -> None:
    text = DOCS.read_text()
    kinds = {"goroutine-leak-proven", "goroutine-leak", "heap-growth", "goroutine-growth", "fd-limit", "disk-full",
             "truncated-dump", "close-wait", "collector-failed", "hint", "mutex-delay", "block-delay", "cpu-hot",
             "heap-top", "sched-latency"}
    assert len(findings.RULES) >= len(kinds)
    assert [k for k in sorted(kinds) if f"| `{k}` |" not in text] == []
