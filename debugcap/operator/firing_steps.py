"""What a DebugTrigger's firing (``spec.firing``) changes in the steps of the capture it fired.

A **memory firing** (``memoryPercentOfLimit``) races the OOM kill: the heap profile must be taken
before the container dies, a second or so after the capture is created. Its capture keeps only
the steps that answer at once, the heap first:

- no CPU profile or trace, whatever their parameters (by collector: Go's handler turns
  ``seconds=0`` or ``-1`` into 30 s, so a step's own ``seconds`` proves nothing), no step in a
  profile window, and no step that lasts (a collector's ``expected_seconds``: a flight
  recorder's fallback trace, leak snapshots spaced in time). A 30 s CPU profile would hold the
  bundle, and so the stored heap, back by 30 s; and Go serves one CPU profile and one trace at a
  time, so a capture without them cannot clash with another capture of the pod, which is what
  lets it skip the pod's lock (:meth:`~debugcap.operator.pod_scheduling.PodScheduler.capture`,
  ``urgent``);
- no step that forces a garbage collection: the goroutineleak profile runs a GC cycle per
  request, leak snapshots ask for the heap with ``gc=1``; a full GC of a heap near its limit takes
  time the kill may not leave. A heap step's ``gc: true`` is turned off rather than the heap
  dropped;
- no full goroutine dump (``debug2``: every goroutine's stack, seconds with many goroutines): it
  is left out of a goroutine step's formats (``debug1``'s counts by stack stay);
- no exec collector: each command is one more process in a container about to hit its memory
  limit, and opening its session (a ``runc exec``, or adding a debug container) takes 0.2 s to
  seconds at the API server and the kubelet the heap's request also goes through;
- always a heap profile: a template without one (``network-trace``, ``disk-usage``) gets a
  ``pprof-heap`` step, since the heap is what a memory firing is for (:func:`keeps_heap` says
  whether the template has its own);
- the heap first, then the other memory and goroutine snapshots (``before_window`` collectors),
  then the rest, in template order: the steps start in this order, so the heap's request is the
  first one out, and where the quick requests share one port-forward it is not queued behind them.

A **restart firing** (``restarted``) is a post-mortem of the container that died: it needs the
previous container's logs (the ``logs`` collector reads them when the container has restarted)
and its exit reason (``pod-yaml``: ``lastState.terminated.reason``, e.g. OOMKilled). They are
added when the template lacks them; a ``logs`` step told not to read the previous container's
logs is told to. When the container is not running at capture time (waiting in CrashLoopBackOff),
:func:`not_running` skips the steps that need it (Go endpoints, commands) and keeps the rest.

Dropped steps stay in the template marked skipped (``templates.Step.skipped``): the engine records
them as skipped with the reason, so the manifest and ``status.pods[].collectors`` say what was left
out and why. A step changed or added is said in :attr:`Fired.changes`, which the capture's Running
message repeats. Other firings change nothing. Pure functions, called by
:mod:`~debugcap.operator.captures` on the expanded template.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from debugcap import templates
from debugcap.collectors import COLLECTORS, base
from debugcap.errors import ConfigError
from debugcap.operator.requests import MEMORY_REASON, RESTART_REASON, Firing

Registry = Mapping[str, type[base.Collector]]

NO_PROFILE: Final = "a memory trigger's capture takes no CPU profile or trace: the heap comes first, before the kill"
NO_WINDOW: Final = ("a memory trigger's capture has no profile window, nor the goroutine dump timed inside it: "
                    "the heap comes first, before the kill")
NO_WAITING: Final = ("a memory trigger's capture takes nothing that lasts ({seconds:g} s here): the heap comes first, "
                     "before the kill")
NO_COMMANDS: Final = ("a memory trigger's capture runs no commands in the container: each is one more process in a "
                      "container near its memory limit, and opening the session delays the heap")
NO_GC: Final = ("a memory trigger's capture forces no garbage collection (this step runs one): a full GC of a heap "
                "near its limit takes time the kill may not leave")
HEAP_WITHOUT_GC: Final = ("pprof-heap without gc: a memory trigger's capture forces no garbage collection, which "
                          "takes time the kill may not leave")
GOROUTINES_WITHOUT_DEBUG2: Final = ("pprof-goroutine without debug2: every goroutine's stack takes seconds with many "
                                    "goroutines, and the heap comes first")
HEAP_ADDED: Final = ('pprof-heap added: template "{template}" takes no heap profile, which is what a memory '
                     "trigger's capture is for")
NOT_RUNNING: Final = ("the container is not running ({state}): a post-mortem of it has the previous container's logs, "
                      "the pod's YAML and events, and no Go endpoint or shell to ask")
HEAP: Final = "pprof-heap"
GOROUTINES: Final = "pprof-goroutine"
# Collectors that force a GC: goroutineleak runs a cycle per request, leak snapshots ask for gc=1.
FORCE_GC: Final = ("pprof-goroutineleak", "go-leak-snapshots")
POST_MORTEM: Final = ("pod-yaml", "logs")  # the exit reason (lastState), the previous container's logs


@dataclass(frozen=True)
class Fired:
    """A template as a firing's capture runs it, and what was changed or added in it, with why
    (skipped steps say so in their own records)."""

    template: templates.ExpandedTemplate
    changes: tuple[str, ...] = ()


def fired_template(template: templates.ExpandedTemplate, firing: Firing | None,
                   collectors: Registry = COLLECTORS) -> templates.ExpandedTemplate:
    """``template`` as the capture fired by ``firing`` runs it (see the module docstring)."""
    return fire(template, firing, collectors).template


def fire(template: templates.ExpandedTemplate, firing: Firing | None, collectors: Registry = COLLECTORS) -> Fired:
    """:func:`fired_template`, with the changes made to the template's steps."""
    if firing is None:
        return Fired(template)
    if firing.reason == MEMORY_REASON:
        return before_the_kill(template, collectors)
    if firing.reason == RESTART_REASON:
        return Fired(post_mortem(template))
    return Fired(template)


def before_the_kill(template: templates.ExpandedTemplate, collectors: Registry = COLLECTORS) -> Fired:
    """The quick steps, heap first; the others skipped with the reason."""
    kept: list[templates.Step] = []
    dropped: list[templates.Step] = []
    changes: list[str] = []
    for step in template.steps:
        why = why_dropped(step, collectors)
        if why:
            # No params or window left: a skipped step must neither size the deadline nor the window.
            dropped.append(templates.Step(collector=step.collector, params={}, skipped=why))
            continue
        quick, change = made_quick(step)
        kept.append(quick)
        if change:
            changes.append(change)
    if not any(step.collector == HEAP for step in kept):
        # gc off, as go-heap asks: the same reason as for a step that asks for it.
        kept.append(templates.Step(collector=HEAP, params={"gc": False}))
        changes.append(HEAP_ADDED.format(template=template.name))

    def turn(step: templates.Step) -> int:
        collector = collectors.get(step.collector)
        return 0 if step.collector == HEAP else 1 if collector is not None and collector.before_window else 2

    steps = (*sorted(kept, key=turn), *dropped)
    return Fired(dataclasses.replace(template, steps=steps), tuple(dict.fromkeys(changes)))  # each said once


def why_dropped(step: templates.Step, collectors: Registry = COLLECTORS) -> str:
    """Why a memory firing's capture skips ``step``; "" when it keeps it (perhaps changed, see
    :func:`made_quick`)."""
    if step.skipped:
        return step.skipped
    collector = collectors.get(step.collector)
    if collector is None:  # an unknown collector: the engine reports it, as for any capture
        return ""
    lasts = lasting_seconds(step, collector)
    if opens_profile(collector):
        return NO_PROFILE
    if step.window is not None:
        return NO_PROFILE if lasts else NO_WINDOW
    if lasts:
        return NO_WAITING.format(seconds=lasts)
    if step.collector in FORCE_GC:
        return NO_GC
    if collector.kind is base.Kind.EXEC:
        return NO_COMMANDS
    return ""


def opens_profile(collector: type[base.Collector]) -> bool:
    """A collector that runs a CPU profile or trace for a while, whatever its step's parameters:
    windowed and not a snapshot (the goroutine dump is windowed too, and a snapshot)."""
    return collector.windowed and not collector.before_window


def made_quick(step: templates.Step) -> tuple[templates.Step, str]:
    """``step`` without what would slow a kept step down (a forced GC, the full goroutine dump),
    and what was changed ("" when nothing)."""
    if step.collector == HEAP and step.params.get("gc"):
        return dataclasses.replace(step, params={**step.params, "gc": False}), HEAP_WITHOUT_GC
    if step.collector == GOROUTINES:
        # The collector's own default when the step names none: protobuf and debug2.
        formats = step.params.get("formats", ["proto", "debug2"])
        if isinstance(formats, list) and "debug2" in formats:
            quick = [f for f in formats if f != "debug2"] or ["proto", "debug1"]
            return dataclasses.replace(step, params={**step.params, "formats": quick}), GOROUTINES_WITHOUT_DEBUG2
    return step, ""


def lasting_seconds(step: templates.Step, collector: type[base.Collector]) -> float:
    """How long the step lasts by its parameters (a profile's seconds, snapshots × interval); a
    parameter the collector cannot read counts as lasting, since the step cannot be shown quick."""
    try:
        return max(float(collector.expected_seconds(step.params)), 0.0)
    except (TypeError, ValueError):
        return 1.0


def takes_time(template: templates.ExpandedTemplate, collectors: Registry = COLLECTORS) -> bool:
    """Whether a step the capture runs is in a window, lasts, or is a CPU profile or trace: such a
    capture must take the pod's lock, since Go serves one CPU profile and one trace at a time."""
    for step in template.steps:
        collector = collectors.get(step.collector)
        if step.skipped:
            continue
        if step.window is not None or (collector is not None and (
                opens_profile(collector) or lasting_seconds(step, collector) > 0)):
            return True
    return False


def keeps_heap(template: templates.ExpandedTemplate, collectors: Registry = COLLECTORS) -> bool:
    """Whether a memory firing's capture of ``template`` takes a heap profile of the template's
    own (a template without one gets a ``pprof-heap`` step added, see :func:`before_the_kill`)."""
    return any(step.collector == HEAP and not why_dropped(step, collectors) for step in template.steps)


def check_memory_template(template: templates.ExpandedTemplate, *, field: str = "spec.template",
                          collectors: Registry = COLLECTORS) -> None:
    """Raise :class:`ConfigError` naming ``field`` when a memory trigger's capture of ``template``
    would take no heap profile of the template's own (:func:`keeps_heap`)."""
    if not keeps_heap(template, collectors):
        raise ConfigError(f'{field}: template "{template.name}" takes no heap profile (a pprof-heap step outside a '
                          "profile window) for a memory trigger to catch before the kill; use go-heap, or a template "
                          "with a pprof-heap step")


def post_mortem(template: templates.ExpandedTemplate) -> templates.ExpandedTemplate:
    """``template`` with the pod's YAML and its logs, the previous container's included."""
    have = {step.collector for step in template.steps}
    added = tuple(templates.Step(collector=name, params={}) for name in POST_MORTEM if name not in have)
    steps = tuple(dataclasses.replace(step, params={**step.params, "previous": True})
                  if step.collector == "logs" and step.params.get("previous") is False else step
                  for step in template.steps)
    return dataclasses.replace(template, steps=added + steps)


def not_running(template: templates.ExpandedTemplate, state: str,
                collectors: Registry = COLLECTORS) -> templates.ExpandedTemplate:
    """``template`` for a container that is not running (``state``, e.g. "waiting:
    CrashLoopBackOff"): its Go and exec steps skipped with the reason, the Kubernetes steps kept."""
    why = NOT_RUNNING.format(state=state)

    def cut(step: templates.Step) -> templates.Step:
        collector = collectors.get(step.collector)
        if step.skipped or collector is None or collector.kind is base.Kind.KUBERNETES:
            return step
        return templates.Step(collector=step.collector, params={}, skipped=why)

    return dataclasses.replace(template, steps=tuple(cut(step) for step in template.steps))
