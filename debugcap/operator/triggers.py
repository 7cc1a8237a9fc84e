"""kopf handlers of DebugTrigger: a daemon per trigger that checks it every ``checkIntervalSeconds``.

Registered through :mod:`debugcap.operator.handlers`. A check is
:func:`debugcap.operator.trigger_runs.check`; the Alertmanager receiver
(:mod:`~debugcap.operator.alert_webhook`) fires through :func:`fire_for_alerts`, under the same
per-trigger lock and limits. A daemon, not a timer: a trigger's interval is in its spec (kopf's
timer interval is fixed per handler), and an edit (a new generation) is checked at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Protocol, cast

import kopf

from debugcap import errors, resources
from debugcap.operator import runtime, trigger_checks, trigger_firing, trigger_runs, triggering
from debugcap.operator.triggering import Crossing

GROUP: Final = resources.GROUP
VERSION: Final = resources.VERSION
# How often the daemon looks whether its trigger was edited while it waits for the next check.
EDIT_POLL_SECONDS: Final = 1.0
FAILED_CHECK_RETRY_SECONDS: Final = 5.0
# The firing value of an alert: the CRD's spec.firing.value limit.
VALUE_CHARS: Final = 1024


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
    """What became of one alert: ``outcome`` is fired, suppressed, refused, or error (a temporary
    failure: the receiver answers so Alertmanager sends it again); ``message`` names the trigger,
    pod and field; ``captures`` are the DebugCaptures made."""

    alertname: str
    namespace: str
    pod: str
    outcome: str
    message: str
    captures: tuple[str, ...] = ()


# cancellation_backoff: on deletion the daemon is asked to stop and given a few seconds to end its
# check (a capture being created is then recorded) before it is cancelled. backoff: a check that
# fails in a way nobody foresaw is retried after seconds, not kopf's default minute.
@kopf.daemon(GROUP, VERSION, resources.TRIGGERS, initial_delay=0.5, cancellation_backoff=5.0,
             cancellation_timeout=5.0, backoff=5.0)
async def watch_trigger(body: kopf.Body, memo: kopf.Memo, stopped: kopf.DaemonStopped, logger: kopf.Logger,
                        **_: Any) -> None:
    rt = runtime.of(memo)
    state = trigger_runs.states(rt).of(str(body.metadata.uid))
    loop = asyncio.get_running_loop()
    while not stopped:
        generation = body.metadata.get("generation")
        started = loop.time()
        try:
            wait = await trigger_runs.check(rt, state, cast(Mapping[str, Any], dict(body)))
        except Exception:  # one bad check must not silence the trigger: log it, check again later
            logger.exception("the check of this DebugTrigger failed")
            wait = FAILED_CHECK_RETRY_SECONDS
        due = started + wait  # every interval from the check's start, however long the check took
        # ``body`` is kopf's live view of the trigger: an edit shows here, and is checked at once.
        while not stopped and loop.time() < due and body.metadata.get("generation") == generation:
            await asyncio.sleep(min(EDIT_POLL_SECONDS, max(due - loop.time(), 0.0)))


@kopf.on.delete(GROUP, VERSION, resources.TRIGGERS, optional=True)
async def forget_trigger(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Close the deleted trigger's connections. Its captures go with it: they are owned by it, and
    the garbage collector deletes them (``kubectl delete --cascade=orphan`` keeps them)."""
    rt = memo.get("runtime")
    if isinstance(rt, runtime.Runtime):
        trigger_runs.states(rt).drop(str(body.metadata.uid))


async def fire_for_alerts(rt: runtime.Runtime, alerts: Sequence[AlertRef]) -> list[AlertOutcome]:
    """Fire the DebugTriggers that watch each alert, for the pod it names. Each namespace's
    triggers are listed once per request, and each trigger's pods found once."""
    listed: dict[str, list[dict[str, Any]] | errors.KubeError] = {}
    found: dict[str, Any] = {}
    out = []
    for ref in alerts:
        try:
            out.append(await _fire_for_alert(rt, ref, listed, found))
        except errors.KubeError as exc:
            out.append(_outcome(ref, "error" if _temporary(exc) else "refused", f"the API server: {exc}"))
    return out


def _temporary(exc: errors.KubeError) -> bool:
    return exc.status == 0 or exc.status >= 500 or exc.status == 429


def _outcome(ref: AlertRef, outcome: str, message: str, captures: tuple[str, ...] = ()) -> AlertOutcome:
    return AlertOutcome(ref.alertname, ref.namespace, ref.pod, outcome, message, captures)


async def _fire_for_alert(rt: runtime.Runtime, ref: AlertRef, listed: dict[str, Any], found: dict[str, Any],
                          ) -> AlertOutcome:
    if rt.config.namespaces and ref.namespace not in rt.config.namespaces:
        return _outcome(ref, "refused", f'namespace "{ref.namespace}" is not one this operator serves '
                                        f"({', '.join(rt.config.namespaces)})")
    if ref.namespace not in listed:
        listed[ref.namespace] = await runtime.in_thread(trigger_firing.list_triggers, rt.kube, ref.namespace)
    watching = [t for t in listed[ref.namespace]
                if str((((t.get("spec") or {}).get("when") or {}).get("alert") or {}).get("name") or "").strip()
                == ref.alertname]
    if not watching:
        return _outcome(ref, "refused", f'no DebugTrigger in namespace "{ref.namespace}" has spec.when.alert.name '
                                        f'"{ref.alertname}"')
    outcomes = []
    for trigger in watching:
        try:
            outcomes.append(await _fire_one(rt, trigger, ref, found))
        except errors.KubeError as exc:
            name = trigger["metadata"]["name"]
            outcomes.append(_outcome(ref, "error" if _temporary(exc) else "refused",
                                     f"DebugTrigger {name}: the API server: {exc}"))
    order = ("error", "fired", "suppressed", "refused")  # a temporary failure first: Alertmanager retries
    best = min(outcomes, key=lambda o: order.index(o.outcome))
    return _outcome(ref, best.outcome, "; ".join(o.message for o in outcomes),
                    tuple(c for o in outcomes for c in o.captures))


async def _fire_one(rt: runtime.Runtime, trigger: Mapping[str, Any], ref: AlertRef, found: dict[str, Any],
                    ) -> AlertOutcome:
    name, uid = str(trigger["metadata"]["name"]), str(trigger["metadata"]["uid"])
    try:
        spec = triggering.parse_trigger(trigger.get("spec") or {})
    except errors.ConfigError as exc:
        return _outcome(ref, "refused", f"DebugTrigger {name}: {exc}")
    if spec.suspend:
        return _outcome(ref, "refused", f"DebugTrigger {name} is suspended")
    if uid not in found:
        try:  # every running pod of the target, however many: an alert names one, maxPods or not
            found[uid] = await runtime.in_thread(trigger_checks.find, rt.kube, ref.namespace, spec, every=True)
        except (errors.ConfigError, errors.TargetError) as exc:
            found[uid] = exc
    selection = found[uid]
    if isinstance(selection, errors.DebugcapError):
        return _outcome(ref, "refused", f"DebugTrigger {name}: {selection}")
    if ref.pod not in selection.objects:
        return _outcome(ref, "refused", f'pod "{ref.namespace}/{ref.pod}" is not a running pod of DebugTrigger '
                                        f"{name}'s spec.target ({spec.request.describe_target()})")
    value = errors.shorten(f"alert {ref.alertname} firing since {ref.starts_at or 'now'}", VALUE_CHARS)
    crossing = Crossing(ref.pod, "alert", 1.0, None, value, datetime.now(UTC).replace(microsecond=0))
    state = trigger_runs.states(rt).of(uid)
    (fired,) = await trigger_runs.fire(rt, state, trigger, spec, [crossing], selection.objects)
    if fired.capture:
        return _outcome(ref, "fired", f"DebugTrigger {name} created DebugCapture {fired.capture}", (fired.capture,))
    if fired.error:
        return _outcome(ref, "refused", f"DebugTrigger {name}: {fired.error}")
    return _outcome(ref, "suppressed", f"DebugTrigger {name}: {fired.verdict.message}")
