"""One check of a DebugTrigger's pods: find them, read their signals, say what each one shows.

Blocking work, called from :mod:`debugcap.operator.triggers` in threads. The pods come from
:func:`debugcap.operator.targets.find_pods` (one list call per check), their Go signals from
:class:`debugcap.capture.signals.SignalReader` (each pod read in parallel, in the state's own
threads so a slow pod does not hold a capture's), restarts and memory limits from the pod object.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from debugcap import errors
from debugcap.analysis.sections import quantity
from debugcap.capture import signals
from debugcap.capture.target import DEFAULT_CONTAINER_ANNOTATION, resolve_target
from debugcap.kube.client import Kube
from debugcap.kube.podhttp import in_cluster
from debugcap.operator import targets, triggering
from debugcap.operator.config import DebugcapConfig
from debugcap.operator.reporting import parse_stamp
from debugcap.operator.triggering import Reading, Termination, TriggerSpec

# Pods read at once per process: each read is two small GETs that wait on the network, not the CPU.
READ_THREADS: Final = 16
# ... and at once per trigger, so one trigger's unreachable pods cannot hold every thread.
READS_PER_TRIGGER: Final = 8
# A check waits for its pods' readings one interval, at least MIN_WAIT_SECONDS and at most
# CHECK_SECONDS; a pod that has not answered by then is reported unread for this check (its facts
# from the pod object still count) and read last in the next, so a few hung pods cannot keep the
# others unread check after check.
MIN_WAIT_SECONDS: Final = 3.0
CHECK_SECONDS: Final = 15.0


@dataclass
class TriggerState:
    """What the operator keeps about one trigger between its checks (lost on restart, which costs
    only the growth history: firings are counted from the trigger's captures)."""

    reader: signals.SignalReader
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # firings and status, check and webhook alike
    reads: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(READS_PER_TRIGGER))
    growth: triggering.GrowthTracker = field(default_factory=triggering.GrowthTracker)
    restarts: dict[str, int] = field(default_factory=dict)  # "pod/uid" -> restart count last seen
    told: dict[tuple[str, str, str], datetime] = field(default_factory=dict)  # suppression Events posted
    written: dict[str, Any] = field(default_factory=dict)  # the status fields last written
    template_checked: Any = None  # the generation whose spec.template was found
    # The last firing's look at the captures: when, and the firings it knew (itself included).
    known: tuple[datetime, list[triggering.Past]] | None = None
    slow: set[str] = field(default_factory=set)  # pods with no reading in time at the last check
    suppressed: int = 0  # firings held back since this process began ...
    suppressed_written: int = 0  # ... of which the status counts these

    def forget_pods(self, keys: set[str], *, uids: set[str] | None = None) -> None:
        """Drop what is kept of pods no longer watched (``keys``: "pod/uid" of those still are)."""
        self.growth.keep_only(keys)
        for key in [k for k in self.restarts if k not in keys]:
            del self.restarts[key]
        pods = {k.split("/", 1)[0] for k in keys}
        for told in [t for t in self.told if t[0] not in pods]:
            del self.told[told]
        self.reader.keep_only(uids if uids is not None else set())

    def close(self) -> None:
        self.reader.close()


def signal_transport(config: DebugcapConfig, kube: Kube) -> str:
    """direct when the operator can route to pod IPs (settings, or auto in the cluster), else pods/proxy."""
    if config.http_transport == "direct":
        return "direct"
    if config.http_transport == "auto" and in_cluster(kube.configuration.host):
        return "direct"
    return "proxy"


class TriggerStates:
    """Every trigger's state, and the threads that read pods, for the whole process."""

    def __init__(self, kube: Kube, config: DebugcapConfig) -> None:
        self.kube, self.transport = kube, signal_transport(config, kube)
        self.executor = ThreadPoolExecutor(max_workers=READ_THREADS, thread_name_prefix="trigger-read")
        self.states: dict[str, TriggerState] = {}
        # Held from counting the running triggered captures to creating the new ones, so two
        # triggers firing at once cannot both take the operator's last place.
        self.firing = asyncio.Lock()

    def of(self, uid: str) -> TriggerState:
        state = self.states.get(uid)
        if state is None:
            state = self.states[uid] = TriggerState(signals.SignalReader(self.kube, transport=self.transport))
        return state

    def drop(self, uid: str) -> None:
        state = self.states.pop(uid, None)
        if state is not None:
            state.close()

    def close(self) -> None:
        for uid in list(self.states):
            self.drop(uid)
        self.executor.shutdown(wait=False, cancel_futures=True)


def find(kube: Kube, namespace: str, spec: TriggerSpec, *, every: bool = False) -> targets.PodSelection:
    """The trigger's running pods (raises TargetError/ConfigError naming the field, as a capture
    would), up to spec.target.maxPods unless ``every``. A pod without spec.target.container is left
    out and named in the note, where a capture would refuse them all: one odd pod in a selector
    must not blind the trigger to the rest."""
    request = dataclasses.replace(spec.request, container=None, max_pods=10**6 if every else spec.request.max_pods)
    found = targets.find_pods(kube, namespace, request)
    wanted = spec.request.container
    if wanted is None:
        return found
    names = [p for p in found.pods if wanted in {c.get("name") for c in
                                                 (found.objects[p].get("spec") or {}).get("containers") or []}]
    if not names:
        raise errors.TargetError(f'spec.target.container: no watched pod has a container "{wanted}" '
                                 f"({', '.join(found.pods[:5])}{'...' if len(found.pods) > 5 else ''})")
    left = [p for p in found.pods if p not in names]
    note = "; ".join(n for n in (found.note, f"{len(left)} pod(s) without container {wanted} left out: "
                                              f"{', '.join(left[:5])}" if left else "") if n)
    return targets.PodSelection(tuple(names), note, objects={p: found.objects[p] for p in names},
                                read_at=found.read_at)


def base_reading(pod: Mapping[str, Any], spec: TriggerSpec) -> Reading:
    """What the pod object says (restarts, the last exit, the memory limit), needing no network."""
    name, uid = str(pod["metadata"]["name"]), str(pod["metadata"].get("uid") or "")
    container = _container(pod, spec.request.container)
    restarts, termination = _restarts(pod, container)
    return Reading(name, datetime.now(UTC), uid=uid, memory_limit=_memory_limit(pod, container), restarts=restarts,
                   termination=termination)


def read_pod(kube: Kube, reader: signals.SignalReader, namespace: str, pod: Mapping[str, Any],
             spec: TriggerSpec) -> Reading:
    """One pod's reading, now: Go signals only when the trigger asks for them and the container
    runs; restart facts and the memory limit from the pod object."""
    base = dataclasses.replace(base_reading(pod, spec), at=datetime.now(UTC))
    name, limit, when = base.pod, base.memory_limit, spec.when
    container = _container(pod, spec.request.container)
    if not when.reads_go():
        return base
    if when.memory_percent is not None and limit is None and when.goroutines is None and when.growth_per_minute is None:
        return dataclasses.replace(base, error=f"container {container} has no memory limit, so "
                                               "spec.when.memoryPercentOfLimit cannot apply; set "
                                               "resources.limits.memory on it")
    try:
        target = resolve_target(kube, namespace, name, container, spec.request.pprof_port, read=pod)
    except errors.DebugcapError as exc:
        return dataclasses.replace(base, error=errors.shorten(str(exc), 300))
    got = reader.read(target, memory=when.memory_percent is not None and limit is not None,
                      goroutines=when.goroutines is not None or when.growth_per_minute is not None)
    problems = list(got.errors)
    if when.memory_percent is not None and limit is None:
        problems.append(f"container {container} has no memory limit: memoryPercentOfLimit does not apply")
    return dataclasses.replace(base, memory_bytes=got.memory_bytes, goroutines=got.goroutines,
                               error="; ".join(problems))


async def read_all(states: TriggerStates, state: TriggerState, namespace: str,
                   pods: Sequence[Mapping[str, Any]], spec: TriggerSpec) -> list[Reading]:
    """Every pod's reading, READS_PER_TRIGGER at a time, within the check's wait (see
    MIN_WAIT_SECONDS); the pods unread at the last check go last."""
    loop = asyncio.get_running_loop()

    async def one(pod: Mapping[str, Any]) -> Reading:
        await state.reads.acquire()
        try:
            job = states.executor.submit(read_pod, states.kube, state.reader, namespace, pod, spec)
        except RuntimeError:  # the executor is shutting down with the operator
            state.reads.release()
            raise
        # The place is given back when the thread ends, not when this check stops waiting for it:
        # a GET that outlives its check still holds one of the trigger's places.
        job.add_done_callback(lambda _job: _release_soon(loop, state.reads))
        return await asyncio.wrap_future(job)

    wait = min(CHECK_SECONDS, max(MIN_WAIT_SECONDS, spec.interval.total_seconds()))
    ordered = sorted(pods, key=lambda p: str(p["metadata"]["name"]) in state.slow)  # stable: slow ones last
    jobs = [asyncio.ensure_future(one(p)) for p in ordered]
    if jobs:
        await asyncio.wait(jobs, timeout=wait)
    out, slow = [], set()
    for pod, job in zip(ordered, jobs, strict=True):
        if job.done() and not job.cancelled() and job.exception() is None:
            out.append(job.result())
            continue
        if not job.done():
            job.cancel()  # the thread finishes its GET on its own; this check does not wait for it
            slow.add(str(pod["metadata"]["name"]))
        why = f"no reading within {wait:.0f}s" if job.cancelled() or not job.done() else str(job.exception())
        out.append(dataclasses.replace(base_reading(pod, spec), error=errors.shorten(why, 300)))
    state.slow = slow
    return out


def _release_soon(loop: asyncio.AbstractEventLoop, semaphore: asyncio.Semaphore) -> None:
    try:
        loop.call_soon_threadsafe(semaphore.release)
    except RuntimeError:  # the loop is closed: the operator stopped
        pass


def _container(pod: Mapping[str, Any], wanted: str | None) -> str:
    names = [str(c.get("name")) for c in (pod.get("spec") or {}).get("containers") or []]
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    return wanted or annotations.get(DEFAULT_CONTAINER_ANNOTATION) or (names[0] if names else "")


def _restarts(pod: Mapping[str, Any], container: str) -> tuple[int, Termination | None]:
    cstatus = next((s for s in (pod.get("status") or {}).get("containerStatuses") or []
                    if s.get("name") == container), None) or {}
    ended = ((cstatus.get("lastState") or {}).get("terminated")) or None
    termination = None
    if isinstance(ended, Mapping) and ended.get("finishedAt"):
        try:
            termination = Termination(str(ended.get("reason") or "Unknown"), int(ended.get("exitCode") or 0),
                                      parse_stamp(str(ended["finishedAt"])))
        except ValueError:
            termination = None
    return int(cstatus.get("restartCount") or 0), termination


def _memory_limit(pod: Mapping[str, Any], container: str) -> int | None:
    spec = next((c for c in (pod.get("spec") or {}).get("containers") or [] if c.get("name") == container), None)
    raw = (((spec or {}).get("resources") or {}).get("limits") or {}).get("memory")
    value = quantity(raw) if raw is not None else None
    return int(value) if value else None
