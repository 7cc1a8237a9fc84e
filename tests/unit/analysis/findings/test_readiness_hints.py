"""Rule hint: each readiness hint is a finding whose subject is the file it is about."""

from __future__ import annotations

from .reports import kinds, report


def test_every_hint_is_a_finding_about_its_file() -> None:
    rep = report(hints=("pprof/block.pb.gz is empty: the program never called runtime.SetBlockProfileRate",
                        "pprof/cpu.pb.gz has no CPU samples: the process was idle during the capture"))
    assert kinds(rep) == [("hint", "pprof/block.pb.gz"), ("hint", "pprof/cpu.pb.gz")]
