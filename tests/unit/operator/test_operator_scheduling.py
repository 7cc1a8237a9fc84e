"""The DebugSchedule decision, as a pure function of (now, last run, active captures, policy).

Cases: nothing due; first run counts from creation; only the latest missed run; a run exactly at
now; suspend; startingDeadlineSeconds; Forbid/Allow/Replace with an active capture; time zones;
bad cron and zone; history pruning keeps the newest successful capture even at limit 0, and
breaks a tie in creation time (whole seconds) by completion time, not by name.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from debugcap.errors import ConfigError
from debugcap.operator.scheduling import Action, HistoryItem, decide, to_prune
from debugcap.schedule_runs import check_schedule


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


CREATED = at("2026-11-23T10:00:30")


@pytest.mark.parametrize("now, last, active, policy, expected", [
    ("2026-11-23T10:00:59", None, [], "Forbid", (Action.WAIT, None)),
    ("2026-11-23T10:01:05", None, [], "Forbid", (Action.CREATE, "2026-11-23T10:01:00")),
    ("2026-11-23T10:01:00", None, [], "Forbid", (Action.CREATE, "2026-11-23T10:01:00")),
    ("2026-11-23T10:01:30", "2026-11-23T10:01:00", [], "Forbid", (Action.WAIT, None)),
    ("2026-11-23T10:07:30", "2026-11-23T10:01:00", [], "Forbid", (Action.CREATE, "2026-11-23T10:07:00")),
    ("2026-11-23T10:02:01", "2026-11-23T10:01:00", ["s-1"], "Forbid", (Action.SKIP, "2026-11-23T10:02:00")),
    ("2026-11-23T10:02:01", "2026-11-23T10:01:00", ["s-1"], "Allow", (Action.CREATE, "2026-11-23T10:02:00")),
    ("2026-11-23T10:02:01", "2026-11-23T10:01:00", ["s-1"], "Replace", (Action.REPLACE, "2026-11-23T10:02:00")),
], ids=["not-yet-due", "first-run-after-creation", "run-exactly-now", "already-handled", "only-latest-missed-run",
        "forbid-while-active", "allow-while-active", "replace-while-active"])
def test_decision_follows_cron_and_concurrency_policy(now: str, last: str | None, active: list[str], policy: str,
                                                      expected: tuple[Action, str | None]) -> None:
    decision = decide(schedule="* * * * *", zone=None, now=at(now), last_schedule=at(last) if last else None,
                      created=CREATED, active=active, policy=policy)
    assert (decision.action, decision.scheduled) == (expected[0], at(expected[1]) if expected[1] else None)


def test_suspended_schedule_skips_due_runs_and_says_why() -> None:
    decision = decide(schedule="* * * * *", zone=None, now=at("2026-11-23T10:05:01"), last_schedule=None,
                      created=CREATED, active=[], suspend=True)
    assert decision.action is Action.SKIP and "suspend" in decision.reason


def test_run_missed_by_more_than_starting_deadline_is_skipped() -> None:
    kwargs = dict(schedule="0 * * * *", zone=None, last_schedule=None, created=CREATED, active=[],
                  starting_deadline_seconds=60)
    late = decide(now=at("2026-11-23T11:02:00"), **kwargs)  # type: ignore[arg-type]
    on_time = decide(now=at("2026-11-23T11:00:40"), **kwargs)  # type: ignore[arg-type]
    assert late.action is Action.SKIP and "startingDeadlineSeconds" in late.reason
    assert on_time.action is Action.CREATE


def test_schedule_is_read_in_its_time_zone() -> None:
    berlin = ZoneInfo("Europe/Berlin")  # UTC+1 in November
    decision = decide(schedule="0 12 * * *", zone=berlin, now=at("2026-11-23T11:00:05"), last_schedule=None,
                      created=CREATED, active=[])
    assert decision.action is Action.CREATE
    assert decision.scheduled == at("2026-11-23T11:00:00")


@pytest.mark.parametrize("schedule, zone, field", [
    ("every minute", None, "spec.schedule"), ("* * * * *", "Mars/Olympus", "spec.timeZone"),
], ids=["bad-cron", "bad-zone"])
def test_bad_schedule_names_the_field(schedule: str, zone: str | None, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        check_schedule(schedule, zone)


def history(*items: tuple[str, str]) -> list[HistoryItem]:
    return [HistoryItem(name, phase, at(f"2026-11-23T10:{i:02d}:00")) for i, (name, phase) in enumerate(items)]


def test_pruning_keeps_limits_and_skips_running_captures() -> None:
    items = history(("c0", "Completed"), ("c1", "Failed"), ("c2", "Completed"), ("c3", "Failed"),
                    ("c4", "Completed"), ("c5", "Running"))
    assert to_prune(items, successful_limit=2, failed_limit=1) == ["c0", "c1"]


def test_pruning_always_keeps_the_newest_successful_capture() -> None:
    items = history(("c0", "Completed"), ("c1", "PartiallyFailed"), ("c2", "Failed"))
    assert to_prune(items, successful_limit=0, failed_limit=0) == ["c0", "c2"]


def test_pruning_breaks_a_creation_tie_by_completion_not_by_name() -> None:
    # creationTimestamp has whole seconds: a run made in the same second as earlier ones must
    # still count as the newest, though its name ("s-29924256") sorts before theirs.
    created = at("2026-11-23T10:00:05")
    items = [HistoryItem("s-old-failed", "Failed", created, at("2026-01-01T00:00:00")),
             HistoryItem("s-old-ok", "Completed", created, at("2026-01-01T00:00:00")),
             HistoryItem("s-29924256", "Completed", created, at("2026-11-23T10:00:12"))]
    assert to_prune(items, successful_limit=1, failed_limit=0) == ["s-old-failed", "s-old-ok"]
    assert to_prune(list(reversed(items)), successful_limit=1, failed_limit=0) == ["s-old-failed", "s-old-ok"]


def test_pruning_counts_a_missing_completion_time_as_the_creation_time() -> None:
    created = at("2026-11-23T10:00:05")
    items = [HistoryItem("b", "Completed", created), HistoryItem("a", "Completed", created, at("2026-11-23T10:01:00"))]
    assert to_prune(items, successful_limit=1, failed_limit=0) == ["b"]
