"""A DebugSchedule's runs, as both front ends make them: the check of its cron spec, and the
DebugCapture a run creates.

The operator's timer (:mod:`debugcap.operator.schedules`) and the plugin's ``schedule run-now``
and ``schedule create`` must agree on both: a capture the plugin starts by hand is one of the
schedule's runs (owned by it and labelled like the others, so the history limits, the
concurrency policy and ``lastRun`` count it), and a spec the plugin writes is one the operator
accepts. The front ends never import each other, so this lives in the core.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from debugcap import resources
from debugcap.errors import ConfigError


def check_schedule(schedule: str, time_zone: str | None) -> ZoneInfo | None:
    """Raise :class:`ConfigError` naming the field when the cron expression or zone is invalid."""
    from croniter import croniter  # here: the plugin's --help does not pay for it

    if not croniter.is_valid(schedule):
        raise ConfigError(f'spec.schedule: "{schedule}" is not a cron expression; write five fields '
                          'like "*/15 * * * *" (minute hour day-of-month month day-of-week)')
    if not time_zone:
        return None
    try:
        return ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f'spec.timeZone: "{time_zone}" is not a time zone; use an IANA name like '
                          '"Europe/Berlin" or "UTC"') from None


def run_name(schedule: str, when: datetime) -> str:
    """The capture of the run due at ``when``: named after its minute, so a retried tick finds the
    one it made (409) instead of making a second."""
    return f"{schedule}-{int(when.timestamp()) // 60}"


def run_capture(schedule: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The DebugCapture ``name`` of a run of ``schedule`` (its object as read from the API): the
    captureTemplate's spec and labels, the schedule's label, owned by the schedule (deleted with
    it)."""
    meta = schedule["metadata"]
    template = (schedule.get("spec") or {}).get("captureTemplate") or {}
    labels = {**((template.get("metadata") or {}).get("labels") or {}), resources.SCHEDULE_LABEL: meta["name"]}
    return {
        "apiVersion": resources.API_VERSION, "kind": "DebugCapture",
        "metadata": {"name": name, "labels": labels,
                     "ownerReferences": [{
                         "apiVersion": resources.API_VERSION, "kind": "DebugSchedule",
                         "name": meta["name"], "uid": meta["uid"], "controller": True,
                         "blockOwnerDeletion": True}]},
        "spec": dict(template.get("spec") or {}),
    }
