"""kopf handlers of DebugSchedule: a timer that makes the due DebugCapture and prunes old ones.

Registered through :mod:`debugcap.operator.handlers`. What to do is decided by the pure functions
of :mod:`~debugcap.operator.scheduling` (CronJob rules); this module reads the schedule's
captures, carries out the decision through the API and reports it in the schedule's status.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

import kopf

from debugcap import errors, resources, schedule_runs
from debugcap.kube.client import Kube, group_path
from debugcap.operator import runtime, scheduling, sweeps
from debugcap.operator.reporting import event, now, parse_stamp, stamp

GROUP: Final = resources.GROUP
VERSION: Final = resources.VERSION
# How often each DebugSchedule is checked, in seconds. Cron resolution is one minute; checking
# every 10 s starts a run at most 10 s late at the cost of one list call per schedule.
SCHEDULE_TICK_SECONDS: Final = 10.0


@kopf.timer(GROUP, VERSION, resources.SCHEDULES, interval=SCHEDULE_TICK_SECONDS, initial_delay=1.0)
async def tick_schedule(body: kopf.Body, spec: kopf.Spec, status: kopf.Status, patch: kopf.Patch,
                        memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    kube = runtime.of(memo).kube
    name, namespace = str(body.metadata.name), str(body.metadata.namespace)
    try:
        zone = schedule_runs.check_schedule(str(spec.get("schedule", "")), spec.get("timeZone"))
    except errors.ConfigError as exc:
        patch.status["message"] = str(exc)
        raise kopf.PermanentError(str(exc)) from exc
    owned = await runtime.in_thread(owned_captures, kube, namespace, name, str(body.metadata.uid))
    active = [c["metadata"]["name"] for c in owned if (c.get("status") or {}).get("phase") not in scheduling.TERMINAL]
    last = status.get("lastScheduleTime")
    decision = scheduling.decide(
        schedule=str(spec["schedule"]), zone=zone, now=now(), last_schedule=parse_stamp(last) if last else None,
        created=parse_stamp(str(body.metadata.creation_timestamp)), active=active,
        policy=str(spec.get("concurrencyPolicy", "Forbid")), suspend=bool(spec.get("suspend", False)),
        starting_deadline_seconds=spec.get("startingDeadlineSeconds"))
    if decision.scheduled is not None:
        patch.status["lastScheduleTime"] = stamp(decision.scheduled)
        if decision.action is scheduling.Action.REPLACE:
            for victim in active:
                await runtime.in_thread(delete_capture, kube, namespace, victim)
            active = []
        if decision.action in (scheduling.Action.CREATE, scheduling.Action.REPLACE):
            made = await runtime.in_thread(create_scheduled_capture, kube, body, decision.scheduled)
            active.append(made)
            event(body, True, "CaptureCreated", f"created DebugCapture {made}")
            patch.status["message"] = f"created {made}"
        else:
            logger.info("skipped the run of %s: %s", stamp(decision.scheduled), decision.reason)
            patch.status["message"] = f"skipped the run of {stamp(decision.scheduled)}: {decision.reason}"
    history = [history_item(c) for c in owned]
    pruned = scheduling.to_prune(history, int(spec.get("successfulHistoryLimit", 3)),
                                 int(spec.get("failedHistoryLimit", 1)))
    for doomed in pruned:
        logger.info("pruning %s: over the history limits", doomed)
        await runtime.in_thread(delete_capture, kube, namespace, doomed)
    successes = [(c.get("status") or {}).get("completionTime") for c in owned
                 if (c.get("status") or {}).get("phase") in scheduling.SUCCESSFUL]
    if any(successes):
        patch.status["lastSuccessfulTime"] = max(s for s in successes if s)
    patch.status["active"] = [{"name": n} for n in active]
    # From every finished run, those just pruned included (a failed run pruned at once is still the
    # last run); the trend's baseline only from runs still there to look at.
    summary = sweeps.last_run(owned, pruned=set(pruned))
    if summary is not None and sweeps.replaces(summary, status.get("lastRun")):
        # A merge patch keeps keys it does not name: those the new run lacks are cleared.
        patch.status["lastRun"] = {**dict.fromkeys(sweeps.OPTIONAL_KEYS), **summary}


def history_item(capture: Mapping[str, Any]) -> scheduling.HistoryItem:
    """creationTimestamp has whole seconds, so runs created in the same second tie on it; the
    completionTime decides between them (see :meth:`scheduling.HistoryItem.age_key`)."""
    status = capture.get("status") or {}
    completed = status.get("completionTime")
    try:
        finished = parse_stamp(str(completed)) if completed else None
    except ValueError:
        finished = None
    return scheduling.HistoryItem(str(capture["metadata"]["name"]), str(status.get("phase", "")),
                                  parse_stamp(str(capture["metadata"]["creationTimestamp"])), finished)


def owned_captures(kube: Kube, namespace: str, schedule: str, uid: str) -> list[dict[str, Any]]:
    listed: Any = kube.get_json(group_path(GROUP, VERSION, resources.CAPTURES, namespace),
                                [("labelSelector", f"{resources.SCHEDULE_LABEL}={schedule}")])
    return [c for c in listed.get("items") or []
            if any(o.get("uid") == uid for o in c["metadata"].get("ownerReferences") or [])]


def delete_capture(kube: Kube, namespace: str, name: str) -> None:
    kube.delete(group_path(GROUP, VERSION, resources.CAPTURES, namespace, name), missing_ok=True)


def scheduled_capture(schedule: kopf.Body, when: datetime) -> dict[str, Any]:
    """The DebugCapture of run ``when`` (:mod:`debugcap.schedule_runs`, shared with the plugin's
    ``schedule run-now``)."""
    return schedule_runs.run_capture(schedule, schedule_runs.run_name(str(schedule.metadata.name), when))


def create_scheduled_capture(kube: Kube, schedule: kopf.Body, when: datetime) -> str:
    """Create the capture of run ``when`` (see :func:`scheduled_capture`); its name."""
    body = scheduled_capture(schedule, when)
    try:
        kube.post_json(group_path(GROUP, VERSION, resources.CAPTURES, str(schedule.metadata.namespace)), body)
    except errors.ConflictError:
        pass
    return str(body["metadata"]["name"])
