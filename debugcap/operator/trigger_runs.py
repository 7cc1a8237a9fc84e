"""One check of a DebugTrigger, and its firings: what :mod:`~debugcap.operator.triggers` runs.

:func:`check` reads the trigger's pods (:mod:`~debugcap.operator.trigger_checks`), finds the
crossings (:mod:`~debugcap.operator.triggering`), fires (:func:`fire`) and writes the status;
the Alertmanager receiver fires through :func:`fire` as well. API calls run in threads
(:func:`runtime.in_thread`); the decisions are the pure functions of ``triggering``.

What a check costs the API server: one pod list per trigger; a trigger GET, a list of its
captures and a count of the running triggered captures only when something crosses and is not
already known to be within its cooldown; a status write when something changed, else once a minute.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from debugcap import errors
from debugcap.operator import conditions, metrics, runtime, templating, trigger_checks, trigger_firing, triggering
from debugcap.operator.reporting import parse_stamp, stamp
from debugcap.operator.triggering import Crossing, Past, Reading, TriggerSpec, Verdict

log = logging.getLogger(__name__)
# A check whose status says nothing new rewrites it (lastChecked, signals) at most this often.
STATUS_REFRESH: Final = timedelta(seconds=60)
SIGNALS_SHOWN: Final = 20


@dataclass(frozen=True)
class Fired:
    verdict: Verdict
    capture: str = ""  # the DebugCapture made ("" when none)
    error: str = ""  # why creating it failed


def states(rt: runtime.Runtime) -> trigger_checks.TriggerStates:
    got = rt.triggers.get("states")
    if not isinstance(got, trigger_checks.TriggerStates):
        got = rt.triggers["states"] = trigger_checks.TriggerStates(rt.kube, rt.config)
    return got


async def check(rt: runtime.Runtime, state: trigger_checks.TriggerState, trigger: Mapping[str, Any]) -> float:
    """One check of ``trigger`` (its JSON as now); the seconds until the next one."""
    generation = trigger["metadata"].get("generation")
    try:
        spec = triggering.parse_trigger(trigger.get("spec") or {})
    except errors.ConfigError as exc:
        await write_status(rt, state, trigger, ready=False, reason="InvalidSpec", message=str(exc), stalled=True)
        return 10.0
    interval = spec.interval.total_seconds()
    try:
        if state.template_checked != generation:
            problem = await template_problem(rt, spec, str(trigger["metadata"]["namespace"]))
            if problem:
                await write_status(rt, state, trigger, ready=False, reason="InvalidSpec", message=problem,
                                   stalled=True)
                return interval
            state.template_checked = generation
        await _check_pods(rt, state, trigger, spec)
    except errors.KubeError as exc:
        log.warning("DebugTrigger %s/%s: %s", trigger["metadata"]["namespace"], trigger["metadata"]["name"], exc)
        await write_status(rt, state, trigger, ready=False, reason="APIError",
                           message=f"the last check failed talking to the API server: {errors.shorten(str(exc), 300)}")
    return interval


async def template_problem(rt: runtime.Runtime, spec: TriggerSpec, namespace: str) -> str:
    """Why the trigger's template cannot serve its firings in ``namespace`` ("" when it can): it
    does not exist, or does not serve the namespace (``spec.allowedNamespaces``,
    ``spec.namespaceSelector``). Command steps it would skip there are no reason to stall."""
    # A template without a heap profile still serves a memory firing: its capture adds one
    # (operator/firing_steps.py), so only a template that does not exist stalls the trigger.
    try:
        await runtime.in_thread(templating.expand_for_namespace, rt.kube, spec.request, namespace,
                                command_namespaces=rt.config.command_namespaces,
                                operator_patterns=rt.config.redaction_patterns)
    except errors.ConfigError as exc:
        return str(exc)
    return ""


async def _check_pods(rt: runtime.Runtime, state: trigger_checks.TriggerState, trigger: Mapping[str, Any],
                      spec: TriggerSpec) -> None:
    meta = trigger["metadata"]
    namespace, name = str(meta["namespace"]), str(meta["name"])
    if spec.suspend:
        await write_status(rt, state, trigger, ready=False, reason="Suspended",
                           message="spec.suspend is true: no signal is read, nothing fires")
        return
    if not (spec.when.reads_go() or spec.when.restarted):
        if not rt.config.alert_webhook_port:
            await write_status(rt, state, trigger, ready=False, reason="NoAlertReceiver", message=(
                f"fires on alert {spec.when.alert}, but this operator serves no Alertmanager receiver: set "
                "DEBUGCAP_OPERATOR_ALERT_WEBHOOK_PORT (the chart's alertWebhook.enabled)"))
        else:
            await write_status(rt, state, trigger, ready=True, reason="WaitingForAlerts",
                               message=f"fires when Alertmanager sends alert {spec.when.alert}")
        return
    try:
        selection = await runtime.in_thread(trigger_checks.find, rt.kube, namespace, spec)
    except errors.ConfigError as exc:
        await write_status(rt, state, trigger, ready=False, reason="InvalidSpec", message=str(exc), stalled=True)
        return
    except errors.TargetError as exc:
        state.forget_pods(set())
        await write_status(rt, state, trigger, ready=False, reason="NoPods", message=str(exc), pods=0)
        return
    pods = [selection.objects[p] for p in selection.pods]
    readings = await trigger_checks.read_all(states(rt), state, namespace, pods, spec)
    state.forget_pods({f"{r.pod}/{r.uid}" for r in readings}, uids={r.uid or r.pod for r in readings})
    found = crossings(state, spec, readings, created=parse_stamp(str(meta["creationTimestamp"])))
    failed = [r for r in readings if r.error]
    if failed:
        metrics.TRIGGER_READ_ERRORS.labels(namespace, name).inc(len(failed))
    if found:
        await fire(rt, state, trigger, spec, found, selection.objects)
    unread = len(failed) == len(readings)
    await write_status(rt, state, trigger, ready=not unread, reason="Unreadable" if unread else "Watching",
                       message=_check_message(spec, readings, failed, selection.note), pods=len(readings),
                       signals=_signals(readings), checked=datetime.now(UTC))


def crossings(state: trigger_checks.TriggerState, spec: TriggerSpec, readings: Sequence[Reading], *,
              created: datetime) -> list[Crossing]:
    found: list[Crossing] = []
    fresh = triggering.restart_fresh(spec.interval)
    for r in readings:
        key = f"{r.pod}/{r.uid}"
        if state.restarts.get(key, r.restarts) != r.restarts:
            state.growth.restart(key)  # a new process: its goroutines start over
        state.restarts[key] = r.restarts
        growth = state.growth.add(key, r.at, r.goroutines) if r.goroutines is not None else None
        found += triggering.crossings(spec.when, r, growth, created=created, fresh=fresh)
    return found


async def fire(rt: runtime.Runtime, state: trigger_checks.TriggerState, trigger: Mapping[str, Any],
               spec: TriggerSpec, found: Sequence[Crossing], pods: Mapping[str, Mapping[str, Any]]) -> list[Fired]:
    """Judge ``found`` against the trigger's firings and the limits, create the captures of those
    that fire, and record both (status, Events, metrics), under the trigger's lock."""
    now = max(c.at for c in found)
    async with state.lock:
        quiet = _known_quiet(state, spec, found, now)
        if quiet is not None:  # all within their cooldown, as the last look at the captures said
            await _suppressed(rt, state, trigger, spec, quiet, now)
            return [Fired(v) for v in quiet]
        meta = trigger["metadata"]
        namespace, name, uid = str(meta["namespace"]), str(meta["name"]), str(meta["uid"])
        fresh = await runtime.in_thread(trigger_firing.read_trigger, rt.kube, namespace, name)
        current = fresh.get("status") or {}
        owned = await runtime.in_thread(trigger_firing.owned_captures, rt.kube, namespace, name, uid)
        past = trigger_firing.past_firings(owned, current.get("firings") or [])
        out: list[Fired] = []
        try:
            async with states(rt).firing:  # counting the running ones and adding to them: one trigger at a time
                running = await runtime.in_thread(trigger_firing.running_triggered, rt.kube, rt.config.namespaces)
                verdicts = triggering.judge(found, past, now=now, cooldown=spec.cooldown,
                                            max_per_hour=spec.max_per_hour, running=running,
                                            cap=rt.config.triggered_captures)
                for v in verdicts:
                    out.append(await _create(rt, fresh, spec, v, pods) if v.fire else Fired(v))
        finally:
            # What was made is recorded even when a later create failed: the next check counts it.
            made = [f for f in out if f.capture]
            state.known = (now, past + [Past(f.verdict.crossing.pod, f.verdict.crossing.reason, now,
                                             f.verdict.crossing.observed) for f in made])
            if made:
                entries = [trigger_firing.firing_entry(f.verdict.crossing, f.capture) for f in made]
                await _record(rt, fresh, current, entries, now)
        for f in made:
            c = f.verdict.crossing
            metrics.TRIGGER_FIRINGS.labels(namespace, name, c.reason).inc()
            await _event(rt, fresh, True, "Fired", f"{c.reason} of pod {c.pod}: {c.value}; created DebugCapture "
                                                   f"{f.capture}")
        for f in out:
            if f.error:
                await _event(rt, fresh, False, "FiringFailed", f"{f.verdict.crossing.reason} of pod "
                                                               f"{f.verdict.crossing.pod}: {f.error}")
        await _suppressed(rt, state, fresh, spec, [f.verdict for f in out if not f.verdict.fire], now)
        return out


def _known_quiet(state: trigger_checks.TriggerState, spec: TriggerSpec, found: Sequence[Crossing],
                 now: datetime) -> list[Verdict] | None:
    """The verdicts of ``found`` when every one is held back by its cooldown or the hourly limit
    (or was handled) as the last firing's look at the captures said, if that look is under a minute
    old; None when any may fire. A signal high for an hour then costs the API server a look a minute,
    not three calls a check."""
    if state.known is None:
        return None
    looked, past = state.known
    if now - looked >= STATUS_REFRESH:
        return None
    verdicts = triggering.judge(found, past, now=now, cooldown=spec.cooldown, max_per_hour=spec.max_per_hour,
                                running={}, cap=10**6)
    return None if any(v.fire for v in verdicts) else verdicts


async def _create(rt: runtime.Runtime, trigger: Mapping[str, Any], spec: TriggerSpec, verdict: Verdict,
                  pods: Mapping[str, Mapping[str, Any]]) -> Fired:
    c = verdict.crossing
    pod_uid = str(((pods.get(c.pod) or {}).get("metadata") or {}).get("uid", ""))
    body = trigger_firing.capture_body(trigger, spec, c, pod_uid=pod_uid, container=spec.request.container)
    try:
        return Fired(verdict, await runtime.in_thread(trigger_firing.create, rt.kube, body))
    except errors.ConfigError as exc:
        return Fired(verdict, error=str(exc))
    except errors.KubeError as exc:
        if exc.status == 0 or exc.status >= 500 or exc.status == 429:
            raise  # temporary: the check says so, and the next one tries again
        return Fired(verdict, error=f"the API server refused DebugCapture {body['metadata']['name']}: {exc}")


async def _record(rt: runtime.Runtime, trigger: Mapping[str, Any], current: Mapping[str, Any],
                  entries: list[dict[str, Any]], now: datetime) -> None:
    history = trigger_firing.kept_firings(entries[::-1] + list(current.get("firings") or []), now)
    fields = {"firings": history, "lastFired": entries[-1]["time"],
              "firedTotal": int(current.get("firedTotal") or 0) + len(entries)}
    meta = trigger["metadata"]
    try:
        await runtime.in_thread(trigger_firing.write_status, rt.kube, str(meta["namespace"]), str(meta["name"]),
                                fields)
    except errors.KubeError as exc:  # the captures themselves are the record the limits count
        log.warning("could not record firings of DebugTrigger %s: %s", meta["name"], exc)


async def _suppressed(rt: runtime.Runtime, state: trigger_checks.TriggerState, trigger: Mapping[str, Any],
                      spec: TriggerSpec, verdicts: Sequence[Verdict], now: datetime) -> None:
    """Count what a limit held back (metrics at once, the status with the next write) and tell it
    by an Event once per pod, signal and limit per cooldown: a signal high for an hour is counted at
    every check but told once in a while."""
    meta = trigger["metadata"]
    keep = 2 * max(spec.cooldown, timedelta(minutes=1))
    for stale in [k for k, told in state.told.items() if now - told > keep]:
        del state.told[stale]
    for v in verdicts:
        if v.limit == "restart seen":
            continue
        state.suppressed += 1
        metrics.TRIGGER_SUPPRESSED.labels(meta["namespace"], meta["name"], v.crossing.reason, v.limit).inc()
        key = (v.crossing.pod, v.crossing.reason, v.limit)
        told = state.told.get(key)
        if told is not None and now - told < max(spec.cooldown, timedelta(minutes=1)):
            continue
        state.told[key] = now
        await _event(rt, trigger, False, "FiringSuppressed", f"{v.crossing.reason} of pod {v.crossing.pod} "
                                                             f"({v.crossing.value}) did not fire: {v.message}")


async def _event(rt: runtime.Runtime, trigger: Mapping[str, Any], ok: bool, reason: str, message: str) -> None:
    try:
        await runtime.in_thread(trigger_firing.post_event, rt.kube, trigger, ok, reason, message,
                                now=datetime.now(UTC))
    except errors.KubeError as exc:  # an Event is worth a log line, never a lost firing
        log.warning("could not post Event %s on DebugTrigger %s: %s", reason, trigger["metadata"]["name"], exc)


def _check_message(spec: TriggerSpec, readings: Sequence[Reading], failed: Sequence[Reading], note: str) -> str:
    parts = [f"watching {len(readings)} pod(s) every {int(spec.interval.total_seconds())}s"]
    if failed:
        parts.append(f"{len(failed)} could not be read: {failed[0].pod}: {failed[0].error}")
    if note:
        parts.append(note)
    return "; ".join(parts)


def _signals(readings: Sequence[Reading]) -> list[dict[str, Any]]:
    """The pods nearest their limits first (memory share, then goroutines), at most SIGNALS_SHOWN."""
    out = []
    for r in sorted(readings, key=lambda r: (r.memory_percent or 0.0, r.goroutines or 0), reverse=True):
        entry: dict[str, Any] = {"pod": r.pod, "restarts": r.restarts}
        if r.memory_percent is not None:
            entry["memoryPercentOfLimit"] = round(r.memory_percent, 1)
        if r.goroutines is not None:
            entry["goroutines"] = r.goroutines
        if r.error:
            entry["error"] = errors.shorten(r.error, 300)
        out.append(entry)
    return out[:SIGNALS_SHOWN]


async def write_status(rt: runtime.Runtime, state: trigger_checks.TriggerState, trigger: Mapping[str, Any], *,
                       ready: bool, reason: str, message: str, stalled: bool = False, pods: int | None = None,
                       signals: list[dict[str, Any]] | None = None, checked: datetime | None = None) -> None:
    """Write the check's status when it says something new, or STATUS_REFRESH after the last write."""
    meta = trigger["metadata"]
    generation = meta.get("generation")
    # Suppressions are not news: a signal held back for an hour would write at every check. They
    # go out with the next write, at most STATUS_REFRESH later.
    essentials = {"ready": ready, "reason": reason, "message": message, "pods": pods, "generation": generation}
    last = state.written.get("at")
    now = datetime.now(UTC)
    if state.written.get("essentials") == essentials and last is not None and now - last < STATUS_REFRESH:
        return
    gen = int(generation) if generation is not None else None
    previous = (trigger.get("status") or {}).get("conditions") or []
    fields: dict[str, Any] = {
        "message": message, "observedGeneration": gen,
        "conditions": conditions.merge(previous, [
            conditions.condition(conditions.READY, ready, reason, message, generation=gen, now=now),
            conditions.condition(conditions.STALLED, stalled, reason, message, generation=gen, now=now)]),
    }
    if pods is not None:
        fields["pods"] = pods
    if signals is not None:
        fields["signals"] = signals
    if checked is not None:
        fields["lastChecked"] = stamp(checked.replace(microsecond=0))
    async with state.lock:
        suppressed = state.suppressed
        try:  # a status that cannot be written now is written by a later check: never fatal
            if suppressed > state.suppressed_written:
                fresh = await runtime.in_thread(trigger_firing.read_trigger, rt.kube, str(meta["namespace"]),
                                                str(meta["name"]))
                base = int((fresh.get("status") or {}).get("suppressedTotal") or 0)
                fields["suppressedTotal"] = base + suppressed - state.suppressed_written
            await runtime.in_thread(trigger_firing.write_status, rt.kube, str(meta["namespace"]), str(meta["name"]),
                                    fields)
        except errors.NotFoundError:
            return  # deleted meanwhile
        except errors.KubeError as exc:
            log.warning("could not write the status of DebugTrigger %s/%s: %s", meta["namespace"], meta["name"], exc)
            return
        state.suppressed_written = suppressed
    state.written = {"essentials": essentials, "at": now}
