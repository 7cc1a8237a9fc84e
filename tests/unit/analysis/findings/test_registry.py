"""The RULES registry: every rule module is listed once, and findings come out most serious first."""

from __future__ import annotations

import pkgutil

from debugcap.analysis import findings, model

from .reports import report


def test_every_rule_module_is_registered_once() -> None:
    modules = {m.name for m in pkgutil.iter_modules(findings.__path__)} - {"base", "thresholds"}
    registered = [rule.__module__.rsplit(".", 1)[1] for rule in findings.RULES]
    assert sorted(registered) == sorted(modules)


def test_findings_are_sorted_by_severity_and_levels_follow_it() -> None:
    rep = report(fd_count=10, fd_limit=10, hints=("x is empty",),
                 leak_suspects=({"state": "select", "function": "main.f", "count": 60, "max_wait_minutes": 0,
                                 "created_by": "", "suspect": True, "leaked": 0},))
    got = [(f.kind, f.level) for f in findings.evaluate(rep)]
    assert got == [("goroutine-leak", "high"), ("fd-limit", "medium"), ("hint", "medium")]
    assert model.Finding(54, "k", "s", "m").level == "low"
