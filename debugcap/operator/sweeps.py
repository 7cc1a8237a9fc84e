"""A DebugSchedule's ``status.lastRun``: how its newest finished capture went, and the trend.

:mod:`~debugcap.operator.schedules` calls :func:`last_run` on every tick with the captures the
schedule owns (it lists them anyway). Pure: it reads only their statuses, so a person watching a
recurring health sweep learns from the schedule alone how many pods were captured, healthy, with
findings or failed, and whether each pod's goroutines and heap in use went up or down since the
run before.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from debugcap.operator import scheduling
from debugcap.operator.reporting import parse_stamp
from debugcap.operator.results import PodResult, summary

# Pods listed in the trend, largest goroutine change first: what a status can show at a glance
# (a capture has at most 100 pods; the capture's own status has them all).
MAX_TREND_PODS: Final = 20
# Readings compared between runs, with the name of their field in the trend.
COMPARED: Final = (("goroutines", "goroutines"), ("heapInuseBytes", "heapInuse"))
# Keys of a last run that only some runs have.
OPTIONAL_KEYS: Final = ("completionTime", "previousCapture", "trend")


def _stamp(text: object) -> datetime | None:
    try:
        return parse_stamp(str(text)) if text else None
    except ValueError:
        return None


def _age(capture: Mapping[str, Any]) -> tuple[datetime, datetime, str]:
    status = capture.get("status") or {}
    item = scheduling.HistoryItem(str(capture["metadata"]["name"]), str(status.get("phase", "")),
                                  parse_stamp(str(capture["metadata"]["creationTimestamp"])),
                                  _stamp(status.get("completionTime")))
    return item.age_key()


def _readings(capture: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {str(p["name"]): p.get("readings") or {} for p in (capture.get("status") or {}).get("pods") or []
            if p.get("readings")}


def _direction(change: float) -> str:
    return "up" if change > 0 else "down" if change < 0 else "same"


def trend(latest: Mapping[str, Any], previous: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per pod present in both runs: each compared reading, its change and its direction."""
    before = _readings(previous)
    rows = []
    for pod, now in sorted(_readings(latest).items()):
        old = before.get(pod)
        if old is None:
            continue
        row: dict[str, Any] = {"pod": pod}
        for reading, name in COMPARED:
            if isinstance(now.get(reading), int | float) and isinstance(old.get(reading), int | float):
                change = now[reading] - old[reading]
                row.update({name: now[reading], f"{name}Change": change, f"{name}Trend": _direction(change)})
        if len(row) > 1:
            rows.append(row)
    rows.sort(key=lambda r: -abs(r.get("goroutinesChange", 0)))
    return rows[:MAX_TREND_PODS]


def last_run(captures: Sequence[Mapping[str, Any]], pruned: Collection[str] = ()) -> dict[str, Any] | None:
    """The newest finished capture's summary (its ``status.summary``, else counted from its pods),
    with the trend against the newest earlier one that has readings and is not in ``pruned``; None
    before any run finished.

    The newest run counts even when it is pruned in the same tick (``failedHistoryLimit: 0`` prunes
    a failed run at once): the last run is what happened last, and an older success must not stand
    in for it. Only the trend's baseline must still be there to look at. (The history limits decide
    whether one is left: ``successfulHistoryLimit`` 1 keeps none.)"""
    finished = sorted((c for c in captures if (c.get("status") or {}).get("phase") in scheduling.TERMINAL),
                      key=_age)
    if not finished:
        return None
    latest = finished[-1]
    status = latest.get("status") or {}
    counts = status.get("summary") or summary(PodResult.from_status(p) for p in status.get("pods") or [])
    out: dict[str, Any] = {"capture": latest["metadata"]["name"], "phase": status.get("phase"), **counts}
    if status.get("completionTime"):
        out["completionTime"] = status["completionTime"]
    # The run before that read anything: a failed run in between has no readings to compare with.
    earlier = [c for c in finished[:-1] if _readings(c) and c["metadata"]["name"] not in pruned]
    if earlier:
        out["previousCapture"] = earlier[-1]["metadata"]["name"]
        out["trend"] = trend(latest, earlier[-1])
    return out


def replaces(new: Mapping[str, Any], recorded: Mapping[str, Any] | None) -> bool:
    """Whether ``new`` (from :func:`last_run`) may replace the ``lastRun`` the status has: it is
    the same run, or one that finished no earlier. A recorded run that is gone (pruned, or deleted
    by hand) is still the last one that ran; the older run still listed must not replace it."""
    if not recorded or recorded.get("capture") == new.get("capture"):
        return True
    before, after = _stamp(recorded.get("completionTime")), _stamp(new.get("completionTime"))
    return before is None or after is None or after >= before
