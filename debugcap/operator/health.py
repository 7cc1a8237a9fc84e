"""What the operator learns from each bundle it stores: a pod's findings, readings and ``Healthy``.

:func:`assess` runs :func:`debugcap.analysis.report.build` on the local copy of a bundle just
after :mod:`~debugcap.operator.capturing` uploaded it (and :mod:`~debugcap.operator.recovery` on a
bundle it adopts), so nobody has to download a bundle to learn whether the pod is healthy. An
analysis that fails never fails the capture: the pod's ``Healthy`` is then ``Unknown`` and says why.

**One analysis at a time in the process** (:data:`_ANALYSING`), and the execution trace read only
up to the operator's own limit: reading a trace costs about 12 MB of memory per MiB, and an
operator killed for memory loses the bundles it has not uploaded yet.

**Unhealthy** means a finding of a kind in :data:`UNHEALTHY_FROM` at or above the level given
there: the one rule, see :func:`makes_unhealthy` (docs/health.md says why each kind is in or out).
Other findings are listed but do not make a pod unhealthy: a busy function (``cpu-hot``) or a large
cache (``heap-top``) is how a working pod looks under load, and facts about the capture (a collector
that failed, a cut dump, readiness hints, the profiler's own share) say nothing of the pod.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from debugcap import errors
from debugcap.analysis import model, report
from debugcap.bundle import redact
from debugcap.collectors import fetching
from debugcap.operator import conditions
from debugcap.operator.config import ANALYSIS_TRACE_LIMIT_MIB
from debugcap.operator.reporting import stamp

logger = logging.getLogger(__name__)

# Findings listed per pod, most serious first: what fits a `kubectl get -o yaml` screen. The status
# says how many there were in all (findingsTotal); the bundle has every one.
MAX_FINDINGS: Final = 5
MESSAGE_CHARS: Final = 240
SUBJECT_CHARS: Final = 120
LEVELS: Final = ("low", "medium", "high")

# The one rule of what makes a pod unhealthy: a finding of one of these kinds at or above the
# level given. Kinds that are faults of the pod whatever its load: leaks and growth that end in an
# OOM kill or a stalled program, contended locks (lost time, not work), a scheduler too slow for its
# goroutines. fd-limit and disk-full have one level, medium, and fire only near the failure (80% of
# the descriptors, a 90% full filesystem), so that level counts. Left out on purpose: cpu-hot and
# heap-top (saturation and size, how a busy pod looks), block-delay (idle workers parked on their
# channels count as blocked), close-wait (a count of sockets, not a share of a limit: a busy proxy
# crosses it in a moment's lag, and the harm it leads to is fd-limit's), and the facts about the
# capture: truncated-dump, collector-failed, hint. docs/health.md has the same table.
UNHEALTHY_FROM: Final[Mapping[str, str]] = {
    "goroutine-leak-proven": "high",
    "goroutine-leak": "high",
    "goroutine-growth": "high",
    "heap-growth": "high",
    "mutex-delay": "high",
    "sched-latency": "high",
    "fd-limit": "medium",
    "disk-full": "medium",
}

# The Warning Events on a target pod (docs/health.md): PodUnhealthy once per capture for an unhealthy
# pod, and HighSeverityFinding once per kind of high finding, whatever the pod's Healthy (a CPU-bound
# pod is healthy, and still someone should look at it), at most MAX_FINDING_EVENTS per pod per capture:
# a pod with every rule firing must not flood the namespace's Events on every run of a schedule.
POD_UNHEALTHY: Final = "PodUnhealthy"
HIGH_SEVERITY_FINDING: Final = "HighSeverityFinding"
MAX_FINDING_EVENTS: Final = 5
EVENT_MESSAGE_CHARS: Final = 800  # a finding's line, redacted; the Event's own limit is 1024

# Analyses at once in the process, capture and recovery alike: one. What an analysis holds at its
# peak is mostly the trace reader's (about 12 MB per MiB of trace), and the chart's memory limit
# (384Mi) would not hold several; the analyses wait for each other instead.
_ANALYSING = threading.Lock()
TRACE_LIMIT_BYTES: Final = ANALYSIS_TRACE_LIMIT_MIB << 20  # see config.ANALYSIS_TRACE_LIMIT_MIB


def makes_unhealthy(kind: str, level: str) -> bool:
    """Whether a finding of ``kind`` at ``level`` makes its pod unhealthy (:data:`UNHEALTHY_FROM`)."""
    lowest = UNHEALTHY_FROM.get(kind)
    return lowest is not None and level in LEVELS and LEVELS.index(level) >= LEVELS.index(lowest)


@dataclass(frozen=True)
class PodHealth:
    """A pod's ``Healthy`` condition (``status`` True, False or Unknown), its listed findings
    (``as_dict`` of :class:`debugcap.analysis.model.Finding`, cleaned) and its readings."""

    status: str
    reason: str
    message: str
    assessed_at: str  # the condition's lastTransitionTime
    findings: tuple[Mapping[str, Any], ...] = ()
    findings_total: int = 0
    readings: Mapping[str, int | float] = field(default_factory=dict)
    generation: int | None = None
    # The most serious high finding of each kind, cleaned (kind, message, and how many more of that
    # kind), for the HighSeverityFinding Events; not written to the status, which lists findings, so
    # left out of equality: a health read back from a status equals the one written.
    high: tuple[Mapping[str, Any], ...] = field(default=(), compare=False)

    @property
    def healthy(self) -> bool | None:
        return {"True": True, "False": False}.get(self.status)

    def condition(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": conditions.HEALTHY, "status": self.status, "reason": self.reason,
                               "message": self.message, "lastTransitionTime": self.assessed_at}
        if self.generation is not None:
            out["observedGeneration"] = self.generation
        return out

    def as_status(self) -> dict[str, Any]:
        """The fields this adds to a pod's entry in ``status.pods``."""
        out: dict[str, Any] = {"conditions": [self.condition()], "findingsTotal": self.findings_total}
        if self.findings:
            out["findings"] = [dict(f) for f in self.findings]
        if self.readings:
            out["readings"] = dict(self.readings)
        return out

    @classmethod
    def from_status(cls, entry: Mapping[str, Any]) -> PodHealth | None:
        """What :meth:`as_status` wrote into ``entry``; None when the pod was never assessed."""
        found = conditions.find(entry.get("conditions") or [], conditions.HEALTHY)
        if found is None:
            return None
        generation = found.get("observedGeneration")
        return cls(status=str(found.get("status", "Unknown")), reason=str(found.get("reason", "")),
                   message=str(found.get("message", "")), assessed_at=str(found.get("lastTransitionTime", "")),
                   findings=tuple(dict(f) for f in entry.get("findings") or []),
                   findings_total=int(entry.get("findingsTotal", 0)), readings=dict(entry.get("readings") or {}),
                   generation=None if generation is None else int(generation))


def clean(text: str, limit: int) -> str:
    """One line, redacted like bundle text, at most ``limit`` characters: a finding quotes collector
    errors and dump frames, and a status, an Event or a log line must never carry a secret."""
    flat = " ".join(str(text).split())
    masked = b"".join(redact.redact_stream([flat.encode()], "status", redact.RedactionReport())).decode(
        "utf-8", "replace")
    return errors.shorten(masked, limit)


def finding_entry(f: model.Finding) -> dict[str, Any]:
    return {"kind": clean(f.kind, 63), "subject": clean(f.subject, SUBJECT_CHARS), "severity": int(f.severity),
            "level": f.level, "message": clean(f.message, MESSAGE_CHARS)}


def judge(findings: Sequence[model.Finding], readings: Mapping[str, int | float], *, generation: int | None,
          now: datetime) -> PodHealth:
    """The health a bundle's findings give its pod (:func:`makes_unhealthy`). The findings listed are
    the most serious, most serious first; on an unhealthy pod the most serious finding that makes it
    unhealthy comes first, whatever its severity: the capture's Healthy and the Event name it."""
    ranked = sorted(findings, key=lambda f: -f.severity)
    sick = [f for f in ranked if makes_unhealthy(f.kind, f.level)]
    listed = ranked[:MAX_FINDINGS]
    if sick:
        listed = [sick[0], *(f for f in ranked if f is not sick[0])][:MAX_FINDINGS]
        top = sick[0]
        status, reason = "False", "UnhealthyFindings"
        message = (f"{len(sick)} finding(s) that make a pod unhealthy; the most serious: {top.kind} at "
                   f"{top.subject}: {top.message}")
    else:
        status, reason = "True", "NoUnhealthyFindings"
        message = (f"no finding that makes a pod unhealthy; {len(ranked)} other(s), the most serious "
                   f"{ranked[0].level}: {ranked[0].kind} at {ranked[0].subject}") if ranked else "no findings"
    return PodHealth(status=status, reason=reason, message=clean(message, conditions.MESSAGE_CHARS),
                     assessed_at=stamp(now), findings=tuple(finding_entry(f) for f in listed),
                     findings_total=len(ranked), readings=dict(readings), generation=generation,
                     high=_high_by_kind(ranked))


def _high_by_kind(ranked: Sequence[model.Finding]) -> tuple[dict[str, Any], ...]:
    """Per kind with a high finding, its most serious one (``ranked``: most serious first), the
    kinds in that order, at most :data:`MAX_FINDING_EVENTS`."""
    first: dict[str, model.Finding] = {}
    count: dict[str, int] = {}
    for f in ranked:
        if f.level == "high":
            first.setdefault(f.kind, f)
            count[f.kind] = count.get(f.kind, 0) + 1
    return tuple({"kind": clean(kind, 63), "message": clean(f.message, EVENT_MESSAGE_CHARS),
                  "more": count[kind] - 1} for kind, f in list(first.items())[:MAX_FINDING_EVENTS])


def _number(value: object) -> int | float | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def readings_of(rep: model.Report) -> dict[str, int | float]:
    """The numbers a sweep compares and Prometheus graphs, as far as the report has them: goroutines
    (the dump's total), heap in use (memstats HeapInuse, else the heap profile's sampled in-use
    total), GC cycles (memstats NumGC), the longest GC pause of the last cycles (memstats PauseNs,
    up to 256 cycles, in seconds; docs/health.md says why not the total) and CPU share (CPU time
    over the profile's wall time, in cores)."""
    out: dict[str, int | float] = {}
    if rep.goroutines is not None:
        out["goroutines"] = int(rep.goroutines.total)
    mem = rep.memstats or {}
    heap = _number(mem.get("HeapInuse"))
    if heap is None and rep.heap is not None and rep.heap["unit"] == "bytes":
        heap = rep.heap["total"]
    if heap is not None:
        out["heapInuseBytes"] = int(heap)
    cycles = _number(mem.get("NumGC"))
    if cycles is not None:
        out["gcCycles"] = int(cycles)
    if rep.gc_pauses is not None:
        out["gcPauseMaxSeconds"] = rep.gc_pauses.recent_max_ns / 1e9
    cpu = rep.cpu
    if cpu is not None and cpu["unit"] == "nanoseconds" and cpu["duration_ns"] > 0:
        out["cpuShare"] = round(cpu["total"] / cpu["duration_ns"], 4)
    return out


def assess(path: str | os.PathLike[str], *, generation: int | None, now: datetime,
           trace_limit: int | None = TRACE_LIMIT_BYTES) -> PodHealth:
    """Analyse the bundle at ``path``, waiting for any other analysis of the process to end first
    (:data:`_ANALYSING`); ``trace_limit``: the largest execution trace read, in bytes (None: the
    report command's). A failure is an ``Unknown`` health naming it, never raised."""
    try:
        with _ANALYSING:
            # Profiles decompressed no further than a capture's check does: a pod's bomb stored
            # "unchecked" must not be inflated here, in the operator, after all.
            rep = report.build(path, trace_limit=trace_limit, profile_limit=fetching.CHECK_MAX_UNCOMPRESSED_BYTES)
    except Exception as exc:  # noqa: BLE001 - analysis must never fail the capture; it becomes the message
        message = clean(f"the bundle could not be analysed: {type(exc).__name__}: {exc}", conditions.MESSAGE_CHARS)
        logger.warning("%s: %s", os.fspath(path).rsplit("/", 1)[-1], message)
        return PodHealth(status="Unknown", reason="AnalysisFailed", message=message, assessed_at=stamp(now),
                         generation=generation)
    return judge(rep.findings, readings_of(rep), generation=generation, now=now)


def event_message(capture: str, assessed: PodHealth) -> str | None:
    """The one Warning Event an unhealthy pod gets per capture: its most serious finding that makes
    it unhealthy, and how many more findings the capture's status lists; None for any other pod."""
    if assessed.healthy is not False or not assessed.findings:
        return None
    top = assessed.findings[0]
    others = assessed.findings_total - 1
    more = f" (and {others} other finding(s), listed in the capture's status)" if others else ""
    return f"debugcap capture {capture}: {top['kind']} at {top['subject']}: {top['message']}{more}"


def pod_events(capture: str, assessed: PodHealth) -> list[tuple[str, str]]:
    """(reason, message) of each Warning Event a pod gets for one capture: ``PodUnhealthy``
    (:func:`event_message`) for an unhealthy pod, then one ``HighSeverityFinding`` per kind of
    high finding, most serious first (at most :data:`MAX_FINDING_EVENTS`), healthy pod or not."""
    out: list[tuple[str, str]] = []
    unhealthy = event_message(capture, assessed)
    if unhealthy is not None:
        out.append((POD_UNHEALTHY, unhealthy))
    for h in assessed.high:
        more = f" (and {h['more']} more {h['kind']} finding(s) in the bundle)" if h["more"] else ""
        out.append((HIGH_SEVERITY_FINDING, f"debugcap capture {capture}: {h['kind']}: {h['message']}{more}"))
    return out


def capture_condition(pods: Iterable[tuple[str, PodHealth | None]], *, generation: int | None,
                      now: datetime) -> dict[str, Any]:
    """The capture's own ``Healthy``: False when any pod is unhealthy, True when every pod was
    assessed healthy, else Unknown (a pod not captured, or not analysed). Each unhealthy pod is
    named with its first listed finding, the one that makes it unhealthy (:func:`judge`)."""
    listed = list(pods)
    if not listed:
        return conditions.condition(conditions.HEALTHY, None, "NoPods", "no pod was captured",
                                    generation=generation, now=now)
    sick = [(name, h) for name, h in listed if h is not None and h.healthy is False]
    unknown = [name for name, h in listed if h is None or h.healthy is None]
    if sick:
        named = ", ".join(f"{name} ({h.findings[0]['kind']} at {h.findings[0]['subject']})" if h.findings else name
                          for name, h in sick)
        return conditions.condition(conditions.HEALTHY, False, "UnhealthyPods",
                                    f"{len(sick)} of {len(listed)} pod(s) unhealthy: {named}",
                                    generation=generation, now=now)
    if listed and not unknown:
        return conditions.condition(conditions.HEALTHY, True, "AllPodsHealthy",
                                    f"{len(listed)} pod(s) analysed, none unhealthy",
                                    generation=generation, now=now)
    return conditions.condition(conditions.HEALTHY, None, "NotAnalysed",
                                f"{len(unknown)} of {len(listed)} pod(s) not analysed: " + ", ".join(unknown),
                                generation=generation, now=now)


@dataclass(frozen=True)
class PodRef:
    """What the metrics and Events need of a target pod beyond its name: uid and workload."""

    uid: str = ""
    workload: str = ""
    kind: str = "Pod"


def pod_ref(pod: Mapping[str, Any]) -> PodRef:
    """The pod's controller as a workload: a ReplicaSet made by a Deployment is named after the
    Deployment plus the pod-template-hash label, so the Deployment is named without another read;
    a pod without a controller is its own workload."""
    meta = pod.get("metadata") or {}
    name = str(meta.get("name", ""))
    owner = next((o for o in meta.get("ownerReferences") or [] if o.get("controller")), None)
    if owner is None:
        return PodRef(uid=str(meta.get("uid", "")), workload=name, kind="Pod")
    kind, workload = str(owner.get("kind", "")), str(owner.get("name", ""))
    template_hash = (meta.get("labels") or {}).get("pod-template-hash")
    if kind == "ReplicaSet" and template_hash and workload.endswith(f"-{template_hash}"):
        kind, workload = "Deployment", workload[: -len(template_hash) - 1]
    return PodRef(uid=str(meta.get("uid", "")), workload=workload, kind=kind)
