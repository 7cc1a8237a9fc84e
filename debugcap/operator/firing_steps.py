"""What a DebugTrigger's firing (``spec.firing``) changes in the steps of the capture it fired.

A **memory firing** (``memoryPercentOfLimit``) races the OOM kill: the heap profile must be taken
before the container dies, a second or so after the capture is created. Its capture keeps only
the steps that answer at once, the heap first:

- no step in a profile window and no step that lasts (a collector's ``expected_seconds``: a CPU
  profile or trace anywhere, a flight recorder's fallback trace, leak snapshots spaced in time).
  A 30 s CPU profile would hold the bundle, and so the stored heap, back by 30 s; and Go serves
  one CPU profile and one trace at a time, so a capture without them cannot clash with another
  capture of the pod, which is what lets it skip the pod's lock
  (:meth:`~debugcap.operator.pod_scheduling.PodScheduler.capture`, ``urgent``);
- no exec collector: each command is one more process in a container about to hit its memory
  limit, and opening its session (a ``runc exec``, or adding a debug container) takes 0.2 s to
  seconds at the API server and the kubelet the heap's request also goes through;
- the heap first, then the other memory and goroutine snapshots (``before_window`` collectors),
  then the rest, in template order: the steps start in this order, so the heap's request is the
  first one out, and where the quick requests share one port-forward it is not queued behind them.

A **restart firing** (``restarted``) is a post-mortem of the container that died: it needs the
previous container's logs (the ``logs`` collector reads them when the container has restarted)
and its exit reason (``pod-yaml``: ``lastState.terminated.reason``, e.g. OOMKilled). They are
added when the template lacks them; a ``logs`` step told not to read the previous container's
logs is told to.

Dropped steps stay in the template marked skipped (``templates.Step.skipped``): the engine records
them as skipped with the reason, so the manifest and ``status.pods[].collectors`` say what was left
out and why. Other firings change nothing. Pure functions, called by
:mod:`~debugcap.operator.captures` on the expanded template.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Final

from debugcap import templates
from debugcap.collectors import COLLECTORS, base
from debugcap.operator.requests import MEMORY_REASON, RESTART_REASON, Firing

NO_PROFILE: Final = "a memory trigger's capture takes no CPU profile or trace: the heap comes first, before the kill"
NO_WINDOW: Final = ("a memory trigger's capture has no profile window, nor the goroutine dump timed inside it: "
                    "the heap comes first, before the kill")
NO_WAITING: Final = ("a memory trigger's capture takes nothing that lasts ({seconds:g} s here): the heap comes first, "
                     "before the kill")
NO_COMMANDS: Final = ("a memory trigger's capture runs no commands in the container: each is one more process in a "
                      "container near its memory limit, and opening the session delays the heap")
HEAP: Final = "pprof-heap"
POST_MORTEM: Final = ("pod-yaml", "logs")  # the exit reason (lastState), the previous container's logs


def fired_template(template: templates.ExpandedTemplate, firing: Firing | None,
                   collectors: Mapping[str, type[base.Collector]] = COLLECTORS) -> templates.ExpandedTemplate:
    """``template`` as the capture fired by ``firing`` runs it (see the module docstring)."""
    if firing is None:
        return template
    if firing.reason == MEMORY_REASON:
        return before_the_kill(template, collectors)
    if firing.reason == RESTART_REASON:
        return post_mortem(template)
    return template


def before_the_kill(template: templates.ExpandedTemplate,
                    collectors: Mapping[str, type[base.Collector]] = COLLECTORS) -> templates.ExpandedTemplate:
    """The quick steps, heap first; the others skipped with the reason."""
    kept: list[templates.Step] = []
    dropped: list[templates.Step] = []
    for step in template.steps:
        why = why_dropped(step, collectors)
        if why:
            # No params or window left: a skipped step must neither size the deadline nor the window.
            dropped.append(templates.Step(collector=step.collector, params={}, skipped=why))
        else:
            kept.append(step)

    def turn(step: templates.Step) -> int:
        collector = collectors.get(step.collector)
        return 0 if step.collector == HEAP else 1 if collector is not None and collector.before_window else 2

    return dataclasses.replace(template, steps=(*sorted(kept, key=turn), *dropped))


def why_dropped(step: templates.Step, collectors: Mapping[str, type[base.Collector]] = COLLECTORS) -> str:
    """Why a memory firing's capture skips ``step``; "" when it keeps it."""
    if step.skipped:
        return step.skipped
    collector = collectors.get(step.collector)
    if collector is None:  # an unknown collector: the engine reports it, as for any capture
        return ""
    lasts = lasting_seconds(step, collector)
    if step.window is not None or (collector.windowed and lasts):
        return NO_PROFILE if lasts else NO_WINDOW
    if lasts:
        return NO_WAITING.format(seconds=lasts)
    if collector.kind is base.Kind.EXEC:
        return NO_COMMANDS
    return ""


def lasting_seconds(step: templates.Step, collector: type[base.Collector]) -> float:
    """How long the step lasts by its parameters (a profile's seconds, snapshots × interval); a
    parameter the collector cannot read counts as lasting, since the step cannot be shown quick."""
    try:
        return max(float(collector.expected_seconds(step.params)), 0.0)
    except (TypeError, ValueError):
        return 1.0


def takes_time(template: templates.ExpandedTemplate,
               collectors: Mapping[str, type[base.Collector]] = COLLECTORS) -> bool:
    """Whether a step the capture runs is in a window or lasts (a CPU profile, a trace...): such a
    capture must take the pod's lock, since Go serves one CPU profile and one trace at a time."""
    for step in template.steps:
        collector = collectors.get(step.collector)
        if not step.skipped and (step.window is not None or
                                 (collector is not None and lasting_seconds(step, collector) > 0)):
            return True
    return False


def post_mortem(template: templates.ExpandedTemplate) -> templates.ExpandedTemplate:
    """``template`` with the pod's YAML and its logs, the previous container's included."""
    have = {step.collector for step in template.steps}
    added = tuple(templates.Step(collector=name, params={}) for name in POST_MORTEM if name not in have)
    steps = tuple(dataclasses.replace(step, params={**step.params, "previous": True})
                  if step.collector == "logs" and step.params.get("previous") is False else step
                  for step in template.steps)
    return dataclasses.replace(template, steps=added + steps)
