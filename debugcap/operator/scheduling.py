"""When a DebugSchedule makes a DebugCapture, and which old ones it prunes: pure functions.

:mod:`debugcap.operator.schedules` calls :func:`decide` from a timer and :func:`to_prune` after it;
both take plain values (times, names, phases) so they are unit-tested without a cluster or a clock.
The rules follow the CronJob controller: only the latest missed run counts, a run missed by more
than ``startingDeadlineSeconds`` is skipped, and ``concurrencyPolicy`` decides what happens while an
earlier capture still runs.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter

TERMINAL = frozenset({"Completed", "PartiallyFailed", "Failed"})
SUCCESSFUL = frozenset({"Completed", "PartiallyFailed"})


class Action(enum.StrEnum):
    WAIT = "wait"  # no run is due
    CREATE = "create"  # make a capture for the due run
    SKIP = "skip"  # a run is due but policy or deadline says no; record it as handled
    REPLACE = "replace"  # delete the active captures, then make a new one


@dataclass(frozen=True)
class Decision:
    action: Action
    scheduled: datetime | None = None  # the run this decision is about
    reason: str = ""


@dataclass(frozen=True)
class HistoryItem:
    name: str
    phase: str
    created: datetime  # metadata.creationTimestamp: whole seconds, so captures can tie
    completed: datetime | None = None  # status.completionTime; breaks a tie in ``created``

    def age_key(self) -> tuple[datetime, datetime, str]:
        """Older sorts first: by creation, then by completion (a finished capture without a
        completionTime counts as completed when created), and only then by name. The name alone
        must not decide between runs created in the same second: "nightly-29924256" sorts before
        "nightly-old-ok", so the run that had just finished would be pruned as the older one."""
        return self.created, self.completed or self.created, self.name


def latest_due(schedule: str, zone: ZoneInfo | None, since: datetime, now: datetime) -> datetime | None:
    """The latest scheduled time in ``(since, now]``, or None when no run fell in it."""
    local_now = now.astimezone(zone) if zone else now
    previous: datetime = croniter(schedule, local_now).get_prev(datetime)
    # croniter's get_prev is strictly before its start; a run exactly at ``now`` is due too.
    following: datetime = croniter(schedule, previous).get_next(datetime)
    if following <= local_now:
        previous = following
    return previous if previous > since else None


def decide(
    *,
    schedule: str,
    zone: ZoneInfo | None,
    now: datetime,
    last_schedule: datetime | None,
    created: datetime,
    active: Sequence[str],
    policy: str = "Forbid",
    suspend: bool = False,
    starting_deadline_seconds: int | None = None,
) -> Decision:
    """What to do at ``now``. ``last_schedule`` is the last run handled (None: never; then runs
    count from the schedule's ``created`` time); ``active`` are its captures not yet finished."""
    due = latest_due(schedule, zone, last_schedule or created, now)
    if due is None:
        return Decision(Action.WAIT)
    if suspend:
        return Decision(Action.SKIP, due, "spec.suspend is true")
    if starting_deadline_seconds is not None and now - due > timedelta(seconds=starting_deadline_seconds):
        return Decision(Action.SKIP, due, f"missed by more than spec.startingDeadlineSeconds="
                                          f"{starting_deadline_seconds}")
    if active and policy == "Forbid":
        return Decision(Action.SKIP, due, f"concurrencyPolicy Forbid and {', '.join(active)} still running")
    if active and policy == "Replace":
        return Decision(Action.REPLACE, due, f"concurrencyPolicy Replace: {', '.join(active)} replaced")
    return Decision(Action.CREATE, due)


def to_prune(history: Sequence[HistoryItem], successful_limit: int, failed_limit: int) -> list[str]:
    """Finished captures over the history limits, oldest first; never the newest successful one,
    because it is the baseline a human compares the next incident against. Age is
    :meth:`HistoryItem.age_key`: creation time, then completion time, then name."""
    finished = sorted((h for h in history if h.phase in TERMINAL), key=HistoryItem.age_key, reverse=True)
    good = [h for h in finished if h.phase in SUCCESSFUL]
    bad = [h for h in finished if h.phase not in SUCCESSFUL]
    doomed = good[max(successful_limit, 1):] + bad[max(failed_limit, 0):]
    return [h.name for h in sorted(doomed, key=HistoryItem.age_key)]
