"""Rule disk-full: every filesystem at FULL_PCT or more, named by its mount point."""

from __future__ import annotations

from debugcap.formats import df

from .reports import kinds, messages, report


def _row(mount: str, pct: int) -> df.DfRow:
    return df.DfRow(filesystem="overlay", size="10", used="9", available="1", use_pct=pct, mount=mount)


def test_only_full_filesystems_are_findings() -> None:
    rep = report(disk=(_row("/", 95), _row("/dev", 0), _row("/data", 90)))
    assert kinds(rep) == [("disk-full", "/"), ("disk-full", "/data")]
    assert messages(rep)[0] == "filesystem / (overlay) is 95% full"


def test_no_df_output_no_finding() -> None:
    assert kinds(report(disk=None)) == []
