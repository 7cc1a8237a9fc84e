"""A DebugCapture's ``status.conditions``: kstatus's Ready, Reconciling and Stalled, from its phase.

:mod:`~debugcap.operator.captures` writes ``phase`` only through :func:`status_fields`, so the phase
and the conditions cannot disagree: ``kubectl wait --for=condition=Ready``, kstatus readers (Flux,
Helm 4, cli-utils) and the Argo CD health check in ``deploy/argocd`` all read the same answer as
``kubectl get dcap``. Pure functions: the time comes in as ``now``.

| phase | Ready | Reconciling | Stalled |
|---|---|---|---|
| Pending, Running | False | True | False |
| Completed, PartiallyFailed | True | False | False |
| Failed | False | False | True |

PartiallyFailed is Ready: the run has ended and what was stored is all it will ever store, and a
``kubectl wait`` in a script must return so the script can read the bundles. Failed stored nothing
and will not retry without a new DebugCapture: that is kstatus's Stalled.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from debugcap import errors
from debugcap.operator.reporting import stamp

READY: Final = "Ready"
RECONCILING: Final = "Reconciling"
STALLED: Final = "Stalled"
HEALTHY: Final = "Healthy"
# Older than the kstatus ones and kept for readers of earlier releases: True when the run ended
# with something stored.
COMPLETE: Final = "Complete"
SPEC_CHANGE_IGNORED: Final = "SpecChangeIgnored"

IN_PROGRESS: Final = frozenset({"Pending", "Running"})
ENDED_READY: Final = frozenset({"Completed", "PartiallyFailed"})
MESSAGE_CHARS: Final = 1024


def condition(kind: str, status: bool | None, reason: str, message: str, *, generation: int | None,
              now: datetime) -> dict[str, Any]:
    """A ``metav1.Condition``; ``status`` None is ``Unknown``."""
    out: dict[str, Any] = {"type": kind, "status": "Unknown" if status is None else "True" if status else "False",
                           "reason": reason, "message": errors.shorten(message, MESSAGE_CHARS),
                           "lastTransitionTime": stamp(now)}
    if generation is not None:
        out["observedGeneration"] = int(generation)
    return out


def merge(previous: Iterable[Mapping[str, Any]], updates: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``previous`` with each of ``updates`` replacing the condition of its type. As in
    ``meta.SetStatusCondition``, ``lastTransitionTime`` moves only when the status changes: it
    says since when the condition holds, not when it was last written."""
    merged = {str(c.get("type")): dict(c) for c in previous}
    for new in updates:
        old = merged.get(str(new["type"]))
        entry = dict(new)
        if old is not None and old.get("status") == new["status"] and old.get("lastTransitionTime"):
            entry["lastTransitionTime"] = old["lastTransitionTime"]
        merged[str(new["type"])] = entry
    return list(merged.values())


def for_phase(phase: str, message: str, *, generation: int | None, now: datetime) -> list[dict[str, Any]]:
    """Ready, Reconciling and Stalled for ``phase`` (see the module's table); at the end of a run
    also ``Complete``."""
    def cond(kind: str, status: bool) -> dict[str, Any]:
        return condition(kind, status, phase, message, generation=generation, now=now)

    if phase in IN_PROGRESS:
        return [cond(READY, False), cond(RECONCILING, True), cond(STALLED, False)]
    ended = [cond(RECONCILING, False), cond(COMPLETE, phase in ENDED_READY)]
    if phase in ENDED_READY:
        return [cond(READY, True), *ended, cond(STALLED, False)]
    return [cond(READY, False), *ended, cond(STALLED, True)]


def status_fields(phase: str, message: str, *, previous: Sequence[Mapping[str, Any]], generation: int | None,
                  now: datetime, extra: Iterable[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """``phase``, ``message`` and the conditions that go with them, merged into ``previous``
    (with ``extra`` conditions, e.g. Healthy): the one way the capture handlers write a phase."""
    return {"phase": phase, "message": message,
            "conditions": merge(previous, [*for_phase(phase, message, generation=generation, now=now), *extra])}


def spec_change_ignored(previous: Sequence[Mapping[str, Any]], message: str, *, generation: int | None,
                        now: datetime) -> list[dict[str, Any]]:
    """The conditions once the spec was edited after the run: ``SpecChangeIgnored`` and Stalled,
    both of the new generation; the handler moves ``status.observedGeneration`` to it too (the
    edit was observed, and refused), so kstatus readers see Stalled, i.e. Failed, at once, and
    ``kubectl wait --for=condition=Ready`` no longer passes for it: Ready is of the old generation."""
    return merge(previous, [
        condition(SPEC_CHANGE_IGNORED, True, "RunsOnce", message, generation=generation, now=now),
        condition(STALLED, True, SPEC_CHANGE_IGNORED, message, generation=generation, now=now),
    ])


def find(conditions: Iterable[Mapping[str, Any]], kind: str) -> Mapping[str, Any] | None:
    return next((c for c in conditions if c.get("type") == kind), None)
