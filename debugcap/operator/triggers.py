"""kopf handlers of DebugTrigger: a check every ``checkIntervalSeconds`` that fires DebugCaptures.

Registered through :mod:`debugcap.operator.handlers`. What crosses and what fires is decided by
the pure functions of :mod:`~debugcap.operator.triggering`; the pods are read by
:mod:`~debugcap.operator.trigger_checks` and the captures made by
:mod:`~debugcap.operator.trigger_firing`. The Alertmanager receiver
(:mod:`~debugcap.operator.alert_webhook`) fires through :func:`fire_for_alerts`, under the same
per-trigger lock and limits as the check.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Protocol, cast

import kopf

from debugcap import errors, resources
from debugcap.operator import conditions, metrics, runtime, templating, trigger_checks, trigger_firing, triggering
from debugcap.operator.reporting import parse_stamp, stamp
from debugcap.operator.triggering import Crossing, Reading, TriggerSpec, Verdict

GROUP: Final = resources.GROUP
VERSION: Final = resources.VERSION
# The timer ticks every second and each trigger checks when its own checkIntervalSeconds is due:
# kopf's timer interval is fixed per handler, the trigger's is in its spec.
TICK_SECONDS: Final = 1.0
# A check whose status says nothing new rewrites it (lastChecked, signals) at most this often:
# one write per trigger per minute rather than per check.
STATUS_REFRESH: Final = timedelta(seconds=60)
SIGNALS_SHOWN: Final = 20


class AlertRef(Protocol):
    """One firing alert, as :mod:`~debugcap.operator.alerts` parses it."""

    @property
    def alertname(self) -> str: ...
    @property
    def namespace(self) -> str: ...
    @property
    def pod(self) -> str: ...
    @property
    def starts_at(self) -> str: ...


@dataclass(frozen=True)
class AlertOutcome:
    """What became of one alert: ``outcome`` is fired, suppressed or refused; ``message`` says
    why, naming the trigger, pod and field; ``captures`` are the DebugCaptures made."""

    alertname: str
    namespace: str
    pod: str
    outcome: str
    message: str
    captures: tuple[str, ...] = ()


def _states(rt: runtime.Runtime) -> trigger_checks.TriggerStates:
    states = rt.triggers.get("states")
    if not isinstance(states, trigger_checks.TriggerStates):
        states = rt.triggers["states"] = trigger_checks.TriggerStates(rt.kube, rt.config)
    return states


@kopf.timer(GROUP, VERSION, resources.TRIGGERS, interval=TICK_SECONDS, initial_delay=0.5)
async def check_trigger(body: kopf.Body, spec: kopf.Spec, status: kopf.Status, memo: kopf.Memo,
                        logger: kopf.Logger, **_: Any) -> None:
    rt = runtime.of(memo)
    states = _states(rt)
    state = states.of(str(body.metadata.uid))
    loop = asyncio.get_running_loop()
    if loop.time() < state.next_check:
        return
    state.next_check = loop.time() + 10.0  # until the spec says otherwise
    raw = cast(dict[str, Any], dict(body))
    generation = body.metadata.get("generation")
    try:
        parsed = triggering.parse_trigger(spec)
    except errors.ConfigError as exc:
        await _status(rt, state, raw, generation, ready=False, reason="InvalidSpec", message=str(exc), stalled=True)
        return
    state.next_check = loop.time() + parsed.interval.total_seconds()
    if state.template_checked != generation:
        try:  # once per generation: the template is what a firing's capture would expand
            await runtime.in_thread(templating.expand_template, rt.kube, parsed.request)
        except errors.ConfigError as exc:
            await _status(rt, state, raw, generation, ready=False, reason="InvalidSpec", message=str(exc),
                          stalled=True)
            return
        state.template_checked = generation
    if parsed.suspend:
        await _status(rt, state, raw, generation, ready=False, reason="Suspended",
                      message="spec.suspend is true: no signal is read, nothing fires")
        return
    if not (parsed.when.reads_go() or parsed.when.restarted):
        await _status(rt, state, raw, generation, ready=True, reason="WaitingForAlerts",
                      message=f"fires when Alertmanager sends alert {parsed.when.alert}")
        return
    namespace = str(body.metadata.namespace)
    try:
        selection = await runtime.in_thread(trigger_checks.find, rt.kube, namespace, parsed)
    except errors.ConfigError as exc:
        await _status(rt, state, raw, generation, ready=False, reason="InvalidSpec", message=str(exc), stalled=True)
        return
    except errors.DebugcapError as exc:
        await _status(rt, state, raw, generation, ready=False, reason="NoPods", message=str(exc), pods=0)
        return
    at = datetime.now(UTC)
    pods = [selection.objects[p] for p in selection.pods]
    readings = await trigger_checks.read_all(states, state, namespace, pods, parsed, at)
    found = _crossings(state, parsed, readings, created=parse_stamp(str(body.metadata.creation_timestamp)))
    state.reader.keep_only({str(p["metadata"].get("uid") or p["metadata"]["name"]) for p in pods})
    state.growth.keep_only(selection.pods)
    failed = [r for r in readings if r.error]
    if failed:
        metrics.TRIGGER_READ_ERRORS.labels(namespace, body.metadata.name).inc(len(failed))
        logger.info("could not read %d of %d pods: %s", len(failed), len(readings), failed[0].error)
    if found:
        await fire(rt, state, raw, parsed, found, selection.objects)
    message = _check_message(parsed, readings, failed, selection.note)
    await _status(rt, state, raw, generation, ready=True, reason="Watching", message=message,
                  pods=len(readings), signals=_signals(readings), checked=at)


def _crossings(state: trigger_checks.TriggerState, spec: TriggerSpec, readings: Sequence[Reading], *,
               created: datetime) -> list[Crossing]:
    found: list[Crossing] = []
    for r in readings:
        if state.restarts.get(r.pod, r.restarts) != r.restarts:
            state.growth.restart(r.pod)  # a new process: its goroutines start over
        state.restarts[r.pod] = r.restarts
        growth = state.growth.add(r.pod, r.at, r.goroutines) if r.goroutines is not None else None
        found += triggering.crossings(spec.when, r, growth, created=created)
    return found


async def fire(rt: runtime.Runtime, state: trigger_checks.TriggerState, trigger: Mapping[str, Any],
               spec: TriggerSpec, found: Sequence[Crossing],
               pods: Mapping[str, Mapping[str, Any]]) -> list[tuple[Verdict, str]]:
    """Judge ``found`` against the trigger's past firings and the limits, create the captures of
    those that fire, and record both; under the trigger's lock. Each verdict with its capture ("" if none)."""
    meta = trigger["metadata"]
    namespace, name, uid = str(meta["namespace"]), str(meta["name"]), str(meta["uid"])
    kube = rt.kube
    async with state.lock, _states(rt).firing:
        fresh = await runtime.in_thread(trigger_firing.read_trigger, kube, namespace, name)
        current = fresh.get("status") or {}
        owned = await runtime.in_thread(trigger_firing.owned_captures, kube, namespace, name, uid)
        past = trigger_firing.past_firings(owned, current.get("firings") or [])
        running = await runtime.in_thread(trigger_firing.running_triggered, kube, rt.config.namespaces)
        now = max(c.at for c in found)
        verdicts = triggering.judge(found, past, now=now, cooldown=spec.cooldown, max_per_hour=spec.max_per_hour,
                                    running=running, cap=rt.config.triggered_captures)
        out: list[tuple[Verdict, str]] = []
        entries: list[dict[str, Any]] = []
        suppressed = 0
        for v in verdicts:
            c = v.crossing
            if v.fire:
                pod_uid = str(((pods.get(c.pod) or {}).get("metadata") or {}).get("uid", ""))
                body = trigger_firing.capture_body(trigger, spec, c, pod_uid=pod_uid, container=spec.request.container)
                made = await runtime.in_thread(trigger_firing.create, kube, body)
                entries.append(trigger_firing.firing_entry(c, made))
                metrics.TRIGGER_FIRINGS.labels(namespace, name, c.reason).inc()
                await _event(rt, fresh, True, "Fired",
                             f"{c.reason} of pod {c.pod}: {c.value}; created DebugCapture {made}")
                out.append((v, made))
                continue
            out.append((v, ""))
            if v.limit == "restart seen":
                continue
            suppressed += 1
            metrics.TRIGGER_SUPPRESSED.labels(namespace, name, c.reason, v.limit).inc()
            await _tell_suppressed(rt, state, fresh, spec, v, now)
        if entries or suppressed:
            fields: dict[str, Any] = {"suppressedTotal": int(current.get("suppressedTotal") or 0) + suppressed}
            if entries:
                history = entries[::-1] + list(current.get("firings") or [])
                fields.update(firings=history[:trigger_firing.FIRINGS_KEPT],
                              lastFired=entries[-1]["time"],
                              firedTotal=int(current.get("firedTotal") or 0) + len(entries))
            await runtime.in_thread(trigger_firing.write_status, kube, namespace, name, fields)
        return out


async def _event(rt: runtime.Runtime, trigger: Mapping[str, Any], ok: bool, reason: str, message: str) -> None:
    try:
        await runtime.in_thread(trigger_firing.post_event, rt.kube, trigger, ok, reason, message,
                                now=datetime.now(UTC))
    except errors.KubeError as exc:  # an Event is worth a log line, never a lost firing
        logging.getLogger(__name__).warning("could not post Event %s on DebugTrigger %s: %s", reason,
                                            trigger["metadata"]["name"], exc)


async def _tell_suppressed(rt: runtime.Runtime, state: trigger_checks.TriggerState, trigger: Mapping[str, Any],
                           spec: TriggerSpec, verdict: Verdict, now: datetime) -> None:
    """One Event per pod, signal and limit per cooldown: a signal that stays high for an hour is
    counted at every check (the metric) but told once in a while."""
    key = (verdict.crossing.pod, verdict.crossing.reason, verdict.limit)
    told = state.told.get(key)
    if told is not None and now - told < max(spec.cooldown, timedelta(minutes=1)):
        return
    state.told[key] = now
    await _event(rt, trigger, False, "FiringSuppressed",
                 f"{verdict.crossing.reason} of pod {verdict.crossing.pod} ({verdict.crossing.value}) did not fire: "
                 f"{verdict.message}")


def _check_message(spec: TriggerSpec, readings: Sequence[Reading], failed: Sequence[Reading], note: str) -> str:
    every = int(spec.interval.total_seconds())
    parts = [f"watching {len(readings)} pod(s) every {every}s"]
    if failed:
        parts.append(f"{len(failed)} could not be read: {failed[0].pod}: {failed[0].error}")
    if note:
        parts.append(note)
    return "; ".join(parts)


def _signals(readings: Sequence[Reading]) -> list[dict[str, Any]]:
    """The pods nearest their limits first (memory share, then goroutines), at most SIGNALS_SHOWN."""
    def rank(r: Reading) -> tuple[float, int]:
        return (r.memory_percent or 0.0, r.goroutines or 0)

    out = []
    for r in sorted(readings, key=rank, reverse=True)[:SIGNALS_SHOWN]:
        entry: dict[str, Any] = {"pod": r.pod, "restarts": r.restarts}
        if r.memory_percent is not None:
            entry["memoryPercentOfLimit"] = round(r.memory_percent, 1)
        if r.goroutines is not None:
            entry["goroutines"] = r.goroutines
        if r.error:
            entry["error"] = errors.shorten(r.error, 300)
        out.append(entry)
    return out


async def _status(rt: runtime.Runtime, state: trigger_checks.TriggerState, trigger: Mapping[str, Any],
                  generation: Any, *, ready: bool, reason: str, message: str, stalled: bool = False,
                  pods: int | None = None, signals: list[dict[str, Any]] | None = None,
                  checked: datetime | None = None) -> None:
    """Write the check's status when it says something new, or STATUS_REFRESH after the last write."""
    essentials = {"ready": ready, "reason": reason, "message": message, "pods": pods, "generation": generation}
    last = state.written.get("at")
    now = datetime.now(UTC)
    if state.written.get("essentials") == essentials and last is not None and now - last < STATUS_REFRESH:
        return
    meta = trigger["metadata"]
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
    try:
        async with state.lock:
            await runtime.in_thread(trigger_firing.write_status, rt.kube, str(meta["namespace"]), str(meta["name"]),
                                    fields)
    except errors.NotFoundError:
        return  # deleted meanwhile
    state.written = {"essentials": essentials, "at": now}


@kopf.on.delete(GROUP, VERSION, resources.TRIGGERS, optional=True)
async def forget_trigger(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Close the deleted trigger's connections. Its captures go with it: they are owned by it, and
    the garbage collector deletes them (``kubectl delete --cascade=orphan`` keeps them)."""
    rt = memo.get("runtime")
    if isinstance(rt, runtime.Runtime):
        _states(rt).drop(str(body.metadata.uid))


@kopf.on.cleanup()
def close_triggers(memo: kopf.Memo, **_: Any) -> None:
    rt = memo.get("runtime")
    if isinstance(rt, runtime.Runtime) and isinstance(rt.triggers.get("states"), trigger_checks.TriggerStates):
        rt.triggers.pop("states").close()


async def fire_for_alerts(rt: runtime.Runtime, alerts: Sequence[AlertRef]) -> list[AlertOutcome]:
    """Fire the DebugTriggers that watch each alert, for the pod it names (see the module doc)."""
    return [await _fire_for_alert(rt, ref) for ref in alerts]


async def _fire_for_alert(rt: runtime.Runtime, ref: AlertRef) -> AlertOutcome:
    def refused(message: str) -> AlertOutcome:
        return AlertOutcome(ref.alertname, ref.namespace, ref.pod, "refused", message)

    if rt.config.namespaces and ref.namespace not in rt.config.namespaces:
        return refused(f'namespace "{ref.namespace}" is not one this operator serves '
                       f"({', '.join(rt.config.namespaces)})")
    try:
        listed = await runtime.in_thread(trigger_firing.list_triggers, rt.kube, ref.namespace)
    except errors.KubeError as exc:
        return refused(f'cannot list the DebugTriggers of namespace "{ref.namespace}": {exc}')
    watching = [t for t in listed
                if (((t.get("spec") or {}).get("when") or {}).get("alert") or {}).get("name") == ref.alertname]
    if not watching:
        return refused(f'no DebugTrigger in namespace "{ref.namespace}" has spec.when.alert.name "{ref.alertname}"')
    outcomes = [await _fire_one(rt, trigger, ref) for trigger in watching]
    fired = [o for o in outcomes if o.outcome == "fired"]
    best = fired or [o for o in outcomes if o.outcome == "suppressed"] or outcomes
    return AlertOutcome(ref.alertname, ref.namespace, ref.pod, best[0].outcome,
                        "; ".join(o.message for o in outcomes), tuple(c for o in fired for c in o.captures))


async def _fire_one(rt: runtime.Runtime, trigger: Mapping[str, Any], ref: AlertRef) -> AlertOutcome:
    name = str(trigger["metadata"]["name"])
    try:
        spec = triggering.parse_trigger(trigger.get("spec") or {})
    except errors.ConfigError as exc:
        return AlertOutcome(ref.alertname, ref.namespace, ref.pod, "refused", f"DebugTrigger {name}: {exc}")
    if spec.suspend:
        return AlertOutcome(ref.alertname, ref.namespace, ref.pod, "refused", f"DebugTrigger {name} is suspended")
    try:
        selection = await runtime.in_thread(trigger_checks.find, rt.kube, ref.namespace, spec)
    except errors.DebugcapError as exc:
        return AlertOutcome(ref.alertname, ref.namespace, ref.pod, "refused", f"DebugTrigger {name}: {exc}")
    if ref.pod not in selection.objects:
        return AlertOutcome(ref.alertname, ref.namespace, ref.pod, "refused",
                            f'pod "{ref.namespace}/{ref.pod}" is not a running pod of DebugTrigger {name}\'s '
                            f"spec.target ({spec.request.describe_target()})")
    crossing = Crossing(ref.pod, "alert", 1.0, None, f"alert {ref.alertname} firing since {ref.starts_at or 'now'}",
                        datetime.now(UTC).replace(microsecond=0))
    state = _states(rt).of(str(trigger["metadata"]["uid"]))
    verdicts = await fire(rt, state, trigger, spec, [crossing], selection.objects)
    verdict, capture = verdicts[0]
    if verdict.fire:
        return AlertOutcome(ref.alertname, ref.namespace, ref.pod, "fired",
                            f"DebugTrigger {name} created DebugCapture {capture}", (capture,))
    return AlertOutcome(ref.alertname, ref.namespace, ref.pod, "suppressed", f"DebugTrigger {name}: {verdict.message}")
